// gloox stanzas <-> translate's message values: the only place the two meet.
#pragma once

#include "xsgw/translate/errors.hpp"
#include "xsgw/translate/message.hpp"

#include <string>
#include <string_view>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// Reads the parts of a <message/> the gateway carries (body, subject, thread,
/// xml:lang, chat state, receipt request/answer, XHTML-IM body).
translate::XmppMessage message_from_stanza(const gloox::Tag& stanza);

/// The <message/> stanza for a value, as XML text for ComponentLink::send.
std::string stanza_from_message(const translate::XmppMessage& message);

/// The error reply to a message value: same id, from/to swapped, the condition,
/// its E3 type and text (caller owns it).
gloox::Tag* error_stanza_for(const translate::XmppMessage& request,
                             const translate::XmppError& error);

} // namespace xsgw::bridge
