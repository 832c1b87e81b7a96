// From a SIP URI to the next hops the user agent is given: RFC 3263 through our resolver.
#pragma once

#include "xsgw/address/address.hpp"
#include "xsgw/dns/resolver.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <vector>

namespace xsgw::bridge {

/// What RFC 3263 needs of a URI: host, port, sips, ;transport=.
dns::SipDestination destination_of(const address::SipUri& uri);

/// A resolved target as a numeric next hop for the user agent.
sip::NextHop hop_from(const dns::Target& target);

/// Every target of a resolution, in order, as next hops.
std::vector<sip::NextHop> hops_from(const dns::Resolution& resolution);

} // namespace xsgw::bridge
