// gloox Jingle elements <-> translate's Jingle values (issue 8, the XML side).
// XEP-0166 (sessions), XEP-0167 (RTP description, session-info), XEP-0176 (ICE-UDP),
// XEP-0177 (raw UDP), XEP-0293 (rtcp-fb), XEP-0320 (DTLS fingerprints), XEP-0353 (JMI).
//
// Decisions [ours]:
// - Reading looks at the element only, never at the stanza's type: the bridge routes
//   iq results, errors and message bounces before it asks for the payload.
// - An action that is not one of XEP-0166's fifteen is bad-request (XEP-0166 §7.2); one
//   of them that the bridge does not handle is JingleAction::other, its name kept.
// - Malformed means bad-request (type modify) with a text saying what: no sid, no or an
//   undefined action, a content without name or with a creator / senders that is none of
//   XEP-0166's values, a payload-type without a valid id (0..127), a number that is not
//   all digits or out of its bounds (channels 1..255, component 1..256, ports 0..65535,
//   priority, clockrate, ptime... 32 bits), a candidate without ip or port, a crypto
//   without suite, key-params or a tag of 1 to 9 digits, a fingerprint without hash or
//   value, a boolean that is none of true/false/1/0. An empty attribute counts as a
//   missing one. A missing creator reads as initiator; a missing senders as both.
// - Everything that ends up as one SDP token (names, ip, foundation, type, protocol,
//   ufrag, pwd, hash, setup, suite, key-params, media...) must be printable ASCII or
//   UTF-8 without white space; free text (parameter values, crypto session-params, the
//   fingerprint) must hold no control character: a CR LF in an attribute would otherwise
//   become a line of the SDP we write. A violation is bad-request too. reason_text and
//   initiator / responder are kept as written (no line breaks in the JIDs): whoever puts
//   the text in a SIP header must quote it.
// - Namespaces are XML's: a child without xmlns is in its parent's (gloox's xmlns()
//   only sees the element's own declaration).
// - A content is kept in description.contents when it has an RTP description
//   (urn:xmpp:jingle:apps:rtp:1) or none at all, and an ICE-UDP or raw-UDP transport or
//   none at all. A content with only a transport (transport-info) has media empty and no
//   payloads: the bridge merges its candidates into the session's content of that name.
//   A content without transport has a default (empty raw-UDP) transport. Any other
//   content is refused (its name in refused_contents).
// - Unknown children and attributes are ignored (XEP-0339 sources, XEP-0294 header
//   extensions, bandwidth, remote-candidate, a second fingerprint...). Of several
//   descriptions or transports in a content, the first is the one.
// - The reason is the first child of <reason/> in the Jingle namespace other than
//   <text/> (alternative-session's <sid/> is lost); written only when not empty.
// - session-info: the first child in urn:xmpp:jingle:apps:rtp:info:1 with one of the six
//   names is info; any other payload sets unknown_info (to answer unsupported-info).
//   None of the two: a session ping. mute / unmute lose their creator and name.
// - Writing omits empty optional attributes (so a parameter without name, like
//   telephone-event's "0-15", is <parameter value='0-15'/>), channels when 1, senders
//   when both, a missing ptime / maxptime; raw-UDP candidates only carry component,
//   generation, id, ip, port and type; ufrag / pwd only belong to ICE; a content with
//   media empty is written without description (transport-info). refused_contents,
//   refused_for_transport and unknown_info are what was read and are never written.
#pragma once

#include "xsgw/expected.hpp"
#include "xsgw/translate/jingle.hpp"
#include "xsgw/xmpp/stanza.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// XEP-0166 actions the call bridge handles; other: any other action (answered
/// feature-not-implemented / unsupported-info by the bridge).
enum class JingleAction {
    session_initiate,
    session_accept,
    session_info,
    session_terminate,
    transport_info,
    other
};

/// One <jingle xmlns='urn:xmpp:jingle:1'/> element as values.
struct JingleIq {
    JingleAction action = JingleAction::other;
    std::string action_name; ///< as received / to write (set from action when writing if empty)
    std::string sid;
    std::string initiator;                    ///< attribute; empty: none
    std::string responder;                    ///< attribute; empty: none
    translate::JingleDescription description; ///< the RTP contents understood
    /// names of contents that were present but not usable: description not
    /// urn:xmpp:jingle:apps:rtp:1, or transport neither urn:xmpp:jingle:transports:ice-udp:1
    /// nor urn:xmpp:jingle:transports:raw-udp:1
    std::vector<std::string> refused_contents;
    bool refused_for_transport = false; ///< at least one was refused only for its transport
    std::string reason;      ///< <reason> condition element name (e.g. "busy"); empty: none
    std::string reason_text; ///< <reason><text>
    /// session-info payload element name (ringing, active, hold, unhold, mute, unmute) in
    /// urn:xmpp:jingle:apps:rtp:info:1; empty: none
    std::string info;
    /// session-info carried a payload that is not one of info's (read only: never
    /// written); with info empty the bridge answers unsupported-info.
    bool unknown_info = false;
    bool operator==(const JingleIq&) const = default;
};

/// The <jingle/> child of an iq (of type set): nullopt when it has none; an error
/// (bad-request with a text) when it is malformed: no sid, no/unknown-syntax action, a
/// content without name, a payload-type without a valid id (0..127), a candidate with a bad
/// port...
std::optional<Expected<JingleIq, xmpp::StanzaError>> read_jingle(const gloox::Tag& iq);

/// An iq of type set from `from` to `to` with id `id` carrying the element for jingle
/// (caller owns it).
gloox::Tag* make_jingle_iq(const std::string& from, const std::string& to, const std::string& id,
                           const JingleIq& jingle);

/// A Jingle error reply (XEP-0166 §11): the stanza error plus an element of
/// urn:xmpp:jingle:errors:1 (unknown-session, out-of-order, tie-break, unsupported-info);
/// empty jingle_condition: none. Like xmpp::make_error_reply (nullptr for an error stanza).
gloox::Tag* make_jingle_error(const gloox::Tag& request, std::string_view domain,
                              const xmpp::StanzaError& error, std::string_view jingle_condition);

/// XEP-0353 Jingle Message Initiation (urn:xmpp:jingle-message:0).
enum class JmiKind { propose, retract, accept, proceed, reject, ringing, finish };

/// One JMI element as values.
struct JingleMessage {
    JmiKind kind = JmiKind::propose;
    std::string id; ///< the session id it is about
    /// propose: the media of its <description xmlns='urn:xmpp:jingle:apps:rtp:1'
    /// media='...'/> children
    std::vector<std::string> media;
    std::string reason; ///< <reason xmlns='urn:xmpp:jingle:1'> condition; empty: none
    std::string reason_text;
    bool operator==(const JingleMessage&) const = default;
};

/// The JMI element of a message stanza; nullopt: none (or malformed: no id).
std::optional<JingleMessage> read_jingle_message(const gloox::Tag& message);

/// A message stanza (type chat, with <store xmlns='urn:xmpp:hints'/> so servers
/// archive/carbon it) carrying the JMI element; caller owns it.
gloox::Tag* make_jingle_message(const std::string& from, const std::string& to,
                                const std::string& id, const JingleMessage& jmi);

/// The action's XML name, e.g. "session-initiate"; and back (other for unknown).
/// other has no name: an empty view.
std::string_view to_string(JingleAction action);
/// The action for an XML name; other for any name but the five handled ones.
JingleAction parse_jingle_action(std::string_view name);

/// The JMI element's name, e.g. "propose"; and back (nullopt for unknown).
std::string_view to_string(JmiKind kind);
/// The JMI kind for an element name; nullopt for anything else.
std::optional<JmiKind> parse_jmi_kind(std::string_view name);

/// True for the fifteen actions XEP-0166 §7.2 defines (handled or not).
bool is_jingle_action(std::string_view name);

} // namespace xsgw::bridge
