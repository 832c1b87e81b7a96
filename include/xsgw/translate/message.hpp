// XMPP <message/> <-> SIP MESSAGE (STANDARDS.md M1-M12, E4, S3; RFC 7572,
// RFC 3428) and the bodies a MESSAGE may carry: text/plain, message/cpim
// (RFC 3862), text/html (-> XHTML-IM, XEP-0071) and
// application/im-iscomposing+xml (RFC 3994 <-> XEP-0085 chat states).
// Pure value code: no I/O, no gloox, no Sofia. Every parser of outside input
// here (parse_media_type, parse_cpim, parse_iscomposing, html_to_text,
// html_to_xhtml_im, sip_to_xmpp) takes any bytes and returns a value or an
// error, never crashes and never allocates more than a small multiple of its
// input: these are the fuzz targets (S2).
//
// Decisions [ours] where the standards leave a choice:
// - Charsets (M6). Text bodies become UTF-8. Accepted charset parameters:
//   none (taken as UTF-8, which is checked), utf-8, us-ascii (checked to be
//   ASCII), iso-8859-1 / latin1 and windows-1252 (transcoded exactly). Any
//   other charset is refused with 415 + Accept; bytes that are not valid in
//   the declared charset are refused with 400. Nothing invalid is forwarded.
// - Bodies towards XMPP: CRLF and a lone CR become LF; code points XML 1.0
//   cannot carry (C0 controls other than TAB, LF, CR; U+FFFE, U+FFFF) are
//   dropped, since no reader could see them and a stanza cannot hold them.
// - XMPP -> SIP sends text/plain;charset=UTF-8 only (M1). An XHTML-IM part is
//   not sent: XEP-0071 makes it mean the same as the body.
// - Chat states (M8). A message with a body carries its own meaning; its chat
//   state is not sent (RFC 3994: a received message ends "active"). Alone:
//   composing -> isComposing active (refresh 120 s); active, inactive, paused
//   and gone -> idle (gone is not in M8's list; idle is what ends the peer's
//   typing indicator). isComposing active -> composing; idle -> paused (RFC
//   3994 sends idle only after active, i.e. "stopped composing", which is
//   XEP-0085 paused). These functions keep no state: the bridge should not
//   send idle twice in a row to the same peer (RFC 3994 §4).
// - A SIP chat-state notification becomes a body-less XMPP message of type
//   chat whatever SipToXmppOptions::type says: it is no content, and clients
//   may show a body-less message of type normal as an empty message.
// - text/html (M6). The plain body is the text with tags stripped, entities
//   decoded, <br> a newline, block elements (p, div, li, headings, ...) on
//   their own lines, list items prefixed, and a link written as
//   "label (href)" when the label is not the address. XHTML-IM is added only
//   when it is worth it and can be made well-formed within XEP-0071's
//   recommended profile: a, blockquote, br, cite, em, li, ol, p, span,
//   strong, ul; style limited to the ten recommended properties; href only
//   with schemes http, https, mailto, xmpp, sip, sips, tel. Other elements are
//   mapped (b -> strong, i -> em, u / s / font / code / headings -> span or p
//   with a style) or unwrapped; script, style, head and the like are dropped
//   with their content; images are replaced by their alt text (no fetches,
//   no presence leaks, XEP-0071 §9). It is omitted when no formatting
//   survives, when the markup is cut off (an unterminated tag or comment),
//   when nesting is deeper than 32, or when the result exceeds the limit.
// - message/cpim (M6). The CPIM headers are parsed (RFC 3862 §3, escapes
//   decoded); a Require header naming anything other than the headers of
//   RFC 3862 §4 is refused with 400; the inner content may be text/plain,
//   text/html or application/im-iscomposing+xml with a Content-Transfer-
//   Encoding of 7bit, 8bit or binary (else 415). The CPIM Subject is used
//   when the SIP request has none. CPIM From / To are not trusted for
//   routing: the SIP From and Request-URI decide.
// - A SIP MESSAGE with an empty body (or no text after conversion) is refused
//   with 400: there is nothing to deliver. A body without Content-Type is
//   taken as text/plain (robustness: it is still checked as UTF-8).
// - Thread <-> Call-ID (M1). Thread -> Call-ID keeps the characters
//   A-Z a-z 0-9 - . ! * _ + ~ ' ` ( ) and writes every other byte as %HH, so
//   the result is a SIP `word` (RFC 3261 §25.1); past 128 bytes it is cut and
//   ends in a hash of the whole thread. The bridge may append "@host".
//   Call-ID -> thread is the Call-ID as it is when it is clean UTF-8 without
//   controls, else no thread.
#pragma once

#include "xsgw/translate/errors.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace xsgw::translate {

// ---------------------------------------------------------------------------
// Value types

/// The type attribute of an XMPP message (RFC 6121 §5.2.2).
enum class MessageType { normal, chat, headline, groupchat, error };

/// The attribute value, e.g. "chat".
std::string_view to_string(MessageType type);

/// The type for an attribute value; "" (absent) is normal, an unknown value is empty.
std::optional<MessageType> parse_message_type(std::string_view text);

/// The XEP-0085 chat states.
enum class ChatState { active, composing, paused, inactive, gone };

/// The element name, e.g. "composing".
std::string_view to_string(ChatState state);

/// The chat state for an element name; empty when it is none of the five.
std::optional<ChatState> parse_chat_state(std::string_view name);

/// An XMPP message as the xmpp area reads or writes it (one body, one subject).
struct XmppMessage {
    std::string id;
    std::string from;
    std::string to;
    MessageType type = MessageType::normal;
    std::string body;                    ///< <body/> text; empty means no body
    std::string subject;                 ///< <subject/> text; empty means none
    std::string thread;                  ///< <thread/> text; empty means none
    std::string lang;                    ///< xml:lang of the stanza; empty means none
    std::optional<ChatState> chat_state; ///< XEP-0085 element, if any
    bool receipt_request = false;        ///< XEP-0184 <request/> present
    std::string receipt_for;             ///< XEP-0184 <received id=.../>: the id it acknowledges
    std::string xhtml; ///< XEP-0071: inner XML of the XHTML <body>, well-formed; may be empty
    bool operator==(const XmppMessage&) const = default;
};

/// A SIP MESSAGE to send: body and the header values that come from the stanza.
/// Every header value is single-line, valid UTF-8, free of controls (S3).
struct SipMessageOut {
    std::string content_type;     ///< full Content-Type header value
    std::string body;             ///< body bytes
    std::string subject;          ///< Subject header value; empty: no header
    std::string call_id_hint;     ///< from the thread, SIP `word` syntax; empty: any Call-ID
    std::string content_language; ///< Content-Language value; empty: no header
    /// True for a chat-state notification: a failure of it is not reported to
    /// the XMPP sender (a peer without RFC 3994 support answers 415).
    bool notification = false;
    bool operator==(const SipMessageOut&) const = default;
};

/// A SIP MESSAGE as received: the header values and the body, none of them trusted.
struct SipMessageIn {
    std::string content_type;     ///< full Content-Type header value; may be empty
    std::string body;             ///< body bytes
    std::string subject;          ///< Subject header value; may be empty
    std::string content_language; ///< Content-Language header value; may be empty
    std::string call_id;          ///< Call-ID header value
};

/// Size limits applied in both directions (M4, S5).
struct Limits {
    std::size_t max_body_bytes = std::size_t{64} * 1024; ///< a larger body: policy-violation / 413
    std::size_t max_subject_bytes = 1024; ///< a larger subject: policy-violation / 413
};

/// M4: a MESSAGE request larger than this needs a congestion-controlled transport (RFC 3428 §8).
inline constexpr std::size_t congestion_safe_request_bytes = 1300;

/// The Content-Type sent for every text MESSAGE (M1).
inline constexpr std::string_view text_plain_utf8 = "text/plain;charset=UTF-8";

/// The Content-Type of RFC 3994 notifications.
inline constexpr std::string_view iscomposing_type = "application/im-iscomposing+xml";

/// The Accept header value of a 415: the content types sip_to_xmpp takes (M6).
inline constexpr std::string_view accepted_content_types =
    "text/plain, text/html, message/cpim, application/im-iscomposing+xml";

/// Why xmpp_to_sip produced no MESSAGE: a normal outcome, not an error to report.
enum class NoMessage {
    no_content,   ///< M3: no body and no chat state worth sending (receipts, empty bodies)
    error_stanza, ///< E4: type='error' is never forwarded and never answered with an error
};

/// The outcome of xmpp_to_sip when nothing is refused.
using SipSend = std::variant<SipMessageOut, NoMessage>;

/// How sip_to_xmpp types the messages it makes (M7).
struct SipToXmppOptions {
    MessageType type = MessageType::chat; ///< chat (default) or normal (RFC 7572 §5)
    /// Call-ID -> <thread/> (RFC 7572). SIP clients usually make a new Call-ID
    /// per MESSAGE, so each message then carries its own thread.
    bool call_id_as_thread = true;
};

// ---------------------------------------------------------------------------
// The two directions

/// XMPP -> SIP (M1, M3, M8, M11, E4, S3). Returns a MESSAGE, a NoMessage, or
/// the stanza error to send back: groupchat -> feature-not-implemented (M11),
/// body or subject over the limits -> policy-violation, a body that is not
/// valid UTF-8 -> bad-request. from / to / id are not looked at: addressing
/// is the bridge's work.
Result<SipSend, XmppError> xmpp_to_sip(const XmppMessage& message, const Limits& limits = {});

/// SIP -> XMPP (M1, M6, M7, M8, S3). Returns the message with body, subject,
/// thread, lang, chat_state and xhtml filled (id, from, to left empty for the
/// bridge), or the response to send: 413 over the limits, 415 + Accept for a
/// content type or charset the gateway cannot carry, 400 for malformed or
/// empty content.
Result<XmppMessage, SipStatus> sip_to_xmpp(const SipMessageIn& message,
                                           const SipToXmppOptions& options = {},
                                           const Limits& limits = {});

/// M9: the XEP-0184 <received/> answer owed for a message the gateway sent on
/// as a MESSAGE, given the SIP final status: only for status 200 (never 202,
/// which only says a server took it), only when a receipt was requested on a
/// message with a body and an id. from / to are swapped, id is left empty.
std::optional<XmppMessage> receipt_for_sip_response(const XmppMessage& sent, int status);

/// M12: the short text MESSAGE that tells a SIP sender an XMPP error bounced
/// a message it had sent (it had already been answered 202). Marked as a
/// notification: its own failure must not produce another notice (S6).
SipMessageOut sip_notice_for_xmpp_error(const XmppError& error);

// ---------------------------------------------------------------------------
// Header values (S3)

/// A header value made safe (S3): invalid UTF-8 -> U+FFFD, CR, LF, TAB and
/// other line breaks -> space, other C0 / C1 controls and DEL dropped, spaces
/// collapsed, ends trimmed, cut on a character boundary to max_bytes.
std::string header_safe_text(std::string_view text, std::size_t max_bytes);

/// The Call-ID hint for an XMPP thread (M1): SIP `word` syntax, at most 128 bytes.
std::string call_id_from_thread(std::string_view thread);

/// The XMPP thread for a SIP Call-ID: itself when clean, else empty.
std::string thread_from_call_id(std::string_view call_id);

/// True for a language tag in the shape RFC 5646 / RFC 3261 allow:
/// 1-8 letters, then "-" and 1-8 letters or digits, repeated.
bool is_language_tag(std::string_view tag);

/// The Content-Language value for an xml:lang (M1); empty when not a valid tag.
std::string content_language_from_lang(std::string_view xml_lang);

/// The xml:lang for a Content-Language value (M1): its first valid tag, or empty.
std::string lang_from_content_language(std::string_view header);

// ---------------------------------------------------------------------------
// Text

/// True when the bytes are well-formed UTF-8: no overlong forms, no
/// surrogates, nothing above U+10FFFF, no truncated sequences.
bool is_valid_utf8(std::string_view text);

/// Decodes the UTF-8 character at text[pos] and moves pos past it; on a
/// malformed sequence returns empty and moves pos on by one byte.
std::optional<char32_t> next_code_point(std::string_view text, std::size_t& pos);

/// Appends the UTF-8 encoding of a code point (surrogates and values above
/// U+10FFFF become U+FFFD).
void append_utf8(std::string& out, char32_t code_point);

/// The body made fit for an XMPP stanza: CRLF / CR -> LF, code points XML 1.0
/// cannot carry dropped. The input must be valid UTF-8.
std::string xml_safe_text(std::string_view utf8);

/// Bytes in the named charset (case-insensitive; empty = UTF-8) as UTF-8.
/// Empty result when the charset is not supported (see top) or the bytes are
/// not valid in it; supported tells which of the two it was.
std::optional<std::string> decode_charset(std::string_view bytes, std::string_view charset,
                                          bool* supported = nullptr);

// ---------------------------------------------------------------------------
// Content-Type

/// A parsed media type: type and subtype lowercase, parameters in order with
/// lowercase names and unquoted values.
struct MediaType {
    std::string type;
    std::string subtype;
    std::vector<std::pair<std::string, std::string>> params;
    /// The value of the named parameter (name case-insensitive), empty if absent.
    std::string param(std::string_view name) const;
    /// True when type/subtype equals the given lowercase "type/subtype".
    bool is(std::string_view type_slash_subtype) const;
    bool operator==(const MediaType&) const = default;
};

/// Parses a Content-Type value (RFC 3261 §20.15 / RFC 2045: token "/" token
/// *(";" token "=" (token / quoted-string))); empty when malformed.
std::optional<MediaType> parse_media_type(std::string_view header);

// ---------------------------------------------------------------------------
// Message/CPIM (RFC 3862)

/// Why a body could not be parsed; reason is safe to quote in a reason phrase.
struct ParseError {
    std::string reason;
    bool operator==(const ParseError&) const = default;
};

/// One CPIM message header, with its value unescaped (RFC 3862 §3.2).
struct CpimHeader {
    std::string name;  ///< as written, with its namespace prefix, e.g. "imdn.Message-ID"
    std::string lang;  ///< the ;lang= parameter, if any
    std::string value; ///< decoded value, valid UTF-8
    bool operator==(const CpimHeader&) const = default;
};

/// A parsed message/cpim body: its message headers and the MIME object inside.
struct CpimMessage {
    std::vector<CpimHeader> headers;       ///< every message header in order
    std::string from;                      ///< From value, e.g. "Alice <im:alice@example.org>"
    std::string to;                        ///< first To value
    std::string datetime;                  ///< DateTime value (RFC 3339), unchecked
    std::string subject;                   ///< Subject without ;lang, else the first Subject
    std::string subject_lang;              ///< the ;lang of that Subject
    std::string content_type;              ///< inner Content-Type value; empty if absent
    std::string content_transfer_encoding; ///< inner Content-Transfer-Encoding, lowercase
    std::vector<std::pair<std::string, std::string>> content_headers; ///< all inner MIME headers
    std::string content;                                              ///< the inner content bytes
    bool operator==(const CpimMessage&) const = default;
};

/// Parses a message/cpim body. Lines end in CRLF (a bare LF is tolerated);
/// message headers are "Name:[;param]* value" without folding, MIME headers
/// may be folded. Refuses headers that are not valid UTF-8 or hold controls,
/// a missing blank line, and a Require header naming a header outside RFC
/// 3862 §4 (From, To, cc, DateTime, Subject, NS, Require).
Result<CpimMessage, ParseError> parse_cpim(std::string_view body);

// ---------------------------------------------------------------------------
// isComposing (RFC 3994)

/// The two RFC 3994 states.
enum class ComposingState { idle, active };

/// RFC 3994's default active-state timeout when no <refresh> is given, in seconds.
inline constexpr unsigned default_composing_refresh = 120;

/// A parsed or to-be-written isComposing document.
struct IsComposing {
    ComposingState state = ComposingState::idle;
    std::string content_type;        ///< <contenttype>, e.g. "text/plain"; may be empty
    std::optional<unsigned> refresh; ///< <refresh> seconds, positive
    std::string lastactive;          ///< <lastactive> (RFC 3339 date-time) as written; may be empty
    bool operator==(const IsComposing&) const = default;
};

/// Parses an application/im-iscomposing+xml document with expat: root
/// {urn:ietf:params:xml:ns:im-iscomposing}isComposing with one <state> of
/// idle or active; <refresh> a positive integer; a <lastactive> that is no
/// date-time and unknown elements in other namespaces are ignored. Refuses a
/// DOCTYPE (no entity expansion), malformed XML and nesting deeper than 16.
Result<IsComposing, ParseError> parse_iscomposing(std::string_view xml);

/// Writes an isComposing document (UTF-8, with XML declaration).
std::string make_iscomposing(const IsComposing& composing);

/// M8: the isComposing state for a chat state (composing -> active, else idle).
ComposingState composing_state_for(ChatState state);

/// M8: the chat state for an isComposing state (active -> composing, idle -> paused).
ChatState chat_state_for(ComposingState state);

/// How long an "active" indication lasts without a refresh (RFC 3994 §4): refresh or 120 s.
unsigned active_timeout_seconds(const IsComposing& composing);

// ---------------------------------------------------------------------------
// HTML (text/html bodies)

/// The plain-text version of an HTML body (see top). Input must be UTF-8.
std::string html_to_text(std::string_view html);

/// XEP-0071 XHTML-IM for an HTML body: the inner XML of the XHTML <body>,
/// well-formed (checked with expat), or empty when omitted (see top). Input
/// must be UTF-8.
std::optional<std::string> html_to_xhtml_im(std::string_view html,
                                            std::size_t max_bytes = std::size_t{64} * 1024);

/// True when text is well-formed XML content (elements, text, character
/// references; no DOCTYPE) once wrapped in an XHTML <body>.
bool is_well_formed_xhtml_body(std::string_view inner_xml);

} // namespace xsgw::translate
