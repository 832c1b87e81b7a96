// gloox <presence/> stanzas <-> translate's presence values.
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
gloox::Tag* stanza_from_presence(const translate::ResourcePresence& presence,
                                 const std::string& from, const std::string& to);

} // namespace xsgw::bridge
