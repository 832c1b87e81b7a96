// XMPP presence <-> PIDF with RPID (STANDARDS.md P10, P11; RFC 8048 §7,
// RFC 3863 PIDF, RFC 4480 RPID, RFC 4479 data model).
// Pure value code: no I/O, no gloox, no Sofia. pidf_to_presence takes any
// bytes and returns a value or an error, never crashes: it is a fuzz target.
//
// Decisions [ours] where the standards leave a choice:
// - Tuple ids (P10, P11). A tuple id is an xs:ID, i.e. an NCName. Written:
//   `ID-` + the resource with every byte other than ASCII letters, digits,
//   `-` and `.` written as `_HH` (two upper-case hex digits; `_` itself is
//   `_5F`), so the id is an NCName under every XML and XSD edition and the
//   resource comes back byte for byte. Read: a leading `ID-` is stripped and
//   `_HH` decoded; an id without `ID-` (Kamailio's hashes, baresip's
//   `t4109`) is the resource as it is, and so is an `ID-` id that would not
//   decode to UTF-8 without controls; C0 controls and DEL, which no JID may
//   hold (RFC 7622), are left out of such ids. A resource longer than 1023
//   bytes (RFC 7622 §3.1) is cut on a character boundary. A tuple without id
//   is the bare resource (empty). Resources are not checked against PRECIS
//   beyond that: the bridge makes the JID.
// - One tuple per resource: when two resources (or two tuples) have the same
//   name, the first one counts and the later ones are dropped, in both
//   directions (an id is unique in a document, a resource in a JID).
// - <basic> (RFC 3863 §4.1.4 makes it optional). `open`, compared without
//   surrounding white space and ASCII case-insensitively (as baresip's own
//   watcher does), is available. `closed`, any other value (baresip
//   publishes `unknown`), a missing <basic> and a missing <status> are not
//   available: a state we do not know is not open.
// - <show/> and priority describe an available resource: they are written
//   only for available resources and read only from open tuples (otherwise
//   Show::none and no priority).
// - Show on reading, for each open tuple, first found wins: the embedded
//   jabber:client <show/> (in <status> or directly in the tuple); the RPID
//   <activities> of the tuple itself (in the tuple or in its <status>, where
//   pre-RFC 4479 clients put them); the activities of every <dm:person>
//   together (Kamailio's presence_xml aggregates several PUBLISHes into one
//   document, persons in no useful order: an old device's empty activities
//   must not hide a new device's away). A tuple's own <activities> element
//   decides even when it maps to nothing (baresip's empty
//   <rpid:activities/> means no activity). Several activities: dnd beats xa
//   beats away. Activities outside P11's list (unknown, sleeping,
//   appointment, <other>, ...) give no show.
// - Status on reading, first non-empty wins: the tuple's <note>; a
//   <dm:note> of a <dm:person>; a <note> of the <presence> element. Its
//   language is the note's xml:lang or the nearest ancestor's. Text is kept
//   as it is (xs:string: white space is content).
// - The person on writing (RFC 4479: one person per presentity). Its RPID
//   activity is that of the most available resource: chat > none > away >
//   xa > dnd; ties go to the higher priority (absent counts as 0, RFC 6121
//   §4.7.2.3), then to the earlier resource. Each tuple carries its own
//   resource's <show/> embedded in its <status>, so nothing is lost for
//   readers that know it. No <dm:person> is written when that show has no
//   activity (none, chat) or no resource is available: RPID requires at
//   least one activity inside <activities>.
// - <contact> is written only to carry a priority (PIDF has no other place
//   for one); its URI is the entity: the gateway is where the SIP side reaches
//   every resource of the presentity. Scale: q = p / 127 with 3 decimals
//   ("0.000" .. "1.000"); read back as round(q * 127), which gives every
//   p in 0..127 back exactly. Negative priorities are not mapped (P10). A
//   contact priority that is not a decimal in 0..1 is ignored.
// - Text written: invalid UTF-8 becomes U+FFFD, characters XML 1.0 cannot
//   carry are dropped, `< > & ' "` are escaped, and CR (and TAB / LF in
//   attributes) are written as character references so that they survive.
// - Encoding read: the document is parsed as UTF-8 whatever its declaration
//   says (RFC 3863 §4.1 requires every reader to accept UTF-8; a charset
//   parameter is the bridge's business); bytes that are not UTF-8 are an
//   error. A missing entity attribute is tolerated (it is not needed here).
// - Limits: over max_bytes, nesting deeper than 32, any DOCTYPE or entity
//   declaration (no entity expansion at all) is an error. A document without
//   tuples gives an empty list: the presentity has no available resource.
// - An empty list is written as one closed tuple `ID-` (the bare
//   presentity, offline); it reads back as one unavailable resource "".
//
// Round trip: pidf_to_presence(presence_to_pidf(e, list)) == list for lists
// of distinct resources (UTF-8 without controls, at most 1023 bytes) whose
// unavailable entries have no show and no priority and whose text is valid
// UTF-8 of XML characters. Lossy by design:
// negative priorities (none), a status_lang without status (dropped), the
// empty list (see above).
#pragma once

#include "xsgw/expected.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::translate {

/// The <show/> of an XMPP presence (RFC 6121 §4.7.2.1); none = plain available.
enum class Show { none, away, chat, dnd, xa };

/// The presence of one XMPP resource (one PIDF tuple).
struct ResourcePresence {
    std::string resource;        ///< XMPP resource; empty: the bare JID / no tuple id
    bool available = false;      ///< no type (true) / type='unavailable' (false)
    Show show = Show::none;      ///< meaningful only when available
    std::string status;          ///< <status/> text; empty: none
    std::string status_lang;     ///< its xml:lang; empty: none
    std::optional<int> priority; ///< <priority/>, -128..127; nullopt: none
    bool operator==(const ResourcePresence&) const = default;
};

/// Why a PIDF document could not be read (P11): the caller treats the
/// presentity's state as unknown and logs `what`.
struct PidfError {
    std::string what;
};

/// P10: the PIDF document (application/pidf+xml, UTF-8, with the RPID and
/// jabber:client namespaces declared where used) for a presentity's resources:
/// one tuple per resource with id `ID-<resource>` (made a valid xs:ID),
/// basic open/closed, note from status (xml:lang kept), show embedded as
/// <show xmlns='jabber:client'> and as an RPID activity (away/xa -> away,
/// dnd -> busy), priority 0..127 -> contact priority 0..1 (negative: none).
/// entity is the presentity URI (`pres:` or `sip:`) for the entity attribute.
/// An empty list gives one closed tuple (the presentity is offline).
std::string presence_to_pidf(std::string_view entity,
                             const std::vector<ResourcePresence>& resources);

/// P11: the resources a PIDF document describes, one per tuple: basic
/// open/closed -> available; note -> status (+ xml:lang); embedded
/// jabber:client show first, then RPID activities (away; vacation, holiday ->
/// xa; busy, on-the-phone, meeting -> dnd); tuple id without a leading `ID-`
/// -> resource. Unknown elements and namespaces are ignored. Errors: not
/// well-formed XML, root not {urn:ietf:params:xml:ns:pidf}presence, or larger
/// than max_bytes.
Expected<std::vector<ResourcePresence>, PidfError>
pidf_to_presence(std::string_view body, std::size_t max_bytes = std::size_t{64} * 1024);

// ---------------------------------------------------------------------------
// The pieces of the mapping, for callers and tests that need one of them.

/// The <show/> value, e.g. "dnd"; empty for Show::none.
std::string_view to_string(Show show);

/// The Show for a <show/> value (exact, RFC 6121 §4.7.2.1): "away", "chat",
/// "dnd", "xa"; empty for anything else, "" included.
std::optional<Show> parse_show(std::string_view text);

/// P10: the RPID activity element name for a show (away, xa -> "away";
/// dnd -> "busy"); empty for none and chat, which have no activity.
std::string_view rpid_activity_for(Show show);

/// P11: the show for an RPID activity element name (away -> away; vacation,
/// holiday -> xa; busy, on-the-phone, meeting -> dnd); empty for the rest.
std::optional<Show> show_for_rpid_activity(std::string_view activity);

/// The tuple id for a resource: `ID-` + the resource encoded as above.
std::string tuple_id_for_resource(std::string_view resource);

/// The resource for a tuple id: the inverse of tuple_id_for_resource for the
/// ids it makes, the id itself for foreign ones (see above).
std::string resource_for_tuple_id(std::string_view tuple_id);

/// P10: the PIDF contact priority for an XMPP priority, e.g. 64 -> "0.504";
/// empty for values outside 0..127.
std::optional<std::string> contact_priority_for(int priority);

/// P11: the XMPP priority (0..127) for a PIDF contact priority (a decimal in
/// 0..1, white space around it allowed); empty when it is not one.
std::optional<int> priority_for_contact_priority(std::string_view value);

} // namespace xsgw::translate
