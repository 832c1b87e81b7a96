// Reading an incoming request's sip_t into the user agent's plain values.
// Private to src/sip.
#pragma once

#include "xsgw/sip/user_agent.hpp"

#include <chrono>
#include <optional>
#include <sofia-sip/sip.h>

namespace xsgw::sip::detail {

/// What the bridge needs of a MESSAGE (or any request): URIs as text, header values as
/// written, the body; missing parts stay empty.
IncomingMessage incoming_message_of(const sip_t* sip);

/// What the notifier role reads of a SUBSCRIBE (refresh is left false: the caller knows).
IncomingSubscribe incoming_subscribe_of(const sip_t* sip);

/// What the subscriber role reads of a NOTIFY: Subscription-State (state, reason, expires)
/// and the body with its media type (lower case, no parameters).
NotifyInfo notify_info_of(const sip_t* sip);

/// A delta-seconds parameter value (Subscription-State expires=, retry-after=), capped at a
/// year; nullopt when missing or not a number.
std::optional<std::chrono::seconds> seconds_of(const char* text);

} // namespace xsgw::sip::detail
