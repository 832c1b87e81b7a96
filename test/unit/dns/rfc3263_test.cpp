// RFC 3263 target selection without a network: NAPTR and SRV ordering, the procedure's
// decisions over tables of answers, and the answer cache.
#include "xsgw/dns/cache.hpp"
#include "xsgw/dns/rfc3263.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace xsgw::dns;

namespace {

constexpr auto udp = Transport::udp;
constexpr auto tcp = Transport::tcp;
constexpr auto tls = Transport::tls;

Answer naptr_answer(std::vector<NaptrRecord> records) {
    Answer a;
    a.status = AnswerStatus::ok;
    a.naptr = std::move(records);
    a.ttl = 60;
    return a;
}

Answer srv_answer(std::vector<SrvRecord> records) {
    Answer a;
    a.status = AnswerStatus::ok;
    a.srv = std::move(records);
    a.ttl = 60;
    return a;
}

Answer address_answer(std::vector<std::string> addresses) {
    Answer a;
    a.status = AnswerStatus::ok;
    a.addresses = std::move(addresses);
    a.ttl = 60;
    return a;
}

Answer status_answer(AnswerStatus status, std::string error = {}) {
    Answer a;
    a.status = status;
    a.error = std::move(error);
    return a;
}

NaptrRecord sip_naptr(uint16_t order, uint16_t preference, std::string service,
                      std::string replacement) {
    return NaptrRecord{order, preference, "S", std::move(service), "", std::move(replacement)};
}

// A zone: every question not listed is NXDOMAIN, as with dnsmasq's local=/test/.
using Zone = std::map<Query, Answer>;

struct Run {
    Resolution result;
    // The questions of each round, in the order the procedure asked them.
    std::vector<std::vector<Query>> rounds;
    std::size_t questions() const {
        std::size_t n = 0;
        for (const auto& r : rounds)
            n += r.size();
        return n;
    }
};

UniformRandom lowest() {
    return [](uint32_t) { return 0u; };
}

UniformRandom highest() {
    return [](uint32_t max) { return max; };
}

Run run(const SipDestination& destination, const Zone& zone,
        const UniformRandom& random = lowest()) {
    Run out;
    Answers answers;
    for (int round = 0; round < 10; ++round) {
        Step step = next_step(destination, answers, random);
        if (step.result) {
            out.result = *step.result;
            return out;
        }
        REQUIRE_FALSE(step.needed.empty());
        for (const auto& q : step.needed) {
            CHECK_MESSAGE(answers.count(q) == 0, "asked twice: " << q.name);
            const auto it = zone.find(q);
            answers[q] = it != zone.end() ? it->second : status_answer(AnswerStatus::no_domain);
        }
        out.rounds.push_back(step.needed);
    }
    FAIL("the procedure did not finish in 10 rounds");
    return out;
}

SipDestination sip(std::string host, std::optional<uint16_t> port = {},
                   std::optional<Transport> transport = {}) {
    return SipDestination{std::move(host), port, transport, false};
}

SipDestination sips(std::string host, std::optional<uint16_t> port = {},
                    std::optional<Transport> transport = {}) {
    return SipDestination{std::move(host), port, transport, true};
}

Target target(std::string address, uint16_t port, Transport t, std::string host,
              std::string domain) {
    return Target{std::move(address), port, t, std::move(host), std::move(domain)};
}

std::string show(const std::vector<Target>& targets) {
    std::string s;
    for (const auto& t : targets)
        s += t.address + ":" + std::to_string(t.port) + "/" + std::string(to_string(t.transport)) +
             "(" + t.host + ") ";
    return s;
}

// example.com with all three NAPTR services, each SRV with one host, each host dual stack.
Zone full_zone() {
    Zone z;
    z[{"example.com", RecordType::naptr}] = naptr_answer({
        sip_naptr(20, 10, "SIP+D2U", "_sip._udp.example.com"),
        sip_naptr(10, 20, "SIP+D2T", "_sip._tcp.example.com"),
        sip_naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com"),
    });
    z[{"_sip._udp.example.com", RecordType::srv}] = srv_answer({{0, 0, 5060, "u.example.com"}});
    z[{"_sip._tcp.example.com", RecordType::srv}] = srv_answer({{0, 0, 5060, "t.example.com"}});
    z[{"_sips._tcp.example.com", RecordType::srv}] = srv_answer({{0, 0, 5061, "s.example.com"}});
    z[{"u.example.com", RecordType::a}] = address_answer({"192.0.2.1"});
    z[{"t.example.com", RecordType::a}] = address_answer({"192.0.2.2"});
    z[{"s.example.com", RecordType::a}] = address_answer({"192.0.2.3"});
    z[{"example.com", RecordType::a}] = address_answer({"192.0.2.9"});
    return z;
}

} // namespace

// ---- D1: NAPTR ----------------------------------------------------------------------------

TEST_CASE("D1 NAPTR service fields: only SIP+D2U, SIP+D2T and SIPS+D2T, any case") {
    const struct {
        const char* service;
        std::optional<Transport> transport;
    } table[] = {
        {"SIP+D2U", udp},  {"sip+d2u", udp},  {"SIP+D2T", tcp}, {"Sip+D2t", tcp},
        {"SIPS+D2T", tls}, {"sips+d2t", tls}, {"SIP+D2S", {}},  {"SIPS+D2S", {}},
        {"SIPS+D2U", {}},  {"E2U+sip", {}},   {"SIP", {}},      {"", {}},
        {"SIP+D2U ", {}},  {"SIP+D2W", {}},   {"SIPS+D2W", {}}, {"x-SIP+D2U", {}},
    };
    for (const auto& row : table) {
        CAPTURE(row.service);
        CHECK(naptr_transport(row.service) == row.transport);
    }
}

TEST_CASE("D1 NAPTR ordered by order then preference") {
    // Every permutation of the answer gives the same order.
    std::vector<NaptrRecord> records = {
        sip_naptr(20, 5, "SIP+D2U", "_sip._udp.d"),    sip_naptr(10, 50, "SIP+D2T", "_sip._tcp.d"),
        sip_naptr(10, 10, "SIPS+D2T", "_sips._tcp.d"), sip_naptr(30, 0, "SIP+D2U", "_sip._udp.e"),
        sip_naptr(10, 20, "SIP+D2U", "_sip._udp.f"),
    };
    const std::vector<std::string> expected = {"_sips._tcp.d", "_sip._udp.f", "_sip._tcp.d",
                                               "_sip._udp.d", "_sip._udp.e"};
    std::sort(records.begin(), records.end(),
              [](const auto& x, const auto& y) { return x.replacement < y.replacement; });
    int permutations = 0;
    do {
        std::vector<std::string> got;
        for (const auto& r : order_naptr(records, false))
            got.push_back(r.replacement);
        CHECK(got == expected);
        ++permutations;
    } while (
        std::next_permutation(records.begin(), records.end(), [](const auto& x, const auto& y) {
            return x.replacement < y.replacement;
        }));
    CHECK(permutations == 120);
}

TEST_CASE("D1 NAPTR ties in order and preference: tls, tcp, udp, then replacement") {
    const std::vector<NaptrRecord> records = {
        sip_naptr(10, 10, "SIP+D2U", "_sip._udp.b"),
        sip_naptr(10, 10, "SIP+D2U", "_sip._udp.a"),
        sip_naptr(10, 10, "SIP+D2T", "_sip._tcp.a"),
        sip_naptr(10, 10, "SIPS+D2T", "_sips._tcp.a"),
    };
    std::vector<std::string> got;
    for (const auto& r : order_naptr(records, false))
        got.push_back(r.replacement);
    CHECK(got ==
          std::vector<std::string>{"_sips._tcp.a", "_sip._tcp.a", "_sip._udp.a", "_sip._udp.b"});
}

TEST_CASE("D1 NAPTR records a client cannot use are dropped") {
    const struct {
        NaptrRecord record;
        bool kept_for_sip;
        bool kept_for_sips;
    } table[] = {
        {{10, 10, "S", "SIP+D2U", "", "_sip._udp.x"}, true, false},
        {{10, 10, "s", "SIP+D2T", "", "_sip._tcp.x"}, true, false},
        {{10, 10, "S", "SIPS+D2T", "", "_sips._tcp.x"}, true, true},
        {{10, 10, "S", "SIP+D2S", "", "_sip._sctp.x"}, false, false},
        {{10, 10, "S", "SIPS+D2S", "", "_sips._sctp.x"}, false, false},
        {{10, 10, "U", "E2U+sip", "!^.*$!sip:info@x!", ""}, false, false},
        {{10, 10, "A", "SIP+D2U", "", "host.x"}, false, false},
        {{10, 10, "", "SIP+D2U", "", "x"}, false, false},
        {{10, 10, "S", "SIP+D2U", "!^.*$!_sip._udp.x!", "_sip._udp.x"}, false, false},
        {{10, 10, "S", "SIP+D2U", "", ""}, false, false},
        {{10, 10, "S", "SIP+D2U", "", "."}, false, false},
    };
    for (const auto& row : table) {
        CAPTURE(row.record.service);
        CAPTURE(row.record.flags);
        CAPTURE(row.record.replacement);
        CHECK(order_naptr({row.record}, false).size() == (row.kept_for_sip ? 1u : 0u));
        CHECK(order_naptr({row.record}, true).size() == (row.kept_for_sips ? 1u : 0u));
    }
}

TEST_CASE("D1 NAPTR first: SRV of each usable record in NAPTR order") {
    const Run r = run(sip("example.com"), full_zone());
    REQUIRE(r.rounds.size() == 3);
    CHECK(r.rounds[0] == std::vector<Query>{{"example.com", RecordType::naptr}});
    CHECK(r.rounds[1] == std::vector<Query>{{"_sips._tcp.example.com", RecordType::srv},
                                            {"_sip._tcp.example.com", RecordType::srv},
                                            {"_sip._udp.example.com", RecordType::srv}});
    CHECK(r.result.failure == Failure::none);
    CHECK(r.result.targets ==
          std::vector<Target>{target("192.0.2.3", 5061, tls, "s.example.com", "example.com"),
                              target("192.0.2.2", 5060, tcp, "t.example.com", "example.com"),
                              target("192.0.2.1", 5060, udp, "u.example.com", "example.com")});
    CHECK(r.result.reason == "NAPTR of example.com");
}

TEST_CASE("D1 a sips: URI uses only SIPS+D2T records") {
    const Run r = run(sips("example.com"), full_zone());
    REQUIRE(r.rounds.size() == 3);
    CHECK(r.rounds[1] == std::vector<Query>{{"_sips._tcp.example.com", RecordType::srv}});
    CHECK(r.result.targets ==
          std::vector<Target>{target("192.0.2.3", 5061, tls, "s.example.com", "example.com")});
}

// S4: without TLS of its own the gateway picks no TLS target and refuses what needs one.
SipDestination without_tls(SipDestination d) {
    d.tls_usable = false;
    return d;
}

TEST_CASE("S4 D1 without TLS: SIPS+D2T records are skipped, the rest keep their order") {
    const Run r = run(without_tls(sip("example.com")), full_zone());
    REQUIRE(r.rounds.size() == 3);
    CHECK(r.rounds[1] == std::vector<Query>{{"_sip._tcp.example.com", RecordType::srv},
                                            {"_sip._udp.example.com", RecordType::srv}});
    CHECK(show(r.result.targets) == "192.0.2.2:5060/tcp(t.example.com) "
                                    "192.0.2.1:5060/udp(u.example.com) ");
    CHECK(order_naptr({sip_naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com")}, false, false)
              .empty());
    CHECK(order_naptr({sip_naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com")}, false, true)
              .size() == 1);
}

TEST_CASE("S4 D2 without TLS and without NAPTR: no _sips._tcp query") {
    Zone z = full_zone();
    z.erase({"example.com", RecordType::naptr});
    const Run r = run(without_tls(sip("example.com")), z);
    CHECK(r.rounds.at(1) == std::vector<Query>{{"_sip._tcp.example.com", RecordType::srv},
                                               {"_sip._udp.example.com", RecordType::srv}});
    CHECK(show(r.result.targets) == "192.0.2.2:5060/tcp(t.example.com) "
                                    "192.0.2.1:5060/udp(u.example.com) ");
}

TEST_CASE("S4 D3 without TLS: a sips: URI or transport=tls fails without DNS") {
    for (const auto& d : {sips("example.com"), sip("example.com", {}, tls), sips("192.0.2.9"),
                          sip("192.0.2.9", 5061, tls)}) {
        CAPTURE(d.host);
        const Run r = run(without_tls(d), full_zone());
        CHECK(r.rounds.empty());
        CHECK(r.result.failure == Failure::not_found);
        CHECK(r.result.reason.find("needs TLS, which the gateway does not have") !=
              std::string::npos);
    }
    // With TLS the same destinations resolve.
    CHECK(run(sips("example.com"), full_zone()).result.targets.size() == 1);
}

TEST_CASE("D1 the domain's name is matched without case or trailing dot") {
    const Run r = run(sip("Example.COM."), full_zone());
    CHECK(r.rounds.at(0) == std::vector<Query>{{"example.com", RecordType::naptr}});
    CHECK(r.result.targets.size() == 3);
}

// ---- D2: fallbacks -------------------------------------------------------------------------

TEST_CASE("D2 no NAPTR: SRV _sips._tcp, _sip._tcp, _sip._udp, targets in that order") {
    for (const auto naptr_status : {AnswerStatus::no_data, AnswerStatus::no_domain}) {
        CAPTURE(static_cast<int>(naptr_status));
        Zone z = full_zone();
        z[{"example.com", RecordType::naptr}] = status_answer(naptr_status);
        const Run r = run(sip("example.com"), z);
        REQUIRE(r.rounds.size() == 3);
        CHECK(r.rounds[1] == std::vector<Query>{{"_sips._tcp.example.com", RecordType::srv},
                                                {"_sip._tcp.example.com", RecordType::srv},
                                                {"_sip._udp.example.com", RecordType::srv}});
        CHECK(show(r.result.targets) == "192.0.2.3:5061/tls(s.example.com) "
                                        "192.0.2.2:5060/tcp(t.example.com) "
                                        "192.0.2.1:5060/udp(u.example.com) ");
        CHECK(r.result.reason == "SRV of example.com (no NAPTR)");
    }
}

TEST_CASE("D2 NAPTR records that are all unusable count as no NAPTR") {
    Zone z = full_zone();
    z[{"example.com", RecordType::naptr}] = naptr_answer({
        sip_naptr(10, 10, "SIP+D2S", "_sip._sctp.example.com"),
        {10, 10, "U", "E2U+sip", "!^.*$!sip:a@b!", ""},
    });
    const Run r = run(sip("example.com"), z);
    CHECK(r.rounds.at(1).size() == 3);
    CHECK(r.result.targets.size() == 3);
}

TEST_CASE("D2 a sips: URI without NAPTR asks only _sips._tcp") {
    Zone z = full_zone();
    z.erase({"example.com", RecordType::naptr});
    const Run r = run(sips("example.com"), z);
    CHECK(r.rounds.at(1) == std::vector<Query>{{"_sips._tcp.example.com", RecordType::srv}});
    CHECK(show(r.result.targets) == "192.0.2.3:5061/tls(s.example.com) ");
}

TEST_CASE("D2 some SRV names exist: only theirs are used, no A fallback") {
    Zone z = full_zone();
    z.erase({"example.com", RecordType::naptr});
    z.erase({"_sips._tcp.example.com", RecordType::srv});
    z[{"_sip._tcp.example.com", RecordType::srv}] = status_answer(AnswerStatus::no_data);
    const Run r = run(sip("example.com"), z);
    CHECK(show(r.result.targets) == "192.0.2.1:5060/udp(u.example.com) ");
}

TEST_CASE("D2 no SRV: A/AAAA of the domain on 5060, 5061 for sips") {
    const struct {
        SipDestination destination;
        const char* expected;
    } table[] = {
        {sip("a.example"), "192.0.2.7:5060/udp(a.example) [2001:db8::7]:5060/udp(a.example) "},
        {sips("a.example"), "192.0.2.7:5061/tls(a.example) [2001:db8::7]:5061/tls(a.example) "},
        {sip("a.example", {}, tcp),
         "192.0.2.7:5060/tcp(a.example) [2001:db8::7]:5060/tcp(a.example) "},
        {sip("a.example", {}, tls),
         "192.0.2.7:5061/tls(a.example) [2001:db8::7]:5061/tls(a.example) "},
        {sip("a.example", {}, udp),
         "192.0.2.7:5060/udp(a.example) [2001:db8::7]:5060/udp(a.example) "},
        {sips("a.example", {}, tcp),
         "192.0.2.7:5061/tls(a.example) [2001:db8::7]:5061/tls(a.example) "},
    };
    Zone z;
    z[{"a.example", RecordType::a}] = address_answer({"192.0.2.7"});
    z[{"a.example", RecordType::aaaa}] = address_answer({"2001:db8::7"});
    for (const auto& row : table) {
        CAPTURE(row.expected);
        const Run r = run(row.destination, z);
        std::string got;
        for (const auto& t : r.result.targets)
            got += (t.address.find(':') != std::string::npos ? "[" + t.address + "]" : t.address) +
                   ":" + std::to_string(t.port) + "/" + std::string(to_string(t.transport)) + "(" +
                   t.host + ") ";
        CHECK(got == row.expected);
        CHECK(r.result.failure == Failure::none);
        CHECK(r.result.reason == "A/AAAA of a.example (no SRV)");
    }
}

TEST_CASE("D2 NAPTR whose SRV names are empty: A/AAAA on the first NAPTR's transport") {
    Zone z;
    z[{"n.example", RecordType::naptr}] =
        naptr_answer({sip_naptr(10, 10, "SIP+D2T", "_sip._tcp.n.example"),
                      sip_naptr(20, 10, "SIP+D2U", "_sip._udp.n.example")});
    z[{"n.example", RecordType::a}] = address_answer({"192.0.2.8"});
    const Run r = run(sip("n.example"), z);
    CHECK(show(r.result.targets) == "192.0.2.8:5060/tcp(n.example) ");
}

TEST_CASE("D2 failures: not_found for a name without SIP records, unreachable for errors") {
    const auto error = status_answer(AnswerStatus::error, "Timeout while contacting DNS servers");
    const auto nodata = status_answer(AnswerStatus::no_data);
    struct Row {
        const char* what;
        Zone zone;
        Failure failure;
        const char* reason;
    };
    std::vector<Row> table;
    table.push_back({"NXDOMAIN everywhere",
                     {},
                     Failure::not_found,
                     "x.example: no address for x.example (NXDOMAIN)"});
    {
        Zone z;
        for (auto t : {RecordType::naptr, RecordType::a, RecordType::aaaa})
            z[{"x.example", t}] = nodata;
        table.push_back(
            {"no data anywhere", z, Failure::not_found, "x.example: no address for x.example"});
    }
    {
        Zone z;
        z[{"x.example", RecordType::naptr}] = error;
        table.push_back({"NAPTR timeout", z, Failure::unreachable,
                         "NAPTR x.example: Timeout while contacting DNS servers"});
    }
    {
        Zone z;
        z[{"_sip._udp.x.example", RecordType::srv}] = error;
        table.push_back({"one SRV fails, none found", z, Failure::unreachable,
                         "SRV _sip._udp.x.example: Timeout while contacting DNS servers"});
    }
    {
        Zone z;
        z[{"x.example", RecordType::aaaa}] = error;
        table.push_back({"AAAA fails, no A", z, Failure::unreachable,
                         "AAAA x.example: Timeout while contacting DNS servers"});
    }
    {
        Zone z;
        z[{"_sip._udp.x.example", RecordType::srv}] = srv_answer({{0, 0, 0, ""}});
        table.push_back({"SRV target '.'", z, Failure::not_found,
                         "x.example: SRV says no SIP service here (target \".\")"});
    }
    {
        Zone z;
        z[{"_sip._udp.x.example", RecordType::srv}] = srv_answer({{0, 0, 5060, "h.x.example"}});
        z[{"_sip._tcp.x.example", RecordType::srv}] = error;
        table.push_back({"SRV target without address, another SRV failed", z, Failure::unreachable,
                         "SRV _sip._tcp.x.example: Timeout while contacting DNS servers"});
    }
    {
        Zone z;
        z[{"_sip._udp.x.example", RecordType::srv}] = srv_answer({{0, 0, 5060, "h.x.example"}});
        table.push_back({"SRV target without address", z, Failure::not_found,
                         "x.example: no address for h.x.example (NXDOMAIN)"});
    }
    for (const auto& row : table) {
        CAPTURE(row.what);
        const Run r = run(sip("x.example"), row.zone);
        CHECK(r.result.targets.empty());
        CHECK(r.result.failure == row.failure);
        CHECK(r.result.reason == row.reason);
    }
}

TEST_CASE("D2 a failed SRV lookup does not hide the SRV records that were found") {
    Zone z = full_zone();
    z[{"example.com", RecordType::naptr}] = status_answer(AnswerStatus::no_data);
    z[{"_sips._tcp.example.com", RecordType::srv}] = status_answer(AnswerStatus::error, "boom");
    const Run r = run(sip("example.com"), z);
    CHECK(r.result.failure == Failure::none);
    CHECK(show(r.result.targets) == "192.0.2.2:5060/tcp(t.example.com) "
                                    "192.0.2.1:5060/udp(u.example.com) ");
}

// ---- D3: explicit port, numeric host, transport parameter ---------------------------------

TEST_CASE("D3 numeric host: no DNS at all") {
    const struct {
        SipDestination destination;
        Target expected;
    } table[] = {
        {sip("192.0.2.1"), target("192.0.2.1", 5060, udp, "192.0.2.1", "192.0.2.1")},
        {sip("192.0.2.1", 5080), target("192.0.2.1", 5080, udp, "192.0.2.1", "192.0.2.1")},
        {sip("192.0.2.1", {}, tcp), target("192.0.2.1", 5060, tcp, "192.0.2.1", "192.0.2.1")},
        {sip("192.0.2.1", {}, tls), target("192.0.2.1", 5061, tls, "192.0.2.1", "192.0.2.1")},
        {sip("192.0.2.1", 7000, tls), target("192.0.2.1", 7000, tls, "192.0.2.1", "192.0.2.1")},
        {sips("192.0.2.1"), target("192.0.2.1", 5061, tls, "192.0.2.1", "192.0.2.1")},
        {sips("192.0.2.1", {}, tcp), target("192.0.2.1", 5061, tls, "192.0.2.1", "192.0.2.1")},
        {sips("192.0.2.1", 5999), target("192.0.2.1", 5999, tls, "192.0.2.1", "192.0.2.1")},
        {sip("[2001:db8::1]"), target("2001:db8::1", 5060, udp, "2001:db8::1", "2001:db8::1")},
        {sip("2001:db8::1", 5070), target("2001:db8::1", 5070, udp, "2001:db8::1", "2001:db8::1")},
        {sip("[2001:DB8::1]", {}, tcp),
         target("2001:db8::1", 5060, tcp, "2001:db8::1", "2001:db8::1")},
        {sips("[::1]"), target("::1", 5061, tls, "::1", "::1")},
    };
    for (const auto& row : table) {
        CAPTURE(row.destination.host);
        const Run r = run(row.destination, {});
        CHECK(r.rounds.empty());
        CHECK(r.result.targets == std::vector<Target>{row.expected});
        CHECK(r.result.reason == "numeric host, no DNS");
    }
}

TEST_CASE("D3 is_numeric_host and normalize_host") {
    const struct {
        const char* host;
        bool numeric;
        const char* normalized;
    } table[] = {
        {"192.0.2.1", true, "192.0.2.1"},
        {"[192.0.2.1]", true, "192.0.2.1"},
        {"::1", true, "::1"},
        {"[::1]", true, "::1"},
        {"[2001:DB8::A]", true, "2001:db8::a"},
        {"example.com", false, "example.com"},
        {"Example.COM.", false, "example.com"},
        {"192.0.2", false, "192.0.2"},
        {"192.0.2.256", false, "192.0.2.256"},
        {"1.2.3.4.example", false, "1.2.3.4.example"},
        {"", false, ""},
        {"[]", false, ""},
    };
    for (const auto& row : table) {
        CAPTURE(row.host);
        CHECK(is_numeric_host(row.host) == row.numeric);
        CHECK(normalize_host(row.host) == row.normalized);
    }
}

TEST_CASE("D3 explicit port: A/AAAA only, never NAPTR or SRV") {
    const struct {
        SipDestination destination;
        const char* expected;
    } table[] = {
        {sip("example.com", 5080), "192.0.2.9:5080/udp(example.com) "},
        {sip("example.com", 5080, tcp), "192.0.2.9:5080/tcp(example.com) "},
        {sip("example.com", 5081, tls), "192.0.2.9:5081/tls(example.com) "},
        {sips("example.com", 5081), "192.0.2.9:5081/tls(example.com) "},
        {sips("example.com", 5060, tcp), "192.0.2.9:5060/tls(example.com) "},
    };
    for (const auto& row : table) {
        CAPTURE(row.expected);
        const Run r = run(row.destination, full_zone());
        REQUIRE(r.rounds.size() == 1);
        CHECK(r.rounds[0] == std::vector<Query>{{"example.com", RecordType::a},
                                                {"example.com", RecordType::aaaa}});
        CHECK(show(r.result.targets) == row.expected);
        CHECK(r.result.reason == "A/AAAA of example.com (explicit port)");
    }
}

TEST_CASE("D3 transport parameter: only that transport's SRV, no NAPTR") {
    const struct {
        SipDestination destination;
        const char* srv;
        const char* expected;
    } table[] = {
        {sip("example.com", {}, udp), "_sip._udp.example.com",
         "192.0.2.1:5060/udp(u.example.com) "},
        {sip("example.com", {}, tcp), "_sip._tcp.example.com",
         "192.0.2.2:5060/tcp(t.example.com) "},
        {sip("example.com", {}, tls), "_sips._tcp.example.com",
         "192.0.2.3:5061/tls(s.example.com) "},
        {sips("example.com", {}, tls), "_sips._tcp.example.com",
         "192.0.2.3:5061/tls(s.example.com) "},
        {sips("example.com", {}, tcp), "_sips._tcp.example.com",
         "192.0.2.3:5061/tls(s.example.com) "},
    };
    for (const auto& row : table) {
        CAPTURE(row.srv);
        const Run r = run(row.destination, full_zone());
        REQUIRE(r.rounds.size() == 2);
        CHECK(r.rounds[0] == std::vector<Query>{{row.srv, RecordType::srv}});
        CHECK(show(r.result.targets) == row.expected);
    }
}

TEST_CASE("D3 a sips: URI with transport=udp is refused without DNS") {
    const Run r = run(sips("example.com", {}, udp), full_zone());
    CHECK(r.rounds.empty());
    CHECK(r.result.failure == Failure::not_found);
    CHECK(r.result.reason == "example.com: a sips: URI cannot use transport=udp");
    CHECK(run(sip(""), {}).result.failure == Failure::not_found);
}

TEST_CASE("D3 srv_name and default_port") {
    CHECK(srv_name(udp, "a.b") == "_sip._udp.a.b");
    CHECK(srv_name(tcp, "a.b") == "_sip._tcp.a.b");
    CHECK(srv_name(tls, "a.b") == "_sips._tcp.a.b");
    CHECK(default_port(udp) == 5060);
    CHECK(default_port(tcp) == 5060);
    CHECK(default_port(tls) == 5061);
}

// ---- D4: SRV ordering ----------------------------------------------------------------------

TEST_CASE("D4 SRV ordered by priority ascending") {
    std::vector<SrvRecord> records = {
        {30, 0, 1, "c"}, {10, 0, 1, "a"}, {65535, 0, 1, "e"}, {20, 0, 1, "b"}, {0, 0, 1, "z"},
    };
    std::vector<std::string> got;
    for (const auto& r : order_srv(records, highest()))
        got.push_back(r.target);
    CHECK(got == std::vector<std::string>{"z", "a", "b", "c", "e"});
}

TEST_CASE("D4 weighted random within a priority: every random value, RFC 2782 running sum") {
    // Weights 0, 10, 30 sorted weight 0 first: running sums 0, 10, 40; random in [0, 40].
    const std::vector<SrvRecord> records = {{5, 30, 1, "w30"}, {5, 0, 1, "w0"}, {5, 10, 1, "w10"}};
    for (uint32_t value = 0; value <= 40; ++value) {
        CAPTURE(value);
        std::vector<uint32_t> maxima;
        bool first = true;
        const UniformRandom scripted = [&](uint32_t max) {
            maxima.push_back(max);
            if (!first) return 0u;
            first = false;
            return value;
        };
        const auto ordered = order_srv(records, scripted);
        REQUIRE(ordered.size() == 3);
        const char* expected_first = value == 0 ? "w0" : value <= 10 ? "w10" : "w30";
        CHECK(ordered[0].target == expected_first);
        // The first draw is over the whole sum; the next over what is left.
        REQUIRE(maxima.size() >= 1);
        CHECK(maxima[0] == 40);
        // After the first pick, 0 selects the first left in weight order.
        if (value == 0) CHECK(ordered[1].target == "w10");
        if (value == 0) CHECK(ordered[2].target == "w30");
        if (value > 0 && value <= 10) CHECK(ordered[1].target == "w0");
        if (value > 10) CHECK(ordered[1].target == "w0");
    }
}

TEST_CASE("D4 weight 0: picked only by a zero draw; all zero keeps (weight, target) order") {
    const std::vector<SrvRecord> zeros = {{1, 0, 1, "c"}, {1, 0, 1, "a"}, {1, 0, 1, "b"}};
    int draws = 0;
    const UniformRandom counting = [&](uint32_t max) {
        ++draws;
        return max;
    };
    std::vector<std::string> got;
    for (const auto& r : order_srv(zeros, counting))
        got.push_back(r.target);
    CHECK(got == std::vector<std::string>{"a", "b", "c"});
    CHECK(draws == 0); // a zero sum needs no random number

    // With the highest draw the weighted record always comes before the weight-0 one.
    const std::vector<SrvRecord> mixed = {{1, 0, 1, "zero"}, {1, 1, 1, "one"}};
    CHECK(order_srv(mixed, highest()).front().target == "one");
    CHECK(order_srv(mixed, lowest()).front().target == "zero");
}

TEST_CASE("D4 the order depends only on the random draws, not on the answer's order") {
    std::vector<SrvRecord> records = {
        {10, 60, 5060, "a"}, {10, 20, 5060, "b"}, {10, 20, 5061, "b"},
        {10, 0, 5060, "c"},  {20, 5, 5060, "d"},  {20, 5, 5060, "e"},
    };
    const auto by_target = [](const SrvRecord& x, const SrvRecord& y) {
        return std::tie(x.target, x.port) < std::tie(y.target, y.port);
    };
    std::sort(records.begin(), records.end(), by_target);
    std::mt19937 reference_rng(7);
    const UniformRandom reference = [&](uint32_t max) {
        return std::uniform_int_distribution<uint32_t>(0, max)(reference_rng);
    };
    const auto expected = order_srv(records, reference);
    do {
        std::mt19937 rng(7);
        const UniformRandom random = [&](uint32_t max) {
            return std::uniform_int_distribution<uint32_t>(0, max)(rng);
        };
        CHECK(order_srv(records, random) == expected);
    } while (std::next_permutation(records.begin(), records.end(), by_target));
}

TEST_CASE("D4 first picks follow the weights (seeded generator, 20000 draws)") {
    const std::vector<SrvRecord> records = {
        {1, 10, 1, "light"}, {1, 30, 1, "heavy"}, {1, 60, 1, "heaviest"}, {2, 100, 1, "backup"}};
    std::mt19937 rng(42);
    const UniformRandom random = [&](uint32_t max) {
        return std::uniform_int_distribution<uint32_t>(0, max)(rng);
    };
    std::map<std::string, int> first;
    const int rounds = 20000;
    for (int i = 0; i < rounds; ++i) {
        const auto ordered = order_srv(records, random);
        REQUIRE(ordered.back().target == "backup");
        ++first[ordered.front().target];
    }
    // Expected shares 10/101 (+1 for the zero draw), 30/101, 60/101.
    CHECK(first["light"] / double(rounds) == doctest::Approx(11.0 / 101).epsilon(0.1));
    CHECK(first["heavy"] / double(rounds) == doctest::Approx(30.0 / 101).epsilon(0.05));
    CHECK(first["heaviest"] / double(rounds) == doctest::Approx(60.0 / 101).epsilon(0.05));
}

TEST_CASE("D4 SRV targets across priorities and weights reach the target list in order") {
    Zone z;
    z[{"_sip._udp.w.example", RecordType::srv}] = srv_answer({
        {20, 0, 5060, "late.w.example"},
        {10, 10, 5060, "light.w.example"},
        {10, 90, 5060, "heavy.w.example"},
    });
    z[{"light.w.example", RecordType::a}] = address_answer({"192.0.2.1"});
    z[{"heavy.w.example", RecordType::a}] = address_answer({"192.0.2.2"});
    z[{"late.w.example", RecordType::a}] = address_answer({"192.0.2.3"});
    const Run low = run(sip("w.example", {}, udp), z, lowest());
    CHECK(show(low.result.targets) == "192.0.2.1:5060/udp(light.w.example) "
                                      "192.0.2.2:5060/udp(heavy.w.example) "
                                      "192.0.2.3:5060/udp(late.w.example) ");
    const Run high = run(sip("w.example", {}, udp), z, highest());
    CHECK(show(high.result.targets) == "192.0.2.2:5060/udp(heavy.w.example) "
                                       "192.0.2.1:5060/udp(light.w.example) "
                                       "192.0.2.3:5060/udp(late.w.example) ");
}

// ---- D5: the failover list -----------------------------------------------------------------

TEST_CASE("D5 targets listed in failover order with every address of every SRV") {
    Zone z;
    z[{"f.example", RecordType::naptr}] = naptr_answer({
        sip_naptr(20, 10, "SIP+D2U", "_sip._udp.f.example"),
        sip_naptr(10, 10, "SIP+D2T", "_sip._tcp.f.example"),
    });
    z[{"_sip._tcp.f.example", RecordType::srv}] = srv_answer({
        {20, 10, 5070, "two.f.example"},
        {10, 10, 5060, "one.f.example"},
    });
    z[{"_sip._udp.f.example", RecordType::srv}] = srv_answer({
        {10, 10, 5060, "one.f.example"},
        {10, 0, 5090, "192.0.2.99"}, // a numeric target is used as is
    });
    z[{"one.f.example", RecordType::a}] = address_answer({"192.0.2.1", "192.0.2.2"});
    z[{"one.f.example", RecordType::aaaa}] = address_answer({"2001:db8::1"});
    z[{"two.f.example", RecordType::a}] = address_answer({"192.0.2.3"});
    z[{"two.f.example", RecordType::aaaa}] = status_answer(AnswerStatus::no_data);
    const Run r = run(sip("f.example"), z, highest());
    CHECK(r.result.failure == Failure::none);
    CHECK(show(r.result.targets) == "192.0.2.1:5060/tcp(one.f.example) "
                                    "192.0.2.2:5060/tcp(one.f.example) "
                                    "2001:db8::1:5060/tcp(one.f.example) "
                                    "192.0.2.3:5070/tcp(two.f.example) "
                                    "192.0.2.1:5060/udp(one.f.example) "
                                    "192.0.2.2:5060/udp(one.f.example) "
                                    "2001:db8::1:5060/udp(one.f.example) "
                                    "192.0.2.99:5090/udp(192.0.2.99) ");
    for (const auto& t : r.result.targets)
        CHECK(t.domain == "f.example");
    // NAPTR, then both SRVs, then the addresses of both names at once.
    REQUIRE(r.rounds.size() == 3);
    CHECK(r.rounds[2].size() == 4);
}

TEST_CASE("D5 the same address, port and transport is listed once") {
    Zone z;
    z[{"_sip._udp.d.example", RecordType::srv}] = srv_answer({
        {10, 0, 5060, "a.d.example"},
        {20, 0, 5060, "b.d.example"},
        {30, 0, 5060, "a.d.example"},
    });
    z[{"a.d.example", RecordType::a}] = address_answer({"192.0.2.1"});
    z[{"b.d.example", RecordType::a}] = address_answer({"192.0.2.1", "192.0.2.2"});
    const Run r = run(sip("d.example", {}, udp), z);
    CHECK(show(r.result.targets) == "192.0.2.1:5060/udp(a.d.example) "
                                    "192.0.2.2:5060/udp(b.d.example) ");
}

// ---- D6: the answer cache ------------------------------------------------------------------

TEST_CASE("D6 cache keeps an answer for min(TTL, max_ttl)") {
    const auto t0 = AnswerCache::Clock::time_point{} + 1000s;
    const struct {
        uint32_t ttl;
        long kept;
    } table[] = {{0, 0}, {1, 1}, {59, 59}, {60, 60}, {61, 60}, {86400, 60}};
    for (const auto& row : table) {
        CAPTURE(row.ttl);
        AnswerCache cache({60s, 5s, 100});
        const Query q{"h.example", RecordType::a};
        Answer a = address_answer({"192.0.2.1"});
        a.ttl = row.ttl;
        cache.store(q, a, t0);
        if (row.kept == 0) {
            CHECK_FALSE(cache.find(q, t0));
            continue;
        }
        CHECK(cache.remaining_ttl(q, t0) == std::chrono::seconds(row.kept));
        CHECK(cache.find(q, t0 + std::chrono::seconds(row.kept) - 1ms));
        CHECK_FALSE(cache.find(q, t0 + std::chrono::seconds(row.kept)));
        CHECK(cache.size() == 0); // an expired entry is dropped when found
    }
}

TEST_CASE("D6 negative answers are cached for negative_ttl, failures not at all") {
    const auto t0 = AnswerCache::Clock::time_point{} + 1000s;
    AnswerCache cache({3600s, 5s, 100});
    const Query nx{"nx.example", RecordType::naptr}, nodata{"nd.example", RecordType::srv},
        failed{"f.example", RecordType::a};
    cache.store(nx, status_answer(AnswerStatus::no_domain), t0);
    cache.store(nodata, status_answer(AnswerStatus::no_data), t0);
    cache.store(failed, status_answer(AnswerStatus::error, "timeout"), t0);
    REQUIRE(cache.find(nx, t0 + 4s));
    CHECK(cache.find(nx, t0 + 4s)->status == AnswerStatus::no_domain);
    CHECK(cache.find(nodata, t0 + 4s)->status == AnswerStatus::no_data);
    CHECK_FALSE(cache.find(failed, t0));
    CHECK_FALSE(cache.find(nx, t0 + 5s));
    CHECK_FALSE(cache.find(nodata, t0 + 5s));
}

TEST_CASE("D6 a new answer replaces the old one and its expiry") {
    const auto t0 = AnswerCache::Clock::time_point{} + 1000s;
    AnswerCache cache({3600s, 5s, 100});
    const Query q{"h.example", RecordType::a};
    Answer first = address_answer({"192.0.2.1"});
    first.ttl = 100;
    Answer second = address_answer({"192.0.2.2"});
    second.ttl = 10;
    cache.store(q, first, t0);
    cache.store(q, second, t0 + 1s);
    CHECK(cache.size() == 1);
    CHECK(cache.find(q, t0 + 2s)->addresses == std::vector<std::string>{"192.0.2.2"});
    CHECK_FALSE(cache.find(q, t0 + 11s));
    // A failure drops what was cached: the name is asked again next time.
    cache.store(q, first, t0 + 20s);
    cache.store(q, status_answer(AnswerStatus::error, "x"), t0 + 21s);
    CHECK_FALSE(cache.find(q, t0 + 22s));
}

TEST_CASE("D6 the entry cap drops expired entries first, then the soonest to expire") {
    const auto t0 = AnswerCache::Clock::time_point{} + 1000s;
    AnswerCache cache({3600s, 5s, 3});
    const auto store = [&](const char* name, uint32_t ttl, AnswerCache::Clock::time_point at) {
        Answer a = address_answer({"192.0.2.1"});
        a.ttl = ttl;
        cache.store({name, RecordType::a}, a, at);
    };
    store("short", 10, t0);
    store("long", 1000, t0);
    store("mid", 100, t0);
    CHECK(cache.size() == 3);
    store("new", 500, t0 + 1s); // full: "short" expires soonest
    CHECK(cache.size() == 3);
    CHECK_FALSE(cache.find({"short", RecordType::a}, t0 + 1s));
    CHECK(cache.find({"mid", RecordType::a}, t0 + 1s));
    store("later", 500, t0 + 200s); // "mid" has expired: it goes, nothing live does
    CHECK(cache.size() == 3);
    CHECK(cache.find({"long", RecordType::a}, t0 + 200s));
    CHECK(cache.find({"new", RecordType::a}, t0 + 200s));
    CHECK(cache.find({"later", RecordType::a}, t0 + 200s));

    AnswerCache none({3600s, 5s, 0});
    Answer a = address_answer({"192.0.2.1"});
    a.ttl = 60;
    none.store({"x", RecordType::a}, a, t0);
    CHECK(none.size() == 0);
}
