// gloox's transport replaced by a non-blocking TCP socket on our event loop.
#pragma once

#include "xsgw/core/event_loop.hpp"

#include <cstdint>
#include <functional>
#include <gloox/connectionbase.h>
#include <string>

namespace xsgw::xmpp {

/// A gloox::ConnectionBase whose connect and send never block: connect runs
/// in the background (EINPROGRESS) and writes are buffered until the socket
/// takes them. gloox is told of progress through its ConnectionDataHandler.
class LoopConnection final : public gloox::ConnectionBase {
public:
    LoopConnection(core::EventLoop& loop, gloox::ConnectionDataHandler* handler,
                   const std::string& host, int port);
    ~LoopConnection() override;
    LoopConnection(const LoopConnection&) = delete;
    LoopConnection& operator=(const LoopConnection&) = delete;
    LoopConnection(LoopConnection&&) = delete;
    LoopConnection& operator=(LoopConnection&&) = delete;

    /// Starts a connect; the handler hears handleConnect or handleDisconnect later.
    gloox::ConnectionError connect() override;
    /// The loop delivers data; nothing to poll here.
    gloox::ConnectionError recv(int timeout = -1) override;
    /// Queues data and writes what the socket takes now; false when not connected.
    bool send(const std::string& data) override;
    /// The loop delivers data; nothing to poll here.
    gloox::ConnectionError receive() override;
    /// Closes the socket at once, dropping unsent data; the handler is not called.
    void disconnect() override;
    void cleanup() override;
    void getStatistics(long int& total_in, long int& total_out) override;
    /// Not used by the component; returns a connection to the same server.
    gloox::ConnectionBase* newInstance() const override;

    /// Why the last connection ended, in words (for the log), e.g. "connection refused".
    const std::string& last_error() const { return last_error_; }
    /// Bytes waiting to be written.
    std::size_t pending_bytes() const { return out_.size() - out_pos_; }
    /// Bytes written to the socket so far, and handed to send() so far (written + pending).
    std::uint64_t written_total() const { return static_cast<std::uint64_t>(total_out_); }
    std::uint64_t queued_total() const { return written_total() + pending_bytes(); }
    /// After our </stream:stream> (RFC 6120 section 4.4): what is pending still goes out, any
    /// later send() is dropped (gloox writes its own closing tag again when it disconnects);
    /// reading goes on until the server closes too.
    void end_writes() { writes_ended_ = true; }
    /// Called whenever bytes arrive (liveness for the keepalive).
    void set_activity_callback(std::function<void()> callback) {
        on_activity_ = std::move(callback);
    }

private:
    void on_socket(int revents);
    void finish_connect();
    void read_available();
    void flush();
    void fail(gloox::ConnectionError error, std::string why);
    void fail_later(std::string why);
    void close_socket();

    core::EventLoop& loop_;
    core::FdWatch watch_;
    core::Timer deferred_failure_;
    int fd_ = -1;
    std::string out_;
    std::size_t out_pos_ = 0;
    long total_in_ = 0;
    long total_out_ = 0;
    std::string last_error_;
    std::function<void()> on_activity_;
    bool writes_ended_ = false;
};

} // namespace xsgw::xmpp
