// What the unit tests with a fake XMPP server share: an XEP-0114 server on
// 127.0.0.1 for one connection at a time, run by the test's event loop.
#pragma once

#include "tcp_listener.hpp"
#include "xsgw/core/event_loop.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <functional>
#include <sofia-sip/su_wait.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace xsgw::test {

/// An XEP-0114 server for one connection: answers the handshake, keeps what the component
/// sends and writes what the test gives it.
class ComponentServer {
public:
    explicit ComponentServer(core::EventLoop& loop) : listen_watch_(loop), client_watch_(loop) {
        listen_fd_ = loopback_listener(port_);
        listen_watch_.attach(listen_fd_, SU_WAIT_IN, [this](int) { on_accept(); });
    }
    ~ComponentServer() {
        client_watch_.detach();
        if (client_fd_ >= 0) close(client_fd_);
        listen_watch_.detach();
        close(listen_fd_);
    }
    ComponentServer(const ComponentServer&) = delete;
    ComponentServer& operator=(const ComponentServer&) = delete;
    ComponentServer(ComponentServer&&) = delete;
    ComponentServer& operator=(ComponentServer&&) = delete;

    std::uint16_t port() const { return port_; }
    void write(const std::string& data) {
        REQUIRE(client_fd_ >= 0);
        REQUIRE(::send(client_fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(data.size()));
    }
    /// The server dies: the connection goes without a word.
    void drop() {
        client_watch_.detach();
        if (client_fd_ >= 0) close(client_fd_);
        client_fd_ = -1;
    }
    /// Closes our side of the stream: the closing tag, then no more writing.
    void close_stream() {
        write("</stream:stream>");
        shutdown(client_fd_, SHUT_WR);
    }
    std::string received; ///< everything the component sent
    /// Called once when the component's </stream:stream> arrives (before anything is answered).
    std::function<void()> on_stream_close;
    bool answer_confirmations = true;
    /// Answers the confirmation pings held back while answer_confirmations was false.
    void answer_held_confirmations() {
        for (const auto& id : unanswered_)
            write("<iq type='result' from='xmpp.test' to='sip.test' " + id + "/>");
        unanswered_.clear();
    }

private:
    void on_accept() {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        client_watch_.detach();
        if (client_fd_ >= 0) close(client_fd_);
        client_fd_ = fd;
        received.clear();
        header_sent_ = handshake_answered_ = close_seen_ = false;
        confirm_scan_ = 0;
        client_watch_.attach(fd, SU_WAIT_IN, [this](int) { on_data(); });
    }
    void on_data() {
        char buf[65536];
        const ssize_t n = recv(client_fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            client_watch_.detach();
            close(client_fd_);
            client_fd_ = -1;
            return;
        }
        received.append(buf, static_cast<size_t>(n));
        if (!header_sent_ && received.find("<stream:stream") != std::string::npos) {
            header_sent_ = true;
            write("<?xml version='1.0'?><stream:stream "
                  "xmlns:stream='http://etherx.jabber.org/streams'"
                  " xmlns='jabber:component:accept' from='sip.test' id='3BF96D32'>");
        }
        if (!handshake_answered_ && received.find("</handshake>") != std::string::npos) {
            handshake_answered_ = true;
            write("<handshake/>");
        }
        // As a server does: it answers the gateway's confirmation pings after what came
        // before them; answer_confirmations = false keeps them unanswered.
        for (auto at = received.find("id='xsgw-confirm-", confirm_scan_); at != std::string::npos;
             at = received.find("id='xsgw-confirm-", confirm_scan_)) {
            const auto end = received.find('\'', at + 4);
            if (end == std::string::npos) break;
            confirm_scan_ = end;
            const std::string id = received.substr(at, end + 1 - at);
            if (answer_confirmations)
                write("<iq type='result' from='xmpp.test' to='sip.test' " + id + "/>");
            else
                unanswered_.push_back(id);
        }
        if (!close_seen_ && received.find("</stream:stream>") != std::string::npos) {
            close_seen_ = true;
            if (on_stream_close) on_stream_close();
        }
    }

    int listen_fd_ = -1;
    int client_fd_ = -1;
    std::uint16_t port_ = 0;
    bool header_sent_ = false;
    bool handshake_answered_ = false;
    bool close_seen_ = false;
    std::size_t confirm_scan_ = 0;
    std::vector<std::string> unanswered_; ///< id='...' of pings not answered yet
    core::FdWatch listen_watch_;
    core::FdWatch client_watch_;
};

} // namespace xsgw::test
