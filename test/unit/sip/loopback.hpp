// What the SIP unit tests share: a user agent's config on a loopback port.
#pragma once

#include "xsgw/core/config.hpp"

#include <string>

namespace xsgw::test {

/// [sip] for a user agent listening on 127.0.0.1:port (UDP and TCP).
inline core::SipConfig listen_on(int port) {
    core::SipConfig c;
    c.domain = "sip.test";
    c.listen = "sip:127.0.0.1:" + std::to_string(port);
    return c;
}

} // namespace xsgw::test
