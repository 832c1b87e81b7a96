// Jingle RTP sessions <-> SDP offer/answer (issue 8 part 3).
// Jingle: XEP-0166 (sessions), XEP-0167 (RTP description), XEP-0176 (ICE-UDP),
// XEP-0177 (raw UDP), XEP-0293 (rtcp-fb), XEP-0320 (DTLS-SRTP fingerprints).
// SDP: RFC 4566 / 8866, RFC 3264 (offer/answer), RFC 3551 (static payload
// types), RFC 3605 (a=rtcp), RFC 4568 (a=crypto), RFC 4585 (a=rtcp-fb),
// RFC 5761 (a=rtcp-mux), RFC 8839 (ICE attributes), RFC 5763/8842 (a=fingerprint,
// a=setup), RFC 5888 (a=mid).
// Pure value code: no I/O, no gloox, no Sofia. sdp_to_jingle takes any bytes
// and returns a value or an error, never crashes: it is a fuzz target. The
// bridge turns Jingle XML into these values and back (src/bridge/stanza_jingle).
//
// The gateway carries signalling only: it never filters codecs nor touches
// addresses; media flows between the endpoints. What one side says that the
// other cannot express is dropped (and the caller may log it); what leaves
// nothing usable is an error with the SIP status and the Jingle reason to
// answer with.
//
// Decisions [ours] where the standards leave a choice:
// - Reading, the body. Lines end LF or CRLF; trailing spaces and tabs are
//   ignored, empty lines skipped. Malformed, answered 400 and
//   failed-application: over max_bytes, a NUL or a CR inside a line, a line
//   not of the form `<letter>=`, a first line other than v=0, an m= line with
//   fewer than four fields, a port that is not 0..65535 (`/<count>` after it
//   is ignored) or a media, proto or fmt that is not printable ASCII. Nothing
//   usable (no m-line, or every one refused) is 488 unsupported-applications.
//   o=, s= and t= are not checked (o=: its address, if any, is only logged).
// - Reading, m-lines. Usable: media exactly `audio` or `video`, proto one of
//   the six RTP ones (compared ASCII case-insensitively), port not 0, at least
//   one payload type left, and an address: ICE, or a c= (media or session
//   level). Anything else is a refused slot (port 0 with a=bundle-only is not
//   supported: it is refused too).
// - Every slot's `refused` holds the line to answer it with when it is not
//   accepted: `m=<media> 0 <proto> <fmt...>` as offered, for usable m-lines
//   too; a slot is refused when its `content` is empty.
// - Payload types: fmt values that are not numbers 0..127 and repeated ones
//   are dropped. a=rtpmap gives name/clock[/channels] (channels 0 or a clock
//   that is not a number: the a=rtpmap is ignored); without one, the RFC 3551
//   table names static types; any other type without a=rtpmap is dropped. The
//   first a=rtpmap / a=fmtp of a type counts. a=fmtp is split on ';', each part
//   trimmed of spaces and tabs, `k=v` split at the first '=', a part without
//   '=' has an empty name, a part with '=' and an empty name is dropped. a=ptime
//   / a=maxptime (media level) go to every payload; written from the first
//   payload that has one.
// - a=rtcp-fb:<pt> <type> [<rest>]: type is the first word, subtype the rest
//   of the line trimmed (so `ccm tmmbr smaxpr=120` and `trr-int 100` survive);
//   for a type not in the m-line it is ignored; `*` is content feedback.
// - Encryption: a=crypto on RTP/SAVP(F) is required, on RTP/AVP(F) optional
//   (best-effort SRTP, as baresip's mediaenc=srtp writes it), on UDP/TLS/...
//   optional, and so it is next to an a=fingerprint whatever the proto (DTLS
//   keys the media; the proto written is then UDP/TLS/RTP/SAVPF, which reads
//   back the same). Written: UDP/TLS/RTP/SAVPF if a
//   fingerprint, else RTP/SAVP(F) if crypto is required, else RTP/AVP(F); F
//   when any payload or the content has feedback. A required encryption
//   without a usable a=crypto (and no fingerprint) is an error.
// - Answers (answer_to): an accepted slot is written with the offer's proto
//   (RFC 3264 §6: the answer keeps the transport), taken from its `refused`
//   line; a slot whose content the answer lacks (or a repeated one) is written
//   as its `refused` line, or `m=audio 0 RTP/AVP 0` if that is not a valid
//   m-line (hand-made slots); contents not in the layout are dropped.
// - Names: a=mid when it is a printable token; otherwise the media name, then
//   `<media>-2`, `<media>-3`... skipping names already taken. The same a=mid on
//   two usable m-lines is malformed (RFC 5888). Contents read from SDP have
//   creator `initiator`. Written: a=mid always; a content name that is not a
//   printable token, or a repeated one, is an error.
// - Direction: media level over session level over sendrecv. For an SDP by
//   the initiator sendonly = Senders::initiator and recvonly = responder; by
//   the responder the other way round. Always written.
// - Transport. ICE when a=ice-ufrag is given (media or session level): ufrag,
//   pwd and every a=candidate over UDP (any case) of type host, srflx, prflx or
//   relay with a port other than 0; raddr/rport kept only together (rport
//   alone: ignored), generation and network-id read, other extension pairs
//   ignored; ids `<name>-<n>` from 1. c= and m= port are then ignored.
//   Otherwise raw UDP: component 1 = c= address + m= port, component 2 =
//   a=rtcp port (and address when given) or port + 1 (when <= 65535), none
//   with a=rtcp-mux; ids `<name>-1`, `<name>-2`; other fields are defaults.
// - Writing ICE: m= port and c= from the default candidate: the component 1
//   candidates, relay first, then srflx / prflx, then host, highest priority
//   first, then the earliest; a=rtcp (without rtcp-mux) from the best
//   component 2 candidate of the same type. No candidate: port 9 and c=IN IP4
//   0.0.0.0 (RFC 8840). a=candidate for every candidate, with generation and,
//   when not 0, network-id. An empty ufrag or pwd is an error. Writing raw
//   UDP: c= and m= from the first component 1 candidate, a=rtcp (with the
//   address when it differs) from the first component 2 one unless rtcp-mux;
//   no component 1 candidate is an error. A session-level c= repeats the
//   first m-line's, for parsers that want one for port-0 m-lines.
// - a=fingerprint (the first one) + a=setup (actpass, active, passive,
//   holdconn; anything else or none: actpass). A fingerprint that cannot be
//   written is an error (no silent downgrade); a setup that cannot is left
//   out (reads back as actpass).
// - Addresses (c=, a=rtcp, a=candidate, raddr, o=) are printable ASCII
//   without spaces or '/': c= drops a /TTL or /count (IP4 and IP6), other
//   addresses with a '/' are not read and not written.
// - Values from Jingle: tokens (names, ids, addresses, suites, keys, ufrag,
//   pwd, hashes) must be printable ASCII without spaces; free text (fmtp
//   values and names, rtcp-fb subtypes, crypto session params) printable
//   ASCII without leading or trailing space, and fmtp names without '=' or
//   ';', values without ';'. An item that fails is left out: a payload
//   parameter, a feedback, a crypto line, a candidate, a whole payload (bad
//   name, id over 127, repeated id, no name or clock for a non-static id).
//   What the m-line cannot do without is an error: the content name, the
//   media (audio or video), the last payload, the raw UDP address, the ICE
//   ufrag and pwd. jingle_to_sdp errors are 488 failed-application. An
//   o= username or address that is not a token becomes `-` / 127.0.0.1.
//
// Round trip: sdp_to_jingle(jingle_to_sdp(d)) == d for descriptions in the
// form sdp_to_jingle gives: creator initiator, payloads with names, clocks and
// channels >= 1 and the same ptime / maxptime, crypto_required only with crypto
// and no fingerprint, a setup among the four, ICE candidates with the ids
// `<name>-<n>` and UDP in lower case, raw UDP candidates of component 1 and
// (without rtcp-mux) 2 with only id, ip and port set.
#pragma once

#include "xsgw/expected.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xsgw::translate {

/// XEP-0293 <rtcp-fb type subtype> <-> a=rtcp-fb:<pt|*> type [subtype] (RFC 4585).
struct RtcpFeedback {
    std::string type;    ///< e.g. "nack", "ccm", "goog-remb"
    std::string subtype; ///< e.g. "pli", "fir"; empty: none
    bool operator==(const RtcpFeedback&) const = default;
};

/// XEP-0167 <payload-type> <-> a=rtpmap / a=fmtp / a=rtcp-fb of one payload type.
struct JinglePayload {
    unsigned id = 0;                  ///< 0..127
    std::string name;                 ///< encoding name as written, e.g. "opus", "PCMU"
    std::uint32_t clockrate = 0;      ///< 0: not given
    std::uint32_t channels = 1;       ///< 1 is not written in either protocol
    std::optional<unsigned> ptime;    ///< a=ptime (media level in SDP)
    std::optional<unsigned> maxptime; ///< a=maxptime (media level in SDP)
    /// fmtp parameters in order: "name=value" <-> <parameter name value>; a token without
    /// '=' (telephone-event's "0-15") has an empty name.
    std::vector<std::pair<std::string, std::string>> parameters;
    std::vector<RtcpFeedback> feedback; ///< a=rtcp-fb:<id>
    bool operator==(const JinglePayload&) const = default;
};

/// XEP-0167 <crypto> (SDES-SRTP) <-> a=crypto (RFC 4568).
struct JingleCrypto {
    unsigned tag = 1;
    std::string suite;          ///< e.g. AES_CM_128_HMAC_SHA1_80
    std::string key_params;     ///< e.g. inline:...
    std::string session_params; ///< empty: none
    bool operator==(const JingleCrypto&) const = default;
};

/// XEP-0176 / XEP-0177 <candidate> <-> a=candidate (RFC 8839) or c= / m= / a=rtcp.
struct JingleCandidate {
    unsigned component = 1; ///< 1 RTP, 2 RTCP
    std::string foundation; ///< ICE only
    unsigned generation = 0;
    std::string id;       ///< Jingle candidate id (made up when read from SDP)
    std::string ip;       ///< IPv4 or IPv6 literal, or a host name (RFC 8839 allows FQDN)
    unsigned network = 0; ///< ICE only
    std::uint16_t port = 0;
    std::uint32_t priority = 0; ///< ICE only
    std::string protocol = "udp";
    std::string type = "host"; ///< ICE: host, srflx, prflx, relay
    std::string rel_addr;      ///< ICE raddr; empty: none
    std::uint16_t rel_port = 0;
    bool operator==(const JingleCandidate&) const = default;
};

/// XEP-0320 <fingerprint hash setup> <-> a=fingerprint + a=setup (RFC 8122, 8842).
struct JingleFingerprint {
    std::string hash;  ///< e.g. "sha-256"
    std::string setup; ///< actpass, active, passive, holdconn
    std::string value; ///< AB:CD:...
    bool operator==(const JingleFingerprint&) const = default;
};

/// Which Jingle transport a content uses: ICE-UDP (XEP-0176) or raw UDP (XEP-0177).
enum class TransportKind { ice_udp, raw_udp };

/// The <transport> of one content, with its XEP-0320 fingerprint.
struct JingleTransport {
    TransportKind kind = TransportKind::raw_udp;
    std::string ufrag; ///< ICE only
    std::string pwd;   ///< ICE only
    std::vector<JingleCandidate> candidates;
    std::optional<JingleFingerprint> fingerprint;
    bool operator==(const JingleTransport&) const = default;
};

/// XEP-0166 senders, from the session's point of view.
enum class Senders { both, initiator, responder, none };

/// One Jingle content with an RTP description <-> one m-line.
struct JingleContent {
    std::string creator = "initiator";
    std::string name; ///< content name <-> a=mid (SDP without a=mid: the media name)
    Senders senders = Senders::both;
    std::string media;                   ///< "audio" or "video"
    std::vector<JinglePayload> payloads; ///< in preference order
    std::vector<RtcpFeedback> feedback;  ///< for every payload (a=rtcp-fb:*)
    std::vector<JingleCrypto> crypto;    ///< SDES; empty: none
    bool crypto_required = false;        ///< <encryption required='1'>
    bool rtcp_mux = false;
    JingleTransport transport;
    bool operator==(const JingleContent&) const = default;
};

/// The RTP contents of a session-initiate / session-accept (or one SDP).
struct JingleDescription {
    std::vector<JingleContent> contents;
    bool operator==(const JingleDescription&) const = default;
};

/// Who wrote (or will write) an SDP body: the session's initiator (an offer from
/// the caller) or its responder (the answer). Needed to map senders <-> direction.
enum class SdpAuthor { initiator, responder };

/// The m-lines of an SDP offer in order, so that the answer has the same ones
/// (RFC 3264 §6): each slot is a content, or an m-line we could not map, to be
/// answered with port 0.
struct SdpSlot {
    std::string content; ///< the content's name; empty for a refused m-line
    /// the m-line to answer this slot with when it is not accepted: "m=<media> 0 <proto> <fmt>"
    /// as offered; set for every slot read from SDP, refused or not (see Decisions)
    std::string refused;
    bool operator==(const SdpSlot&) const = default;
};

/// An SDP body read into Jingle terms.
struct SdpSession {
    JingleDescription description;
    std::vector<SdpSlot> layout; ///< every m-line of the body, in order
    std::string origin_address;  ///< o= unicast address (for logs)
};

/// Why an SDP body or a Jingle description cannot be mapped, and what to answer.
struct CallMappingError {
    int sip_status = 488;                             ///< 400 malformed, 488 nothing usable
    std::string jingle_reason = "failed-application"; ///< XEP-0166 reason element name
    std::string what;                                 ///< for the log and the reason text
};

/// What goes into the o= line (RFC 4566 §5.2).
struct SdpOrigin {
    std::string username = "-";
    std::uint64_t session_id = 0;
    std::uint64_t version = 0;
    std::string address = "127.0.0.1"; ///< IPv4 or IPv6 literal
};

/// The SDP body (CRLF line ends) for a Jingle description written by author.
/// answer_to: when this is an answer, the offer's layout: the m-lines follow it, a
/// content the answer lacks and every refused slot get port 0. Errors: no content, a
/// content without payloads or candidates to put in c= / m=.
Expected<std::string, CallMappingError>
jingle_to_sdp(const JingleDescription& description, SdpAuthor author, const SdpOrigin& origin,
              const std::vector<SdpSlot>* answer_to = nullptr);

/// The Jingle description of an SDP body written by author. m-lines that are not audio
/// or video over RTP (RTP/AVP, RTP/AVPF, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP(F)), have
/// port 0 or no payload type left are refused slots. Errors: not SDP, over max_bytes,
/// no usable m-line.
Expected<SdpSession, CallMappingError> sdp_to_jingle(std::string_view sdp, SdpAuthor author,
                                                     std::size_t max_bytes = std::size_t{64} *
                                                                             1024);

/// The RFC 3551 name, clock rate and channels of a static payload type (0..34) as a
/// payload without ptime, parameters or feedback; empty for unassigned and dynamic ones.
std::optional<JinglePayload> static_payload_type(unsigned id);

/// The XEP-0166 reason for a final SIP failure status of an INVITE: 486/600 busy, 603
/// decline, 487 cancel, 408 timeout, 404/410/604 gone, 415/488/606
/// unsupported-applications, anything else general-error.
std::string_view jingle_reason_for_sip_status(int status);

/// The SIP status for a Jingle reason that ends a call before it was answered: busy
/// 486, decline 603, cancel 487, timeout 408, gone 410, unsupported-applications /
/// unsupported-transports / failed-application / incompatible-parameters /
/// security-error 488, expired 408, anything else (general-error included) 500.
int sip_status_for_jingle_reason(std::string_view reason);

} // namespace xsgw::translate
