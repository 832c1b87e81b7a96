#include "xsgw/address/address.hpp"

#include "xsgw/address/escape.hpp"

#include <fmt/format.h>

namespace xsgw::address {
namespace {

constexpr auto npos = std::string_view::npos;

// Characters RFC 7622 keeps out of a raw local part; XEP-0106 escapes them.
constexpr std::string_view jid_local_forbidden = " \"&'/:<>@";

// Separators legal unescaped in a SIP user part and a JID local part, and
// never part of a host or domain name.
constexpr std::string_view allowed_separators = "!$()*+,;=?~";

// How much of an offending input an error reason quotes.
constexpr std::size_t shown_limit = 64;

AddressError fail(Condition condition, std::string reason) {
    return AddressError{condition, std::move(reason)};
}

AddressError malformed(std::string reason) {
    return fail(Condition::jid_malformed, std::move(reason));
}

// Outside input quoted for an error reason. The reason may become a SIP
// reason phrase or stanza <text>, so nothing that could break a header line
// (S3) gets through: text that is not clean UTF-8 is shown byte by byte.
std::string shown(std::string_view text) {
    const bool clean = is_valid_utf8(text) && !contains_control(text);
    std::string out = "'";
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const bool starts_char = (c & 0xC0) != 0x80;
        if ((starts_char || !clean) && out.size() > shown_limit) {
            out += "...";
            break;
        }
        if (clean || (c >= 0x20 && c < 0x7F)) {
            out += ch;
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    out += '\'';
    return out;
}

std::string shown(char c) {
    return shown(std::string_view(&c, 1));
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Domains compare case-insensitively and with or without the root dot.
std::string normalise_domain(std::string_view domain) {
    std::string out = ascii_lowercase(domain);
    if (out.size() > 1 && out.back() == '.') {
        out.pop_back();
    }
    return out;
}

// "[" IPv6 "]", checked loosely: the right characters and at least two colons.
bool valid_ip_literal(std::string_view text) {
    if (text.size() < 4 || text.front() != '[' || text.back() != ']') {
        return false;
    }
    const auto inner = text.substr(1, text.size() - 2);
    std::size_t colons = 0;
    for (const char c : inner) {
        if (c == ':') {
            ++colons;
        } else if (!is_hex(c) && c != '.') {
            return false;
        }
    }
    return colons >= 2;
}

// Dot-separated non-empty labels; each character passes `allowed`.
template <class Allowed> bool valid_labels(std::string_view name, Allowed allowed) {
    std::size_t start = 0;
    while (true) {
        const auto dot = name.find('.', start);
        const auto label = name.substr(start, dot == npos ? npos : dot - start);
        if (label.empty() || !allowed(label)) {
            return false;
        }
        if (dot == npos) {
            return true;
        }
        start = dot + 1;
    }
}

// An XMPP domainpart: a DNS name (U-labels allowed, no IDNA check) or an IP literal.
bool valid_jid_domain(std::string_view domain) {
    if (domain.empty() || domain.size() > max_jid_part_bytes) {
        return false;
    }
    if (!is_valid_utf8(domain) || contains_control(domain)) {
        return false;
    }
    if (domain.front() == '[') {
        return valid_ip_literal(domain);
    }
    return valid_labels(domain, [](std::string_view label) {
        for (const char c : label) {
            if (static_cast<unsigned char>(c) < 0x80 && !is_alnum(c) && c != '-' && c != '_') {
                return false;
            }
        }
        return true;
    });
}

// An RFC 3261 host: hostname (ASCII labels), IPv4 address or [IPv6] literal.
bool valid_sip_host(std::string_view host) {
    if (host.empty() || host.size() > 255) {
        return false;
    }
    if (host.front() == '[') {
        return valid_ip_literal(host);
    }
    return valid_labels(host, [](std::string_view label) {
        if (label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (const char c : label) {
            if (!is_alnum(c) && c != '-') {
                return false;
            }
        }
        return true;
    });
}

// UTF-8, no controls, within the RFC 7622 length.
std::optional<AddressError> check_text(std::string_view what, std::string_view value) {
    if (!is_valid_utf8(value)) {
        return malformed(fmt::format("{} {} is not valid UTF-8", what, shown(value)));
    }
    if (contains_control(value)) {
        return malformed(fmt::format("{} {} contains a control character", what, shown(value)));
    }
    if (value.size() > max_jid_part_bytes) {
        return malformed(fmt::format("{} is {} bytes, over the {}-byte limit", what, value.size(),
                                     max_jid_part_bytes));
    }
    return std::nullopt;
}

std::optional<AddressError> validate_jid(const Jid& jid) {
    if (auto error = check_text("JID local part", jid.local)) {
        return error;
    }
    if (const auto bad = jid.local.find_first_of(jid_local_forbidden); bad != npos) {
        return malformed(fmt::format("JID local part {} holds {}, which must be XEP-0106-escaped",
                                     shown(jid.local), shown(jid.local[bad])));
    }
    if (jid.domain.empty()) {
        return malformed("JID has an empty domain");
    }
    if (auto error = check_text("JID domain", jid.domain)) {
        return error;
    }
    if (!valid_jid_domain(jid.domain)) {
        return malformed(fmt::format("{} is not a valid XMPP domain", shown(jid.domain)));
    }
    if (auto error = check_text("JID resource", jid.resource)) {
        return error;
    }
    return std::nullopt;
}

// A SipUri built by hand rather than by parse_sip_uri gets the same checks.
std::optional<AddressError> validate_uri(const SipUri& uri) {
    if (!is_valid_utf8(uri.user) || contains_control(uri.user)) {
        return malformed(fmt::format("SIP user part {} is not clean UTF-8", shown(uri.user)));
    }
    if (!valid_sip_host(normalise_domain(uri.host))) {
        return malformed(fmt::format("{} is not a valid SIP host", shown(uri.host)));
    }
    if (auto error = check_text("SIP ;gr= value", uri.gr)) {
        return error;
    }
    return std::nullopt;
}

struct HostPort {
    std::string host;
    std::optional<std::uint16_t> port;
};

Result<HostPort> parse_hostport(std::string_view text) {
    std::string_view host = text;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == npos) {
            return malformed(fmt::format("IPv6 literal {} lacks ']'", shown(text)));
        }
        host = text.substr(0, close + 1);
        rest = text.substr(close + 1);
    } else if (const auto colon = text.find(':'); colon != npos) {
        host = text.substr(0, colon);
        rest = text.substr(colon);
    }
    HostPort result{normalise_domain(host), std::nullopt};
    if (result.host.empty()) {
        return malformed(fmt::format("empty host in {}", shown(text)));
    }
    if (!valid_sip_host(result.host)) {
        return malformed(fmt::format("{} is not a valid SIP host", shown(host)));
    }
    if (!rest.empty()) {
        const auto digits = rest.substr(1);
        unsigned value = 0;
        bool ok = rest.front() == ':' && !digits.empty() && digits.size() <= 5;
        for (const char c : digits) {
            ok = ok && c >= '0' && c <= '9';
            if (ok) {
                value = value * 10 + static_cast<unsigned>(c - '0');
            }
        }
        if (!ok || value == 0 || value > 65535) {
            return malformed(fmt::format("bad port in {}", shown(text)));
        }
        result.port = static_cast<std::uint16_t>(value);
    }
    return result;
}

bool has_param(const SipUri& uri, std::string_view name) {
    if (name == "gr" && !uri.gr.empty()) {
        return true;
    }
    for (const auto& [existing, value] : uri.params) {
        if (existing == name) {
            return true;
        }
    }
    return false;
}

// ";"-separated uri-parameters after the host (the leading ';' already gone).
std::optional<AddressError> parse_params(std::string_view text, SipUri& uri) {
    std::size_t start = 0;
    while (true) {
        const auto end = text.find(';', start);
        const auto item = text.substr(start, end == npos ? npos : end - start);
        if (item.empty()) {
            return malformed(fmt::format("empty URI parameter in {}", shown(text)));
        }
        const auto eq = item.find('=');
        const auto raw_name = item.substr(0, eq);
        const auto raw_value = eq == npos ? std::string_view() : item.substr(eq + 1);
        for (const std::string_view raw : {raw_name, raw_value}) {
            for (const char c : raw) {
                if (c != '%' && !sip_param_allows_literal(c)) {
                    return malformed(fmt::format("{} must be %-escaped in URI parameter {}",
                                                 shown(c), shown(item)));
                }
            }
        }
        auto name = percent_decode(raw_name);
        auto value = percent_decode(raw_value);
        if (!name || name->empty() || !value || (eq != npos && value->empty()) ||
            contains_control(*name) || contains_control(*value)) {
            return malformed(fmt::format(
                "URI parameter {} is empty or does not decode to clean UTF-8", shown(item)));
        }
        *name = ascii_lowercase(*name);
        // A repeated parameter is ambiguous; refusing it beats guessing which one counts.
        if (has_param(uri, *name)) {
            return malformed(fmt::format("URI parameter {} appears twice", shown(*name)));
        }
        if (*name == "gr" && eq != npos) {
            uri.gr = std::move(*value);
        } else {
            uri.params.emplace_back(std::move(*name), std::move(*value));
        }
        if (end == npos) {
            return std::nullopt;
        }
        start = end + 1;
    }
}

// The configuration with its domains normalised, or why it cannot be used.
struct Gateway {
    std::string component;
    std::string sip_domain;
    char separator;
};

Result<Gateway> gateway_of(const AddressConfig& config) {
    if (auto problem = validate_config(config)) {
        return fail(Condition::not_acceptable, "gateway misconfigured: " + *problem);
    }
    return Gateway{normalise_domain(config.component), normalise_domain(config.sip_domain),
                   config.separator};
}

AddressError not_tls(const SipUri& uri) {
    return fail(Condition::not_acceptable,
                fmt::format("sips: URI for {} needs TLS on every hop, and this path is not all TLS",
                            shown(uri.host)));
}

// XEP-0106 §4.3 (since 1.1): an escaped local part never starts with \20.
bool starts_with_escaped_space(std::string_view escaped) {
    return escaped.size() >= 3 && escaped[0] == '\\' && escaped[1] == '2' && escaped[2] == '0';
}

} // namespace

std::string_view to_string(Condition condition) {
    switch (condition) {
    case Condition::jid_malformed:
        return "jid-malformed";
    case Condition::item_not_found:
        return "item-not-found";
    case Condition::forbidden:
        return "forbidden";
    case Condition::not_acceptable:
        return "not-acceptable";
    }
    return "undefined-condition";
}

std::string_view error_type(Condition condition) {
    switch (condition) {
    case Condition::jid_malformed:
    case Condition::not_acceptable:
        return "modify";
    case Condition::item_not_found:
        return "cancel";
    case Condition::forbidden:
        return "auth";
    }
    return "cancel";
}

std::optional<std::string> validate_config(const AddressConfig& config) {
    if (config.separator == '\0' || allowed_separators.find(config.separator) == npos) {
        return fmt::format("separator {} is not one of {}", shown(config.separator),
                           allowed_separators);
    }
    const auto component = normalise_domain(config.component);
    if (!valid_jid_domain(component)) {
        return fmt::format("xmpp.component {} is not a valid XMPP domain", shown(config.component));
    }
    const auto sip_domain = normalise_domain(config.sip_domain);
    if (!valid_sip_host(sip_domain)) {
        return fmt::format("sip.domain {} is not a valid SIP host name", shown(config.sip_domain));
    }
    return std::nullopt;
}

Result<Jid> parse_jid(std::string_view text) {
    if (text.empty()) {
        return malformed("empty JID");
    }
    if (!is_valid_utf8(text)) {
        return malformed(fmt::format("JID {} is not valid UTF-8", shown(text)));
    }
    if (contains_control(text)) {
        return malformed(fmt::format("JID {} contains a control character", shown(text)));
    }
    Jid jid;
    std::string_view bare = text;
    if (const auto slash = text.find('/'); slash != npos) {
        bare = text.substr(0, slash);
        jid.resource = text.substr(slash + 1);
        if (jid.resource.empty()) {
            return malformed(fmt::format("JID {} has an empty resource after '/'", shown(text)));
        }
    }
    std::string_view domain = bare;
    if (const auto at = bare.find('@'); at != npos) {
        if (at == 0) {
            return malformed(fmt::format("JID {} has an empty local part before '@'", shown(text)));
        }
        jid.local = ascii_lowercase(bare.substr(0, at));
        domain = bare.substr(at + 1);
    }
    jid.domain = normalise_domain(domain);
    if (auto error = validate_jid(jid)) {
        return *error;
    }
    return jid;
}

std::string bare_string(const Jid& jid) {
    return jid.local.empty() ? jid.domain : fmt::format("{}@{}", jid.local, jid.domain);
}

std::string to_string(const Jid& jid) {
    auto text = bare_string(jid);
    if (!jid.resource.empty()) {
        text += '/';
        text += jid.resource;
    }
    return text;
}

Result<SipUri> parse_sip_uri(std::string_view text) {
    const auto colon = text.find(':');
    if (colon == npos) {
        return malformed(fmt::format("{} is not a sip: or sips: URI", shown(text)));
    }
    SipUri uri;
    const auto scheme = ascii_lowercase(text.substr(0, colon));
    if (scheme == "sips") {
        uri.secure = true;
    } else if (scheme != "sip") {
        return malformed(fmt::format("scheme {} is not sip: or sips:", shown(scheme)));
    }
    std::string_view rest = text.substr(colon + 1);
    for (const char ch : rest) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7F) {
            return malformed(fmt::format("SIP URI {} holds a space, control or non-ASCII byte, "
                                         "which must be %-escaped",
                                         shown(text)));
        }
    }
    // '@' cannot appear unescaped after the userinfo, so the first one ends it
    // even though the user part itself may hold ';' and '?'.
    if (const auto at = rest.find('@'); at != npos) {
        const auto userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (userinfo.find(':') != npos) {
            return malformed(fmt::format("SIP URI {} carries a password", shown(text)));
        }
        for (const char c : userinfo) {
            if (c != '%' && !sip_user_allows_literal(c)) {
                return malformed(fmt::format("{} must be %-escaped in the SIP user part of {}",
                                             shown(c), shown(text)));
            }
        }
        auto user = percent_decode(userinfo);
        if (!user) {
            return malformed(fmt::format("SIP user part {} has a bad %-escape or is not UTF-8",
                                         shown(userinfo)));
        }
        if (user->empty()) {
            return malformed(fmt::format("SIP URI {} has an empty user part", shown(text)));
        }
        if (contains_control(*user)) {
            return malformed(
                fmt::format("SIP user part {} decodes to a control character", shown(userinfo)));
        }
        uri.user = std::move(*user);
    }
    if (rest.find('?') != npos) {
        return malformed(fmt::format("SIP URI {} carries ?headers", shown(text)));
    }
    const auto semi = rest.find(';');
    auto hostport = parse_hostport(rest.substr(0, semi));
    if (!hostport) {
        return hostport.error();
    }
    uri.host = std::move(hostport->host);
    uri.port = hostport->port;
    if (semi != npos) {
        if (auto error = parse_params(rest.substr(semi + 1), uri)) {
            return *error;
        }
    }
    return uri;
}

Result<SipUri> parse_sip_address_prompt(std::string_view text) {
    constexpr std::string_view blanks = " \t\r\n";
    const auto first = text.find_first_not_of(blanks);
    if (first == npos) {
        return malformed("empty SIP address");
    }
    text = text.substr(first, text.find_last_not_of(blanks) - first + 1);
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>') {
        text = text.substr(1, text.size() - 2);
    }
    const auto at = text.rfind('@');
    const auto colon = text.find(':');
    if (at == npos || (colon != npos && colon < at)) {
        return parse_sip_uri(text);
    }
    // A typed "user@host": people type the user part raw, so take it as it is
    // and let to_string do the escaping a URI would have needed.
    const auto user = text.substr(0, at);
    if (user.empty()) {
        return malformed(fmt::format("SIP address {} has no user part", shown(text)));
    }
    if (!is_valid_utf8(user) || contains_control(user)) {
        return malformed(fmt::format("SIP user {} is not clean UTF-8", shown(user)));
    }
    auto hostport = parse_hostport(text.substr(at + 1));
    if (!hostport) {
        return hostport.error();
    }
    SipUri uri;
    uri.user = user;
    uri.host = std::move(hostport->host);
    uri.port = hostport->port;
    return uri;
}

std::string to_string(const SipUri& uri) {
    std::string text = uri.secure ? "sips:" : "sip:";
    if (!uri.user.empty()) {
        text += percent_encode_user(uri.user);
        text += '@';
    }
    text += uri.host;
    if (uri.port) {
        text += fmt::format(":{}", *uri.port);
    }
    for (const auto& [name, value] : uri.params) {
        text += ';';
        text += percent_encode_param(name);
        if (!value.empty()) {
            text += '=';
            text += percent_encode_param(value);
        }
    }
    if (!uri.gr.empty()) {
        text += ";gr=";
        text += percent_encode_param(uri.gr);
    }
    return text;
}

Result<SipUri> contact_jid_to_sip(const Jid& jid, const AddressConfig& config) {
    const auto gateway = gateway_of(config);
    if (!gateway) {
        return gateway.error();
    }
    if (auto error = validate_jid(jid)) {
        return *error;
    }
    if (normalise_domain(jid.domain) != gateway->component) {
        return fail(Condition::item_not_found,
                    fmt::format("{} is not this gateway's domain {}", shown(jid.domain),
                                shown(gateway->component)));
    }
    const auto local = ascii_lowercase(jid.local);
    if (local.empty()) {
        return malformed(
            fmt::format("{} is the gateway itself, not a SIP contact", shown(gateway->component)));
    }
    const auto sep = local.rfind(gateway->separator);
    if (sep == npos) {
        return fail(Condition::item_not_found, fmt::format("no '{}' separator in local part {}",
                                                           gateway->separator, shown(local)));
    }
    const auto user_escaped = std::string_view(local).substr(0, sep);
    const auto host_escaped = std::string_view(local).substr(sep + 1);
    if (user_escaped.empty()) {
        return malformed(fmt::format("empty SIP user before the last '{}' in {}",
                                     gateway->separator, shown(local)));
    }
    if (host_escaped.empty()) {
        return malformed(fmt::format("empty SIP host after the last '{}' in {}", gateway->separator,
                                     shown(local)));
    }
    if (starts_with_escaped_space(user_escaped)) {
        return malformed(
            fmt::format("local part {} starts with \\20, which XEP-0106 forbids", shown(local)));
    }
    // validate_jid has refused raw reserved characters, so unescaping cannot fail.
    auto user = xep0106_unescape(user_escaped);
    const auto hostport_text = xep0106_unescape(host_escaped);
    if (!user || !hostport_text) {
        return malformed(fmt::format("local part {} is not XEP-0106-escaped", shown(local)));
    }
    auto hostport = parse_hostport(*hostport_text);
    if (!hostport) {
        return malformed(fmt::format("{} after the last '{}' is not a SIP host[:port]",
                                     shown(*hostport_text), gateway->separator));
    }
    if (hostport->host == gateway->sip_domain) {
        return fail(Condition::forbidden,
                    fmt::format("{} is the gateway's own SIP domain; refusing to loop",
                                shown(hostport->host)));
    }
    SipUri uri;
    uri.user = std::move(*user);
    uri.host = std::move(hostport->host);
    uri.port = hostport->port;
    uri.gr = jid.resource;
    return uri;
}

Result<Jid> sip_to_contact_jid(const SipUri& uri, const AddressConfig& config, bool tls_path) {
    const auto gateway = gateway_of(config);
    if (!gateway) {
        return gateway.error();
    }
    if (uri.secure && !tls_path) {
        return not_tls(uri);
    }
    if (auto error = validate_uri(uri)) {
        return *error;
    }
    const auto host = normalise_domain(uri.host);
    if (uri.user.empty()) {
        return malformed(
            fmt::format("SIP URI for {} has no user part to make a contact of", shown(host)));
    }
    if (uri.user.front() == ' ') {
        return malformed(fmt::format("SIP user {} starts with a space, which a JID cannot carry "
                                     "(XEP-0106 forbids a leading \\20)",
                                     shown(uri.user)));
    }
    if (host == gateway->sip_domain) {
        return fail(
            Condition::forbidden,
            fmt::format("{} is the gateway's own SIP domain; refusing to loop", shown(host)));
    }
    auto hostport = host;
    if (uri.port) {
        hostport += fmt::format(":{}", *uri.port);
    }
    Jid jid;
    jid.local = ascii_lowercase(xep0106_escape(uri.user));
    jid.local += gateway->separator;
    jid.local += xep0106_escape(hostport);
    jid.domain = gateway->component;
    jid.resource = uri.gr;
    if (auto error = validate_jid(jid)) {
        return *error;
    }
    return jid;
}

Result<SipUri> xmpp_user_to_sip(const Jid& jid, const AddressConfig& config) {
    const auto gateway = gateway_of(config);
    if (!gateway) {
        return gateway.error();
    }
    const auto domain = normalise_domain(jid.domain);
    // Checked before the general domain check to say exactly what is wrong:
    // the far side would split the user part in the wrong place.
    if (domain.find(gateway->separator) != npos) {
        return malformed(fmt::format("domain {} contains the separator '{}'", shown(domain),
                                     gateway->separator));
    }
    if (auto error = validate_jid(jid)) {
        return *error;
    }
    const auto local = ascii_lowercase(jid.local);
    if (local.empty()) {
        return malformed(fmt::format("XMPP sender {} has no local part", shown(domain)));
    }
    if (starts_with_escaped_space(local)) {
        return malformed(
            fmt::format("local part {} starts with \\20, which XEP-0106 forbids", shown(local)));
    }
    if (domain == gateway->component) {
        return fail(Condition::forbidden,
                    fmt::format("{} is the gateway's own domain; refusing to loop", shown(domain)));
    }
    auto user = xep0106_unescape(local);
    if (!user) {
        return malformed(fmt::format("local part {} is not XEP-0106-escaped", shown(local)));
    }
    SipUri uri;
    uri.user = std::move(*user);
    uri.user += gateway->separator;
    uri.user += domain;
    uri.host = gateway->sip_domain;
    uri.gr = jid.resource;
    return uri;
}

Result<Jid> sip_request_uri_to_xmpp_user(const SipUri& uri, const AddressConfig& config,
                                         bool tls_path) {
    const auto gateway = gateway_of(config);
    if (!gateway) {
        return gateway.error();
    }
    if (auto error = validate_uri(uri)) {
        return *error;
    }
    const auto host = normalise_domain(uri.host);
    if (host != gateway->sip_domain) {
        return fail(Condition::forbidden,
                    fmt::format("{} is not this gateway's SIP domain {}; the gateway is not an "
                                "open relay",
                                shown(host), shown(gateway->sip_domain)));
    }
    if (uri.secure && !tls_path) {
        return not_tls(uri);
    }
    if (uri.user.empty()) {
        return fail(Condition::item_not_found,
                    fmt::format("Request-URI {} names the gateway itself, not an XMPP user",
                                shown(to_string(uri))));
    }
    const auto sep = uri.user.rfind(gateway->separator);
    if (sep == npos) {
        return fail(Condition::item_not_found, fmt::format("no '{}' separator in SIP user {}",
                                                           gateway->separator, shown(uri.user)));
    }
    const auto user = std::string_view(uri.user).substr(0, sep);
    const auto domain = std::string_view(uri.user).substr(sep + 1);
    if (user.empty()) {
        return malformed(fmt::format("empty XMPP user before the last '{}' in {}",
                                     gateway->separator, shown(uri.user)));
    }
    if (domain.empty()) {
        return malformed(fmt::format("empty XMPP domain after the last '{}' in {}",
                                     gateway->separator, shown(uri.user)));
    }
    if (user.front() == ' ') {
        return malformed(fmt::format("SIP user {} starts with a space, which a JID cannot carry "
                                     "(XEP-0106 forbids a leading \\20)",
                                     shown(uri.user)));
    }
    Jid jid;
    jid.local = ascii_lowercase(xep0106_escape(user));
    jid.domain = normalise_domain(domain);
    jid.resource = uri.gr;
    if (jid.domain == gateway->component) {
        return fail(
            Condition::forbidden,
            fmt::format("{} is the gateway's own domain; refusing to loop", shown(jid.domain)));
    }
    if (auto error = validate_jid(jid)) {
        return *error;
    }
    return jid;
}

} // namespace xsgw::address
