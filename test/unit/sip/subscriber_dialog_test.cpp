// The subscriber role's own dialog state (issue 4: kept by xsgw on nta, not by nua), against a
// notifier written by hand: what it takes of a NOTIFY and what it refuses, and its retries.
#include "loopback.hpp"
#include "raw_sender.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::NextHop;
using xsgw::sip::NotifyInfo;
using xsgw::sip::SubscriptionEnd;
using xsgw::sip::SubState;
using xsgw::sip::UserAgent;
using xsgw::test::listen_on;
using xsgw::test::RawSender;

namespace {

constexpr int gateway_port = 25311;

// The value of a header line (name without the colon), or "".
std::string header(const std::string& text, const std::string& name) {
    const std::string key = "\r\n" + name + ":";
    const std::size_t at = text.find(key);
    if (at == std::string::npos) return {};
    std::size_t start = at + key.size();
    while (start < text.size() && text[start] == ' ')
        ++start;
    return text.substr(start, text.find("\r\n", start) - start);
}

std::string tag_of(const std::string& value) {
    const std::size_t at = value.find(";tag=");
    if (at == std::string::npos) return {};
    const std::string rest = value.substr(at + 5);
    return rest.substr(0, rest.find(';'));
}

// The next request the raw peer got (responses to its NOTIFYs are kept in `answers`).
struct Peer {
    explicit Peer(EventLoop& loop) : loop(loop), raw(gateway_port) {}
    EventLoop& loop;
    RawSender raw;
    std::size_t seen = 0;
    std::vector<std::string> answers;

    std::optional<std::string> next_request(std::chrono::milliseconds within = 5s) {
        std::optional<std::string> found;
        loop.run_until(
            [&] {
                raw.receive();
                for (; seen < raw.responses.size(); ++seen) {
                    const std::string& text = raw.responses[seen];
                    if (text.starts_with("SIP/2.0 "))
                        answers.push_back(text);
                    else if (!found)
                        found = text;
                }
                return found.has_value();
            },
            within);
        return found;
    }

    // The status of the next response to one of our NOTIFYs.
    int next_answer() {
        const std::size_t had = answers.size();
        loop.run_until(
            [&] {
                raw.receive();
                for (; seen < raw.responses.size(); ++seen)
                    if (raw.responses[seen].starts_with("SIP/2.0 "))
                        answers.push_back(raw.responses[seen]);
                return answers.size() > had;
            },
            5s);
        if (answers.size() == had) return 0;
        return std::stoi(answers[had].substr(8, 3));
    }

    void respond(const std::string& request, int status, const std::string& to_tag,
                 const std::string& extra = {}) {
        raw.send("SIP/2.0 " + std::to_string(status) + " X\r\nVia: " + header(request, "Via") +
                 "\r\nFrom: " + header(request, "From") + "\r\nTo: " + header(request, "To") +
                 (to_tag.empty() ? "" : ";tag=" + to_tag) + "\r\nCall-ID: " +
                 header(request, "Call-ID") + "\r\nCSeq: " + header(request, "CSeq") +
                 "\r\nContact: <sip:bob@127.0.0.1:" + std::to_string(raw.port()) + ">\r\n" + extra +
                 "Content-Length: 0\r\n\r\n");
    }

    // A NOTIFY in the dialog of `subscribe` (our From tag, the gateway's tag as To tag).
    void notify(const std::string& subscribe, const std::string& from_tag, int cseq,
                const std::string& state, const std::string& event = "presence",
                const std::string& call_id = {}) {
        static int branch = 0;
        const std::string body =
            "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' "
            "entity='sip:bob@example.test'><tuple id='t'><status><basic>open</basic></status>"
            "</tuple></presence>";
        const std::string from = header(subscribe, "To");
        raw.send("NOTIFY sip:127.0.0.1:" + std::to_string(gateway_port) +
                 " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:" + std::to_string(raw.port()) +
                 ";branch=z9hG4bK-n" + std::to_string(++branch) +
                 "\r\nMax-Forwards: 70\r\nFrom: " + from.substr(0, from.find(';')) +
                 ";tag=" + from_tag + "\r\nTo: " + header(subscribe, "From") +
                 "\r\nCall-ID: " + (call_id.empty() ? header(subscribe, "Call-ID") : call_id) +
                 "\r\nCSeq: " + std::to_string(cseq) +
                 " NOTIFY\r\nContact: <sip:bob@127.0.0.1:" + std::to_string(raw.port()) +
                 ">\r\nEvent: " + event + "\r\nSubscription-State: " + state +
                 "\r\nContent-Type: application/pidf+xml\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body);
    }
};

struct Watching {
    std::vector<NotifyInfo> notifies;
    std::optional<SubscriptionEnd> end;
    xsgw::sip::SubscriberCallbacks callbacks() {
        return {[this](const NotifyInfo& n) { notifies.push_back(n); },
                [this](const SubscriptionEnd& e) { end = e; }};
    }
};

// A gateway user agent and the raw notifier it subscribes through.
struct Subscribing {
    Watching w; // outlives the user agent, which may still report while it stops
    EventLoop loop;
    UserAgent gateway{loop, listen_on(gateway_port)};
    Peer peer{loop};

    xsgw::sip::SubscriptionId subscribe(std::chrono::seconds expires) {
        REQUIRE(peer.raw.ok());
        const std::vector<NextHop> hops{
            {"127.0.0.1", static_cast<std::uint16_t>(peer.raw.port()), "udp", "peer", {}}};
        return gateway.subscribe({"sip:bob@example.test", "sip:alice*xmpp.test@sip.test", expires},
                                 hops, w.callbacks());
    }
};

} // namespace

TEST_CASE("P5 P6 our subscription's NOTIFYs: one before the 2xx makes the dialog; another fork's "
          "481, an older CSeq 500, another event 489, a stranger's 481") {
    Subscribing t;
    auto& [w, loop, gateway, peer] = t;
    REQUIRE(t.subscribe(600s) != 0);
    const auto subscribe = peer.next_request();
    REQUIRE(subscribe);
    CHECK(subscribe->starts_with("SUBSCRIBE sip:bob@example.test SIP/2.0"));
    CHECK(header(*subscribe, "Event") == "presence");
    CHECK(header(*subscribe, "Accept") == "application/pidf+xml");
    CHECK(header(*subscribe, "Expires") == "600");
    CHECK(header(*subscribe, "Contact") == "<sip:127.0.0.1:" + std::to_string(gateway_port) + ">");
    CHECK_FALSE(tag_of(header(*subscribe, "From")).empty());
    CHECK(tag_of(header(*subscribe, "To")).empty());

    // RFC 6665 §4.1.2.4: the NOTIFY may come before the 2xx; it makes the dialog.
    peer.notify(*subscribe, "fork1", 1, "active;expires=600");
    CHECK(peer.next_answer() == 200);
    REQUIRE(w.notifies.size() == 1);
    CHECK(w.notifies[0].state == SubState::active);
    peer.respond(*subscribe, 202, "fork1");

    peer.notify(*subscribe, "fork2", 2, "active;expires=600"); // another fork
    CHECK(peer.next_answer() == 481);
    peer.notify(*subscribe, "fork1", 0, "active;expires=600"); // older than CSeq 1
    CHECK(peer.next_answer() == 500);
    peer.notify(*subscribe, "fork1", 3, "active;expires=600", "dialog");
    CHECK(peer.next_answer() == 489);
    peer.notify(*subscribe, "fork1", 4, "active;expires=600", "presence", "s999-stranger");
    CHECK(peer.next_answer() == 481); // nua's answer: no dialog of its own or ours
    CHECK(w.notifies.size() == 1);
    CHECK_FALSE(w.end);

    // The notifier ends it: the subscription hears it once.
    peer.notify(*subscribe, "fork1", 5, "terminated;reason=noresource");
    CHECK(peer.next_answer() == 200);
    REQUIRE(w.end);
    CHECK(w.end->reason == "noresource");
    CHECK(gateway.subscriber_count() == 0);
}

TEST_CASE("P4 P5 a 503 with a short Retry-After is tried again after it; the refresh goes to the "
          "notifier's Contact in the dialog; the un-SUBSCRIBE waits for the final NOTIFY") {
    Subscribing t;
    auto& [w, loop, gateway, peer] = t;
    const auto id = t.subscribe(4s);
    REQUIRE(id != 0);
    const auto first = peer.next_request();
    REQUIRE(first);
    const auto refused_at = std::chrono::steady_clock::now();
    peer.respond(*first, 503, "", "Retry-After: 1\r\n");
    const auto again = peer.next_request(3s);
    REQUIRE(again);
    CHECK(std::chrono::steady_clock::now() - refused_at >= 900ms);
    CHECK(header(*again, "Call-ID") == header(*first, "Call-ID"));
    CHECK(header(*again, "CSeq") == "2 SUBSCRIBE");
    CHECK_FALSE(w.end);

    // 2xx with Expires: 4 and a NOTIFY: a refresh comes within the 4 s, in the dialog, to the
    // notifier's Contact.
    peer.respond(*again, 200, "n1", "Expires: 4\r\n");
    peer.notify(*again, "n1", 1, "active;expires=4");
    CHECK(peer.next_answer() == 200);
    const auto refresh = peer.next_request(4s);
    REQUIRE(refresh);
    CHECK(refresh->starts_with("SUBSCRIBE sip:bob@127.0.0.1:" + std::to_string(peer.raw.port()) +
                               " SIP/2.0"));
    CHECK(tag_of(header(*refresh, "To")) == "n1");
    CHECK(header(*refresh, "CSeq") == "3 SUBSCRIBE");
    peer.respond(*refresh, 200, "n1", "Expires: 600\r\n");

    // P6: unsubscribe: Expires: 0; held until the final NOTIFY, which it answers 200.
    gateway.unsubscribe(id);
    const auto un = peer.next_request();
    REQUIRE(un);
    CHECK(header(*un, "Expires") == "0");
    peer.respond(*un, 200, "n1", "Expires: 0\r\n");
    // Held past its 2xx: the final NOTIFY, sent after it on the same socket, is answered 200 by
    // the dialog (a forgotten one would get nua's 481).
    peer.notify(*un, "n1", 2, "terminated;reason=timeout");
    CHECK(peer.next_answer() == 200);
    CHECK(gateway.subscriber_count() == 0);
    CHECK_FALSE(w.end); // the caller asked for the end: it is not told
}

TEST_CASE("P7 a fetch whose NOTIFY is not terminated ends after Timer N, with the state it got") {
    Subscribing t;
    auto& [w, loop, gateway, peer] = t;
    gateway.set_timer_n(300ms);
    REQUIRE(t.subscribe(0s) != 0);
    const auto fetch = peer.next_request();
    REQUIRE(fetch);
    CHECK(header(*fetch, "Expires") == "0");
    peer.respond(*fetch, 200, "f1", "Expires: 0\r\n");
    peer.notify(*fetch, "f1", 1, "active;expires=0");
    CHECK(peer.next_answer() == 200);
    REQUIRE(w.notifies.size() == 1);
    REQUIRE(loop.run_until([&] { return w.end.has_value(); }, 3s));
    CHECK(w.end->status == 0);
    CHECK(w.end->reason == "timeout");
    CHECK(gateway.subscriber_count() == 0);
}

TEST_CASE("P4 terminated;reason=deactivated again and again: a new dialog three times, then the "
          "subscription ends (the bridge's back-off takes over)") {
    Subscribing t;
    auto& [w, loop, gateway, peer] = t;
    REQUIRE(t.subscribe(600s) != 0);
    std::vector<std::string> call_ids;
    for (int round = 0; round < 4; ++round) {
        const auto subscribe = peer.next_request();
        REQUIRE(subscribe);
        call_ids.push_back(header(*subscribe, "Call-ID"));
        peer.respond(*subscribe, 202, "d" + std::to_string(round), "Expires: 600\r\n");
        peer.notify(*subscribe, "d" + std::to_string(round), 1, "terminated;reason=deactivated");
        CHECK(peer.next_answer() == 200);
    }
    // Four dialogs, each its own Call-ID; after the fourth deactivated, the end.
    CHECK(call_ids[0] != call_ids[1]);
    CHECK(call_ids[2] != call_ids[3]);
    REQUIRE(w.end);
    CHECK(w.end->reason == "deactivated");
    CHECK_FALSE(peer.next_request(300ms));
}
