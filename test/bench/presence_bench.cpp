// xsgw_presence_bench: what it costs the real xsgw to hold many presence
// subscriptions (XMPP users watching SIP contacts): resident memory per
// subscription, the time to set them up, the SUBSCRIBE refreshes it sends and
// how they are spread over time, and its CPU per refresh.
//
//   XMPP side: a fake XMPP server that accepts xsgw's XEP-0114 connection and
//              sends, for user i, <presence type='subscribe'/> from u<i>@xmpp.test
//              to the contact c<i>*HOST\3aPORT@sip.test (a numeric SIP host with
//              its port: no DNS runs). It reads back `subscribed` and presence.
//   SIP side:  one UDP notifier for every contact: it answers each SUBSCRIBE with
//              200 (Contact, Expires) and sends a NOTIFY in the dialog (active,
//              a small PIDF), for the first SUBSCRIBE and every refresh (RFC
//              6665 §4.2.1.2), retransmitting the NOTIFY like an RFC 3261 UAC.
//
// Per size N, against a fresh xsgw: one probe subscription, the baseline
// memory, N subscriptions set up (paced by a window of outstanding ones and an
// optional rate), then an observation span in which xsgw refreshes them, then
// SIGTERM (timed: xsgw un-SUBSCRIBEs every dialog on its way out).
//
// Then the restart phase (--no-restart skips it): xsgw's config names a
// presence.state_file, which xsgw rewrites about 1 s after a change; the
// benchmark waits until the file lists all N + 1 pairs before the observation
// span. After the SIGTERM a new xsgw starts with the same config; on its first
// link up it reads the file back and subscribes every pair again with no XMPP
// action. Timed from the fake server's <handshake/> until, for every pair, the
// notifier has answered a new SUBSCRIBE and NOTIFYed, and xsgw has sent the
// user `subscribed` and the available presence again (a restored pair is new
// to it: the first active NOTIFY makes it say both); then that xsgw's peak
// memory, and its own SIGTERM.
//
// It prints figures and asserts nothing about them; it exits 1 only when a
// subscription did not come up (or back), a NOTIFY went unanswered, or xsgw
// failed.
#include "fake_component_server.hpp"
#include "fd.hpp"
#include "gateway_process.hpp"
#include "sip_text.hpp"
#include "xml_stream.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <optional>
#include <poll.h>
#include <queue>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace xsgw::bench {
namespace {

// ---------------------------------------------------------------- constants

constexpr std::string_view component = "sip.test";  // xmpp.component
constexpr std::string_view sip_domain = "sip.test"; // sip.domain
constexpr std::string_view xmpp_domain = "xmpp.test";
constexpr std::string_view ready_id = "xsgw-presence-bench-ready";
constexpr std::string_view pidf_tuple = "ID-bench"; // read back by xsgw as resource "bench"

constexpr std::int64_t ms = 1'000'000; // nanoseconds
constexpr std::int64_t sec = 1000 * ms;
// RFC 3261 §17.1.2.2 timers for the notifier's NOTIFY transactions over UDP.
constexpr std::int64_t timer_t1 = 500 * ms;
constexpr std::int64_t timer_t2 = 4 * sec;
constexpr std::int64_t timer_f = 64 * timer_t1;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double seconds(std::int64_t ns) {
    return static_cast<double>(ns) / 1e9;
}

// ---------------------------------------------------------------- options

struct Options {
    std::string xsgw;
    std::uint32_t subscriptions = 100000;
    std::uint32_t also = 10000; ///< a smaller size run first, for scaling; 0: none
    std::uint32_t window = 500;
    double rate = 0; ///< subscriptions/s during set-up; 0: only the window paces
    std::uint32_t expires = 120;
    std::optional<std::uint32_t> observe; ///< seconds after set-up; default from expires
    std::string host = "127.0.0.77";
    std::uint16_t base_port = 35000;
    std::string workdir;
    bool keep = false;
    bool restart = true; ///< the restart phase: stop, start again, restore from the state file
    std::string summary; ///< --summary FILE: the table's figures as "N.key value" lines
    std::int64_t quiet_limit = 30 * sec;
    std::string command_line;
};

constexpr std::string_view usage = R"(usage: xsgw_presence_bench --xsgw PATH [options]

Makes the xsgw binary at PATH hold many presence subscriptions (XMPP users
watching SIP contacts), playing its XMPP server and the SIP notifier on
loopback; prints memory per subscription, set-up time, refresh load and its
spread, CPU per refresh; then stops it and starts a new one with the same
config and times how long the new one takes to restore every subscription
from presence.state_file. Exits 1 if a subscription did not come up (or did
not come back after the restart), a NOTIFY went unanswered or the gateway
failed; 2 for a bad command line.

  --xsgw PATH            the xsgw binary (required)
  -n, --subscriptions N  subscriptions held (default 100000)
  --also M               first a run with M subscriptions, for scaling (default 10000;
                         0: none; ignored when not below N)
  -w, --window W         most subscriptions being set up at once (default 500)
  --rate R               at most R new subscriptions/s during set-up (default: no cap)
  --expires E            presence.subscribe_expires and the Expires the notifier grants,
                         seconds (default 120)
  --observe S            seconds to watch refreshes after set-up (default: the longest
                         refresh delay nua draws for E, plus 10 s: 100 for E = 120)
  --host A               loopback IPv4 address for xsgw and both fake peers (default 127.0.0.77)
  --base-port P          XMPP on P, xsgw's SIP on P+60, the notifier on P+70, xsgw's
                         metrics on P+77 (default 35000)
  --quiet-limit S        give up set-up (or the restore) after S seconds without progress
                         (default 30)
  --no-restart           no restart phase, and no presence.state_file in xsgw's config
  --workdir DIR          where the configs and logs go (default: a new
                         /tmp/xsgw_presence_bench.*, removed after a clean run)
  --keep                 keep the workdir after a clean run
  --summary FILE         also write the table's figures to FILE, one "N.key value" line
                         each (setup_s, setup_per_s, kib_per_sub, peak_mib, refresh_per_s,
                         cpu_per_1000, idle_cpu_pct, stop_s, restore_s, restored_per_s,
                         restored_peak_mib, retransmissions_restore, ok), "-" when not
                         measured; for test/bench/run
  -h, --help             this text
)";

template <class T> T parse_number(std::string_view option, std::string_view text) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        throw std::invalid_argument(fmt::format("{}: not a number: '{}'", option, text));
    }
    return value;
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 0; i < argc; ++i) {
        o.command_line += (i == 0 ? "" : " ") + std::string(argv[i]);
    }
    std::vector<std::string_view> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::optional<std::string_view> inline_value;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        auto value = [&]() -> std::string_view {
            if (inline_value) {
                return *inline_value;
            }
            if (i + 1 >= args.size()) {
                throw std::invalid_argument(fmt::format("{} needs a value", arg));
            }
            return args[++i];
        };
        if (arg == "-h" || arg == "--help") {
            fmt::print("{}", usage);
            std::exit(0);
        } else if (arg == "--xsgw") {
            o.xsgw = value();
        } else if (arg == "-n" || arg == "--subscriptions") {
            o.subscriptions = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "--also") {
            o.also = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "-w" || arg == "--window") {
            o.window = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "--rate") {
            o.rate = parse_number<double>(arg, value());
        } else if (arg == "--expires") {
            o.expires = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "--observe") {
            o.observe = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "--host") {
            o.host = value();
        } else if (arg == "--base-port") {
            o.base_port = parse_number<std::uint16_t>(arg, value());
        } else if (arg == "--quiet-limit") {
            o.quiet_limit = parse_number<std::int64_t>(arg, value()) * sec;
        } else if (arg == "--workdir") {
            o.workdir = value();
        } else if (arg == "--keep") {
            o.keep = true;
        } else if (arg == "--no-restart") {
            o.restart = false;
        } else if (arg == "--summary") {
            o.summary = value();
        } else {
            throw std::invalid_argument(fmt::format("unknown option '{}'", arg));
        }
    }
    if (o.xsgw.empty()) {
        throw std::invalid_argument("--xsgw PATH is required");
    }
    if (::access(o.xsgw.c_str(), X_OK) != 0) {
        throw std::invalid_argument(fmt::format("--xsgw: {} is not executable", o.xsgw));
    }
    if (o.subscriptions == 0 || o.window == 0) {
        throw std::invalid_argument("--subscriptions and --window must be at least 1");
    }
    if (o.expires < 2 || o.expires > 86400) {
        throw std::invalid_argument("--expires must be 2..86400 (presence.subscribe_expires)");
    }
    if (o.rate < 0 || o.quiet_limit <= 0) {
        throw std::invalid_argument("--rate must not be negative, --quiet-limit at least 1");
    }
    in_addr a{};
    if (::inet_pton(AF_INET, o.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
        throw std::invalid_argument("--host must be an IPv4 loopback address (127.x.y.z)");
    }
    if (o.base_port < 1024 || o.base_port > 65535 - 77) {
        throw std::invalid_argument("--base-port must be 1024..65458");
    }
    return o;
}

// ---------------------------------------------------------------- small helpers

std::string random_hex(std::size_t bytes) {
    std::random_device rd;
    std::string out;
    for (std::size_t i = 0; i < bytes; ++i) {
        fmt::format_to(std::back_inserter(out), "{:02x}", rd() & 0xffU);
    }
    return out;
}

std::uint32_t hash_of(std::string_view s) {
    std::uint32_t h = 2166136261U; // FNV-1a
    for (const char c : s) {
        h = (h ^ static_cast<unsigned char>(c)) * 16777619U;
    }
    return h;
}

/// The decimal number right after `prefix` at the start of `text`, if any.
std::optional<std::uint32_t> number_after(std::string_view text, std::string_view prefix) {
    if (!text.starts_with(prefix)) {
        return std::nullopt;
    }
    const std::string_view digits = text.substr(prefix.size());
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end == digits.data()) {
        return std::nullopt;
    }
    return value;
}

sockaddr_in address_of(const std::string& host, std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    return a;
}

/// A non-blocking socket bound to host:port (SO_REUSEADDR: the previous run's TIME_WAIT).
Fd bound_socket(int type, const std::string& host, std::uint16_t port) {
    Fd fd(::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
    }
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in a = address_of(host, port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        throw std::runtime_error(
            fmt::format("bind {}:{}: {} (--base-port)", host, port, std::strerror(errno)));
    }
    return fd;
}

void grow_buffers(int fd) {
    // Root may exceed net.core.rmem_max; others get what the limit allows.
    const int bytes = 16 << 20;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
}

/// CPU seconds this benchmark process has used so far.
double own_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// GET http://host:port/metrics and the value of the sample `name` (with its labels), or
/// nullopt when the listener does not answer within 5 s or has no such sample.
std::optional<double> fetch_metric(const std::string& host, std::uint16_t port,
                                   std::string_view name) {
    const Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in a = address_of(host, port);
    const timeval timeout{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        return std::nullopt;
    }
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) {
        return std::nullopt;
    }
    std::string response;
    std::array<char, 16384> buf{};
    for (;;) {
        const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
        if (n <= 0) {
            break;
        }
        response.append(buf.data(), static_cast<std::size_t>(n));
    }
    const std::string needle = "\n" + std::string(name) + " ";
    const std::size_t at = response.find(needle);
    if (at == std::string::npos) {
        return std::nullopt;
    }
    return std::strtod(response.c_str() + at + needle.size(), nullptr);
}

/// How many of the pairs u<i> -> c<i>, i in [0, count), xsgw's presence.state_file lists (one
/// "USER CONTACT" line each); nullopt while the file does not exist.
std::optional<std::uint32_t> pairs_in_state_file(const std::string& path, std::uint32_t count) {
    std::ifstream in(path);
    if (!in) {
        return std::nullopt;
    }
    std::vector<bool> seen(count, false);
    std::uint32_t pairs = 0;
    std::string line;
    while (std::getline(in, line)) {
        const std::string_view text(line);
        const std::size_t space = text.find(' ');
        if (space == std::string_view::npos) {
            continue;
        }
        const std::optional<std::uint32_t> user = number_after(text, "u");
        const std::optional<std::uint32_t> contact = number_after(text.substr(space + 1), "c");
        if (user && contact && *user == *contact && *user < count && !seen[*user]) {
            seen[*user] = true;
            ++pairs;
        }
    }
    return pairs;
}

/// Where nua (Sofia-SIP 1.12, nua_dialog_usage_set_refresh) puts the refresh of a
/// subscription granted for `expires` seconds: a whole number of seconds drawn uniformly in
/// [min, max] after the grant, run by nua's 1-second timer.
struct RefreshRange {
    std::uint32_t min = 0;
    std::uint32_t max = 0;
};

RefreshRange nua_refresh_range(std::uint32_t expires) {
    if (expires > 90 && expires < 300) {
        return {expires - 60, expires - 30}; // 30..60 s before the end
    }
    const std::uint32_t min = std::max<std::uint32_t>((expires + 2) / 4, 1);
    return {min, (expires + 2) / 4 + (expires + 1) / 2}; // 25 %..75 %
}

// ---------------------------------------------------------------- one run

/// One subscription as both fake peers see it; index i: user u<i>, contact c<i>.
struct Subscription {
    std::int64_t requested = 0;  ///< the subscribe stanza written
    std::int64_t first_sip = 0;  ///< the first SUBSCRIBE read
    std::int64_t subscribed = 0; ///< <presence type='subscribed'/> read
    std::int64_t available = 0;  ///< the first available presence read
    std::int64_t last_grant = 0; ///< the last active NOTIFY sent (nua's refresh timer starts)
    std::string call_id;
    std::string gateway_from;       ///< the SUBSCRIBE's From, with xsgw's tag: our NOTIFYs' To
    std::string gateway_contact;    ///< the SUBSCRIBE's Contact URI: our NOTIFYs' Request-URI
    std::uint32_t last_branch = 0;  ///< hash of the Via branch of the last SUBSCRIBE answered
    std::uint32_t notify_cseq = 0;  ///< CSeq of our last NOTIFY
    std::uint32_t pending_cseq = 0; ///< that NOTIFY while it awaits a final response; 0: none
    std::int64_t pending_sent = 0;  ///< its first transmission
    bool pending_final = false;     ///< it says terminated
    std::uint32_t refreshes = 0;    ///< refresh SUBSCRIBEs (new transactions, Expires > 0)
    bool done = false;              ///< subscribed and available both read
};

/// Counts that no single subscription holds.
struct Anomalies {
    std::uint64_t subscribe_retransmits = 0; ///< xsgw's SUBSCRIBE retransmissions reaching us
    std::uint64_t notify_retransmits = 0;    ///< our NOTIFY retransmissions
    std::uint64_t notify_timeouts = 0;       ///< NOTIFYs without a final response in Timer F
    std::uint64_t notify_refused = 0;        ///< NOTIFYs answered >= 300 before SIGTERM
    std::uint64_t notify_refused_at_end = 0; ///< and after it
    std::uint64_t new_dialogs = 0;           ///< a second initial SUBSCRIBE for a contact
    std::uint64_t unknown_dialog = 0;        ///< in-dialog SUBSCRIBE for a Call-ID we do not know
    std::uint64_t fetches = 0;               ///< SUBSCRIBE Expires: 0 outside a dialog
    std::uint64_t unexpected_sip = 0;        ///< other requests or unreadable datagrams
    std::uint64_t unexpected_xmpp = 0;       ///< stanzas the benchmark did not cause
    std::uint64_t misrouted = 0;             ///< presence whose from does not match its to
    std::uint64_t unsubscribed = 0;          ///< `unsubscribed` stanzas (xsgw gave up)
    std::uint64_t errors = 0;                ///< presence errors
    std::uint64_t unavailable = 0;           ///< unavailable presence stanzas
    std::string first_refusal;               ///< what the first of those said
};

/// CPU time of xsgw at one moment.
struct CpuSample {
    std::int64_t at = 0;
    double cpu = 0;
};

/// Everything measured in one run of one size.
struct RunReport {
    std::uint32_t n = 0;
    RefreshRange range;
    std::uint16_t notifier_port = 0;
    std::string failure; ///< empty unless the gateway failed
    std::string log_path;
    long log_lines = 0;
    std::string exit_description;
    bool clean_exit = false;

    double probe_ms = 0;
    // set-up
    std::uint32_t set_up = 0; ///< subscriptions of the N that came up
    double setup_seconds = 0; ///< first stanza written to last completion
    double setup_cpu = 0;
    double bench_setup_cpu = 0;
    std::vector<double> setup_latencies_ms; ///< stanza written -> available read, sorted
    std::uint64_t refreshes_during_setup = 0;
    // memory, KiB
    std::optional<long> rss_before, rss_after_setup, rss_end, hwm_end;
    std::optional<long> anon_before, anon_after_setup, anon_end;
    std::optional<double> metric_subscriptions;
    // observation
    std::int64_t observe_start = 0;
    std::int64_t observe_end = 0;
    std::vector<std::int64_t> refresh_times;  ///< in the observation span, ns absolute
    std::vector<std::int64_t> refresh_delays; ///< since the grant before, every refresh seen
    std::vector<std::int64_t> grants;         ///< every active NOTIFY sent (absolute ns)
    std::vector<CpuSample> cpu_samples;       ///< xsgw's CPU, about once a second
    double observe_cpu = 0;
    std::uint32_t refreshed_at_least_once = 0;
    // shutdown
    double shutdown_seconds = 0;
    std::uint32_t unsubscribed_at_end = 0;
    std::uint64_t unavailable_at_end = 0;
    std::uint64_t refused_at_end = 0; ///< terminating NOTIFYs answered >= 300
    std::optional<std::uint64_t> gateway_drops, notifier_drops;
    Anomalies anomalies;
    /// SUBSCRIBE and NOTIFY retransmissions by phase: set-up (with the probe), observation,
    /// shutdown, and with the restart phase restore and the restored xsgw's shutdown.
    std::array<std::uint64_t, 5> subscribe_retransmits{};
    std::array<std::uint64_t, 5> notify_retransmits{};
    std::uint64_t xmpp_presences = 0; ///< available presence stanzas read in all
    std::uint64_t notifies_sent = 0;
    // restart: a new xsgw restores the N + 1 pairs from presence.state_file
    bool restart = false; ///< the phase was asked for (not --no-restart)
    std::string state_file;
    double state_file_seconds = 0; ///< end of set-up -> the file lists every pair
    std::uintmax_t state_file_bytes = 0;
    std::optional<std::uint32_t> state_file_pairs_at_stop; ///< listed after the first SIGTERM
    bool restarted = false;                                ///< the new xsgw's link came up
    std::uint32_t restored = 0;                   ///< pairs of the N + 1 up again (probe included)
    double restore_seconds = 0;                   ///< link up (handshake) -> the last pair up again
    double ready_after_link_ms = 0;               ///< link up -> the readiness ping answered
    double first_subscribe_ms = 0;                ///< link up -> the first new SUBSCRIBE read
    double last_subscribe_seconds = 0;            ///< link up -> the last new SUBSCRIBE read
    std::uint32_t restore_subscribes = 0;         ///< pairs with a new SUBSCRIBE (dialog)
    std::vector<double> restore_latencies_s;      ///< link up -> pair up, sorted
    std::uint64_t restore_subscribed_stanzas = 0; ///< `subscribed` read after the restart
    std::uint64_t restore_available_stanzas = 0;  ///< available presence read after it
    std::optional<double> restore_cpu; ///< the new xsgw's CPU from its start to all restored
    std::optional<long> restored_rss, restored_hwm, restored_anon;
    std::optional<double> restored_metric_subscriptions;
    double restored_shutdown_seconds = 0;
    bool restored_clean_exit = false;
    std::string restored_exit_description;
    std::uint32_t restored_unsubscribed_at_end = 0;
    std::uint64_t restored_unavailable_at_end = 0;
    std::uint64_t restored_refused_at_end = 0;
    std::string restored_log_path;
    long restored_log_lines = 0;

    bool ok() const {
        return failure.empty() && set_up == n && anomalies.notify_timeouts == 0 &&
               anomalies.notify_refused == 0 && anomalies.unsubscribed == 0 &&
               anomalies.errors == 0 && clean_exit &&
               (!restart || (restored == n + 1 && restored_clean_exit));
    }
};

/// One xsgw process and the peers the benchmark plays around it, for one size.
class Session {
public:
    Session(const Options& options, std::uint32_t n, const std::string& workdir)
        : options_(options), run_id_(random_hex(4)), secret_(random_hex(16)),
          stream_id_(random_hex(8)), xmpp_port_(options.base_port),
          sip_port_(static_cast<std::uint16_t>(options.base_port + 60)),
          notifier_port_(static_cast<std::uint16_t>(options.base_port + 70)),
          metrics_port_(static_cast<std::uint16_t>(options.base_port + 77)),
          state_file_(options.restart ? fmt::format("{}/presence-{}.state", workdir, n)
                                      : std::string()),
          xmpp_(make_xmpp_server()), subs_(n + 1) {
        xmpp_->listen_on(bound_socket(SOCK_STREAM, options.host, xmpp_port_));
        notifier_ = bound_socket(SOCK_DGRAM, options.host, notifier_port_);
        grow_buffers(notifier_.get());
        notifier_uri_host_ = fmt::format("{}:{}", options.host, notifier_port_);
        std::string extra = fmt::format(R"([presence]
subscribe_expires = {}
max_per_user = 10
max_total = {}
)",
                                        options.expires, n + 1000);
        if (!state_file_.empty()) {
            // A kept --workdir may hold one from an earlier run: the first xsgw starts empty.
            std::filesystem::remove(state_file_);
            extra += fmt::format("state_file = \"{}\"\n", state_file_);
        }
        extra += fmt::format("\n[metrics]\nlisten = \"{}:{}\"\n", options.host, metrics_port_);
        settings_ = GatewaySettings{options.xsgw,
                                    workdir,
                                    fmt::format("xsgw-presence-{}", n),
                                    xmpp_port_,
                                    sip_port_,
                                    secret_,
                                    std::string(component),
                                    std::string(sip_domain)};
        settings_.host = options.host;
        settings_.extra_config = extra;
        gateway_ = std::make_unique<GatewayProcess>(settings_);
        gateway_addr_ = address_of(options.host, sip_port_);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session(Session&&) = delete;
    Session& operator=(Session&&) = delete;
    ~Session() = default;

    /// Starts xsgw and waits until its link is up and it answers a ping through it.
    void start() {
        link_up_at_ = 0;
        gateway_->start();
        const std::int64_t deadline = now_ns() + 15 * sec;
        while (!xmpp_->ready()) {
            const std::int64_t left = deadline - now_ns();
            if (left <= 0) {
                throw GatewayFailure(!xmpp_->connected()
                                         ? "xsgw did not connect to the XMPP port within 15 s"
                                         : "xsgw's component link did not come up within 15 s");
            }
            poll_once(left);
            // The server has just taken the handshake and not yet written its answer: from
            // here xsgw's link is up (and a restarted xsgw begins restoring).
            if (link_up_at_ == 0 && xmpp_->out().find("<handshake/>") != std::string::npos) {
                link_up_at_ = now_ns();
            }
            xmpp_->flush();
        }
        ready_at_ = now_ns();
    }

    /// After stop_serving(): forgets the stopped xsgw's dialogs and starts a new xsgw with the
    /// same config (a new log), the XMPP server listening again; returns once its link is up
    /// and it answered the ping. Every pair counts as not up until it comes back.
    void restart() {
        retransmit_queue_ = {}; // the old dialogs' last NOTIFYs: nobody left to answer them
        for (Subscription& s : subs_) {
            s.first_sip = 0;
            s.subscribed = 0;
            s.available = 0;
            s.last_grant = 0;
            s.call_id.clear();
            s.gateway_from.clear();
            s.gateway_contact.clear();
            s.last_branch = 0;
            s.notify_cseq = 0;
            s.pending_cseq = 0;
            s.pending_final = false;
            s.done = false;
        }
        begin_ = 0;
        end_ = static_cast<std::uint32_t>(subs_.size());
        completed_ = 0;
        stopping_ = false;
        xmpp_ = make_xmpp_server();
        xmpp_->listen_on(bound_socket(SOCK_STREAM, options_.host, xmpp_port_));
        // Byte for byte the same config, under another name so that both logs stay.
        GatewaySettings settings = settings_;
        settings.name += "-restarted";
        gateway_ = std::make_unique<GatewayProcess>(std::move(settings));
        last_progress_ = now_ns();
        start();
    }

    /// Serves until every pair of the last set_up() or restart() is up or nothing moved for
    /// `quiet_limit`.
    void wait_completed(std::int64_t quiet_limit) {
        while (completed_ < end_ - begin_) {
            const std::int64_t left = last_progress_ + quiet_limit - now_ns();
            if (left <= 0) {
                return;
            }
            poll_once(left);
            xmpp_->flush();
        }
    }

    /// Serves until presence.state_file lists every pair (true) or `deadline` passes (false). It
    /// stats the file every 20 ms and reads it only when it changed (xsgw renames a new one
    /// over it).
    bool wait_for_state_file(std::int64_t deadline) {
        struct stat seen {};
        for (;;) {
            struct stat now_stat {};
            if (::stat(state_file_.c_str(), &now_stat) == 0 &&
                (now_stat.st_ino != seen.st_ino || now_stat.st_size != seen.st_size ||
                 now_stat.st_mtim.tv_sec != seen.st_mtim.tv_sec ||
                 now_stat.st_mtim.tv_nsec != seen.st_mtim.tv_nsec)) {
                seen = now_stat;
                if (pairs_in_state_file(state_file_, static_cast<std::uint32_t>(subs_.size())) ==
                    subs_.size()) {
                    return true;
                }
            }
            const std::int64_t now = now_ns();
            if (now >= deadline) {
                return false;
            }
            serve_until(std::min(now + 20 * ms, deadline), nullptr);
        }
    }

    /// Sets up subscriptions [begin, end): at most `window` outstanding, at most `rate`/s.
    /// Returns when all came up or nothing moved for `quiet_limit`.
    void set_up(std::uint32_t begin, std::uint32_t end, std::uint32_t window, double rate,
                std::int64_t quiet_limit) {
        begin_ = begin;
        end_ = end;
        completed_ = 0;
        std::uint32_t next = begin;
        const std::int64_t start = now_ns();
        const auto interval = rate > 0 ? static_cast<std::int64_t>(1e9 / rate) : 0;
        last_progress_ = start;
        const std::uint32_t count = end - begin;
        for (;;) {
            std::int64_t now = now_ns();
            std::int64_t due = 0;
            while (next < end && (next - begin) - completed_ < window) {
                due = start + static_cast<std::int64_t>(next - begin) * interval;
                if (now < due) {
                    break;
                }
                request(next, now);
                ++next;
            }
            xmpp_->flush();
            if (completed_ == count || now - last_progress_ > quiet_limit) {
                break;
            }
            std::int64_t wait = last_progress_ + quiet_limit - now;
            if (next < end && (next - begin) - completed_ < window) {
                wait = std::min(wait, due - now);
            }
            poll_once(std::max<std::int64_t>(wait, 0));
        }
    }

    /// Serves the SIP and XMPP sides until `until` (absolute ns), sampling xsgw's CPU each
    /// second into `samples`.
    void serve_until(std::int64_t until, std::vector<CpuSample>* samples) {
        std::int64_t next_sample = now_ns();
        for (;;) {
            const std::int64_t now = now_ns();
            if (samples != nullptr && now >= next_sample) {
                if (auto cpu = gateway_->cpu_seconds()) {
                    samples->push_back({now, *cpu});
                }
                next_sample += sec;
            }
            if (now >= until) {
                return;
            }
            std::int64_t wait = until - now;
            if (samples != nullptr) {
                wait = std::min(wait, std::max<std::int64_t>(next_sample - now, 0));
            }
            poll_once(wait);
            xmpp_->flush();
        }
    }

    /// SIGTERM to xsgw, answering its unSUBSCRIBEs until it exits (at most 30 s); true when it
    /// exited 0.
    bool stop_serving() {
        if (gateway_->pid() > 0 && !gateway_->exited()) {
            stopping_ = true;
            xmpp_->expect_close();
            ::kill(gateway_->pid(), SIGTERM);
            const std::int64_t deadline = now_ns() + 30 * sec;
            while (!gateway_->exited() && now_ns() < deadline) {
                try {
                    poll_once(std::min<std::int64_t>(deadline - now_ns(), 100 * ms));
                    xmpp_->flush();
                } catch (const GatewayFailure&) {
                    // Its exit is what we wait for here.
                }
            }
        }
        return gateway_->stop(std::chrono::seconds(5));
    }

    const Subscription& subscription(std::uint32_t i) const { return subs_[i]; }
    GatewayProcess& gateway() { return *gateway_; }
    const Anomalies& anomalies() const { return anomalies_; }
    std::uint16_t sip_port() const { return sip_port_; }
    std::uint16_t notifier_port() const { return notifier_port_; }
    std::uint16_t metrics_port() const { return metrics_port_; }
    std::uint64_t xmpp_presences() const { return xmpp_presences_; }
    /// `subscribed` stanzas read so far.
    std::uint64_t xmpp_subscribed() const { return xmpp_subscribed_; }
    /// When the fake server took the last xsgw's handshake, and when that xsgw answered the
    /// readiness ping (ns, absolute).
    std::int64_t link_up_at() const { return link_up_at_; }
    std::int64_t ready_at() const { return ready_at_; }
    /// presence.state_file in xsgw's config; empty with --no-restart.
    const std::string& state_file() const { return state_file_; }
    std::uint64_t notifies_sent() const { return notifies_sent_; }

    /// From now on refreshes are recorded in `times` (the observation span).
    void record_refreshes(std::vector<std::int64_t>* times) { refresh_times_ = times; }
    /// Every refresh's delay since the grant before it, and every grant.
    void record_delays(std::vector<std::int64_t>* delays, std::vector<std::int64_t>* grants) {
        refresh_delays_ = delays;
        grants_ = grants;
    }
    /// Refresh SUBSCRIBEs seen so far (new transactions in a dialog, Expires > 0).
    std::uint64_t refreshes() const { return refreshes_; }
    /// Unavailable presence stanzas read so far.
    std::uint64_t unavailable() const { return anomalies_.unavailable; }
    /// unSUBSCRIBEs seen (in-dialog SUBSCRIBE Expires: 0).
    std::uint32_t unsubscribes() const { return unsubscribes_; }

private:
    // ------------------------------------------------ loop

    void poll_once(std::int64_t wait_ns) {
        if (!retransmit_queue_.empty()) {
            wait_ns = std::min(wait_ns,
                               std::max<std::int64_t>(retransmit_queue_.top().due - now_ns(), 0));
        }
        std::array<pollfd, 4> fds{{
            {xmpp_->listen_fd(), POLLIN, 0},
            {xmpp_->link_fd(), static_cast<short>(POLLIN | (xmpp_->out().empty() ? 0 : POLLOUT)),
             0},
            {notifier_.get(), POLLIN, 0},
            {gateway_->exit_fd(), POLLIN, 0},
        }};
        const timespec ts{static_cast<time_t>(wait_ns / sec), static_cast<long>(wait_ns % sec)};
        if (::ppoll(fds.data(), fds.size(), &ts, nullptr) < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(fmt::format("ppoll: {}", std::strerror(errno)));
        }
        if (fds[0].revents != 0) {
            xmpp_->accept_link();
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            xmpp_->read();
        }
        if (fds[1].revents & POLLOUT) {
            xmpp_->flush();
        }
        if (fds[2].revents & POLLIN) {
            read_sip();
        }
        retransmit_due(now_ns());
        if (fds[3].revents != 0) {
            gateway_->exited();
            throw GatewayFailure(
                fmt::format("xsgw ended unexpectedly: {}", gateway_->exit_description()));
        }
    }

    void complete_if_done(std::uint32_t i, std::int64_t now) {
        Subscription& s = subs_[i];
        if (s.done || s.subscribed == 0 || s.available == 0) {
            return;
        }
        s.done = true;
        last_progress_ = now;
        if (i >= begin_ && i < end_) {
            ++completed_;
        }
    }

    // ------------------------------------------------ XMPP server side

    void on_presence(std::string_view element, std::int64_t now) {
        const std::string_view to = attribute(element, "to").value_or("");
        const std::string_view from = attribute(element, "from").value_or("");
        const std::optional<std::uint32_t> user = number_after(to, "u");
        const std::optional<std::uint32_t> contact = number_after(from, "c");
        const std::string_view type = attribute(element, "type").value_or("");
        if (!user || *user >= subs_.size() || subs_[*user].requested == 0) {
            ++anomalies_.unexpected_xmpp;
            return;
        }
        if (!contact || *contact != *user || to != fmt::format("u{}@{}", *user, xmpp_domain)) {
            ++anomalies_.misrouted;
            return;
        }
        Subscription& s = subs_[*user];
        if (type == "subscribed") {
            ++xmpp_subscribed_;
            if (s.subscribed == 0) {
                s.subscribed = now;
            }
        } else if (type.empty()) {
            ++xmpp_presences_;
            if (s.available == 0) {
                s.available = now;
            }
        } else if (type == "unavailable") {
            ++anomalies_.unavailable;
        } else {
            if (type == "unsubscribed") {
                ++anomalies_.unsubscribed;
            } else if (type == "error") {
                ++anomalies_.errors;
            } else {
                ++anomalies_.unexpected_xmpp;
            }
            if (anomalies_.first_refusal.empty()) {
                anomalies_.first_refusal = std::string(element.substr(0, 600));
            }
            last_progress_ = now;
            return;
        }
        complete_if_done(*user, now);
    }

    void request(std::uint32_t i, std::int64_t now) {
        subs_[i].requested = now;
        // sip:c<i>@HOST:PORT as a contact JID: ':' escaped as \3a (XEP-0106).
        fmt::format_to(std::back_inserter(xmpp_->out()),
                       "<presence type='subscribe' from='u{}@{}' to='c{}*{}\\3a{}@{}'/>", i,
                       xmpp_domain, i, options_.host, notifier_port_, component);
    }

    std::unique_ptr<FakeComponentServer> make_xmpp_server() {
        return std::make_unique<FakeComponentServer>(
            ComponentServerSettings{std::string(component), secret_, stream_id_,
                                    std::string(xmpp_domain), std::string(ready_id)},
            [this](std::string_view element, std::string_view name, std::int64_t now) {
                if (name != "presence") {
                    return false;
                }
                on_presence(element, now);
                return true;
            },
            [this] { ++anomalies_.unexpected_xmpp; }, now_ns);
    }

    // ------------------------------------------------ SIP notifier

    void read_sip() {
        std::array<char, 65536> buf{};
        for (int k = 0; k < 512; ++k) {
            sockaddr_in from{};
            socklen_t len = sizeof from;
            const ssize_t n = ::recvfrom(notifier_.get(), buf.data(), buf.size(), MSG_DONTWAIT,
                                         reinterpret_cast<sockaddr*>(&from), &len);
            if (n < 0) {
                return;
            }
            const std::int64_t now = now_ns();
            const std::string_view datagram(buf.data(), static_cast<std::size_t>(n));
            const std::optional<SipMessage> m = parse_sip(datagram);
            if (!m) {
                ++anomalies_.unexpected_sip;
                continue;
            }
            gateway_addr_ = from;
            if (!m->is_request()) {
                on_notify_response(*m);
            } else if (m->method() == "SUBSCRIBE") {
                on_subscribe(*m, now);
            } else if (m->method() != "ACK") {
                ++anomalies_.unexpected_sip;
                send_sip(sip_response(*m, 501, "Not Implemented", "bench"));
            }
        }
    }

    void send_sip(const std::string& text) {
        // A full socket buffer only delays things: xsgw retransmits its SUBSCRIBE, and our
        // NOTIFY retransmission timer sends the NOTIFY again.
        ::sendto(notifier_.get(), text.data(), text.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&gateway_addr_), sizeof gateway_addr_);
    }

    static std::string_view uri_in(std::string_view header) {
        const std::size_t lt = header.find('<');
        if (lt != std::string_view::npos) {
            const std::size_t gt = header.find('>', lt);
            return header.substr(lt + 1, gt == std::string_view::npos ? gt : gt - lt - 1);
        }
        return header.substr(0, header.find(';'));
    }

    std::string to_tag(std::uint32_t i) const { return fmt::format("b{}", i); }

    void on_subscribe(const SipMessage& m, std::int64_t now) {
        const std::optional<std::uint32_t> index = number_after(m.request_uri(), "sip:c");
        const std::string_view call_id = m.header("call-id").value_or("");
        const std::string_view to = m.header("to").value_or("");
        const std::string_view event = m.header("event").value_or("");
        std::uint32_t expires = options_.expires;
        if (auto e = m.header("expires")) {
            expires = number_after(*e, "").value_or(options_.expires);
        }
        if (!index || *index >= subs_.size()) {
            ++anomalies_.unexpected_sip;
            send_sip(sip_response(m, 404, "Not Found", "bench"));
            return;
        }
        if (!event.starts_with("presence")) {
            ++anomalies_.unexpected_sip;
            send_sip(sip_response(m, 489, "Bad Event", "bench"));
            return;
        }
        const std::uint32_t i = *index;
        Subscription& s = subs_[i];
        const std::uint32_t branch = hash_of(via_branch(m.header("via").value_or("")));
        const bool in_dialog = to.find(";tag=") != std::string_view::npos;
        if (in_dialog && call_id != s.call_id) {
            ++anomalies_.unknown_dialog;
            send_sip(sip_response(m, 481, "Call/Transaction Does Not Exist", to_tag(i)));
            return;
        }
        const bool same_dialog = call_id == s.call_id;
        const std::uint32_t granted = std::min(expires, options_.expires);
        const std::string extra =
            fmt::format("Contact: <sip:c{}@{}>\r\nExpires: {}\r\n", i, notifier_uri_host_, granted);
        if (same_dialog && branch == s.last_branch) {
            // xsgw's retransmission of a request answered already: the same answer again.
            ++anomalies_.subscribe_retransmits;
            send_sip(sip_response(m, 200, "OK", to_tag(i), extra));
            return;
        }
        if (!in_dialog) {
            if (expires == 0) {
                ++anomalies_.fetches;
            }
            if (!s.call_id.empty()) {
                ++anomalies_.new_dialogs; // xsgw subscribed again afresh
            }
            s.call_id = std::string(call_id);
            s.gateway_from = std::string(m.header("from").value_or(""));
            s.gateway_contact = std::string(uri_in(m.header("contact").value_or("")));
            s.notify_cseq = 0;
            if (s.first_sip == 0) {
                s.first_sip = now;
            }
        } else if (expires > 0) {
            ++s.refreshes;
            ++refreshes_;
            if (refresh_times_ != nullptr) {
                refresh_times_->push_back(now);
            }
            if (refresh_delays_ != nullptr && s.last_grant != 0) {
                refresh_delays_->push_back(now - s.last_grant);
            }
        }
        s.last_branch = branch;
        send_sip(sip_response(m, 200, "OK", to_tag(i), extra));
        if (expires == 0) {
            if (in_dialog) {
                ++unsubscribes_;
            }
            send_notify(i, true, now);
            return;
        }
        send_notify(i, false, now);
    }

    void send_notify(std::uint32_t i, bool final, std::int64_t now) {
        Subscription& s = subs_[i];
        s.notify_cseq += 1;
        s.pending_cseq = s.notify_cseq;
        s.pending_sent = now;
        s.pending_final = final;
        if (!final) {
            s.last_grant = now;
            if (grants_ != nullptr) {
                grants_->push_back(now);
            }
        }
        ++notifies_sent_;
        send_sip(notify_text(i));
        retransmit_queue_.push({now + timer_t1, timer_t1, i, s.pending_cseq});
    }

    std::string notify_text(std::uint32_t i) const {
        const Subscription& s = subs_[i];
        const std::string entity = fmt::format("sip:c{}@{}", i, notifier_uri_host_);
        const std::string body = s.pending_final
                                     ? std::string()
                                     : fmt::format("<?xml version='1.0' encoding='UTF-8'?>\r\n"
                                                   "<presence xmlns='urn:ietf:params:xml:ns:pidf' "
                                                   "entity='{}'><tuple id='{}'><status><basic>open"
                                                   "</basic></status></tuple></presence>\r\n",
                                                   entity, pidf_tuple);
        const std::string state = s.pending_final
                                      ? std::string("terminated;reason=timeout")
                                      : fmt::format("active;expires={}", options_.expires);
        std::string text =
            fmt::format("NOTIFY {} SIP/2.0\r\n"
                        "Via: SIP/2.0/UDP {};branch=z9hG4bK{}-{}-{}\r\n"
                        "Max-Forwards: 70\r\n"
                        "From: <{}>;tag={}\r\n"
                        "To: {}\r\n"
                        "Call-ID: {}\r\n"
                        "CSeq: {} NOTIFY\r\n"
                        "Contact: <{}>\r\n"
                        "Event: presence\r\n"
                        "Subscription-State: {}\r\n",
                        s.gateway_contact, notifier_uri_host_, run_id_, i, s.pending_cseq, entity,
                        to_tag(i), s.gateway_from, s.call_id, s.pending_cseq, entity, state);
        if (!body.empty()) {
            text += "Content-Type: application/pidf+xml\r\n";
        }
        fmt::format_to(std::back_inserter(text), "Content-Length: {}\r\n\r\n{}", body.size(), body);
        return text;
    }

    void on_notify_response(const SipMessage& m) {
        const std::string_view branch = via_branch(m.header("via").value_or(""));
        const std::string prefix = fmt::format("z9hG4bK{}-", run_id_);
        const std::optional<std::uint32_t> i = number_after(branch, prefix);
        if (!i || *i >= subs_.size() || m.status() < 200) {
            if (!i || *i >= subs_.size()) {
                ++anomalies_.unexpected_sip;
            }
            return;
        }
        const std::string_view rest = branch.substr(prefix.size() + fmt::formatted_size("{}", *i));
        const std::optional<std::uint32_t> cseq = number_after(rest, "-");
        Subscription& s = subs_[*i];
        if (!cseq || *cseq != s.pending_cseq) {
            return; // the answer to a retransmission, or to a NOTIFY a newer one replaced
        }
        s.pending_cseq = 0;
        if (m.status() >= 300 && stopping_) {
            ++anomalies_.notify_refused_at_end; // xsgw's nua is going down with its dialogs
        } else if (m.status() >= 300) {
            ++anomalies_.notify_refused;
            if (anomalies_.first_refusal.empty()) {
                anomalies_.first_refusal =
                    fmt::format("NOTIFY to c{}: {}", *i, std::string(m.start_line));
            }
        }
    }

    struct Retransmission {
        std::int64_t due;
        std::int64_t interval;
        std::uint32_t index;
        std::uint32_t cseq;
        bool operator>(const Retransmission& other) const { return due > other.due; }
    };

    void retransmit_due(std::int64_t now) {
        while (!retransmit_queue_.empty() && retransmit_queue_.top().due <= now) {
            Retransmission r = retransmit_queue_.top();
            retransmit_queue_.pop();
            Subscription& s = subs_[r.index];
            if (s.pending_cseq != r.cseq) {
                continue; // answered, or replaced by a newer NOTIFY
            }
            if (now - s.pending_sent >= timer_f) {
                ++anomalies_.notify_timeouts;
                s.pending_cseq = 0;
                continue;
            }
            ++anomalies_.notify_retransmits;
            send_sip(notify_text(r.index));
            r.interval = std::min(2 * r.interval, timer_t2);
            r.due = now + r.interval;
            retransmit_queue_.push(r);
        }
    }

    const Options& options_;
    std::string run_id_;
    std::string secret_;
    std::string stream_id_;
    std::uint16_t xmpp_port_;
    std::uint16_t sip_port_;
    std::uint16_t notifier_port_;
    std::uint16_t metrics_port_;
    std::string state_file_;
    std::string notifier_uri_host_;

    Fd notifier_;
    sockaddr_in gateway_addr_{};
    GatewaySettings settings_;
    std::unique_ptr<GatewayProcess> gateway_;

    bool stopping_ = false;                     ///< SIGTERM sent: the link closing is expected
    std::unique_ptr<FakeComponentServer> xmpp_; ///< a new one for each xsgw started
    std::int64_t link_up_at_ = 0;
    std::int64_t ready_at_ = 0;

    std::vector<Subscription> subs_;
    std::uint32_t begin_ = 0;
    std::uint32_t end_ = 0;
    std::uint32_t completed_ = 0;
    std::int64_t last_progress_ = 0;
    std::priority_queue<Retransmission, std::vector<Retransmission>, std::greater<>>
        retransmit_queue_;
    std::vector<std::int64_t>* refresh_times_ = nullptr;
    std::vector<std::int64_t>* refresh_delays_ = nullptr;
    std::vector<std::int64_t>* grants_ = nullptr;
    std::uint64_t refreshes_ = 0;
    std::uint64_t notifies_sent_ = 0;
    std::uint64_t xmpp_presences_ = 0;
    std::uint64_t xmpp_subscribed_ = 0;
    std::uint32_t unsubscribes_ = 0;
    Anomalies anomalies_;
};

// ---------------------------------------------------------------- statistics

struct Summary {
    double min = 0, mean = 0, max = 0, stddev = 0;
    std::size_t count = 0;
};

Summary summarize(const std::vector<double>& values) {
    Summary s;
    s.count = values.size();
    if (values.empty()) {
        return s;
    }
    s.min = *std::min_element(values.begin(), values.end());
    s.max = *std::max_element(values.begin(), values.end());
    double sum = 0;
    for (const double v : values) {
        sum += v;
    }
    s.mean = sum / static_cast<double>(values.size());
    double sq = 0;
    for (const double v : values) {
        sq += (v - s.mean) * (v - s.mean);
    }
    s.stddev = std::sqrt(sq / static_cast<double>(values.size()));
    return s;
}

double nearest_rank(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) {
        return std::nan("");
    }
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::max<std::size_t>(rank, 1) - 1];
}

/// The refreshes of the observation span in 1-second buckets, and what nua's documented
/// uniform draw would give from the grants actually made. nua draws a whole number of
/// seconds in [min, max], adds it to the grant's wall-clock second (truncated) and refreshes
/// at the tick of its 1-second timer in that second: each grant's refresh is uniform over a
/// span of (max - min + 1) s. The span's place is taken from the measured mean delay (the tick
/// phase and the time xsgw takes to walk its handles move it); only its width is nua's.
struct Spread {
    std::vector<double> observed;
    std::vector<double> expected;
    double dispersion = 0;        ///< mean of (o - e)^2 / e over buckets with e >= 5
    double worst_sigma = 0;       ///< largest |o - e| / sqrt(e) over those buckets
    double busiest_100ms = 0;     ///< mean share of a second's refreshes in its busiest 100 ms
    std::size_t busy_seconds = 0; ///< seconds with >= 20 refreshes (what that mean is over)
    double uniform_100ms = 0;     ///< the same share for refreshes spread uniformly (simulated)
};

Spread spread_of(const RunReport& r) {
    Spread s;
    const std::int64_t span = r.observe_end - r.observe_start;
    const auto buckets = static_cast<std::size_t>(std::max<std::int64_t>(span / sec, 0));
    s.observed.assign(buckets, 0);
    s.expected.assign(buckets, 0);
    std::vector<std::array<int, 10>> tenths(buckets, std::array<int, 10>{});
    for (const std::int64_t t : r.refresh_times) {
        const std::int64_t off = t - r.observe_start;
        if (off < 0 || off / sec >= static_cast<std::int64_t>(buckets)) {
            continue;
        }
        s.observed[off / sec] += 1;
        tenths[off / sec][(off % sec) / (100 * ms)] += 1;
    }
    const double width = static_cast<double>(r.range.max - r.range.min + 1);
    double centre = (r.range.min + r.range.max + 1) / 2.0 - 0.5;
    if (!r.refresh_delays.empty()) {
        double sum = 0;
        for (const std::int64_t d : r.refresh_delays) {
            sum += seconds(d);
        }
        centre = sum / static_cast<double>(r.refresh_delays.size());
    }
    for (const std::int64_t g : r.grants) {
        const double from = seconds(g - r.observe_start) + centre - width / 2;
        const double to = from + width;
        for (auto k = static_cast<std::int64_t>(std::floor(std::max(from, 0.0)));
             k < static_cast<std::int64_t>(buckets) && static_cast<double>(k) < to; ++k) {
            const double overlap =
                std::min(to, static_cast<double>(k + 1)) - std::max(from, static_cast<double>(k));
            if (overlap > 0) {
                s.expected[k] += overlap / width;
            }
        }
    }
    double sum = 0;
    std::size_t used = 0;
    for (std::size_t k = 0; k < buckets; ++k) {
        if (s.expected[k] < 5) {
            continue;
        }
        const double d = s.observed[k] - s.expected[k];
        sum += d * d / s.expected[k];
        s.worst_sigma = std::max(s.worst_sigma, std::abs(d) / std::sqrt(s.expected[k]));
        ++used;
    }
    s.dispersion = used > 0 ? sum / static_cast<double>(used) : std::nan("");
    // Sub-second bunching: how much of each second's refreshes came in its busiest tenth, set
    // against the same figure for as many refreshes thrown uniformly at the ten tenths.
    std::minstd_rand random(12345);
    std::uniform_int_distribution<int> tenth(0, 9);
    double share = 0;
    double uniform = 0;
    for (std::size_t k = 0; k < buckets; ++k) {
        const int total = static_cast<int>(s.observed[k]);
        if (total < 20) {
            continue;
        }
        share += static_cast<double>(*std::max_element(tenths[k].begin(), tenths[k].end())) / total;
        std::array<int, 10> thrown{};
        for (int j = 0; j < total; ++j) {
            ++thrown[tenth(random)];
        }
        uniform += static_cast<double>(*std::max_element(thrown.begin(), thrown.end())) / total;
        ++s.busy_seconds;
    }
    if (s.busy_seconds > 0) {
        s.busiest_100ms = share / static_cast<double>(s.busy_seconds);
        s.uniform_100ms = uniform / static_cast<double>(s.busy_seconds);
    }
    return s;
}

// ---------------------------------------------------------------- one size

/// The restart phase, after the first xsgw exited cleanly: a new xsgw with the same config
/// restores every pair from presence.state_file; then it is stopped in turn.
void restore_after_restart(const Options& options, Session& session, RunReport& report,
                           const std::function<void(const std::string&)>& note) {
    const std::uint32_t pairs = report.n + 1;
    report.state_file_pairs_at_stop = pairs_in_state_file(report.state_file, pairs);
    session.record_delays(nullptr, nullptr); // the refresh model is the first xsgw's
    const std::uint64_t subscribed0 = session.xmpp_subscribed();
    const std::uint64_t available0 = session.xmpp_presences();
    const std::uint32_t unsubscribes0 = session.unsubscribes();
    try {
        session.restart();
        report.restarted = true;
        const std::int64_t link_up = session.link_up_at();
        report.ready_after_link_ms = static_cast<double>(session.ready_at() - link_up) / 1e6;
        note(fmt::format("restarted: xsgw pid {} link up, ping answered {:.1f} ms later (log {})",
                         session.gateway().pid(), report.ready_after_link_ms,
                         session.gateway().log_path()));
        session.wait_completed(options.quiet_limit);
        std::int64_t last = link_up;
        std::int64_t first_sip = 0;
        std::int64_t last_sip = 0;
        for (std::uint32_t i = 0; i < pairs; ++i) {
            const Subscription& s = session.subscription(i);
            if (s.first_sip != 0) {
                ++report.restore_subscribes;
                first_sip = first_sip == 0 ? s.first_sip : std::min(first_sip, s.first_sip);
                last_sip = std::max(last_sip, s.first_sip);
            }
            if (s.done) {
                ++report.restored;
                const std::int64_t up = std::max(s.available, s.subscribed);
                last = std::max(last, up);
                report.restore_latencies_s.push_back(seconds(up - link_up));
            }
        }
        std::sort(report.restore_latencies_s.begin(), report.restore_latencies_s.end());
        report.restore_seconds = seconds((report.restored == pairs ? last : now_ns()) - link_up);
        report.first_subscribe_ms =
            first_sip != 0 ? static_cast<double>(first_sip - link_up) / 1e6 : std::nan("");
        report.last_subscribe_seconds = last_sip != 0 ? seconds(last_sip - link_up) : std::nan("");
        report.restore_cpu = session.gateway().cpu_seconds();
        report.restored_rss = session.gateway().status_kib("VmRSS");
        report.restored_anon = session.gateway().status_kib("RssAnon");
        report.restored_hwm = session.gateway().status_kib("VmHWM");
        report.restored_metric_subscriptions = fetch_metric(
            options.host, session.metrics_port(), "xsgw_presence_subscriptions{watcher=\"xmpp\"}");
        note(fmt::format("restore: {} of {} pairs up again {:.2f} s after link up ({:.0f}/s); "
                         "xsgw CPU {:.1f} s, VmHWM {} KiB",
                         report.restored, pairs, report.restore_seconds,
                         report.restored / std::max(report.restore_seconds, 1e-9),
                         report.restore_cpu.value_or(-1), report.restored_hwm.value_or(-1)));
        if (report.restored != pairs) {
            report.failure = fmt::format(
                "after the restart only {} of {} pairs came back ({} new SUBSCRIBEs) with nothing "
                "moving for {} s",
                report.restored, pairs, report.restore_subscribes, options.quiet_limit / sec);
        }
    } catch (const GatewayFailure& e) {
        report.failure = fmt::format("after the restart: {}", e.what());
    }
    report.restore_subscribed_stanzas = session.xmpp_subscribed() - subscribed0;
    report.restore_available_stanzas = session.xmpp_presences() - available0;
    const auto since_stop = [&](const std::array<std::uint64_t, 5>& phase, std::uint64_t total) {
        return total - phase[0] - phase[1] - phase[2];
    };
    report.subscribe_retransmits[3] =
        since_stop(report.subscribe_retransmits, session.anomalies().subscribe_retransmits);
    report.notify_retransmits[3] =
        since_stop(report.notify_retransmits, session.anomalies().notify_retransmits);
    const std::uint64_t unavailable0 = session.unavailable();
    const std::int64_t stop_start = now_ns();
    report.restored_clean_exit = session.stop_serving();
    report.restored_shutdown_seconds = seconds(now_ns() - stop_start);
    report.restored_unsubscribed_at_end = session.unsubscribes() - unsubscribes0;
    report.restored_unavailable_at_end = session.unavailable() - unavailable0;
    report.restored_exit_description = session.gateway().exit_description();
    report.restored_log_path = session.gateway().log_path();
    report.restored_log_lines = session.gateway().log_lines();
    report.anomalies = session.anomalies();
    report.restored_refused_at_end = report.anomalies.notify_refused_at_end - report.refused_at_end;
    report.subscribe_retransmits[4] =
        since_stop(report.subscribe_retransmits, report.anomalies.subscribe_retransmits) -
        report.subscribe_retransmits[3];
    report.notify_retransmits[4] =
        since_stop(report.notify_retransmits, report.anomalies.notify_retransmits) -
        report.notify_retransmits[3];
    report.xmpp_presences = session.xmpp_presences();
    report.notifies_sent = session.notifies_sent();
    if (!report.failure.empty()) {
        const std::string tail = session.gateway().log_tail(20);
        note(fmt::format("FAILED: {}\nxsgw {}; last lines of {}:\n{}", report.failure,
                         report.restored_exit_description, session.gateway().log_path(),
                         tail.empty() ? "(empty)\n" : tail));
    }
}

RunReport run_size(const Options& options, std::uint32_t n, const std::string& workdir) {
    RunReport report;
    report.n = n;
    report.range = nua_refresh_range(options.expires);
    const std::uint32_t observe = options.observe.value_or(report.range.max + 10);
    const std::string name = fmt::format("N={}", n);
    const std::function<void(const std::string&)> note = [&](const std::string& text) {
        fmt::print(stderr, "{}: {}\n", name, text);
    };
    Session session(options, n, workdir);
    report.restart = options.restart;
    report.state_file = session.state_file();
    report.log_path = session.gateway().log_path();
    report.notifier_port = session.notifier_port();
    session.record_delays(&report.refresh_delays, &report.grants);
    try {
        session.start();
        note(fmt::format("xsgw pid {} up, link ready (config {}, log {})", session.gateway().pid(),
                         session.gateway().config_path(), report.log_path));

        // One subscription first: the pipeline works, and lazily made state (nua's first
        // dialog, the first transaction) is in the baseline rather than in the figure.
        session.set_up(0, 1, 1, 0, 10 * sec);
        const Subscription& probe = session.subscription(0);
        if (!probe.done) {
            throw GatewayFailure(fmt::format(
                "the probe subscription did not come up within 10 s: SUBSCRIBE {}, subscribed "
                "{}, available presence {}{}",
                probe.first_sip != 0 ? "seen" : "never seen",
                probe.subscribed != 0 ? "read" : "not read",
                probe.available != 0 ? "read" : "not read",
                session.anomalies().first_refusal.empty()
                    ? std::string()
                    : "; " + session.anomalies().first_refusal));
        }
        report.probe_ms = static_cast<double>(probe.available - probe.requested) / 1e6;
        note(fmt::format("probe subscription up in {:.1f} ms", report.probe_ms));
        session.serve_until(now_ns() + sec, nullptr); // let the probe's transactions settle
        report.rss_before = session.gateway().status_kib("VmRSS");
        report.anon_before = session.gateway().status_kib("RssAnon");

        const std::optional<double> cpu0 = session.gateway().cpu_seconds();
        const double bench_cpu0 = own_cpu_seconds();
        const std::uint64_t refreshes0 = session.refreshes();
        const std::int64_t t0 = now_ns();
        session.set_up(1, n + 1, options.window, options.rate, options.quiet_limit);
        std::int64_t last = 0;
        for (std::uint32_t i = 1; i <= n; ++i) {
            const Subscription& s = session.subscription(i);
            if (s.done) {
                ++report.set_up;
                last = std::max(last, std::max(s.available, s.subscribed));
                report.setup_latencies_ms.push_back(
                    static_cast<double>(std::max(s.available, s.subscribed) - s.requested) / 1e6);
            }
        }
        std::sort(report.setup_latencies_ms.begin(), report.setup_latencies_ms.end());
        report.setup_seconds = seconds((last != 0 ? last : now_ns()) - t0);
        if (const auto cpu1 = session.gateway().cpu_seconds(); cpu0 && cpu1) {
            report.setup_cpu = *cpu1 - *cpu0;
        }
        report.bench_setup_cpu = own_cpu_seconds() - bench_cpu0;
        report.refreshes_during_setup = session.refreshes() - refreshes0;
        report.subscribe_retransmits[0] = session.anomalies().subscribe_retransmits;
        report.notify_retransmits[0] = session.anomalies().notify_retransmits;
        report.rss_after_setup = session.gateway().status_kib("VmRSS");
        report.anon_after_setup = session.gateway().status_kib("RssAnon");
        report.metric_subscriptions = fetch_metric(options.host, session.metrics_port(),
                                                   "xsgw_presence_subscriptions{watcher=\"xmpp\"}");
        note(fmt::format("set-up: {} of {} subscriptions up in {:.1f} s ({:.0f}/s), xsgw CPU "
                         "{:.1f} s, RSS {} -> {} KiB",
                         report.set_up, n, report.setup_seconds,
                         report.set_up / std::max(report.setup_seconds, 1e-9), report.setup_cpu,
                         report.rss_before.value_or(-1), report.rss_after_setup.value_or(-1)));
        if (options.restart) {
            // What the restart restores is what the file says: wait until it says all of it.
            const std::int64_t setup_end = now_ns();
            if (!session.wait_for_state_file(setup_end + options.quiet_limit)) {
                throw GatewayFailure(
                    fmt::format("{} did not list all {} pairs within {} s of the set-up",
                                report.state_file, n + 1, options.quiet_limit / sec));
            }
            report.state_file_seconds = seconds(now_ns() - setup_end);
            report.state_file_bytes = std::filesystem::file_size(report.state_file);
            note(fmt::format("{} lists all {} pairs {:.2f} s after the set-up ({} bytes)",
                             report.state_file, n + 1, report.state_file_seconds,
                             report.state_file_bytes));
        }

        note(fmt::format("watching refreshes for {} s (xsgw refreshes {}..{} s after each grant)",
                         observe, report.range.min, report.range.max));
        report.observe_start = now_ns();
        session.record_refreshes(&report.refresh_times);
        session.serve_until(report.observe_start + observe * sec, &report.cpu_samples);
        report.observe_end = now_ns();
        session.record_refreshes(nullptr);
        report.subscribe_retransmits[1] =
            session.anomalies().subscribe_retransmits - report.subscribe_retransmits[0];
        report.notify_retransmits[1] =
            session.anomalies().notify_retransmits - report.notify_retransmits[0];
        if (report.cpu_samples.size() >= 2) {
            report.observe_cpu = report.cpu_samples.back().cpu - report.cpu_samples.front().cpu;
        }
        for (std::uint32_t i = 1; i <= n; ++i) {
            report.refreshed_at_least_once += session.subscription(i).refreshes > 0 ? 1 : 0;
        }
        report.rss_end = session.gateway().status_kib("VmRSS");
        report.anon_end = session.gateway().status_kib("RssAnon");
        report.hwm_end = session.gateway().status_kib("VmHWM");
        report.gateway_drops = session.gateway().udp_drops(session.sip_port());
        report.notifier_drops = session.gateway().udp_drops(session.notifier_port());
        note(fmt::format("observed {} refreshes in {:.1f} s; xsgw CPU {:.1f} s",
                         report.refresh_times.size(),
                         seconds(report.observe_end - report.observe_start), report.observe_cpu));
    } catch (const GatewayFailure& e) {
        report.failure = e.what();
    }
    const std::uint64_t unavailable0 = session.unavailable();
    const std::int64_t stop_start = now_ns();
    report.clean_exit = session.stop_serving();
    report.shutdown_seconds = seconds(now_ns() - stop_start);
    report.unsubscribed_at_end = session.unsubscribes();
    report.unavailable_at_end = session.unavailable() - unavailable0;
    report.exit_description = session.gateway().exit_description();
    report.anomalies = session.anomalies();
    report.refused_at_end = report.anomalies.notify_refused_at_end;
    report.subscribe_retransmits[2] = report.anomalies.subscribe_retransmits -
                                      report.subscribe_retransmits[0] -
                                      report.subscribe_retransmits[1];
    report.notify_retransmits[2] = report.anomalies.notify_retransmits -
                                   report.notify_retransmits[0] - report.notify_retransmits[1];
    report.xmpp_presences = session.xmpp_presences();
    report.notifies_sent = session.notifies_sent();
    report.log_lines = session.gateway().log_lines();
    if (!report.failure.empty()) {
        const std::string tail = session.gateway().log_tail(20);
        fmt::print(stderr, "{}: FAILED: {}\n{}: xsgw {}; last lines of {}:\n{}", name,
                   report.failure, name, report.exit_description, report.log_path,
                   tail.empty() ? "(empty)\n" : tail);
    } else if (options.restart && report.clean_exit) {
        restore_after_restart(options, session, report, note);
    }
    return report;
}

// ---------------------------------------------------------------- report

std::string kib_per(std::optional<long> after, std::optional<long> before, std::uint32_t n) {
    if (!after || !before || n == 0) {
        return "-";
    }
    return fmt::format("{:.2f}", static_cast<double>(*after - *before) / n);
}

std::string mib(std::optional<long> kib) {
    return kib ? fmt::format("{:.1f}", static_cast<double>(*kib) / 1024.0) : std::string("-");
}

/// Refreshes per second once every subscription refreshes on its own cycle: N over the mean
/// delay between a grant and the refresh that follows it.
std::optional<double> steady_rate(const RunReport& r) {
    if (r.refresh_delays.empty()) {
        return std::nullopt;
    }
    double sum = 0;
    for (const std::int64_t d : r.refresh_delays) {
        sum += seconds(d);
    }
    return static_cast<double>(r.n + 1) / (sum / static_cast<double>(r.refresh_delays.size()));
}

/// xsgw's CPU share while it held every subscription and no refresh had come yet.
std::optional<std::pair<double, double>> idle_share(const RunReport& r) {
    const std::int64_t first =
        r.refresh_times.empty() ? r.observe_end : r.refresh_times.front() - sec;
    const CpuSample* a = nullptr;
    const CpuSample* b = nullptr;
    for (const CpuSample& s : r.cpu_samples) {
        if (s.at < r.observe_start + sec) {
            continue; // the tail of the set-up
        }
        if (s.at > first) {
            break;
        }
        if (a == nullptr) {
            a = &s;
        }
        b = &s;
    }
    if (a == nullptr || b == nullptr || b->at - a->at < 2 * sec) {
        return std::nullopt;
    }
    return std::pair{(b->cpu - a->cpu) / seconds(b->at - a->at), seconds(b->at - a->at)};
}

void print_restart(const RunReport& r) {
    const std::uint32_t pairs = r.n + 1;
    fmt::print("  state file {}: lists all {} pairs {:.2f} s after the set-up ({} bytes); after "
               "the SIGTERM: {}\n",
               r.state_file, pairs, r.state_file_seconds, r.state_file_bytes,
               r.state_file_pairs_at_stop ? fmt::format("{} pairs", *r.state_file_pairs_at_stop)
                                          : std::string("(no file)"));
    if (!r.restarted) {
        fmt::print("  restart: the new xsgw's link did not come up\n");
        return;
    }
    const auto rank = [&](double p) { return nearest_rank(r.restore_latencies_s, p); };
    fmt::print(
        "  restart: a new xsgw with the same config: link up (handshake) -> ping answered "
        "{:.1f} ms; new SUBSCRIBEs for {} of {} pairs, the first {:.1f} ms and the last {:.2f} s "
        "after link up; {} pairs up again in {:.2f} s = {:.0f}/s (link up -> pair up p50 {:.2f} "
        "s, p99 {:.2f} s, max {:.2f} s); xsgw sent {} `subscribed` and {} available presence "
        "stanzas; its CPU from its start {} s; memory (KiB): VmRSS {}, RssAnon {}, VmHWM {} "
        "(the first xsgw: VmRSS {} at the end, VmHWM {}); xsgw's metrics: {} outbound "
        "subscriptions held (N + 1 = {})\n",
        r.ready_after_link_ms, r.restore_subscribes, pairs, r.first_subscribe_ms,
        r.last_subscribe_seconds, r.restored, r.restore_seconds,
        r.restored / std::max(r.restore_seconds, 1e-9), rank(0.5), rank(0.99), rank(1.0),
        r.restore_subscribed_stanzas, r.restore_available_stanzas,
        r.restore_cpu ? fmt::format("{:.2f}", *r.restore_cpu) : std::string("-"),
        r.restored_rss.value_or(-1), r.restored_anon.value_or(-1), r.restored_hwm.value_or(-1),
        r.rss_end.value_or(-1), r.hwm_end.value_or(-1),
        r.restored_metric_subscriptions ? fmt::format("{:.0f}", *r.restored_metric_subscriptions)
                                        : std::string("(not read)"),
        pairs);
    fmt::print("  restart SIGTERM: xsgw {} after {:.1f} s; {} unSUBSCRIBEs and {} unavailable "
               "stanzas reached the peers; {} terminating NOTIFYs answered >= 300; {} log "
               "lines{}\n",
               r.restored_exit_description, r.restored_shutdown_seconds,
               r.restored_unsubscribed_at_end, r.restored_unavailable_at_end,
               r.restored_refused_at_end, r.restored_log_lines,
               r.restored_log_lines > 0 ? " (" + r.restored_log_path + ")" : std::string());
}

/// One size's row of the table, each figure as printed (- when not measured).
struct TableRow {
    std::string n, setup_s, setup_per_s, setup_cpu_per_1000, kib_per_sub, kib_per_sub_end, peak_mib,
        refresh_mean, refresh_max, refresh_steady, cpu_per_1000, idle_cpu_pct, stop_s, restore_s,
        restored_per_s, restored_peak_mib;
};

TableRow table_row(const RunReport& r) {
    const double observed = seconds(r.observe_end - r.observe_start);
    const double mean_rate =
        observed > 0 ? static_cast<double>(r.refresh_times.size()) / observed : 0;
    const Spread spread = spread_of(r);
    const double max_rate = spread.observed.empty()
                                ? 0
                                : *std::max_element(spread.observed.begin(), spread.observed.end());
    const auto idle = idle_share(r);
    const bool restored = r.restart && r.restored == r.n + 1;
    TableRow row;
    row.n = fmt::format("{}", r.n);
    row.setup_s = fmt::format("{:.1f}", r.setup_seconds);
    row.setup_per_s = fmt::format("{:.0f}", r.set_up / std::max(r.setup_seconds, 1e-9));
    row.setup_cpu_per_1000 =
        fmt::format("{:.3f}", r.setup_cpu * 1000.0 / std::max<std::uint32_t>(r.set_up, 1));
    row.kib_per_sub = kib_per(r.rss_after_setup, r.rss_before, r.n);
    row.kib_per_sub_end = kib_per(r.rss_end, r.rss_before, r.n);
    row.peak_mib = mib(r.hwm_end);
    row.refresh_mean = fmt::format("{:.0f}", mean_rate);
    row.refresh_max = fmt::format("{:.0f}", max_rate);
    row.refresh_steady = steady_rate(r) ? fmt::format("{:.0f}", *steady_rate(r)) : "-";
    row.cpu_per_1000 = r.refresh_times.empty()
                           ? std::string("-")
                           : fmt::format("{:.3f}", r.observe_cpu * 1000.0 /
                                                       static_cast<double>(r.refresh_times.size()));
    row.idle_cpu_pct = idle ? fmt::format("{:.1f}", 100.0 * idle->first) : "-";
    row.stop_s = fmt::format("{:.1f}", r.shutdown_seconds);
    row.restore_s = restored ? fmt::format("{:.2f}", r.restore_seconds) : "-";
    row.restored_per_s =
        restored ? fmt::format("{:.0f}", r.restored / std::max(r.restore_seconds, 1e-9)) : "-";
    row.restored_peak_mib = r.restarted ? mib(r.restored_hwm) : "-";
    return row;
}

/// --summary FILE: the figures of the table, "N.key value" a line, for test/bench/run.
void write_summary(const std::string& path, const std::vector<RunReport>& reports) {
    std::ofstream out(path, std::ios::trunc);
    for (const RunReport& r : reports) {
        const TableRow row = table_row(r);
        const auto line = [&](std::string_view key, const std::string& value) {
            out << r.n << '.' << key << ' ' << (value.empty() ? "-" : value) << '\n';
        };
        line("setup_s", row.setup_s);
        line("setup_per_s", row.setup_per_s);
        line("kib_per_sub", row.kib_per_sub); // right after set-up, as the table's first
        line("peak_mib", row.peak_mib);
        line("refresh_per_s", row.refresh_steady); // "steady": what test/bench/run shows
        line("cpu_per_1000", row.cpu_per_1000);
        line("idle_cpu_pct", row.idle_cpu_pct);
        line("stop_s", row.stop_s);
        line("restore_s", row.restore_s);
        line("restored_per_s", row.restored_per_s);
        line("restored_peak_mib", row.restored_peak_mib);
        // SUBSCRIBE (xsgw's) and NOTIFY (ours) retransmissions while restoring, as the
        // checks line prints them; the sum, then each.
        const bool restore_measured = r.restart && r.restarted;
        const auto count = [&](std::uint64_t v) {
            return restore_measured ? fmt::format("{}", v) : std::string("-");
        };
        line("retransmissions_restore",
             count(r.subscribe_retransmits[3] + r.notify_retransmits[3]));
        line("subscribe_retransmissions_restore", count(r.subscribe_retransmits[3]));
        line("notify_retransmissions_restore", count(r.notify_retransmits[3]));
        line("ok", r.ok() ? "yes" : "no");
    }
    out.flush();
    if (!out) {
        throw std::runtime_error(fmt::format("--summary: cannot write {}", path));
    }
}

void print_report(const Options& options, const std::vector<RunReport>& reports) {
    fmt::print("\nxsgw_presence_bench: {}\n", options.command_line);
    fmt::print("xsgw {}; contacts c<i>*{}\\3a<port>@{} (numeric SIP host, no DNS), users "
               "u<i>@{}; presence.subscribe_expires = granted Expires = {} s; set-up window {}{}; "
               "xsgw log level warn\n",
               options.xsgw, options.host, component, xmpp_domain, options.expires, options.window,
               options.rate > 0 ? fmt::format(", at most {:.0f}/s", options.rate) : std::string());
    const RefreshRange range = nua_refresh_range(options.expires);
    fmt::print("xsgw refreshes {}..{} s after each grant ({}: the rule of Sofia-SIP 1.12's nua, "
               "which held the subscriptions before stop 16), each on its own time\n",
               range.min, range.max,
               options.expires > 90 && options.expires < 300 ? "30..60 s before expiry"
                                                             : "25 %..75 % of it");
    if (options.restart) {
        fmt::print("restart: presence.state_file = <workdir>/presence-<N>.state; after the "
                   "SIGTERM a new xsgw with the same config restores the N + 1 pairs (probe "
                   "included) from it\n");
    }
    fmt::print("\n{:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6} "
               "{:>7} {:>8} {:>9}\n",
               "N", "set-up", "set-up", "CPU s/", "KiB/sub", "KiB/sub", "peak RSS", "refresh",
               "refresh", "refresh/s", "CPU s/", "idle", "stop", "restore", "restored", "peak RSS");
    fmt::print("{:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6} "
               "{:>7} {:>8} {:>9}\n",
               "", "s", "subs/s", "1000 set", "set-up", "end", "MiB", "/s mean", "/s max", "steady",
               "1000 ref", "CPU %", "s", "s", "/s", "MiB rest.");
    for (const RunReport& r : reports) {
        const TableRow row = table_row(r);
        fmt::print("{:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} "
                   "{:>6} {:>7} {:>8} {:>9}\n",
                   row.n, row.setup_s, row.setup_per_s, row.setup_cpu_per_1000, row.kib_per_sub,
                   row.kib_per_sub_end, row.peak_mib, row.refresh_mean, row.refresh_max,
                   row.refresh_steady, row.cpu_per_1000, row.idle_cpu_pct, row.stop_s,
                   row.restore_s, row.restored_per_s, row.restored_peak_mib);
    }
    fmt::print("(KiB/sub: VmRSS growth over the baseline / N, right after set-up and at the end; "
               "refresh/s steady: N / mean refresh delay, the load once set-up bursts have "
               "spread out; idle: xsgw's CPU while it held them all before any refresh; stop: "
               "SIGTERM -> exit, its unSUBSCRIBEs answered; restore: the new xsgw's link up -> "
               "the last of the N + 1 pairs up again (new SUBSCRIBE answered and NOTIFYed, "
               "`subscribed` and available presence read), restored/s: N + 1 over that; peak "
               "RSS rest.: the new xsgw's VmHWM once all are back)\n");
    for (const RunReport& r : reports) {
        fmt::print("\nN={} (notifier on {}:{}):\n", r.n, options.host, r.notifier_port);
        fmt::print("  probe: one subscription up in {:.1f} ms (stanza written -> available "
                   "presence read)\n",
                   r.probe_ms);
        const double observed = seconds(r.observe_end - r.observe_start);
        fmt::print(
            "  set-up: {} of {} up (subscribed + available presence) in {:.2f} s; "
            "stanza -> presence p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms; xsgw CPU {:.2f} "
            "s, benchmark CPU {:.2f} s; {} refreshes during set-up; xsgw's "
            "metrics: {} outbound subscriptions held after set-up (N + 1 probe = {})\n",
            r.set_up, r.n, r.setup_seconds, nearest_rank(r.setup_latencies_ms, 0.5),
            nearest_rank(r.setup_latencies_ms, 0.99),
            r.setup_latencies_ms.empty() ? std::nan("") : r.setup_latencies_ms.back(), r.setup_cpu,
            r.bench_setup_cpu, r.refreshes_during_setup,
            r.metric_subscriptions ? fmt::format("{:.0f}", *r.metric_subscriptions)
                                   : std::string("(not read)"),
            r.n + 1);
        fmt::print(
            "  memory (KiB): VmRSS {} before (after 1 probe) -> {} after set-up -> {} at the "
            "end; RssAnon {} -> {} -> {}; VmHWM {}\n",
            r.rss_before.value_or(-1), r.rss_after_setup.value_or(-1), r.rss_end.value_or(-1),
            r.anon_before.value_or(-1), r.anon_after_setup.value_or(-1), r.anon_end.value_or(-1),
            r.hwm_end.value_or(-1));
        const auto idle = idle_share(r);
        std::string marginal;
        if (idle && !r.refresh_times.empty()) {
            marginal =
                fmt::format("; less that idle share over the span: {:.3f} s per 1000 refreshes",
                            (r.observe_cpu - idle->first * observed) * 1000.0 /
                                static_cast<double>(r.refresh_times.size()));
        }
        fmt::print("  refreshes: {} in {:.1f} s of observation = {:.0f}/s; {} of {} subscriptions "
                   "refreshed at least once; xsgw CPU {:.2f} s in that span = {:.3f} s per 1000 "
                   "refreshes{}{}\n",
                   r.refresh_times.size(), observed,
                   observed > 0 ? static_cast<double>(r.refresh_times.size()) / observed : 0,
                   r.refreshed_at_least_once, r.n, r.observe_cpu,
                   r.refresh_times.empty()
                       ? 0.0
                       : r.observe_cpu * 1000.0 / static_cast<double>(r.refresh_times.size()),
                   idle ? fmt::format("; before the first refresh (xsgw idle, holding them all) "
                                      "it used {:.1f} % of a CPU over {:.0f} s",
                                      100.0 * idle->first, idle->second)
                        : std::string(),
                   marginal);
        // Delay after the grant: where in [min, max] nua put each refresh.
        std::vector<double> delays;
        delays.reserve(r.refresh_delays.size());
        for (const std::int64_t d : r.refresh_delays) {
            delays.push_back(seconds(d));
        }
        std::sort(delays.begin(), delays.end());
        if (!delays.empty()) {
            fmt::print("  refresh delay after the grant (NOTIFY sent): min {:.1f} s, p50 {:.1f} "
                       "s, max {:.1f} s (drawn from {}..{} s); per 5 s:",
                       delays.front(), nearest_rank(delays, 0.5), delays.back(), r.range.min,
                       r.range.max);
            const double first = std::floor(delays.front() / 5) * 5;
            std::vector<std::size_t> bins(static_cast<std::size_t>((delays.back() - first) / 5) + 1,
                                          0);
            for (const double d : delays) {
                ++bins[static_cast<std::size_t>((d - first) / 5)];
            }
            double from = first;
            for (const std::size_t count : bins) {
                fmt::print(" [{:.0f},{:.0f}) {}", from, from + 5, count);
                from += 5;
            }
            fmt::print("\n");
        }
        const Spread s = spread_of(r);
        const Summary all = summarize(s.observed);
        std::vector<double> steady_obs;
        std::vector<double> steady_exp;
        for (std::size_t k = 0; k < s.observed.size(); ++k) {
            if (s.expected[k] >= 5) {
                steady_obs.push_back(s.observed[k]);
                steady_exp.push_back(s.expected[k]);
            }
        }
        const Summary busy = summarize(steady_obs);
        const Summary model = summarize(steady_exp);
        fmt::print("  refreshes per 1 s bucket over the {} s of observation: min {:.0f}, mean "
                   "{:.1f}, max {:.0f}, stddev {:.1f}\n",
                   s.observed.size(), all.min, all.mean, all.max, all.stddev);
        fmt::print("  the {} buckets where nua's uniform draw (over {} s, placed at the mean "
                   "delay) expects >= 5: observed min {:.0f} / mean {:.1f} / max {:.0f} / stddev "
                   "{:.1f}; expected min {:.1f} / mean {:.1f} / max {:.1f}; sum((o-e)^2/e)/buckets "
                   "= {:.2f} (about 1 when refreshes land where the draw puts them, far above 1 "
                   "when they bunch), worst bucket {:.1f} sigma\n",
                   busy.count, r.range.max - r.range.min + 1, busy.min, busy.mean, busy.max,
                   busy.stddev, model.min, model.mean, model.max, s.dispersion, s.worst_sigma);
        fmt::print("  within a second: the busiest 100 ms held {:.0f} % of that second's "
                   "refreshes on average over {} seconds with >= 20 (spread evenly it would be "
                   "{:.0f} %)\n",
                   100.0 * s.busiest_100ms, s.busy_seconds, 100.0 * s.uniform_100ms);
        fmt::print("  per second from the end of set-up, observed (expected):");
        for (std::size_t k = 0; k < s.observed.size(); ++k) {
            if (k % 10 == 0) {
                fmt::print("\n    {:>4} s:", k);
            }
            fmt::print(" {:.0f}({:.0f})", s.observed[k], s.expected[k]);
        }
        fmt::print("\n");
        const Anomalies& a = r.anomalies;
        const std::size_t phases = r.restart ? 5 : 3;
        fmt::print(
            "  checks: SUBSCRIBE retransmissions from xsgw {} (set-up / observation / "
            "shutdown{}: {}), NOTIFY retransmissions {} ({}), NOTIFYs unanswered {}, "
            "refused {}, re-established dialogs {}, unknown dialogs {}, fetches {}, "
            "unexpected SIP {} / XMPP {}, misrouted {}, unsubscribed {}, presence errors "
            "{}; {} NOTIFYs sent, {} available presence stanzas read; datagrams dropped "
            "at xsgw's socket {}, at the notifier's {}\n",
            a.subscribe_retransmits, r.restart ? " / restore / restored's shutdown" : "",
            fmt::join(r.subscribe_retransmits.begin(), r.subscribe_retransmits.begin() + phases,
                      " / "),
            a.notify_retransmits,
            fmt::join(r.notify_retransmits.begin(), r.notify_retransmits.begin() + phases, " / "),
            a.notify_timeouts, a.notify_refused, a.new_dialogs, a.unknown_dialog, a.fetches,
            a.unexpected_sip, a.unexpected_xmpp, a.misrouted, a.unsubscribed, a.errors,
            r.notifies_sent, r.xmpp_presences,
            r.gateway_drops ? fmt::format("{}", *r.gateway_drops) : std::string("-"),
            r.notifier_drops ? fmt::format("{}", *r.notifier_drops) : std::string("-"));
        fmt::print("  SIGTERM: xsgw {} after {:.1f} s; {} unSUBSCRIBEs (for {} subscriptions) and "
                   "{} unavailable stanzas reached the peers; {} terminating NOTIFYs answered "
                   ">= 300; {} log lines{}\n",
                   r.exit_description, r.shutdown_seconds, r.unsubscribed_at_end, r.n + 1,
                   r.unavailable_at_end, r.refused_at_end, r.log_lines,
                   r.log_lines > 0 ? " (" + r.log_path + ")" : std::string());
        if (r.restart) {
            print_restart(r);
        }
        if (!a.first_refusal.empty()) {
            fmt::print("  first refusal: {}\n", a.first_refusal);
        }
        if (!r.failure.empty()) {
            fmt::print("  FAILED: {}\n", r.failure);
        }
    }
}

int run(const Options& options) {
    std::string workdir = options.workdir;
    const bool own_workdir = workdir.empty();
    if (own_workdir) {
        std::string tmpl = "/tmp/xsgw_presence_bench.XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error(fmt::format("mkdtemp: {}", std::strerror(errno)));
        }
        workdir = tmpl;
    } else {
        std::filesystem::create_directories(workdir);
    }
    std::vector<std::uint32_t> sizes;
    if (options.also > 0 && options.also < options.subscriptions) {
        sizes.push_back(options.also);
    }
    sizes.push_back(options.subscriptions);
    std::vector<RunReport> reports;
    reports.reserve(sizes.size());
    for (const std::uint32_t n : sizes) {
        reports.push_back(run_size(options, n, workdir));
    }
    print_report(options, reports);
    if (!options.summary.empty()) {
        write_summary(options.summary, reports);
    }
    bool ok = true;
    for (const RunReport& r : reports) {
        ok = ok && r.ok();
    }
    if (ok && own_workdir && !options.keep) {
        std::filesystem::remove_all(workdir);
    } else {
        fmt::print("configs and logs kept in {}\n", workdir);
    }
    return ok ? 0 : 1;
}

} // namespace
} // namespace xsgw::bench

int main(int argc, char** argv) {
    using namespace xsgw::bench;
    std::signal(SIGPIPE, SIG_IGN);
    ::prctl(PR_SET_TIMERSLACK, 1UL); // pacing at tens of microseconds, not the default 50
    Options options;
    try {
        options = parse_options(argc, argv);
    } catch (const std::exception& e) {
        fmt::print(stderr, "xsgw_presence_bench: {}\n{}", e.what(), usage);
        return 2;
    }
    try {
        return run(options);
    } catch (const std::exception& e) {
        fmt::print(stderr, "xsgw_presence_bench: {}\n", e.what());
        return 1;
    }
}
