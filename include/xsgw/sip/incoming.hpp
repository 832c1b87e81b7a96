// What the gateway reads of a SIP request from the network, apart from the
// stack: for tests and the fuzz target, the same code the user agent runs.
#pragma once

#include "xsgw/sip/user_agent.hpp"

#include <optional>
#include <string_view>

namespace xsgw::sip {

/// A whole SIP message as text (start line, headers, body), parsed by Sofia-SIP's parser as
/// the stack parses what it receives, then read as the user agent reads an incoming MESSAGE.
/// nullopt when the parser refuses it or it is no request.
std::optional<IncomingMessage> parse_request(std::string_view text);

/// The same parse, read as the notifier reads a SUBSCRIBE.
std::optional<IncomingSubscribe> parse_subscribe(std::string_view text);

/// The same parse, read as the subscriber reads a NOTIFY.
std::optional<NotifyInfo> parse_notify(std::string_view text);

} // namespace xsgw::sip
