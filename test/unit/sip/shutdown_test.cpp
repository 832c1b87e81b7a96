// A graceful stop: the user agent ends its subscriptions and its watchers one window at
// a time, and every dialog ends properly on both sides (P6, P9) within the deadline.
#include "loopback.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingSubscribe;
using xsgw::sip::NextHop;
using xsgw::sip::NotifyInfo;
using xsgw::sip::OutgoingSubscribe;
using xsgw::sip::SubscriptionEnd;
using xsgw::sip::SubState;
using xsgw::sip::UserAgent;
using xsgw::sip::WatcherId;
using xsgw::test::listen_on;

namespace {

constexpr const char* pidf_closed =
    "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' "
    "entity='sip:u@xmpp.test'><tuple id='t'><status><basic>closed</basic></status>"
    "</tuple></presence>";

// Accepts every watcher with a pending NOTIFY; records the watchers and how each ended.
struct Accepting {
    explicit Accepting(UserAgent& ua) {
        ua.set_subscribe_handler([this, &ua](WatcherId id, const IncomingSubscribe& in) {
            UserAgent::SubscribeDecision d;
            d.status = 202;
            d.expires = in.expires.value_or(600s);
            watchers.push_back(id);
            d.after = [&ua, id] { ua.notify(id, SubState::pending, "", "", ""); };
            return d;
        });
        ua.set_watcher_end_handler(
            [this](WatcherId, const std::string& reason) { ++ended[reason]; });
    }
    std::vector<WatcherId> watchers;
    std::map<std::string, int> ended; ///< by reason: "timeout" when the final NOTIFY got a 2xx
};

// One subscription's story as its subscriber hears it.
struct Story {
    std::vector<NotifyInfo> notifies;
    std::optional<SubscriptionEnd> end;
};

std::string user(const char* who, int i) {
    return "sip:" + std::string(who) + std::to_string(i) + "@test";
}

} // namespace

TEST_CASE("P6 P9 shutdown ends more subscriptions and watchers than its window, cleanly") {
    constexpr int n = 600; // > UserAgent::end_window
    static_assert(n > static_cast<int>(UserAgent::end_window));
    EventLoop loop;
    std::vector<Story> gateway_side(n); // outlive the user agents
    std::vector<Story> peer_side(n);
    UserAgent peer(loop, listen_on(25092));
    UserAgent gateway(loop, listen_on(25091));
    Accepting peer_notifier(peer);
    Accepting gateway_notifier(gateway);
    const std::vector<NextHop> to_peer{{"127.0.0.1", 25092, "udp", "peer", {}}};
    const std::vector<NextHop> to_gateway{{"127.0.0.1", 25091, "udp", "gateway", {}}};
    int notified = 0;
    for (int i = 0; i < n; ++i) {
        // The gateway watches peer contacts; peer users watch gateway users.
        auto story = [&notified](Story& s) {
            return xsgw::sip::SubscriberCallbacks{[&s, &notified](const NotifyInfo& info) {
                                                      if (s.notifies.empty()) ++notified;
                                                      s.notifies.push_back(info);
                                                  },
                                                  [&s](const SubscriptionEnd& e) { s.end = e; }};
        };
        REQUIRE(gateway.subscribe({user("c", i), user("u", i), 600s}, to_peer,
                                  story(gateway_side[i])) != 0);
        REQUIRE(peer.subscribe({user("u", i), user("w", i), 600s}, to_gateway,
                               story(peer_side[i])) != 0);
    }
    REQUIRE(loop.run_until([&] { return notified == 2 * n; }, 20s));
    REQUIRE(gateway.subscriber_count() == n);
    REQUIRE(gateway.watcher_count() == n);

    // What the bridge does first: every watcher gets NOTIFY terminated with a closed PIDF.
    // More than a window of them: the rest wait for room.
    for (WatcherId id : gateway_notifier.watchers)
        REQUIRE(gateway.notify(id, SubState::terminated, "noresource", "application/pidf+xml",
                               pidf_closed));
    const auto began = std::chrono::steady_clock::now();
    const auto report = gateway.shutdown(5000ms);
    const auto took = std::chrono::steady_clock::now() - began;

    CHECK(took < 5s);
    CHECK(report.stack_done);
    CHECK(report.subscriptions == n);
    CHECK(report.watchers == n);
    CHECK(report.subscriptions_left == 0);
    CHECK(report.watchers_left == 0);
    CHECK(report.peak_outstanding <= UserAgent::end_window);
    CHECK(gateway.subscriber_count() == 0);
    CHECK(gateway.watcher_count() == 0);
    // The notifier sent each un-SUBSCRIBE its final NOTIFY and every one got a 2xx (a 481
    // would end the watcher as "giveup").
    REQUIRE(loop.run_until([&] { return peer.watcher_count() == 0; }, 5s));
    CHECK(peer_notifier.ended.size() == 1);
    CHECK(peer_notifier.ended["timeout"] == n);
    // Every watcher of ours heard the end, with the closed PIDF the bridge gave.
    REQUIRE(loop.run_until([&] { return peer.subscriber_count() == 0; }, 5s));
    int closed = 0;
    for (const Story& s : peer_side) {
        REQUIRE(s.end.has_value());
        CHECK(s.end->status == 0);
        CHECK(s.end->reason == "noresource");
        if (s.notifies.back().state == SubState::terminated &&
            s.notifies.back().body == pidf_closed)
            ++closed;
    }
    CHECK(closed == n);
    // And our own subscribers were told nothing: the bridge went first.
    for (const Story& s : gateway_side)
        CHECK_FALSE(s.end.has_value());
}

TEST_CASE("P9 shutdown ends a watcher the bridge left with NOTIFY terminated;reason=deactivated") {
    EventLoop loop;
    Story story;
    UserAgent peer(loop, listen_on(25094));
    UserAgent gateway(loop, listen_on(25093));
    Accepting gateway_notifier(gateway);
    REQUIRE(peer.subscribe({user("u", 1), user("w", 1), 600s},
                           {NextHop{"127.0.0.1", 25093, "udp", "gateway", {}}},
                           {[&](const NotifyInfo& info) { story.notifies.push_back(info); },
                            [&](const SubscriptionEnd& e) { story.end = e; }}) != 0);
    REQUIRE(loop.run_until([&] { return !story.notifies.empty(); }, 5s));
    const auto report = gateway.shutdown(2000ms);
    CHECK(report.watchers == 1);
    CHECK(report.watchers_left == 0);
    // deactivated: the subscriber's nua subscribes again at once (P4), so it is the
    // second NOTIFY that shows the end reached it.
    CHECK(story.notifies.size() >= 2);
}
