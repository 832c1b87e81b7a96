// message/cpim parsing (RFC 3862) for M6, and its robustness (S2).
#include "xsgw/translate/message.hpp"

#include <doctest/doctest.h>
#include <string>
#include <string_view>
#include <vector>

using namespace xsgw::translate;

namespace {

CpimMessage parsed(std::string_view body) {
    const auto result = parse_cpim(body);
    INFO((result ? std::string() : result.error().reason));
    REQUIRE(result.has_value());
    return *result;
}

// RFC 3862 §3.4's example, with CRLF line ends.
const std::string rfc_example = "From: MR SANDERS <im:piglet@100akerwood.com>\r\n"
                                "To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n"
                                "DateTime: 2000-12-13T13:40:00-08:00\r\n"
                                "Subject: the weather will be fine today\r\n"
                                "Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n"
                                "NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
                                "MyFeatures.VitalMessageOption: Confirmation-requested\r\n"
                                "MyFeatures.WackyMessageOption: Use-silly-font\r\n"
                                "\r\n"
                                "Content-type: text/xml; charset=utf-8\r\n"
                                "Content-ID: <1234567890@foo.com>\r\n"
                                "\r\n"
                                "<body>\r\n"
                                "Here is the text of my message.\r\n"
                                "</body>\r\n";

} // namespace

TEST_CASE("M6 CPIM: the RFC 3862 example parses into headers and inner content") {
    const auto cpim = parsed(rfc_example);
    CHECK(cpim.from == "MR SANDERS <im:piglet@100akerwood.com>");
    CHECK(cpim.to == "Depressed Donkey <im:eeyore@100akerwood.com>");
    CHECK(cpim.datetime == "2000-12-13T13:40:00-08:00");
    CHECK(cpim.subject == "the weather will be fine today");
    CHECK(cpim.subject_lang.empty());
    CHECK(cpim.headers.size() == 8);
    CHECK(cpim.headers[4].name == "Subject");
    CHECK(cpim.headers[4].lang == "fr");
    CHECK(cpim.headers[4].value == "beau temps prevu pour aujourd'hui");
    CHECK(cpim.headers[6].name == "MyFeatures.VitalMessageOption");
    CHECK(cpim.content_type == "text/xml; charset=utf-8");
    REQUIRE(cpim.content_headers.size() == 2);
    CHECK(cpim.content_headers[1].first == "Content-ID");
    CHECK(cpim.content == "<body>\r\nHere is the text of my message.\r\n</body>\r\n");
}

TEST_CASE("M6 CPIM: a Subject without ;lang is preferred, else the first one") {
    CHECK(parsed("Subject:;lang=fr bonjour\r\nSubject: hello\r\n\r\n\r\n").subject == "hello");
    const auto only_lang = parsed("Subject:;lang=fr bonjour\r\nSubject:;lang=de hallo\r\n\r\n\r\n");
    CHECK(only_lang.subject == "bonjour");
    CHECK(only_lang.subject_lang == "fr");
}

TEST_CASE("M6 CPIM: escapes in header values are decoded (RFC 3862 §3.2)") {
    const auto cpim = parsed("Subject: a\\\"b\\\\c\\u00e9\\u20AC\\n\\q\r\n\r\n\r\n");
    CHECK(cpim.subject == "a\"b\\c\xC3\xA9\xE2\x82\xAC\n\\q");
}

TEST_CASE("M6 CPIM: bare LF line ends are tolerated, folded MIME headers unfolded") {
    const auto cpim = parsed("From: <sip:a@b>\n\nContent-Type: text/plain;\n charset=utf-8\n\nhi");
    CHECK(cpim.content_type == "text/plain; charset=utf-8");
    CHECK(cpim.content == "hi");
}

TEST_CASE("M6 CPIM: no MIME headers and an empty content are allowed") {
    const auto cpim = parsed("From: <sip:a@b>\r\n\r\n\r\n");
    CHECK(cpim.content_type.empty());
    CHECK(cpim.content.empty());
    CHECK(parsed("\r\n\r\nbody").content == "body");
}

TEST_CASE("M6 CPIM: Require naming only RFC 3862 headers is fine, anything else refused") {
    CHECK(parsed("Require: Subject, DateTime\r\nSubject: x\r\n\r\n\r\n").subject == "x");
    const auto refused = parse_cpim("NS: imdn <urn:ietf:params:imdn>\r\n"
                                    "Require: imdn.Disposition-Notification\r\n\r\n\r\n");
    REQUIRE(!refused.has_value());
    CHECK(refused.error().reason.find("imdn.Disposition-Notification") != std::string::npos);
}

TEST_CASE("M6 CPIM: CTE is read lowercase for the caller to check") {
    CHECK(parsed("\r\nContent-Transfer-Encoding: BASE64\r\n\r\naGk=").content_transfer_encoding ==
          "base64");
}

TEST_CASE("M6 CPIM: malformed bodies are refused with a reason") {
    const std::vector<std::string> bad = {
        "",
        "From: <sip:a@b>",
        "From: <sip:a@b>\r\n",
        "From: <sip:a@b>\r\n\r\nContent-Type: text/plain\r\n",
        "no colon\r\n\r\n\r\n",
        ": empty name\r\n\r\n\r\n",
        "Bad Name: x\r\n\r\n\r\n",
        "Subject: bad \xFF utf8\r\n\r\n\r\n",
        "Subject: nul \x01 control\r\n\r\n\r\n",
        "\r\n continuation first\r\n\r\n",
        "\r\nno colon mime\r\n\r\n",
    };
    for (const auto& body : bad) {
        CAPTURE(body);
        const auto result = parse_cpim(body);
        REQUIRE(!result.has_value());
        CHECK(!result.error().reason.empty());
    }
}

TEST_CASE("S2 CPIM parser survives every prefix and every single-byte change of a message") {
    for (std::size_t length = 0; length <= rfc_example.size(); ++length) {
        (void)parse_cpim(std::string_view(rfc_example).substr(0, length));
    }
    for (std::size_t at = 0; at < rfc_example.size(); ++at) {
        for (const char replacement : {'\0', '\r', '\n', ':', ';', '\\', '\xFF', ' '}) {
            std::string changed = rfc_example;
            changed[at] = replacement;
            const auto result = parse_cpim(changed);
            if (result) {
                CHECK(is_valid_utf8(result->subject));
            }
        }
    }
}

TEST_CASE("S2 CPIM parser bounds the number of headers") {
    std::string many;
    for (int i = 0; i < 1000; ++i) {
        many += "X-H: v\r\n";
    }
    many += "\r\n\r\n";
    CHECK_FALSE(parse_cpim(many).has_value());
}
