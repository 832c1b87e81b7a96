// Who may speak for a domain (issue 5 part 7), the user agent's half: with a source check set,
// a MESSAGE or new SUBSCRIBE waits for its verdict; a pass runs its handler, a refusal is the
// answer, and a stop answers what still waits.
#include "loopback.hpp"
#include "raw_sender.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <functional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingMessage;
using xsgw::sip::IncomingSubscribe;
using xsgw::sip::Reply;
using xsgw::sip::UserAgent;
using xsgw::sip::WatcherId;
using xsgw::test::listen_on;
using xsgw::test::RawSender;
using xsgw::test::sip_request;

namespace {

// A check that answers from a timer (as a DNS lookup would) or at once, by the From host.
struct FakeCheck {
    explicit FakeCheck(EventLoop& loop) : timer(loop) {}
    xsgw::core::Timer timer;
    std::vector<std::pair<std::string, std::string>> asked; // (from, source)
    std::function<void(const UserAgent::SourceVerdict&)> waiting;

    void operator()(const std::string& from, const std::string& source,
                    std::function<void(const UserAgent::SourceVerdict&)> done) {
        asked.emplace_back(from, source);
        if (from.find("@good.test") != std::string::npos) {
            waiting = std::move(done);
            timer.start(20ms, [this] { waiting({}); });
        } else if (from.find("@hold.test") != std::string::npos) {
            waiting = std::move(done); // never answered: the stop must
        } else {
            done({403, "Source 127.0.0.1 is not a SIP server of the From domain", ""});
        }
    }
};

} // namespace

TEST_CASE("from-domain check: MESSAGE and SUBSCRIBE wait for the verdict; refusals answer 403") {
    EventLoop loop;
    UserAgent ua(loop, listen_on(25096));
    FakeCheck check(loop);
    ua.set_source_check([&](const std::string& from, const std::string& source, auto done) {
        check(from, source, std::move(done));
    });
    std::vector<IncomingMessage> messages;
    int subscribes = 0;
    ua.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        messages.push_back(m);
        reply.respond(200, "OK");
    });
    ua.set_subscribe_handler([&](WatcherId, const IncomingSubscribe&) {
        ++subscribes;
        UserAgent::SubscribeDecision refuse;
        refuse.status = 480;
        refuse.phrase = "Taken, then refused by this test";
        return refuse;
    });
    RawSender sender(25096);
    REQUIRE(sender.ok());
    struct Row {
        std::string method;
        std::string from;
        std::string expected;
        std::size_t messages;
        int subscribes;
    };
    const Row rows[] = {
        {"MESSAGE", "sip:carol@bad.test", "SIP/2.0 403 Source 127.0.0.1 is not a SIP server", 0, 0},
        {"MESSAGE", "sip:carol@good.test", "SIP/2.0 200 ", 1, 0},
        {"SUBSCRIBE", "sip:carol@bad.test", "SIP/2.0 403 Source 127.0.0.1", 1, 0},
        {"SUBSCRIBE", "sip:carol@good.test", "SIP/2.0 480 Taken, then refused", 1, 1},
    };
    int n = 0;
    for (const auto& row : rows) {
        CAPTURE(row.method);
        CAPTURE(row.from);
        sender.send(sip_request(row.method, 25096, "fc" + std::to_string(++n), sender.port(), 70,
                                row.from));
        REQUIRE(
            loop.run_until([&] { return sender.receive() == static_cast<std::size_t>(n); }, 5s));
        CHECK(sender.responses.back().starts_with(row.expected));
        CHECK(messages.size() == row.messages);
        CHECK(subscribes == row.subscribes);
        REQUIRE(check.asked.size() == static_cast<std::size_t>(n));
        CHECK(check.asked.back().first == row.from);
        CHECK(check.asked.back().second == "127.0.0.1");
    }
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].body == "hi");
    CHECK(messages[0].from == "sip:carol@good.test");
    CHECK(ua.source_refused() == 2);
    CHECK(ua.source_checks_waiting() == 0);

    // One left waiting when the user agent stops gets 503 with Retry-After.
    sender.send(sip_request("MESSAGE", 25096, "fc-hold", sender.port(), 70, "sip:c@hold.test"));
    REQUIRE(loop.run_until([&] { return ua.source_checks_waiting() == 1; }, 5s));
    (void)ua.shutdown(1s);
    REQUIRE(loop.run_until([&] { return sender.receive() == 5; }, 5s));
    CHECK(sender.responses.back().starts_with("SIP/2.0 503 Gateway shutting down"));
    CHECK(sender.responses.back().find("Retry-After: 10") != std::string::npos);
    check.waiting({}); // a late verdict finds nothing waiting
    CHECK(messages.size() == 1);
}

TEST_CASE("from-domain check: an INVITE cancelled while it waits for its verdict is forgotten; "
          "a late pass starts no call") {
    EventLoop loop;
    UserAgent ua(loop, listen_on(25096));
    FakeCheck check(loop);
    ua.set_source_check([&](const std::string& from, const std::string& source, auto done) {
        check(from, source, std::move(done));
    });
    int calls = 0;
    ua.set_call_handler([&](xsgw::sip::CallId id, const xsgw::sip::IncomingCall&) {
        ++calls;
        ua.hang_up(id, 486, "Busy Here");
        return xsgw::sip::CallCallbacks{};
    });
    RawSender peer(25096);
    REQUIRE(peer.ok());
    const std::string port = std::to_string(peer.port());
    const std::string ruri = "sip:alice*xmpp.test@127.0.0.1:25096";
    const std::string sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 "
                            "0\r\nm=audio 4000 RTP/AVP 0\r\n";
    const std::string common = "Via: SIP/2.0/UDP 127.0.0.1:" + port +
                               ";branch=z9hG4bK-inv1;rport\r\nMax-Forwards: 70\r\n"
                               "From: <sip:carol@hold.test>;tag=c1\r\nTo: <" +
                               ruri + ">\r\nCall-ID: inv1@127.0.0.1\r\n";
    peer.send("INVITE " + ruri + " SIP/2.0\r\n" + common +
              "CSeq: 1 INVITE\r\nContact: <sip:carol@127.0.0.1:" + port +
              ">\r\nContent-Type: application/sdp\r\nContent-Length: " +
              std::to_string(sdp.size()) + "\r\n\r\n" + sdp);
    REQUIRE(loop.run_until([&] { return ua.source_checks_waiting() == 1; }, 5s));
    peer.send("CANCEL " + ruri + " SIP/2.0\r\n" + common +
              "CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    // 200 for the CANCEL, 487 for the INVITE; the waiting request is gone.
    REQUIRE(
        loop.run_until([&] { return peer.receive() >= 2 && ua.source_checks_waiting() == 0; }, 5s));
    bool got_487 = false;
    for (const auto& r : peer.responses)
        got_487 = got_487 || r.starts_with("SIP/2.0 487");
    CHECK(got_487);
    check.waiting({}); // the verdict comes late, a pass: it finds nothing (at once)
    CHECK(calls == 0);
    CHECK(ua.call_count() == 0);
}
