// Reading an incoming request's sip_t into the user agent's plain values.
// Private to src/sip.
#pragma once

#include "xsgw/sip/user_agent.hpp"

#include <sofia-sip/sip.h>

namespace xsgw::sip::detail {

/// What the bridge needs of a MESSAGE (or any request): URIs as text, header values as
/// written, the body; missing parts stay empty.
IncomingMessage incoming_message_of(const sip_t* sip);

} // namespace xsgw::sip::detail
