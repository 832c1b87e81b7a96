// The resolver against a real dnsmasq that each test starts on loopback (127.0.0.54, a free
// port), plus a refusing address and a silent socket for the failure paths. dnsmasq is
// required: without it these tests fail, they never skip.
#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/dns/resolver.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <pwd.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using namespace xsgw::dns;
using xsgw::core::DnsConfig;
using xsgw::core::EventLoop;

namespace {

constexpr const char* dns_ip = "127.0.0.54";

// The zone every test serves: dns.sh's records plus the cases these tests need.
constexpr const char* zone = R"(# as in shared/peers/dns.sh
naptr-record=simple.test,10,10,"S","SIP+D2U","",_sip._udp.simple.test
naptr-record=simple.test,20,10,"S","SIP+D2T","",_sip._tcp.simple.test
srv-host=_sip._udp.simple.test,pbx.simple.test,5060,0,10
srv-host=_sip._tcp.simple.test,pbx.simple.test,5060,0,10
host-record=pbx.simple.test,127.0.0.2
srv-host=_sip._udp.srvonly.test,pbx.simple.test,5060
host-record=aonly.test,127.0.0.2
# D1: NAPTR listed out of order, with services the gateway cannot use
naptr-record=naptr.test,30,10,"S","SIP+D2U","",_sip._udp.naptr.test
naptr-record=naptr.test,10,20,"S","SIP+D2T","",_sip._tcp.naptr.test
naptr-record=naptr.test,5,10,"S","SIP+D2S","",_sip._sctp.naptr.test
naptr-record=naptr.test,10,10,"S","SIPS+D2T","",_sips._tcp.naptr.test
naptr-record=naptr.test,1,10,"U","E2U+sip","!^.*$!sip:info@naptr.test!"
srv-host=_sip._udp.naptr.test,udp.naptr.test,5070,0,10
srv-host=_sip._tcp.naptr.test,tcp.naptr.test,5071,0,10
srv-host=_sips._tcp.naptr.test,tls.naptr.test,5072,0,10
srv-host=_sip._sctp.naptr.test,sctp.naptr.test,5073,0,10
host-record=udp.naptr.test,127.0.1.1
host-record=tcp.naptr.test,127.0.1.2
host-record=tls.naptr.test,127.0.1.3
host-record=sctp.naptr.test,127.0.1.4
# D4: two priorities, weights 0, 10 and 30 in the first
srv-host=_sip._udp.prio.test,late.prio.test,5060,20,0
srv-host=_sip._udp.prio.test,light.prio.test,5060,10,10
srv-host=_sip._udp.prio.test,heavy.prio.test,5060,10,30
srv-host=_sip._udp.prio.test,zero.prio.test,5060,10,0
host-record=light.prio.test,127.0.2.1
host-record=heavy.prio.test,127.0.2.2
host-record=zero.prio.test,127.0.2.3
host-record=late.prio.test,127.0.2.4
# D5: two NAPTR, two SRV priorities, a dual-stack host
naptr-record=multi.test,10,10,"S","SIP+D2U","",_sip._udp.multi.test
naptr-record=multi.test,20,10,"S","SIP+D2T","",_sip._tcp.multi.test
srv-host=_sip._udp.multi.test,m2.multi.test,5062,20,10
srv-host=_sip._udp.multi.test,m1.multi.test,5060,10,10
srv-host=_sip._tcp.multi.test,m1.multi.test,5060,10,10
host-record=m1.multi.test,127.0.3.1,::1
host-record=m2.multi.test,127.0.3.2
# a name that exists without any SIP record
txt-record=empty.test,"nothing for SIP here"
# D6: a TTL of its own (everything else has local-ttl)
host-record=ttl.test,127.0.0.7,7
)"
                             // An SRV set too long for 512 bytes of UDP: c-ares must ask again
                             // over TCP (the truncation bit).
                             R"(srv-host=_sip._udp.big.test,pbx.simple.test,6000,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6001,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6002,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6003,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6004,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6005,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6006,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6007,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6008,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6009,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6010,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6011,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6012,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6013,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6014,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6015,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6016,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6017,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6018,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6019,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6020,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6021,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6022,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6023,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6024,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6025,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6026,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6027,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6028,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6029,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6030,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6031,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6032,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6033,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6034,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6035,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6036,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6037,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6038,0,10
srv-host=_sip._udp.big.test,pbx.simple.test,6039,0,10
)";

// XSGW_DNSMASQ, else dnsmasq on PATH or in the sbin directories; "" when there is none.
std::string find_dnsmasq() {
    if (const char* env = std::getenv("XSGW_DNSMASQ"); env != nullptr && *env != '\0')
        return access(env, X_OK) == 0 ? env : "";
    std::string dirs = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    dirs += ":/usr/sbin:/sbin:/usr/local/sbin";
    std::istringstream in(dirs);
    for (std::string dir; std::getline(in, dir, ':');) {
        if (dir.empty()) continue;
        std::string path = dir + "/dnsmasq";
        if (access(path.c_str(), X_OK) == 0) return path;
    }
    return {};
}

// A UDP port that is free for both UDP and TCP on ip (dnsmasq binds both).
uint16_t free_port(const char* ip) {
    for (int attempt = 0; attempt < 50; ++attempt) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a.sin_addr);
        const int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (u < 0) break;
        socklen_t len = sizeof a;
        if (bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            getsockname(u, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            close(u);
            break;
        }
        const int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool tcp_free = t >= 0 && bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        if (t >= 0) close(t);
        close(u);
        if (tcp_free) return ntohs(a.sin_port);
    }
    throw std::runtime_error(fmt::format("no free port on {}: {}", ip, std::strerror(errno)));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// dnsmasq could not bind the port free_port() found.
struct PortTaken : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One dnsmasq serving `zone` on 127.0.0.54:<free port>, killed and reaped on destruction.
class Dnsmasq {
public:
    Dnsmasq() {
        const std::string program = find_dnsmasq();
        if (program.empty())
            throw std::runtime_error(
                "dnsmasq not found (not on PATH, not in /usr/sbin, or XSGW_DNSMASQ is not an "
                "executable): the DNS tests need it; install the Debian package dnsmasq-base");
        char dir_template[] = "/tmp/xsgw-dnsmasq-XXXXXX";
        if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = dir_template;
        // The port was free a moment ago; should another process take it first, try another.
        for (int attempt = 1;; ++attempt) {
            try {
                start(program);
                return;
            } catch (const PortTaken&) {
                stop();
                if (attempt < 3) continue;
                remove_files();
                throw;
            } catch (...) {
                stop();
                remove_files();
                throw;
            }
        }
    }
    ~Dnsmasq() {
        stop();
        remove_files();
    }
    Dnsmasq(const Dnsmasq&) = delete;
    Dnsmasq& operator=(const Dnsmasq&) = delete;
    Dnsmasq(Dnsmasq&&) = delete;
    Dnsmasq& operator=(Dnsmasq&&) = delete;

    /// "127.0.0.54:PORT", for dns.servers.
    const std::string& server() const { return server_; }
    /// Everything dnsmasq logged so far (log-queries is on).
    std::string log() const { return read_file(dir_ + "/dnsmasq.log"); }

private:
    void start(const std::string& program) {
        // dnsmasq, run as root, would switch to "nobody"; a credential change would clear
        // the parent-death signal that kills it if this test process dies.
        const passwd* me = getpwuid(geteuid());
        const uint16_t port = free_port(dns_ip);
        server_ = fmt::format("{}:{}", dns_ip, port);
        {
            std::ofstream conf(dir_ + "/dnsmasq.conf");
            conf << "keep-in-foreground\nno-resolv\nno-hosts\nno-poll\nbind-interfaces\n"
                 << "listen-address=" << dns_ip << "\nport=" << port << "\n"
                 << "local=/test/\ncache-size=0\nlocal-ttl=60\npid-file=\n"
                 << "log-queries\nlog-facility=-\n"
                 << (me != nullptr ? fmt::format("user={}\n", me->pw_name) : "") << zone;
        }
        const std::string conf_arg = "--conf-file=" + dir_ + "/dnsmasq.conf";
        const std::string log_path = dir_ + "/dnsmasq.log";
        const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0) throw std::runtime_error("cannot create " + log_path);
        const pid_t parent = getpid();
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127);
            dup2(log_fd, STDOUT_FILENO);
            dup2(log_fd, STDERR_FILENO);
            execl(program.c_str(), "dnsmasq", conf_arg.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(log_fd);
        if (pid_ < 0) throw std::runtime_error("fork failed");
        wait_ready(port, 5s);
    }

    void remove_files() {
        for (const char* f : {"/dnsmasq.conf", "/dnsmasq.log"})
            unlink((dir_ + f).c_str());
        rmdir(dir_.c_str());
    }

    // Sends a query for ready.test until an answer comes back: poll with a deadline, no sleep.
    void wait_ready(uint16_t port, std::chrono::milliseconds deadline) {
        const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        inet_pton(AF_INET, dns_ip, &a.sin_addr);
        if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot create the readiness probe socket");
        const unsigned char query[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0,
                                       0,    0,    5,    'r',  'e', 'a', 'd', 'y', 4, 't',
                                       'e',  's',  't',  0,    0,   1,   0,   1};
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (std::chrono::steady_clock::now() < end) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                close(s);
                const std::string text = log();
                if (text.find("in use") != std::string::npos)
                    throw PortTaken("dnsmasq: port taken: " + text);
                throw std::runtime_error("dnsmasq exited at startup: " + text);
            }
            // ECONNREFUSED until dnsmasq binds: just ask again.
            (void)send(s, query, sizeof query, 0);
            pollfd p{s, POLLIN, 0};
            if (poll(&p, 1, 20) == 1) {
                unsigned char reply[512];
                if (recv(s, reply, sizeof reply, 0) > 0) {
                    close(s);
                    return;
                }
            }
        }
        close(s);
        throw std::runtime_error(fmt::format("dnsmasq did not answer on {} within {} ms: {}",
                                             server_, deadline.count(), log()));
    }

    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGKILL);
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

    pid_t pid_ = -1;
    std::string dir_;
    std::string server_;
};

UniformRandom lowest() {
    return [](uint32_t) { return 0u; };
}

UniformRandom highest() {
    return [](uint32_t max) { return max; };
}

ResolverOptions options(UniformRandom random = lowest()) {
    ResolverOptions o;
    o.random = std::move(random);
    o.query_timeout = 1000ms;
    return o;
}

DnsConfig servers(std::vector<std::string> list) {
    DnsConfig c;
    c.servers = std::move(list);
    return c;
}

Resolution resolve(EventLoop& loop, Resolver& resolver, const SipDestination& destination) {
    std::optional<Resolution> got;
    int calls = 0;
    resolver.resolve_sip(destination, [&](const Resolution& r) {
        got = r;
        ++calls;
    });
    REQUIRE_MESSAGE(loop.run_until([&] { return got.has_value(); }, 5s),
                    "no answer for " << destination.host);
    CHECK(calls == 1);
    return *got;
}

SipDestination sip(std::string host, std::optional<uint16_t> port = {},
                   std::optional<Transport> transport = {}) {
    return SipDestination{std::move(host), port, transport, false};
}

std::string show(const std::vector<Target>& targets) {
    std::string s;
    for (const auto& t : targets)
        s += fmt::format("{}:{}/{}({}) ", t.address, t.port, to_string(t.transport), t.host);
    return s;
}

// A UDP socket that is bound and never read: queries sent to it time out.
class SilentServer {
public:
    SilentServer() {
        fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        socklen_t len = sizeof a;
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        address_ = fmt::format("127.0.0.1:{}", ntohs(a.sin_port));
    }
    ~SilentServer() { close(fd_); }
    SilentServer(const SilentServer&) = delete;
    SilentServer& operator=(const SilentServer&) = delete;
    SilentServer(SilentServer&&) = delete;
    SilentServer& operator=(SilentServer&&) = delete;
    const std::string& address() const { return address_; }

private:
    int fd_ = -1;
    std::string address_;
};

} // namespace

TEST_CASE("D1 NAPTR from a real server: unsorted answers sorted, unusable services dropped") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    Resolver resolver(loop, servers({dns.server()}), options());
    const Resolution r = resolve(loop, resolver, sip("naptr.test"));
    CHECK(r.failure == Failure::none);
    CHECK(show(r.targets) == "127.0.1.3:5072/tls(tls.naptr.test) "
                             "127.0.1.2:5071/tcp(tcp.naptr.test) "
                             "127.0.1.1:5070/udp(udp.naptr.test) ");
    CHECK(r.reason == "NAPTR of naptr.test");
    // NAPTR, three SRV, A and AAAA of three hosts: the SCTP one is never asked.
    CHECK(resolver.stats().queries_sent == 10);
    CHECK_FALSE(resolver.cached_ttl({"_sip._sctp.naptr.test", RecordType::srv}));

    SipDestination secure = sip("naptr.test");
    secure.secure = true;
    CHECK(show(resolve(loop, resolver, secure).targets) == "127.0.1.3:5072/tls(tls.naptr.test) ");
}

TEST_CASE("D2 no NAPTR: SRV fallback; no SRV: A/AAAA on 5060, 5061 for sips") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    Resolver resolver(loop, servers({dns.server()}), options());

    const Resolution srv = resolve(loop, resolver, sip("srvonly.test"));
    CHECK(show(srv.targets) == "127.0.0.2:5060/udp(pbx.simple.test) ");
    CHECK(srv.reason == "SRV of srvonly.test (no NAPTR)");
    // NAPTR, _sips._tcp, _sip._tcp, _sip._udp, then A and AAAA of the target.
    CHECK(resolver.stats().queries_sent == 6);

    const Resolution a = resolve(loop, resolver, sip("aonly.test"));
    CHECK(show(a.targets) == "127.0.0.2:5060/udp(aonly.test) ");
    CHECK(a.reason == "A/AAAA of aonly.test (no SRV)");

    SipDestination secure = sip("aonly.test");
    secure.secure = true;
    CHECK(show(resolve(loop, resolver, secure).targets) == "127.0.0.2:5061/tls(aonly.test) ");

    // dns.sh's domains as the e2e suite uses them.
    CHECK(show(resolve(loop, resolver, sip("simple.test")).targets) ==
          "127.0.0.2:5060/udp(pbx.simple.test) 127.0.0.2:5060/tcp(pbx.simple.test) ");
}

TEST_CASE("D2 NXDOMAIN and a name without SIP records are not_found, cached negatively") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    auto now = std::chrono::steady_clock::now();
    ResolverOptions o = options();
    o.negative_ttl = 10s;
    o.clock = [&] { return now; };
    Resolver resolver(loop, servers({dns.server()}), o);

    const Resolution nx = resolve(loop, resolver, sip("nothere.test"));
    CHECK(nx.failure == Failure::not_found);
    CHECK(nx.targets.empty());
    CHECK(nx.reason == "nothere.test: no address for nothere.test (NXDOMAIN)");
    CHECK(resolver.stats().queries_sent == 6);

    const Resolution empty = resolve(loop, resolver, sip("empty.test"));
    CHECK(empty.failure == Failure::not_found);
    CHECK(empty.reason == "empty.test: no address for empty.test");
    CHECK(resolver.stats().queries_sent == 12);

    // Negative answers are cached negative_ttl: the same lookup sends nothing...
    CHECK(resolve(loop, resolver, sip("nothere.test")).failure == Failure::not_found);
    CHECK(resolver.stats().queries_sent == 12);
    CHECK(resolver.cached_ttl({"nothere.test", RecordType::naptr}) == 10s);
    // ...until they expire.
    now += 10s;
    CHECK_FALSE(resolver.cached_ttl({"nothere.test", RecordType::naptr}));
    CHECK(resolve(loop, resolver, sip("nothere.test")).failure == Failure::not_found);
    CHECK(resolver.stats().queries_sent == 18);
}

TEST_CASE("D3 explicit port: only A and AAAA; numeric host: no DNS; transport: only its SRV") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    Resolver resolver(loop, servers({dns.server()}), options());

    const Resolution port = resolve(loop, resolver, sip("aonly.test", 5099));
    CHECK(show(port.targets) == "127.0.0.2:5099/udp(aonly.test) ");
    CHECK(resolver.stats().queries_sent == 2);
    CHECK_FALSE(resolver.cached_ttl({"aonly.test", RecordType::naptr}));

    const Resolution numeric = resolve(loop, resolver, sip("127.0.0.9", {}, Transport::tcp));
    CHECK(show(numeric.targets) == "127.0.0.9:5060/tcp(127.0.0.9) ");
    CHECK(resolver.stats().queries_sent == 2);

    const Resolution tcp = resolve(loop, resolver, sip("simple.test", {}, Transport::tcp));
    CHECK(show(tcp.targets) == "127.0.0.2:5060/tcp(pbx.simple.test) ");
    CHECK(tcp.reason == "SRV _sip._tcp.simple.test (transport=tcp)");
    CHECK(resolver.stats().queries_sent == 5);
    CHECK_FALSE(resolver.cached_ttl({"simple.test", RecordType::naptr}));
    CHECK_FALSE(resolver.cached_ttl({"_sip._udp.simple.test", RecordType::srv}));
}

TEST_CASE("D3 a numeric host completes with no DNS, from the loop, never inside resolve_sip") {
    EventLoop loop;
    // No server at all: nothing may be asked.
    Resolver resolver(loop, servers({"127.0.0.1:9"}), options());
    bool called = false;
    resolver.resolve_sip(sip("[::1]", 5070), [&](const Resolution& r) {
        called = true;
        CHECK(show(r.targets) == "::1:5070/udp(::1) ");
    });
    CHECK_FALSE(called);
    REQUIRE(loop.run_until([&] { return called; }, 2s));
    CHECK(resolver.stats().queries_sent == 0);
    CHECK(resolver.stats().resolutions == 1);
}

TEST_CASE("D4 SRV priorities and weights from a real server follow the random draws") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    {
        Resolver resolver(loop, servers({dns.server()}), options(lowest()));
        CHECK(show(resolve(loop, resolver, sip("prio.test")).targets) ==
              "127.0.2.3:5060/udp(zero.prio.test) 127.0.2.1:5060/udp(light.prio.test) "
              "127.0.2.2:5060/udp(heavy.prio.test) 127.0.2.4:5060/udp(late.prio.test) ");
    }
    {
        Resolver resolver(loop, servers({dns.server()}), options(highest()));
        CHECK(show(resolve(loop, resolver, sip("prio.test")).targets) ==
              "127.0.2.2:5060/udp(heavy.prio.test) 127.0.2.1:5060/udp(light.prio.test) "
              "127.0.2.3:5060/udp(zero.prio.test) 127.0.2.4:5060/udp(late.prio.test) ");
    }
    {
        // The default generator: priority 20 always last, weight 30 first most often.
        Resolver resolver(loop, servers({dns.server()}), ResolverOptions{});
        std::vector<Resolution> results;
        for (int i = 0; i < 200; ++i)
            resolver.resolve_sip(sip("prio.test"),
                                 [&](const Resolution& r) { results.push_back(r); });
        REQUIRE(loop.run_until([&] { return results.size() == 200; }, 5s));
        int heavy_first = 0;
        for (const auto& r : results) {
            REQUIRE(r.targets.size() == 4);
            CHECK(r.targets.back().host == "late.prio.test");
            heavy_first += r.targets.front().host == "heavy.prio.test";
        }
        // Expected 30/41 of 200 = 146; below 100 or above 190 is far outside chance.
        CHECK(heavy_first > 100);
        CHECK(heavy_first < 190);
        // NAPTR, three SRV, A and AAAA of four hosts, asked once for all 200.
        CHECK(resolver.stats().queries_sent == 12);
    }
}

TEST_CASE("D5 targets listed in failover order with every address of every SRV, real server") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    Resolver resolver(loop, servers({dns.server()}), options());
    const Resolution r = resolve(loop, resolver, sip("multi.test"));
    CHECK(r.failure == Failure::none);
    CHECK(show(r.targets) == "127.0.3.1:5060/udp(m1.multi.test) ::1:5060/udp(m1.multi.test) "
                             "127.0.3.2:5062/udp(m2.multi.test) "
                             "127.0.3.1:5060/tcp(m1.multi.test) ::1:5060/tcp(m1.multi.test) ");
    for (const auto& t : r.targets)
        CHECK(t.domain == "multi.test");
}

TEST_CASE("D6 answers cached for their TTL capped by max_ttl; expiry asks again") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    auto now = std::chrono::steady_clock::now();
    ResolverOptions o = options();
    o.max_ttl = 30s;
    o.negative_ttl = 20s;
    o.clock = [&] { return now; };
    Resolver resolver(loop, servers({dns.server()}), o);

    CHECK(show(resolve(loop, resolver, sip("ttl.test", 5060)).targets) ==
          "127.0.0.7:5060/udp(ttl.test) ");
    CHECK(resolver.cached_ttl({"ttl.test", RecordType::a}) == 7s);     // the record's own TTL
    CHECK(resolver.cached_ttl({"TTL.test.", RecordType::a}) == 7s);    // same name
    CHECK(resolver.cached_ttl({"ttl.test", RecordType::aaaa}) == 20s); // no data: negative
    CHECK(resolver.stats().queries_sent == 2);

    resolve(loop, resolver, sip("simple.test"));
    // local-ttl=60 on the server, capped to 30 here.
    CHECK(resolver.cached_ttl({"simple.test", RecordType::naptr}) == 30s);
    CHECK(resolver.cached_ttl({"_sip._udp.simple.test", RecordType::srv}) == 30s);
    CHECK(resolver.cached_ttl({"pbx.simple.test", RecordType::a}) == 30s);

    // 8 s later the A record (TTL 7) is asked again, the AAAA is still cached.
    now += 8s;
    const auto sent = resolver.stats().queries_sent;
    const auto hits = resolver.stats().cache_hits;
    resolve(loop, resolver, sip("ttl.test", 5060));
    CHECK(resolver.stats().queries_sent == sent + 1);
    CHECK(resolver.stats().cache_hits == hits + 1);
    CHECK(resolver.cached_ttl({"ttl.test", RecordType::a}) == 7s);

    // Without a cap the server's TTL is kept as it is.
    ResolverOptions uncapped = options();
    uncapped.clock = o.clock;
    Resolver second(loop, servers({dns.server()}), uncapped);
    resolve(loop, second, sip("simple.test"));
    CHECK(second.cached_ttl({"simple.test", RecordType::naptr}) == 60s);
}

TEST_CASE("D6 identical lookups in flight share one DNS query; then the cache answers") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    Resolver resolver(loop, servers({dns.server()}), options());
    std::vector<Resolution> results;
    for (int i = 0; i < 3; ++i)
        resolver.resolve_sip(sip("simple.test"),
                             [&](const Resolution& r) { results.push_back(r); });
    REQUIRE(loop.run_until([&] { return results.size() == 3; }, 5s));
    // NAPTR, _sip._udp and _sip._tcp SRV, A and AAAA of pbx.simple.test: asked once each.
    const auto& s = resolver.stats();
    CHECK(s.queries_sent == 5);
    CHECK(s.joined_in_flight == 10);
    CHECK(s.cache_misses == 15);
    CHECK(s.cache_hits == 0);
    for (const auto& r : results)
        CHECK(r.targets == results.front().targets);
    CHECK(results.front().targets.size() == 2);

    // Fully cached: nothing sent, and still the callback comes from the loop.
    bool called = false;
    resolver.resolve_sip(sip("simple.test"), [&](const Resolution& r) {
        called = true;
        CHECK(r.targets == results.front().targets);
    });
    CHECK_FALSE(called);
    REQUIRE(loop.run_until([&] { return called; }, 2s));
    CHECK(s.queries_sent == 5);
    CHECK(s.cache_hits == 5);
    // dnsmasq saw each question exactly once.
    const std::string log = dns.log();
    std::size_t naptr_queries = 0;
    for (auto at = log.find("query[NAPTR] simple.test"); at != std::string::npos;
         at = log.find("query[NAPTR] simple.test", at + 1))
        ++naptr_queries;
    CHECK(naptr_queries == 1);
}

TEST_CASE("D6 lookups in flight end with the resolver: no callback after destruction") {
    EventLoop loop;
    SilentServer silent;
    ResolverOptions o = options();
    o.query_timeout = 100ms;
    o.tries = 1;
    auto resolver = std::make_unique<Resolver>(loop, servers({silent.address()}), o);
    bool called = false;
    resolver->resolve_sip(sip("simple.test"), [&](const Resolution&) { called = true; });
    resolver->resolve_sip(sip("127.0.0.1"), [&](const Resolution&) { called = true; });
    CHECK(resolver->stats().queries_sent == 1);
    resolver.reset();
    // Well past the query timeout: c-ares had every chance to call back.
    CHECK_FALSE(loop.run_until([&] { return called; }, 400ms));
}

TEST_CASE("D6 a callback may destroy the resolver; callbacks due after it never run") {
    EventLoop loop;
    auto resolver = std::make_unique<Resolver>(loop, servers({"127.0.0.1:9"}), options());
    int first = 0, second = 0;
    resolver->resolve_sip(sip("127.0.0.1"), [&](const Resolution&) {
        ++first;
        resolver.reset();
    });
    resolver->resolve_sip(sip("127.0.0.2"), [&](const Resolution&) { ++second; });
    REQUIRE(loop.run_until([&] { return first == 1; }, 2s));
    CHECK_FALSE(loop.run_until([&] { return second != 0; }, 50ms));
    CHECK(resolver == nullptr);
}

TEST_CASE("D7 an answer truncated over UDP is fetched whole over TCP") {
    EventLoop loop;
    Dnsmasq dns;
    INFO("dnsmasq log:\n" << dns.log());
    Resolver resolver(loop, servers({dns.server()}), options());
    const Resolution r = resolve(loop, resolver, sip("big.test", {}, Transport::udp));
    CHECK(r.failure == Failure::none);
    REQUIRE(r.targets.size() == 40);
    for (std::size_t i = 0; i < r.targets.size(); ++i)
        CHECK(r.targets[i].port == 6000 + i); // equal weights: the lowest draw keeps sort order
    CHECK(resolver.stats().queries_sent == 3);
}

TEST_CASE("D6 a callback may start another resolution") {
    EventLoop loop;
    Resolver resolver(loop, servers({"127.0.0.1:9"}), options());
    std::vector<std::string> seen;
    resolver.resolve_sip(sip("127.0.0.1"), [&](const Resolution& first) {
        seen.push_back(first.targets.at(0).address);
        resolver.resolve_sip(sip("127.0.0.2"), [&](const Resolution& second) {
            seen.push_back(second.targets.at(0).address);
        });
        CHECK(seen.size() == 1); // not called inside resolve_sip, also from a callback
    });
    REQUIRE(loop.run_until([&] { return seen.size() == 2; }, 2s));
    CHECK(seen == std::vector<std::string>{"127.0.0.1", "127.0.0.2"});
}

TEST_CASE("D7 dns.servers used as given; without them the system configuration") {
    EventLoop loop;
    Resolver configured(loop, servers({"127.0.0.54:5354", "[::1]:5355"}), options());
    CHECK(configured.servers() == std::vector<std::string>{"127.0.0.54:5354", "[::1]:5355"});

    Resolver system(loop, DnsConfig{}, options());
    CHECK_FALSE(system.servers().empty());

    CHECK_THROWS_AS(Resolver(loop, servers({"not an address"}), options()), std::runtime_error);
}

TEST_CASE("D7 a server that refuses (ICMP port unreachable) fails fast as unreachable") {
    EventLoop loop;
    const std::string refusing = fmt::format("127.0.0.55:{}", free_port("127.0.0.55"));
    ResolverOptions o = options();
    o.query_timeout = 2000ms;
    Resolver resolver(loop, servers({refusing}), o);
    const auto start = std::chrono::steady_clock::now();
    const Resolution r = resolve(loop, resolver, sip("simple.test"));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(r.failure == Failure::unreachable);
    CHECK(r.targets.empty());
    CHECK(r.reason.rfind("NAPTR simple.test: ", 0) == 0);
    CHECK(took < 1000ms); // the refusal, not the timeout, ended it
    // Failures are not cached: the next lookup asks again.
    resolve(loop, resolver, sip("simple.test"));
    CHECK(resolver.stats().queries_sent == 2);
}

TEST_CASE("D7 a server that never answers times out as unreachable") {
    EventLoop loop;
    SilentServer silent;
    ResolverOptions o = options();
    o.query_timeout = 100ms;
    o.tries = 2;
    Resolver resolver(loop, servers({silent.address()}), o);
    const auto start = std::chrono::steady_clock::now();
    const Resolution r = resolve(loop, resolver, sip("simple.test"));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(r.failure == Failure::unreachable);
    CHECK(r.reason == "NAPTR simple.test: Timeout while contacting DNS servers");
    // Two tries: 100 ms, then 200 ms (c-ares doubles the timeout each round).
    CHECK(took >= 250ms);
    CHECK(took < 1500ms);
}
