// xsgw_bench: throughput, latency, CPU and memory of the real xsgw binary,
// with this program playing both of its peers on loopback.
//
//   XMPP side: a fake XMPP server that accepts xsgw's XEP-0114 connection,
//              checks the handshake, sends <message/> stanzas and reads what
//              xsgw writes back.
//   SIP side:  a UAS that answers every MESSAGE with 200 OK, and a load
//              generator that sends MESSAGE requests to xsgw (UDP) and reads
//              its responses, retransmitting like an RFC 3261 UAC.
//
// The reference: the same SIP load generator and UAS with Kamailio between them
// instead of xsgw (one UDP worker, stateful t_relay), in the same run, so the
// table gives xsgw's rates as a ratio of a well-tuned SIP proxy's on the same
// machine at the same moment.
//
// One direction at a time, each against a fresh xsgw (or Kamailio): a
// one-message probe, a warm-up, a run as fast as it takes messages with at most
// `window` outstanding, then runs at fixed offered rates (25%, 50%, 90% of that
// maximum) for the latency figures. It prints figures and asserts nothing about
// speed; it exits 1 only when a message was lost, duplicated, misrouted or
// refused, or the gateway (or Kamailio) failed.
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
#include <iterator>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <optional>
#include <poll.h>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace xsgw::bench {
namespace {

// ---------------------------------------------------------------- constants

constexpr std::string_view component = "sip.test";        // xmpp.component
constexpr std::string_view sip_domain = "sip.test";       // sip.domain
constexpr std::string_view xmpp_user = "alice@xmpp.test"; // the XMPP user on the far side
constexpr std::string_view xmpp_sender = "alice@xmpp.test/bench";
constexpr std::string_view sip_target = "sip:alice*xmpp.test@sip.test"; // that user, seen from SIP
constexpr std::string_view ready_id = "xsgw-bench-ready";

constexpr std::int64_t ms = 1'000'000; // nanoseconds
constexpr std::int64_t sec = 1000 * ms;
// RFC 3261 §17.1.2.2 timers for the generator's non-INVITE client transactions over UDP.
constexpr std::int64_t timer_t1 = 500 * ms;
constexpr std::int64_t timer_t2 = 4 * sec;
constexpr std::int64_t timer_f = 64 * timer_t1;

// Ports other tests on this machine use; bind(0) never hands these out, checked all the same.
bool port_reserved(std::uint16_t port) {
    return port == 5060 || (port >= 5080 && port <= 5090) || port == 5222 || port == 5347;
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// ---------------------------------------------------------------- options

enum class Direction { xmpp_to_sip, sip_to_xmpp, kamailio };

struct Options {
    std::string xsgw;
    std::string kamailio = "/usr/sbin/kamailio";
    std::uint64_t messages = 20000;
    std::uint32_t window = 200;
    std::optional<double> rate;
    std::vector<double> loads = {0.25, 0.5, 0.9};
    std::uint32_t recipients = 1000;
    std::size_t body_bytes = 100;
    std::uint64_t warmup = 1000;
    std::vector<Direction> directions = {Direction::xmpp_to_sip, Direction::sip_to_xmpp,
                                         Direction::kamailio};
    std::string workdir;
    std::string summary;
    bool keep = false;
    std::int64_t quiet_limit = 40 * sec;
};

constexpr std::string_view usage = R"(usage: xsgw_bench --xsgw PATH [options]

Benchmarks the xsgw binary at PATH on loopback, playing its XMPP server and
its SIP peers, and Kamailio relaying the same SIP load as the reference; prints
the tables. Exits 1 if a message is lost, duplicated, misrouted or refused, or
the gateway or Kamailio fails; 2 for a bad command line.

  --xsgw PATH          the xsgw binary (required)
  --kamailio PATH      the reference proxy (default /usr/sbin/kamailio)
  -n, --messages N     messages per measured run and direction (default 20000)
  -w, --window W       most messages outstanding at once (default 200)
  --loads L,L,...      offered rates of the latency runs, in % of the maximum
                       measured in that direction (default 25,50,90)
  --rate R             one latency run at R msgs/s instead of --loads
  --recipients K       XMPP->SIP load is spread over bob0..bob<K-1> (default 1000):
                       xsgw sends one MESSAGE at a time per recipient (M10)
  --body-bytes B       message body size, 24..700 (default 100): xsgw sends a MESSAGE
                       over 1300 bytes (body + 600) only by TCP (M4), and the UAS is UDP
  --warmup M           unmeasured messages before the runs (default 1000)
  --direction D[,D]    all | both | xmpp-to-sip | sip-to-xmpp | kamailio (default all;
                       both = the two xsgw directions)
  --quiet-limit S      give up a run after S seconds without progress (default 40)
  --workdir DIR        where the configs and logs go (default: a new /tmp/xsgw_bench.*,
                       removed after a clean run)
  --keep               keep the workdir after a clean run
  --summary FILE       also write the figures to FILE, one "key value" per line
                       (for test/bench/run)
  -h, --help           this text
)";

/// The pieces of a comma-separated list (empty pieces kept).
std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> pieces;
    for (;;) {
        const std::size_t at = text.find(separator);
        pieces.push_back(text.substr(0, at));
        if (at == std::string_view::npos) {
            return pieces;
        }
        text.remove_prefix(at + 1);
    }
}

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
        } else if (arg == "-n" || arg == "--messages") {
            o.messages = parse_number<std::uint64_t>(arg, value());
        } else if (arg == "-w" || arg == "--window") {
            o.window = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "--kamailio") {
            o.kamailio = value();
        } else if (arg == "--rate") {
            o.rate = parse_number<double>(arg, value());
        } else if (arg == "--loads") {
            o.loads.clear();
            for (const std::string_view item : split(value(), ',')) {
                const double percent = parse_number<double>(arg, item);
                if (!(percent > 0 && percent <= 100)) {
                    throw std::invalid_argument("--loads: each must be in (0, 100]");
                }
                o.loads.push_back(percent / 100.0);
            }
        } else if (arg == "--recipients") {
            o.recipients = parse_number<std::uint32_t>(arg, value());
        } else if (arg == "--body-bytes") {
            o.body_bytes = parse_number<std::size_t>(arg, value());
        } else if (arg == "--warmup") {
            o.warmup = parse_number<std::uint64_t>(arg, value());
        } else if (arg == "--quiet-limit") {
            o.quiet_limit = parse_number<std::int64_t>(arg, value()) * sec;
        } else if (arg == "--direction") {
            o.directions.clear();
            for (const std::string_view d : split(value(), ',')) {
                if (d == "all" || d == "both" || d == "xmpp-to-sip") {
                    o.directions.push_back(Direction::xmpp_to_sip);
                }
                if (d == "all" || d == "both" || d == "sip-to-xmpp") {
                    o.directions.push_back(Direction::sip_to_xmpp);
                }
                if (d == "all" || d == "kamailio") {
                    o.directions.push_back(Direction::kamailio);
                }
                if (d != "all" && d != "both" && d != "xmpp-to-sip" && d != "sip-to-xmpp" &&
                    d != "kamailio") {
                    throw std::invalid_argument(fmt::format("--direction: unknown '{}'", d));
                }
            }
        } else if (arg == "--workdir") {
            o.workdir = value();
        } else if (arg == "--keep") {
            o.keep = true;
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
    if (std::find(o.directions.begin(), o.directions.end(), Direction::kamailio) !=
            o.directions.end() &&
        ::access(o.kamailio.c_str(), X_OK) != 0) {
        throw std::invalid_argument(
            fmt::format("--kamailio: {} is not executable (install kamailio, or --direction both)",
                        o.kamailio));
    }
    if (o.messages == 0 || o.window == 0 || o.recipients == 0) {
        throw std::invalid_argument("--messages, --window and --recipients must be at least 1");
    }
    // xsgw counts 600 bytes of headers on top of the body and sends nothing over 1300 bytes
    // by UDP (M4); the UAS here is UDP only, so a larger body would only measure refusals.
    if (o.body_bytes < 24 || o.body_bytes > 700) {
        throw std::invalid_argument("--body-bytes must be 24..700 (MESSAGE over UDP, M4)");
    }
    if (o.rate && !(*o.rate > 0)) {
        throw std::invalid_argument("--rate must be above 0");
    }
    if (o.quiet_limit <= 0) {
        throw std::invalid_argument("--quiet-limit must be at least 1");
    }
    return o;
}

// ---------------------------------------------------------------- small helpers

std::string_view name_of(Direction d) {
    switch (d) {
    case Direction::xmpp_to_sip:
        return "XMPP->SIP";
    case Direction::sip_to_xmpp:
        return "SIP->XMPP";
    case Direction::kamailio:
        return "Kamailio";
    }
    return "?";
}

std::string_view tag_of(Direction d) {
    switch (d) {
    case Direction::xmpp_to_sip:
        return "x2s";
    case Direction::sip_to_xmpp:
        return "s2x";
    case Direction::kamailio:
        return "kam";
    }
    return "?";
}

/// The generator sends requests (SIP->XMPP through xsgw, and through Kamailio); the UAS answers
/// what arrives (XMPP->SIP through xsgw, and through Kamailio).
bool generator_sends(Direction d) {
    return d != Direction::xmpp_to_sip;
}
bool uas_receives(Direction d) {
    return d != Direction::sip_to_xmpp;
}

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

/// Not a sequence number of this run.
constexpr std::uint64_t no_seq = UINT64_MAX;

/// The decimal number right after `prefix` at the start of `text`, else no_seq.
std::uint64_t seq_after(std::optional<std::string_view> text, std::string_view prefix) {
    if (!text || !text->starts_with(prefix)) {
        return no_seq;
    }
    const std::string_view digits = text->substr(prefix.size());
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end == digits.data()) {
        return no_seq;
    }
    return value;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

std::uint16_t local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

/// A non-blocking socket bound to 127.0.0.1 on a port the kernel picks (never a reserved one).
Fd bound_socket(int type) {
    for (int attempt = 0; attempt < 20; ++attempt) {
        Fd fd(::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
            throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
        }
        const sockaddr_in a = loopback(0);
        if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
            throw std::runtime_error(fmt::format("bind 127.0.0.1:0: {}", std::strerror(errno)));
        }
        if (!port_reserved(local_port(fd.get()))) {
            return fd;
        }
    }
    throw std::runtime_error("no free loopback port");
}

/// A port free on 127.0.0.1 for both UDP and TCP right now, for xsgw to listen on.
std::uint16_t free_sip_port() {
    for (int attempt = 0; attempt < 20; ++attempt) {
        const Fd udp = bound_socket(SOCK_DGRAM);
        const std::uint16_t port = local_port(udp.get());
        const Fd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const sockaddr_in a = loopback(port);
        if (tcp && ::bind(tcp.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
            return port;
        }
    }
    throw std::runtime_error("no port free for both UDP and TCP on 127.0.0.1");
}

void grow_receive_buffer(int fd) {
    // Root may exceed net.core.rmem_max; others get what the limit allows.
    const int bytes = 8 << 20;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
}

double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
    if (sorted.empty()) {
        return std::nan("");
    }
    // Nearest rank: the smallest sample with at least p of all samples at or below it.
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return static_cast<double>(sorted[std::max<std::size_t>(rank, 1) - 1]) /
           static_cast<double>(ms);
}

// ---------------------------------------------------------------- the reference

std::string reference_config_path(const std::string& workdir) {
    return workdir + "/kamailio.cfg";
}

/// Kamailio as a plain stateful relay of MESSAGE: one UDP worker, no TCP, no DNS, log level
/// warn like xsgw's; the Request-URI is the UAS (numeric), so t_relay() sends it there.
std::string kamailio_config(std::uint16_t port) {
    return fmt::format(R"(#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children=1
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off
maxbuffer=4194304
listen=udp:127.0.0.1:{}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!is_method("MESSAGE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!t_relay()) {{
        sl_reply_error();
    }}
}}
)",
                       port);
}

/// Tuned as for production: 4 GiB of shared memory (each transaction stays 5 s, its wait timer:
/// at 45 000/s 1 GiB ran out)
/// and the "fm" allocators, not the debugging "qm" default (3.4x the rate here).
std::vector<std::string> kamailio_command(const std::string& binary, const std::string& workdir) {
    const std::string run = workdir + "/kamailio-run";
    return {binary,
            "-DD",
            "-E",
            "-f",
            reference_config_path(workdir),
            "-Y",
            run,
            "-P",
            run + "/kamailio.pid",
            "-w",
            workdir,
            "-m",
            "4096",
            "-M",
            "8",
            "-x",
            "fm",
            "-X",
            "fm"};
}

// ---------------------------------------------------------------- one run

/// What became of one message, indexed by its sequence number.
struct Record {
    std::int64_t sent = 0;            ///< first transmission (ns)
    std::int64_t arrived = 0;         ///< first arrival on the far side (ns)
    std::int64_t next_retransmit = 0; ///< SIP->XMPP: when the request goes out again
    std::int64_t retransmit_after = 0;
    std::uint32_t branch = 0; ///< XMPP->SIP: hash of the top Via branch of the first arrival
    std::uint16_t arrivals = 0;
    std::uint16_t final_status = 0; ///< SIP->XMPP: first final response
    bool refused = false;           ///< an error stanza or an error response came back
    bool gave_up = false;           ///< SIP->XMPP: no final response within Timer F
    bool done = false;
};

/// The outcome of one run of `count` messages.
struct RunResult {
    std::uint64_t count = 0;
    std::uint64_t delivered = 0;  ///< arrived on the far side at least once
    std::uint64_t refused = 0;    ///< the gateway sent an error back instead
    std::uint64_t unanswered = 0; ///< SIP->XMPP: arrived, but no final response reached the sender
    double seconds = 0;           ///< first send to last completion
    double send_seconds = 0;      ///< first send to last send
    std::vector<std::int64_t> latencies;    ///< sorted, ns, delivered messages only
    std::optional<double> cpu_seconds;      ///< xsgw's utime + stime during the run
    double wall_seconds = 0;                ///< the run from start to end, for xsgw's busy share
    std::optional<std::uint64_t> udp_drops; ///< datagrams dropped at xsgw's full UDP socket
    std::uint64_t lost() const { return count - delivered; }
    double rate() const { return seconds > 0 ? static_cast<double>(count) / seconds : 0; }
    double offered_rate() const {
        return send_seconds > 0 ? static_cast<double>(count - 1) / send_seconds : 0;
    }
};

/// Counts over a whole session that no single message record holds.
struct Anomalies {
    std::uint64_t duplicates = 0;       ///< a message delivered again in a new transaction/stanza
    std::uint64_t misrouted = 0;        ///< arrived at the wrong address or with wrong parties
    std::uint64_t out_of_order = 0;     ///< arrived before an earlier one for the same recipient
    std::uint64_t unexpected = 0;       ///< stanzas / requests the benchmark did not cause
    std::uint64_t retransmits_seen = 0; ///< xsgw's own SIP retransmissions that reached the UAS
    std::uint64_t retransmits_sent = 0; ///< the generator's retransmissions
    std::string first_refusal;          ///< what the first refusal said
};

/// One xsgw process and the peers the benchmark plays around it, for one direction.
class Session {
public:
    Session(const Options& options, Direction direction, const std::string& workdir)
        : options_(options), direction_(direction), run_id_(random_hex(4)), secret_(random_hex(16)),
          stream_id_(random_hex(8)), workdir_(workdir),
          xmpp_(
              ComponentServerSettings{std::string(component), secret_, stream_id_, "xmpp.test",
                                      std::string(ready_id)},
              [this](std::string_view element, std::string_view name, std::int64_t now) {
                  if (name != "message") {
                      return false;
                  }
                  on_message_stanza(element, now);
                  return true;
              },
              [this] { ++anomalies_.unexpected; }, now_ns),
          last_seq_per_recipient_(options.recipients, -1) {
        xmpp_.listen_on(bound_socket(SOCK_STREAM));
        uas_ = bound_socket(SOCK_DGRAM);
        generator_ = bound_socket(SOCK_DGRAM);
        grow_receive_buffer(uas_.get());
        grow_receive_buffer(generator_.get());
        uas_port_ = local_port(uas_.get());
        generator_port_ = local_port(generator_.get());
        sip_port_ = free_sip_port();
        generator_jid_ = fmt::format("bob*127.0.0.1\\3a{}@{}", generator_port_, component);
        if (direction == Direction::kamailio) {
            reference_ = std::make_unique<ChildProcess>(kamailio_command(options.kamailio, workdir),
                                                        workdir + "/kamailio.log", true);
            process_ = reference_.get();
        } else {
            gateway_ = std::make_unique<GatewayProcess>(
                GatewaySettings{options.xsgw, workdir, fmt::format("xsgw-{}", tag_of(direction)),
                                local_port(xmpp_.listen_fd()), sip_port_, secret_,
                                std::string(component), std::string(sip_domain)});
            process_ = &gateway_->process();
        }
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session(Session&&) = delete;
    Session& operator=(Session&&) = delete;
    ~Session() = default;

    /// Starts xsgw and waits until its link is up and it answers a ping through it; or starts
    /// Kamailio and waits until its UDP socket is bound.
    void start() {
        if (direction_ == Direction::kamailio) {
            std::filesystem::create_directories(workdir_ + "/kamailio-run");
            write_private_file(reference_config_path(workdir_), kamailio_config(sip_port_));
            reference_->start();
            const std::int64_t deadline = now_ns() + 15 * sec;
            while (!reference_->udp_drops("127.0.0.1", sip_port_)) {
                if (now_ns() > deadline) {
                    throw GatewayFailure("Kamailio did not bind its UDP port within 15 s");
                }
                poll_once(10 * ms); // no event announces the bind; its exit would show here
            }
            return;
        }
        gateway_->start();
        const std::int64_t deadline = now_ns() + 15 * sec;
        while (!xmpp_.ready()) {
            const std::int64_t left = deadline - now_ns();
            if (left <= 0) {
                throw GatewayFailure(!xmpp_.connected()
                                         ? "xsgw did not connect to the XMPP port within 15 s"
                                         : "xsgw's component link did not come up within 15 s");
            }
            poll_once(left);
            xmpp_.flush();
        }
    }

    /// Sends `count` messages, at most `window` outstanding, at `rate` msgs/s if given
    /// (else as fast as they complete); returns when all completed or after a quiet spell.
    RunResult run(std::uint64_t count, std::uint32_t window, std::optional<double> rate,
                  std::int64_t quiet_limit) {
        begin_ = next_seq_;
        end_ = begin_ + count;
        next_seq_ = end_;
        records_.resize(end_);
        sent_ = begin_;
        completed_ = 0;
        RunResult result;
        result.count = count;
        const std::optional<double> cpu_before = process_->cpu_seconds();
        const std::optional<std::uint64_t> drops_before = udp_drops();
        const std::int64_t start = now_ns();
        const auto interval = rate ? static_cast<std::int64_t>(1e9 / *rate) : 0;
        std::int64_t first_send = 0;
        std::int64_t last_send = 0;
        last_progress_ = start;
        last_completion_ = start;
        for (;;) {
            std::int64_t now = now_ns();
            std::int64_t due = 0;
            while (sent_ < end_ && (sent_ - begin_) - completed_ < window) {
                due = start + static_cast<std::int64_t>(sent_ - begin_) * interval;
                if (rate && now < due) {
                    break;
                }
                send(sent_, now);
                if (sent_ == begin_) {
                    first_send = now;
                }
                last_send = now;
                ++sent_;
                if (rate) {
                    xmpp_.flush(); // each message leaves at its own time
                    now = now_ns();
                }
            }
            xmpp_.flush();
            if (completed_ == count || now - last_progress_ > quiet_limit) {
                break;
            }
            std::int64_t wait = last_progress_ + quiet_limit - now;
            if (generator_sends(direction_)) {
                wait = std::min(wait, 5 * ms); // retransmission timers
            }
            if (rate && sent_ < end_ && (sent_ - begin_) - completed_ < window) {
                wait = std::min(wait, due - now);
            }
            poll_once(std::max<std::int64_t>(wait, 0));
            if (generator_sends(direction_)) {
                retransmit_due(now_ns());
            }
        }
        const std::optional<double> cpu_after = process_->cpu_seconds();
        if (cpu_before && cpu_after) {
            result.cpu_seconds = *cpu_after - *cpu_before;
        }
        const std::optional<std::uint64_t> drops_after = udp_drops();
        if (drops_before && drops_after) {
            result.udp_drops = *drops_after - *drops_before;
        }
        result.wall_seconds = static_cast<double>(now_ns() - start) / 1e9;
        result.seconds = static_cast<double>(last_completion_ - first_send) / 1e9;
        result.send_seconds = static_cast<double>(last_send - first_send) / 1e9;
        result.latencies.reserve(count);
        for (std::uint64_t seq = begin_; seq < end_; ++seq) {
            const Record& r = records_[seq];
            if (r.arrivals > 0) {
                ++result.delivered;
                result.latencies.push_back(r.arrived - r.sent);
                if (generator_sends(direction_) && r.final_status == 0) {
                    ++result.unanswered;
                }
            }
            if (r.refused) {
                ++result.refused;
            }
        }
        std::sort(result.latencies.begin(), result.latencies.end());
        return result;
    }

    /// Peak resident memory of xsgw so far, in KiB; for Kamailio, whose processes share
    /// memory, the proportional set size of all of them now.
    std::optional<long> memory_kib() const {
        return direction_ == Direction::kamailio ? reference_->pss_kib()
                                                 : process_->status_kib("VmHWM");
    }

    /// SIGTERM; true when it exited 0 within 10 s.
    bool stop() { return process_->stop(std::chrono::seconds(10)); }

    const Anomalies& anomalies() const { return anomalies_; }
    const ChildProcess& process() const { return *process_; }
    /// The config file of xsgw, or Kamailio's.
    std::string config_path() const {
        return gateway_ ? gateway_->config_path() : reference_config_path(workdir_);
    }
    std::uint16_t uas_port() const { return uas_port_; }
    std::uint16_t generator_port() const { return generator_port_; }

private:
    /// Datagrams dropped at the SIP port of xsgw or Kamailio so far.
    std::optional<std::uint64_t> udp_drops() const {
        return process_->udp_drops("127.0.0.1", sip_port_);
    }

    // ------------------------------------------------ loop

    void poll_once(std::int64_t wait_ns) {
        std::array<pollfd, 5> fds{{
            {xmpp_.listen_fd(), POLLIN, 0},
            {xmpp_.link_fd(), static_cast<short>(POLLIN | (xmpp_.out().empty() ? 0 : POLLOUT)), 0},
            {uas_.get(), POLLIN, 0},
            {generator_.get(), POLLIN, 0},
            {process_->exit_fd(), POLLIN, 0},
        }};
        const timespec ts{static_cast<time_t>(wait_ns / sec), static_cast<long>(wait_ns % sec)};
        if (::ppoll(fds.data(), fds.size(), &ts, nullptr) < 0) {
            if (errno == EINTR) {
                return;
            }
            throw std::runtime_error(fmt::format("ppoll: {}", std::strerror(errno)));
        }
        if (fds[0].revents != 0) {
            xmpp_.accept_link();
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            xmpp_.read();
        }
        if (fds[1].revents & POLLOUT) {
            xmpp_.flush();
        }
        if (fds[2].revents & POLLIN) {
            read_uas();
        }
        if (fds[3].revents & POLLIN) {
            read_generator();
        }
        if (fds[4].revents != 0) {
            process_->exited();
            throw GatewayFailure(fmt::format("{} ended unexpectedly: {}",
                                             gateway_ ? "xsgw" : "Kamailio",
                                             process_->exit_description()));
        }
    }

    void mark_progress(std::uint64_t seq, std::int64_t now) {
        Record& r = records_[seq];
        last_progress_ = now;
        if (r.done) {
            return;
        }
        const bool done = !generator_sends(direction_)
                              ? r.arrivals > 0 || r.refused
                              : (r.arrivals > 0 && r.final_status != 0) || r.refused || r.gave_up;
        if (!done) {
            return;
        }
        r.done = true;
        if (seq >= begin_ && seq < end_) {
            ++completed_;
            last_completion_ = now;
        }
    }

    bool known(std::uint64_t seq) const { return seq < sent_; }

    // ------------------------------------------------ XMPP server side

    void on_message_stanza(std::string_view element, std::int64_t now) {
        if (attribute(element, "type") == "error") {
            const std::uint64_t seq = seq_after(attribute(element, "id"), "x2s-");
            if (!known(seq) || direction_ != Direction::xmpp_to_sip) {
                ++anomalies_.unexpected;
                return;
            }
            Record& r = records_[seq];
            if (!r.refused && anomalies_.first_refusal.empty()) {
                anomalies_.first_refusal = std::string(element.substr(0, 600));
            }
            r.refused = true;
            mark_progress(seq, now);
            return;
        }
        const std::string prefix = fmt::format("xsgw_bench {} ", tag_of(Direction::sip_to_xmpp));
        const std::uint64_t seq = seq_after(child_text(element, "body"), prefix);
        if (!known(seq) || direction_ != Direction::sip_to_xmpp) {
            ++anomalies_.unexpected;
            return;
        }
        if (attribute(element, "to") != xmpp_user || attribute(element, "from") != generator_jid_) {
            ++anomalies_.misrouted;
        }
        Record& r = records_[seq];
        if (r.arrivals++ > 0) {
            ++anomalies_.duplicates;
            return;
        }
        r.arrived = now;
        if (last_seq_arrived_ >= 0 && static_cast<std::int64_t>(seq) < last_seq_arrived_) {
            ++anomalies_.out_of_order;
        }
        last_seq_arrived_ = std::max(last_seq_arrived_, static_cast<std::int64_t>(seq));
        mark_progress(seq, now);
    }

    // ------------------------------------------------ SIP side

    std::string body_for(Direction d, std::uint64_t seq) const {
        static constexpr std::string_view filler = "the quick brown fox jumps over the lazy dog ";
        std::string body = fmt::format("xsgw_bench {} {} ", tag_of(d), seq);
        while (body.size() < options_.body_bytes) {
            body += filler.substr(0, std::min(filler.size(), options_.body_bytes - body.size()));
        }
        return body;
    }

    void send(std::uint64_t seq, std::int64_t now) {
        Record& r = records_[seq];
        r.sent = now;
        if (direction_ == Direction::xmpp_to_sip) {
            // sip:bob<k>@127.0.0.1:<uas port> as a contact JID: ':' escaped as \3a (XEP-0106).
            fmt::format_to(std::back_inserter(xmpp_.out()),
                           "<message from='{}' to='bob{}*127.0.0.1\\3a{}@{}' type='chat' "
                           "id='x2s-{}'><body>{}</body></message>",
                           xmpp_sender, seq % options_.recipients, uas_port_, component, seq,
                           body_for(direction_, seq));
            return;
        }
        r.retransmit_after = timer_t1;
        r.next_retransmit = now + timer_t1;
        send_request(seq);
    }

    void send_request(std::uint64_t seq) {
        const std::string body = body_for(direction_, seq);
        // Through Kamailio the Request-URI is the UAS's own (the proxy relays on it); through
        // xsgw it is the XMPP user's address at the gateway.
        const std::string target =
            direction_ == Direction::kamailio
                ? fmt::format("sip:bob{}@127.0.0.1:{}", seq % options_.recipients, uas_port_)
                : std::string(sip_target);
        const std::string request =
            fmt::format("MESSAGE {} SIP/2.0\r\n"
                        "Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK{}x{};rport\r\n"
                        "Max-Forwards: 70\r\n"
                        "From: <sip:bob@127.0.0.1:{}>;tag={}t{}\r\n"
                        "To: <{}>\r\n"
                        "Call-ID: {}-{}@127.0.0.1\r\n"
                        "CSeq: 1 MESSAGE\r\n"
                        "Content-Type: text/plain;charset=UTF-8\r\n"
                        "Content-Length: {}\r\n"
                        "\r\n{}",
                        target, generator_port_, run_id_, seq, generator_port_, run_id_, seq,
                        target, run_id_, seq, body.size(), body);
        const sockaddr_in to = loopback(sip_port_);
        // A full socket buffer only delays the message: the retransmission timer sends it again.
        ::sendto(generator_.get(), request.data(), request.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&to), sizeof to);
    }

    void retransmit_due(std::int64_t now) {
        auto finished = [](const Record& r) { return r.final_status != 0 || r.gave_up; };
        while (retransmit_low_ < sent_ && finished(records_[retransmit_low_])) {
            ++retransmit_low_;
        }
        for (std::uint64_t seq = retransmit_low_; seq < sent_; ++seq) {
            Record& r = records_[seq];
            if (finished(r) || now < r.next_retransmit) {
                continue;
            }
            if (now - r.sent >= timer_f) {
                r.gave_up = true;
                mark_progress(seq, now);
                continue;
            }
            send_request(seq);
            ++anomalies_.retransmits_sent;
            r.retransmit_after = std::min(2 * r.retransmit_after, timer_t2);
            r.next_retransmit = now + r.retransmit_after;
        }
    }

    template <class Handler> void read_datagrams(int fd, Handler&& handler) {
        std::array<char, 65536> buf{};
        for (int i = 0; i < 256; ++i) {
            sockaddr_in from{};
            socklen_t len = sizeof from;
            const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                                         reinterpret_cast<sockaddr*>(&from), &len);
            if (n < 0) {
                return;
            }
            const std::int64_t now = now_ns();
            const std::string_view datagram(buf.data(), static_cast<std::size_t>(n));
            if (auto message = parse_sip(datagram)) {
                handler(*message, from, now);
            } else {
                ++anomalies_.unexpected;
            }
        }
    }

    void read_uas() {
        read_datagrams(uas_.get(),
                       [this](const SipMessage& m, const sockaddr_in& from, std::int64_t now) {
                           if (!m.is_request()) {
                               ++anomalies_.unexpected;
                               return;
                           }
                           if (m.method() == "ACK") {
                               return;
                           }
                           const std::string response = sip_response(m, 200, "OK", "uas");
                           ::sendto(uas_.get(), response.data(), response.size(), MSG_DONTWAIT,
                                    reinterpret_cast<const sockaddr*>(&from), sizeof from);
                           if (m.method() != "MESSAGE") {
                               ++anomalies_.unexpected;
                               return;
                           }
                           on_uas_message(m, now);
                       });
    }

    void on_uas_message(const SipMessage& m, std::int64_t now) {
        const std::string prefix = fmt::format("xsgw_bench {} ", tag_of(direction_));
        const std::uint64_t seq = seq_after(m.body, prefix);
        if (!known(seq) || !uas_receives(direction_)) {
            ++anomalies_.unexpected;
            return;
        }
        const std::uint64_t recipient = seq % options_.recipients;
        if (m.request_uri() != fmt::format("sip:bob{}@127.0.0.1:{}", recipient, uas_port_)) {
            ++anomalies_.misrouted;
        }
        const std::uint32_t branch = hash_of(via_branch(m.header("via").value_or("")));
        Record& r = records_[seq];
        if (r.arrivals > 0) {
            if (branch == r.branch) {
                ++anomalies_.retransmits_seen; // same transaction: answered again, not counted
            } else {
                ++r.arrivals;
                ++anomalies_.duplicates;
            }
            return;
        }
        r.arrivals = 1;
        r.arrived = now;
        r.branch = branch;
        auto& last = last_seq_per_recipient_[recipient];
        if (static_cast<std::int64_t>(seq) < last) {
            ++anomalies_.out_of_order; // M10: same recipient, later message first
        }
        last = std::max(last, static_cast<std::int64_t>(seq));
        mark_progress(seq, now);
    }

    void read_generator() {
        read_datagrams(generator_.get(), [this](const SipMessage& m, const sockaddr_in& /*from*/,
                                                std::int64_t now) {
            if (m.is_request()) {
                ++anomalies_.unexpected; // xsgw has no reason to send the generator requests
                return;
            }
            const std::uint64_t seq = seq_after(m.header("call-id"), fmt::format("{}-", run_id_));
            const int status = m.status();
            if (!known(seq)) {
                ++anomalies_.unexpected;
                return;
            }
            Record& r = records_[seq];
            if (status < 200 || r.final_status != 0) {
                return; // provisional, or the answer to a retransmission
            }
            r.final_status = static_cast<std::uint16_t>(status);
            if (status >= 300) {
                if (!r.refused && anomalies_.first_refusal.empty()) {
                    anomalies_.first_refusal = std::string(m.start_line);
                }
                r.refused = true;
            }
            mark_progress(seq, now);
        });
    }

    const Options& options_;
    Direction direction_;
    std::string run_id_;
    std::string secret_;
    std::string stream_id_;
    std::string generator_jid_;

    Fd uas_;
    Fd generator_;
    std::uint16_t uas_port_ = 0;
    std::uint16_t generator_port_ = 0;
    std::uint16_t sip_port_ = 0; ///< xsgw's SIP port, or Kamailio's
    std::string workdir_;
    std::unique_ptr<GatewayProcess> gateway_;
    std::unique_ptr<ChildProcess> reference_; ///< Kamailio
    ChildProcess* process_ = nullptr;         ///< the one of the two that runs

    FakeComponentServer xmpp_;

    std::vector<Record> records_;
    std::uint64_t next_seq_ = 0;
    std::uint64_t begin_ = 0;
    std::uint64_t end_ = 0;
    std::uint64_t sent_ = 0;
    std::uint64_t completed_ = 0;
    std::uint64_t retransmit_low_ = 0;
    std::int64_t last_progress_ = 0;
    std::int64_t last_completion_ = 0;
    std::int64_t last_seq_arrived_ = -1;
    std::vector<std::int64_t> last_seq_per_recipient_;
    Anomalies anomalies_;
};

// ---------------------------------------------------------------- report

/// One latency run at a fixed offered rate.
struct PacedRun {
    std::optional<double> load; ///< share of the maximum asked, when the rate came from --loads
    double rate_asked = 0;
    const RunResult* run = nullptr;
};

struct DirectionReport {
    Direction direction;
    std::vector<std::pair<std::string, RunResult>> runs; // probe, warm-up, max, paced...
    const RunResult* max = nullptr;
    std::vector<PacedRun> paced;
    std::uint16_t peer_port = 0; ///< the UAS's (XMPP->SIP) or the generator's (other) port
    std::optional<long> memory_kib;
    Anomalies anomalies;
    bool clean_exit = false;
    std::string exit_description;
    long log_lines = 0;
    std::string log_path;
    std::string failure; ///< empty unless the gateway (or Kamailio) failed

    template <class Field> std::uint64_t total(Field field) const {
        std::uint64_t n = 0;
        for (const auto& [name, run] : runs) {
            n += field(run);
        }
        return n;
    }
    std::uint64_t lost() const {
        return total([](const RunResult& r) { return r.lost(); });
    }
    std::uint64_t refused() const {
        return total([](const RunResult& r) { return r.refused; });
    }
    std::uint64_t unanswered() const {
        return total([](const RunResult& r) { return r.unanswered; });
    }
    std::uint64_t udp_drops() const {
        return total([](const RunResult& r) { return r.udp_drops.value_or(0); });
    }
    std::uint64_t sent() const {
        return total([](const RunResult& r) { return r.count; });
    }
    bool ok() const {
        return failure.empty() && clean_exit && lost() == 0 && refused() == 0 &&
               unanswered() == 0 && anomalies.duplicates == 0 && anomalies.misrouted == 0;
    }
};

std::string cpu_per_10k(const RunResult* run) {
    if (run == nullptr || !run->cpu_seconds) {
        return "-";
    }
    return fmt::format("{:.2f}", *run->cpu_seconds / static_cast<double>(run->count) * 10000.0);
}

std::string ms_or_dash(const RunResult* run, double p) {
    if (run == nullptr || run->latencies.empty()) {
        return "-";
    }
    return fmt::format("{:.3f}", percentile_ms(run->latencies, p));
}

/// One line on a finished run for the progress notes.
std::string describe(const RunResult& run) {
    std::string text = fmt::format("{} messages in {:.3f} s = {:.0f} msg/s, {} lost", run.count,
                                   run.seconds, run.rate(), run.lost());
    if (run.cpu_seconds && run.wall_seconds > 0) {
        fmt::format_to(std::back_inserter(text), ", on CPU {:.0f}% of the run",
                       100.0 * *run.cpu_seconds / run.wall_seconds);
    }
    if (run.udp_drops) {
        fmt::format_to(std::back_inserter(text), ", {} datagrams dropped at its UDP socket",
                       *run.udp_drops);
    }
    return text;
}

DirectionReport run_direction(const Options& options, Direction direction,
                              const std::string& workdir) {
    DirectionReport report;
    report.direction = direction;
    report.runs.reserve(3 + std::max<std::size_t>(options.loads.size(), 1)); // no reallocation
    const std::string name(name_of(direction));
    Session session(options, direction, workdir);
    report.log_path = session.process().log_path();
    report.peer_port =
        direction == Direction::xmpp_to_sip ? session.uas_port() : session.generator_port();
    auto note = [&](const std::string& text) { fmt::print(stderr, "{}: {}\n", name, text); };
    try {
        session.start();
        note(fmt::format("{} pid {} up, ready (config {}, log {})",
                         direction == Direction::kamailio ? "Kamailio" : "xsgw",
                         session.process().pid(), session.config_path(), report.log_path));

        report.runs.emplace_back("probe", session.run(1, 1, std::nullopt, 10 * sec));
        const RunResult& probe = report.runs.back().second;
        if (probe.delivered != 1) {
            throw GatewayFailure(fmt::format("a single message did not arrive at the {}{}",
                                             uas_receives(direction) ? "UAS" : "fake XMPP server",
                                             session.anomalies().first_refusal.empty()
                                                 ? std::string(" within 10 s")
                                                 : ": " + session.anomalies().first_refusal));
        }
        note(fmt::format("one message arrived ({:.3f} ms)", percentile_ms(probe.latencies, 0.5)));

        if (options.warmup > 0) {
            report.runs.emplace_back("warm-up", session.run(options.warmup, options.window,
                                                            std::nullopt, options.quiet_limit));
            note("warm-up: " + describe(report.runs.back().second));
        }

        report.runs.emplace_back("max", session.run(options.messages, options.window, std::nullopt,
                                                    options.quiet_limit));
        report.max = &report.runs.back().second;
        note("max: " + describe(*report.max));

        std::vector<PacedRun> plan;
        if (options.rate) {
            plan.push_back({std::nullopt, *options.rate});
        } else {
            for (const double load : options.loads) {
                plan.push_back({load, std::max(1.0, report.max->rate() * load)});
            }
        }
        for (PacedRun p : plan) {
            report.runs.emplace_back("paced", session.run(options.messages, options.window,
                                                          p.rate_asked, options.quiet_limit));
            p.run = &report.runs.back().second;
            report.paced.push_back(p);
            note(fmt::format("at {:.0f} msg/s (held {:.0f}): {}", p.rate_asked,
                             p.run->offered_rate(), describe(*p.run)));
        }
        report.memory_kib = session.memory_kib();
    } catch (const GatewayFailure& e) {
        report.failure = e.what();
    }
    report.clean_exit = session.stop();
    report.exit_description = session.process().exit_description();
    report.anomalies = session.anomalies();
    report.log_lines = session.process().log_lines();
    if (!report.failure.empty()) {
        const std::string tail = session.process().log_tail(20);
        fmt::print(stderr, "{}: FAILED: {}\n{}: {}; last lines of {}:\n{}", name, report.failure,
                   name, report.exit_description, report.log_path,
                   tail.empty() ? "(empty)\n" : tail);
    }
    return report;
}

const DirectionReport* find_report(const std::vector<DirectionReport>& reports, Direction d) {
    for (const auto& r : reports) {
        if (r.direction == d) {
            return &r;
        }
    }
    return nullptr;
}

void print_table(const Options& options, const std::vector<DirectionReport>& reports) {
    fmt::print("\nxsgw_bench: {}  messages/run {}  window {}  body {} B  SIP over UDP  "
               "log level warn\n",
               options.xsgw, options.messages, options.window, options.body_bytes);
    for (const auto& r : reports) {
        switch (r.direction) {
        case Direction::xmpp_to_sip:
            fmt::print("XMPP->SIP: stanza written by the fake XMPP server -> MESSAGE read by the "
                       "UAS; load spread over {} recipients bob0..bob{} at 127.0.0.1:{}, since "
                       "xsgw sends one MESSAGE at a time per recipient (M10)\n",
                       options.recipients, options.recipients - 1, r.peer_port);
            break;
        case Direction::sip_to_xmpp:
            fmt::print("SIP->XMPP: MESSAGE sent by the generator (sip:bob@127.0.0.1:{}) to {} -> "
                       "stanza read by the fake XMPP server; done when the stanza and the 202 "
                       "are both in\n",
                       r.peer_port, sip_target);
            break;
        case Direction::kamailio:
            fmt::print("Kamailio: the same generator -> Kamailio {} (one UDP worker, stateful "
                       "t_relay) -> the UAS (bob0..bob{}); done when the UAS has the MESSAGE and "
                       "the 200 is back at the generator\n",
                       options.kamailio, options.recipients - 1);
            break;
        }
    }
    const DirectionReport* reference = find_report(reports, Direction::kamailio);
    const double reference_rate =
        reference != nullptr && reference->max != nullptr ? reference->max->rate() : 0;

    fmt::print("\n{:<10} {:>10} {:>12} {:>6} {:>5} {:>10} {:>9}\n", "", "max msg/s", "x Kamailio",
               "lost", "dup", "CPU s/10k", "memory");
    fmt::print("{:<10} {:>10} {:>12} {:>6} {:>5} {:>10} {:>9}\n", "", "(window)", "", "", "",
               "(at max)", "MiB");
    for (const auto& r : reports) {
        const std::string max_rate =
            r.max != nullptr ? fmt::format("{:.0f}", r.max->rate()) : std::string("-");
        const std::string ratio = r.max != nullptr && reference_rate > 0
                                      ? fmt::format("{:.2f}", r.max->rate() / reference_rate)
                                      : std::string("-");
        const std::string memory =
            r.memory_kib ? fmt::format("{:.1f}{}", static_cast<double>(*r.memory_kib) / 1024.0,
                                       r.direction == Direction::kamailio ? "*" : "")
                         : std::string("-");
        fmt::print("{:<10} {:>10} {:>12} {:>6} {:>5} {:>10} {:>9}\n", name_of(r.direction),
                   max_rate, ratio, r.lost(), r.anomalies.duplicates, cpu_per_10k(r.max), memory);
    }
    fmt::print("memory: peak resident set of xsgw; *Kamailio: proportional set size of all its "
               "processes after the runs (they share memory)\n");

    fmt::print("\n{:<10} {:>6} {:>10} {:>10} {:>8} {:>8} {:>9} {:>10}\n", "latency", "load",
               "offered", "held", "p50 ms", "p99 ms", "p99.9 ms", "CPU s/10k");
    for (const auto& r : reports) {
        for (const PacedRun& p : r.paced) {
            const std::string load =
                p.load ? fmt::format("{:.0f}%", *p.load * 100.0) : std::string("fixed");
            const std::string held = p.run->offered_rate() < 0.95 * p.rate_asked ? " NOT held" : "";
            fmt::print("{:<10} {:>6} {:>10.0f} {:>10.0f} {:>8} {:>8} {:>9} {:>10}{}\n",
                       name_of(r.direction), load, p.rate_asked, p.run->offered_rate(),
                       ms_or_dash(p.run, 0.5), ms_or_dash(p.run, 0.99), ms_or_dash(p.run, 0.999),
                       cpu_per_10k(p.run), held);
        }
    }
    fmt::print("latency: first transmission -> arrival on the far side, on one clock; the "
               "Kamailio rows give what the benchmark's own peers and loopback cost\n\n");

    for (const auto& r : reports) {
        const Anomalies& a = r.anomalies;
        fmt::print("{}: sent {} (probe, warm-up, max, {} paced), lost {}, refused {}, "
                   "duplicates {}, misrouted {}, out of order {}, unexpected {}; ",
                   name_of(r.direction), r.sent(), r.paced.size(), r.lost(), r.refused(),
                   a.duplicates, a.misrouted, a.out_of_order, a.unexpected);
        if (uas_receives(r.direction)) {
            fmt::print("SIP retransmissions reaching the UAS {}", a.retransmits_seen);
        }
        if (generator_sends(r.direction)) {
            fmt::print("{}generator retransmissions {}, no final response {}",
                       uas_receives(r.direction) ? ", " : "", a.retransmits_sent, r.unanswered());
        }
        fmt::print("; datagrams dropped at its UDP socket {}", r.udp_drops());
        fmt::print("; {}, {} log lines{}\n", r.exit_description, r.log_lines,
                   r.log_lines > 0 ? " (" + r.log_path + ")" : std::string());
        if (!a.first_refusal.empty()) {
            fmt::print("{}: first refusal: {}\n", name_of(r.direction), a.first_refusal);
        }
        if (!r.failure.empty()) {
            fmt::print("{}: FAILED: {}\n", name_of(r.direction), r.failure);
        }
    }
}

/// The figures as "key value" lines: <tag>.max, <tag>.ratio, <tag>.cpu10k, <tag>.memory_mib,
/// <tag>.lost, and per latency run <tag>.<load%>.{p50,p99,p999,held}; tags x2s, s2x, kam.
void write_summary(const std::string& path, const std::vector<DirectionReport>& reports) {
    const DirectionReport* reference = find_report(reports, Direction::kamailio);
    const double reference_rate =
        reference != nullptr && reference->max != nullptr ? reference->max->rate() : 0;
    std::string text;
    auto put = [&](std::string_view tag, std::string_view key, const std::string& value) {
        fmt::format_to(std::back_inserter(text), "{}.{} {}\n", tag, key, value);
    };
    for (const auto& r : reports) {
        const std::string_view tag = tag_of(r.direction);
        put(tag, "ok", r.ok() ? "yes" : "no");
        put(tag, "lost", fmt::format("{}", r.lost()));
        if (r.max != nullptr) {
            put(tag, "max", fmt::format("{:.0f}", r.max->rate()));
            if (reference_rate > 0) {
                put(tag, "ratio", fmt::format("{:.2f}", r.max->rate() / reference_rate));
            }
            put(tag, "cpu10k", cpu_per_10k(r.max));
        }
        if (r.memory_kib) {
            put(tag, "memory_mib",
                fmt::format("{:.1f}", static_cast<double>(*r.memory_kib) / 1024));
        }
        for (const PacedRun& p : r.paced) {
            const std::string load =
                p.load ? fmt::format("{:.0f}", *p.load * 100.0) : std::string("fixed");
            put(tag, load + ".p50", ms_or_dash(p.run, 0.5));
            put(tag, load + ".p99", ms_or_dash(p.run, 0.99));
            put(tag, load + ".p999", ms_or_dash(p.run, 0.999));
            put(tag, load + ".held", p.run->offered_rate() < 0.95 * p.rate_asked ? "no" : "yes");
        }
    }
    std::FILE* file = std::fopen(path.c_str(), "w");
    const bool written =
        file != nullptr && std::fwrite(text.data(), 1, text.size(), file) == text.size();
    if (file == nullptr || std::fclose(file) != 0 || !written) {
        throw std::runtime_error(fmt::format("cannot write {}", path));
    }
}

int run(const Options& options) {
    std::string workdir = options.workdir;
    const bool own_workdir = workdir.empty();
    if (own_workdir) {
        std::string tmpl = "/tmp/xsgw_bench.XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error(fmt::format("mkdtemp: {}", std::strerror(errno)));
        }
        workdir = tmpl;
    } else {
        std::filesystem::create_directories(workdir);
    }
    std::vector<DirectionReport> reports;
    reports.reserve(options.directions.size());
    for (const Direction d : options.directions) {
        reports.push_back(run_direction(options, d, workdir));
    }
    print_table(options, reports);
    if (!options.summary.empty()) {
        write_summary(options.summary, reports);
    }
    bool ok = true;
    for (const auto& r : reports) {
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
        fmt::print(stderr, "xsgw_bench: {}\n{}", e.what(), usage);
        return 2;
    }
    try {
        return run(options);
    } catch (const std::exception& e) {
        fmt::print(stderr, "xsgw_bench: {}\n", e.what());
        return 1;
    }
}
