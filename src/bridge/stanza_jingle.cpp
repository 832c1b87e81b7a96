#include "xsgw/bridge/stanza_jingle.hpp"

#include "xsgw/translate/xml_text.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <gloox/tag.h>
#include <limits>
#include <utility>

namespace xsgw::bridge {
namespace {

constexpr const char* ns_jingle = "urn:xmpp:jingle:1";
constexpr const char* ns_jingle_errors = "urn:xmpp:jingle:errors:1";
constexpr const char* ns_rtp = "urn:xmpp:jingle:apps:rtp:1";
constexpr const char* ns_rtp_info = "urn:xmpp:jingle:apps:rtp:info:1";
constexpr const char* ns_rtcp_fb = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
constexpr const char* ns_dtls = "urn:xmpp:jingle:apps:dtls:0";
constexpr const char* ns_ice_udp = "urn:xmpp:jingle:transports:ice-udp:1";
constexpr const char* ns_raw_udp = "urn:xmpp:jingle:transports:raw-udp:1";
constexpr const char* ns_jmi = "urn:xmpp:jingle-message:0";
constexpr const char* ns_hints = "urn:xmpp:hints";

// XEP-0166 §7.2: every action the protocol defines, whether the bridge handles it or not.
constexpr std::array<std::string_view, 15> defined_actions = {
    "content-accept", "content-add",      "content-modify",    "content-reject",
    "content-remove", "description-info", "security-info",     "session-accept",
    "session-info",   "session-initiate", "session-terminate", "transport-accept",
    "transport-info", "transport-reject", "transport-replace"};

// XEP-0167 §7: the session-info payloads of RTP sessions.
constexpr std::array<std::string_view, 6> rtp_info_names = {"active",  "hold",   "mute",
                                                            "ringing", "unhold", "unmute"};

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& names, std::string_view name) {
    for (const std::string_view n : names) {
        if (n == name) {
            return true;
        }
    }
    return false;
}

// One SDP token: no white space, no control character (UTF-8 beyond ASCII is fine).
bool is_token(std::string_view text) {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte == 0x7f) {
            return false;
        }
    }
    return true;
}

// Free text that may end up on an SDP line: spaces are fine, line breaks are not.
bool is_line_text(std::string_view text) {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            return false;
        }
    }
    return true;
}

// Digits only (no sign, no space), within [min, max].
std::optional<std::uint64_t> parse_number(std::string_view text, std::uint64_t min,
                                          std::uint64_t max) {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end || value < min || value > max) {
        return std::nullopt;
    }
    return value;
}

// The element's namespace. gloox's xmlns() answers from the element's own declaration
// only, while XML inherits the default namespace: <payload-type/> in a description is in
// urn:xmpp:jingle:apps:rtp:1 without saying so.
std::string namespace_of(const gloox::Tag& element) {
    for (const gloox::Tag* t = &element; t != nullptr; t = t->parent()) {
        std::string ns = t->xmlns(); // for a prefixed name gloox looks the prefix up the tree
        if (!ns.empty() || !t->prefix().empty()) {
            return ns;
        }
    }
    return {};
}

bool is_in(const gloox::Tag& element, const char* ns) {
    return namespace_of(element) == ns;
}

// The first child with this name (any namespace); nullptr: none.
const gloox::Tag* first_child(const gloox::Tag& parent, std::string_view name) {
    for (const gloox::Tag* child : parent.children()) {
        if (child->name() == name) {
            return child;
        }
    }
    return nullptr;
}

// Reads a <reason/> of urn:xmpp:jingle:1: the condition and the text.
void read_reason(const gloox::Tag& reason, std::string& condition, std::string& text) {
    for (const gloox::Tag* child : reason.children()) {
        if (!is_in(*child, ns_jingle)) {
            continue;
        }
        if (child->name() == "text") {
            if (text.empty()) {
                text = child->cdata();
            }
        } else if (condition.empty()) {
            condition = child->name();
        }
    }
    // A text explains a condition (XEP-0166 §7.4); without one there is no reason to tell.
    if (condition.empty()) {
        text.clear();
    }
}

// Writes <reason><condition/><text/></reason> under parent; the caller sets the
// namespace when parent is not in urn:xmpp:jingle:1.
gloox::Tag* write_reason(gloox::Tag* parent, const std::string& condition,
                         const std::string& text) {
    auto* reason = new gloox::Tag(parent, "reason");
    new gloox::Tag(reason, condition);
    if (!text.empty()) {
        new gloox::Tag(reason, "text", text);
    }
    return reason;
}

std::optional<translate::Senders> parse_senders(std::string_view text) {
    if (text.empty() || text == "both") {
        return translate::Senders::both;
    }
    if (text == "initiator") {
        return translate::Senders::initiator;
    }
    if (text == "responder") {
        return translate::Senders::responder;
    }
    if (text == "none") {
        return translate::Senders::none;
    }
    return std::nullopt;
}

std::string_view to_string(translate::Senders senders) {
    switch (senders) {
    case translate::Senders::both:
        return "both";
    case translate::Senders::initiator:
        return "initiator";
    case translate::Senders::responder:
        return "responder";
    case translate::Senders::none:
        return "none";
    }
    return "both";
}

// Turns one <jingle/> into a JingleIq, stopping at the first thing that is malformed.
class JingleReader {
public:
    JingleReader() = default;
    JingleReader(const JingleReader&) = delete;
    JingleReader& operator=(const JingleReader&) = delete;
    JingleReader(JingleReader&&) = delete;
    JingleReader& operator=(JingleReader&&) = delete;
    ~JingleReader() = default;

    /// The value of one <jingle/>, or bad-request with the first problem found.
    Expected<JingleIq, xmpp::StanzaError> read(const gloox::Tag& jingle) {
        if (!read_jingle_element(jingle)) {
            return xmpp::StanzaError{"modify", "bad-request", std::move(problem_)};
        }
        return std::move(result_);
    }

private:
    bool fail(std::string what) {
        problem_ = std::move(what);
        return false;
    }

    // An optional number attribute: absent (or empty) leaves value untouched.
    template <class T>
    bool number(const gloox::Tag& element, const std::string& name, std::uint64_t min,
                std::uint64_t max, T& value) {
        const std::string& text = element.findAttribute(name);
        if (text.empty()) {
            return true;
        }
        const auto parsed = parse_number(text, min, max);
        if (!parsed) {
            return fail("<" + element.name() + "/> has a bad " + name + " (" + std::to_string(min) +
                        ".." + std::to_string(max) + ")");
        }
        value = static_cast<T>(*parsed);
        return true;
    }

    // The same for an attribute whose absence is a value of its own.
    template <class T>
    bool number(const gloox::Tag& element, const std::string& name, std::uint64_t min,
                std::uint64_t max, std::optional<T>& value) {
        if (element.findAttribute(name).empty()) {
            return true;
        }
        T parsed{};
        if (!number(element, name, min, max, parsed)) {
            return false;
        }
        value = parsed;
        return true;
    }

    // A token attribute: absent (or empty) leaves value untouched.
    bool token(const gloox::Tag& element, const std::string& name, std::string& value) {
        const std::string& text = element.findAttribute(name);
        if (text.empty()) {
            return true;
        }
        if (!is_token(text)) {
            return fail("<" + element.name() + "/> has white space or a control character in " +
                        name);
        }
        value = text;
        return true;
    }

    bool read_jingle_element(const gloox::Tag& jingle) {
        const std::string& action = jingle.findAttribute("action");
        if (action.empty()) {
            return fail("<jingle/> without action");
        }
        if (!is_jingle_action(action)) {
            return fail("<jingle/> with an undefined action");
        }
        result_.action_name = action;
        result_.action = parse_jingle_action(action);
        if (jingle.findAttribute("sid").empty()) {
            return fail("<jingle/> without sid");
        }
        if (!token(jingle, "sid", result_.sid)) {
            return false;
        }
        result_.initiator = jingle.findAttribute("initiator");
        result_.responder = jingle.findAttribute("responder");
        if (!is_line_text(result_.initiator) || !is_line_text(result_.responder)) {
            return fail("<jingle/> has a control character in initiator or responder");
        }
        bool have_reason = false;
        for (const gloox::Tag* child : jingle.children()) {
            const std::string ns = namespace_of(*child);
            if (ns == ns_jingle) {
                if (child->name() == "content") {
                    if (!read_content(*child)) {
                        return false;
                    }
                } else if (child->name() == "reason" && !have_reason) {
                    have_reason = true;
                    read_reason(*child, result_.reason, result_.reason_text);
                }
            } else if (result_.action == JingleAction::session_info) {
                if (ns == ns_rtp_info && one_of(rtp_info_names, child->name())) {
                    if (result_.info.empty()) {
                        result_.info = child->name();
                    }
                } else {
                    result_.unknown_info = true;
                }
            }
        }
        return true;
    }

    bool read_content(const gloox::Tag& element) {
        translate::JingleContent content;
        content.name = element.findAttribute("name");
        if (content.name.empty()) {
            return fail("<content/> without name");
        }
        if (!is_token(content.name)) {
            return fail("<content/> has white space or a control character in name");
        }
        const std::string& creator = element.findAttribute("creator");
        if (creator == "responder") {
            content.creator = "responder";
        } else if (!creator.empty() && creator != "initiator") {
            return fail("<content/> with a creator neither initiator nor responder");
        }
        const auto senders = parse_senders(element.findAttribute("senders"));
        if (!senders) {
            return fail("<content/> with undefined senders");
        }
        content.senders = *senders;

        const gloox::Tag* description = first_child(element, "description");
        const gloox::Tag* transport = first_child(element, "transport");
        const bool description_usable = description == nullptr || is_in(*description, ns_rtp);
        const bool transport_usable =
            transport == nullptr || is_in(*transport, ns_ice_udp) || is_in(*transport, ns_raw_udp);
        if (!description_usable || !transport_usable) {
            result_.refused_contents.push_back(content.name);
            if (description_usable) {
                result_.refused_for_transport = true;
            }
            return true;
        }
        if (description != nullptr && !read_description(*description, content)) {
            return false;
        }
        if (transport != nullptr && !read_transport(*transport, content.transport)) {
            return false;
        }
        result_.description.contents.push_back(std::move(content));
        return true;
    }

    bool read_description(const gloox::Tag& description, translate::JingleContent& content) {
        if (description.findAttribute("media").empty()) {
            return fail("<description/> without media");
        }
        if (!token(description, "media", content.media)) {
            return false;
        }
        for (const gloox::Tag* child : description.children()) {
            const std::string ns = namespace_of(*child);
            const std::string& name = child->name();
            if (ns == ns_rtp && name == "payload-type") {
                if (!read_payload(*child, content.payloads)) {
                    return false;
                }
            } else if (ns == ns_rtcp_fb && name == "rtcp-fb") {
                if (!read_feedback(*child, content.feedback)) {
                    return false;
                }
            } else if (ns == ns_rtp && name == "rtcp-mux") {
                content.rtcp_mux = true;
            } else if (ns == ns_rtp && name == "encryption") {
                if (!read_encryption(*child, content)) {
                    return false;
                }
            }
        }
        return true;
    }

    bool read_payload(const gloox::Tag& element, std::vector<translate::JinglePayload>& out) {
        translate::JinglePayload payload;
        const auto id = parse_number(element.findAttribute("id"), 0, 127);
        if (!id) {
            return fail("<payload-type/> without a valid id (0..127)");
        }
        payload.id = static_cast<unsigned>(*id);
        constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
        if (!token(element, "name", payload.name) ||
            !number(element, "clockrate", 0, u32, payload.clockrate) ||
            !number(element, "channels", 1, 255, payload.channels) ||
            !number(element, "ptime", 0, u32, payload.ptime) ||
            !number(element, "maxptime", 0, u32, payload.maxptime)) {
            return false;
        }
        for (const gloox::Tag* child : element.children()) {
            const std::string ns = namespace_of(*child);
            if (ns == ns_rtp && child->name() == "parameter") {
                std::string name;
                if (!token(*child, "name", name)) {
                    return false;
                }
                const std::string& value = child->findAttribute("value");
                if (!is_line_text(value)) {
                    return fail("<parameter/> has a control character in value");
                }
                if (!name.empty() || !value.empty()) {
                    payload.parameters.emplace_back(name, value);
                }
            } else if (ns == ns_rtcp_fb && child->name() == "rtcp-fb") {
                if (!read_feedback(*child, payload.feedback)) {
                    return false;
                }
            }
        }
        out.push_back(std::move(payload));
        return true;
    }

    // An <rtcp-fb/> without type says nothing and is skipped.
    bool read_feedback(const gloox::Tag& element, std::vector<translate::RtcpFeedback>& out) {
        translate::RtcpFeedback feedback;
        if (!token(element, "type", feedback.type) ||
            !token(element, "subtype", feedback.subtype)) {
            return false;
        }
        if (!feedback.type.empty()) {
            out.push_back(std::move(feedback));
        }
        return true;
    }

    bool read_encryption(const gloox::Tag& element, translate::JingleContent& content) {
        const std::string& required = element.findAttribute("required");
        if (required == "1" || required == "true") {
            content.crypto_required = true;
        } else if (!required.empty() && required != "0" && required != "false") {
            return fail("<encryption/> with a required that is not a boolean");
        }
        for (const gloox::Tag* child : element.children()) {
            if (child->name() != "crypto" || !is_in(*child, ns_rtp)) {
                continue;
            }
            translate::JingleCrypto crypto;
            const auto tag = parse_number(child->findAttribute("tag"), 0, 999'999'999);
            if (!tag) {
                return fail("<crypto/> without a valid tag");
            }
            crypto.tag = static_cast<unsigned>(*tag);
            if (child->findAttribute("crypto-suite").empty() ||
                child->findAttribute("key-params").empty()) {
                return fail("<crypto/> without crypto-suite or key-params");
            }
            if (!token(*child, "crypto-suite", crypto.suite) ||
                !token(*child, "key-params", crypto.key_params)) {
                return false;
            }
            crypto.session_params = child->findAttribute("session-params");
            if (!is_line_text(crypto.session_params)) {
                return fail("<crypto/> has a control character in session-params");
            }
            content.crypto.push_back(std::move(crypto));
        }
        return true;
    }

    bool read_transport(const gloox::Tag& element, translate::JingleTransport& transport) {
        const bool ice = is_in(element, ns_ice_udp);
        transport.kind =
            ice ? translate::TransportKind::ice_udp : translate::TransportKind::raw_udp;
        if (ice &&
            (!token(element, "ufrag", transport.ufrag) || !token(element, "pwd", transport.pwd))) {
            return false;
        }
        const std::string transport_ns = namespace_of(element);
        for (const gloox::Tag* child : element.children()) {
            if (child->name() == "candidate" && namespace_of(*child) == transport_ns) {
                if (!read_candidate(*child, ice, transport.candidates)) {
                    return false;
                }
            } else if (child->name() == "fingerprint" && is_in(*child, ns_dtls) &&
                       !transport.fingerprint) {
                translate::JingleFingerprint fingerprint;
                if (!token(*child, "hash", fingerprint.hash) ||
                    !token(*child, "setup", fingerprint.setup)) {
                    return false;
                }
                fingerprint.value = std::string(translate::trim_xml_space(child->cdata()));
                if (fingerprint.hash.empty() || fingerprint.value.empty()) {
                    return fail("<fingerprint/> without hash or value");
                }
                if (!is_token(fingerprint.value)) {
                    return fail("<fingerprint/> has white space or a control character");
                }
                transport.fingerprint = std::move(fingerprint);
            }
        }
        return true;
    }

    bool read_candidate(const gloox::Tag& element, bool ice,
                        std::vector<translate::JingleCandidate>& out) {
        translate::JingleCandidate candidate;
        constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
        if (element.findAttribute("ip").empty()) {
            return fail("<candidate/> without ip");
        }
        if (element.findAttribute("port").empty()) {
            return fail("<candidate/> without port");
        }
        if (!number(element, "component", 1, 256, candidate.component) ||
            !number(element, "generation", 0, u32, candidate.generation) ||
            !number(element, "port", 0, 65535, candidate.port) ||
            !token(element, "id", candidate.id) || !token(element, "ip", candidate.ip) ||
            !token(element, "type", candidate.type)) {
            return false;
        }
        if (ice && (!token(element, "foundation", candidate.foundation) ||
                    !number(element, "network", 0, u32, candidate.network) ||
                    !number(element, "priority", 0, u32, candidate.priority) ||
                    !token(element, "protocol", candidate.protocol) ||
                    !token(element, "rel-addr", candidate.rel_addr) ||
                    !number(element, "rel-port", 0, 65535, candidate.rel_port))) {
            return false;
        }
        out.push_back(std::move(candidate));
        return true;
    }

    JingleIq result_;
    std::string problem_;
};

void add_attribute(gloox::Tag* element, const std::string& name, const std::string& value) {
    if (!value.empty()) {
        element->addAttribute(name, value);
    }
}

void add_number(gloox::Tag* element, const std::string& name, std::uint64_t value) {
    element->addAttribute(name, std::to_string(value));
}

void write_feedback(gloox::Tag* parent, const std::vector<translate::RtcpFeedback>& feedback) {
    for (const translate::RtcpFeedback& fb : feedback) {
        auto* element = new gloox::Tag(parent, "rtcp-fb");
        element->setXmlns(ns_rtcp_fb);
        add_attribute(element, "type", fb.type);
        add_attribute(element, "subtype", fb.subtype);
    }
}

void write_payload(gloox::Tag* description, const translate::JinglePayload& payload) {
    auto* element = new gloox::Tag(description, "payload-type");
    add_number(element, "id", payload.id);
    add_attribute(element, "name", payload.name);
    if (payload.clockrate != 0) {
        add_number(element, "clockrate", payload.clockrate);
    }
    if (payload.channels != 1) {
        add_number(element, "channels", payload.channels);
    }
    if (payload.ptime) {
        add_number(element, "ptime", *payload.ptime);
    }
    if (payload.maxptime) {
        add_number(element, "maxptime", *payload.maxptime);
    }
    for (const auto& [name, value] : payload.parameters) {
        auto* parameter = new gloox::Tag(element, "parameter");
        add_attribute(parameter, "name", name);
        add_attribute(parameter, "value", value);
    }
    write_feedback(element, payload.feedback);
}

void write_description(gloox::Tag* content_element, const translate::JingleContent& content) {
    auto* description = new gloox::Tag(content_element, "description");
    description->setXmlns(ns_rtp);
    description->addAttribute("media", content.media);
    for (const translate::JinglePayload& payload : content.payloads) {
        write_payload(description, payload);
    }
    write_feedback(description, content.feedback);
    if (content.rtcp_mux) {
        new gloox::Tag(description, "rtcp-mux");
    }
    if (!content.crypto.empty() || content.crypto_required) {
        auto* encryption = new gloox::Tag(description, "encryption");
        if (content.crypto_required) {
            encryption->addAttribute("required", "1");
        }
        for (const translate::JingleCrypto& crypto : content.crypto) {
            auto* element = new gloox::Tag(encryption, "crypto");
            add_attribute(element, "crypto-suite", crypto.suite);
            add_attribute(element, "key-params", crypto.key_params);
            add_attribute(element, "session-params", crypto.session_params);
            add_number(element, "tag", crypto.tag);
        }
    }
}

void write_candidate(gloox::Tag* transport, const translate::JingleCandidate& candidate, bool ice) {
    auto* element = new gloox::Tag(transport, "candidate");
    add_number(element, "component", candidate.component);
    if (ice) {
        add_attribute(element, "foundation", candidate.foundation);
    }
    add_number(element, "generation", candidate.generation);
    add_attribute(element, "id", candidate.id);
    add_attribute(element, "ip", candidate.ip);
    if (ice) {
        add_number(element, "network", candidate.network);
    }
    add_number(element, "port", candidate.port);
    if (ice) {
        add_number(element, "priority", candidate.priority);
        add_attribute(element, "protocol", candidate.protocol);
    }
    add_attribute(element, "type", candidate.type);
    if (ice && !candidate.rel_addr.empty()) {
        add_attribute(element, "rel-addr", candidate.rel_addr);
    }
    if (ice && (!candidate.rel_addr.empty() || candidate.rel_port != 0)) {
        add_number(element, "rel-port", candidate.rel_port);
    }
}

void write_transport(gloox::Tag* content_element, const translate::JingleTransport& transport) {
    const bool ice = transport.kind == translate::TransportKind::ice_udp;
    auto* element = new gloox::Tag(content_element, "transport");
    element->setXmlns(ice ? ns_ice_udp : ns_raw_udp);
    if (ice) {
        add_attribute(element, "ufrag", transport.ufrag);
        add_attribute(element, "pwd", transport.pwd);
    }
    for (const translate::JingleCandidate& candidate : transport.candidates) {
        write_candidate(element, candidate, ice);
    }
    if (transport.fingerprint) {
        auto* fingerprint = new gloox::Tag(element, "fingerprint", transport.fingerprint->value);
        fingerprint->setXmlns(ns_dtls);
        add_attribute(fingerprint, "hash", transport.fingerprint->hash);
        add_attribute(fingerprint, "setup", transport.fingerprint->setup);
    }
}

void write_content(gloox::Tag* jingle, const translate::JingleContent& content) {
    auto* element = new gloox::Tag(jingle, "content");
    element->addAttribute("creator", content.creator.empty() ? "initiator" : content.creator);
    add_attribute(element, "name", content.name);
    if (content.senders != translate::Senders::both) {
        element->addAttribute("senders", std::string(to_string(content.senders)));
    }
    // A content without media is one of transport-info: its transport alone.
    if (!content.media.empty()) {
        write_description(element, content);
    }
    write_transport(element, content.transport);
}

} // namespace

std::string_view to_string(JingleAction action) {
    switch (action) {
    case JingleAction::session_initiate:
        return "session-initiate";
    case JingleAction::session_accept:
        return "session-accept";
    case JingleAction::session_info:
        return "session-info";
    case JingleAction::session_terminate:
        return "session-terminate";
    case JingleAction::transport_info:
        return "transport-info";
    case JingleAction::other:
        return {};
    }
    return {};
}

JingleAction parse_jingle_action(std::string_view name) {
    for (const JingleAction action :
         {JingleAction::session_initiate, JingleAction::session_accept, JingleAction::session_info,
          JingleAction::session_terminate, JingleAction::transport_info}) {
        if (to_string(action) == name) {
            return action;
        }
    }
    return JingleAction::other;
}

bool is_jingle_action(std::string_view name) {
    return one_of(defined_actions, name);
}

std::string_view to_string(JmiKind kind) {
    switch (kind) {
    case JmiKind::propose:
        return "propose";
    case JmiKind::retract:
        return "retract";
    case JmiKind::accept:
        return "accept";
    case JmiKind::proceed:
        return "proceed";
    case JmiKind::reject:
        return "reject";
    case JmiKind::ringing:
        return "ringing";
    case JmiKind::finish:
        return "finish";
    }
    return {};
}

std::optional<JmiKind> parse_jmi_kind(std::string_view name) {
    for (const JmiKind kind :
         {JmiKind::propose, JmiKind::retract, JmiKind::accept, JmiKind::proceed, JmiKind::reject,
          JmiKind::ringing, JmiKind::finish}) {
        if (to_string(kind) == name) {
            return kind;
        }
    }
    return std::nullopt;
}

std::optional<Expected<JingleIq, xmpp::StanzaError>> read_jingle(const gloox::Tag& iq) {
    for (const gloox::Tag* child : iq.children()) {
        if (child->name() == "jingle" && is_in(*child, ns_jingle)) {
            return JingleReader().read(*child);
        }
    }
    return std::nullopt;
}

gloox::Tag* make_jingle_iq(const std::string& from, const std::string& to, const std::string& id,
                           const JingleIq& jingle) {
    auto* iq = new gloox::Tag("iq");
    iq->addAttribute("type", "set");
    add_attribute(iq, "from", from);
    add_attribute(iq, "to", to);
    add_attribute(iq, "id", id);
    auto* element = new gloox::Tag(iq, "jingle");
    element->setXmlns(ns_jingle);
    add_attribute(element, "action",
                  jingle.action_name.empty() ? std::string(to_string(jingle.action))
                                             : jingle.action_name);
    add_attribute(element, "initiator", jingle.initiator);
    add_attribute(element, "responder", jingle.responder);
    add_attribute(element, "sid", jingle.sid);
    for (const translate::JingleContent& content : jingle.description.contents) {
        write_content(element, content);
    }
    if (!jingle.reason.empty()) {
        write_reason(element, jingle.reason, jingle.reason_text);
    }
    if (!jingle.info.empty()) {
        auto* info = new gloox::Tag(element, jingle.info);
        info->setXmlns(ns_rtp_info);
    }
    return iq;
}

gloox::Tag* make_jingle_error(const gloox::Tag& request, std::string_view domain,
                              const xmpp::StanzaError& error, std::string_view jingle_condition) {
    gloox::Tag* reply = xmpp::make_error_reply(request, domain, error);
    if (reply == nullptr || jingle_condition.empty()) {
        return reply;
    }
    if (gloox::Tag* element = reply->findChild("error"); element != nullptr) {
        auto* condition = new gloox::Tag(element, std::string(jingle_condition));
        condition->setXmlns(ns_jingle_errors);
    }
    return reply;
}

std::optional<JingleMessage> read_jingle_message(const gloox::Tag& message) {
    // Every message from XMPP comes through here: the name (a compare) goes before the
    // namespace (a walk up the tree that copies strings).
    for (const gloox::Tag* child : message.children()) {
        const auto kind = parse_jmi_kind(child->name());
        if (!kind || !is_in(*child, ns_jmi)) {
            continue;
        }
        JingleMessage jmi;
        jmi.kind = *kind;
        jmi.id = child->findAttribute("id");
        if (jmi.id.empty()) {
            return std::nullopt;
        }
        for (const gloox::Tag* part : child->children()) {
            if (jmi.kind == JmiKind::propose && part->name() == "description" &&
                is_in(*part, ns_rtp) && !part->findAttribute("media").empty()) {
                jmi.media.push_back(part->findAttribute("media"));
            } else if (part->name() == "reason" && is_in(*part, ns_jingle) && jmi.reason.empty() &&
                       jmi.reason_text.empty()) {
                read_reason(*part, jmi.reason, jmi.reason_text);
            }
        }
        return jmi;
    }
    return std::nullopt;
}

gloox::Tag* make_jingle_message(const std::string& from, const std::string& to,
                                const std::string& id, const JingleMessage& jmi) {
    auto* message = new gloox::Tag("message");
    message->addAttribute("type", "chat");
    add_attribute(message, "from", from);
    add_attribute(message, "to", to);
    add_attribute(message, "id", id);
    auto* element = new gloox::Tag(message, std::string(to_string(jmi.kind)));
    element->setXmlns(ns_jmi);
    add_attribute(element, "id", jmi.id);
    if (jmi.kind == JmiKind::propose) {
        for (const std::string& media : jmi.media) {
            auto* description = new gloox::Tag(element, "description");
            description->setXmlns(ns_rtp);
            add_attribute(description, "media", media);
        }
    }
    if (!jmi.reason.empty()) {
        write_reason(element, jmi.reason, jmi.reason_text)->setXmlns(ns_jingle);
    }
    auto* store = new gloox::Tag(message, "store");
    store->setXmlns(ns_hints);
    return message;
}

} // namespace xsgw::bridge
