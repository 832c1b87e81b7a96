// The process's DNS resolver: c-ares on the event loop, RFC 3263 target selection, TTL cache.
#pragma once

#include "xsgw/dns/rfc3263.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xsgw::core {
class EventLoop;
struct DnsConfig;
} // namespace xsgw::core

namespace xsgw::dns {

/// Tuning of a Resolver; the defaults suit production.
struct ResolverOptions {
    /// Cap on how long a positive answer is cached, whatever its TTL.
    std::chrono::seconds max_ttl{3600};
    /// How long NXDOMAIN and no-data answers are cached.
    std::chrono::seconds negative_ttl{30};
    /// Cap on cached (name, type) answers.
    std::size_t max_entries = 10000;
    /// c-ares' first timeout per server; it doubles on each later round.
    std::chrono::milliseconds query_timeout{2000};
    /// Rounds over all servers before a query fails (ARES_OPT_TRIES).
    int tries = 2;
    /// SRV weighted selection; empty: a std::mt19937 seeded from std::random_device.
    UniformRandom random;
    /// S4: whether the gateway can use TLS; false sets every destination's tls_usable to false.
    bool tls = true;
    /// Cache clock; empty: std::chrono::steady_clock::now. Tests advance time with it.
    std::function<std::chrono::steady_clock::time_point()> clock;
};

/// Resolves SIP destinations to ordered target lists (RFC 3263) with c-ares, whose sockets
/// and timeouts live on the event loop: nothing blocks, nothing runs in another thread.
/// Servers: dns.servers when given, else the system configuration (/etc/resolv.conf).
/// Answers are cached by (name, type) and identical questions in flight are asked once and
/// shared by every waiter (D6). Addresses: A records before AAAA, each in the server's order.
class Resolver {
public:
    using Options = ResolverOptions;
    using Callback = std::function<void(const Resolution&)>;

    /// Counters for metrics and benchmarks; they only grow.
    struct Stats {
        /// DNS questions handed to c-ares (each may be several packets on retries).
        uint64_t queries_sent = 0;
        /// Questions answered from the cache, no packet sent.
        uint64_t cache_hits = 0;
        /// Questions not in the cache (sent, or joined to one in flight).
        uint64_t cache_misses = 0;
        /// Cache misses that joined an identical question already in flight.
        uint64_t joined_in_flight = 0;
        /// resolve_sip calls.
        uint64_t resolutions = 0;
    };

    /// Throws std::runtime_error when c-ares cannot start or dns.servers is refused by it.
    Resolver(core::EventLoop& loop, const core::DnsConfig& config, Options options = Options());
    /// Cancels every lookup: no callback runs after (or during) destruction.
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;
    Resolver(Resolver&&) = delete;
    Resolver& operator=(Resolver&&) = delete;

    /// Runs the RFC 3263 procedure for `destination`. The callback runs exactly once, always
    /// later from the loop (a zero-delay timer), never inside resolve_sip, also when the
    /// answer needs no DNS (numeric host) or is fully cached (then no syscall is made).
    /// A callback may call resolve_sip again and may destroy the Resolver.
    void resolve_sip(const SipDestination& destination, Callback callback);

    /// Counters so far.
    const Stats& stats() const;
    /// The DNS servers c-ares uses, "IPv4:port" / "[IPv6]:port", for the startup log.
    std::vector<std::string> servers() const;
    /// Seconds left for a cached answer (tests, diagnostics); nullopt when not cached.
    std::optional<std::chrono::seconds> cached_ttl(const Query& query) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace xsgw::dns
