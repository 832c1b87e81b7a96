// Small text helpers for writing XML and comparing protocol tokens: the
// translate area's PIDF and message code and the bridge's stanza writer share
// them.
#pragma once

#include "xsgw/translate/message.hpp" // next_code_point, append_utf8

#include <algorithm>
#include <string>
#include <string_view>

namespace xsgw::translate {

inline char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// text without the XML white space (the S production) around it.
inline std::string_view trim_xml_space(std::string_view text) {
    constexpr std::string_view space = " \t\r\n";
    const auto first = text.find_first_not_of(space);
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(space);
    return text.substr(first, last - first + 1);
}

/// ASCII case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

/// XML 1.0 Char production.
inline bool is_xml_char(char32_t c) {
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/// Appends text as XML character data, or as an attribute value between double quotes:
/// markup characters escaped, invalid UTF-8 as U+FFFD, characters XML cannot carry
/// dropped. CR always, and TAB / LF when `attribute`, are written as references: a
/// parser would otherwise normalise them away.
/// Appends the run of bytes from `pos` that `plain` accepts as they are and moves `pos` past
/// it; true when text is left after the run. The fast path of the writers below: ASCII text
/// goes over in runs, everything else one code point at a time.
template <class Plain>
bool append_plain_run(std::string& out, std::string_view text, std::size_t& pos, Plain plain) {
    std::size_t run = pos;
    while (run < text.size() && plain(text[run])) {
        ++run;
    }
    out.append(text.substr(pos, run - pos));
    pos = run;
    return pos < text.size();
}

inline void append_xml_escaped(std::string& out, std::string_view utf8, bool attribute = false) {
    const auto plain = [attribute](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        if (u < 0x20) {
            return !attribute && (ch == '\n' || ch == '\t');
        }
        return u < 0x80 && ch != '&' && ch != '<' && ch != '>' && ch != '"' && ch != '\'';
    };
    std::size_t pos = 0;
    while (append_plain_run(out, utf8, pos, plain)) {
        const char32_t c = next_code_point(utf8, pos).value_or(0xFFFD);
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        case '\r':
            out += "&#13;";
            break;
        case '\n':
            out += "&#10;"; // only in an attribute: plain text took it above
            break;
        case '\t':
            out += "&#9;";
            break;
        default:
            if (is_xml_char(c)) {
                append_utf8(out, c);
            }
        }
    }
}

} // namespace xsgw::translate
