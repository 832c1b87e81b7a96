#include "xsgw/address/escape.hpp"

#include <array>

namespace xsgw::address {
namespace {

constexpr std::string_view upper_hex = "0123456789ABCDEF";

// XEP-0106 §3.2 table. The escape's hex is kept lower-case because that is
// the form the XEP writes and the form a lowercased local part ends up in.
struct Xep0106Code {
    char raw;
    char hi;
    char lo;
};
constexpr std::array<Xep0106Code, 10> xep0106_codes{{
    {' ', '2', '0'},
    {'"', '2', '2'},
    {'&', '2', '6'},
    {'\'', '2', '7'},
    {'/', '2', 'f'},
    {':', '3', 'a'},
    {'<', '3', 'c'},
    {'>', '3', 'e'},
    {'@', '4', '0'},
    {'\\', '5', 'c'},
}};

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// The character an escape at the start of `text` stands for, if it is one.
std::optional<char> escape_at(std::string_view text) {
    if (text.size() < 3 || text[0] != '\\') {
        return std::nullopt;
    }
    const char hi = lower(text[1]);
    const char lo = lower(text[2]);
    for (const auto& code : xep0106_codes) {
        if (code.hi == hi && code.lo == lo) {
            return code.raw;
        }
    }
    return std::nullopt;
}

// The code for a character a JID local part may not hold raw (the backslash
// is not one of them: it is only escaped where it would be misread).
const Xep0106Code* reserved_code(char c) {
    for (const auto& code : xep0106_codes) {
        if (code.raw == c && c != '\\') {
            return &code;
        }
    }
    return nullptr;
}

std::string percent_encode(std::string_view raw, bool (*allowed)(char)) {
    std::string out;
    out.reserve(raw.size());
    for (const char c : raw) {
        if (allowed(c)) {
            out += c;
        } else {
            const auto byte = static_cast<unsigned char>(c);
            out += '%';
            out += upper_hex[byte >> 4];
            out += upper_hex[byte & 0x0F];
        }
    }
    return out;
}

} // namespace

std::string xep0106_escape(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == '\\') {
            // A lone backslash is legal in a local part; only one that would be
            // read back as an escape has to be escaped itself.
            out += escape_at(raw.substr(i)) ? std::string_view("\\5c") : std::string_view("\\");
        } else if (const auto* code = reserved_code(c)) {
            out += '\\';
            out += code->hi;
            out += code->lo;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> xep0106_unescape(std::string_view escaped) {
    std::string out;
    out.reserve(escaped.size());
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        const char c = escaped[i];
        if (c == '\\') {
            if (const auto raw = escape_at(escaped.substr(i))) {
                out += *raw;
                i += 2;
                continue;
            }
        } else if (reserved_code(c) != nullptr) {
            return std::nullopt;
        }
        out += c;
    }
    return out;
}

bool sip_user_allows_literal(char c) {
    // RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved )
    constexpr std::string_view marks = "-_.!~*'()&=+$,;?/";
    return is_alnum(c) || (c != '\0' && marks.find(c) != std::string_view::npos);
}

bool sip_param_allows_literal(char c) {
    // RFC 3261 §25.1: paramchar = param-unreserved / unreserved / escaped
    constexpr std::string_view marks = "-_.!~*'()[]/:&+$";
    return is_alnum(c) || (c != '\0' && marks.find(c) != std::string_view::npos);
}

std::string percent_encode_user(std::string_view raw) {
    return percent_encode(raw, sip_user_allows_literal);
}

std::string percent_encode_param(std::string_view raw) {
    return percent_encode(raw, sip_param_allows_literal);
}

std::optional<std::string> percent_decode(std::string_view encoded) {
    std::string out;
    out.reserve(encoded.size());
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        if (encoded[i] != '%') {
            out += encoded[i];
            continue;
        }
        if (encoded.size() - i < 3) {
            return std::nullopt;
        }
        const int hi = hex_value(encoded[i + 1]);
        const int lo = hex_value(encoded[i + 2]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    if (!is_valid_utf8(out)) {
        return std::nullopt;
    }
    return out;
}

bool is_valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        std::size_t length = 0;
        unsigned char min_second = 0x80;
        unsigned char max_second = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3;
            if (lead == 0xE0) {
                min_second = 0xA0; // overlong
            }
            if (lead == 0xED) {
                max_second = 0x9F; // UTF-16 surrogates
            }
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4;
            if (lead == 0xF0) {
                min_second = 0x90; // overlong
            }
            if (lead == 0xF4) {
                max_second = 0x8F; // above U+10FFFF
            }
        } else {
            return false; // continuation byte, overlong C0/C1, or F5..FF
        }
        if (text.size() - i < length) {
            return false;
        }
        const auto second = static_cast<unsigned char>(text[i + 1]);
        if (second < min_second || second > max_second) {
            return false;
        }
        for (std::size_t k = 2; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if (next < 0x80 || next > 0xBF) {
                return false;
            }
        }
        i += length;
    }
    return true;
}

bool contains_control(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F) {
            return true;
        }
        // U+0080..U+009F are encoded as C2 80..C2 9F.
        if (c == 0xC2 && i + 1 < text.size()) {
            const auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                return true;
            }
        }
    }
    return false;
}

std::string ascii_lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = lower(c);
    }
    return out;
}

} // namespace xsgw::address
