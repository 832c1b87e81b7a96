// XMPP presence <-> PIDF with RPID (STANDARDS.md P10, P11; RFC 8048 §7,
// RFC 3863 PIDF, RFC 4480 RPID, RFC 4479 data model).
// Pure value code: no I/O, no gloox, no Sofia. pidf_to_presence takes any
// bytes and returns a value or an error, never crashes: it is a fuzz target.
#pragma once

#include "xsgw/expected.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::translate {

/// The <show/> of an XMPP presence (RFC 6121 §4.7.2.1); none = plain available.
enum class Show { none, away, chat, dnd, xa };

/// The presence of one XMPP resource (one PIDF tuple).
struct ResourcePresence {
    std::string resource;     ///< XMPP resource; empty: the bare JID / no tuple id
    bool available = false;   ///< no type (true) / type='unavailable' (false)
    Show show = Show::none;   ///< meaningful only when available
    std::string status;       ///< <status/> text; empty: none
    std::string status_lang;  ///< its xml:lang; empty: none
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
pidf_to_presence(std::string_view body, std::size_t max_bytes = 64 * 1024);

} // namespace xsgw::translate
