// JID <-> SIP URI mapping in the gateway's default addressing mode (DESIGN.md
// "Addressing", STANDARDS.md A1-A10). Pure value code: no I/O, no gloox, no
// Sofia; every failure is a returned AddressError, never an exception.
//
// Two kinds of address cross the gateway:
//   contact:    SIP user alice@sip.example.org appears to XMPP as the JID
//               alice*sip.example.org@<component>
//   XMPP user:  JID bob@jabber.example appears to SIP as the URI
//               sip:bob*jabber.example@<sip_domain>
// The local part is split at the LAST separator (A1): domains never hold it,
// user parts may. A resource maps to the GRUU parameter ;gr= and back (A7).
//
// Which condition an error carries (A2), chosen so that the XMPP error and
// the SIP status it later becomes (E1) tell the sender what to fix:
//   jid_malformed   the address is not well formed, or not well formed for
//                   this scheme: bad syntax, invalid UTF-8, control
//                   characters, over-long parts, an empty user or host around
//                   the separator, a host that is no host name, a domain
//                   holding the separator, a user part that would start with
//                   an escaped space (XEP-0106 forbids \20 first).
//   item_not_found  the address is well formed but names nothing the
//                   gateway can reach: no separator in the local part (a
//                   perfectly good JID such as alice@sip.test that is simply
//                   not a contact), a JID outside the gateway's domain, a
//                   Request-URI with no user (the gateway itself).
//   forbidden       refused by policy: a Request-URI for another host (the
//                   gateway is not an open relay, A9), or an address that
//                   would send traffic through the gateway back to itself.
//   not_acceptable  a sips: URI while the path is not TLS end to end (A8),
//                   or a gateway configuration that fails validate_config.
//
// Case (A10): JID local parts and all domains are ASCII-lowercased when a JID
// is produced; SIP user parts keep their case. So sip:Alice@Example.org
// becomes alice*example.org@<component>, which maps back to
// sip:alice@example.org -- the loss is by design and tested. No Unicode case
// mapping or PRECIS enforcement is done here; the XMPP server still applies
// its own profile and its error comes back to the sender.
#pragma once

#include "xsgw/expected.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace xsgw::address {

/// RFC 7622 §3.1: no localpart, domainpart or resourcepart may exceed this many bytes.
inline constexpr std::size_t max_jid_part_bytes = 1023;

/// What the mapping needs to know about the gateway; check it with validate_config at startup.
struct AddressConfig {
    std::string component;  ///< XMPP domain of the gateway (xmpp.component), e.g. sip.test
    std::string sip_domain; ///< SIP domain where XMPP users appear (sip.domain), e.g. xmpp.test
    char separator = '*';   ///< joins user and domain inside one local part / user part
};

/// Why an address could not be mapped; the bridge turns it into a stanza error or SIP status.
enum class Condition { jid_malformed, item_not_found, forbidden, not_acceptable };

/// The RFC 6120 §8.3.3 defined-condition name, e.g. "jid-malformed".
std::string_view to_string(Condition condition);

/// The RFC 6120 §8.3.2 error type that goes with the condition ("modify", "cancel", "auth").
std::string_view error_type(Condition condition);

/// A refused address: the condition to report and a one-line human reason.
/// The reason quotes the offending input shortened and with every control
/// or non-UTF-8 byte shown as \xHH, so it is safe in a SIP reason phrase (S3).
struct AddressError {
    Condition condition;
    std::string reason;
    bool operator==(const AddressError&) const = default;
};

/// Either a value or an AddressError (see xsgw/expected.hpp).
template <class T> using Result = Expected<T, AddressError>;

/// An XMPP address as it travels in a stanza: local part in escaped (XEP-0106)
/// form, domain and resource as they are. parse_jid and every mapping return
/// local and domain ASCII-lowercased, the domain without a trailing dot.
struct Jid {
    std::string local;    ///< may be empty (a domain JID)
    std::string domain;   ///< never empty in a valid JID
    std::string resource; ///< empty for a bare JID
    bool operator==(const Jid&) const = default;
};

/// A sip: or sips: URI with its parts decoded: user, gr and params hold the
/// text after percent-decoding (valid UTF-8), to_string encodes them again.
/// host is lowercase, an IPv6 literal keeps its brackets. A bare ";gr" (no
/// value) stays in params as {"gr", ""}; gr holds only a ";gr=value".
struct SipUri {
    bool secure = false;               ///< sips: rather than sip:
    std::string user;                  ///< decoded user part; empty when the URI has none
    std::string host;                  ///< host name, IPv4 address or [IPv6] literal
    std::optional<std::uint16_t> port; ///< explicit port, if any
    std::string gr;                    ///< decoded value of ;gr= (RFC 5627), empty if none
    /// Other parameters in their order, decoded, names lowercase; "" for a valueless one.
    std::vector<std::pair<std::string, std::string>> params;
    bool operator==(const SipUri&) const = default;
};

/// Empty when the configuration can drive the mapping; otherwise why not: the
/// component must be a valid XMPP domain, sip_domain a valid SIP host, and the
/// separator one of ! $ ( ) * + , ; = ? ~ (legal unescaped in both a JID local
/// part and a SIP user part, and never part of a domain).
std::optional<std::string> validate_config(const AddressConfig& config);

/// Parses "[local@]domain[/resource]" (RFC 7622 syntax, no PRECIS): checks
/// UTF-8, control characters, part lengths, the characters a local part may
/// not hold unescaped, and the domain's form; lowercases local and domain.
Result<Jid> parse_jid(std::string_view text);

/// The JID as text: "local@domain/resource", leaving out empty parts.
std::string to_string(const Jid& jid);

/// The bare JID as text: "local@domain" (or "domain"), never a resource.
std::string bare_string(const Jid& jid);

/// Parses a sip: or sips: URI (RFC 3261 §19.1, scheme case-insensitive).
/// Refuses what the gateway will not carry: passwords, ?headers, characters
/// that must be escaped but are not, bad %xx, non-UTF-8 or control
/// characters after decoding, duplicate parameters, a port out of range.
Result<SipUri> parse_sip_uri(std::string_view text);

/// Parses what a user types as a SIP address (iq:gateway prompt, X9): a
/// sip:/sips: URI, the same in <angle brackets>, or a bare "user@host",
/// surrounding whitespace ignored.
Result<SipUri> parse_sip_address_prompt(std::string_view text);

/// The URI as text, percent-encoding user and parameters (A3); parameters
/// come out in their stored order with ;gr= last.
std::string to_string(const SipUri& uri);

/// XMPP -> SIP for a contact JID (the `to` of a stanza sent into the gateway):
/// alice*sip.example.org@sip.test/res -> sip:alice@sip.example.org;gr=res.
/// The local part is lowercased, split at the last separator (A1, A2),
/// XEP-0106-unescaped (A3); the host side may carry a port as \3aPORT. The
/// resource becomes ;gr= (A7); clear SipUri::gr to address the AOR instead.
Result<SipUri> contact_jid_to_sip(const Jid& jid, const AddressConfig& config);

/// SIP -> XMPP for a SIP party (a From or Contact URI):
/// sip:alice@sip.example.org;gr=X -> alice*sip.example.org@sip.test/X.
/// The decoded user is XEP-0106-escaped (A4) and lowercased (A10); an
/// explicit port is kept as \3aPORT after the host; ;gr= becomes the
/// resource (A7); other URI parameters are not carried. A sips: URI is
/// refused unless tls_path says the whole path is TLS (A8).
Result<Jid> sip_to_contact_jid(const SipUri& uri, const AddressConfig& config,
                               bool tls_path = false);

/// XMPP -> SIP for an XMPP user (the `from` of a stanza the gateway relays):
/// bob@jabber.example/phone -> sip:bob*jabber.example@xmpp.test;gr=phone.
/// The local part is XEP-0106-unescaped, the domain must not hold the
/// separator, and the resource becomes ;gr= (A7).
Result<SipUri> xmpp_user_to_sip(const Jid& jid, const AddressConfig& config);

/// SIP -> XMPP for a Request-URI naming an XMPP user:
/// sip:bob*jabber.example@xmpp.test;gr=phone -> bob@jabber.example/phone.
/// A host other than the configured sip_domain is forbidden: the gateway is
/// not an open relay (A9). A sips: Request-URI is refused unless tls_path
/// says the whole path is TLS (A8). Port and other parameters are ignored.
Result<Jid> sip_request_uri_to_xmpp_user(const SipUri& uri, const AddressConfig& config,
                                         bool tls_path = false);

} // namespace xsgw::address
