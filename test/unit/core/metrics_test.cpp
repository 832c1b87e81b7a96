// The Prometheus text format and the HTTP listener that serves it.
#include "xsgw/core/metrics.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;

TEST_CASE("metrics: text format groups samples by name with HELP and TYPE once") {
    const std::vector<xsgw::core::Sample> samples{
        {"xsgw_messages_total", "Messages", "counter", {{"direction", "a"}}, 3},
        {"xsgw_link_up", "Link", "gauge", {}, 1},
        {"xsgw_messages_total", "Messages", "counter", {{"direction", "b\"x"}}, 4.5},
    };
    CHECK(xsgw::core::prometheus_text(samples) == "# HELP xsgw_messages_total Messages\n"
                                                  "# TYPE xsgw_messages_total counter\n"
                                                  "xsgw_messages_total{direction=\"a\"} 3\n"
                                                  "xsgw_messages_total{direction=\"b\\\"x\"} 4.5\n"
                                                  "# HELP xsgw_link_up Link\n"
                                                  "# TYPE xsgw_link_up gauge\n"
                                                  "xsgw_link_up 1\n");
}

namespace {

// Sends one request to the server on the loop and returns the whole answer.
std::string fetch(xsgw::core::EventLoop& loop, int port, const std::string& request) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    bool sent = false, closed = false;
    std::string answer;
    loop.run_until(
        [&] {
            if (!sent) sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL) > 0;
            char buf[4096];
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) answer.append(buf, static_cast<size_t>(n));
            if (n == 0) closed = true;
            return closed;
        },
        5s);
    close(fd);
    return answer;
}

} // namespace

TEST_CASE("metrics: GET /metrics is answered with the collector's figures, anything else 404") {
    xsgw::core::EventLoop loop;
    int calls = 0;
    xsgw::core::MetricsServer server(loop, "127.0.0.1:0", [&] {
        ++calls;
        return std::vector<xsgw::core::Sample>{{"xsgw_up", "Up", "gauge", {}, 1}};
    });
    REQUIRE(server.port() > 0);
    const std::string ok = fetch(loop, server.port(), "GET /metrics HTTP/1.0\r\n\r\n");
    CHECK(ok.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(ok.find("text/plain; version=0.0.4") != std::string::npos);
    CHECK(ok.find("\r\n\r\n# HELP xsgw_up Up\n# TYPE xsgw_up gauge\nxsgw_up 1\n") !=
          std::string::npos);
    CHECK(calls == 1);
    const std::string missing = fetch(loop, server.port(), "GET / HTTP/1.0\r\n\r\n");
    CHECK(missing.rfind("HTTP/1.0 404", 0) == 0);
    // A request that never ends is cut off at the size bound, not kept.
    const std::string flood = fetch(loop, server.port(), std::string(9000, 'x'));
    CHECK(flood.empty());
    CHECK(calls == 1);
}
