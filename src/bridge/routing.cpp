#include "xsgw/bridge/routing.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <string>

namespace xsgw::bridge {

dns::SipDestination destination_of(const address::SipUri& uri) {
    dns::SipDestination d;
    d.host = uri.host;
    d.port = uri.port;
    d.secure = uri.secure;
    for (const auto& [name, value] : uri.params) {
        if (name != "transport") continue;
        if (value == "udp") d.transport = dns::Transport::udp;
        if (value == "tcp") d.transport = dns::Transport::tcp;
        if (value == "tls") d.transport = dns::Transport::tls;
    }
    return d;
}

sip::NextHop hop_from(const dns::Target& t) {
    return {t.address, t.port, std::string(dns::to_string(t.transport)), t.host, t.domain};
}

std::vector<sip::NextHop> hops_from(const dns::Resolution& resolution) {
    std::vector<sip::NextHop> hops;
    hops.reserve(resolution.targets.size());
    for (const auto& target : resolution.targets)
        hops.push_back(hop_from(target));
    return hops;
}

dns::SipDestination from_domain_destination(const address::SipUri& from) {
    dns::SipDestination d;
    d.host = from.host;
    d.secure = from.secure;
    return d;
}

sip::UserAgent::SourceVerdict from_domain_verdict(const std::string& host,
                                                  const std::string& source,
                                                  const dns::Resolution& resolution) {
    if (resolution.failure == dns::Failure::unreachable)
        return {503,
                fmt::format("Cannot verify the From domain {} now ({})", host, resolution.reason),
                "30"};
    if (resolution.targets.empty())
        return {403, fmt::format("From domain {} has no SIP servers ({})", host, resolution.reason),
                ""};
    std::vector<std::string> addresses;
    for (const auto& target : resolution.targets) {
        if (target.address == source) return {};
        if (std::find(addresses.begin(), addresses.end(), target.address) == addresses.end())
            addresses.push_back(target.address);
    }
    return {403,
            fmt::format("Source {} is not a SIP server of the From domain {} ({})", source, host,
                        fmt::join(addresses, ", ")),
            ""};
}

} // namespace xsgw::bridge
