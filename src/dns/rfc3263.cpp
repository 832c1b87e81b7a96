#include "xsgw/dns/rfc3263.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <tuple>
#include <utility>

namespace xsgw::dns {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               const auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
               };
               return lower(x) == lower(y);
           });
}

std::string_view strip_brackets(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return host.substr(1, host.size() - 2);
    return host;
}

// An SRV target of "." says the service is decidedly not available (RFC 2782).
bool is_root(std::string_view name) {
    return name.empty() || name == ".";
}

// Sort key for NAPTR ties: the more secure transport first.
int transport_rank(Transport t) {
    switch (t) {
    case Transport::tls:
        return 0;
    case Transport::tcp:
        return 1;
    case Transport::udp:
        return 2;
    }
    return 3;
}

Resolution failed(Failure failure, std::string reason) {
    Resolution r;
    r.failure = failure;
    r.reason = std::move(reason);
    return r;
}

Step done(Resolution r) {
    Step s;
    s.result = std::move(r);
    return s;
}

void add_unique(std::vector<Query>& queries, Query q) {
    if (std::find(queries.begin(), queries.end(), q) == queries.end())
        queries.push_back(std::move(q));
}

std::string describe_error(const Query& q, const Answer& a) {
    return fmt::format("{} {}: {}", to_string(q.type), q.name,
                       a.error.empty() ? "failed" : a.error);
}

const Answer* find_answer(const Answers& answers, const Query& q) {
    const auto it = answers.find(q);
    return it == answers.end() ? nullptr : &it->second;
}

// A name to look up in A/AAAA, with the port and transport its addresses are used with.
struct Hop {
    std::string name;
    uint16_t port = 0;
    Transport transport = Transport::udp;
};

// A SRV owner name and the transport its targets are used with.
struct Service {
    std::string name;
    Transport transport = Transport::udp;
};

constexpr RecordType address_types[] = {RecordType::a, RecordType::aaaa};

// The last stage: every address of every hop, in hop order, A before AAAA, no duplicates.
// `earlier_error` is a failure of an earlier stage that may explain an empty result.
Step resolve_hops(const std::vector<Hop>& hops, const std::string& domain, const Answers& answers,
                  std::string path, std::string earlier_error) {
    Step step;
    for (const auto& hop : hops) {
        if (is_numeric_host(hop.name)) continue;
        for (RecordType type : address_types) {
            Query q{hop.name, type};
            if (find_answer(answers, q) == nullptr) add_unique(step.needed, std::move(q));
        }
    }
    if (!step.needed.empty()) return step;

    Resolution r;
    std::string first_error = std::move(earlier_error);
    bool no_domain = false;
    const auto add = [&](std::string address, const Hop& hop) {
        const bool seen = std::any_of(r.targets.begin(), r.targets.end(), [&](const Target& t) {
            return t.address == address && t.port == hop.port && t.transport == hop.transport;
        });
        if (!seen)
            r.targets.push_back(
                Target{std::move(address), hop.port, hop.transport, hop.name, domain});
    };
    for (const auto& hop : hops) {
        if (is_numeric_host(hop.name)) {
            add(normalize_host(hop.name), hop);
            continue;
        }
        for (RecordType type : address_types) {
            const Query q{hop.name, type};
            const Answer& a = answers.at(q);
            if (a.status == AnswerStatus::ok) {
                for (const auto& address : a.addresses)
                    add(address, hop);
            } else if (a.status == AnswerStatus::error && first_error.empty()) {
                first_error = describe_error(q, a);
            } else if (a.status == AnswerStatus::no_domain) {
                no_domain = true;
            }
        }
    }
    if (!r.targets.empty()) {
        r.reason = std::move(path);
        return done(std::move(r));
    }
    if (!first_error.empty()) return done(failed(Failure::unreachable, std::move(first_error)));
    std::string names;
    for (const auto& hop : hops)
        names += (names.empty() ? "" : ", ") + hop.name;
    return done(failed(Failure::not_found,
                       fmt::format("{}: no address for {}{}", domain, names,
                                   no_domain && hops.size() == 1 ? " (NXDOMAIN)" : "")));
}

// SRV stage: the services' records in order; no SRV record at all falls back to A/AAAA of
// the domain on `fallback`'s default port (RFC 3263 §4.2).
Step resolve_services(const std::vector<Service>& services, Transport fallback,
                      const std::string& domain, const Answers& answers,
                      const UniformRandom& random, const std::string& path) {
    Step step;
    for (const auto& service : services) {
        Query q{service.name, RecordType::srv};
        if (find_answer(answers, q) == nullptr) add_unique(step.needed, std::move(q));
    }
    if (!step.needed.empty()) return step;

    bool any_srv = false;
    std::string first_error;
    for (const auto& service : services) {
        const Query q{service.name, RecordType::srv};
        const Answer& a = answers.at(q);
        if (a.status == AnswerStatus::ok) {
            any_srv = true;
        } else if (a.status == AnswerStatus::error && first_error.empty()) {
            first_error = describe_error(q, a);
        }
    }
    if (!any_srv) {
        // Without any SRV answer we cannot tell "no SRV" from "SRV unreachable".
        if (!first_error.empty()) return done(failed(Failure::unreachable, std::move(first_error)));
        return resolve_hops({Hop{domain, default_port(fallback), fallback}}, domain, answers,
                            fmt::format("A/AAAA of {} (no SRV)", domain), {});
    }

    // Ask for every target's addresses before ordering, so `random` is drawn only once.
    for (const auto& service : services) {
        const Answer& a = answers.at(Query{service.name, RecordType::srv});
        if (a.status != AnswerStatus::ok) continue;
        for (const auto& record : a.srv) {
            const std::string name = normalize_host(record.target);
            if (is_root(record.target) || is_numeric_host(name)) continue;
            for (RecordType type : address_types) {
                Query q{name, type};
                if (find_answer(answers, q) == nullptr) add_unique(step.needed, std::move(q));
            }
        }
    }
    if (!step.needed.empty()) return step;

    std::vector<Hop> hops;
    for (const auto& service : services) {
        const Answer& a = answers.at(Query{service.name, RecordType::srv});
        if (a.status != AnswerStatus::ok) continue;
        for (const auto& record : order_srv(a.srv, random)) {
            if (is_root(record.target)) continue;
            hops.push_back(Hop{normalize_host(record.target), record.port, service.transport});
        }
    }
    if (hops.empty())
        return done(failed(Failure::not_found,
                           fmt::format("{}: SRV says no SIP service here (target \".\")", domain)));
    return resolve_hops(hops, domain, answers, path, std::move(first_error));
}

} // namespace

std::string_view to_string(Transport transport) {
    switch (transport) {
    case Transport::udp:
        return "udp";
    case Transport::tcp:
        return "tcp";
    case Transport::tls:
        return "tls";
    }
    return "?";
}

uint16_t default_port(Transport transport) {
    return transport == Transport::tls ? 5061 : 5060;
}

std::string_view to_string(Failure failure) {
    switch (failure) {
    case Failure::none:
        return "none";
    case Failure::not_found:
        return "not_found";
    case Failure::unreachable:
        return "unreachable";
    }
    return "?";
}

std::string_view to_string(RecordType type) {
    switch (type) {
    case RecordType::naptr:
        return "NAPTR";
    case RecordType::srv:
        return "SRV";
    case RecordType::a:
        return "A";
    case RecordType::aaaa:
        return "AAAA";
    }
    return "?";
}

std::optional<Transport> naptr_transport(std::string_view service) {
    if (iequals(service, "SIP+D2U")) return Transport::udp;
    if (iequals(service, "SIP+D2T")) return Transport::tcp;
    if (iequals(service, "SIPS+D2T")) return Transport::tls;
    return std::nullopt;
}

std::vector<NaptrRecord> order_naptr(std::vector<NaptrRecord> records, bool secure,
                                     bool tls_usable) {
    std::erase_if(records, [secure, tls_usable](const NaptrRecord& r) {
        const auto transport = naptr_transport(r.service);
        // Flag "S": the replacement is an SRV name; other flags (and regexp rewriting)
        // are not part of RFC 3263's use of NAPTR.
        return !transport || (secure && *transport != Transport::tls) ||
               (!tls_usable && *transport == Transport::tls) || !iequals(r.flags, "s") ||
               !r.regexp.empty() || is_root(r.replacement);
    });
    std::sort(records.begin(), records.end(), [](const NaptrRecord& x, const NaptrRecord& y) {
        return std::make_tuple(x.order, x.preference, transport_rank(*naptr_transport(x.service)),
                               std::string_view(x.replacement)) <
               std::make_tuple(y.order, y.preference, transport_rank(*naptr_transport(y.service)),
                               std::string_view(y.replacement));
    });
    return records;
}

std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, const UniformRandom& random) {
    // Weight 0 sorts first, as RFC 2782's running sum wants it.
    std::sort(records.begin(), records.end(), [](const SrvRecord& x, const SrvRecord& y) {
        return std::tie(x.priority, x.weight, x.target, x.port) <
               std::tie(y.priority, y.weight, y.target, y.port);
    });
    std::vector<SrvRecord> ordered;
    ordered.reserve(records.size());
    auto begin = records.begin();
    while (begin != records.end()) {
        const auto end = std::find_if(begin, records.end(), [&](const SrvRecord& r) {
            return r.priority != begin->priority;
        });
        std::vector<SrvRecord> group(std::make_move_iterator(begin), std::make_move_iterator(end));
        while (!group.empty()) {
            uint32_t sum = 0;
            for (const auto& r : group)
                sum += r.weight;
            uint32_t pick = 0;
            if (group.size() > 1 && sum > 0) pick = std::min(random(sum), sum);
            std::size_t chosen = 0;
            uint32_t running = 0;
            for (std::size_t i = 0; i < group.size(); ++i) {
                running += group[i].weight;
                if (running >= pick) {
                    chosen = i;
                    break;
                }
            }
            ordered.push_back(std::move(group[chosen]));
            group.erase(group.begin() + static_cast<std::ptrdiff_t>(chosen));
        }
        begin = end;
    }
    return ordered;
}

std::string srv_name(Transport transport, std::string_view domain) {
    switch (transport) {
    case Transport::udp:
        return fmt::format("_sip._udp.{}", domain);
    case Transport::tcp:
        return fmt::format("_sip._tcp.{}", domain);
    case Transport::tls:
        return fmt::format("_sips._tcp.{}", domain);
    }
    return std::string(domain);
}

bool is_numeric_host(std::string_view host) {
    const std::string bare(strip_brackets(host));
    in6_addr buffer{};
    return inet_pton(AF_INET, bare.c_str(), &buffer) == 1 ||
           inet_pton(AF_INET6, bare.c_str(), &buffer) == 1;
}

std::string normalize_host(std::string_view host) {
    host = strip_brackets(host);
    if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
    std::string out(host);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

Step next_step(const SipDestination& destination, const Answers& answers,
               const UniformRandom& random) {
    const std::string host = normalize_host(destination.host);
    if (host.empty() || host == ".") return done(failed(Failure::not_found, "empty host"));
    if (destination.secure && destination.transport == Transport::udp)
        return done(failed(Failure::not_found,
                           fmt::format("{}: a sips: URI cannot use transport=udp", host)));

    // sips: means TLS; transport=tcp on a sips: URI is TLS over TCP (RFC 3261 §26.2.2).
    std::optional<Transport> explicit_transport = destination.transport;
    if (destination.secure && explicit_transport == Transport::tcp)
        explicit_transport = Transport::tls;
    const Transport default_transport = destination.secure ? Transport::tls : Transport::udp;
    if (!destination.tls_usable && (destination.secure || explicit_transport == Transport::tls))
        return done(
            failed(Failure::not_found, fmt::format("{}: needs TLS, which the gateway does not have "
                                                   "(sip.tls_listen is not set)",
                                                   host)));

    if (is_numeric_host(host)) {
        const Transport t = explicit_transport.value_or(default_transport);
        Resolution r;
        r.targets.push_back(
            Target{host, destination.port.value_or(default_port(t)), t, host, host});
        r.reason = "numeric host, no DNS";
        return done(std::move(r));
    }

    if (destination.port) {
        const Transport t = explicit_transport.value_or(default_transport);
        return resolve_hops({Hop{host, *destination.port, t}}, host, answers,
                            fmt::format("A/AAAA of {} (explicit port)", host), {});
    }

    if (explicit_transport) {
        const Service service{srv_name(*explicit_transport, host), *explicit_transport};
        return resolve_services(
            {service}, *explicit_transport, host, answers, random,
            fmt::format("SRV {} (transport={})", service.name, to_string(*explicit_transport)));
    }

    const Query naptr_query{host, RecordType::naptr};
    const Answer* naptr = find_answer(answers, naptr_query);
    if (naptr == nullptr) {
        Step step;
        step.needed.push_back(naptr_query);
        return step;
    }
    if (naptr->status == AnswerStatus::error)
        return done(failed(Failure::unreachable, describe_error(naptr_query, *naptr)));

    std::vector<NaptrRecord> usable;
    if (naptr->status == AnswerStatus::ok)
        usable = order_naptr(naptr->naptr, destination.secure, destination.tls_usable);
    if (!usable.empty()) {
        std::vector<Service> services;
        services.reserve(usable.size());
        for (const auto& record : usable)
            services.push_back(
                Service{normalize_host(record.replacement), *naptr_transport(record.service)});
        return resolve_services(services, services.front().transport, host, answers, random,
                                fmt::format("NAPTR of {}", host));
    }

    std::vector<Transport> wanted =
        destination.secure ? std::vector<Transport>{Transport::tls}
                           : std::vector<Transport>{Transport::tls, Transport::tcp, Transport::udp};
    if (!destination.tls_usable) std::erase(wanted, Transport::tls);
    std::vector<Service> services;
    services.reserve(wanted.size());
    for (Transport t : wanted)
        services.push_back(Service{srv_name(t, host), t});
    return resolve_services(services, default_transport, host, answers, random,
                            fmt::format("SRV of {} (no NAPTR)", host));
}

} // namespace xsgw::dns
