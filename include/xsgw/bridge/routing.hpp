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

/// Who may speak for a domain (issue 5 part 7): the RFC 3263 destination of a From URI's
/// domain (its host alone: a From URI's port or transport says nothing of its servers).
dns::SipDestination from_domain_destination(const address::SipUri& from);

/// The verdict on a request whose From domain is host (normalised) and whose source address
/// is source, given host's RFC 3263 resolution: taken (status 0) when source is among its
/// targets; 403 when not or when host has no SIP servers; 503 (Retry-After 30) when DNS failed.
sip::UserAgent::SourceVerdict from_domain_verdict(const std::string& host,
                                                  const std::string& source,
                                                  const dns::Resolution& resolution);

} // namespace xsgw::bridge
