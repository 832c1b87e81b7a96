// The SIP side: a Sofia-SIP nua user agent on the one event loop.
#pragma once

#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct nua_s;
struct nua_handle_s;

namespace xsgw::sip {

/// A numeric next hop: the UA never asks a resolver of its own.
struct NextHop {
    std::string address; ///< IPv4 or IPv6 literal (no brackets)
    std::uint16_t port = 5060;
    std::string transport = "udp"; ///< udp, tcp or tls
    std::string host;              ///< the name it came from, for logs
};

/// A MESSAGE to send (RFC 3428), out of any dialog.
struct OutgoingMessage {
    std::string request_uri; ///< sip:user@host of the recipient
    std::string from;        ///< the sender's URI (the gateway's form of the XMPP user)
    std::string to;          ///< usually the Request-URI
    std::string content_type = "text/plain;charset=UTF-8";
    std::string body;
    std::string subject;          ///< Subject header; empty: none (must be header-safe)
    std::string call_id;          ///< Call-ID; empty: a fresh one (must be a SIP word)
    std::string content_language; ///< Content-Language; empty: none
};

/// How a MESSAGE ended: the final response of the last target tried.
struct SendResult {
    int status = 0;     ///< final SIP status (our stack makes up 408 for a timeout, 503 for a
                        ///< transport error: nua gives no way to tell those from a peer's)
    std::string phrase; ///< its reason phrase
    int targets_tried = 0;
};

/// A MESSAGE that arrived, with what the bridge needs of it.
struct IncomingMessage {
    std::string request_uri;
    std::string from;        ///< From URI (no display name, no tag)
    std::string from_header; ///< the whole From header value, as received
    std::string to;
    std::string call_id;
    std::string content_type; ///< full header value, e.g. text/plain;charset=UTF-8
    std::string body;
    std::string subject;
    std::string content_language;
    int max_forwards = 70;
};

/// The one answer to an incoming request; if the handler does not give one,
/// the request is answered 500 (every request is answered exactly once).
class Reply {
public:
    /// Extra headers: Accept, Retry-After (empty: not sent).
    struct Headers {
        std::string accept;
        std::string retry_after;
    };
    virtual ~Reply() = default;
    /// Sends the final response; later calls are ignored and logged.
    virtual void respond(int status, const std::string& phrase, const Headers& headers) = 0;
    void respond(int status, const std::string& phrase) { respond(status, phrase, Headers{}); }
    /// True once a response was sent.
    virtual bool answered() const = 0;
};

/// Sofia-SIP nua on our loop: listens per sip.listen, sends MESSAGEs with
/// fail-over across the next hops it is given (D5), one at a time per
/// recipient (M10), and hands incoming MESSAGEs to the bridge.
class UserAgent {
public:
    using MessageHandler = std::function<void(const IncomingMessage&, Reply&)>;
    using SendCallback = std::function<void(const SendResult&)>;

    UserAgent(core::EventLoop& loop, const core::SipConfig& config);
    ~UserAgent();
    UserAgent(const UserAgent&) = delete;
    UserAgent& operator=(const UserAgent&) = delete;
    UserAgent(UserAgent&&) = delete;
    UserAgent& operator=(UserAgent&&) = delete;

    void set_message_handler(MessageHandler handler) { on_message_ = std::move(handler); }

    /// How many MESSAGEs may wait: behind one recipient's message in flight, and in all.
    struct QueueLimits {
        std::size_t per_recipient = 100;
        std::size_t total = 20000;
    };

    /// Sends the MESSAGE to the first hop; on 503, timeout or transport error to the
    /// next one with a new transaction. done runs once, after the last attempt.
    /// Returns false, and never calls done, when a queue bound is reached: the
    /// caller tells the sender at once.
    [[nodiscard]] bool send_message(OutgoingMessage message, std::vector<NextHop> hops,
                                    SendCallback done);
    /// Changes the queue bounds (reload, tests).
    void set_queue_limits(QueueLimits limits) { limits_ = limits; }

    /// Stops the stack (ends transactions); runs the loop until Sofia is done or the deadline.
    void shutdown(std::chrono::milliseconds deadline);

    /// MESSAGEs waiting behind another to the same recipient, and in flight.
    std::size_t queued() const;

    // Sofia's event callback enters here (public for the C trampoline only).
    void on_event(int event, int status, const char* phrase, nua_handle_s* nh, void* hmagic,
                  const void* sip);

private:
    struct Pending {
        OutgoingMessage message;
        std::vector<NextHop> hops;
        std::size_t next_hop = 0;
        SendCallback done;
        SendResult result;
    };
    struct Attempt; // the handle magic of one transaction

    void start_next(const std::string& recipient);
    void try_hop(const std::string& recipient);
    void finish(const std::string& recipient);
    void on_message_response(Attempt* attempt, int status, const char* phrase, const void* sip);
    void on_incoming_message(nua_handle_s* nh, const void* sip);

    core::EventLoop& loop_;
    core::SipConfig config_;
    nua_s* nua_ = nullptr;
    bool shut_down_ = false;
    MessageHandler on_message_;
    QueueLimits limits_;
    std::size_t total_queued_ = 0;
    std::map<std::string, std::deque<Pending>> queues_; ///< per recipient; front is in flight
};

} // namespace xsgw::sip
