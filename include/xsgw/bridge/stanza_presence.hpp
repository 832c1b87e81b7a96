// gloox <presence/> stanzas <-> translate's presence values.
//
// Decisions [ours]:
// - The resource is the part of `from` after the first '/' (RFC 7622: a
//   resourcepart may itself hold '/'); none when there is no '/'.
// - Availability: no type attribute is available; type='unavailable' and
//   every other type (the bridge should not pass those) read as unavailable.
// - <show/> and <priority/> are read and written only for available presence,
//   as in translate/presence.hpp. A <show/> that is not one of the four values
//   (RFC 6121 §4.7.2.1) is none; a <priority/> that is not an integer in
//   -128..127 (RFC 6121 §4.7.2.3; white space around it and a '+' allowed)
//   is absent.
// - Several <status/> (one per language, RFC 6121 §4.7.2.2): the first one
//   without its own xml:lang, else the first one. Its language is its own
//   xml:lang or, failing that, the stanza's.
// - Children in a namespace other than the stanza's (jabber:client,
//   jabber:server, jabber:component:accept) are not the standard ones and are
//   ignored.
#pragma once

#include "xsgw/translate/presence.hpp"

#include <string>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// Reads a <presence/> without type or of type unavailable: the resource
/// (from the from attribute), show, status (+ xml:lang), priority.
translate::ResourcePresence presence_from_stanza(const gloox::Tag& stanza);

/// Builds <presence from='from' to='to'> for a value (type='unavailable' when
/// not available; show, status with xml:lang, priority). Caller owns it.
/// from is written as given: the caller puts the resource in it.
gloox::Tag* stanza_from_presence(const translate::ResourcePresence& presence,
                                 const std::string& from, const std::string& to);

} // namespace xsgw::bridge
