// The restore of presence.state_file after a restart, paced by PresenceBridge::restore_window,
// and the bounds of P14:
// the real bridge with its real user agent, resolver and component link, against a SIP
// notifier on loopback (that answers 202 and NOTIFYs only when the test lets it) and a
// scripted XEP-0114 server.
#include "../fake_component_server.hpp"
#include "../sip/loopback.hpp"
#include "xsgw/bridge/presence_bridge.hpp"
#include "xsgw/dns/resolver.hpp"
#include "xsgw/sip/user_agent.hpp"
#include "xsgw/xmpp/component_link.hpp"

#include <arpa/inet.h>
#include <cstdlib>
#include <doctest/doctest.h>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <gloox/tag.h>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <set>
#include <sofia-sip/su_wait.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using xsgw::bridge::PresenceBridge;
using xsgw::core::EventLoop;
using xsgw::core::FdWatch;
using xsgw::sip::IncomingSubscribe;
using xsgw::sip::SubState;
using xsgw::sip::UserAgent;
using xsgw::sip::WatcherId;

namespace {

constexpr std::size_t window = PresenceBridge::restore_window;

/// The SIP contacts' presence server: 202 to every SUBSCRIBE; the first NOTIFY (active)
/// goes at once only while `prompt` is set, else when release() says so.
struct Notifier {
    explicit Notifier(UserAgent& ua) : agent(ua) {
        ua.set_subscribe_handler([this](WatcherId id, const IncomingSubscribe& in) {
            UserAgent::SubscribeDecision d;
            d.status = 202;
            d.expires = in.expires.value_or(3600s);
            if (in.refresh) return d;
            requests.push_back(in.request_uri);
            d.after = [this, id] {
                if (prompt) {
                    notify(id);
                } else {
                    held.push_back(id);
                }
            };
            return d;
        });
        ua.set_watcher_end_handler([](WatcherId, const std::string&) {});
    }
    void notify(WatcherId id) {
        agent.notify(id, SubState::active, "", "application/pidf+xml",
                     "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' "
                     "entity='sip:x@127.0.0.1'><tuple id='t'><status><basic>open</basic>"
                     "</status></tuple></presence>");
    }
    void release() {
        prompt = true;
        for (WatcherId id : held)
            notify(id);
        held.clear();
    }
    UserAgent& agent;
    bool prompt = false;
    std::vector<std::string> requests; ///< Request-URIs of new SUBSCRIBEs, in order
    std::vector<WatcherId> held;
};

std::string user(std::size_t i) {
    return fmt::format("u{}@xmpp.test", i);
}
std::string contact(std::size_t i, int notifier_port) {
    return fmt::format("c{}*127.0.0.1\\3a{}@sip.test", i, notifier_port);
}
std::string contact_uri(std::size_t i, int notifier_port) {
    return fmt::format("sip:c{}@127.0.0.1:{}", i, notifier_port);
}

std::set<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::set<std::string> lines;
    for (std::string line; std::getline(in, line);)
        lines.insert(line);
    return lines;
}

std::unique_ptr<gloox::Tag> presence(const std::string& from, const std::string& to,
                                     const std::string& type) {
    auto tag = std::make_unique<gloox::Tag>("presence");
    tag->addAttribute("from", from);
    tag->addAttribute("to", to);
    tag->addAttribute("type", type);
    return tag;
}

/// A gateway about to restart: the state file holds `pairs` (user i watches contact i),
/// and every part of the bridge is up but its link.
struct Restart {
    Restart(int gateway_port, int notifier_port, std::size_t pairs,
            const std::function<void(xsgw::core::Config&)>& tune = {})
        : notifier_port(notifier_port), peer(loop, xsgw::test::listen_on(notifier_port)),
          notifier(peer), server(loop) {
        dir = std::filesystem::temp_directory_path() /
              fmt::format("xsgw_presence_restore.{}.{}", ::getpid(), gateway_port);
        std::filesystem::create_directories(dir);
        state_file = (dir / "presence.state").string();
        {
            std::ofstream out(state_file, std::ios::trunc);
            for (std::size_t i = 0; i < pairs; ++i) {
                out << user(i) << ' ' << contact(i, notifier_port) << '\n';
                all.insert(user(i) + ' ' + contact(i, notifier_port));
            }
        }
        config.xmpp.component = "sip.test";
        config.xmpp.host = "127.0.0.1";
        config.xmpp.port = server.port();
        config.xmpp.secret = "test";
        config.sip = xsgw::test::listen_on(gateway_port);
        config.sip.domain = "xmpp.test";
        config.presence.state_file = state_file;
        if (tune) tune(config);
        link = std::make_unique<xsgw::xmpp::ComponentLink>(loop, config.xmpp);
        resolver = std::make_unique<xsgw::dns::Resolver>(loop, config.dns);
        agent = std::make_unique<UserAgent>(loop, config.sip);
        bridge = std::make_unique<PresenceBridge>(loop, config, *link, *agent, *resolver);
        link->start();
        REQUIRE(loop.run_until([&] { return link->up(); }, 5s));
    }
    ~Restart() {
        bridge.reset();
        agent.reset();
        resolver.reset();
        link.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
    Restart(const Restart&) = delete;
    Restart& operator=(const Restart&) = delete;
    Restart(Restart&&) = delete;
    Restart& operator=(Restart&&) = delete;

    void from_xmpp(std::size_t i, const std::string& type) {
        bridge->from_xmpp(*presence(user(i), contact(i, notifier_port), type));
    }

    int notifier_port;
    EventLoop loop;
    UserAgent peer;
    Notifier notifier;
    xsgw::test::ComponentServer server;
    std::filesystem::path dir;
    std::string state_file;
    std::set<std::string> all; ///< the file's lines
    xsgw::core::Config config;
    std::unique_ptr<xsgw::xmpp::ComponentLink> link;
    std::unique_ptr<xsgw::dns::Resolver> resolver;
    std::unique_ptr<UserAgent> agent;
    std::unique_ptr<PresenceBridge> bridge;
};

} // namespace

TEST_CASE("restore: at most restore_window in flight; users' subscribe, probe and unsubscribe "
          "of waiting pairs; every pair started once, the file keeps the waiting ones") {
    const std::size_t pairs = 2 * window + 40;
    Restart r(25201, 25202, pairs);
    CHECK(r.bridge->restore_waiting() == pairs);
    r.bridge->on_link_up();
    REQUIRE(r.loop.run_until([&] { return r.notifier.requests.size() == window; }, 10s));
    // Nothing more starts while none of them has its first NOTIFY.
    CHECK_FALSE(r.loop.run_until([&] { return r.notifier.requests.size() > window; }, 500ms));
    CHECK(r.bridge->restore_in_flight() == window);
    CHECK(r.bridge->restore_waiting() == pairs - window);
    for (std::size_t i = 0; i < window; ++i)
        CHECK(r.notifier.requests[i] == contact_uri(i, r.notifier_port)); // the file's order
    r.bridge->on_link_up(); // the link came back: the restore goes on, nothing twice
    CHECK(r.bridge->restore_in_flight() == window);

    // The last pair's user unsubscribes while it waits: confirmed, never subscribed.
    const std::size_t gone = pairs - 1;
    r.from_xmpp(gone, "unsubscribe");
    REQUIRE(r.loop.run_until(
        [&] {
            return r.server.received.find("type='unsubscribed'") != std::string::npos ||
                   r.server.received.find("type=\"unsubscribed\"") != std::string::npos;
        },
        5s));
    // Another one's user subscribes, a third one's server probes: both start at once.
    r.from_xmpp(pairs - 2, "subscribe");
    REQUIRE(r.loop.run_until([&] { return r.notifier.requests.size() == window + 1; }, 5s));
    CHECK(r.notifier.requests.back() == contact_uri(pairs - 2, r.notifier_port));
    r.from_xmpp(pairs - 3, "probe");
    REQUIRE(r.loop.run_until([&] { return r.notifier.requests.size() == window + 2; }, 5s));
    CHECK(r.notifier.requests.back() == contact_uri(pairs - 3, r.notifier_port));
    CHECK(r.bridge->restore_waiting() == pairs - window - 3);
    CHECK(r.bridge->restore_in_flight() == window);

    // The change is saved within a second or so: every pair but the one let go, the
    // waiting ones included.
    auto expected = r.all;
    expected.erase(user(gone) + ' ' + contact(gone, r.notifier_port));
    CHECK(r.loop.run_until([&] { return lines_of(r.state_file) == expected; }, 5s));

    // The notifier answers: the rest follows, each pair once, the one let go never.
    r.notifier.release();
    REQUIRE(r.loop.run_until(
        [&] { return r.bridge->restore_waiting() == 0 && r.bridge->restore_in_flight() == 0; },
        20s));
    REQUIRE(r.loop.run_until([&] { return r.bridge->stats().notifies_in >= pairs - 1; }, 10s));
    CHECK(r.notifier.requests.size() == pairs - 1);
    const std::set<std::string> distinct(r.notifier.requests.begin(), r.notifier.requests.end());
    CHECK(distinct.size() == pairs - 1);
    CHECK(distinct.count(contact_uri(gone, r.notifier_port)) == 0);
    CHECK(r.bridge->outbound_count() == pairs - 1);
    CHECK(r.loop.run_until([&] { return lines_of(r.state_file) == expected; }, 5s));
}

TEST_CASE("restore: a shutdown while pairs wait their turn keeps every pair in the file") {
    const std::size_t pairs = window + 30;
    Restart r(25203, 25204, pairs);
    r.bridge->on_link_up();
    REQUIRE(r.loop.run_until([&] { return r.notifier.requests.size() == window; }, 10s));
    CHECK(r.bridge->restore_waiting() == pairs - window);
    r.bridge->shutdown();
    CHECK(lines_of(r.state_file) == r.all);
    CHECK(r.bridge->restore_waiting() == 0);
    CHECK(r.bridge->restore_in_flight() == 0);
}

TEST_CASE("restore: pairs waiting their turn hold their place in the bounds (P14)") {
    const std::size_t pairs = window + 10;
    Restart r(25205, 25206, pairs, [&](xsgw::core::Config& c) { c.presence.max_total = pairs; });
    r.bridge->on_link_up();
    REQUIRE(r.loop.run_until([&] { return r.notifier.requests.size() == window; }, 10s));
    // A pair not in the file: the ones still waiting fill the gateway, it is refused.
    r.bridge->from_xmpp(*presence("new@xmpp.test", contact(pairs, r.notifier_port), "subscribe"));
    CHECK(r.loop.run_until(
        [&] { return r.server.received.find("policy-violation") != std::string::npos; }, 5s));
    r.notifier.release();
    REQUIRE(r.loop.run_until(
        [&] { return r.bridge->restore_waiting() == 0 && r.bridge->restore_in_flight() == 0; },
        20s));
    CHECK(r.bridge->outbound_count() == pairs);
    CHECK(r.notifier.requests.size() == pairs);
}

TEST_CASE("restore: presence.max_per_user applies to what the file holds") {
    Restart r(25207, 25208, 0, [&](xsgw::core::Config& c) { c.presence.max_per_user = 2; });
    // One user with three pairs: written by hand, read by a second bridge on the same file.
    {
        std::ofstream out(r.state_file, std::ios::trunc);
        for (std::size_t i = 0; i < 3; ++i)
            out << user(0) << ' ' << contact(i, r.notifier_port) << '\n';
        out << user(0) << ' ' << contact(0, r.notifier_port) << '\n'; // twice: once
    }
    r.bridge.reset();
    r.bridge = std::make_unique<PresenceBridge>(r.loop, r.config, *r.link, *r.agent, *r.resolver);
    CHECK(r.bridge->restore_waiting() == 2);
    r.bridge->on_link_up();
    REQUIRE(r.loop.run_until([&] { return r.notifier.requests.size() == 2; }, 10s));
    CHECK(r.notifier.requests[0] == contact_uri(0, r.notifier_port));
    CHECK(r.notifier.requests[1] == contact_uri(1, r.notifier_port));
    CHECK_FALSE(r.loop.run_until([&] { return r.notifier.requests.size() > 2; }, 300ms));
}

TEST_CASE("P14 presence.max_total: past it a subscription is refused both ways; those held stay") {
    Restart r(25209, 25210, 0, [&](xsgw::core::Config& c) { c.presence.max_total = 2; });
    r.notifier.prompt = true;
    r.bridge->on_link_up();
    r.from_xmpp(0, "subscribe");
    r.from_xmpp(1, "subscribe");
    REQUIRE(r.loop.run_until(
        [&] { return r.bridge->outbound_count() == 2 && r.notifier.requests.size() == 2; }, 5s));
    // A third user: refused with a presence error, no SUBSCRIBE leaves.
    r.from_xmpp(2, "subscribe");
    REQUIRE(r.loop.run_until(
        [&] { return r.server.received.find("policy-violation") != std::string::npos; }, 5s));
    const auto error =
        r.server.received.rfind("<presence", r.server.received.find("policy-violation"));
    CHECK(r.server.received.find("to='" + user(2) + "'", error) != std::string::npos);
    CHECK(r.server.received.find("presence.max_total") != std::string::npos);
    // A SIP watcher of an XMPP user: 503 with Retry-After.
    std::optional<xsgw::sip::SubscriptionEnd> end;
    const auto id = r.peer.subscribe({"sip:u9*xmpp.test@xmpp.test", "sip:w@127.0.0.1:25210", 600s},
                                     {xsgw::sip::NextHop{"127.0.0.1", 25209, "udp", "gw", {}}},
                                     {[](const xsgw::sip::NotifyInfo&) {},
                                      [&](const xsgw::sip::SubscriptionEnd& e) { end = e; }});
    REQUIRE(id != 0);
    REQUIRE(r.loop.run_until([&] { return end.has_value(); }, 5s));
    CHECK(end->status == 503);
    CHECK(end->retry_after.has_value());
    // The two held are unharmed; nothing more went out.
    CHECK(r.bridge->outbound_count() == 2);
    CHECK(r.bridge->inbound_count() == 0);
    CHECK(r.notifier.requests.size() == 2);
}
