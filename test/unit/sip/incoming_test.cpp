// What xsgw reads of a SIP request off the wire: Sofia-SIP's parser and our reading of it
// (M6, S2), the code path of every incoming MESSAGE.
#include "xsgw/sip/incoming.hpp"

#include <doctest/doctest.h>
#include <string>

using xsgw::sip::parse_request;

namespace {

std::string request(const std::string& headers, const std::string& body) {
    return "MESSAGE sip:alice*xmpp.test@sip.test SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
           "CSeq: 1 MESSAGE\r\n" +
           headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

} // namespace

TEST_CASE("M6 S2 a MESSAGE off the wire: URIs, header values and body as the bridge gets them") {
    const auto m = parse_request(request("Max-Forwards: 12\r\n"
                                         "From: \"Bob\" <sip:bob@simple.test;gr=x>;tag=1\r\n"
                                         "To: <sip:alice*xmpp.test@sip.test>\r\n"
                                         "Call-ID: c1@simple.test\r\n"
                                         "Subject: greetings\r\n"
                                         "Content-Language: fr\r\n"
                                         "Content-Type: text/plain;charset=UTF-8\r\n",
                                         "h\xc3\xa9llo"));
    REQUIRE(m);
    CHECK(m->request_uri == "sip:alice*xmpp.test@sip.test");
    CHECK(m->from == "sip:bob@simple.test;gr=x");
    CHECK(m->from_header.find("<sip:bob@simple.test;gr=x>") != std::string::npos);
    CHECK(m->from_header.find("tag=1") != std::string::npos);
    CHECK(m->to == "sip:alice*xmpp.test@sip.test");
    CHECK(m->call_id == "c1@simple.test");
    CHECK(m->subject == "greetings");
    CHECK(m->content_language == "fr");
    CHECK(m->content_type == "text/plain;charset=UTF-8");
    CHECK(m->body == "h\xc3\xa9llo");
    CHECK(m->max_forwards == 12);
}

TEST_CASE("M6 S2 compact header forms and folded lines read as the long ones") {
    const auto m = parse_request(request("f: <sip:bob@simple.test>;tag=2\r\n"
                                         "t: sip:alice*xmpp.test@sip.test\r\n"
                                         "i: c2\r\n"
                                         "s: one\r\n  two\r\n"
                                         "c: text/plain\r\n",
                                         "hi"));
    REQUIRE(m);
    CHECK(m->from == "sip:bob@simple.test");
    CHECK(m->call_id == "c2");
    CHECK(m->content_type == "text/plain");
    CHECK(m->subject.find("one") == 0);
    CHECK(m->subject.find("two") != std::string::npos);
    CHECK(m->subject.find('\n') == std::string::npos);
    CHECK(m->max_forwards == 70); // none: the default
}

TEST_CASE("M6 S2 what is no request, or no SIP, reads as nothing") {
    const std::string rows[] = {
        "",
        "garbage",
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nCSeq: 1 MESSAGE\r\n"
        "Content-Length: 0\r\n\r\n",
        "MESSAGE sip:a@b SIP/2.0\r\n", // headers never end
        "MESSAGE\r\n\r\n",
    };
    for (const auto& text : rows) {
        CAPTURE(text);
        CHECK_FALSE(parse_request(text));
    }
}
