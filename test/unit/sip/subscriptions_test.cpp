// The user agent's presence roles against another instance of itself on loopback:
// one subscribes (P1-P7 as the SIP side sees them), the other is the notifier (P8, P9),
// and a publication (P13).
#include "loopback.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingSubscribe;
using xsgw::sip::NextHop;
using xsgw::sip::NotifyInfo;
using xsgw::sip::OutgoingSubscribe;
using xsgw::sip::SubscriberCallbacks;
using xsgw::sip::SubscriptionEnd;
using xsgw::sip::SubState;
using xsgw::sip::UserAgent;
using xsgw::sip::WatcherId;
using xsgw::test::listen_on;

namespace {

constexpr const char* pidf_open =
    "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' "
    "entity='sip:bob@example.test'><tuple id='t'><status><basic>open</basic></status>"
    "</tuple></presence>";

// A notifier that accepts every watcher and records what happens.
struct Notifier {
    explicit Notifier(UserAgent& ua, int status = 202) : agent(ua) {
        ua.set_subscribe_handler([this, status](WatcherId id, const IncomingSubscribe& in) {
            requests.push_back(in);
            UserAgent::SubscribeDecision d;
            d.status = status;
            d.expires = in.expires.value_or(3600s);
            if (status >= 300) return d;
            watchers.push_back(id);
            d.after = [this, id, in] {
                if (in.expires && in.expires->count() == 0) {
                    agent.notify(id, SubState::terminated, "timeout", "application/pidf+xml",
                                 pidf_open);
                } else {
                    agent.notify(id, SubState::pending, "", "", "");
                }
            };
            return d;
        });
        ua.set_watcher_end_handler(
            [this](WatcherId id, const std::string& reason) { ended.emplace_back(id, reason); });
    }
    UserAgent& agent;
    std::vector<IncomingSubscribe> requests;
    std::vector<WatcherId> watchers;
    std::vector<std::pair<WatcherId, std::string>> ended;
};

struct Watching {
    std::vector<NotifyInfo> notifies;
    std::optional<SubscriptionEnd> end;
    SubscriberCallbacks callbacks() {
        return {[this](const NotifyInfo& n) { notifies.push_back(n); },
                [this](const SubscriptionEnd& e) { end = e; }};
    }
};

OutgoingSubscribe to_bob(std::chrono::seconds expires) {
    return {"sip:bob@example.test", "sip:alice*xmpp.test@sip.test", expires};
}

} // namespace

TEST_CASE("P1 P2 P8 subscribe: pending, then active with a body, then the watcher ends it (P6)") {
    EventLoop loop;
    Watching w; // outlives the user agents, which may still report while they stop
    UserAgent gateway(loop, listen_on(25071));
    UserAgent peer(loop, listen_on(25072));
    Notifier notifier(peer);
    const auto id = gateway.subscribe(
        to_bob(600s), {NextHop{"127.0.0.1", 25072, "udp", "peer", {}}}, w.callbacks());
    REQUIRE(id != 0);
    REQUIRE(loop.run_until([&] { return !w.notifies.empty(); }, 5s));
    REQUIRE(notifier.requests.size() == 1);
    CHECK(notifier.requests[0].event == "presence");
    CHECK(notifier.requests[0].accept == "application/pidf+xml");
    CHECK(notifier.requests[0].expires == 600s);
    CHECK(notifier.requests[0].from == "sip:alice*xmpp.test@sip.test");
    CHECK(notifier.requests[0].request_uri == "sip:bob@example.test");
    CHECK_FALSE(notifier.requests[0].refresh);
    CHECK(w.notifies[0].state == SubState::pending);
    CHECK(w.notifies[0].body.empty());

    REQUIRE(peer.notify(notifier.watchers.at(0), SubState::active, "", "application/pidf+xml",
                        pidf_open));
    REQUIRE(loop.run_until([&] { return w.notifies.size() == 2; }, 5s));
    CHECK(w.notifies[1].state == SubState::active);
    CHECK(w.notifies[1].content_type == "application/pidf+xml");
    CHECK(w.notifies[1].body == pidf_open);
    REQUIRE(w.notifies[1].expires.has_value());
    CHECK(*w.notifies[1].expires <= 600s);
    CHECK(gateway.subscriber_count() == 1);

    gateway.unsubscribe(id);
    // The notifier hears that the watcher went; our side forgets it, with no callback.
    REQUIRE(loop.run_until([&] { return !notifier.ended.empty(); }, 5s));
    CHECK(notifier.ended[0].first == notifier.watchers[0]);
    CHECK(loop.run_until([&] { return gateway.subscriber_count() == 0; }, 5s));
    CHECK(loop.run_until([&] { return peer.watcher_count() == 0; }, 5s));
    CHECK_FALSE(w.end.has_value());
}

TEST_CASE("P4 a refusal ends the subscription with its status") {
    EventLoop loop;
    Watching w; // outlives the user agents, which may still report while they stop
    UserAgent gateway(loop, listen_on(25073));
    UserAgent peer(loop, listen_on(25074));
    Notifier notifier(peer, 403);
    REQUIRE(gateway.subscribe(to_bob(600s), {NextHop{"127.0.0.1", 25074, "udp", "peer", {}}},
                              w.callbacks()) != 0);
    REQUIRE(loop.run_until([&] { return w.end.has_value(); }, 5s));
    CHECK(w.end->status == 403);
    CHECK(w.notifies.empty());
    CHECK(gateway.subscriber_count() == 0);
    CHECK(peer.watcher_count() == 0);
}

TEST_CASE("P8 P9 the notifier ends a watcher with a reason; the subscriber hears it once") {
    EventLoop loop;
    Watching w; // outlives the user agents, which may still report while they stop
    UserAgent gateway(loop, listen_on(25075));
    UserAgent peer(loop, listen_on(25076));
    Notifier notifier(peer);
    REQUIRE(gateway.subscribe(to_bob(600s), {NextHop{"127.0.0.1", 25076, "udp", "peer", {}}},
                              w.callbacks()) != 0);
    REQUIRE(loop.run_until([&] { return !w.notifies.empty(); }, 5s));
    REQUIRE(peer.notify(notifier.watchers.at(0), SubState::terminated, "rejected", "", ""));
    REQUIRE(loop.run_until([&] { return w.end.has_value(); }, 5s));
    CHECK(w.notifies.back().state == SubState::terminated);
    CHECK(w.notifies.back().reason == "rejected");
    CHECK(w.end->status == 0);
    CHECK(w.end->reason == "rejected");
    CHECK(loop.run_until([&] { return peer.watcher_count() == 0; }, 5s));
    CHECK(notifier.ended.empty()); // the notifier ended it itself: no word back
    CHECK_FALSE(peer.notify(notifier.watchers.at(0), SubState::active, "", "", ""));
}

TEST_CASE("P7 a fetch (Expires: 0) gets one terminated NOTIFY with the state, then ends") {
    EventLoop loop;
    Watching w; // outlives the user agents, which may still report while they stop
    UserAgent gateway(loop, listen_on(25077));
    UserAgent peer(loop, listen_on(25078));
    Notifier notifier(peer);
    REQUIRE(gateway.subscribe(to_bob(0s), {NextHop{"127.0.0.1", 25078, "udp", "peer", {}}},
                              w.callbacks()) != 0);
    REQUIRE(loop.run_until([&] { return w.end.has_value(); }, 5s));
    REQUIRE(w.notifies.size() == 1);
    CHECK(w.notifies[0].state == SubState::terminated);
    CHECK(w.notifies[0].body == pidf_open);
    CHECK(w.end->status == 0);
    CHECK(loop.run_until([&] { return peer.watcher_count() == 0; }, 5s));
}

TEST_CASE("P4 terminated;reason=deactivated: the subscription is made again, nothing ends") {
    EventLoop loop;
    Watching w;
    UserAgent gateway(loop, listen_on(25085));
    UserAgent peer(loop, listen_on(25086));
    Notifier notifier(peer);
    REQUIRE(gateway.subscribe(to_bob(600s), {NextHop{"127.0.0.1", 25086, "udp", "peer", {}}},
                              w.callbacks()) != 0);
    REQUIRE(loop.run_until([&] { return !w.notifies.empty(); }, 5s));
    REQUIRE(peer.notify(notifier.watchers.at(0), SubState::terminated, "deactivated", "", ""));
    // RFC 6665 §4.1.3: the subscriber may subscribe again at once; nua does, in a new dialog.
    REQUIRE(loop.run_until([&] { return notifier.requests.size() == 2; }, 10s));
    CHECK_FALSE(notifier.requests[1].refresh);
    CHECK(notifier.requests[1].from == "sip:alice*xmpp.test@sip.test");
    CHECK_FALSE(w.end.has_value());
    CHECK(gateway.subscriber_count() == 1);
    // The NOTIFY that said deactivated reached the bridge as "pending": nothing to tell XMPP.
    REQUIRE(w.notifies.size() >= 2);
    CHECK(w.notifies[1].state == SubState::pending);
}

TEST_CASE("P5 Timer N: a 2xx without a NOTIFY ends the subscription with 408") {
    EventLoop loop;
    Watching w;
    UserAgent gateway(loop, listen_on(25083));
    UserAgent peer(loop, listen_on(25084));
    gateway.set_timer_n(300ms);
    int asked = 0;
    peer.set_subscribe_handler([&](WatcherId, const IncomingSubscribe& in) {
        ++asked;
        UserAgent::SubscribeDecision d;
        d.status = 202;
        d.expires = in.expires.value_or(600s); // and never a NOTIFY
        return d;
    });
    REQUIRE(gateway.subscribe(to_bob(600s), {NextHop{"127.0.0.1", 25084, "udp", "peer", {}}},
                              w.callbacks()) != 0);
    REQUIRE(loop.run_until([&] { return w.end.has_value(); }, 5s));
    CHECK(asked == 1);
    CHECK(w.notifies.empty());
    CHECK(w.end->status == 408);
    CHECK(gateway.subscriber_count() == 0);
}

TEST_CASE("D5 a subscription fails over to the next hop") {
    EventLoop loop;
    Watching w; // outlives the user agents, which may still report while they stop
    UserAgent gateway(loop, listen_on(25081));
    UserAgent peer(loop, listen_on(25082));
    Notifier notifier(peer);
    REQUIRE(gateway.subscribe(to_bob(600s),
                              {NextHop{"127.0.0.1", 25089, "tcp", "dead", {}},
                               NextHop{"127.0.0.1", 25082, "udp", "peer", {}}},
                              w.callbacks()) != 0);
    REQUIRE(loop.run_until([&] { return !w.notifies.empty(); }, 10s));
    CHECK(notifier.requests.size() == 1);
    CHECK_FALSE(w.end.has_value());
}
