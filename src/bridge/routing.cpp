#include "xsgw/bridge/routing.hpp"

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

} // namespace xsgw::bridge
