#include "xsgw/translate/presence.hpp"

#include "xml_reader.hpp"
#include "xsgw/translate/message.hpp"
#include "xsgw/translate/xml_text.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fmt/format.h>
#include <iterator>
#include <unordered_set>

namespace xsgw::translate {
namespace {

constexpr std::string_view pidf_ns = "urn:ietf:params:xml:ns:pidf";
constexpr std::string_view data_model_ns = "urn:ietf:params:xml:ns:pidf:data-model";
constexpr std::string_view rpid_ns = "urn:ietf:params:xml:ns:pidf:rpid";
constexpr std::string_view jabber_client_ns = "jabber:client";
constexpr std::string_view jabber_server_ns = "jabber:server";
constexpr std::string_view xml_ns = "http://www.w3.org/XML/1998/namespace";

constexpr std::string_view tuple_id_prefix = "ID-";
constexpr std::string_view person_id = "person";
constexpr std::size_t max_depth = 32;
constexpr std::size_t max_resource_bytes = 1023; // RFC 7622 §3.1

// ---------------------------------------------------------------------------
// Text

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

void append_text(std::string& out, std::string_view utf8) {
    append_xml_escaped(out, utf8, false);
}

void append_attribute(std::string& out, std::string_view name, std::string_view value) {
    out += ' ';
    out += name;
    out += "=\"";
    append_xml_escaped(out, value, true);
    out += '"';
}

bool is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.';
}

int hex_value(char c) {
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

// C0 controls and DEL: no JID may hold them (RFC 7622).
bool is_control_byte(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
}

// True for text a resource may hold here: UTF-8 without controls.
bool is_clean_resource(std::string_view text) {
    return is_valid_utf8(text) && std::none_of(text.begin(), text.end(), is_control_byte);
}

// ---------------------------------------------------------------------------
// Show ranking

// Higher is more available (see the header): chat > none > away > xa > dnd.
int availability_rank(Show show) {
    switch (show) {
    case Show::chat:
        return 4;
    case Show::none:
        return 3;
    case Show::away:
        return 2;
    case Show::xa:
        return 1;
    case Show::dnd:
        return 0;
    }
    return 0;
}

// Higher wins when one tuple names several activities: dnd > xa > away.
int restriction_rank(Show show) {
    switch (show) {
    case Show::dnd:
        return 3;
    case Show::xa:
        return 2;
    case Show::away:
        return 1;
    case Show::none:
    case Show::chat:
        return 0;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// Reading: a SAX pass that keeps only what the mapping needs, so memory stays
// proportional to the useful content and not to the element count.

// What the RPID <activities> of a tuple or a person said: present at all, and
// the strongest show among its activities.
struct Activities {
    bool present = false;
    std::optional<Show> show;

    void add(std::string_view activity) {
        const auto mapped = show_for_rpid_activity(activity);
        if (mapped && (!show || restriction_rank(*mapped) > restriction_rank(*show))) {
            show = mapped;
        }
    }
};

struct Note {
    std::string text;
    std::string lang;
    bool empty() const { return text.empty(); }
};

struct TupleData {
    std::string id;
    bool basic_seen = false;
    std::string basic;
    std::optional<Show> show; // embedded jabber:client <show/>
    Activities activities;
    std::optional<int> priority;
    bool contact_seen = false;
    Note note;
};

// The role an element plays; decided from its parent's role and its name.
enum class Role {
    ignored,
    presence,
    presence_note,
    tuple,
    status,
    basic,
    show,
    contact,
    tuple_note,
    activities,
    activity,
    person,
    person_note,
};

bool collects_text(Role role) {
    return role == Role::basic || role == Role::show || role == Role::tuple_note ||
           role == Role::person_note || role == Role::presence_note;
}

struct Frame {
    Role role = Role::ignored;
    std::size_t lang = 0;       // index in PidfReader::langs_ of the xml:lang in scope
    bool declares_lang = false; // this element's own xml:lang is langs_.back()
    bool activities_of_person = false;
};

class PidfReader final : public XmlReader {
public:
    PidfReader()
        : XmlReader(XmlReaderOptions{.max_depth = max_depth,
                                     .encoding = "UTF-8",
                                     .syntax_error_prefix = "not well-formed: "}) {}
    PidfReader(const PidfReader&) = delete;
    PidfReader& operator=(const PidfReader&) = delete;
    PidfReader(PidfReader&&) = delete;
    PidfReader& operator=(PidfReader&&) = delete;
    ~PidfReader() override = default;

    Expected<std::vector<ResourcePresence>, PidfError> read(std::string_view body) {
        if (!parse_document(body)) {
            return PidfError{error()};
        }
        return resolve();
    }

private:
    // Children of a tuple and of its status that both places may hold.
    static Role tuple_extension_role(XmlName name) {
        if ((name.ns == jabber_client_ns || name.ns == jabber_server_ns) && name.local == "show") {
            return Role::show;
        }
        if (name.ns == rpid_ns && name.local == "activities") {
            return Role::activities;
        }
        return Role::ignored;
    }

    static Role role_for(Role parent, XmlName name) {
        const bool pidf = name.ns == pidf_ns;
        switch (parent) {
        case Role::presence:
            if (pidf && name.local == "tuple") {
                return Role::tuple;
            }
            if (pidf && name.local == "note") {
                return Role::presence_note;
            }
            if (name.ns == data_model_ns && name.local == "person") {
                return Role::person;
            }
            return Role::ignored;
        case Role::tuple:
            if (pidf && name.local == "status") {
                return Role::status;
            }
            if (pidf && name.local == "contact") {
                return Role::contact;
            }
            if (pidf && name.local == "note") {
                return Role::tuple_note;
            }
            return tuple_extension_role(name);
        case Role::status:
            if (pidf && name.local == "basic") {
                return Role::basic;
            }
            return tuple_extension_role(name);
        case Role::person:
            if (name.ns == rpid_ns && name.local == "activities") {
                return Role::activities;
            }
            if ((name.ns == data_model_ns || pidf) && name.local == "note") {
                return Role::person_note;
            }
            return Role::ignored;
        case Role::activities:
            return name.ns == rpid_ns ? Role::activity : Role::ignored;
        default:
            return Role::ignored;
        }
    }

    void start_element(XmlName name, const XML_Char** attributes) override {
        Frame frame;
        frame.lang = stack_.empty() ? 0 : stack_.back().lang;
        std::string_view id;
        bool has_id = false;
        std::string_view priority;
        bool has_priority = false;
        for (std::size_t i = 0; attributes[i] != nullptr && attributes[i + 1] != nullptr; i += 2) {
            const XmlName attribute = split_xml_name(attributes[i]);
            if (attribute.ns == xml_ns && attribute.local == "lang") {
                if (!frame.declares_lang) {
                    // Languages live on their own stack, so that an element
                    // inherits one by index instead of copying the text.
                    langs_.emplace_back(attributes[i + 1]);
                    frame.lang = langs_.size() - 1;
                    frame.declares_lang = true;
                }
            } else if (attribute.ns.empty() && attribute.local == "id") {
                id = attributes[i + 1];
                has_id = true;
            } else if (attribute.ns.empty() && attribute.local == "priority") {
                priority = attributes[i + 1];
                has_priority = true;
            }
        }

        if (stack_.empty()) {
            if (root_seen_ || name.ns != pidf_ns || name.local != "presence") {
                fail("root element is not presence in " + std::string(pidf_ns));
                return;
            }
            root_seen_ = true;
            frame.role = Role::presence;
            stack_.push_back(frame);
            return;
        }

        const Frame& parent = stack_.back();
        frame.role = role_for(parent.role, name);
        switch (frame.role) {
        case Role::tuple:
            tuples_.emplace_back();
            if (has_id) {
                tuples_.back().id = std::string(id);
            }
            break;
        case Role::contact:
            if (!tuples_.back().contact_seen) {
                tuples_.back().contact_seen = true;
                if (has_priority) {
                    tuples_.back().priority = priority_for_contact_priority(priority);
                }
            }
            break;
        case Role::activities:
            if (parent.role == Role::person) {
                // Every person's activities count, the strongest wins (see the header).
                person_activities_.present = true;
                frame.activities_of_person = true;
            } else {
                tuples_.back().activities.present = true;
            }
            break;
        case Role::activity:
            if (parent.activities_of_person) {
                person_activities_.add(name.local);
            } else {
                tuples_.back().activities.add(name.local);
            }
            break;
        default:
            break;
        }
        if (collects_text(frame.role)) {
            text_.clear();
        }
        stack_.push_back(frame);
    }

    void end_element() override {
        if (stack_.empty()) {
            return;
        }
        const Frame frame = stack_.back();
        stack_.pop_back();
        const std::string& lang = langs_[frame.lang];
        switch (frame.role) {
        case Role::basic:
            if (!tuples_.back().basic_seen) {
                tuples_.back().basic_seen = true;
                tuples_.back().basic = text_;
            }
            break;
        case Role::show:
            if (!tuples_.back().show) {
                tuples_.back().show = parse_show(trim_xml_space(text_));
            }
            break;
        case Role::tuple_note:
            keep_first(tuples_.back().note, lang);
            break;
        case Role::person_note:
            keep_first(person_note_, lang);
            break;
        case Role::presence_note:
            keep_first(presence_note_, lang);
            break;
        default:
            break;
        }
        if (frame.declares_lang) {
            langs_.pop_back();
        }
    }

    void keep_first(Note& note, const std::string& lang) {
        if (note.empty() && !text_.empty()) {
            note = Note{text_, lang};
        }
    }

    void characters(std::string_view text) override {
        if (!stack_.empty() && collects_text(stack_.back().role)) {
            text_.append(text);
        }
    }

    std::vector<ResourcePresence> resolve() const {
        std::vector<ResourcePresence> out;
        out.reserve(tuples_.size());
        std::unordered_set<std::string> seen;
        for (const TupleData& tuple : tuples_) {
            ResourcePresence presence;
            presence.resource = resource_for_tuple_id(tuple.id);
            if (!seen.insert(presence.resource).second) {
                continue;
            }
            presence.available = tuple.basic_seen && iequals(trim_xml_space(tuple.basic), "open");
            if (presence.available) {
                if (tuple.show) {
                    presence.show = *tuple.show;
                } else if (tuple.activities.present) {
                    presence.show = tuple.activities.show.value_or(Show::none);
                } else if (person_activities_.present) {
                    presence.show = person_activities_.show.value_or(Show::none);
                }
                presence.priority = tuple.priority;
            }
            const Note& note = !tuple.note.empty()     ? tuple.note
                               : !person_note_.empty() ? person_note_
                                                       : presence_note_;
            presence.status = note.text;
            presence.status_lang = note.empty() ? std::string() : note.lang;
            out.push_back(std::move(presence));
        }
        return out;
    }

    bool root_seen_ = false;
    std::vector<Frame> stack_;
    std::vector<std::string> langs_{std::string()}; // [0]: no language
    std::string text_;
    std::vector<TupleData> tuples_;
    Activities person_activities_;
    Note person_note_;
    Note presence_note_;
};

// ---------------------------------------------------------------------------
// Writing

// The index of the most available resource (see the header), if any is available.
std::optional<std::size_t> most_available(const std::vector<const ResourcePresence*>& resources) {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < resources.size(); ++i) {
        const ResourcePresence& candidate = *resources[i];
        if (!candidate.available) {
            continue;
        }
        if (!best) {
            best = i;
            continue;
        }
        const ResourcePresence& current = *resources[*best];
        const int candidate_rank = availability_rank(candidate.show);
        const int current_rank = availability_rank(current.show);
        if (candidate_rank > current_rank ||
            (candidate_rank == current_rank &&
             candidate.priority.value_or(0) > current.priority.value_or(0))) {
            best = i;
        }
    }
    return best;
}

void append_tuple(std::string& out, std::string_view entity, const ResourcePresence& presence) {
    out += "<tuple";
    append_attribute(out, "id", tuple_id_for_resource(presence.resource));
    out += "><status><basic>";
    out += presence.available ? "open" : "closed";
    out += "</basic>";
    if (presence.available && presence.show != Show::none) {
        out += "<show xmlns=\"";
        out += jabber_client_ns;
        out += "\">";
        out += to_string(presence.show);
        out += "</show>";
    }
    out += "</status>";
    if (presence.available && presence.priority) {
        if (const auto q = contact_priority_for(*presence.priority)) {
            out += "<contact";
            append_attribute(out, "priority", *q);
            out += '>';
            append_text(out, entity);
            out += "</contact>";
        }
    }
    if (!presence.status.empty()) {
        out += "<note";
        if (!presence.status_lang.empty()) {
            append_attribute(out, "xml:lang", presence.status_lang);
        }
        out += '>';
        append_text(out, presence.status);
        out += "</note>";
    }
    out += "</tuple>\n";
}

} // namespace

// ---------------------------------------------------------------------------
// Pieces

std::string_view to_string(Show show) {
    switch (show) {
    case Show::none:
        return "";
    case Show::away:
        return "away";
    case Show::chat:
        return "chat";
    case Show::dnd:
        return "dnd";
    case Show::xa:
        return "xa";
    }
    return "";
}

std::optional<Show> parse_show(std::string_view text) {
    for (const Show show : {Show::away, Show::chat, Show::dnd, Show::xa}) {
        if (text == to_string(show)) {
            return show;
        }
    }
    return std::nullopt;
}

std::string_view rpid_activity_for(Show show) {
    switch (show) {
    case Show::away:
    case Show::xa:
        return "away";
    case Show::dnd:
        return "busy";
    case Show::none:
    case Show::chat:
        return "";
    }
    return "";
}

std::optional<Show> show_for_rpid_activity(std::string_view activity) {
    if (activity == "away") {
        return Show::away;
    }
    if (activity == "vacation" || activity == "holiday") {
        return Show::xa;
    }
    if (activity == "busy" || activity == "on-the-phone" || activity == "meeting") {
        return Show::dnd;
    }
    return std::nullopt;
}

std::string tuple_id_for_resource(std::string_view resource) {
    static constexpr std::string_view hex = "0123456789ABCDEF";
    std::string id(tuple_id_prefix);
    id.reserve(id.size() + resource.size());
    for (const char c : resource) {
        if (is_id_char(c)) {
            id += c;
        } else {
            const auto byte = static_cast<unsigned char>(c);
            id += '_';
            id += hex[byte >> 4];
            id += hex[byte & 0x0F];
        }
    }
    return id;
}

std::string resource_for_tuple_id(std::string_view tuple_id) {
    std::optional<std::string> resource;
    if (tuple_id.substr(0, tuple_id_prefix.size()) == tuple_id_prefix) {
        const auto encoded = tuple_id.substr(tuple_id_prefix.size());
        std::string decoded;
        decoded.reserve(encoded.size());
        for (std::size_t i = 0; i < encoded.size(); ++i) {
            if (encoded[i] == '_' && i + 2 < encoded.size() && hex_value(encoded[i + 1]) >= 0 &&
                hex_value(encoded[i + 2]) >= 0) {
                decoded +=
                    static_cast<char>(hex_value(encoded[i + 1]) * 16 + hex_value(encoded[i + 2]));
                i += 2;
            } else {
                decoded += encoded[i];
            }
        }
        if (is_clean_resource(decoded)) {
            resource = std::move(decoded);
        }
    }
    if (!resource) {
        // A foreign id, or one of ours that decodes to something no resource
        // may hold: the id as it is, without the controls no JID may carry.
        resource.emplace();
        resource->reserve(tuple_id.size());
        std::size_t pos = 0;
        while (pos < tuple_id.size()) {
            const char32_t c = next_code_point(tuple_id, pos).value_or(0xFFFD);
            if (c >= 0x20 && c != 0x7F) {
                append_utf8(*resource, c);
            }
        }
    }
    if (resource->size() > max_resource_bytes) {
        // RFC 7622 §3.1: cut on a character boundary.
        std::size_t cut = max_resource_bytes;
        while (cut > 0 && (static_cast<unsigned char>((*resource)[cut]) & 0xC0) == 0x80) {
            --cut;
        }
        resource->resize(cut);
    }
    return *resource;
}

std::optional<std::string> contact_priority_for(int priority) {
    if (priority < 0 || priority > 127) {
        return std::nullopt;
    }
    // Thousandths, rounded half up: p * 1000 / 127.
    const int thousandths = (priority * 1000 + 63) / 127;
    return fmt::format("{}.{:03}", thousandths / 1000, thousandths % 1000);
}

std::optional<int> priority_for_contact_priority(std::string_view value) {
    // xs:decimal: an optional '+', digits with an optional fraction, or a
    // fraction alone. Computed in billionths so that no floating point is
    // involved; digits past the ninth decimal do not change the result.
    std::string_view text = trim_xml_space(value);
    if (!text.empty() && text.front() == '+') {
        text.remove_prefix(1);
    }
    const auto dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    const std::string_view fraction =
        dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    if ((whole.empty() && fraction.empty()) || !std::all_of(whole.begin(), whole.end(), is_digit) ||
        !std::all_of(fraction.begin(), fraction.end(), is_digit)) {
        return std::nullopt;
    }
    constexpr std::uint64_t one = 1'000'000'000;
    std::uint64_t units = 0;
    for (const char c : whole) {
        units = units * 10 + static_cast<std::uint64_t>(c - '0');
        if (units > 1) {
            return std::nullopt;
        }
    }
    units *= one;
    std::uint64_t scale = one / 10;
    for (std::size_t i = 0; i < fraction.size() && scale > 0; ++i, scale /= 10) {
        units += static_cast<std::uint64_t>(fraction[i] - '0') * scale;
    }
    if (units > one) {
        return std::nullopt;
    }
    return static_cast<int>((units * 127 + one / 2) / one);
}

// ---------------------------------------------------------------------------
// The two directions

std::string presence_to_pidf(std::string_view entity,
                             const std::vector<ResourcePresence>& resources) {
    // One tuple per resource name: the first one counts (see the header).
    std::vector<const ResourcePresence*> unique;
    unique.reserve(resources.size());
    std::unordered_set<std::string_view> seen;
    for (const ResourcePresence& presence : resources) {
        if (seen.insert(presence.resource).second) {
            unique.push_back(&presence);
        }
    }

    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"";
    out += pidf_ns;
    out += '"';
    append_attribute(out, "entity", entity);
    out += ">\n";
    if (unique.empty()) {
        append_tuple(out, entity, ResourcePresence{});
    }
    for (const ResourcePresence* presence : unique) {
        append_tuple(out, entity, *presence);
    }
    if (const auto best = most_available(unique)) {
        const auto activity = rpid_activity_for(unique[*best]->show);
        if (!activity.empty()) {
            out += "<dm:person xmlns:dm=\"";
            out += data_model_ns;
            out += "\" xmlns:rpid=\"";
            out += rpid_ns;
            out += "\" id=\"";
            out += person_id;
            out += "\"><rpid:activities><rpid:";
            out += activity;
            out += "/></rpid:activities></dm:person>\n";
        }
    }
    out += "</presence>\n";
    return out;
}

Expected<std::vector<ResourcePresence>, PidfError> pidf_to_presence(std::string_view body,
                                                                    std::size_t max_bytes) {
    if (body.size() > max_bytes || body.size() > static_cast<std::size_t>(INT_MAX)) {
        return PidfError{fmt::format("document of {} bytes exceeds the limit of {}", body.size(),
                                     std::min<std::size_t>(max_bytes, INT_MAX))};
    }
    PidfReader reader;
    return reader.read(body);
}

} // namespace xsgw::translate
