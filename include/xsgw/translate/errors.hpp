// XMPP stanza errors <-> SIP response codes (STANDARDS.md E1-E4; RFC 7247 §7,
// RFC 6120 §8.3). Pure value code: no I/O, no gloox, no Sofia.
//
// E1 (XMPP -> SIP) offers two codes for several conditions; which one applies
// depends on facts only the bridge knows, so it passes them in an
// XmppErrorContext:
//   full_jid      the failed stanza was addressed to a full JID (one device):
//                 feature-not-implemented 405 instead of 501,
//                 service-unavailable 405 instead of 403 (never 503: in SIP a
//                 503 makes the sender fail over to another server, D5).
//   global        the answer holds for every device of the user (e.g. the
//                 user's own server refused the bare JID): forbidden 603,
//                 item-not-found 604, not-acceptable 606, recipient-unavailable
//                 600. Off by default, because a 6xx stops a SIP fork at once.
//   unresolvable  remote-server-not-found because the domain could not be
//                 resolved at all: 408; otherwise (no such domain) 404.
//   sip_contact   the new address of a gone / redirect error, already mapped
//                 to a SIP URI: gone becomes 301 (else 410), redirect 302.
// Caveats for the SIP layer: a 405 must carry Allow, a 401 WWW-Authenticate
// and a 407 Proxy-Authenticate (RFC 3261 §21.4); SipStatus says which code,
// the SIP layer adds those headers.
//
// E2 (SIP -> XMPP) is the full table of STANDARDS.md, then the class of the
// code (3xx redirect, 4xx bad-request, 5xx internal-server-error, 6xx
// recipient-unavailable). Codes outside 300..699 are no failures; they give
// undefined-condition so that even a caller's mistake yields a valid stanza.
#pragma once

#include "xsgw/expected.hpp"

#include <array>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace xsgw::translate {

/// A value or an error (see xsgw/expected.hpp).
template <class T, class E> using Result = Expected<T, E>;

/// The RFC 6120 §8.3.3 defined conditions (payment-required, RFC 3920 only, is not one).
enum class Condition {
    bad_request,
    conflict,
    feature_not_implemented,
    forbidden,
    gone,
    internal_server_error,
    item_not_found,
    jid_malformed,
    not_acceptable,
    not_allowed,
    not_authorized,
    policy_violation,
    recipient_unavailable,
    redirect,
    registration_required,
    remote_server_not_found,
    remote_server_timeout,
    resource_constraint,
    service_unavailable,
    subscription_required,
    undefined_condition,
    unexpected_request,
};

/// Every Condition once, in declaration order (for tables and tests).
inline constexpr std::array<Condition, 22> all_conditions = {
    Condition::bad_request,
    Condition::conflict,
    Condition::feature_not_implemented,
    Condition::forbidden,
    Condition::gone,
    Condition::internal_server_error,
    Condition::item_not_found,
    Condition::jid_malformed,
    Condition::not_acceptable,
    Condition::not_allowed,
    Condition::not_authorized,
    Condition::policy_violation,
    Condition::recipient_unavailable,
    Condition::redirect,
    Condition::registration_required,
    Condition::remote_server_not_found,
    Condition::remote_server_timeout,
    Condition::resource_constraint,
    Condition::service_unavailable,
    Condition::subscription_required,
    Condition::undefined_condition,
    Condition::unexpected_request,
};

/// The element name of the condition, e.g. "item-not-found".
std::string_view to_string(Condition condition);

/// The condition with that element name; an unknown name is undefined-condition (RFC 6120 §8.3.2).
Condition condition_from_name(std::string_view name);

/// The RFC 6120 §8.3.2 error types.
enum class ErrorType { auth, cancel, continue_, modify, wait };

/// The attribute value of the type, e.g. "cancel" ("continue" for continue_).
std::string_view to_string(ErrorType type);

/// E3: the error type RFC 6120 §8.3.3 gives the condition (modify, cancel, auth or wait).
ErrorType error_type(Condition condition);

/// A stanza error to send to XMPP: condition, human text, and for gone /
/// redirect the new address (an xmpp: URI the bridge maps from a SIP Contact).
struct XmppError {
    Condition condition = Condition::undefined_condition;
    std::string text;              ///< safe for <text>: valid UTF-8, no controls; may be empty
    std::string alternate_address; ///< gone / redirect only; empty when unknown
    bool operator==(const XmppError&) const = default;
};

/// A SIP final response to send: code, reason phrase, and the headers a code needs.
struct SipStatus {
    int code = 500;
    std::string reason;  ///< reason phrase: valid UTF-8, no CR, LF or other controls (S3)
    std::string contact; ///< 301 / 302: the SIP URI for the Contact header, else empty
    std::string accept;  ///< 415: the value for the Accept header, else empty
    bool operator==(const SipStatus&) const = default;
};

/// What the bridge knows about a failed XMPP stanza; chooses between E1 alternatives.
struct XmppErrorContext {
    bool full_jid = false;     ///< addressed to a full JID: 405 rather than 501 / 403
    bool global = false;       ///< holds for every device of the user: 6xx where E1 has one
    bool unresolvable = false; ///< remote-server-not-found from a failed lookup: 408, not 404
    std::string sip_contact;   ///< gone / redirect: the new address as a SIP URI
};

/// E1: the SIP final response for an XMPP error. The reason is the XMPP
/// <text> made safe (safe_reason) or, when that is empty, the standard phrase.
SipStatus to_sip_status(Condition condition, std::string_view text = {},
                        const XmppErrorContext& context = {});

/// E2: the condition for a SIP status code (table, then class; see above).
Condition to_xmpp_condition(int status);

/// E2 + E3: the stanza error for a SIP final response; text is "SIP <code> <reason>",
/// the reason made safe (or the standard phrase when the peer sent none).
XmppError to_xmpp_error(int status, std::string_view reason_phrase);

/// Why a MESSAGE never got a final response from the SIP side (M4, M5).
enum class DeliveryFailure {
    timeout,           ///< no final response in time (Timer F)
    unresolvable,      ///< the target domain has no usable DNS records
    unreachable,       ///< every resolved target failed at the transport level
    too_large_for_udp, ///< over 1300 bytes and no congestion-controlled transport offered
};

/// M4 / M5: timeout and unreachable -> remote-server-timeout, unresolvable ->
/// remote-server-not-found, too_large_for_udp -> policy-violation; with a text.
XmppError to_xmpp_error(DeliveryFailure failure);

/// The standard reason phrase of a SIP code (RFC 3261 and extensions), else the class name.
std::string_view default_reason_phrase(int status);

/// Text made safe for a SIP reason phrase or an XMPP <text> (S3): invalid
/// UTF-8 replaced by U+FFFD, line breaks and tabs become spaces, other
/// control characters are dropped, runs of spaces collapse, ends are trimmed,
/// and the result is cut (on a character boundary) to at most max_bytes.
std::string safe_reason(std::string_view text, std::size_t max_bytes = 200);

} // namespace xsgw::translate
