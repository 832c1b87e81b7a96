// The XEP-0114 link to the XMPP server: handshake, keepalive, reconnect.
#pragma once

#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/xmpp/backoff.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <gloox/connectionlistener.h>
#include <gloox/loghandler.h>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace gloox {
class Tag;
}

namespace xsgw::xmpp {

class AcceptStream;
class LoopConnection;

/// Keeps one component stream to the XMPP server up for as long as it runs:
/// every failure (refused, bad secret, conflict, server gone, silent link)
/// is logged with its reason and followed by a reconnect after a backoff.
class ComponentLink final : gloox::ConnectionListener, gloox::LogHandler {
public:
    /// Gets every stanza (message, presence, iq) the server routes to us.
    using StanzaHandler = std::function<void(const gloox::Tag& stanza)>;
    /// Hears link transitions: up after the handshake, down with a reason.
    using StateHandler = std::function<void(bool up, const std::string& reason)>;
    /// Hears whether the server took what was sent before confirm() was called.
    using Confirmation = std::function<void(bool taken)>;

    ComponentLink(core::EventLoop& loop, const core::XmppConfig& config);
    ~ComponentLink() override;
    ComponentLink(const ComponentLink&) = delete;
    ComponentLink& operator=(const ComponentLink&) = delete;
    ComponentLink(ComponentLink&&) = delete;
    ComponentLink& operator=(ComponentLink&&) = delete;

    void set_stanza_handler(StanzaHandler handler) { on_stanza_ = std::move(handler); }
    void set_state_handler(StateHandler handler) { on_state_ = std::move(handler); }

    /// Makes the first connection attempt; later ones follow by themselves.
    void start();
    /// Closes the stream and stops reconnecting.
    void stop();
    /// Stopping gracefully (RFC 6120 section 4.4): sends our </stream:stream>, stops
    /// reconnecting and sending, but goes on reading: stanzas the server routed to us before it
    /// read our closing tag still arrive (after it, the server answers their senders itself).
    /// closing() is true until the server closes too or stop() ends it. False when the link
    /// was not up (nothing to wait for).
    bool begin_close();
    bool closing() const { return closing_; }
    /// True between a successful handshake and the next failure.
    bool up() const { return up_; }
    /// Sends a stanza (taking ownership); false, and nothing sent, while the link is down (X2)
    /// or more than max_pending_bytes wait to be written (the server does not read).
    bool send(gloox::Tag* stanza);
    /// Sends a stanza already written as XML text (one well-formed element in the stream's
    /// namespace; the caller vouches for it); false, and nothing sent, as for send(Tag*).
    bool send(const std::string& xml);
    /// A stanza its recipient waits for (an error for a message, a receipt): sent now when the
    /// link can take it, else kept and sent once the link is up again (oldest first), so that
    /// an outage of the XMPP server does not swallow the answer to a message. At most max_kept
    /// are kept (past it the oldest goes, logged) and none longer than keep_for. False, as
    /// send(), while the link is up but its buffer full, and once the link is stopped.
    bool send_or_keep(gloox::Tag* stanza);
    bool send_or_keep(std::string xml);
    static constexpr std::size_t max_kept = 10'000;
    static constexpr std::chrono::minutes keep_for{10};
    std::size_t kept() const { return kept_.size(); }
    /// The most bytes written to the link and not yet taken by the server before send()
    /// refuses (S5: memory stays bounded when the server stalls; the senders hear at once).
    static constexpr std::size_t default_max_pending_bytes = std::size_t{16} << 20;
    void set_max_pending_bytes(std::size_t bytes) { max_pending_ = bytes; }
    /// Delivery ledger: XEP-0114 has no acknowledgement, and a server that dies loses what it had
    /// not read yet. confirm() asks the server whether it took every stanza sent so far: an iq ping
    /// to `domain` (the recipient's, which the server answers itself) follows them on the stream,
    /// and the server handles a stream's stanzas in order, so its answer (result or error, any)
    /// means it took them: done(true). The link going down first: done(false), the stanzas
    /// may or may not have been taken. One ping per domain is out at a time; what asks meanwhile
    /// waits for the next, so under load one ping covers many stanzas. No answer within
    /// the confirm timeout (a remote domain that is slow to answer, a server that drops the ping):
    /// done(true), logged: the stanzas went on a live link. Called at once with false when the
    /// link is not up.
    void confirm(const std::string& domain, Confirmation done);
    static constexpr std::chrono::milliseconds default_confirm_timeout{5000};
    void set_confirm_timeout(std::chrono::milliseconds timeout) { confirm_timeout_ = timeout; }
    /// Stanzas refused because the link's write buffer was full.
    std::uint64_t refused_full() const { return refused_full_; }
    /// The component domain; every stanza we send is from it (X4).
    const std::string& domain() const { return config_.component; }
    /// Connection attempts made so far.
    unsigned attempts() const { return attempts_; }
    /// Bytes accepted by send() but not yet written to the socket.
    std::size_t pending_bytes() const;
    /// Why the link last went down or an attempt failed; empty before any failure.
    const std::string& last_failure() const { return last_failure_; }

private:
    void onConnect() override;
    void onDisconnect(gloox::ConnectionError error) override;
    bool onTLSConnect(const gloox::CertInfo& info) override;
    void handleLog(gloox::LogLevel level, gloox::LogArea area, const std::string& message) override;

    /// False (and a warning once per stall) while the write buffer is over its bound.
    bool room_to_send();
    void attempt();
    void link_failed(const std::string& reason);
    void keepalive_tick();
    void keepalive_probe();
    void keepalive_check();
    std::string describe(gloox::ConnectionError error) const;
    /// An answer to one of our confirmation pings: handled here, true; else false.
    bool take_confirmation(const gloox::Tag& stanza);
    void send_kept();
    void send_confirmation_ping(const std::string& domain);
    /// The ping out for domain is answered (or timed out): what it covers is taken.
    void confirmed(const std::string& domain);
    void confirmations_ended(const char* why);
    void confirmation_check();
    struct PendingConfirmations {
        std::string ping_id; ///< the ping out, empty: none
        std::chrono::steady_clock::time_point sent{};
        std::uint64_t ping_end = 0;        ///< the stream's byte count once the ping was queued
        std::vector<Confirmation> covered; ///< what the ping out answers for
        std::vector<Confirmation> next;    ///< what came after it was sent
    };

    core::EventLoop& loop_;
    core::XmppConfig config_;
    Backoff backoff_;
    core::Timer reconnect_timer_;
    core::Timer keepalive_timer_;
    std::unique_ptr<AcceptStream> stream_;
    LoopConnection* connection_ = nullptr; // owned by stream_
    StanzaHandler on_stanza_;
    StanzaHandler dispatch_; ///< what the stream calls: confirmations, then on_stanza_
    std::unordered_map<std::string, PendingConfirmations> confirmations_; ///< by domain
    std::unordered_map<std::string, std::string> confirmation_domains_;   ///< ping id -> domain
    core::Timer confirm_timer_;
    std::chrono::milliseconds confirm_timeout_ = default_confirm_timeout;
    unsigned confirm_id_ = 0;
    std::string confirm_key_; ///< random per link: in every ping id
    struct Kept {
        std::chrono::steady_clock::time_point at;
        std::string xml;
    };
    std::deque<Kept> kept_; ///< send_or_keep() while the link was down, oldest first
    std::uint64_t kept_dropped_ = 0;
    StateHandler on_state_;
    std::chrono::steady_clock::time_point last_rx_{};
    std::chrono::steady_clock::time_point window_start_{};
    int probes_sent_ = 0;
    std::string pending_reason_;
    std::string last_failure_;
    unsigned attempts_ = 0;
    unsigned keepalive_id_ = 0;
    bool up_ = false;
    std::size_t max_pending_ = default_max_pending_bytes;
    bool full_ = false; ///< in a stall: refusing until the buffer is below half the bound
    std::uint64_t refused_full_ = 0;
    bool stopped_ = false;
    bool closing_ = false;
};

} // namespace xsgw::xmpp
