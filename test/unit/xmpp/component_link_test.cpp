// The component link against a scripted XEP-0114 server on the same loop.
#include "../tcp_listener.hpp"
#include "xsgw/xmpp/component_link.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <gloox/tag.h>
#include <netinet/in.h>
#include <sofia-sip/su_wait.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::core::FdWatch;

namespace {

/// A one-connection-at-a-time XEP-0114 server driven by the test.
class FakeServer {
public:
    enum class Mode { accept, reject_secret, conflict_after_handshake, silent_after_handshake };

    FakeServer(EventLoop& loop, Mode mode) : mode_(mode), listen_watch_(loop), client_watch_(loop) {
        listen_fd_ = xsgw::test::loopback_listener(port_);
        listen_watch_.attach(listen_fd_, SU_WAIT_IN, [this](int) { on_accept(); });
    }
    ~FakeServer() {
        drop_client();
        listen_watch_.detach();
        close(listen_fd_);
    }
    FakeServer(const FakeServer&) = delete;
    FakeServer& operator=(const FakeServer&) = delete;
    FakeServer(FakeServer&&) = delete;
    FakeServer& operator=(FakeServer&&) = delete;

    uint16_t port() const { return port_; }
    void write(const std::string& data) {
        REQUIRE(client_fd_ >= 0);
        REQUIRE(::send(client_fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(data.size()));
    }

    int connections = 0;
    std::string received;     ///< everything the client sent on the current connection
    std::string all_received; ///< everything, across connections
    std::string handshake;    ///< the digest the client sent
    bool handshake_answered = false;
    bool hold_handshake = false; ///< when set, the handshake is read but not answered
    int pings_answered = 0;
    int pings_seen = 0;       ///< across connections
    int answer_from_ping = 1; ///< pings before this one go unanswered (another instance took them)

    /// Stops reading the client, as a stalled server does; resume_reading() takes it up again.
    void pause_reading() { client_watch_.detach(); }
    void resume_reading() {
        client_watch_.attach(client_fd_, SU_WAIT_IN, [this](int) { on_data(); });
    }

    void answer_handshake() {
        handshake_answered = true;
        if (mode_ == Mode::reject_secret) {
            write("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                  "</stream:error></stream:stream>");
            drop_client();
            return;
        }
        write("<handshake/>");
        if (mode_ == Mode::conflict_after_handshake) {
            write("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                  "</stream:error></stream:stream>");
            drop_client();
        }
    }

private:
    void on_accept() {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        drop_client();
        client_fd_ = fd;
        ++connections;
        received.clear();
        handshake.clear();
        handshake_answered = false;
        header_sent_ = false;
        scan_pos_ = 0;
        client_watch_.attach(fd, SU_WAIT_IN, [this](int) { on_data(); });
    }
    void on_data() {
        char buf[65536];
        const ssize_t n = recv(client_fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            drop_client();
            return;
        }
        received.append(buf, static_cast<size_t>(n));
        all_received.append(buf, static_cast<size_t>(n));
        if (!header_sent_ && received.find("<stream:stream") != std::string::npos &&
            received.find('>', received.find("<stream:stream")) != std::string::npos) {
            header_sent_ = true;
            write("<?xml version='1.0'?><stream:stream "
                  "xmlns:stream='http://etherx.jabber.org/streams'"
                  " xmlns='jabber:component:accept' from='sip.test' id='3BF96D32'>");
        }
        const auto open = handshake.empty() ? received.find("<handshake>") : std::string::npos;
        const auto close = received.find("</handshake>", open == std::string::npos ? 0 : open);
        if (handshake.empty() && open != std::string::npos && close != std::string::npos) {
            handshake = received.substr(open + 11, close - open - 11);
            if (!hold_handshake) answer_handshake();
        }
        if (mode_ == Mode::silent_after_handshake) return;
        // Answer keepalive pings like a live server that routes them back.
        for (auto ping = received.find("xsgw-keepalive-", scan_pos_);
             ping != std::string::npos && handshake_answered;
             ping = received.find("xsgw-keepalive-", scan_pos_)) {
            const auto end = received.find('\'', ping);
            if (end == std::string::npos) break;
            scan_pos_ = end;
            if (++pings_seen < answer_from_ping) continue;
            write("<iq type='result' from='sip.test' to='sip.test' id='" +
                  received.substr(ping, end - ping) + "'/>");
            ++pings_answered;
        }
    }
    void drop_client() {
        client_watch_.detach();
        if (client_fd_ >= 0) close(client_fd_);
        client_fd_ = -1;
    }

    Mode mode_;
    int listen_fd_ = -1;
    int client_fd_ = -1;
    uint16_t port_ = 0;
    bool header_sent_ = false;
    size_t scan_pos_ = 0;
    FdWatch listen_watch_;
    FdWatch client_watch_;
};

xsgw::core::XmppConfig link_config(uint16_t port) {
    xsgw::core::XmppConfig c;
    c.component = "sip.test";
    c.host = "127.0.0.1";
    c.port = port;
    c.secret = "test";
    c.reconnect_min = 20ms;
    c.reconnect_max = 100ms;
    return c;
}

// A link that pings after 1 s of silence and gives up 1 s later.
xsgw::core::XmppConfig keepalive_config(uint16_t port) {
    auto c = link_config(port);
    c.keepalive_interval = 1s;
    c.keepalive_timeout = 1s;
    return c;
}

// A port with nothing listening: bound, then closed.
uint16_t unused_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

} // namespace

TEST_CASE("X1 handshake is the lowercase hex SHA-1 of stream id and secret") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    std::vector<std::string> states;
    link.set_state_handler(
        [&](bool up, const std::string&) { states.push_back(up ? "up" : "down"); });
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    CHECK(server.handshake == "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e");
    CHECK(server.received.find("jabber:component:accept") != std::string::npos);
    CHECK(server.received.find("to='sip.test'") != std::string::npos);
    CHECK(states == std::vector<std::string>{"up"});
}

TEST_CASE("X2 nothing is sent before the server's handshake") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    server.hold_handshake = true;
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    link.start();
    REQUIRE(loop.run_until([&] { return !server.handshake.empty(); }, 5s));
    auto* early = new gloox::Tag("message");
    early->addAttribute("to", "alice@xmpp.test");
    CHECK_FALSE(link.send(early));
    CHECK_FALSE(link.up());
    server.answer_handshake();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    auto* later = new gloox::Tag("message");
    later->addAttribute("to", "alice@xmpp.test");
    later->addAttribute("id", "after-handshake");
    CHECK(link.send(later));
    REQUIRE(loop.run_until(
        [&] { return server.received.find("after-handshake") != std::string::npos; }, 5s));
    CHECK(server.received.find("<message") ==
          server.received.find("<message to='alice@xmpp.test' id='after-handshake'"));
}

TEST_CASE("X5 stanzas in jabber:client and jabber:component:accept are both delivered") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    std::vector<std::string> ids;
    link.set_stanza_handler([&](const gloox::Tag& t) { ids.push_back(t.findAttribute("id")); });
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    server.write("<message xmlns='jabber:client' id='a' from='alice@xmpp.test' to='x*y@sip.test'/>"
                 "<iq id='b' type='get' from='alice@xmpp.test' to='sip.test'>"
                 "<ping xmlns='urn:xmpp:ping'/></iq>"
                 "<presence xmlns='jabber:component:accept' id='c' from='alice@xmpp.test' "
                 "to='x*y@sip.test'/>"
                 "<message xmlns='urn:example:other' id='d'/>");
    REQUIRE(loop.run_until([&] { return ids.size() >= 3; }, 5s));
    loop.run_until([] { return false; }, 50ms); // let a wrongly delivered 'd' show up
    CHECK(ids == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("X3 a wrong secret is a link failure named not-authorized, then retried") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::reject_secret);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    link.start();
    REQUIRE(loop.run_until([&] { return server.connections >= 3; }, 5s));
    CHECK_FALSE(link.up());
    CHECK(link.last_failure().find("not-authorized") != std::string::npos);
    CHECK(link.attempts() >= 3);
}

TEST_CASE("X3 conflict after the handshake takes the link down and it retries") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::conflict_after_handshake);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    int ups = 0, downs = 0;
    link.set_state_handler([&](bool up, const std::string&) { up ? ++ups : ++downs; });
    link.start();
    REQUIRE(loop.run_until([&] { return downs >= 2; }, 5s));
    CHECK(ups >= 2);
    CHECK(link.last_failure().find("conflict") != std::string::npos);
}

TEST_CASE("X3 a refused connection is retried with backoff") {
    EventLoop loop;
    xsgw::xmpp::ComponentLink link(loop, link_config(unused_port()));
    link.start();
    REQUIRE(loop.run_until([&] { return link.attempts() >= 3; }, 5s));
    CHECK(link.last_failure() == "connection refused");
    CHECK_FALSE(link.up());
}

TEST_CASE("X3 a silent link is found dead by the keepalive and replaced") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::silent_after_handshake);
    const auto config = keepalive_config(server.port());
    xsgw::xmpp::ComponentLink link(loop, config);
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    REQUIRE(loop.run_until([&] { return server.connections >= 2; }, 8s));
    CHECK(link.last_failure().find("keepalive timeout") != std::string::npos);
    CHECK(link.last_failure().find("16 pings unanswered") != std::string::npos);
    size_t pings = 0;
    for (auto at = server.all_received.find("urn:xmpp:ping"); at != std::string::npos;
         at = server.all_received.find("urn:xmpp:ping", at + 1))
        ++pings;
    CHECK(pings >= 16);
}

TEST_CASE("X3 keepalive: pings lost to another instance do not drop a live link") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    server.answer_from_ping = 10; // the first nine went elsewhere
    const auto config = keepalive_config(server.port());
    xsgw::xmpp::ComponentLink link(loop, config);
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    REQUIRE(
        loop.run_until([&] { return server.pings_answered >= 2 || server.connections > 1; }, 8s));
    CHECK(server.connections == 1);
    CHECK(link.up());
}

TEST_CASE("X3 a live link answering pings stays up past several keepalive periods") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    const auto config = keepalive_config(server.port());
    xsgw::xmpp::ComponentLink link(loop, config);
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    // Two full keepalive rounds answered on the one connection.
    REQUIRE(
        loop.run_until([&] { return server.pings_answered >= 2 || server.connections > 1; }, 8s));
    CHECK(server.connections == 1);
    CHECK(link.up());
}

TEST_CASE("S5 a server that stops reading: the write buffer stays bounded, senders hear at once") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    constexpr std::size_t bound = 256 * 1024;
    link.set_max_pending_bytes(bound);
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    server.pause_reading();
    const std::string body(1000, 'x');
    int sent = 0;
    // The kernel's socket buffers take some megabytes first; then ours fills to the bound.
    while (sent < 200000 && link.send("<message to='alice@xmpp.test' id='m" + std::to_string(sent) +
                                      "'><body>" + body + "</body></message>"))
        ++sent;
    CHECK(sent < 200000);
    CHECK(link.pending_bytes() >= bound);
    CHECK(link.pending_bytes() < bound + 2000); // at most one stanza past the bound
    CHECK(link.refused_full() == 1);
    CHECK_FALSE(link.send(std::string("<message to='alice@xmpp.test' id='late'/>")));
    CHECK(link.refused_full() == 2);
    CHECK(link.up()); // refusing, not failing: the server may catch up
    server.resume_reading();
    REQUIRE(loop.run_until([&] { return link.pending_bytes() == 0; }, 10s));
    CHECK(link.send(std::string("<message to='alice@xmpp.test' id='again'/>")));
    REQUIRE(loop.run_until([&] { return server.received.find("id='again'") != std::string::npos; },
                           10s));
    CHECK(server.received.find("id='m" + std::to_string(sent - 1) + "'") != std::string::npos);
    CHECK(server.received.find("id='late'") == std::string::npos);
}

TEST_CASE(
    "ledger confirm: a ping to the domain follows the stanzas; its answer confirms them all, one "
    "ping out per domain, the rest wait for the next; a lost link says not taken") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    link.set_confirm_timeout(300ms);
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    std::vector<std::string> heard;
    auto record = [&](std::string what) {
        return [&heard, what = std::move(what)](bool taken) {
            heard.push_back(what + (taken ? ":taken" : ":not"));
        };
    };
    auto ping_ids = [&](const std::string& domain) {
        std::vector<std::string> ids;
        const std::string tail = "' from='sip.test' to='" + domain + "'><ping";
        for (auto at = server.received.find("id='xsgw-confirm-"); at != std::string::npos;
             at = server.received.find("id='xsgw-confirm-", at + 1)) {
            const auto end = server.received.find('\'', at + 4);
            if (server.received.compare(end, tail.size(), tail) == 0)
                ids.push_back(server.received.substr(at + 4, end - at - 4));
        }
        return ids;
    };
    REQUIRE(link.send("<message to='alice@xmpp.test' id='m1'><body>1</body></message>"));
    link.confirm("xmpp.test", record("m1"));
    REQUIRE(link.send("<message to='alice@xmpp.test' id='m2'><body>2</body></message>"));
    link.confirm("xmpp.test", record("m2")); // waits: a ping is out for xmpp.test
    REQUIRE(link.send("<message to='erin@other.test' id='m3'><body>3</body></message>"));
    link.confirm("other.test", record("m3")); // another domain: a ping of its own
    REQUIRE(loop.run_until([&] { return ping_ids("xmpp.test").size() == 1; }, 5s));
    REQUIRE(loop.run_until([&] { return ping_ids("other.test").size() == 1; }, 5s));
    // The ping comes after the stanza it answers for.
    CHECK(server.received.find("id='m1'") < server.received.find(ping_ids("xmpp.test")[0]));
    CHECK(heard.empty());
    // An answer from another domain than the one asked is no confirmation (forged, or meant
    // for another instance).
    server.write("<iq type='result' from='evil.test' to='sip.test' id='" +
                 ping_ids("xmpp.test")[0] + "'/>");
    CHECK_FALSE(loop.run_until([&] { return !heard.empty(); }, 200ms));
    // Any answer confirms (a server without urn:xmpp:ping answers an error).
    server.write("<iq type='error' from='xmpp.test' to='sip.test' id='" + ping_ids("xmpp.test")[0] +
                 "'><error type='cancel'><service-unavailable "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    REQUIRE(loop.run_until([&] { return ping_ids("xmpp.test").size() == 2; }, 5s));
    CHECK(heard == std::vector<std::string>{"m1:taken"});
    server.write("<iq type='result' from='xmpp.test' to='sip.test' id='" +
                 ping_ids("xmpp.test")[1] + "'/>");
    REQUIRE(loop.run_until([&] { return heard.size() == 2; }, 5s));
    CHECK(heard[1] == "m2:taken");
    // other.test never answers: after the timeout its stanzas count as taken (a live link).
    REQUIRE(loop.run_until([&] { return heard.size() == 3; }, 5s));
    CHECK(heard[2] == "m3:taken");
    // A ping out when the link goes: not taken, at once.
    REQUIRE(link.send("<message to='alice@xmpp.test' id='m4'><body>4</body></message>"));
    link.confirm("xmpp.test", record("m4"));
    REQUIRE(loop.run_until([&] { return ping_ids("xmpp.test").size() == 3; }, 5s));
    const int before = server.connections;
    server.write("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                 "</stream:error></stream:stream>");
    REQUIRE(loop.run_until([&] { return heard.size() == 4; }, 5s));
    CHECK(heard[3] == "m4:not");
    // While down: not taken, at once.
    link.confirm("xmpp.test", record("m5"));
    CHECK(heard.back() == "m5:not");
    REQUIRE(loop.run_until([&] { return link.up() && server.connections > before; }, 5s));
}

TEST_CASE("ledger send_or_keep: an answer made while the link is down goes out once it is up "
          "again; a stopped link keeps nothing") {
    EventLoop loop;
    FakeServer server(loop, FakeServer::Mode::accept);
    xsgw::xmpp::ComponentLink link(loop, link_config(server.port()));
    link.start();
    REQUIRE(loop.run_until([&] { return link.up(); }, 5s));
    auto error_for = [](const std::string& id) {
        auto* tag = new gloox::Tag("message");
        tag->addAttribute("type", "error");
        tag->addAttribute("id", id);
        tag->addAttribute("from", "bob*example.test@sip.test");
        tag->addAttribute("to", "alice@xmpp.test/r");
        return tag;
    };
    CHECK(link.send_or_keep(error_for("now"))); // up: sent at once
    REQUIRE(
        loop.run_until([&] { return server.received.find("id='now'") != std::string::npos; }, 5s));
    const int before = server.connections;
    server.write("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                 "</stream:error></stream:stream>");
    REQUIRE(loop.run_until([&] { return !link.up(); }, 5s));
    CHECK(link.send_or_keep(error_for("kept1")));
    CHECK(link.send_or_keep(error_for("kept2")));
    CHECK(link.kept() == 2);
    REQUIRE(loop.run_until([&] { return link.up() && server.connections > before; }, 5s));
    REQUIRE(loop.run_until([&] { return server.received.find("id='kept2'") != std::string::npos; },
                           5s));
    CHECK(server.received.find("id='kept1'") < server.received.find("id='kept2'")); // in order
    CHECK(link.kept() == 0);
    link.stop();
    CHECK_FALSE(link.send_or_keep(error_for("after-stop")));
    CHECK(link.kept() == 0);
}
