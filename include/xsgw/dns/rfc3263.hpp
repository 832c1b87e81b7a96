// RFC 3263 target selection as pure functions: NAPTR and SRV ordering, and the procedure's
// decisions over a set of DNS answers. No I/O: the Resolver feeds answers in, tests feed tables.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::dns {

/// The SIP transports the gateway can use; tls means TLS over TCP.
enum class Transport { udp, tcp, tls };

/// "udp", "tcp" or "tls", as in a SIP URI's transport parameter.
std::string_view to_string(Transport transport);

/// 5061 for tls, 5060 otherwise (RFC 3261 §19.1.2).
uint16_t default_port(Transport transport);

/// One place to send a request: always a numeric address.
struct Target {
    /// Numeric IPv4 or IPv6 address (no brackets), never a name.
    std::string address;
    uint16_t port = 0;
    Transport transport = Transport::udp;
    /// The name whose A/AAAA lookup gave the address (the SRV target), for logs.
    std::string host;
    /// The SIP URI's host: the identity a TLS peer must prove (RFC 5922 §4), not the SRV target.
    std::string domain;
    friend bool operator==(const Target&, const Target&) = default;
};

/// What the SIP URI says about where to send: its host and the optional port and transport.
struct SipDestination {
    /// A domain name, an IPv4 address or an IPv6 address (with or without brackets).
    std::string host;
    std::optional<uint16_t> port;
    std::optional<Transport> transport;
    /// True for a sips: URI: only TLS targets qualify.
    bool secure = false;
    /// False when the gateway has no TLS (S4: no sip.tls_listen): TLS records are skipped, and
    /// a sips: URI or transport=tls fails as not_found.
    bool tls_usable = true;
};

/// Why a resolution produced no target.
enum class Failure {
    none,
    /// NXDOMAIN or no usable records: the domain does not exist for SIP.
    not_found,
    /// Timeouts, SERVFAIL, refused: try again later.
    unreachable,
};

/// "none", "not_found" or "unreachable".
std::string_view to_string(Failure failure);

/// The outcome of the procedure: the targets in the order to try, or why there are none.
struct Resolution {
    /// In failover order; empty exactly when failure != none.
    std::vector<Target> targets;
    Failure failure = Failure::none;
    /// One line for logs and error texts: the path taken, or what failed.
    std::string reason;
};

/// The record types the procedure asks for.
enum class RecordType { naptr, srv, a, aaaa };

/// "NAPTR", "SRV", "A" or "AAAA".
std::string_view to_string(RecordType type);

/// One DNS question. Names are lower case, without a trailing dot.
struct Query {
    std::string name;
    RecordType type = RecordType::a;
    friend bool operator==(const Query&, const Query&) = default;
    /// By name, then type: the key order of Answers.
    friend bool operator<(const Query& x, const Query& y) {
        return x.name < y.name || (x.name == y.name && x.type < y.type);
    }
};

/// A NAPTR record (RFC 3403) as it came from DNS.
struct NaptrRecord {
    uint16_t order = 0;
    uint16_t preference = 0;
    std::string flags;
    std::string service;
    std::string regexp;
    std::string replacement;
    friend bool operator==(const NaptrRecord&, const NaptrRecord&) = default;
};

/// An SRV record (RFC 2782) as it came from DNS; target "" or "." is the root.
struct SrvRecord {
    uint16_t priority = 0;
    uint16_t weight = 0;
    uint16_t port = 0;
    std::string target;
    friend bool operator==(const SrvRecord&, const SrvRecord&) = default;
};

/// How a DNS question was answered.
enum class AnswerStatus {
    /// At least one record of the asked type.
    ok,
    /// The name exists but has no record of that type (NOERROR, no answer).
    no_data,
    /// NXDOMAIN.
    no_domain,
    /// No usable answer: timeout, SERVFAIL, REFUSED, connection refused, malformed reply.
    error,
};

/// The answer to one Query; only the vector matching the query's type is filled.
struct Answer {
    AnswerStatus status = AnswerStatus::error;
    std::vector<NaptrRecord> naptr;
    std::vector<SrvRecord> srv;
    /// A or AAAA addresses in numeric form, in the order the server gave them.
    std::vector<std::string> addresses;
    /// Smallest TTL of the answer records, seconds.
    uint32_t ttl = 0;
    /// For status error: what went wrong, one line.
    std::string error;
};

/// Every answer known so far, by question.
using Answers = std::map<Query, Answer>;

/// Returns a uniformly distributed integer in [0, max_inclusive]; injected for tests.
using UniformRandom = std::function<uint32_t(uint32_t max_inclusive)>;

/// The transport of a NAPTR service field we support (case-insensitive): SIP+D2U udp,
/// SIP+D2T tcp, SIPS+D2T tls; nullopt for anything else (SCTP, E2U, ...).
std::optional<Transport> naptr_transport(std::string_view service);

/// Keeps the records a client may use and sorts them by order, then preference
/// (RFC 3403 §4.1; ties: tls, tcp, udp, then replacement). Kept: flag "S", empty regexp,
/// non-empty replacement, a supported service, and for a sips: URI only SIPS+D2T.
/// Without tls_usable SIPS+D2T records are dropped too.
std::vector<NaptrRecord> order_naptr(std::vector<NaptrRecord> records, bool secure,
                                     bool tls_usable = true);

/// Orders records by priority ascending and, within a priority, by RFC 2782's weighted random
/// selection (weight 0 first in the running sum, random number in [0, sum]). Records of one
/// priority are first sorted by (weight, target, port) so that the result depends only on
/// `random`, not on the order the answer arrived in. Keeps "." targets (callers drop them).
std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, const UniformRandom& random);

/// The SRV owner name for a transport: _sip._udp / _sip._tcp / _sips._tcp + "." + domain.
std::string srv_name(Transport transport, std::string_view domain);

/// True for an IPv4 literal or an IPv6 literal (with or without brackets).
bool is_numeric_host(std::string_view host);

/// Lower case, without a trailing dot, without IPv6 brackets.
std::string normalize_host(std::string_view host);

/// One step of the procedure: the questions still to ask, or the final result.
struct Step {
    /// Questions whose answers the procedure needs next; empty when result is set.
    std::vector<Query> needed;
    /// Set when the procedure is complete.
    std::optional<Resolution> result;
};

/// Runs RFC 3263 §4 over the answers known so far. Call again with more answers until it
/// returns a result; `random` is only used when the result is produced.
/// - numeric host: that address, the URI's port or the transport's default, no DNS;
/// - explicit port: A and AAAA of the host only;
/// - transport parameter: only that transport's SRV (_sips._tcp for tls), no NAPTR;
/// - otherwise NAPTR; usable records (order_naptr) give SRV names in their order; none give
///   _sips._tcp, _sip._tcp, _sip._udp (only _sips._tcp for sips:);
/// - no SRV record at all: A/AAAA of the host on the default port of the transport chosen
///   (explicit, else first usable NAPTR, else udp / tls for sips:);
/// - every address of every SRV target, A before AAAA, duplicates dropped.
/// A NAPTR query that fails (AnswerStatus::error) ends the procedure as unreachable; later
/// failures only matter when no target is left.
Step next_step(const SipDestination& destination, const Answers& answers,
               const UniformRandom& random);

} // namespace xsgw::dns
