// S6: the user agent honours Max-Forwards as a forwarding hop: a MESSAGE or a new SUBSCRIBE
// that arrives with 0 is answered 483 and goes no further; 1 is taken.
#include "loopback.hpp"
#include "raw_sender.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingMessage;
using xsgw::sip::IncomingSubscribe;
using xsgw::sip::Reply;
using xsgw::sip::UserAgent;
using xsgw::sip::WatcherId;
using xsgw::test::listen_on;
using xsgw::test::RawSender;

namespace {

std::string request(const std::string& method, int port, int max_forwards, const std::string& id,
                    int from_port) {
    const std::string ruri = "sip:alice*xmpp.test@127.0.0.1:" + std::to_string(port);
    const std::string body = method == "MESSAGE" ? "hi" : "";
    return method + " " + ruri + " SIP/2.0\r\n" +
           "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(from_port) + ";branch=z9hG4bK-s6-" + id +
           ";rport\r\n" + "Max-Forwards: " + std::to_string(max_forwards) + "\r\n" +
           "From: <sip:carol@127.0.0.1>;tag=s6\r\n" + "To: <" + ruri + ">\r\n" + "Call-ID: s6-" +
           id + "@127.0.0.1\r\n" + "CSeq: 1 " + method + "\r\n" +
           (method == "SUBSCRIBE"
                ? "Event: presence\r\nExpires: 60\r\nContact: <sip:carol@127.0.0.1:" +
                      std::to_string(from_port) + ">\r\n"
                : "Content-Type: text/plain\r\n") +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

} // namespace

TEST_CASE("S6 a MESSAGE or a new SUBSCRIBE with Max-Forwards 0 is answered 483 and not taken") {
    EventLoop loop;
    UserAgent ua(loop, listen_on(25095));
    int messages = 0;
    int subscribes = 0;
    ua.set_message_handler([&](const IncomingMessage&, Reply& reply) {
        ++messages;
        reply.respond(200, "OK");
    });
    ua.set_subscribe_handler([&](WatcherId, const IncomingSubscribe&) {
        ++subscribes;
        UserAgent::SubscribeDecision refuse;
        refuse.status = 403;
        refuse.phrase = "Not in this test";
        return refuse;
    });
    RawSender sender(25095);
    REQUIRE(sender.ok());
    struct Row {
        std::string method;
        int max_forwards;
        std::string expected; // status line start
        int messages;         // handler calls after it
        int subscribes;
    };
    const Row rows[] = {
        {"MESSAGE", 0, "SIP/2.0 483 ", 0, 0},
        {"MESSAGE", 1, "SIP/2.0 200 ", 1, 0},
        {"SUBSCRIBE", 0, "SIP/2.0 483 ", 1, 0},
        {"SUBSCRIBE", 1, "SIP/2.0 403 ", 1, 1},
    };
    int n = 0;
    for (const auto& row : rows) {
        CAPTURE(row.method);
        CAPTURE(row.max_forwards);
        sender.send(
            request(row.method, 25095, row.max_forwards, std::to_string(++n), sender.port()));
        REQUIRE(
            loop.run_until([&] { return sender.receive() == static_cast<std::size_t>(n); }, 5s));
        CHECK(sender.responses.back().starts_with(row.expected));
        CHECK(messages == row.messages);
        CHECK(subscribes == row.subscribes);
    }
    CHECK(ua.too_many_hops() == 2);
}
