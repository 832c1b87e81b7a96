#include "xsgw/core/config.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cctype>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <new>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <toml++/toml.h>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

namespace xsgw::core {

namespace {

using namespace std::literals;

// Bounds that keep timer arithmetic downstream far from overflow; a day is already absurd.
constexpr int64_t max_seconds = 86'400;
constexpr int64_t max_milliseconds = max_seconds * 1000;
// A config or secret file larger than this is a mistake (wrong path), not a config.
constexpr std::size_t max_config_bytes = 1 << 20;
constexpr std::size_t max_secret_bytes = 64 << 10;

constexpr std::string_view world_readable_what = "world-readable file holds a secret (chmod o-r)";

// The schema: every table and key the file may hold.
struct TableSchema {
    std::string_view name;
    std::array<std::string_view, 16> keys; // unused slots stay empty
};
constexpr std::array<TableSchema, 7> schema{{
    {"xmpp",
     {"component", "host", "port", "secret", "secret_file", "keepalive_interval",
      "keepalive_timeout", "reconnect_min", "reconnect_max", "version_show_os", "admins",
      "allowed_domains", "max_stanzas_per_sender", "burst_per_sender"}},
    {"sip",
     {"domain", "listen", "message_type", "max_message_bytes", "max_requests_per_source",
      "burst_per_source", "tls_listen", "tls_certificate", "tls_key", "tls_ca_file",
      "verify_from_domain"}},
    {"dns", {"servers"}},
    {"log", {"level"}},
    {"metrics", {"listen"}},
    {"presence",
     {"subscribe_expires", "min_expires", "max_expires", "max_per_user", "max_total", "publish_to",
      "publish_expires", "state_file"}},
    {"calls", {"enabled", "max_calls", "answer_timeout"}},
}};

// A problem found while validating; the file name is added once, at the end.
struct Issue {
    std::string key;
    std::string what;
};
using Check = std::optional<Issue>;

Issue issue(std::string key, std::string what) {
    return Issue{std::move(key), std::move(what)};
}

// Shows text from the file on one line: control characters and quotes escaped.
std::string in_quotes(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

// A key as shown in messages: bare when it is a plain bare key, quoted otherwise.
std::string key_text(std::string_view key) {
    const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
    return bare ? std::string(key) : in_quotes(key);
}

std::string_view type_name(toml::node_type type) {
    switch (type) {
    case toml::node_type::table:
        return "table";
    case toml::node_type::array:
        return "array";
    case toml::node_type::string:
        return "string";
    case toml::node_type::integer:
        return "integer";
    case toml::node_type::floating_point:
        return "float";
    case toml::node_type::boolean:
        return "boolean";
    case toml::node_type::date:
        return "date";
    case toml::node_type::time:
        return "time";
    case toml::node_type::date_time:
        return "date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

// The TOML type name of the C++ types the schema reads.
template <class T> constexpr std::string_view expected_name() {
    if constexpr (std::is_same_v<T, std::string>) {
        return "string";
    } else if constexpr (std::is_same_v<T, int64_t>) {
        return "integer";
    } else {
        static_assert(std::is_same_v<T, bool>);
        return "boolean";
    }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// " (did you mean X?)" when one known name is close to the unknown one.
template <class Names> std::string suggestion(std::string_view unknown, const Names& names) {
    for (const std::string_view name : names) {
        if (!name.empty() && edit_distance(unknown, name) <= 2) {
            return fmt::format(" (did you mean {}?)", name);
        }
    }
    return {};
}

bool is_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// RFC 1123 host name: LDH labels of 1..63, at most 253 in all, no trailing dot, and not
// all-numeric at the end (that would be an IPv4 address, not a name).
bool is_dns_name(std::string_view name) {
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::string_view last;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = name.find('.', start);
        const std::string_view label = name.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (const char c : label) {
            if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-') {
                return false;
            }
        }
        last = label;
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    return !is_digits(last);
}

bool is_ipv4(std::string_view text) {
    in_addr addr{};
    return text.find('\0') == std::string_view::npos &&
           inet_pton(AF_INET, std::string(text).c_str(), &addr) == 1;
}

bool is_ipv6(std::string_view text) {
    in6_addr addr{};
    return text.find('\0') == std::string_view::npos &&
           inet_pton(AF_INET6, std::string(text).c_str(), &addr) == 1;
}

// A decimal port 1..65535.
bool parse_port(std::string_view text, uint16_t& port) {
    if (!is_digits(text) || text.size() > 5) {
        return false;
    }
    unsigned value = 0;
    for (const char c : text) {
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) {
        return false;
    }
    port = static_cast<uint16_t>(value);
    return true;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// Splits "host[:port]" where host may be "[IPv6]"; nullopt when the brackets do not pair up.
struct HostPort {
    std::string_view host;
    bool bracketed = false;
    std::optional<std::string_view> port;
};
std::optional<HostPort> split_host_port(std::string_view text) {
    HostPort out;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        out.host = text.substr(1, close - 1);
        out.bracketed = true;
        rest = text.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            return std::nullopt;
        }
    } else {
        const std::size_t colon = text.find(':');
        out.host = text.substr(0, colon);
        rest = colon == std::string_view::npos ? ""sv : text.substr(colon);
    }
    if (!rest.empty()) {
        out.port = rest.substr(1);
    }
    return out;
}

// Why text is not a Sofia-style listen URL, or nullopt when it is one:
// sip:|sips: host[:port][;transport=udp|tcp|tls], host a name, IPv4, [IPv6] or "*".
std::optional<std::string> listen_url_problem(std::string_view url) {
    const std::size_t colon = url.find(':');
    if (colon == std::string_view::npos) {
        return "no scheme (expected sip: or sips:)";
    }
    const std::string_view scheme = url.substr(0, colon);
    const bool secure = iequals(scheme, "sips");
    if (!secure && !iequals(scheme, "sip")) {
        return fmt::format("scheme {} is not sip: or sips:", in_quotes(scheme));
    }
    std::string_view rest = url.substr(colon + 1);
    const std::size_t semicolon = rest.find(';');
    const std::string_view authority = rest.substr(0, semicolon);
    const std::string_view params =
        semicolon == std::string_view::npos ? ""sv : rest.substr(semicolon + 1);

    const auto host_port = split_host_port(authority);
    if (!host_port || host_port->host.empty()) {
        return "missing or malformed host";
    }
    if (host_port->bracketed ? !is_ipv6(host_port->host)
                             : !(host_port->host == "*" || is_ipv4(host_port->host) ||
                                 is_dns_name(host_port->host))) {
        return fmt::format("bad host {}", in_quotes(host_port->host));
    }
    uint16_t port = 0;
    if (host_port->port && !parse_port(*host_port->port, port)) {
        return fmt::format("port {} is not in 1..65535", in_quotes(*host_port->port));
    }

    std::optional<std::string_view> transport;
    std::size_t start = 0;
    while (semicolon != std::string_view::npos && start <= params.size()) {
        const std::size_t next = params.find(';', start);
        const std::string_view param = params.substr(
            start, next == std::string_view::npos ? std::string_view::npos : next - start);
        const std::size_t equals = param.find('=');
        const std::string_view name = param.substr(0, equals);
        if (!iequals(name, "transport") || equals == std::string_view::npos) {
            return fmt::format("unsupported parameter {} (only ;transport=)", in_quotes(param));
        }
        if (transport) {
            return "transport given twice"s;
        }
        transport = param.substr(equals + 1);
        if (!iequals(*transport, "udp") && !iequals(*transport, "tcp") &&
            !iequals(*transport, "tls")) {
            return fmt::format("transport {} is not udp, tcp or tls", in_quotes(*transport));
        }
        if (secure && iequals(*transport, "udp")) {
            return "sips: cannot use transport=udp"s;
        }
        if (next == std::string_view::npos) {
            break;
        }
        start = next + 1;
    }
    return std::nullopt;
}

// True for a (valid) listen URL that asks for TLS: sips: or ;transport=tls.
bool is_tls_url(std::string_view url) {
    if (iequals(url.substr(0, 5), "sips:")) {
        return true;
    }
    for (std::size_t at = url.find(';'); at != std::string_view::npos; at = url.find(';', at + 1)) {
        const std::string_view param = url.substr(at + 1, url.find(';', at + 1) - at - 1);
        if (iequals(param, "transport=tls")) {
            return true;
        }
    }
    return false;
}

// Why text is not a DNS server address, or nullopt when it is "IPv4:port" or "[IPv6]:port".
std::optional<std::string> dns_server_problem(std::string_view text) {
    const auto host_port = split_host_port(text);
    if (!host_port || !host_port->port) {
        return "not host:port";
    }
    if (host_port->bracketed ? !is_ipv6(host_port->host) : !is_ipv4(host_port->host)) {
        return "host is not an IPv4 address or a bracketed [IPv6] address";
    }
    uint16_t port = 0;
    if (!parse_port(*host_port->port, port)) {
        return "port is not in 1..65535";
    }
    return std::nullopt;
}

// A regular file's bytes and permission bits, read through one descriptor so the mode belongs
// to the bytes read.
struct FileContents {
    std::string text;
    mode_t mode = 0;
};
struct FileRead {
    std::optional<FileContents> contents;
    std::string problem; // set when contents is not
};

std::string errno_text(int error) {
    return std::system_category().message(error);
}

FileRead read_regular_file(const std::string& path, std::size_t limit) {
    if (path.find('\0') != std::string::npos) {
        return {std::nullopt, "path holds a NUL byte"};
    }
    // O_NONBLOCK: opening a FIFO must not hang the daemon; it is refused below anyway.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        return {std::nullopt, fmt::format("cannot open: {}", errno_text(errno))};
    }
    struct Closer {
        int fd;
        explicit Closer(int owned) : fd(owned) {}
        Closer(const Closer&) = delete;
        Closer& operator=(const Closer&) = delete;
        Closer(Closer&&) = delete;
        Closer& operator=(Closer&&) = delete;
        ~Closer() { ::close(fd); }
    } closer(fd);

    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        return {std::nullopt, fmt::format("cannot stat: {}", errno_text(errno))};
    }
    if (!S_ISREG(info.st_mode)) {
        return {std::nullopt, "not a regular file"};
    }
    FileContents out;
    out.mode = info.st_mode & 07777;
    std::array<char, 4096> buffer{};
    while (true) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return {std::nullopt, fmt::format("cannot read: {}", errno_text(errno))};
        }
        if (n == 0) {
            break;
        }
        out.text.append(buffer.data(), static_cast<std::size_t>(n));
        if (out.text.size() > limit) {
            return {std::nullopt, fmt::format("larger than {} bytes", limit)};
        }
    }
    return {std::move(out), {}};
}

// The lines (1-based) that hold the value of a `secret` key, including the continuation of a
// multi-line string. toml++ quotes the offending token in some syntax errors; on these lines
// that token could be the secret itself.
std::vector<std::size_t> secret_value_lines(std::string_view text) {
    std::vector<std::size_t> lines;
    std::string_view closing; // the delimiter of an open multi-line string
    std::size_t number = 0;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line = text.substr(start, end - start);
        ++number;
        if (!closing.empty()) {
            lines.push_back(number);
            if (line.find(closing) != std::string_view::npos) {
                closing = {};
            }
        } else {
            for (std::size_t at = line.find("secret"); at != std::string_view::npos;
                 at = line.find("secret", at + 1)) {
                std::size_t i = at + 6;
                if (i < line.size() && (line[i] == '"' || line[i] == '\'')) {
                    ++i;
                }
                while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
                    ++i;
                }
                if (i >= line.size() || line[i] != '=') {
                    continue;
                }
                lines.push_back(number);
                std::string_view value = line.substr(i + 1);
                value.remove_prefix(std::min(value.find_first_not_of(" \t"), value.size()));
                for (const std::string_view delimiter : {"\"\"\""sv, "'''"sv}) {
                    if (value.substr(0, 3) == delimiter &&
                        value.find(delimiter, 3) == std::string_view::npos) {
                        closing = delimiter;
                    }
                }
                break;
            }
        }
        start = end + 1;
    }
    return lines;
}

Issue syntax_issue(std::string_view text, const toml::parse_error& error) {
    const auto& begin = error.source().begin;
    const auto lines = secret_value_lines(text);
    if (std::find(lines.begin(), lines.end(), begin.line) != lines.end()) {
        return issue("", fmt::format("syntax error at line {}, column {}, in the value of a secret "
                                     "(details withheld so the secret is not shown)",
                                     begin.line, begin.column));
    }
    return issue("", fmt::format("syntax error at line {}, column {}: {}", begin.line, begin.column,
                                 error.description()));
}

// Validates one parsed document into a Config.
class Validator {
public:
    Validator(const toml::table& root, std::string path) : root_(root) {
        config_.path = std::move(path);
    }
    Validator(const Validator&) = delete;
    Validator& operator=(const Validator&) = delete;
    Validator(Validator&&) = delete;
    Validator& operator=(Validator&&) = delete;
    ~Validator() = default;

    Check run();
    Config take() { return std::move(config_); }

private:
    Check known_names();
    Check xmpp();
    Check secret();
    Check sip();
    Check sip_tls();
    Check rate_limit(std::string_view table, std::string_view rate_key, std::string_view burst_key,
                     std::string_view unit, std::uint32_t& rate_out, std::uint32_t& burst_out);
    Check dns();
    Check log();
    Check metrics();
    Check presence();
    Check calls();

    const toml::node* find(std::string_view table, std::string_view key) const {
        const toml::table* section = root_.get_as<toml::table>(table);
        return section == nullptr ? nullptr : section->get(key);
    }

    // Reads table.key into out when present; an Issue when it has another type.
    template <class T>
    Check get(std::string_view table, std::string_view key, std::optional<T>& out) const {
        const toml::node* node = find(table, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        if (const auto* value = node->as<T>()) {
            out = value->get();
            return std::nullopt;
        }
        return issue(
            fmt::format("{}.{}", table, key),
            fmt::format("expected {}, got {}", expected_name<T>(), type_name(node->type())));
    }

    // Reads a positive integer no larger than max into out.
    Check get_positive(std::string_view table, std::string_view key, int64_t max,
                       std::string_view unit, int64_t& out) const {
        std::optional<int64_t> value;
        if (auto problem = get(table, key, value)) {
            return problem;
        }
        if (!value) {
            return std::nullopt;
        }
        if (*value <= 0 || *value > max) {
            return issue(fmt::format("{}.{}", table, key),
                         fmt::format("{} is out of range: expected 1..{} {}", *value, max, unit));
        }
        out = *value;
        return std::nullopt;
    }

    void warn(std::string_view key, std::string_view what) {
        config_.warnings.push_back(fmt::format("{}: {}: {}", config_.path, key, what));
    }

    const toml::table& root_;
    Config config_;
};

Check Validator::run() {
    for (auto step : {&Validator::known_names, &Validator::xmpp, &Validator::sip, &Validator::dns,
                      &Validator::log, &Validator::metrics, &Validator::presence, &Validator::calls,
                      &Validator::secret}) {
        if (auto problem = (this->*step)()) {
            return problem;
        }
    }
    return std::nullopt;
}

Check Validator::known_names() {
    std::array<std::string_view, schema.size()> table_names{};
    std::transform(schema.begin(), schema.end(), table_names.begin(),
                   [](const TableSchema& t) { return t.name; });
    for (const auto& [key, node] : root_) {
        const auto known = std::find(table_names.begin(), table_names.end(), key.str());
        if (known == table_names.end()) {
            return issue(key_text(key.str()),
                         fmt::format("unknown {}{}", node.is_table() ? "table" : "key",
                                     suggestion(key.str(), table_names)));
        }
        if (!node.is_table()) {
            return issue(key_text(key.str()),
                         fmt::format("expected table, got {}", type_name(node.type())));
        }
        const auto& keys = schema[static_cast<std::size_t>(known - table_names.begin())].keys;
        for (const auto& [inner, value] : *node.as_table()) {
            if (inner.str().empty() ||
                std::find(keys.begin(), keys.end(), inner.str()) == keys.end()) {
                return issue(fmt::format("{}.{}", key.str(), key_text(inner.str())),
                             fmt::format("unknown {}{}", value.is_table() ? "table" : "key",
                                         suggestion(inner.str(), keys)));
            }
        }
    }
    return std::nullopt;
}

Check Validator::xmpp() {
    auto& xmpp = config_.xmpp;
    std::optional<std::string> component;
    if (auto problem = get("xmpp", "component", component)) {
        return problem;
    }
    if (!component) {
        return issue("xmpp.component", "required key missing (the domain this component owns)");
    }
    if (!is_dns_name(*component)) {
        return issue("xmpp.component",
                     fmt::format("not a valid DNS name: {}", in_quotes(*component)));
    }
    xmpp.component = std::move(*component);

    std::optional<std::string> host;
    if (auto problem = get("xmpp", "host", host)) {
        return problem;
    }
    if (host) {
        if (!is_dns_name(*host) && !is_ipv4(*host) && !is_ipv6(*host)) {
            return issue("xmpp.host",
                         fmt::format("not a host name or IP address: {} (IPv6 goes without [])",
                                     in_quotes(*host)));
        }
        xmpp.host = std::move(*host);
    }

    std::optional<int64_t> port;
    if (auto problem = get("xmpp", "port", port)) {
        return problem;
    }
    if (port) {
        if (*port < 1 || *port > 65535) {
            return issue("xmpp.port", fmt::format("{} is out of range: expected 1..65535", *port));
        }
        xmpp.port = static_cast<uint16_t>(*port);
    }

    int64_t count = xmpp.keepalive_interval.count();
    if (auto problem = get_positive("xmpp", "keepalive_interval", max_seconds, "seconds", count)) {
        return problem;
    }
    xmpp.keepalive_interval = std::chrono::seconds{count};
    count = xmpp.keepalive_timeout.count();
    if (auto problem = get_positive("xmpp", "keepalive_timeout", max_seconds, "seconds", count)) {
        return problem;
    }
    xmpp.keepalive_timeout = std::chrono::seconds{count};
    count = xmpp.reconnect_min.count();
    if (auto problem =
            get_positive("xmpp", "reconnect_min", max_milliseconds, "milliseconds", count)) {
        return problem;
    }
    xmpp.reconnect_min = std::chrono::milliseconds{count};
    count = xmpp.reconnect_max.count();
    if (auto problem =
            get_positive("xmpp", "reconnect_max", max_milliseconds, "milliseconds", count)) {
        return problem;
    }
    xmpp.reconnect_max = std::chrono::milliseconds{count};
    if (xmpp.reconnect_min > xmpp.reconnect_max) {
        return issue("xmpp.reconnect_min",
                     fmt::format("{} is larger than xmpp.reconnect_max ({})",
                                 xmpp.reconnect_min.count(), xmpp.reconnect_max.count()));
    }

    std::optional<bool> show_os;
    if (auto problem = get("xmpp", "version_show_os", show_os)) {
        return problem;
    }
    xmpp.version_show_os = show_os.value_or(xmpp.version_show_os);

    if (const toml::node* node = find("xmpp", "admins")) {
        const toml::array* admins = node->as_array();
        if (admins == nullptr) {
            return issue("xmpp.admins",
                         fmt::format("expected array, got {}", type_name(node->type())));
        }
        for (std::size_t i = 0; i < admins->size(); ++i) {
            const toml::node& entry = *admins->get(i);
            const std::string key = fmt::format("xmpp.admins[{}]", i);
            const auto* text = entry.as_string();
            if (text == nullptr) {
                return issue(key, fmt::format("expected string, got {}", type_name(entry.type())));
            }
            const std::string& jid = text->get();
            const auto at = jid.find('@');
            if (at == std::string::npos || at == 0 || jid.find('/') != std::string::npos ||
                !is_dns_name(jid.substr(at + 1)) ||
                jid.find_first_of(" \t\r\n\"'<>&") != std::string::npos) {
                return issue(key,
                             fmt::format("{} is not a bare JID (user@domain)", in_quotes(jid)));
            }
            xmpp.admins.push_back(jid);
        }
    }

    if (const toml::node* node = find("xmpp", "allowed_domains")) {
        const toml::array* domains = node->as_array();
        if (domains == nullptr) {
            return issue("xmpp.allowed_domains",
                         fmt::format("expected array, got {}", type_name(node->type())));
        }
        for (std::size_t i = 0; i < domains->size(); ++i) {
            const toml::node& entry = *domains->get(i);
            const std::string key = fmt::format("xmpp.allowed_domains[{}]", i);
            const auto* text = entry.as_string();
            if (text == nullptr) {
                return issue(key, fmt::format("expected string, got {}", type_name(entry.type())));
            }
            // Stored as the address rules compare JID domains: ASCII-lowercased, no final dot.
            std::string domain = text->get();
            if (!domain.empty() && domain.back() == '.') {
                domain.pop_back();
            }
            if (!is_dns_name(domain)) {
                return issue(key, fmt::format("{} is not an XMPP domain name (a DNS name such as "
                                              "\"jabber.example\")",
                                              in_quotes(text->get())));
            }
            std::transform(domain.begin(), domain.end(), domain.begin(), [](char c) {
                return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            });
            const auto& kept = xmpp.allowed_domains;
            if (std::find(kept.begin(), kept.end(), domain) != kept.end()) {
                return issue(key, fmt::format("{} is listed twice", in_quotes(text->get())));
            }
            xmpp.allowed_domains.push_back(std::move(domain));
        }
    }
    // S5 toward SIP, per sender (bare JID).
    if (auto problem = rate_limit("xmpp", "max_stanzas_per_sender", "burst_per_sender", "stanzas",
                                  xmpp.max_stanzas_per_sender, xmpp.burst_per_sender)) {
        return problem;
    }
    return std::nullopt;
}

// Last of all: the only step that reads other files, and the one that holds the secret.
Check Validator::secret() {
    auto& xmpp = config_.xmpp;
    std::optional<std::string> inline_secret;
    std::optional<std::string> secret_file;
    if (auto problem = get("xmpp", "secret", inline_secret)) {
        return problem;
    }
    if (auto problem = get("xmpp", "secret_file", secret_file)) {
        return problem;
    }
    if (inline_secret && secret_file) {
        return issue("xmpp.secret_file", "conflicts with xmpp.secret: set only one of them");
    }
    if (inline_secret) {
        if (inline_secret->empty()) {
            return issue("xmpp.secret", "must not be empty");
        }
        xmpp.secret = std::move(*inline_secret);
        xmpp.secret_source = "secret";
        xmpp.secret_inline = true;
        return std::nullopt;
    }
    if (!secret_file) {
        return issue("xmpp.secret", "required key missing: set xmpp.secret or xmpp.secret_file");
    }
    if (secret_file->empty()) {
        return issue("xmpp.secret_file", "must not be empty");
    }

    // Relative to the config file, not to the working directory (which is / under systemd).
    std::filesystem::path file{*secret_file};
    if (file.is_relative()) {
        file = std::filesystem::path{config_.path}.parent_path() / file;
    }
    const std::string shown = in_quotes(file.string());
    FileRead read = read_regular_file(file.string(), max_secret_bytes);
    if (!read.contents) {
        return issue("xmpp.secret_file", fmt::format("{}: {}", shown, read.problem));
    }
    std::string& text = read.contents->text;
    // Editors and `echo` end the file with a newline that is not part of the secret.
    if (text.ends_with('\n')) {
        text.pop_back();
        if (text.ends_with('\r')) {
            text.pop_back();
        }
    }
    if (text.empty()) {
        return issue("xmpp.secret_file", fmt::format("{}: file is empty", shown));
    }
    if ((read.contents->mode & S_IROTH) != 0) {
        return issue("xmpp.secret_file", fmt::format("{}: {}", shown, world_readable_what));
    }
    if ((read.contents->mode & S_IRGRP) != 0) {
        warn("xmpp.secret_file",
             fmt::format("{}: file holding a secret is group-readable (mode {:04o}); make sure "
                         "only the gateway's group can read it",
                         shown, read.contents->mode));
    }
    xmpp.secret = std::move(text);
    xmpp.secret_source = file.string();
    return std::nullopt;
}

Check Validator::sip() {
    std::optional<std::string> domain;
    if (auto problem = get("sip", "domain", domain)) {
        return problem;
    }
    if (!domain) {
        return issue("sip.domain", "required key missing (the SIP domain for XMPP users)");
    }
    if (!is_dns_name(*domain)) {
        return issue("sip.domain", fmt::format("not a valid DNS name: {}", in_quotes(*domain)));
    }
    config_.sip.domain = std::move(*domain);

    std::optional<std::string> listen;
    if (auto problem = get("sip", "listen", listen)) {
        return problem;
    }
    if (listen) {
        if (auto problem = listen_url_problem(*listen)) {
            return issue("sip.listen", fmt::format("bad URL {}: {}", in_quotes(*listen), *problem));
        }
        if (is_tls_url(*listen)) {
            return issue("sip.listen", fmt::format("{} is TLS: set sip.tls_listen (with "
                                                   "tls_certificate and tls_key) for TLS",
                                                   in_quotes(*listen)));
        }
        config_.sip.listen = std::move(*listen);
    }
    if (auto problem = sip_tls()) {
        return problem;
    }
    std::optional<bool> verify_from;
    if (auto problem = get("sip", "verify_from_domain", verify_from)) {
        return problem;
    }
    config_.sip.verify_from_domain = verify_from.value_or(false);

    std::optional<std::string> type;
    if (auto problem = get("sip", "message_type", type)) {
        return problem;
    }
    if (type) {
        if (*type != "chat" && *type != "normal") {
            return issue("sip.message_type",
                         fmt::format("{} is neither \"chat\" nor \"normal\"", in_quotes(*type)));
        }
        config_.sip.message_type = std::move(*type);
    }
    constexpr int64_t max_message_limit = 1024 * 1024;
    int64_t bytes = static_cast<int64_t>(config_.sip.max_message_bytes);
    if (auto problem =
            get_positive("sip", "max_message_bytes", max_message_limit, "bytes", bytes)) {
        return problem;
    }
    config_.sip.max_message_bytes = static_cast<std::size_t>(bytes);

    return rate_limit("sip", "max_requests_per_source", "burst_per_source", "requests",
                      config_.sip.max_requests_per_source, config_.sip.burst_per_source);
}

// S5: a token bucket's rate and burst. 0 turns the limit off, so the rate may be 0; a burst
// below 1 would refuse everything, so it may not; unset, the burst is twice the rate.
Check Validator::rate_limit(std::string_view table, std::string_view rate_key,
                            std::string_view burst_key, std::string_view unit,
                            std::uint32_t& rate_out, std::uint32_t& burst_out) {
    constexpr int64_t max_rate_limit = 1'000'000;
    std::optional<int64_t> rate;
    if (auto problem = get(table, rate_key, rate)) {
        return problem;
    }
    if (rate) {
        if (*rate < 0 || *rate > max_rate_limit) {
            return issue(fmt::format("{}.{}", table, rate_key),
                         fmt::format("{} is out of range: expected 0..{} {} per second (0: no "
                                     "limit)",
                                     *rate, max_rate_limit, unit));
        }
        rate_out = static_cast<std::uint32_t>(*rate);
    }
    int64_t burst = std::max<int64_t>(1, int64_t{2} * rate_out);
    if (auto problem = get_positive(table, burst_key, max_rate_limit, unit, burst)) {
        return problem;
    }
    burst_out = static_cast<std::uint32_t>(std::min(burst, max_rate_limit));
    return std::nullopt;
}

// S4: tls_listen and the PEM files it needs, each read once here to catch a wrong path.
Check Validator::sip_tls() {
    auto& sip = config_.sip;
    std::optional<std::string> listen;
    if (auto problem = get("sip", "tls_listen", listen)) {
        return problem;
    }
    std::array<std::pair<std::string_view, std::optional<std::string>>, 3> files{
        {{"tls_certificate", {}}, {"tls_key", {}}, {"tls_ca_file", {}}}};
    for (auto& [key, value] : files) {
        if (auto problem = get("sip", key, value)) {
            return problem;
        }
    }
    if (!listen) {
        for (const auto& [key, value] : files) {
            if (value) {
                return issue(fmt::format("sip.{}", key),
                             "set without sip.tls_listen: TLS is off unless tls_listen is set");
            }
        }
        return std::nullopt;
    }
    if (auto problem = listen_url_problem(*listen)) {
        return issue("sip.tls_listen", fmt::format("bad URL {}: {}", in_quotes(*listen), *problem));
    }
    if (!iequals(listen->substr(0, 5), "sips:") || listen->find(';') != std::string::npos) {
        return issue("sip.tls_listen",
                     fmt::format("{} is not sips:HOST[:PORT] (no parameters)", in_quotes(*listen)));
    }
    sip.tls_listen = std::move(*listen);
    std::array<std::string*, 3> targets{&sip.tls_certificate, &sip.tls_key, &sip.tls_ca_file};
    for (std::size_t i = 0; i < files.size(); ++i) {
        const auto& [key, value] = files[i];
        const std::string name = fmt::format("sip.{}", key);
        if (!value && targets[i]->empty()) {
            return issue(name, "required key missing: sip.tls_listen needs it");
        }
        std::filesystem::path file{value ? *value : *targets[i]};
        if (file.empty()) {
            return issue(name, "must not be empty");
        }
        // Relative to the config file, as secret_file.
        if (file.is_relative()) {
            file = std::filesystem::path{config_.path}.parent_path() / file;
        }
        const std::string shown = in_quotes(file.string());
        FileRead read = read_regular_file(file.string(), max_config_bytes);
        if (!read.contents) {
            return issue(name, fmt::format("{}: {}", shown, read.problem));
        }
        if (read.contents->text.find("-----BEGIN ") == std::string::npos) {
            return issue(name, fmt::format("{}: not a PEM file (no -----BEGIN line)", shown));
        }
        if (key == "tls_key" && (read.contents->mode & S_IROTH) != 0) {
            return issue(name, fmt::format("{}: {}", shown, world_readable_what));
        }
        *targets[i] = file.string();
    }
    return std::nullopt;
}

Check Validator::dns() {
    const toml::node* node = find("dns", "servers");
    if (node == nullptr) {
        return std::nullopt;
    }
    const toml::array* servers = node->as_array();
    if (servers == nullptr) {
        return issue("dns.servers", fmt::format("expected array, got {}", type_name(node->type())));
    }
    for (std::size_t i = 0; i < servers->size(); ++i) {
        const toml::node& entry = *servers->get(i);
        const std::string key = fmt::format("dns.servers[{}]", i);
        const auto* text = entry.as_string();
        if (text == nullptr) {
            return issue(key, fmt::format("expected string, got {}", type_name(entry.type())));
        }
        if (auto problem = dns_server_problem(text->get())) {
            return issue(key, fmt::format("{}: {} (expected \"IPv4:port\" or \"[IPv6]:port\")",
                                          in_quotes(text->get()), *problem));
        }
        config_.dns.servers.push_back(text->get());
    }
    return std::nullopt;
}

Check Validator::log() {
    std::optional<std::string> level;
    if (auto problem = get("log", "level", level)) {
        return problem;
    }
    if (level) {
        if (!is_valid_log_level(*level)) {
            return issue("log.level",
                         fmt::format("{} is not one of trace, debug, info, warn, error, critical, "
                                     "off",
                                     in_quotes(*level)));
        }
        config_.log.level = std::move(*level);
    }
    return std::nullopt;
}

Check Validator::metrics() {
    std::optional<std::string> listen;
    if (auto problem = get("metrics", "listen", listen)) {
        return problem;
    }
    if (!listen) {
        return std::nullopt;
    }
    // The same syntax as a DNS server address: a numeric address and a port.
    if (auto problem = dns_server_problem(*listen)) {
        return issue("metrics.listen",
                     fmt::format("{}: {} (expected \"IPv4:port\" or \"[IPv6]:port\")",
                                 in_quotes(*listen), *problem));
    }
    if (listen->rfind("127.", 0) != 0 && listen->rfind("[::1]", 0) != 0) {
        warn("metrics.listen",
             fmt::format("{} is not a loopback address: the figures are readable by anyone "
                         "who can reach it",
                         in_quotes(*listen)));
    }
    config_.metrics.listen = std::move(*listen);
    return std::nullopt;
}

Check Validator::presence() {
    PresenceConfig& p = config_.presence;
    constexpr int64_t max_expires_limit = 86400;
    constexpr int64_t max_count_limit = 10'000'000;
    for (auto [key, field] :
         {std::pair{"subscribe_expires", &p.subscribe_expires},
          std::pair{"min_expires", &p.min_expires}, std::pair{"max_expires", &p.max_expires},
          std::pair{"publish_expires", &p.publish_expires}}) {
        int64_t seconds = field->count();
        if (auto problem = get_positive("presence", key, max_expires_limit, "seconds", seconds)) {
            return problem;
        }
        *field = std::chrono::seconds(seconds);
    }
    if (p.max_expires < p.min_expires) {
        return issue("presence.max_expires",
                     fmt::format("{} is below presence.min_expires ({})", p.max_expires.count(),
                                 p.min_expires.count()));
    }
    for (auto [key, field] :
         {std::pair{"max_per_user", &p.max_per_user}, std::pair{"max_total", &p.max_total}}) {
        auto count = static_cast<int64_t>(*field);
        if (auto problem = get_positive("presence", key, max_count_limit, "subscriptions", count)) {
            return problem;
        }
        *field = static_cast<std::size_t>(count);
    }
    std::optional<std::string> publish_to;
    if (auto problem = get("presence", "publish_to", publish_to)) {
        return problem;
    }
    if (publish_to && !publish_to->empty()) {
        auto problem = listen_url_problem(*publish_to);
        if (!problem && publish_to->find('*') != std::string::npos) {
            problem = "a wildcard host names no server";
        }
        if (problem) {
            return issue("presence.publish_to",
                         fmt::format("bad URL {}: {}", in_quotes(*publish_to), *problem));
        }
        p.publish_to = std::move(*publish_to);
    }
    std::optional<std::string> state_file;
    if (auto problem = get("presence", "state_file", state_file)) {
        return problem;
    }
    if (state_file && !state_file->empty()) {
        if (state_file->front() != '/') {
            return issue("presence.state_file",
                         fmt::format("{} is not an absolute path", in_quotes(*state_file)));
        }
        p.state_file = std::move(*state_file);
    }
    return std::nullopt;
}

Check Validator::calls() {
    CallsConfig& c = config_.calls;
    std::optional<bool> enabled;
    if (auto problem = get("calls", "enabled", enabled)) {
        return problem;
    }
    c.enabled = enabled.value_or(c.enabled);
    auto max_calls = static_cast<int64_t>(c.max_calls);
    if (auto problem = get_positive("calls", "max_calls", 1'000'000, "calls", max_calls)) {
        return problem;
    }
    c.max_calls = static_cast<std::size_t>(max_calls);
    int64_t timeout = c.answer_timeout.count();
    if (auto problem = get_positive("calls", "answer_timeout", 600, "seconds", timeout)) {
        return problem;
    }
    if (timeout < 5) {
        return issue("calls.answer_timeout",
                     fmt::format("{} is out of range: expected 5..600 seconds", timeout));
    }
    c.answer_timeout = std::chrono::seconds(timeout);
    return std::nullopt;
}

ConfigResult refuse(const std::string& path, Issue problem) {
    return {std::nullopt, ConfigError{path, std::move(problem.key), std::move(problem.what)}};
}

// parse_config with the config file's permission bits when it came from disk.
ConfigResult parse_checked(std::string_view text, const std::string& path,
                           std::optional<mode_t> mode) {
    try {
        toml::table root;
#if TOML_EXCEPTIONS
        try {
            root = toml::parse(text, std::string_view{path});
        } catch (const toml::parse_error& error) {
            return refuse(path, syntax_issue(text, error));
        }
#else
        toml::parse_result parsed = toml::parse(text, std::string_view{path});
        if (!parsed) {
            return refuse(path, syntax_issue(text, parsed.error()));
        }
        root = std::move(parsed).table();
#endif
        Validator validator{root, path};
        if (auto problem = validator.run()) {
            return refuse(path, std::move(*problem));
        }
        Config config = validator.take();
        if (mode && config.xmpp.secret_inline) {
            if ((*mode & S_IROTH) != 0) {
                return refuse(path, issue("xmpp.secret", std::string(world_readable_what)));
            }
            if ((*mode & S_IRGRP) != 0) {
                config.warnings.push_back(fmt::format(
                    "{}: xmpp.secret: file holding a secret is group-readable (mode {:04o}); make "
                    "sure only the gateway's group can read it",
                    path, *mode));
            }
        }
        return {std::move(config), std::nullopt};
    } catch (const std::bad_alloc&) {
        return refuse(path, issue("", "out of memory while loading"));
    } catch (...) {
        // Whatever it says could quote the file; say only that it failed.
        return refuse(path, issue("", "unexpected internal failure while loading"));
    }
}

} // namespace

std::string ConfigError::to_string() const {
    if (key.empty()) {
        return fmt::format("{}: {}", file, what);
    }
    return fmt::format("{}: {}: {}", file, key, what);
}

ConfigResult load_config(const std::string& path) {
    try {
        FileRead read = read_regular_file(path, max_config_bytes);
        if (!read.contents) {
            return refuse(path, issue("", std::move(read.problem)));
        }
        return parse_checked(read.contents->text, path, read.contents->mode);
    } catch (const std::bad_alloc&) {
        return refuse(path, issue("", "out of memory while loading"));
    } catch (...) {
        return refuse(path, issue("", "unexpected internal failure while loading"));
    }
}

ConfigResult parse_config(std::string_view toml_text, const std::string& path_for_messages) {
    return parse_checked(toml_text, path_for_messages, std::nullopt);
}

bool is_valid_log_level(std::string_view level) {
    constexpr std::array<std::string_view, 7> levels{"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};
    return std::find(levels.begin(), levels.end(), level) != levels.end();
}

} // namespace xsgw::core
