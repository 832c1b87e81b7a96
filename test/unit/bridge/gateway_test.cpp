// X9: the iq:gateway prompt mapped through the address rules with the real config types.
// S7: xmpp.allowed_domains, as a decision table and through a Gateway on a fake XEP-0114 server.
#include "../fake_component_server.hpp"
#include "../sip/raw_sender.hpp"
#include "xsgw/bridge/gateway.hpp"

#include <arpa/inet.h>
#include <cstdint>
#include <doctest/doctest.h>
#include <functional>
#include <gloox/tag.h>
#include <memory>
#include <netinet/in.h>
#include <sofia-sip/su_wait.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>
#include <variant>
#include <vector>

namespace {

xsgw::core::Config config() {
    xsgw::core::Config c;
    c.xmpp.component = "sip.test";
    c.sip.domain = "xmpp.test";
    return c;
}

/// A gateway on the fake XEP-0114 server at `port`: SIP on 127.0.0.1:25301, DNS at
/// 127.0.0.1:25303, where nothing answers unless the test binds it (no lookup leaves the machine).
xsgw::core::Config on_fake_server(std::uint16_t port) {
    xsgw::core::Config c = config();
    c.xmpp.host = "127.0.0.1";
    c.xmpp.port = port;
    c.xmpp.secret = "test";
    c.sip.listen = "sip:127.0.0.1:25301";
    c.dns.servers = {"127.0.0.1:25303"};
    return c;
}

/// MESSAGE number n from carol (a UDP sender on from_port) to alice through the gateway on
/// 127.0.0.1:25301, body "hello N".
std::string message_to_alice(int from_port, int n) {
    const std::string body = "hello " + std::to_string(n);
    return "MESSAGE sip:alice*xmpp.test@xmpp.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:" +
           std::to_string(from_port) + ";branch=z9hG4bKconfirm" + std::to_string(n) +
           "\r\nMax-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1>;tag=c" + std::to_string(n) +
           "\r\nTo: <sip:alice*xmpp.test@xmpp.test>\r\nCall-ID: confirm-" + std::to_string(n) +
           "\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// A UDP socket bound to 127.0.0.1:port (non-blocking): a SIP peer the test drives by hand.
int loopback_udp(std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

/// A gateway on the fake XEP-0114 server (on_fake_server), made but not started, and a SIP
/// sender toward it: the test (a doctest fixture) tunes the server and the relay, then start()
/// waits for the link.
struct Rig {
    explicit Rig(const std::function<void(xsgw::core::Config&)>& tune = {})
        : server(loop), config(tuned(on_fake_server(server.port()), tune)),
          made(std::make_unique<xsgw::bridge::Gateway>(loop, config)), gateway(*made) {}
    static xsgw::core::Config tuned(xsgw::core::Config c,
                                    const std::function<void(xsgw::core::Config&)>& tune) {
        if (tune) tune(c);
        return c;
    }
    void start() {
        REQUIRE(sender.ok());
        gateway.start();
        REQUIRE(loop.run_until([&] { return gateway.link().up(); }, std::chrono::seconds(5)));
    }
    xsgw::core::EventLoop loop;
    xsgw::test::ComponentServer server;
    xsgw::core::Config config;
    std::unique_ptr<xsgw::bridge::Gateway> made;
    xsgw::bridge::Gateway& gateway;
    xsgw::test::RawSender sender{25301}; ///< MESSAGEs to the gateway's SIP port, by hand
};

/// A Rig whose link waits 0.5-1 s before it reconnects: long enough for what a test does while
/// the XMPP server is away.
struct SlowReconnectRig : Rig {
    SlowReconnectRig()
        : Rig([](xsgw::core::Config& c) {
              c.xmpp.reconnect_min = std::chrono::milliseconds(500);
              c.xmpp.reconnect_max = std::chrono::milliseconds(1000);
          }) {}
};

/// How many times `text` occurs in `haystack`.
std::size_t occurrences(const std::string& haystack, const std::string& text) {
    std::size_t n = 0;
    for (auto at = haystack.find(text); at != std::string::npos; at = haystack.find(text, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("X9 iq:gateway prompt: SIP address forms map to the contact's bare JID") {
    const struct {
        std::string prompt, jid;
    } rows[] = {
        {"alice@sip.example.org", "alice*sip.example.org@sip.test"},
        {"sip:alice@sip.example.org", "alice*sip.example.org@sip.test"},
        {"  <sip:alice@sip.example.org>  ", "alice*sip.example.org@sip.test"},
        {"sip:alice@sip.example.org;gr=phone", "alice*sip.example.org@sip.test"},
        {"sip:Alice@Sip.Example.org", "alice*sip.example.org@sip.test"},
        {"*67@example.org", "*67*example.org@sip.test"},
        {"sip:john%20doe@example.org", "john\\20doe*example.org@sip.test"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.prompt);
        auto out = xsgw::bridge::prompt_to_contact_jid(row.prompt, config());
        REQUIRE(std::holds_alternative<std::string>(out));
        CHECK(std::get<std::string>(out) == row.jid);
    }
}

TEST_CASE("X9 iq:gateway prompt: what is no SIP address is refused with a condition") {
    const struct {
        std::string prompt, condition;
    } rows[] = {
        {"no-at-sign", "jid-malformed"},
        {"", "jid-malformed"},
        {"sip:@example.org", "jid-malformed"},
        {"alice@", "jid-malformed"},
        {"sips:alice@example.org", "not-acceptable"},
        {"alice@exa\r\nmple.org", "jid-malformed"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.prompt);
        auto out = xsgw::bridge::prompt_to_contact_jid(row.prompt, config());
        REQUIRE(std::holds_alternative<xsgw::xmpp::StanzaError>(out));
        CHECK(std::get<xsgw::xmpp::StanzaError>(out).condition == row.condition);
        CHECK_FALSE(std::get<xsgw::xmpp::StanzaError>(out).text.empty());
    }
}

TEST_CASE("X9 config domains the address rules cannot use are named with their key") {
    auto c = config();
    CHECK_FALSE(xsgw::bridge::check_addressing(c).has_value());
    c.xmpp.component = "a*b.test";
    auto bad = xsgw::bridge::check_addressing(c);
    REQUIRE(bad.has_value());
    CHECK(bad->first == "xmpp.component");
    CHECK_FALSE(bad->second.empty());
    c = config();
    c.sip.domain = "x*y.test";
    bad = xsgw::bridge::check_addressing(c);
    REQUIRE(bad.has_value());
    CHECK(bad->first == "sip.domain");
}

namespace {

using Verdict = xsgw::bridge::SenderVerdict;

std::unique_ptr<gloox::Tag> stanza(const std::string& name, const std::string& type,
                                   const std::string& from, const std::string& to) {
    auto tag = std::make_unique<gloox::Tag>(name);
    if (!type.empty()) tag->addAttribute("type", type);
    if (!from.empty()) tag->addAttribute("from", from);
    if (!to.empty()) tag->addAttribute("to", to);
    return tag;
}

} // namespace

TEST_CASE("S7 check_sender_domain: only what would use the gateway toward SIP is stopped") {
    const std::vector<std::string> allowed{"xmpp.test", "jabber.example"};
    const std::string contact = "bob*sip.example.org@sip.test";
    const struct {
        std::string name, type, from, to;
        Verdict verdict;
    } rows[] = {
        // allowed domains, whatever the case or a final dot
        {"message", "chat", "alice@xmpp.test/r", contact, Verdict::pass},
        {"message", "", "alice@XMPP.Test/r", contact, Verdict::pass},
        {"message", "chat", "alice@xmpp.test./r", contact, Verdict::pass},
        {"message", "chat", "carol@jabber.example", contact, Verdict::pass},
        {"presence", "subscribe", "alice@xmpp.test", contact, Verdict::pass},
        {"presence", "", "alice@xmpp.test/r", contact, Verdict::pass},
        // other domains: refused when it asks for an answer, else ignored
        {"message", "chat", "eve@evil.example/r", contact, Verdict::refuse},
        {"message", "normal", "eve@evil.example", contact, Verdict::refuse},
        {"message", "", "eve@evil.example/r", contact, Verdict::refuse},
        {"message", "headline", "eve@evil.example/r", contact, Verdict::refuse},
        {"message", "chat", "eve@sub.xmpp.test/r", contact, Verdict::refuse},
        {"message", "chat", "eve@xmpp.test.evil/r", contact, Verdict::refuse},
        {"message", "chat", "evil.example", contact, Verdict::refuse},
        {"presence", "subscribe", "eve@evil.example", contact, Verdict::refuse},
        {"presence", "", "eve@evil.example/r", contact, Verdict::ignore},
        {"presence", "unavailable", "eve@evil.example/r", contact, Verdict::ignore},
        {"presence", "probe", "eve@evil.example", contact, Verdict::ignore},
        {"presence", "subscribed", "eve@evil.example", contact, Verdict::ignore},
        // always on: the gateway's own services, errors, the end of state, bad addresses
        {"iq", "get", "eve@evil.example/r", "sip.test", Verdict::pass},
        {"iq", "get", "eve@evil.example/r", contact, Verdict::pass},
        {"message", "chat", "eve@evil.example/r", "sip.test", Verdict::pass},
        {"presence", "subscribe", "eve@evil.example", "sip.test", Verdict::pass},
        {"message", "error", "eve@evil.example/r", contact, Verdict::pass},
        {"presence", "error", "eve@evil.example/r", contact, Verdict::pass},
        {"presence", "unsubscribe", "eve@evil.example", contact, Verdict::pass},
        {"presence", "unsubscribed", "eve@evil.example", contact, Verdict::pass},
        {"message", "chat", "", contact, Verdict::pass},
        {"message", "chat", "eve@evil example", contact, Verdict::pass},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        CAPTURE(row.type);
        CAPTURE(row.from);
        CAPTURE(row.to);
        const auto tag = stanza(row.name, row.type, row.from, row.to);
        CHECK(xsgw::bridge::check_sender_domain(*tag, allowed) == row.verdict);
        CHECK(xsgw::bridge::check_sender_domain(*tag, {}) == Verdict::pass);
    }
    // A call (Jingle session-initiate) is refused like a message; the rest of a call is not
    // stopped (it could not have started).
    const struct {
        std::string action, from, to;
        Verdict verdict;
    } calls[] = {
        {"session-initiate", "eve@evil.example/r", contact, Verdict::refuse},
        {"session-initiate", "alice@xmpp.test/r", contact, Verdict::pass},
        {"session-initiate", "eve@evil.example/r", "sip.test", Verdict::pass},
        {"session-terminate", "eve@evil.example/r", contact, Verdict::pass},
        {"transport-info", "eve@evil.example/r", contact, Verdict::pass},
    };
    for (const auto& row : calls) {
        CAPTURE(row.action);
        CAPTURE(row.from);
        const auto tag = stanza("iq", "set", row.from, row.to);
        auto* jingle = new gloox::Tag(tag.get(), "jingle");
        jingle->setXmlns("urn:xmpp:jingle:1");
        jingle->addAttribute("action", row.action);
        CHECK(xsgw::bridge::check_sender_domain(*tag, allowed) == row.verdict);
        CHECK(xsgw::bridge::check_sender_domain(*tag, {}) == Verdict::pass);
    }
}

TEST_CASE("S7 the gateway refuses other domains with forbidden, keeps its iq, and reloads "
          "xmpp.allowed_domains at once") {
    using namespace std::chrono_literals;
    xsgw::core::EventLoop loop;
    xsgw::test::ComponentServer server(loop);
    xsgw::core::Config c = on_fake_server(server.port());
    c.xmpp.allowed_domains = {"xmpp.test"};
    xsgw::bridge::Gateway gateway(loop, c);
    gateway.start();
    REQUIRE(loop.run_until([&] { return gateway.link().up(); }, 5s));
    // A numeric SIP host needs no DNS (D3); nothing listens there.
    const std::string bob = "bob*127.0.0.1\\3a25302@sip.test";
    auto wait_for = [&](const std::string& text) {
        return loop.run_until([&] { return server.received.find(text) != std::string::npos; }, 5s);
    };

    server.write("<message from='eve@evil.example/r' to='" + bob +
                 "' id='m1' type='chat'><body>hi</body></message>");
    REQUIRE(wait_for("id='m1'"));
    auto count = [&](const std::string& text) { return occurrences(server.received, text); };
    const std::string error =
        server.received.substr(server.received.rfind("<message", server.received.find("id='m1'")));
    CHECK(error.find("type='error'") != std::string::npos);
    CHECK(error.find("to='eve@evil.example/r'") != std::string::npos);
    CHECK(error.find("<error type='auth'><forbidden") != std::string::npos);
    CHECK(error.find("domain evil.example may not use this gateway") != std::string::npos);
    CHECK(gateway.relay_stats().xmpp_in == 0);
    CHECK(gateway.domain_refusals().messages == 1);

    server.write("<presence from='eve@evil.example' to='" + bob + "' id='p1' type='subscribe'/>");
    REQUIRE(wait_for("id='p1'"));
    CHECK(count("<forbidden") == 2);
    CHECK(server.received.find("<presence type='error' id='p1'") != std::string::npos);
    server.write("<presence from='eve@evil.example/r' to='" + bob + "'/>");
    server.write("<presence from='eve@evil.example' to='" + bob + "' type='probe'/>");
    // The gateway's own iq still answers the other domain, after the presence above.
    server.write("<iq from='eve@evil.example/r' to='sip.test' id='q1' type='get'>"
                 "<ping xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE(wait_for("id='q1'"));
    CHECK(server.received.find("type='result'") != std::string::npos);
    CHECK(gateway.presence_stats().xmpp_in == 0);
    CHECK(gateway.domain_refusals().subscribes == 1);
    CHECK(gateway.domain_refusals().ignored == 2);

    server.write("<message from='alice@XMPP.test/r' to='" + bob +
                 "' id='m2' type='chat'><body>hi</body></message>");
    REQUIRE(loop.run_until([&] { return gateway.relay_stats().xmpp_in == 1; }, 5s));
    CHECK(count("<forbidden") == 2);

    auto next = c;
    next.xmpp.allowed_domains = {"evil.example"};
    auto lines = gateway.reload(next);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "xmpp.allowed_domains [xmpp.test] -> [evil.example]");
    server.write("<message from='eve@evil.example/r' to='" + bob +
                 "' id='m3' type='chat'><body>hi</body></message>");
    REQUIRE(loop.run_until([&] { return gateway.relay_stats().xmpp_in == 2; }, 5s));
    server.write("<message from='alice@xmpp.test/r' to='" + bob +
                 "' id='m4' type='chat'><body>hi</body></message>");
    REQUIRE(wait_for("id='m4'"));
    CHECK(count("<forbidden") == 3);
    CHECK(gateway.domain_refusals().messages == 2);
    CHECK(gateway.relay_stats().xmpp_in == 2);

    next.xmpp.allowed_domains.clear();
    lines = gateway.reload(next);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "xmpp.allowed_domains [evil.example] -> [] (every domain)");
    CHECK(gateway.reload(next).empty());
    server.write("<message from='alice@xmpp.test/r' to='" + bob +
                 "' id='m5' type='chat'><body>hi</body></message>");
    REQUIRE(loop.run_until([&] { return gateway.relay_stats().xmpp_in == 3; }, 5s));
    CHECK(gateway.domain_refusals().messages == 2);

    bool counted = false;
    for (const auto& sample : gateway.metrics())
        if (sample.name == "xsgw_domain_refusals_total" && sample.value == 2) counted = true;
    CHECK(counted);
    gateway.stop();
}

TEST_CASE("S5 starts_sip_work: messages, subscribes and calls to a contact, nothing else") {
    struct Row {
        const char* name;
        const char* type; // empty: none
        const char* to;
        bool work;
    };
    const char* bob = "bob*x.test@sip.test";
    const Row rows[] = {
        {"message", "", bob, true},
        {"message", "chat", bob, true},
        {"message", "error", bob, false},
        {"message", "chat", "sip.test", false},
        {"message", "chat", "@sip.test", false},
        {"message", "chat", "sip.test/a@b", false},
        {"message", "chat", "bob*x.test@sip.test/r@x", true},
        {"presence", "subscribe", bob, true},
        {"presence", "probe", bob, false},
        {"presence", "unsubscribe", bob, false},
        {"presence", "", bob, false},
        {"iq", "get", bob, false},
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        CAPTURE(row.type);
        CAPTURE(row.to);
        gloox::Tag tag(row.name);
        tag.addAttribute("to", row.to);
        if (*row.type != '\0') tag.addAttribute("type", row.type);
        CHECK(xsgw::bridge::starts_sip_work(tag) == row.work);
    }
    // A Jingle session-initiate to a contact starts a call; other Jingle actions do not.
    for (const auto& row : {std::tuple{"session-initiate", "set", bob, true},
                            std::tuple{"session-initiate", "set", "sip.test", false},
                            std::tuple{"session-initiate", "get", bob, false},
                            std::tuple{"session-terminate", "set", bob, false},
                            std::tuple{"transport-info", "set", bob, false}}) {
        // Named copies, not structured bindings: CAPTURE's lambda cannot take those in clang 14.
        const char* action = std::get<0>(row);
        const char* type = std::get<1>(row);
        const auto& to = std::get<2>(row);
        const bool work = std::get<3>(row);
        CAPTURE(action);
        CAPTURE(type);
        gloox::Tag tag("iq");
        tag.addAttribute("to", to);
        tag.addAttribute("type", type);
        auto* jingle = new gloox::Tag(&tag, "jingle");
        jingle->setXmlns("urn:xmpp:jingle:1");
        jingle->addAttribute("action", action);
        CHECK(xsgw::bridge::starts_sip_work(tag) == work);
        CHECK(xsgw::bridge::starts_call(tag) ==
              (std::string(action) == "session-initiate" && std::string(type) == "set"));
    }
}

TEST_CASE("S5 per sender toward SIP: past the burst resource-constraint (wait), others unharmed, "
          "reload at once") {
    using namespace std::chrono_literals;
    xsgw::core::EventLoop loop;
    xsgw::test::ComponentServer server(loop);
    xsgw::core::Config c = on_fake_server(server.port());
    c.xmpp.max_stanzas_per_sender = 1;
    c.xmpp.burst_per_sender = 2;
    xsgw::bridge::Gateway gateway(loop, c);
    gateway.start();
    REQUIRE(loop.run_until([&] { return gateway.link().up(); }, 5s));
    const std::string bob = "bob*127.0.0.1\\3a25306@sip.test";
    auto count = [&](const std::string& text) { return occurrences(server.received, text); };
    for (int i = 0; i < 4; ++i)
        server.write("<message from='alice@xmpp.test/r' to='" + bob + "' id='a" +
                     std::to_string(i) + "' type='chat'><body>hi</body></message>");
    server.write("<presence from='alice@xmpp.test' to='" + bob + "' id='s1' type='subscribe'/>");
    // Another sender has its own bucket; the gateway's own iq is never limited.
    server.write("<message from='carol@xmpp.test/r' to='" + bob +
                 "' id='c0' type='chat'><body>hi</body></message>");
    server.write("<iq from='alice@xmpp.test/r' to='sip.test' id='q1' type='get'>"
                 "<ping xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE(loop.run_until([&] { return count("resource-constraint") == 3; }, 5s));
    REQUIRE(loop.run_until([&] { return count("id='q1'") == 1; }, 5s));
    CHECK(gateway.relay_stats().xmpp_in == 3); // a0, a1 and carol's c0
    CHECK(gateway.sender_refusals().messages == 2);
    CHECK(gateway.sender_refusals().subscribes == 1);
    CHECK(count("<error type='wait'><resource-constraint") == 3);
    CHECK(
        count("too many messages, calls and subscription requests from alice@xmpp.test: at most 1 "
              "a second; try again in 1 s") == 3);
    for (const char* id : {"id='a2'", "id='a3'", "id='s1'"})
        CHECK(count(id) == 1);

    auto next = c;
    next.xmpp.max_stanzas_per_sender = 0;
    const auto lines = gateway.reload(next);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "xmpp.max_stanzas_per_sender 1 -> 0");
    for (int i = 4; i < 8; ++i)
        server.write("<message from='alice@xmpp.test/r' to='" + bob + "' id='a" +
                     std::to_string(i) + "' type='chat'><body>hi</body></message>");
    REQUIRE(loop.run_until([&] { return gateway.relay_stats().xmpp_in == 7; }, 5s));
    CHECK(gateway.sender_refusals().messages == 2);
    gateway.stop();
}

TEST_CASE("S5 messages waiting for DNS are bounded: past the bound resource-constraint at once") {
    using namespace std::chrono_literals;
    xsgw::core::EventLoop loop;
    xsgw::test::ComponentServer server(loop);
    xsgw::core::Config c = on_fake_server(server.port());
    c.xmpp.max_stanzas_per_sender = 0;
    // A DNS server that takes queries and never answers: lookups wait.
    const int silent_dns = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(25303);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(silent_dns, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    xsgw::bridge::Gateway gateway(loop, c);
    gateway.relay().set_max_awaiting_dns(2);
    gateway.start();
    REQUIRE(loop.run_until([&] { return gateway.link().up(); }, 5s));
    for (int i = 0; i < 4; ++i)
        server.write("<message from='alice@xmpp.test/r' to='bob*d" + std::to_string(i) +
                     ".test@sip.test' id='d" + std::to_string(i) +
                     "' type='chat'><body>hi</body></message>");
    REQUIRE(loop.run_until([&] { return occurrences(server.received, "resource-constraint") == 2; },
                           5s));
    CHECK(gateway.relay().waiting_for_dns() == 2);
    CHECK(occurrences(server.received, "2 messages wait for DNS already; try again later") == 2);
    CHECK(server.received.find("id='d2'") != std::string::npos);
    CHECK(server.received.find("id='d3'") != std::string::npos);
    CHECK(server.received.find("id='d0'") == std::string::npos); // still waiting
    bool gauge = false;
    for (const auto& sample : gateway.metrics())
        if (sample.name == "xsgw_dns_waiting_messages" && sample.value == 2) gauge = true;
    CHECK(gauge);
    gateway.stop();
    close(silent_dns);
}

TEST_CASE("X10 SIGTERM drains: messages under way get their answer before the link closes, new "
          "ones are refused both ways") {
    using namespace std::chrono_literals;
    xsgw::core::EventLoop loop;
    xsgw::test::ComponentServer server(loop);
    xsgw::core::Config c = on_fake_server(server.port());
    // A DNS server and a SIP peer that take requests and never answer: a lookup waits, and a
    // MESSAGE stays in flight (Timer F is 32 s) with the others to that peer queued (M10).
    const int silent_dns = loopback_udp(25303);
    const int silent = loopback_udp(25304);
    xsgw::bridge::Gateway gateway(loop, c);
    gateway.start();
    REQUIRE(loop.run_until([&] { return gateway.link().up(); }, 5s));
    auto count = [&](const std::string& text) { return occurrences(server.received, text); };
    for (int i = 0; i < 5; ++i)
        server.write("<message from='alice@xmpp.test/r' to='bob*127.0.0.1\\3a25304@sip.test' "
                     "id='w" +
                     std::to_string(i) + "' type='chat'><body>hi</body></message>");
    // And one whose SIP domain must be looked up first: it waits for DNS.
    server.write("<message from='alice@xmpp.test/r' to='bob*nowhere.test@sip.test' id='d0' "
                 "type='chat'><body>hi</body></message>");
    REQUIRE(loop.run_until([&] { return gateway.relay_stats().xmpp_in == 6; }, 5s));
    loop.run_until([] { return false; }, 100ms); // the MESSAGEs leave

    gateway.begin_stop();
    server.write("<message from='alice@xmpp.test/r' to='bob*127.0.0.1\\3a25304@sip.test' "
                 "id='late' type='chat'><body>hi</body></message>");
    REQUIRE(
        loop.run_until([&] { return server.received.find("id='late'") != std::string::npos; }, 5s));
    CHECK(count("the gateway is stopping; try again later") == 1);
    // A MESSAGE from SIP is refused while stopping. Sent from a plain socket: a Sofia sender
    // would wait out the Retry-After and retry by itself, and still hold the request (and leak
    // it) when it is destroyed in that wait.
    const int peer = loopback_udp(25305);
    const std::string request =
        "MESSAGE sip:alice*xmpp.test@xmpp.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:25305;branch=z9hG4bKdrain1\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1:25305>;tag=d1\r\n"
        "To: <sip:alice*xmpp.test@xmpp.test>\r\nCall-ID: drain-1\r\nCSeq: 1 MESSAGE\r\n"
        "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    sockaddr_in gw{};
    gw.sin_family = AF_INET;
    gw.sin_port = htons(25301);
    gw.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(sendto(peer, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&gw),
                   sizeof gw) == static_cast<ssize_t>(request.size()));
    CHECK(loop.run_until(
        [&] {
            const auto& refusals = gateway.relay_stats().sip_refusals;
            return refusals.count(503) != 0 && refusals.at(503) == 1;
        },
        5s));
    CHECK(gateway.relay_stats().xmpp_delivered == 0);
    CHECK(count("stopped before SIP answered") == 0); // still under way

    gateway.drain(300ms);
    // Every sender heard before the stream closed: five in flight, one waiting for DNS. (The
    // fake server reads them when the loop runs again.)
    CHECK(loop.run_until([&] { return count("stopped before SIP answered") == 6; }, 2s));
    for (const char* id : {"id='w0'", "id='w4'", "id='d0'"})
        CHECK(count(id) == 1); // its error (what the server wrote is not in `received`)
    CHECK_FALSE(gateway.link().up());
    close(silent);
    close(silent_dns);
    close(peer);
}

TEST_CASE_FIXTURE(
    Rig,
    "X10 ledger a graceful stop closes the stream both ways: a message the server routes before "
    "it reads our closing tag still goes to SIP, nothing is written after the tag") {
    using namespace std::chrono_literals;
    const int peer = loopback_udp(25304);
    start();
    // The server, on our closing tag, still routes one message to us (it had it before it read
    // the tag), then closes its side.
    server.on_stream_close = [&] {
        server.write("<message from='alice@xmpp.test/r' to='bob*127.0.0.1\\3a25304@sip.test' "
                     "id='as-we-close' type='chat'><body>routed as we closed</body></message>");
        server.close_stream();
    };
    gateway.begin_stop();
    gateway.drain(300ms);
    CHECK(gateway.relay_stats().xmpp_in == 1);
    // It went to SIP (the peer never answers: the drain's deadline ends it, with a log line,
    // since its sender can no longer be told).
    std::string got;
    loop.run_until(
        [&] {
            char buf[4096];
            const ssize_t n = recv(peer, buf, sizeof buf, 0);
            if (n > 0) got.append(buf, static_cast<size_t>(n));
            return got.find("routed as we closed") != std::string::npos;
        },
        2s);
    CHECK(got.rfind("MESSAGE sip:bob@127.0.0.1:25304", 0) == 0);
    CHECK(got.find("routed as we closed") != std::string::npos);
    // Our closing tag is the last thing we wrote (gloox's own second one was dropped), once.
    const auto tag = server.received.find("</stream:stream>");
    REQUIRE(tag != std::string::npos);
    CHECK(server.received.size() == tag + std::string("</stream:stream>").size());
    CHECK_FALSE(gateway.link().up());
    CHECK_FALSE(gateway.link().closing());
    close(peer);
}

TEST_CASE_FIXTURE(
    Rig,
    "ledger a MESSAGE from SIP is answered 202 only once the XMPP server confirmed its stanza; "
    "a link lost before that gives 503") {
    using namespace std::chrono_literals;
    server.answer_confirmations = false;
    start();
    auto message = [&](int n) { sender.send(message_to_alice(sender.port(), n)); };
    // The ping that asks for the confirmation, once it follows the stanza on the stream.
    auto ping_after = [&](const std::string& body) -> std::string {
        const auto stanza = server.received.find(body);
        if (stanza == std::string::npos) return {};
        const auto at = server.received.find("id='xsgw-confirm-", stanza);
        if (at == std::string::npos) return {};
        const auto end = server.received.find('\'', at + 4);
        return end == std::string::npos ? std::string() : server.received.substr(at, end + 1 - at);
    };

    message(1);
    std::string ping;
    REQUIRE(loop.run_until(
        [&] {
            ping = ping_after("hello 1");
            return !ping.empty();
        },
        5s));
    CHECK(server.received.find("to='xmpp.test'") != std::string::npos); // the recipient's domain
    loop.run_until([] { return false; }, 200ms);
    CHECK(sender.receive() == 0); // not before the server answered
    server.write("<iq type='result' from='xmpp.test' to='sip.test' " + ping + "/>");
    REQUIRE(loop.run_until([&] { return sender.receive() == 1; }, 5s));
    CHECK(sender.responses[0].rfind("SIP/2.0 202 ", 0) == 0);
    CHECK(gateway.relay_stats().xmpp_delivered == 1);

    // The server dies after the stanza, before its answer: the sender hears 503.
    message(2);
    REQUIRE(loop.run_until([&] { return !ping_after("hello 2").empty(); }, 5s));
    server.drop();
    REQUIRE(loop.run_until([&] { return sender.receive() == 2; }, 5s));
    CHECK(sender.responses[1].rfind(
              "SIP/2.0 503 XMPP server gone before it confirmed the message\r\n", 0) == 0);
    CHECK(sender.responses[1].find("Retry-After: 10") != std::string::npos);
    CHECK(gateway.relay_stats().unconfirmed == 1);
    CHECK(gateway.relay_stats().xmpp_delivered == 1);
}

TEST_CASE_FIXTURE(
    Rig, "S5 MESSAGEs held for the XMPP server's confirmation are bounded: past it 503 at once, "
         "nothing written") {
    using namespace std::chrono_literals;
    server.answer_confirmations = false; // a stalled server
    gateway.relay().set_max_unconfirmed(2);
    start();
    for (int n = 1; n <= 3; ++n)
        sender.send(message_to_alice(sender.port(), n));
    REQUIRE(loop.run_until([&] { return sender.receive() == 1; }, 5s));
    CHECK(sender.responses[0].rfind("SIP/2.0 503 XMPP server slow to take messages\r\n", 0) == 0);
    CHECK(sender.responses[0].find("Call-ID: confirm-3") != std::string::npos);
    CHECK(sender.responses[0].find("Retry-After: 10") != std::string::npos);
    CHECK(gateway.relay().unconfirmed_now() == 2);
    loop.run_until([] { return false; }, 100ms);
    CHECK(server.received.find("hello 2") != std::string::npos);
    CHECK(server.received.find("hello 3") == std::string::npos); // refused before the link
    // The server goes: the two held ones hear 503 too, and the count is back to 0.
    server.drop();
    REQUIRE(loop.run_until([&] { return sender.receive() == 3; }, 5s));
    CHECK(gateway.relay().unconfirmed_now() == 0);
    CHECK(gateway.relay_stats().unconfirmed == 2);
}

TEST_CASE_FIXTURE(
    Rig, "X10 ledger a graceful stop waits for the server to confirm what it holds: 202, not 503") {
    using namespace std::chrono_literals;
    server.answer_confirmations = false;
    start();
    sender.send(message_to_alice(sender.port(), 1));
    REQUIRE(loop.run_until([&] { return gateway.relay().unconfirmed_now() == 1; }, 5s));
    // The server answers while the drain runs; on our closing tag it closes at once, as
    // servers do (a confirmation asked for after that could never come).
    server.on_stream_close = [&] { server.close_stream(); };
    xsgw::core::Timer answer(loop);
    answer.start(200ms, [&] { server.answer_held_confirmations(); });
    gateway.begin_stop();
    gateway.drain(2s);
    REQUIRE(loop.run_until([&] { return sender.receive() == 1; }, 5s));
    CHECK(sender.responses[0].rfind("SIP/2.0 202 ", 0) == 0);
    CHECK(gateway.relay_stats().unconfirmed == 0);
    CHECK(gateway.relay_stats().xmpp_delivered == 1);
}

TEST_CASE_FIXTURE(
    SlowReconnectRig,
    "ledger a SIP error that comes while the XMPP server is away reaches the sender once the "
    "link is back") {
    using namespace std::chrono_literals;
    // The SIP peer: takes the MESSAGE, answers only when the test says.
    const int peer = loopback_udp(25304);
    start();
    server.write("<message from='alice@xmpp.test/r' to='bob*127.0.0.1\\3a25304@sip.test' "
                 "id='while-away' type='chat'><body>hi</body></message>");
    std::string request;
    sockaddr_in from{};
    REQUIRE(loop.run_until(
        [&] {
            char buf[4096];
            socklen_t len = sizeof from;
            const ssize_t n =
                recvfrom(peer, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n > 0) request.assign(buf, static_cast<size_t>(n));
            return !request.empty();
        },
        5s));
    // The XMPP server goes away; then SIP says 404.
    server.drop();
    REQUIRE(loop.run_until([&] { return !gateway.link().up(); }, 5s));
    std::string response = "SIP/2.0 404 Not Found\r\n";
    std::istringstream lines(request);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        for (const char* name : {"Via:", "From:", "Call-ID:", "CSeq:"})
            if (line.rfind(name, 0) == 0) response += line + "\r\n";
        if (line.rfind("To:", 0) == 0) response += line + ";tag=away\r\n";
    }
    response += "Content-Length: 0\r\n\r\n";
    REQUIRE(sendto(peer, response.data(), response.size(), 0, reinterpret_cast<sockaddr*>(&from),
                   sizeof from) == static_cast<ssize_t>(response.size()));
    REQUIRE(loop.run_until([&] { return gateway.link().kept() == 1; }, 5s));
    // Back: the error goes out on the new link.
    REQUIRE(loop.run_until(
        [&] {
            return gateway.link().up() &&
                   server.received.find("id='while-away'") != std::string::npos;
        },
        5s));
    CHECK(server.received.find("type='error'") != std::string::npos);
    CHECK(server.received.find("item-not-found") != std::string::npos); // 404 (E2)
    CHECK(gateway.link().kept() == 0);
    close(peer);
}
