#include "xsgw/xmpp/loop_connection.hpp"

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sofia-sip/su_wait.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

namespace xsgw::xmpp {
namespace {

// Fills addr from a numeric IPv4/IPv6 host; false when the host is a name.
bool numeric_address(const std::string& host, int port, sockaddr_storage& addr, socklen_t& len) {
    std::memset(&addr, 0, sizeof addr);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    std::string bare = host;
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']')
        bare = bare.substr(1, bare.size() - 2);
    if (inet_pton(AF_INET6, bare.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

} // namespace

LoopConnection::LoopConnection(core::EventLoop& loop, gloox::ConnectionDataHandler* handler,
                               const std::string& host, int port)
    : gloox::ConnectionBase(handler), loop_(loop), watch_(loop), deferred_failure_(loop) {
    m_server = host;
    m_port = port;
}

LoopConnection::~LoopConnection() {
    close_socket();
}

gloox::ConnectionError LoopConnection::connect() {
    if (m_state != gloox::StateDisconnected) return gloox::ConnNoError;
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (!numeric_address(m_server, m_port, addr, len)) {
        // The XMPP server is normally on a fixed address; a name is resolved once
        // per attempt here (blocking) until the dns area serves the link too.
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (getaddrinfo(m_server.c_str(), std::to_string(m_port).c_str(), &hints, &res) != 0 ||
            res == nullptr) {
            last_error_ = "cannot resolve " + m_server;
            return gloox::ConnDnsError;
        }
        std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
        len = res->ai_addrlen;
        freeaddrinfo(res);
    }
    fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        last_error_ = std::string("socket: ") + std::strerror(errno);
        return gloox::ConnIoError;
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    out_.clear();
    out_pos_ = 0;
    last_error_.clear();
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
        last_error_ = std::strerror(errno);
        close_socket();
        return errno == ECONNREFUSED ? gloox::ConnConnectionRefused : gloox::ConnIoError;
    }
    m_state = gloox::StateConnecting;
    watch_.attach(fd_, SU_WAIT_OUT, [this](int revents) { on_socket(revents); });
    return gloox::ConnNoError;
}

gloox::ConnectionError LoopConnection::recv(int /*timeout*/) {
    return m_state == gloox::StateConnected ? gloox::ConnNoError : gloox::ConnNotConnected;
}

gloox::ConnectionError LoopConnection::receive() {
    return recv();
}

bool LoopConnection::send(const std::string& data) {
    if (m_state != gloox::StateConnected || writes_ended_) return false;
    out_.append(data);
    flush();
    return true;
}

void LoopConnection::disconnect() {
    close_socket();
}

void LoopConnection::cleanup() {
    close_socket();
}

void LoopConnection::getStatistics(long int& total_in, long int& total_out) {
    total_in = total_in_;
    total_out = total_out_;
}

gloox::ConnectionBase* LoopConnection::newInstance() const {
    return new LoopConnection(loop_, m_handler, m_server, m_port);
}

void LoopConnection::on_socket(int revents) {
    if (m_state == gloox::StateConnecting) {
        finish_connect();
        return;
    }
    if ((revents & (SU_WAIT_IN | SU_WAIT_HUP | SU_WAIT_ERR)) != 0) {
        read_available();
        if (m_state != gloox::StateConnected) return;
    }
    if ((revents & SU_WAIT_OUT) != 0) flush();
}

void LoopConnection::finish_connect() {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
        fail(err == ECONNREFUSED ? gloox::ConnConnectionRefused : gloox::ConnIoError,
             std::strerror(err));
        return;
    }
    m_state = gloox::StateConnected;
    watch_.set_events(SU_WAIT_IN);
    if (m_handler != nullptr) m_handler->handleConnect(this);
}

void LoopConnection::read_available() {
    // Uninitialised on purpose: recv fills what it returns; zeroing 64 KiB per
    // readable event was pure cost on the message path.
    std::array<char, 65536> buf; // NOLINT(cppcoreguidelines-pro-type-member-init)
    for (;;) {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n > 0) {
            total_in_ += n;
            if (on_activity_) on_activity_();
            if (m_handler != nullptr)
                m_handler->handleReceivedData(this,
                                              std::string(buf.data(), static_cast<size_t>(n)));
            // gloox may have closed the link from inside the data handler.
            if (m_state != gloox::StateConnected) return;
            continue;
        }
        if (n == 0) {
            fail(gloox::ConnStreamClosed, "connection closed by server");
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        fail(gloox::ConnIoError, std::string("connection lost: ") + std::strerror(errno));
        return;
    }
}

void LoopConnection::flush() {
    while (out_pos_ < out_.size()) {
        const ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
        if (n > 0) {
            out_pos_ += static_cast<size_t>(n);
            total_out_ += n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Under steady load the buffer may never empty: drop what was written once it is
            // the larger part, so the buffer holds what is pending, not all ever sent.
            if (out_pos_ > out_.size() / 2) {
                out_.erase(0, out_pos_);
                out_pos_ = 0;
            }
            watch_.set_events(SU_WAIT_IN | SU_WAIT_OUT);
            return;
        }
        fail_later(std::string("connection lost: ") + std::strerror(errno));
        return;
    }
    out_.clear();
    out_pos_ = 0;
    watch_.set_events(SU_WAIT_IN);
}

void LoopConnection::fail(gloox::ConnectionError error, std::string why) {
    close_socket();
    last_error_ = std::move(why);
    if (m_handler != nullptr) m_handler->handleDisconnect(this, error);
}

// A write error can happen inside gloox's own send(): tell gloox from the loop,
// not from inside its call.
void LoopConnection::fail_later(std::string why) {
    close_socket();
    last_error_ = std::move(why);
    deferred_failure_.start(std::chrono::milliseconds(0), [this] {
        if (m_handler != nullptr) m_handler->handleDisconnect(this, gloox::ConnIoError);
    });
}

void LoopConnection::close_socket() {
    watch_.detach();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    m_state = gloox::StateDisconnected;
}

} // namespace xsgw::xmpp
