// S5 requests per source per second: the token bucket table on a stepped clock, then two
// user agents on loopback, one sending faster than the other takes.
#include "loopback.hpp"
#include "raw_sender.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingMessage;
using xsgw::sip::IncomingSubscribe;
using xsgw::sip::NextHop;
using xsgw::sip::NotifyInfo;
using xsgw::sip::OutgoingMessage;
using xsgw::sip::OutgoingSubscribe;
using xsgw::sip::RateLimiter;
using xsgw::sip::Reply;
using xsgw::sip::SendResult;
using xsgw::sip::SubscriptionEnd;
using xsgw::sip::SubState;
using xsgw::sip::UserAgent;
using xsgw::sip::WatcherId;
using xsgw::test::listen_on;
using xsgw::test::RawSender;

namespace {

const RateLimiter::Clock::time_point t0{std::chrono::hours(1000)};

RateLimiter::Clock::time_point at(std::chrono::milliseconds ms) {
    return t0 + ms;
}

} // namespace

TEST_CASE("S5 rate limiter: burst, refill and Retry-After, step by step") {
    struct Step {
        std::chrono::milliseconds when;
        std::string source;
        bool allowed;
        std::chrono::seconds retry_after{0}; // when refused
    };
    struct Case {
        std::string name;
        RateLimiter::Limits limits;
        std::vector<Step> steps;
    };
    const std::vector<Case> cases = {
        {"a burst is taken at once, the next is refused",
         {1, 3},
         {{0ms, "a", true}, {0ms, "a", true}, {0ms, "a", true}, {0ms, "a", false, 1s}}},
        {"tokens come back at the rate",
         {2, 2},
         {{0ms, "a", true},
          {0ms, "a", true},
          {0ms, "a", false, 1s},
          {499ms, "a", false, 1s},
          {500ms, "a", true},
          {500ms, "a", false, 1s},
          {1500ms, "a", true},
          {1500ms, "a", true},
          {1500ms, "a", false, 1s}}},
        {"no more than the burst after a long pause",
         {10, 2},
         {{0ms, "a", true}, {60000ms, "a", true}, {60000ms, "a", true}, {60000ms, "a", false, 1s}}},
        {"Retry-After is the wait for a token, rounded up, at least 1 s",
         {1, 1},
         {{0ms, "a", true},
          {0ms, "a", false, 1s},
          {1ms, "a", false, 1s},
          {999ms, "a", false, 1s},
          {1000ms, "a", true}}},
        {"each source has its own bucket",
         {1, 1},
         {{0ms, "192.0.2.1", true},
          {0ms, "192.0.2.1", false, 1s},
          {0ms, "192.0.2.2", true},
          {0ms, "2001:db8::1", true},
          {0ms, "2001:db8::1", false, 1s}}},
        {"rate 0 is no limit",
         {0, 1},
         {{0ms, "a", true}, {0ms, "a", true}, {0ms, "a", true}, {0ms, "a", true}}},
    };
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        RateLimiter limiter(c.limits);
        std::size_t refused = 0;
        for (std::size_t i = 0; i < c.steps.size(); ++i) {
            const Step& step = c.steps[i];
            INFO("step " << i);
            const auto d = limiter.admit(step.source, at(step.when));
            CHECK(d.allowed == step.allowed);
            if (!step.allowed) {
                ++refused;
                CHECK(d.retry_after == step.retry_after);
            }
        }
        CHECK(limiter.refused() == refused);
    }
}

TEST_CASE("S5 rate limiter: limit 0 keeps no table; setting it applies at once") {
    RateLimiter limiter({0, 0});
    for (int i = 0; i < 1000; ++i)
        CHECK(limiter.admit("198.51.100." + std::to_string(i % 256), t0).allowed);
    CHECK(limiter.sources() == 0);
    CHECK(limiter.refused() == 0);

    limiter.set_limits({1, 5});
    for (int i = 0; i < 5; ++i)
        CHECK(limiter.admit("a", t0).allowed);
    CHECK_FALSE(limiter.admit("a", t0).allowed);
    // A smaller burst caps what a bucket holds at once.
    CHECK(limiter.admit("b", t0).allowed); // b has 4 left
    limiter.set_limits({1, 1});
    CHECK(limiter.admit("b", t0).allowed);
    CHECK_FALSE(limiter.admit("b", t0).allowed);
    // Off again: everything passes and the table is gone.
    limiter.set_limits({0, 1});
    CHECK(limiter.admit("a", t0).allowed);
    CHECK(limiter.sources() == 0);
}

TEST_CASE("S5 rate limiter: the table is bounded; full buckets go first, else the oldest") {
    SUBCASE("a refilled bucket makes room before an older one still draining") {
        RateLimiter limiter({1, 2}, 3);
        CHECK(limiter.admit("a", at(0ms)).allowed);
        CHECK(limiter.admit("a", at(0ms)).allowed); // a: 0 left
        CHECK(limiter.admit("b", at(0ms)).allowed); // b: 1 left
        CHECK(limiter.admit("c", at(0ms)).allowed);
        CHECK(limiter.admit("c", at(0ms)).allowed); // c: 0 left
        // At 1 s: a has 1, b is full (2), c has 1. A new source takes b's place, not a's.
        CHECK(limiter.admit("d", at(1000ms)).allowed);
        CHECK(limiter.sources() == 3);
        CHECK(limiter.admit("a", at(1000ms)).allowed);
        CHECK_FALSE(limiter.admit("a", at(1000ms)).allowed); // a kept its bucket
    }
    SUBCASE("no full bucket: the least recently seen goes") {
        RateLimiter limiter({1, 1}, 3);
        for (const char* s : {"a", "b", "c"})
            CHECK(limiter.admit(s, at(0ms)).allowed);
        CHECK(limiter.admit("b", at(100ms)).allowed == false); // b seen again: a is oldest
        CHECK(limiter.admit("d", at(200ms)).allowed);
        CHECK(limiter.sources() == 3);
        CHECK(limiter.admit("a", at(200ms)).allowed);       // a starts again, full
        CHECK_FALSE(limiter.admit("b", at(200ms)).allowed); // b is still limited
    }
    SUBCASE("a flood from many addresses stays within the bound") {
        RateLimiter limiter({5, 10}, 1000);
        int allowed = 0;
        std::size_t most = 0;
        for (int i = 0; i < 100000; ++i) {
            const std::string source = "10." + std::to_string(i / 65536) + "." +
                                       std::to_string((i / 256) % 256) + "." +
                                       std::to_string(i % 256);
            allowed += limiter.admit(source, at(std::chrono::milliseconds(i / 100))).allowed;
            most = std::max(most, limiter.sources());
        }
        CHECK(allowed == 100000); // each address is new: a full bucket
        CHECK(most == 1000);
    }
    SUBCASE("idle full buckets are dropped as requests come") {
        RateLimiter limiter({10, 10}, 1000);
        for (int i = 0; i < 6; ++i)
            CHECK(limiter.admit("s" + std::to_string(i), at(0ms)).allowed);
        CHECK(limiter.sources() == 6);
        // 2 s later each has refilled: every request drops up to two of them.
        for (int i = 0; i < 3; ++i)
            CHECK(limiter.admit("x", at(2000ms)).allowed);
        CHECK(limiter.sources() == 1);
    }
}

TEST_CASE("S5 rate limiter: at most one log line per source per 10 s, with the count") {
    RateLimiter limiter({1, 1});
    CHECK(limiter.admit("a", at(0ms)).log_refused == 0);
    const auto first = limiter.admit("a", at(0ms));
    CHECK_FALSE(first.allowed);
    CHECK(first.log_refused == 1); // the first refusal is told at once
    for (int i = 1; i <= 5; ++i) {
        const auto d = limiter.admit("a", at(std::chrono::milliseconds(i * 100)));
        CHECK_FALSE(d.allowed);
        CHECK(d.log_refused == 0);
    }
    // Another source has its own line.
    CHECK(limiter.admit("b", at(500ms)).allowed);
    CHECK(limiter.admit("b", at(500ms)).log_refused == 1);
    // Within 10 s of the first line nothing more is told, even when a request passes.
    CHECK(limiter.admit("a", at(9999ms)).allowed);
    // 10 s after it, the five since and this one are told together.
    const auto later = limiter.admit("a", at(10000ms));
    CHECK_FALSE(later.allowed);
    CHECK(later.log_refused == 6);
    CHECK(limiter.refused() == 1 + 5 + 1 + 1);
}

TEST_CASE("S5 MESSAGEs past the per-source limit get 503 with Retry-After; the rest arrive") {
    // The sender is a bare UDP socket: a Sofia sender would itself send again after the
    // Retry-After, hiding the 503 from the test.
    EventLoop loop;
    auto config = listen_on(25402);
    config.max_requests_per_source = 1;
    config.burst_per_source = 3;
    UserAgent receiver(loop, config);
    std::vector<std::string> got;
    receiver.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        got.push_back(m.body);
        reply.respond(202, "Accepted");
    });
    RawSender sender(25402);
    REQUIRE(sender.ok());
    for (int i = 0; i < 6; ++i)
        sender.message(i);
    REQUIRE(loop.run_until([&] { return sender.receive() == 6; }, 10s));
    int delivered = 0;
    int limited = 0;
    for (const auto& response : sender.responses) {
        INFO(response);
        if (response.starts_with("SIP/2.0 202 ")) {
            ++delivered;
        } else {
            CHECK(response.starts_with("SIP/2.0 503 "));
            CHECK(response.find("\r\nRetry-After: 1\r\n") != std::string::npos);
            ++limited;
        }
    }
    // The burst of 3 passes; the next token is a second away, far more than the test takes.
    CHECK(delivered == 3);
    CHECK(limited == 3);
    CHECK(got.size() == 3);
    CHECK(receiver.rate_limit_stats().messages == 3);
    CHECK(receiver.rate_limit_stats().subscribes == 0);

    // Off (a reload): taken at once.
    receiver.set_rate_limits({0, 1});
    sender.responses.clear();
    for (int i = 6; i < 10; ++i)
        sender.message(i);
    REQUIRE(loop.run_until([&] { return sender.receive() == 4; }, 10s));
    for (const auto& response : sender.responses)
        CHECK(response.starts_with("SIP/2.0 202 "));
    CHECK(got.size() == 7);
    CHECK(receiver.rate_limit_stats().messages == 3);
}

TEST_CASE("S5 NOTIFYs in our subscription are not limited; a second new SUBSCRIBE is") {
    EventLoop loop;
    std::vector<NotifyInfo> notifies;
    std::optional<SubscriptionEnd> end;
    auto strict = listen_on(25403);
    strict.max_requests_per_source = 1;
    strict.burst_per_source = 1;
    UserAgent gateway(loop, strict); // watches, and takes one new request per second
    auto peer_config = listen_on(25404);
    peer_config.max_requests_per_source = 1;
    peer_config.burst_per_source = 1;
    UserAgent peer(loop, peer_config); // a presence server, also strict
    std::vector<WatcherId> watchers;
    peer.set_subscribe_handler([&](WatcherId id, const IncomingSubscribe& in) {
        watchers.push_back(id);
        UserAgent::SubscribeDecision d;
        d.expires = in.expires.value_or(3600s);
        d.after = [&peer, id] { peer.notify(id, SubState::active, "", "", ""); };
        return d;
    });
    // Two new subscriptions from one address within the second: the second is refused 503
    // (nua may try it again after Retry-After on its own; the refusal is counted).
    const OutgoingSubscribe request{"sip:bob@example.test", "sip:alice*xmpp.test@sip.test", 600s};
    const OutgoingSubscribe other{"sip:carol@example.test", "sip:alice*xmpp.test@sip.test", 600s};
    const auto id = gateway.subscribe(request, {NextHop{"127.0.0.1", 25404, "udp", "peer", {}}},
                                      {[&](const NotifyInfo& n) { notifies.push_back(n); },
                                       [&](const SubscriptionEnd& e) { end = e; }});
    const auto second =
        gateway.subscribe(other, {NextHop{"127.0.0.1", 25404, "udp", "peer", {}}},
                          {[](const NotifyInfo&) {}, [](const SubscriptionEnd&) {}});
    REQUIRE(id != 0);
    REQUIRE(second != 0);
    REQUIRE(loop.run_until([&] { return notifies.size() == 1; }, 5s));
    REQUIRE(loop.run_until([&] { return peer.rate_limit_stats().subscribes >= 1; }, 5s));
    CHECK(watchers.size() == 1);
    // A presence server sends what changes, as fast as it changes: all of it arrives.
    for (int i = 0; i < 10; ++i)
        REQUIRE(peer.notify(watchers.at(0), SubState::active, "", "", ""));
    REQUIRE(loop.run_until([&] { return notifies.size() == 11; }, 5s));
    CHECK(gateway.rate_limit_stats().subscribes == 0);
    CHECK(gateway.rate_limit_stats().messages == 0);
    CHECK_FALSE(end.has_value());
}
