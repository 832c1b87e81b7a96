// The text helpers' fast paths (ASCII in runs) against the plain definitions:
// one code point at a time, as the functions were first written. Exhaustive over
// every string of up to two bytes, then random strings over the bytes that matter.
#include "xsgw/translate/message.hpp"
#include "xsgw/translate/xml_text.hpp"

#include <doctest/doctest.h>
#include <random>
#include <string>
#include <string_view>

namespace {

using xsgw::translate::append_utf8;
using xsgw::translate::is_xml_char;
using xsgw::translate::next_code_point;

std::string reference_escaped(std::string_view utf8, bool attribute) {
    std::string out;
    std::size_t pos = 0;
    while (pos < utf8.size()) {
        const char32_t c = next_code_point(utf8, pos).value_or(0xFFFD);
        if (c == '&') {
            out += "&amp;";
        } else if (c == '<') {
            out += "&lt;";
        } else if (c == '>') {
            out += "&gt;";
        } else if (c == '"') {
            out += "&quot;";
        } else if (c == '\'') {
            out += "&apos;";
        } else if (c == '\r') {
            out += "&#13;";
        } else if (c == '\n') {
            out += attribute ? "&#10;" : "\n";
        } else if (c == '\t') {
            out += attribute ? "&#9;" : "\t";
        } else if (is_xml_char(c)) {
            append_utf8(out, c);
        }
    }
    return out;
}

std::string reference_xml_safe(std::string_view utf8) {
    std::string out;
    std::size_t pos = 0;
    while (pos < utf8.size()) {
        const char32_t c = next_code_point(utf8, pos).value_or(0xFFFD);
        if (c == '\r') {
            out += '\n';
            if (pos < utf8.size() && utf8[pos] == '\n') ++pos;
            continue;
        }
        if (is_xml_char(c)) append_utf8(out, c);
    }
    return out;
}

bool reference_valid(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        if (!next_code_point(text, pos)) return false;
    }
    return true;
}

void check_same(const std::string& text) {
    CAPTURE(text);
    for (const bool attribute : {false, true}) {
        std::string fast = "prefix ";
        xsgw::translate::append_xml_escaped(fast, text, attribute);
        CHECK(fast == "prefix " + reference_escaped(text, attribute));
    }
    CHECK(xsgw::translate::xml_safe_text(text) == reference_xml_safe(text));
    CHECK(xsgw::translate::is_valid_utf8(text) == reference_valid(text));
}

} // namespace

TEST_CASE("M6 S3 XML text helpers: the ASCII fast path changes nothing, every 0-2 byte string") {
    check_same("");
    for (int a = 0; a < 256; ++a) {
        check_same(std::string(1, static_cast<char>(a)));
        for (int b = 0; b < 256; ++b) {
            const char pair[] = {static_cast<char>(a), static_cast<char>(b)};
            check_same(std::string(pair, 2));
        }
    }
}

TEST_CASE("M6 S3 XML text helpers: the ASCII fast path changes nothing, random mixed strings") {
    // Runs of ASCII around markup, controls, CR/LF, multi-byte sequences whole and cut.
    static constexpr std::string_view pieces[] = {"a",
                                                  "Z",
                                                  " ",
                                                  "&",
                                                  "<",
                                                  ">",
                                                  "\"",
                                                  "'",
                                                  "\r",
                                                  "\n",
                                                  "\t",
                                                  "\r\n",
                                                  "\x01",
                                                  "\x1f",
                                                  "\x7f",
                                                  "\xc3\xa9",
                                                  "\xe2\x82\xac",
                                                  "\xf0\x9f\x98\x80",
                                                  "\xef\xbf\xbe",
                                                  "\xed\xa0\x80",
                                                  "\xc3",
                                                  "\xe2\x82",
                                                  "\xff",
                                                  "\x80",
                                                  "plain words here"};
    std::mt19937 random(20261125);
    std::uniform_int_distribution<std::size_t> piece(0, std::size(pieces) - 1);
    std::uniform_int_distribution<int> length(1, 12);
    for (int i = 0; i < 20000; ++i) {
        std::string text;
        for (int n = length(random); n > 0; --n)
            text += pieces[piece(random)];
        check_same(text);
    }
}
