// What the unit tests with a fake TCP server share: a listening socket on a
// port of 127.0.0.1 the kernel picks.
#pragma once

#include <arpa/inet.h>
#include <cstdint>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace xsgw::test {

/// A non-blocking listening TCP socket on 127.0.0.1; its port goes to `port`.
inline int loopback_listener(std::uint16_t& port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    REQUIRE(listen(fd, 8) == 0);
    return fd;
}

} // namespace xsgw::test
