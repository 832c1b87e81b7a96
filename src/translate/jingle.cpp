#include "xsgw/translate/jingle.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <climits>
#include <map>
#include <set>
#include <string>

namespace xsgw::translate {
namespace {

constexpr std::array<std::string_view, 6> rtp_protos = {
    "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"};
constexpr std::array<std::string_view, 4> setup_roles = {"actpass", "active", "passive",
                                                         "holdconn"};
constexpr std::array<std::string_view, 4> candidate_types = {"host", "srflx", "prflx", "relay"};
constexpr unsigned max_payload_id = 127;
constexpr unsigned max_component = 256;
// RFC 8840 §4.1.1: the m= port and c= of an ICE m-line without candidates yet.
constexpr std::uint16_t ice_placeholder_port = 9;
constexpr std::string_view ice_placeholder_address = "0.0.0.0";

struct StaticType {
    unsigned id;
    std::string_view name;
    std::uint32_t clockrate;
    std::uint32_t channels;
};

// RFC 3551 §6 tables 4 and 5.
constexpr std::array<StaticType, 24> static_types = {{
    {0, "PCMU", 8000, 1},   {3, "GSM", 8000, 1},    {4, "G723", 8000, 1},   {5, "DVI4", 8000, 1},
    {6, "DVI4", 16000, 1},  {7, "LPC", 8000, 1},    {8, "PCMA", 8000, 1},   {9, "G722", 8000, 1},
    {10, "L16", 44100, 2},  {11, "L16", 44100, 1},  {12, "QCELP", 8000, 1}, {13, "CN", 8000, 1},
    {14, "MPA", 90000, 1},  {15, "G728", 8000, 1},  {16, "DVI4", 11025, 1}, {17, "DVI4", 22050, 1},
    {18, "G729", 8000, 1},  {25, "CelB", 90000, 1}, {26, "JPEG", 90000, 1}, {28, "nv", 90000, 1},
    {31, "H261", 90000, 1}, {32, "MPV", 90000, 1},  {33, "MP2T", 90000, 1}, {34, "H263", 90000, 1},
}};

// ---------------------------------------------------------------------------
// Text

// Printable ASCII without spaces: safe as one SDP word and in XML.
bool is_token(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c > 0x20 && c < 0x7F;
    });
}

// Printable ASCII with inner spaces only: what trimming gives back unchanged.
bool is_text(std::string_view text) {
    return !text.empty() && text.front() != ' ' && text.back() != ' ' &&
           std::all_of(text.begin(), text.end(), [](char ch) {
               const auto c = static_cast<unsigned char>(ch);
               return c >= 0x20 && c < 0x7F;
           });
}

// An address in c=, a=rtcp, a=candidate or o=: a token without the '/' that starts a
// multicast TTL or address count.
bool is_address(std::string_view text) {
    return is_token(text) && text.find('/') == std::string_view::npos;
}

// A value from the other side as it may appear in an error's `what`, which can end up
// in a log line or a reason text: printable ASCII, at most 64 bytes.
std::string printable(std::string_view text) {
    constexpr std::size_t limit = 64;
    std::string out;
    for (const char ch : text.substr(0, limit)) {
        const auto c = static_cast<unsigned char>(ch);
        out += (c >= 0x20 && c < 0x7F) ? ch : '?';
    }
    if (text.size() > limit) {
        out += "...";
    }
    return out;
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

template <std::size_t N>
bool one_of(std::string_view value, const std::array<std::string_view, N>& set) {
    return std::find(set.begin(), set.end(), value) != set.end();
}

bool is_rtp_proto(std::string_view proto) {
    return std::any_of(rtp_protos.begin(), rtp_protos.end(),
                       [&](std::string_view p) { return iequals(p, proto); });
}

// The words of a line, split on runs of spaces and tabs.
std::vector<std::string_view> words(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_blank(text[i])) {
            ++i;
        }
        const auto start = i;
        while (i < text.size() && !is_blank(text[i])) {
            ++i;
        }
        if (i > start) {
            out.push_back(text.substr(start, i - start));
        }
    }
    return out;
}

// The first word and the rest of the text after it, trimmed.
std::pair<std::string_view, std::string_view> first_word(std::string_view text) {
    text = trim(text);
    std::size_t end = 0;
    while (end < text.size() && !is_blank(text[end])) {
        ++end;
    }
    return {text.substr(0, end), trim(text.substr(end))};
}

// A decimal number up to max: digits only (at most 20 of them).
std::optional<std::uint64_t> parse_number(std::string_view text, std::uint64_t max) {
    if (text.empty() || text.size() > 20) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (max - digit) / 10) {
            return std::nullopt;
        }
        value = value * 10 + digit;
    }
    return value;
}

std::string_view address_type(std::string_view address) {
    return address.find(':') != std::string_view::npos ? "IP6" : "IP4";
}

// ---------------------------------------------------------------------------
// Errors

CallMappingError malformed(std::string what) {
    return {400, "failed-application", "malformed SDP: " + std::move(what)};
}

CallMappingError unusable(std::string what) {
    return {488, "unsupported-applications", std::move(what)};
}

CallMappingError cannot_write(std::string what) {
    return {488, "failed-application", std::move(what)};
}

// ---------------------------------------------------------------------------
// Reading

// What may be given at session level and inherited by every m-line.
struct Inheritable {
    std::optional<std::string_view> connection; ///< c= address
    std::optional<std::string_view> ufrag;
    std::optional<std::string_view> pwd;
    std::optional<std::pair<std::string_view, std::string_view>> fingerprint;
    std::optional<std::string_view> setup;
    std::optional<std::string_view> direction;
};

struct MediaSection {
    std::string_view media;
    std::uint16_t port = 0;
    std::string_view proto;
    std::vector<std::string_view> fmts;
    std::string_view line; ///< the m= value, for the refused text
    Inheritable own;
    std::vector<std::string_view> attributes; ///< every a= value but the inheritable ones
};

// c=IN IP4 <address>[/ttl[/n]]: the address, or nothing when the line is not one.
std::optional<std::string_view> connection_address(std::string_view value) {
    const auto w = words(value);
    if (w.size() < 3 || w[0] != "IN" || (w[1] != "IP4" && w[1] != "IP6")) {
        return std::nullopt;
    }
    const auto address = w[2].substr(0, w[2].find('/'));
    if (!is_address(address)) {
        return std::nullopt;
    }
    return address;
}

// An a= line that may stand at session level too; false when it is another one.
bool read_inheritable(std::string_view name, std::string_view value, Inheritable& into) {
    if (name == "ice-ufrag" || name == "ice-pwd") {
        const auto v = trim(value);
        auto& slot = name == "ice-ufrag" ? into.ufrag : into.pwd;
        if (!slot && is_token(v)) {
            slot = v;
        }
        return true;
    }
    if (name == "fingerprint") {
        const auto [hash, rest] = first_word(value);
        if (!into.fingerprint && is_token(hash) && is_token(rest)) {
            into.fingerprint = {hash, rest};
        }
        return true;
    }
    if (name == "setup") {
        const auto v = trim(value);
        if (!into.setup && one_of(v, setup_roles)) {
            into.setup = v;
        }
        return true;
    }
    if (value.empty() &&
        (name == "sendrecv" || name == "sendonly" || name == "recvonly" || name == "inactive")) {
        if (!into.direction) {
            into.direction = name;
        }
        return true;
    }
    return false;
}

Senders senders_for(std::string_view direction, SdpAuthor author) {
    const bool by_initiator = author == SdpAuthor::initiator;
    if (direction == "sendonly") {
        return by_initiator ? Senders::initiator : Senders::responder;
    }
    if (direction == "recvonly") {
        return by_initiator ? Senders::responder : Senders::initiator;
    }
    if (direction == "inactive") {
        return Senders::none;
    }
    return Senders::both;
}

std::string_view direction_for(Senders senders, SdpAuthor author) {
    const bool by_initiator = author == SdpAuthor::initiator;
    switch (senders) {
    case Senders::initiator:
        return by_initiator ? "sendonly" : "recvonly";
    case Senders::responder:
        return by_initiator ? "recvonly" : "sendonly";
    case Senders::none:
        return "inactive";
    case Senders::both:
        break;
    }
    return "sendrecv";
}

// a=fmtp parameters (see Decisions).
std::vector<std::pair<std::string, std::string>> read_parameters(std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    while (true) {
        const auto end = text.find(';');
        const auto part = trim(text.substr(0, end));
        if (!part.empty()) {
            const auto eq = part.find('=');
            if (eq == std::string_view::npos) {
                if (is_text(part)) {
                    out.emplace_back(std::string(), std::string(part));
                }
            } else {
                const auto name = trim(part.substr(0, eq));
                const auto value = trim(part.substr(eq + 1));
                if (is_text(name) && (value.empty() || is_text(value))) {
                    out.emplace_back(std::string(name), std::string(value));
                }
            }
        }
        if (end == std::string_view::npos) {
            break;
        }
        text.remove_prefix(end + 1);
    }
    return out;
}

// a=rtcp-fb value after the payload type.
std::optional<RtcpFeedback> read_feedback(std::string_view text) {
    const auto [type, rest] = first_word(text);
    if (!is_token(type) || (!rest.empty() && !is_text(rest))) {
        return std::nullopt;
    }
    return RtcpFeedback{std::string(type), std::string(rest)};
}

std::optional<JingleCrypto> read_crypto(std::string_view text) {
    const auto [tag_text, rest] = first_word(text);
    const auto [suite, rest2] = first_word(rest);
    const auto [key, session] = first_word(rest2);
    const auto tag = parse_number(tag_text, 999999999);
    if (!tag || !is_token(suite) || !is_token(key) || (!session.empty() && !is_text(session))) {
        return std::nullopt;
    }
    return JingleCrypto{static_cast<unsigned>(*tag), std::string(suite), std::string(key),
                        std::string(session)};
}

// a=candidate (RFC 8839 §5.1); nothing for what we do not keep.
std::optional<JingleCandidate> read_candidate(std::string_view text) {
    const auto w = words(text);
    if (w.size() < 8 || w[6] != "typ") {
        return std::nullopt;
    }
    const auto component = parse_number(w[1], max_component);
    const auto priority = parse_number(w[3], UINT32_MAX);
    const auto port = parse_number(w[5], UINT16_MAX);
    if (!is_token(w[0]) || !component || *component == 0 || !iequals(w[2], "udp") || !priority ||
        !is_address(w[4]) || !port || *port == 0 || !one_of(w[7], candidate_types)) {
        return std::nullopt;
    }
    JingleCandidate c;
    c.foundation = std::string(w[0]);
    c.component = static_cast<unsigned>(*component);
    c.priority = static_cast<std::uint32_t>(*priority);
    c.ip = std::string(w[4]);
    c.port = static_cast<std::uint16_t>(*port);
    c.type = std::string(w[7]);
    std::optional<std::uint16_t> rel_port;
    for (std::size_t i = 8; i + 1 < w.size(); i += 2) {
        const auto key = w[i];
        const auto value = w[i + 1];
        if (key == "raddr" && is_address(value)) {
            c.rel_addr = std::string(value);
        } else if (key == "rport") {
            if (const auto n = parse_number(value, UINT16_MAX)) {
                rel_port = static_cast<std::uint16_t>(*n);
            }
        } else if (key == "generation") {
            if (const auto n = parse_number(value, UINT_MAX)) {
                c.generation = static_cast<unsigned>(*n);
            }
        } else if (key == "network-id") {
            if (const auto n = parse_number(value, UINT_MAX)) {
                c.network = static_cast<unsigned>(*n);
            }
        }
    }
    if (!c.rel_addr.empty()) {
        c.rel_port = rel_port.value_or(0);
    }
    return c;
}

// The value of an a= line: name and value split at the first ':'.
std::pair<std::string_view, std::string_view> attribute(std::string_view text) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return {text, {}};
    }
    return {text.substr(0, colon), text.substr(colon + 1)};
}

// "<pt> <rest>" of a=rtpmap / a=fmtp / a=rtcp-fb.
std::pair<std::string_view, std::string_view> payload_attribute(std::string_view value) {
    return first_word(value);
}

std::string refused_line(const MediaSection& m) {
    std::string out = "m=";
    out += m.media;
    out += " 0 ";
    out += m.proto;
    for (const auto fmt : m.fmts) {
        out += ' ';
        out += fmt;
    }
    return out;
}

// The payloads of an m-line (see Decisions); empty when none is usable.
std::vector<JinglePayload> read_payloads(const MediaSection& m) {
    std::vector<JinglePayload> payloads;
    std::bitset<max_payload_id + 1> listed;
    for (const auto fmt : m.fmts) {
        const auto id = parse_number(fmt, max_payload_id);
        if (!id || listed.test(*id)) {
            continue;
        }
        listed.set(*id);
        JinglePayload p;
        p.id = static_cast<unsigned>(*id);
        payloads.push_back(std::move(p));
    }
    const auto find = [&](std::string_view pt) -> JinglePayload* {
        const auto id = parse_number(pt, max_payload_id);
        if (!id || !listed.test(*id)) {
            return nullptr;
        }
        for (auto& p : payloads) {
            if (p.id == *id) {
                return &p;
            }
        }
        return nullptr;
    };
    std::bitset<max_payload_id + 1> mapped;
    std::bitset<max_payload_id + 1> with_fmtp;
    std::optional<unsigned> ptime;
    std::optional<unsigned> maxptime;
    for (const auto a : m.attributes) {
        const auto [name, value] = attribute(a);
        if (name == "rtpmap") {
            const auto [pt, map] = payload_attribute(value);
            JinglePayload* p = find(pt);
            if (p == nullptr || mapped.test(p->id)) {
                continue;
            }
            const auto slash = map.find('/');
            if (slash == std::string_view::npos) {
                continue;
            }
            const auto encoding = map.substr(0, slash);
            auto rest = map.substr(slash + 1);
            const auto slash2 = rest.find('/');
            const auto clock = parse_number(rest.substr(0, slash2), UINT32_MAX);
            std::optional<std::uint64_t> channels = 1;
            if (slash2 != std::string_view::npos) {
                channels = parse_number(rest.substr(slash2 + 1), UINT32_MAX);
            }
            if (!is_token(encoding) || !clock || *clock == 0 || !channels || *channels == 0) {
                continue;
            }
            mapped.set(p->id);
            p->name = std::string(encoding);
            p->clockrate = static_cast<std::uint32_t>(*clock);
            p->channels = static_cast<std::uint32_t>(*channels);
        } else if (name == "fmtp") {
            const auto [pt, params] = payload_attribute(value);
            JinglePayload* p = find(pt);
            if (p == nullptr || with_fmtp.test(p->id)) {
                continue;
            }
            with_fmtp.set(p->id);
            p->parameters = read_parameters(params);
        } else if (name == "rtcp-fb") {
            const auto [pt, fb] = payload_attribute(value);
            if (pt == "*") {
                continue; // content feedback: read_content
            }
            if (JinglePayload* p = find(pt)) {
                if (auto f = read_feedback(fb)) {
                    p->feedback.push_back(std::move(*f));
                }
            }
        } else if (name == "ptime" || name == "maxptime") {
            auto& slot = name == "ptime" ? ptime : maxptime;
            const auto n = parse_number(trim(value), UINT_MAX);
            if (!slot && n) {
                slot = static_cast<unsigned>(*n);
            }
        }
    }
    std::vector<JinglePayload> out;
    for (auto& p : payloads) {
        if (!mapped.test(p.id)) {
            const auto fixed = static_payload_type(p.id);
            if (!fixed) {
                continue;
            }
            p.name = fixed->name;
            p.clockrate = fixed->clockrate;
            p.channels = fixed->channels;
        }
        p.ptime = ptime;
        p.maxptime = maxptime;
        out.push_back(std::move(p));
    }
    return out;
}

struct ReadContent {
    JingleContent content;
    std::optional<std::string_view> mid;
    bool ice = false;
};

// A usable m-line as a content, names and candidate ids not yet given; nothing
// when the m-line is refused.
std::optional<ReadContent> read_content(const MediaSection& m, const Inheritable& session,
                                        SdpAuthor author) {
    if ((m.media != "audio" && m.media != "video") || !is_rtp_proto(m.proto) || m.port == 0) {
        return std::nullopt;
    }
    ReadContent out;
    JingleContent& c = out.content;
    c.media = std::string(m.media);
    c.payloads = read_payloads(m);
    if (c.payloads.empty()) {
        return std::nullopt;
    }

    const auto pick = [](const auto& own, const auto& inherited) { return own ? own : inherited; };
    const auto connection = pick(m.own.connection, session.connection);
    const auto ufrag = pick(m.own.ufrag, session.ufrag);
    const auto pwd = pick(m.own.pwd, session.pwd);
    const auto fingerprint = pick(m.own.fingerprint, session.fingerprint);
    const auto setup = pick(m.own.setup, session.setup);
    const auto direction = pick(m.own.direction, session.direction);
    c.senders = senders_for(direction.value_or("sendrecv"), author);

    std::optional<std::pair<std::uint16_t, std::optional<std::string_view>>> rtcp;
    for (const auto a : m.attributes) {
        const auto [name, value] = attribute(a);
        if (name == "rtcp-fb") {
            const auto [pt, fb] = payload_attribute(value);
            if (pt != "*") {
                continue;
            }
            if (auto f = read_feedback(fb)) {
                c.feedback.push_back(std::move(*f));
            }
        } else if (name == "crypto") {
            if (auto k = read_crypto(value)) {
                c.crypto.push_back(std::move(*k));
            }
        } else if (name == "rtcp-mux" && value.empty()) {
            c.rtcp_mux = true;
        } else if (name == "mid") {
            const auto v = trim(value);
            if (!out.mid && is_token(v)) {
                out.mid = v;
            }
        } else if (name == "candidate") {
            if (auto k = read_candidate(value)) {
                c.transport.candidates.push_back(std::move(*k));
            }
        } else if (name == "rtcp" && !rtcp) {
            const auto w = words(value);
            const auto port = w.empty() ? std::nullopt : parse_number(w[0], UINT16_MAX);
            if (!port || *port == 0) {
                continue;
            }
            std::optional<std::string_view> address;
            if (w.size() >= 4 && w[1] == "IN" && is_address(w[3])) {
                address = w[3];
            }
            rtcp = {static_cast<std::uint16_t>(*port), address};
        }
    }
    // With a fingerprint DTLS keys the media whatever the proto says (see Decisions).
    c.crypto_required = !c.crypto.empty() && !fingerprint &&
                        (iequals(m.proto, "RTP/SAVP") || iequals(m.proto, "RTP/SAVPF"));
    if (fingerprint) {
        c.transport.fingerprint = JingleFingerprint{std::string(fingerprint->first),
                                                    std::string(setup.value_or("actpass")),
                                                    std::string(fingerprint->second)};
    }

    if (ufrag) {
        out.ice = true;
        c.transport.kind = TransportKind::ice_udp;
        c.transport.ufrag = std::string(*ufrag);
        c.transport.pwd = std::string(pwd.value_or(""));
        return out;
    }
    c.transport.kind = TransportKind::raw_udp;
    c.transport.candidates.clear();
    if (!connection) {
        return std::nullopt; // no address to send the media to
    }
    JingleCandidate rtp;
    rtp.component = 1;
    rtp.ip = std::string(*connection);
    rtp.port = m.port;
    c.transport.candidates.push_back(rtp);
    if (!c.rtcp_mux) {
        JingleCandidate control;
        control.component = 2;
        if (rtcp) {
            control.port = rtcp->first;
            control.ip = std::string(rtcp->second.value_or(*connection));
            c.transport.candidates.push_back(std::move(control));
        } else if (m.port < UINT16_MAX) {
            control.port = static_cast<std::uint16_t>(m.port + 1);
            control.ip = rtp.ip;
            c.transport.candidates.push_back(std::move(control));
        }
    }
    return out;
}

// m=<media> <port>[/<count>] <proto> <fmt>...
std::optional<MediaSection> read_media_line(std::string_view value) {
    const auto w = words(value);
    if (w.size() < 4) {
        return std::nullopt;
    }
    MediaSection m;
    m.media = w[0];
    const auto port = parse_number(w[1].substr(0, w[1].find('/')), UINT16_MAX);
    if (!port) {
        return std::nullopt;
    }
    if (const auto slash = w[1].find('/'); slash != std::string_view::npos) {
        const auto count = parse_number(w[1].substr(slash + 1), UINT16_MAX);
        if (!count) {
            return std::nullopt;
        }
    }
    m.port = static_cast<std::uint16_t>(*port);
    m.proto = w[2];
    m.fmts.assign(w.begin() + 3, w.end());
    m.line = value;
    if (!is_token(m.media) || !is_token(m.proto) ||
        !std::all_of(m.fmts.begin(), m.fmts.end(), is_token)) {
        return std::nullopt;
    }
    return m;
}

// ---------------------------------------------------------------------------
// Writing

void add_line(std::string& out, std::string_view text) {
    out += text;
    out += "\r\n";
}

bool writable_parameter(const std::pair<std::string, std::string>& p) {
    const auto& [name, value] = p;
    if (name.empty()) {
        return is_text(value) && value.find_first_of("=;") == std::string::npos;
    }
    return is_text(name) && name.find_first_of("=;") == std::string::npos &&
           (value.empty() || (is_text(value) && value.find(';') == std::string::npos));
}

bool writable_feedback(const RtcpFeedback& f) {
    return is_token(f.type) && (f.subtype.empty() || is_text(f.subtype));
}

bool writable_crypto(const JingleCrypto& k) {
    return k.tag <= 999999999 && is_token(k.suite) && is_token(k.key_params) &&
           (k.session_params.empty() || is_text(k.session_params));
}

bool writable_ice_candidate(const JingleCandidate& c) {
    return c.component >= 1 && c.component <= max_component && is_token(c.foundation) &&
           is_address(c.ip) && c.port != 0 && iequals(c.protocol, "udp") &&
           one_of(c.type, candidate_types) && (c.rel_addr.empty() || is_address(c.rel_addr));
}

bool writable_raw_candidate(const JingleCandidate& c) {
    return is_address(c.ip) && c.port != 0;
}

int type_rank(std::string_view type) {
    if (type == "relay") {
        return 0;
    }
    if (type == "srflx" || type == "prflx") {
        return 1;
    }
    return 2;
}

// The best candidate of a component (see Decisions); type: only that type's.
const JingleCandidate* default_candidate(const std::vector<JingleCandidate>& candidates,
                                         unsigned component,
                                         std::optional<std::string_view> type = std::nullopt) {
    const JingleCandidate* best = nullptr;
    for (const auto& c : candidates) {
        if (c.component != component || !writable_ice_candidate(c)) {
            continue;
        }
        if (type && c.type != *type) {
            continue;
        }
        if (best == nullptr || type_rank(c.type) < type_rank(best->type) ||
            (type_rank(c.type) == type_rank(best->type) && c.priority > best->priority)) {
            best = &c;
        }
    }
    return best;
}

// The payloads as they can be written: names and clocks filled from RFC 3551.
std::vector<JinglePayload> writable_payloads(const std::vector<JinglePayload>& payloads) {
    std::vector<JinglePayload> out;
    std::bitset<max_payload_id + 1> seen;
    for (const auto& p : payloads) {
        if (p.id > max_payload_id || seen.test(p.id)) {
            continue;
        }
        JinglePayload q = p;
        const auto fixed = static_payload_type(p.id);
        if (q.name.empty() && fixed) {
            q.name = fixed->name;
        }
        if (q.clockrate == 0 && fixed && iequals(q.name, fixed->name)) {
            q.clockrate = fixed->clockrate;
        }
        if (!is_token(q.name) || q.name.find('/') != std::string::npos || q.clockrate == 0) {
            continue;
        }
        seen.set(p.id);
        out.push_back(std::move(q));
    }
    return out;
}

std::string rtcp_attribute(const JingleCandidate& c, std::string_view rtp_address) {
    std::string line = "a=rtcp:" + std::to_string(c.port);
    if (c.ip != rtp_address) {
        line += " IN ";
        line += address_type(c.ip);
        line += ' ';
        line += c.ip;
    }
    return line;
}

struct MediaText {
    std::string text;
    std::string address; ///< its c= address
};

// One content as an m-section; proto: the offer's when answering.
Expected<MediaText, CallMappingError> write_content(const JingleContent& c, SdpAuthor author,
                                                    std::optional<std::string_view> proto) {
    if (!is_token(c.name)) {
        return cannot_write("content name '" + printable(c.name) + "' is not a token");
    }
    if (c.media != "audio" && c.media != "video") {
        return cannot_write("content " + c.name + ": media '" + printable(c.media) +
                            "' is not audio or video");
    }
    const auto payloads = writable_payloads(c.payloads);
    if (payloads.empty()) {
        return cannot_write("content " + c.name + ": no usable payload type");
    }

    const auto& t = c.transport;
    std::optional<JingleFingerprint> fingerprint;
    if (t.fingerprint) {
        if (!is_token(t.fingerprint->hash) || !is_token(t.fingerprint->value)) {
            return cannot_write("content " + c.name + ": fingerprint is not writable");
        }
        fingerprint = t.fingerprint;
    }
    std::vector<const JingleCrypto*> crypto;
    for (const auto& k : c.crypto) {
        if (writable_crypto(k)) {
            crypto.push_back(&k);
        }
    }
    const bool srtp_required = c.crypto_required && !fingerprint;
    if (srtp_required && crypto.empty()) {
        return cannot_write("content " + c.name + ": encryption required without usable crypto");
    }

    // Address and ports.
    std::string address;
    std::uint16_t port = 0;
    std::optional<std::string> rtcp;
    if (t.kind == TransportKind::ice_udp) {
        if (!is_token(t.ufrag) || !is_token(t.pwd)) {
            return cannot_write("content " + c.name + ": ICE without a usable ufrag and pwd");
        }
        if (const JingleCandidate* rtp = default_candidate(t.candidates, 1)) {
            address = rtp->ip;
            port = rtp->port;
            if (!c.rtcp_mux) {
                if (const JingleCandidate* control =
                        default_candidate(t.candidates, 2, std::string_view(rtp->type))) {
                    rtcp = rtcp_attribute(*control, address);
                }
            }
        } else {
            address = ice_placeholder_address;
            port = ice_placeholder_port;
        }
    } else {
        const auto first = [&](unsigned component) -> const JingleCandidate* {
            for (const auto& k : t.candidates) {
                if (k.component == component && writable_raw_candidate(k)) {
                    return &k;
                }
            }
            return nullptr;
        };
        const JingleCandidate* rtp = first(1);
        if (rtp == nullptr) {
            return cannot_write("content " + c.name + ": no usable raw UDP candidate");
        }
        address = rtp->ip;
        port = rtp->port;
        if (!c.rtcp_mux) {
            if (const JingleCandidate* control = first(2)) {
                rtcp = rtcp_attribute(*control, address);
            }
        }
    }

    bool feedback = !c.feedback.empty();
    for (const auto& p : payloads) {
        feedback = feedback || !p.feedback.empty();
    }
    std::string chosen_proto;
    if (proto) {
        chosen_proto = std::string(*proto);
    } else if (fingerprint) {
        chosen_proto = "UDP/TLS/RTP/SAVPF";
    } else {
        chosen_proto = srtp_required ? "RTP/SAVP" : "RTP/AVP";
        if (feedback) {
            chosen_proto += 'F';
        }
    }

    MediaText out;
    out.address = address;
    std::string& s = out.text;
    std::string m = "m=" + c.media + ' ' + std::to_string(port) + ' ' + chosen_proto;
    for (const auto& p : payloads) {
        m += ' ' + std::to_string(p.id);
    }
    add_line(s, m);
    add_line(s, std::string("c=IN ") + std::string(address_type(address)) + ' ' + address);
    if (rtcp) {
        add_line(s, *rtcp);
    }
    add_line(s, "a=mid:" + c.name);
    add_line(s, std::string("a=") + std::string(direction_for(c.senders, author)));
    if (c.rtcp_mux) {
        add_line(s, "a=rtcp-mux");
    }
    if (t.kind == TransportKind::ice_udp) {
        add_line(s, "a=ice-ufrag:" + t.ufrag);
        add_line(s, "a=ice-pwd:" + t.pwd);
    }
    if (fingerprint) {
        add_line(s, "a=fingerprint:" + fingerprint->hash + ' ' + fingerprint->value);
        if (one_of(fingerprint->setup, setup_roles)) {
            add_line(s, "a=setup:" + fingerprint->setup);
        }
    }
    for (const JingleCrypto* k : crypto) {
        std::string line =
            "a=crypto:" + std::to_string(k->tag) + ' ' + k->suite + ' ' + k->key_params;
        if (!k->session_params.empty()) {
            line += ' ' + k->session_params;
        }
        add_line(s, line);
    }
    std::optional<unsigned> ptime;
    std::optional<unsigned> maxptime;
    for (const auto& p : payloads) {
        const auto id = std::to_string(p.id);
        std::string map = "a=rtpmap:" + id + ' ' + p.name + '/' + std::to_string(p.clockrate);
        if (p.channels > 1) {
            map += '/' + std::to_string(p.channels);
        }
        add_line(s, map);
        std::string fmtp;
        for (const auto& param : p.parameters) {
            if (!writable_parameter(param)) {
                continue;
            }
            if (!fmtp.empty()) {
                fmtp += ';';
            }
            fmtp += param.first.empty() ? param.second : param.first + '=' + param.second;
        }
        if (!fmtp.empty()) {
            add_line(s, "a=fmtp:" + id + ' ' + fmtp);
        }
        for (const auto& f : p.feedback) {
            if (!writable_feedback(f)) {
                continue;
            }
            add_line(s,
                     "a=rtcp-fb:" + id + ' ' + f.type + (f.subtype.empty() ? "" : " ") + f.subtype);
        }
        if (!ptime) {
            ptime = p.ptime;
        }
        if (!maxptime) {
            maxptime = p.maxptime;
        }
    }
    for (const auto& f : c.feedback) {
        if (!writable_feedback(f)) {
            continue;
        }
        add_line(s, "a=rtcp-fb:* " + f.type + (f.subtype.empty() ? "" : " ") + f.subtype);
    }
    if (ptime) {
        add_line(s, "a=ptime:" + std::to_string(*ptime));
    }
    if (maxptime) {
        add_line(s, "a=maxptime:" + std::to_string(*maxptime));
    }
    if (t.kind == TransportKind::ice_udp) {
        for (const auto& k : t.candidates) {
            if (!writable_ice_candidate(k)) {
                continue;
            }
            std::string line = "a=candidate:" + k.foundation + ' ' + std::to_string(k.component) +
                               " udp " + std::to_string(k.priority) + ' ' + k.ip + ' ' +
                               std::to_string(k.port) + " typ " + k.type;
            if (!k.rel_addr.empty()) {
                line += " raddr " + k.rel_addr + " rport " + std::to_string(k.rel_port);
            }
            line += " generation " + std::to_string(k.generation);
            if (k.network != 0) {
                line += " network-id " + std::to_string(k.network);
            }
            add_line(s, line);
        }
    }
    return out;
}

// The proto of a slot's refused line when it is an RTP one.
std::optional<std::string_view> offered_proto(std::string_view refused) {
    const auto w = words(refused);
    if (w.size() < 3 || !is_rtp_proto(w[2])) {
        return std::nullopt;
    }
    return w[2];
}

bool valid_refused_line(std::string_view line) {
    if (line.substr(0, 2) != "m=" || !is_text(line)) {
        return false;
    }
    const auto w = words(line.substr(2));
    return w.size() >= 4 && w[1] == "0";
}

} // namespace

std::optional<JinglePayload> static_payload_type(unsigned id) {
    for (const auto& t : static_types) {
        if (t.id == id) {
            JinglePayload p;
            p.id = t.id;
            p.name = std::string(t.name);
            p.clockrate = t.clockrate;
            p.channels = t.channels;
            return p;
        }
    }
    return std::nullopt;
}

Expected<SdpSession, CallMappingError> sdp_to_jingle(std::string_view sdp, SdpAuthor author,
                                                     std::size_t max_bytes) {
    if (sdp.size() > max_bytes) {
        return malformed("body of " + std::to_string(sdp.size()) + " bytes is over " +
                         std::to_string(max_bytes));
    }
    if (sdp.find('\0') != std::string_view::npos) {
        return malformed("NUL byte");
    }

    SdpSession session;
    Inheritable session_level;
    std::vector<MediaSection> media;
    bool first = true;
    std::size_t line_number = 0;
    while (!sdp.empty()) {
        const auto end = sdp.find('\n');
        auto line = sdp.substr(0, end);
        sdp.remove_prefix(end == std::string_view::npos ? sdp.size() : end + 1);
        ++line_number;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        while (!line.empty() && is_blank(line.back())) {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            continue;
        }
        const auto where = " on line " + std::to_string(line_number);
        if (line.find('\r') != std::string_view::npos) {
            return malformed("CR inside a line" + where);
        }
        if (line.size() < 2 || line[1] != '=') {
            return malformed("not a <type>= line" + where);
        }
        const char type = line[0];
        const auto value = line.substr(2);
        if (first) {
            if (type != 'v' || value != "0") {
                return malformed("does not start with v=0");
            }
            first = false;
            continue;
        }
        if (type == 'm') {
            auto m = read_media_line(value);
            if (!m) {
                return malformed("bad m= line" + where);
            }
            media.push_back(std::move(*m));
            continue;
        }
        Inheritable& level = media.empty() ? session_level : media.back().own;
        if (type == 'o' && media.empty()) {
            const auto w = words(value);
            if (w.size() == 6 && is_address(w[5])) {
                session.origin_address = std::string(w[5]);
            }
        } else if (type == 'c') {
            if (!level.connection) {
                level.connection = connection_address(value);
            }
        } else if (type == 'a') {
            const auto [name, attr_value] = attribute(value);
            if (!read_inheritable(name, attr_value, level) && !media.empty()) {
                media.back().attributes.push_back(value);
            }
        }
    }
    if (first) {
        return malformed("empty body");
    }

    std::vector<std::optional<ReadContent>> contents;
    contents.reserve(media.size());
    for (const auto& m : media) {
        contents.push_back(read_content(m, session_level, author));
    }
    if (std::none_of(contents.begin(), contents.end(),
                     [](const auto& c) { return c.has_value(); })) {
        return unusable("no usable audio or video m-line");
    }

    // Names: the a=mid values first, then made up ones that do not clash.
    std::set<std::string, std::less<>> taken;
    for (const auto& c : contents) {
        if (c && c->mid && !taken.insert(std::string(*c->mid)).second) {
            return malformed("a=mid:" + printable(*c->mid) + " on two m-lines");
        }
    }
    unsigned next_audio = 2;
    unsigned next_video = 2;
    for (std::size_t i = 0; i < media.size(); ++i) {
        SdpSlot slot;
        slot.refused = refused_line(media[i]);
        if (!contents[i]) {
            session.layout.push_back(std::move(slot));
            continue;
        }
        ReadContent& c = *contents[i];
        std::string name;
        if (c.mid) {
            name = std::string(*c.mid);
        } else {
            name = c.content.media;
            unsigned& next = c.content.media == "audio" ? next_audio : next_video;
            while (taken.count(name) != 0) {
                name = c.content.media + '-' + std::to_string(next++);
            }
            taken.insert(name);
        }
        c.content.name = name;
        slot.content = name;
        unsigned n = 0;
        for (auto& k : c.content.transport.candidates) {
            k.id = name + '-' + std::to_string(++n);
        }
        session.description.contents.push_back(std::move(c.content));
        session.layout.push_back(std::move(slot));
    }
    return session;
}

Expected<std::string, CallMappingError> jingle_to_sdp(const JingleDescription& description,
                                                      SdpAuthor author, const SdpOrigin& origin,
                                                      const std::vector<SdpSlot>* answer_to) {
    if (description.contents.empty()) {
        return cannot_write("no content");
    }
    std::set<std::string_view> names;
    for (const auto& c : description.contents) {
        if (!names.insert(c.name).second) {
            return cannot_write("content name " + printable(c.name) + " twice");
        }
    }

    std::vector<std::string> sections;
    std::string session_address;
    const auto add_content =
        [&](const JingleContent& c,
            std::optional<std::string_view> proto) -> std::optional<CallMappingError> {
        auto m = write_content(c, author, proto);
        if (!m) {
            return m.error();
        }
        if (session_address.empty()) {
            session_address = m->address;
        }
        sections.push_back(std::move(m->text));
        return std::nullopt;
    };
    if (answer_to == nullptr) {
        for (const auto& c : description.contents) {
            if (auto error = add_content(c, std::nullopt)) {
                return *error;
            }
        }
    } else {
        std::map<std::string_view, const JingleContent*> by_name;
        for (const auto& c : description.contents) {
            by_name.emplace(c.name, &c);
        }
        std::set<std::string_view> used;
        for (const auto& slot : *answer_to) {
            const auto found = by_name.find(slot.content);
            if (!slot.content.empty() && found != by_name.end() &&
                used.insert(slot.content).second) {
                if (auto error = add_content(*found->second, offered_proto(slot.refused))) {
                    return *error;
                }
            } else {
                sections.push_back(
                    (valid_refused_line(slot.refused) ? slot.refused : "m=audio 0 RTP/AVP 0") +
                    "\r\n");
            }
        }
        if (used.empty()) {
            return cannot_write("no content answers an m-line of the offer");
        }
    }

    const std::string origin_address =
        is_address(origin.address) ? origin.address : std::string("127.0.0.1");
    std::string out;
    add_line(out, "v=0");
    add_line(out, "o=" + (is_token(origin.username) ? origin.username : std::string("-")) + ' ' +
                      std::to_string(origin.session_id) + ' ' + std::to_string(origin.version) +
                      " IN " + std::string(address_type(origin_address)) + ' ' + origin_address);
    add_line(out, "s=-");
    add_line(out, "c=IN " + std::string(address_type(session_address)) + ' ' + session_address);
    add_line(out, "t=0 0");
    for (const auto& s : sections) {
        out += s;
    }
    return out;
}

std::string_view jingle_reason_for_sip_status(int status) {
    switch (status) {
    case 486:
    case 600:
        return "busy";
    case 603:
        return "decline";
    case 487:
        return "cancel";
    case 408:
        return "timeout";
    case 404:
    case 410:
    case 604:
        return "gone";
    case 415:
    case 488:
    case 606:
        return "unsupported-applications";
    default:
        return "general-error";
    }
}

int sip_status_for_jingle_reason(std::string_view reason) {
    if (reason == "busy") {
        return 486;
    }
    if (reason == "decline") {
        return 603;
    }
    if (reason == "cancel") {
        return 487;
    }
    if (reason == "timeout" || reason == "expired") {
        return 408;
    }
    if (reason == "gone") {
        return 410;
    }
    if (reason == "unsupported-applications" || reason == "unsupported-transports" ||
        reason == "failed-application" || reason == "incompatible-parameters" ||
        reason == "security-error") {
        return 488;
    }
    return 500;
}

} // namespace xsgw::translate
