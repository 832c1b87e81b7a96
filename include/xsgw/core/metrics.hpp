// Counters and gauges in the Prometheus text format, served on an optional HTTP listener.
#pragma once

#include "xsgw/core/event_loop.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace xsgw::core {

/// One figure: a metric name, its labels and its value.
struct Sample {
    std::string name; ///< e.g. xsgw_messages_total
    std::string help; ///< one line; the first sample of a name gives it
    std::string type; ///< counter or gauge
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
};

/// The text exposition format 0.0.4: HELP and TYPE once per name, then its samples.
std::string prometheus_text(const std::vector<Sample>& samples);

/// A tiny HTTP/1.0 server on the loop: GET /metrics answers the collector's
/// figures, anything else 404; one request per connection, bounded in size,
/// time and number of connections. Never blocks the loop.
class MetricsServer {
public:
    using Collector = std::function<std::vector<Sample>()>;

    /// Listens on "IPv4:port" or "[IPv6]:port"; throws std::runtime_error when it cannot.
    MetricsServer(EventLoop& loop, const std::string& listen, Collector collect);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;
    MetricsServer(MetricsServer&&) = delete;
    MetricsServer& operator=(MetricsServer&&) = delete;

    /// The port actually bound (useful with port 0).
    int port() const { return port_; }

private:
    struct Connection;
    void on_accept();
    void on_readable(int fd);
    void close_connection(int fd);
    void reap();

    EventLoop& loop_;
    Collector collect_;
    int listen_fd_ = -1;
    int port_ = 0;
    FdWatch listen_watch_;
    Timer reaper_;
    std::map<int, std::unique_ptr<Connection>> connections_;
    std::vector<std::unique_ptr<Connection>>
        closed_; ///< freed from the loop, not in their callback
};

} // namespace xsgw::core
