// S4: SIP over TLS between two user agents on loopback, with certificates made for the test
// by test/tls/make-certs.sh: verified chain, peer name = the URI's domain, refusals.
#include "loopback.hpp"
#include "src/sip/handles.hpp"
#include "src/sip/tls.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <cerrno>
#include <cstdlib>
#include <doctest/doctest.h>
#include <filesystem>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::IncomingMessage;
using xsgw::sip::NextHop;
using xsgw::sip::OutgoingMessage;
using xsgw::sip::Reply;
using xsgw::sip::SendResult;
using xsgw::sip::UserAgent;

namespace {

// The test certificates, made once per run in a private folder.
const std::string& certs() {
    static const std::string folder = [] {
        std::string dir = "/tmp/xsgw_tls_test_XXXXXX";
        REQUIRE(::mkdtemp(dir.data()) != nullptr);
        const std::string command =
            std::string("bash ") + XSGW_SOURCE_DIR + "/test/tls/make-certs.sh " + dir;
        REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "make-certs.sh failed: ", command);
        return dir;
    }();
    return folder;
}

// A user agent on UDP/TCP port and TLS port + 1, presenting `name`'s certificate.
xsgw::core::SipConfig tls_on(int port, const std::string& name) {
    auto c = xsgw::test::listen_on(port);
    c.tls_listen = "sips:127.0.0.1:" + std::to_string(port + 1);
    c.tls_certificate = certs() + "/" + name + ".pem";
    c.tls_key = certs() + "/" + name + ".key";
    c.tls_ca_file = certs() + "/ca.pem";
    return c;
}

OutgoingMessage message_to(const std::string& domain) {
    OutgoingMessage m;
    m.request_uri = "sip:bob@" + domain;
    m.to = m.request_uri;
    m.from = "sip:alice*xmpp.test@sip.test";
    m.body = "over TLS";
    return m;
}

struct Outcome {
    std::optional<SendResult> result;
    std::vector<IncomingMessage> received;
};

// Sends one MESSAGE from a gateway presenting sip.test to a peer presenting peer_cert on
// TLS port 25082, addressed to domain; waits for the outcome.
Outcome send_over_tls(const std::string& peer_cert, const std::string& domain) {
    EventLoop loop;
    UserAgent sender(loop, tls_on(25079, "sip.test"));
    UserAgent receiver(loop, tls_on(25081, peer_cert));
    Outcome out;
    receiver.set_message_handler([&](const IncomingMessage& m, Reply& reply) {
        out.received.push_back(m);
        reply.respond(200, "OK");
    });
    (void)sender.send_message(message_to(domain),
                              {NextHop{"127.0.0.1", 25082, "tls", "peer", domain}},
                              [&](const SendResult& r) { out.result = r; });
    REQUIRE(loop.run_until([&] { return out.result.has_value(); }, 40s));
    return out;
}

} // namespace

TEST_CASE("S4 a MESSAGE goes over TLS to a peer whose certificate names the URI's domain") {
    const Outcome out = send_over_tls("tls.test", "tls.test");
    CHECK(out.result->status == 200);
    REQUIRE(out.received.size() == 1);
    CHECK(out.received[0].body == "over TLS");
    CHECK(out.received[0].request_uri == "sip:bob@tls.test");
}

TEST_CASE("S4 Sofia-SIP's TLS connections give back their SSL objects when they close") {
    // Sofia 1.12's tls_free() never frees a connection's SSL (some 75 KiB), nor its peer check the
    // names it decodes (src/sip/sofia_tls.cpp frees both). Ten gateways in turn each open a
    // connection to one peer and go; each connection has an SSL at both ends, so at least 20 must
    // be freed (the peer also accepts the gateways' own certificate checks). That nothing else
    // stays allocated is LeakSanitizer's part: unit-tls-leaks (test/meson.build) runs these S4
    // cases with the full unwinder and no suppression.
    constexpr int gateways = 10;
    const std::uint64_t before = xsgw::sip::detail::sofia_ssl_freed();
    const std::uint64_t names_before = xsgw::sip::detail::sofia_peer_names_freed();
    {
        EventLoop loop;
        UserAgent receiver(loop, tls_on(25081, "tls.test"));
        int received = 0;
        receiver.set_message_handler([&](const IncomingMessage&, Reply& reply) {
            ++received;
            reply.respond(200, "OK");
        });
        for (int i = 0; i < gateways; ++i) {
            UserAgent sender(loop, tls_on(25079, "sip.test"));
            std::optional<SendResult> result;
            (void)sender.send_message(message_to("tls.test"),
                                      {NextHop{"127.0.0.1", 25082, "tls", "peer", "tls.test"}},
                                      [&](const SendResult& r) { result = r; });
            REQUIRE(loop.run_until([&] { return result.has_value(); }, 40s));
            CHECK(result->status == 200);
        }
        CHECK(received == gateways);
    }
    CHECK(xsgw::sip::detail::sofia_ssl_freed() - before >= 2 * gateways);
    // Each gateway's Sofia read the peer's subjectAltName (the peer check of its outgoing
    // connection): decoded, copied, and freed once the check was over.
    CHECK(xsgw::sip::detail::sofia_peer_names_freed() - names_before >= gateways);
    CHECK(xsgw::sip::detail::sofia_peer_names_pending() == 0);
}

namespace {

// The address check of issue 5 part 7, standing in: every source refused (403), counted.
void refuse_every_source(UserAgent& receiver, int& checks) {
    receiver.set_source_check([&checks](const std::string&, const std::string&,
                                        std::function<void(const UserAgent::SourceVerdict&)> done) {
        ++checks;
        done({403, "not a server of that domain", ""});
    });
}

xsgw::core::SipConfig checking_from_domain(xsgw::core::SipConfig c) {
    c.verify_from_domain = true; // TLS clients are asked for a certificate only then
    return c;
}

// Issue 5 part 7 over TLS: a gateway presenting sender_cert sends a MESSAGE From `from` to a
// peer whose source check refuses everything (403) and counts its calls; the hop is TLS unless
// transport says otherwise.
struct Spoken {
    int status = 0;
    int checks = 0;
};
Spoken speak_for(const std::string& sender_cert, const std::string& from,
                 const std::string& transport = "tls") {
    EventLoop loop;
    UserAgent sender(loop, tls_on(25079, sender_cert));
    UserAgent receiver(loop, checking_from_domain(tls_on(25081, "tls.test")));
    Spoken out;
    receiver.set_message_handler(
        [&](const IncomingMessage&, Reply& reply) { reply.respond(200, "OK"); });
    refuse_every_source(receiver, out.checks);
    OutgoingMessage m = message_to("tls.test");
    m.from = from;
    std::optional<SendResult> result;
    const std::uint16_t port = transport == "tls" ? 25082 : 25081;
    (void)sender.send_message(m, {NextHop{"127.0.0.1", port, transport, "peer", "tls.test"}},
                              [&](const SendResult& r) { result = r; });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 40s));
    out.status = result->status;
    return out;
}

} // namespace

TEST_CASE("S4 from-domain over TLS: a verified client certificate that names the From domain "
          "speaks for it") {
    // The sender presents sip.test's certificate (from the CA the peer trusts): a From in
    // sip.test is taken without the address check, case-insensitively.
    const Spoken named = speak_for("sip.test", "sip:alice*xmpp.test@sip.test");
    CHECK(named.status == 200);
    CHECK(named.checks == 0);
    CHECK(speak_for("sip.test", "sip:alice@SIP.Test").status == 200);
}

TEST_CASE("S4 from-domain over TLS: a certificate that names another domain, an untrusted one, or "
          "none proves "
          "nothing: the address check decides") {
    const Spoken other = speak_for("sip.test", "sip:alice@other.test");
    CHECK(other.status == 403);
    CHECK(other.checks == 1);
    // A subdomain is not the domain, and there are no wildcards (RFC 5922 §7.2).
    const Spoken sub = speak_for("sip.test", "sip:alice@x.sip.test");
    CHECK(sub.status == 403);
    CHECK(sub.checks == 1);
    // Self-signed: names untrusted.test, but the peer does not trust it.
    const Spoken untrusted = speak_for("untrusted.test", "sip:alice@untrusted.test");
    CHECK(untrusted.status == 403);
    CHECK(untrusted.checks == 1);
    // The same sender over TCP and UDP: no certificate at all.
    for (const char* transport : {"tcp", "udp"}) {
        CAPTURE(transport);
        const Spoken plain = speak_for("sip.test", "sip:alice@sip.test", transport);
        CHECK(plain.status == 403);
        CHECK(plain.checks == 1);
    }
}

namespace {

// A certificate (unsigned: only its names matter here) with the CN and subjectAltName given
// (as openssl's config syntax, e.g. "DNS:a.test,URI:sip:a.test"; empty: none).
std::unique_ptr<X509, decltype(&X509_free)> certificate(const char* cn, const char* san) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    REQUIRE(cert != nullptr);
    if (cn[0] != '\0') {
        X509_NAME* name = X509_get_subject_name(cert.get());
        REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                           reinterpret_cast<const unsigned char*>(cn), -1, -1,
                                           0) == 1);
    }
    if (san[0] != '\0') {
        X509_EXTENSION* ext =
            X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, const_cast<char*>(san));
        REQUIRE(ext != nullptr);
        REQUIRE(X509_add_ext(cert.get(), ext, -1) == 1);
        X509_EXTENSION_free(ext);
    }
    return cert;
}

} // namespace

namespace {

// A TCP socket bound to 127.0.0.1:local_port with SO_REUSEADDR (as an attacker could make two
// connections from one port), connected (non-blocking) to 127.0.0.1:port.
int connect_from(std::uint16_t local_port, std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const int one = 1;
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(local_port);
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
    sockaddr_in remote = local;
    remote.sin_port = htons(port);
    const int r = ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote);
    REQUIRE((r == 0 || errno == EINPROGRESS));
    return fd;
}

std::string raw_message(const char* transport, std::uint16_t local_port, int n) {
    const std::string body = "hi";
    return "MESSAGE sip:bob@tls.test SIP/2.0\r\n"
           "Via: SIP/2.0/" +
           std::string(transport) + " 127.0.0.1:" + std::to_string(local_port) +
           ";branch=z9hG4bK-raw-" + std::to_string(n) +
           "\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:alice@sip.test>;tag=raw" +
           std::to_string(n) +
           "\r\n"
           "To: <sip:bob@tls.test>\r\n"
           "Call-ID: raw-" +
           std::to_string(n) +
           "@127.0.0.1\r\n"
           "CSeq: 1 MESSAGE\r\n"
           "Content-Type: text/plain\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The status code of the first response read by `read` (which returns what it got, or -1).
int status_of(EventLoop& loop, const std::function<ssize_t(char*, std::size_t)>& read) {
    std::string got;
    const bool answered = loop.run_until(
        [&] {
            char buffer[2048];
            const ssize_t n = read(buffer, sizeof buffer);
            if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
            return got.find("\r\n") != std::string::npos;
        },
        10s);
    if (!answered || got.rfind("SIP/2.0 ", 0) != 0) return 0;
    return std::atoi(got.c_str() + 8);
}

} // namespace

TEST_CASE("S4 from-domain over TLS: a plain TCP request from the endpoint of a TLS connection "
          "with a good certificate proves nothing") {
    // The request shows only its source address and port. A client with sip.test's certificate
    // (and key) holds a TLS connection from 127.0.0.1:25090 while a plain TCP connection from
    // the same port (SO_REUSEADDR) sends From sip.test: the certificate must not count for it.
    EventLoop loop;
    UserAgent receiver(loop, checking_from_domain(tls_on(25081, "tls.test")));
    int checks = 0;
    receiver.set_message_handler(
        [&](const IncomingMessage&, Reply& reply) { reply.respond(200, "OK"); });
    refuse_every_source(receiver, checks);
    constexpr std::uint16_t local_port = 25090;

    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          &SSL_CTX_free);
    REQUIRE(ctx != nullptr);
    REQUIRE(SSL_CTX_use_certificate_file(ctx.get(), (certs() + "/sip.test.pem").c_str(),
                                         SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx.get(), (certs() + "/sip.test.key").c_str(),
                                        SSL_FILETYPE_PEM) == 1);
    const int tls_fd = connect_from(local_port, 25082);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
    REQUIRE(ssl != nullptr);
    REQUIRE(SSL_set_fd(ssl.get(), tls_fd) == 1);
    REQUIRE(loop.run_until([&] { return SSL_connect(ssl.get()) == 1; }, 10s));
    auto tls_write = [&](const std::string& text) {
        REQUIRE(loop.run_until(
            [&] { return SSL_write(ssl.get(), text.data(), static_cast<int>(text.size())) > 0; },
            5s));
    };
    auto tls_read = [&](char* buffer, std::size_t size) -> ssize_t {
        return SSL_read(ssl.get(), buffer, static_cast<int>(size));
    };

    // Over the TLS connection itself the certificate speaks (the handshake is done).
    tls_write(raw_message("TLS", local_port, 1));
    CHECK(status_of(loop, tls_read) == 200);
    CHECK(checks == 0);

    // The same request over plain TCP from the same address and port: the address check.
    const int tcp_fd = connect_from(local_port, 25081);
    const std::string text = raw_message("TCP", local_port, 2);
    REQUIRE(loop.run_until([&] { return ::send(tcp_fd, text.data(), text.size(), 0) > 0; }, 5s));
    CHECK(status_of(loop, [&](char* buffer, std::size_t size) {
              return ::recv(tcp_fd, buffer, size, 0);
          }) == 403);
    CHECK(checks == 1);

    // And while that TCP connection is open, not over the TLS one either.
    tls_write(raw_message("TLS", local_port, 3));
    CHECK(status_of(loop, tls_read) == 403);
    CHECK(checks == 2);
    ::close(tcp_fd);
    SSL_shutdown(ssl.get());
    ::close(tls_fd);
}

TEST_CASE("S4 RFC 5922 §7: which names of a certificate name a SIP domain") {
    struct Row {
        const char* cn;
        const char* san;
        const char* domain;
        bool names;
    };
    const Row rows[] = {
        {"", "DNS:sip.test", "sip.test", true},
        {"", "DNS:sip.test", "SIP.Test", true},
        {"", "DNS:sip.test", "x.sip.test", false},
        {"", "DNS:sip.test", "test", false},
        {"", "DNS:other.test,DNS:sip.test", "sip.test", true},
        {"", "DNS:*.sip.test", "x.sip.test", false}, // no wildcards (§7.2)
        {"", "DNS:*.sip.test", "sip.test", false},
        {"", "URI:sip:sip.test", "sip.test", true},   // §7.1: a SIP URI without user part
        {"", "URI:sips:sip.test", "sip.test", false}, // the scheme sip only
        {"", "URI:SIP:Sip.Test", "sip.test", true},
        {"", "URI:sip:alice@sip.test", "sip.test", false},
        {"", "URI:sip:sip.test;transport=tls", "sip.test", false},
        {"", "URI:https://sip.test", "sip.test", false},
        {"sip.test", "", "sip.test", true}, // no subjectAltName at all: the CN
        {"sip.test", "", "other.test", false},
        {"sip.test", "URI:sip:other.test", "sip.test", false}, // with one, never the CN
        {"sip.test", "DNS:other.test", "sip.test", false},
        {"", "", "sip.test", false},
    };
    for (const Row& row : rows) {
        CAPTURE(row.cn);
        CAPTURE(row.san);
        CAPTURE(row.domain);
        const auto cert = certificate(row.cn, row.san);
        CHECK(xsgw::sip::detail::names_sip_domain(cert.get(), row.domain) == row.names);
    }
    CHECK_FALSE(xsgw::sip::detail::names_sip_domain(nullptr, "sip.test"));
}

TEST_CASE("S4 a peer certificate that does not name the URI's domain is refused") {
    const Outcome out = send_over_tls("tls.test", "other.test");
    CHECK(out.result->status == 503);
    CHECK(out.received.empty());
}

TEST_CASE("S4 a peer certificate from an untrusted issuer is refused") {
    const Outcome out = send_over_tls("untrusted.test", "untrusted.test");
    CHECK(out.result->status == 503);
    CHECK(out.received.empty());
}

TEST_CASE(
    "S4 a SUBSCRIBE toward a refused TLS peer ends with 503 and the reason, later ones at once") {
    EventLoop loop;
    UserAgent gateway(loop, tls_on(25084, "sip.test"));
    UserAgent peer(loop, tls_on(25086, "untrusted.test"));
    const std::vector<NextHop> hops{NextHop{"127.0.0.1", 25087, "tls", "peer", "untrusted.test"}};
    xsgw::sip::OutgoingSubscribe request{"sip:bob@untrusted.test", "sip:alice*xmpp.test@sip.test",
                                         600s};
    std::optional<xsgw::sip::SubscriptionEnd> end;
    xsgw::sip::SubscriberCallbacks callbacks;
    callbacks.on_end = [&](const xsgw::sip::SubscriptionEnd& e) { end = e; };
    REQUIRE(gateway.subscribe(request, hops, callbacks) != 0); // waits for the check
    REQUIRE(loop.run_until([&] { return end.has_value(); }, 10s));
    CHECK(end->status == 503);
    CHECK(end->phrase.find("its certificate is not trusted") != std::string::npos);
    // The verdict is kept: the next one has no hop left at once.
    CHECK(gateway.subscribe(request, hops, callbacks) == 0);
    // Nor a PUBLISH: refused at once as well.
    CHECK(gateway.publish("sip:alice*xmpp.test@untrusted.test", "application/pidf+xml",
                          "<presence/>", 600s, hops) == 0);
}

TEST_CASE("S4 TLS files that do not fit stop the user agent with the file and the reason") {
    EventLoop loop;
    struct Bad {
        std::string name;
        xsgw::core::SipConfig config;
        std::string what;
    };
    std::vector<Bad> bad;
    auto mismatch = tls_on(25083, "sip.test");
    mismatch.tls_key = certs() + "/tls.test.key";
    bad.push_back({"key of another certificate", mismatch, "does not match the certificate"});
    auto no_cert = tls_on(25083, "sip.test");
    no_cert.tls_certificate = certs() + "/sip.test.key";
    bad.push_back({"a key as certificate", no_cert, "sip.tls_certificate"});
    auto no_ca = tls_on(25083, "sip.test");
    no_ca.tls_ca_file = certs() + "/ca.key";
    bad.push_back({"a key as CA file", no_ca, "holds no certificate"});
    for (const auto& b : bad) {
        INFO("case: " << b.name);
        std::string error;
        try {
            UserAgent ua(loop, b.config);
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
        CHECK(error.find(b.what) != std::string::npos);
    }
}

TEST_CASE("S4 the plain Contact with TLS on: listen's host and port, none for a wildcard") {
    const std::pair<const char*, const char*> rows[] = {
        {"sip:127.0.0.1:5080", "<sip:127.0.0.1:5080>"},
        {"sip:gw.example.org", "<sip:gw.example.org:5060>"},
        {"sip:gw.example.org:5070;transport=udp", "<sip:gw.example.org:5070>"},
        {"sip:[2001:db8::1]:5080", "<sip:[2001:db8::1]:5080>"},
        {"sip:[2001:db8::1]", "<sip:[2001:db8::1]:5060>"},
        {"sip:*:5080", ""},
        {"sip:0.0.0.0:5080", ""},
        {"sip:[::]:5080", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.first); // a structured binding here: clang 14 cannot capture it
        CHECK(xsgw::sip::detail::plain_contact_of(row.first) == row.second);
    }
}
