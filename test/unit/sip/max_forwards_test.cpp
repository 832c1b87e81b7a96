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
        sender.send(xsgw::test::sip_request(row.method, 25095, "s6-" + std::to_string(++n),
                                            sender.port(), row.max_forwards));
        REQUIRE(
            loop.run_until([&] { return sender.receive() == static_cast<std::size_t>(n); }, 5s));
        CHECK(sender.responses.back().starts_with(row.expected));
        CHECK(messages == row.messages);
        CHECK(subscribes == row.subscribes);
    }
    CHECK(ua.too_many_hops() == 2);
}
