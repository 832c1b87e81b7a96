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

TEST_CASE("S2 a NOTIFY and a SUBSCRIBE are read as the user agent reads them") {
    const std::string notify =
        "NOTIFY sip:alice*xmpp.test@127.0.0.1:5080 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-n1\r\nMax-Forwards: 70\r\n"
        "From: <sip:bob@simple.test>;tag=n1\r\nTo: <sip:alice*xmpp.test@sip.test>;tag=a1\r\n"
        "Call-ID: n1@127.0.0.2\r\nCSeq: 2 NOTIFY\r\nEvent: presence\r\n"
        "Subscription-State: TERMINATED;reason=rejected;expires=99999999999\r\n"
        "Content-Type: Application/PIDF+XML;charset=UTF-8\r\nContent-Length: 4\r\n\r\nbody";
    const auto n = xsgw::sip::parse_notify(notify);
    REQUIRE(n.has_value());
    CHECK(n->state == xsgw::sip::SubState::terminated);
    CHECK(n->reason == "rejected");
    CHECK(n->expires == std::chrono::seconds(86400L * 365)); // capped
    CHECK(n->content_type == "application/pidf+xml");
    CHECK(n->body == "body");
    const std::string pending = std::string(notify).replace(
        notify.find("TERMINATED;reason=rejected;expires=99999999999"),
        std::string("TERMINATED;reason=rejected;expires=99999999999").size(), "bogus");
    const auto p = xsgw::sip::parse_notify(pending);
    REQUIRE(p.has_value());
    CHECK(p->state == xsgw::sip::SubState::pending); // an unknown state is no subscription yet
    CHECK_FALSE(p->expires.has_value());

    const std::string subscribe =
        "SUBSCRIBE sip:alice*xmpp.test@sip.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK3\r\nMax-Forwards: 70\r\n"
        "From: <sip:bob@simple.test>;tag=3\r\nTo: <sip:alice*xmpp.test@sip.test>\r\n"
        "Call-ID: c3\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence;id=7\r\n"
        "Accept: application/pidf+xml, application/xpidf+xml\r\nExpires: 600\r\n"
        "Contact: <sip:bob@127.0.0.1:5062>\r\nContent-Length: 0\r\n\r\n";
    const auto s = xsgw::sip::parse_subscribe(subscribe);
    REQUIRE(s.has_value());
    CHECK(s->event == "presence");
    CHECK(s->accept == "application/pidf+xml, application/xpidf+xml");
    CHECK(s->expires == std::chrono::seconds(600));
    CHECK(s->from == "sip:bob@simple.test");
    CHECK(s->request_uri == "sip:alice*xmpp.test@sip.test");
    CHECK(s->call_id == "c3");
    CHECK_FALSE(s->refresh);
    CHECK_FALSE(xsgw::sip::parse_subscribe("SIP/2.0 200 OK\r\n\r\n").has_value());
}
