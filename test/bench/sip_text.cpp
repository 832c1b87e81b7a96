#include "sip_text.hpp"

#include <charconv>
#include <fmt/format.h>
#include <iterator>

namespace xsgw::bench {
namespace {

constexpr auto npos = std::string_view::npos;

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

std::size_t ifind(std::string_view text, std::string_view needle) {
    if (needle.size() > text.size()) {
        return npos;
    }
    for (std::size_t i = 0; i + needle.size() <= text.size(); ++i) {
        if (iequals(text.substr(i, needle.size()), needle)) {
            return i;
        }
    }
    return npos;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// RFC 3261 §7.3.3 compact forms of the headers the benchmark reads.
std::string_view full_name(std::string_view name) {
    if (name.size() != 1) {
        return name;
    }
    switch (lower(name[0])) {
    case 'v':
        return "via";
    case 'f':
        return "from";
    case 't':
        return "to";
    case 'i':
        return "call-id";
    case 'l':
        return "content-length";
    case 'c':
        return "content-type";
    case 'm':
        return "contact";
    case 'o':
        return "event";
    default:
        return name;
    }
}

std::string_view word(std::string_view line, int index) {
    std::size_t start = 0;
    for (int i = 0; i < index; ++i) {
        start = line.find(' ', start);
        if (start == npos) {
            return {};
        }
        ++start;
    }
    const std::size_t end = line.find(' ', start);
    return line.substr(start, end == npos ? npos : end - start);
}

} // namespace

bool SipMessage::is_request() const {
    return !start_line.starts_with("SIP/2.0 ");
}

std::string_view SipMessage::method() const {
    return is_request() ? word(start_line, 0) : std::string_view();
}

std::string_view SipMessage::request_uri() const {
    return is_request() ? word(start_line, 1) : std::string_view();
}

int SipMessage::status() const {
    if (is_request()) {
        return 0;
    }
    const std::string_view code = word(start_line, 1);
    int value = 0;
    std::from_chars(code.data(), code.data() + code.size(), value);
    return value;
}

std::optional<std::string_view> SipMessage::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequals(full_name(n), name)) {
            return v;
        }
    }
    return std::nullopt;
}

std::optional<SipMessage> parse_sip(std::string_view datagram) {
    const std::size_t end_of_headers = datagram.find("\r\n\r\n");
    if (end_of_headers == npos) {
        return std::nullopt;
    }
    SipMessage m;
    std::string_view head = datagram.substr(0, end_of_headers);
    const std::size_t first_eol = head.find("\r\n");
    m.start_line = head.substr(0, first_eol);
    if (m.start_line.empty()) {
        return std::nullopt;
    }
    head = first_eol == npos ? std::string_view() : head.substr(first_eol + 2);
    while (!head.empty()) {
        const std::size_t eol = head.find("\r\n");
        const std::string_view line = head.substr(0, eol);
        head = eol == npos ? std::string_view() : head.substr(eol + 2);
        const std::size_t colon = line.find(':');
        if (colon == npos) {
            continue; // folded continuation lines are not used by the peers here
        }
        m.headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
    std::string_view body = datagram.substr(end_of_headers + 4);
    if (auto length = m.header("content-length")) {
        std::size_t n = 0;
        std::from_chars(length->data(), length->data() + length->size(), n);
        if (n < body.size()) {
            body = body.substr(0, n);
        }
    }
    m.body = body;
    return m;
}

std::string_view via_branch(std::string_view via) {
    const std::size_t at = ifind(via, ";branch=");
    if (at == npos) {
        return {};
    }
    std::string_view value = via.substr(at + 8);
    const std::size_t end = value.find_first_of(";, \t");
    return value.substr(0, end);
}

std::string sip_response(const SipMessage& request, int status, std::string_view phrase,
                         std::string_view to_tag, std::string_view extra_headers) {
    std::string out = fmt::format("SIP/2.0 {} {}\r\n", status, phrase);
    for (const auto& [name, value] : request.headers) {
        const std::string_view full = full_name(name);
        if (iequals(full, "via")) {
            fmt::format_to(std::back_inserter(out), "Via: {}\r\n", value);
        }
    }
    if (auto from = request.header("from")) {
        fmt::format_to(std::back_inserter(out), "From: {}\r\n", *from);
    }
    if (auto to = request.header("to")) {
        if (ifind(*to, ";tag=") == npos) {
            fmt::format_to(std::back_inserter(out), "To: {};tag={}\r\n", *to, to_tag);
        } else {
            fmt::format_to(std::back_inserter(out), "To: {}\r\n", *to);
        }
    }
    if (auto call_id = request.header("call-id")) {
        fmt::format_to(std::back_inserter(out), "Call-ID: {}\r\n", *call_id);
    }
    if (auto cseq = request.header("cseq")) {
        fmt::format_to(std::back_inserter(out), "CSeq: {}\r\n", *cseq);
    }
    out += extra_headers;
    out += "Content-Length: 0\r\n\r\n";
    return out;
}

} // namespace xsgw::bench
