#include "xsgw/core/metrics.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <netinet/in.h>
#include <set>
#include <sofia-sip/su_wait.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace xsgw::core {
namespace {

constexpr std::size_t max_request_bytes = 8192;
constexpr std::size_t max_connections = 16;
constexpr auto request_deadline = std::chrono::seconds(5);

std::string escape_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
    return fmt::format("{}", v);
}

} // namespace

std::string prometheus_text(const std::vector<Sample>& samples) {
    std::string out;
    std::set<std::string> described;
    // Samples of one name must stand together: gather them in first-seen order.
    std::vector<std::string> order;
    for (const auto& s : samples)
        if (described.insert(s.name).second) order.push_back(s.name);
    for (const auto& name : order) {
        bool first = true;
        for (const auto& s : samples) {
            if (s.name != name) continue;
            if (first) {
                out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", s.name, s.help, s.name, s.type);
                first = false;
            }
            out += s.name;
            if (!s.labels.empty()) {
                out += '{';
                for (std::size_t i = 0; i < s.labels.size(); ++i) {
                    if (i > 0) out += ',';
                    out += fmt::format("{}=\"{}\"", s.labels[i].first,
                                       escape_label(s.labels[i].second));
                }
                out += '}';
            }
            out += ' ';
            out += format_value(s.value);
            out += '\n';
        }
    }
    return out;
}

struct MetricsServer::Connection {
    explicit Connection(EventLoop& loop) : watch(loop), deadline(loop) {}
    FdWatch watch;
    Timer deadline;
    std::string request;
};

MetricsServer::MetricsServer(EventLoop& loop, const std::string& listen, Collector collect)
    : loop_(loop), collect_(std::move(collect)), listen_watch_(loop), reaper_(loop) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("metrics: bad listen address");
    std::string host = listen.substr(0, colon);
    const int port = std::stoi(listen.substr(colon + 1));
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (host.size() > 2 && host.front() == '[') {
        host = host.substr(1, host.size() - 2);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1)
            throw std::runtime_error("metrics: bad IPv6 address " + host);
        len = sizeof *v6;
    } else {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1)
            throw std::runtime_error("metrics: bad IPv4 address " + host);
        len = sizeof *v4;
    }
    listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
        const std::string why = std::strerror(errno);
        if (listen_fd_ >= 0) ::close(listen_fd_);
        throw std::runtime_error(fmt::format("metrics: cannot listen on {}: {}", listen, why));
    }
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                            : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    listen_watch_.attach(listen_fd_, SU_WAIT_IN, [this](int) { on_accept(); });
    spdlog::info("metrics: serving GET /metrics on {}", listen);
}

MetricsServer::~MetricsServer() {
    listen_watch_.detach();
    ::close(listen_fd_);
    for (auto& [fd, connection] : connections_) {
        connection->watch.detach();
        ::close(fd);
    }
}

void MetricsServer::on_accept() {
    for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (connections_.size() >= max_connections) {
            ::close(fd); // a scraper that cannot wait is better refused than the loop starved
            continue;
        }
        auto connection = std::make_unique<Connection>(loop_);
        connection->watch.attach(fd, SU_WAIT_IN, [this, fd](int) { on_readable(fd); });
        connection->deadline.start(request_deadline, [this, fd] { close_connection(fd); });
        connections_[fd] = std::move(connection);
    }
}

void MetricsServer::on_readable(int fd) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    auto& request = it->second->request;
    char buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        close_connection(fd);
        return;
    }
    request.append(buf, static_cast<std::size_t>(n));
    if (request.find("\r\n\r\n") == std::string::npos &&
        request.find("\n\n") == std::string::npos) {
        if (request.size() > max_request_bytes) close_connection(fd);
        return;
    }
    std::string response;
    if (request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET /metrics\r", 0) == 0) {
        const std::string body = prometheus_text(collect_());
        response = fmt::format("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                               "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                               body.size(), body);
    } else {
        response = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    // The whole answer fits the socket buffer of a fresh connection; what does not is dropped.
    (void)::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close_connection(fd);
}

void MetricsServer::close_connection(int fd) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    it->second->watch.detach();
    it->second->deadline.cancel();
    ::close(fd);
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
    reaper_.start(std::chrono::milliseconds(0), [this] { reap(); });
}

void MetricsServer::reap() {
    closed_.clear();
}

} // namespace xsgw::core
