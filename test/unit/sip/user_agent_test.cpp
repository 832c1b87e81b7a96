// The user agent against another instance of itself on loopback: send, receive,
// fail-over (D5) and per-recipient ordering (M10).
#include "loopback.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingMessage;
using xsgw::sip::NextHop;
using xsgw::sip::OutgoingMessage;
using xsgw::sip::Reply;
using xsgw::sip::SendResult;
using xsgw::sip::UserAgent;
using xsgw::test::listen_on;

namespace {

OutgoingMessage message(const std::string& body) {
    OutgoingMessage m;
    m.request_uri = "sip:bob@127.0.0.1:25062";
    m.to = m.request_uri;
    m.from = "sip:alice*xmpp.test@sip.test;gr=phone";
    m.body = body;
    return m;
}

} // namespace

TEST_CASE("M1 a MESSAGE goes out to the given next hop and comes in whole") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25061));
    UserAgent receiver(loop, listen_on(25062));
    std::vector<IncomingMessage> got;
    receiver.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        got.push_back(m);
        reply.respond(202, "Accepted");
    });
    auto m = message("h\xc3\xa9llo \xe2\x9c\x93");
    m.subject = "greetings";
    m.content_language = "fr";
    std::optional<SendResult> result;
    (void)sender.send_message(m, {NextHop{"127.0.0.1", 25062, "udp", "receiver", {}}},
                              [&](const SendResult& r) { result = r; });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 5s));
    CHECK(result->status == 202);
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == m.body);
    CHECK(got[0].content_type == "text/plain;charset=UTF-8");
    CHECK(got[0].subject == "greetings");
    CHECK(got[0].content_language == "fr");
    CHECK(got[0].from == "sip:alice*xmpp.test@sip.test;gr=phone");
    CHECK(got[0].from_header.find("<sip:alice*xmpp.test@sip.test;gr=phone>") == 0);
    CHECK(got[0].request_uri == "sip:bob@127.0.0.1:25062");
    CHECK(got[0].to == "sip:bob@127.0.0.1:25062");
    CHECK(!got[0].call_id.empty());
}

TEST_CASE("M8 a Call-ID given (from a thread) is the one sent; each MESSAGE has its own else") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25061));
    UserAgent receiver(loop, listen_on(25062));
    std::vector<IncomingMessage> got;
    receiver.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        got.push_back(m);
        reply.respond(200, "OK");
    });
    auto threaded = message("one");
    threaded.call_id = "thread-7@sip.test";
    int answered = 0;
    for (const auto& m : {threaded, message("two"), message("three")}) {
        (void)sender.send_message(m, {NextHop{"127.0.0.1", 25062, "udp", "receiver", {}}},
                                  [&](const SendResult&) { ++answered; });
    }
    REQUIRE(loop.run_until([&] { return answered == 3; }, 5s));
    REQUIRE(got.size() == 3);
    CHECK(got[0].call_id == "thread-7@sip.test");
    CHECK(got[1].call_id != got[0].call_id);
    CHECK(got[2].call_id != got[1].call_id);
    CHECK(got[1].to == "sip:bob@127.0.0.1:25062");
}

TEST_CASE("D5 a dead first hop is skipped; the sender hears only the last outcome") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25063));
    UserAgent receiver(loop, listen_on(25064));
    int received = 0;
    receiver.set_message_handler([&](const IncomingMessage&, Reply& reply) {
        ++received;
        reply.respond(200, "OK");
    });
    auto m = message("fail over");
    m.request_uri = "sip:bob@example.test";
    std::optional<SendResult> result;
    // Nothing listens on TCP 25069: connection refused, then the next hop.
    (void)sender.send_message(m,
                              {NextHop{"127.0.0.1", 25069, "tcp", "dead", {}},
                               NextHop{"127.0.0.1", 25064, "udp", "alive", {}}},
                              [&](const SendResult& r) { result = r; });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 10s));
    CHECK(result->status == 200);
    CHECK(result->targets_tried == 2);
    CHECK(received == 1);
}

TEST_CASE("D5 when every hop fails the sender gets the last failure") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25065));
    std::optional<SendResult> result;
    (void)sender.send_message(message("nobody home"),
                              {NextHop{"127.0.0.1", 25068, "tcp", "dead1", {}},
                               NextHop{"127.0.0.1", 25067, "tcp", "dead2", {}}},
                              [&](const SendResult& r) { result = r; });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 10s));
    CHECK(result->status == 503);
    CHECK(result->targets_tried == 2);
}

TEST_CASE("M10 messages to one recipient leave in order, one at a time") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25070));
    UserAgent receiver(loop, listen_on(25071));
    std::vector<std::string> order;
    receiver.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        order.push_back(m.body);
        reply.respond(202, "Accepted");
    });
    std::vector<int> statuses;
    for (int i = 0; i < 5; ++i) {
        auto m = message("n" + std::to_string(i));
        (void)sender.send_message(m, {NextHop{"127.0.0.1", 25071, "udp", "r", {}}},
                                  [&](const SendResult& r) { statuses.push_back(r.status); });
    }
    CHECK(sender.queued() == 5); // one in flight, four waiting behind it
    REQUIRE(loop.run_until([&] { return statuses.size() == 5; }, 10s));
    CHECK(order == std::vector<std::string>{"n0", "n1", "n2", "n3", "n4"});
    CHECK(sender.queued() == 0);
}

TEST_CASE("sip: a request the handler leaves unanswered gets 500, never silence") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25072));
    UserAgent receiver(loop, listen_on(25073));
    receiver.set_message_handler([](const IncomingMessage&, Reply&) {});
    std::optional<SendResult> result;
    (void)sender.send_message(message("x"), {NextHop{"127.0.0.1", 25073, "udp", "r", {}}},
                              [&](const SendResult& r) { result = r; });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 5s));
    CHECK(result->status == 500);
}

TEST_CASE("S5 past the queue bounds a MESSAGE is refused at once, and the queue drains") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25074));
    UserAgent receiver(loop, listen_on(25075));
    receiver.set_message_handler(
        [](const IncomingMessage&, Reply& reply) { reply.respond(200, "OK"); });
    sender.set_queue_limits({.per_recipient = 2, .total = 4});
    int done = 0;
    auto send = [&](const std::string& uri) {
        auto m = message("q");
        m.request_uri = uri;
        m.to = uri;
        return sender.send_message(m, {NextHop{"127.0.0.1", 25075, "udp", "r", {}}},
                                   [&](const SendResult&) { ++done; });
    };
    // One in flight plus two waiting for bob; the fourth to bob is refused.
    CHECK(send("sip:bob@127.0.0.1:25075"));
    CHECK(send("sip:bob@127.0.0.1:25075"));
    CHECK(send("sip:bob@127.0.0.1:25075"));
    CHECK_FALSE(send("sip:bob@127.0.0.1:25075"));
    // The total bound: one more for carol fits, the next does not.
    CHECK(send("sip:carol@127.0.0.1:25075"));
    CHECK_FALSE(send("sip:dave@127.0.0.1:25075"));
    CHECK(sender.queued() == 4);
    REQUIRE(loop.run_until([&] { return done == 4; }, 10s));
    CHECK(sender.queued() == 0);
    CHECK(send("sip:dave@127.0.0.1:25075"));
    REQUIRE(loop.run_until([&] { return done == 5; }, 10s));
}

TEST_CASE("M1 M10 a handle kept between MESSAGEs: each sender's own From, no dialog, new Call-ID") {
    EventLoop loop;
    UserAgent sender(loop, listen_on(25061));
    UserAgent receiver(loop, listen_on(25062));
    std::vector<IncomingMessage> got;
    receiver.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        got.push_back(m);
        reply.respond(200, "OK");
    });
    // alice, carol, alice, alice to the one recipient, each after the last was answered.
    const std::string senders[] = {"sip:alice*xmpp.test@sip.test", "sip:carol*xmpp.test@sip.test",
                                   "sip:alice*xmpp.test@sip.test", "sip:alice*xmpp.test@sip.test"};
    for (const auto& from : senders) {
        auto m = message("hi");
        m.from = from;
        std::optional<SendResult> result;
        (void)sender.send_message(m, {NextHop{"127.0.0.1", 25062, "udp", "receiver", {}}},
                                  [&](const SendResult& r) { result = r; });
        REQUIRE(loop.run_until([&] { return result.has_value(); }, 5s));
        CHECK(result->status == 200);
    }
    REQUIRE(got.size() == 4);
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i].from == senders[i]);
        CHECK(got[i].to == "sip:bob@127.0.0.1:25062"); // no To tag: no dialog was made
    }
    CHECK(sender.message_handles_made() == 2); // alice's was used three times, carol's once
    CHECK(sender.idle_message_handles() == 2);
    CHECK(got[2].call_id != got[0].call_id);
    CHECK(got[3].call_id != got[2].call_id);
}
