// The SIP side: a Sofia-SIP nua user agent on the one event loop.
#pragma once

#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct nua_s;
struct nua_handle_s;
struct nua_saved_event;
struct nta_leg_s;
struct nta_incoming_s;
struct nta_outgoing_s;
struct nta_outgoing_magic_s;
struct sip_s;
struct msg_s;

namespace xsgw::sip {

namespace detail {
class TlsVerifier;
struct DefaultLeg;
} // namespace detail

/// A numeric next hop: the UA never asks a resolver of its own.
struct NextHop {
    std::string address; ///< IPv4 or IPv6 literal (no brackets)
    std::uint16_t port = 5060;
    std::string transport = "udp"; ///< udp, tcp or tls
    std::string host;              ///< the name it came from, for logs
    /// The SIP URI's host: the name a TLS peer's certificate must hold (RFC 5922 §4);
    /// empty: the address.
    std::string domain;
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
    std::optional<std::chrono::seconds> retry_after; ///< the final response's Retry-After
};

/// S5: a token bucket per source address (rate per second, burst); decides whether a request
/// that starts work is taken. Pure: the caller gives the time, so tests step a clock.
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    /// rate 0: no limit (every request is taken, no table is kept).
    struct Limits {
        std::uint32_t rate = 200;  ///< tokens added per second
        std::uint32_t burst = 400; ///< most tokens a bucket holds (at least 1 when rate > 0)
        bool operator==(const Limits&) const = default;
    };
    /// The decision on one request.
    struct Decision {
        bool allowed = true;
        std::chrono::seconds retry_after{0}; ///< refused: until a token is free, rounded up, >= 1
        /// Refusals of this source not yet logged, to log now (0: say nothing; at most one
        /// non-zero value per source per log_interval).
        std::uint64_t log_refused = 0;
    };
    /// At most one log line per source in this time.
    static constexpr std::chrono::seconds log_interval{10};
    /// The default bound of the table (a bucket costs 150 to 200 bytes: 20 MB at most).
    static constexpr std::size_t default_max_sources = 100'000;

    explicit RateLimiter(Limits limits, std::size_t max_sources = default_max_sources);
    RateLimiter(const RateLimiter&) = delete;
    RateLimiter& operator=(const RateLimiter&) = delete;
    RateLimiter(RateLimiter&&) = delete;
    RateLimiter& operator=(RateLimiter&&) = delete;

    /// Takes a token from source's bucket if it has one.
    Decision admit(const std::string& source, Clock::time_point now);
    /// New limits, at once (reload); buckets keep their tokens, at most the new burst.
    void set_limits(Limits limits);
    /// The limits in force.
    Limits limits() const { return limits_; }
    /// Sources with a bucket now (never more than max_sources).
    std::size_t sources() const { return buckets_.size(); }
    /// Requests refused so far.
    std::uint64_t refused() const { return refused_; }

private:
    struct Bucket {
        std::string source;
        double tokens = 0;
        Clock::time_point updated; ///< when tokens was brought up to date: its last request
        std::optional<Clock::time_point> logged; ///< the last log line about this source
        std::uint64_t unlogged = 0;              ///< refusals since then
    };
    using Order = std::list<Bucket>; ///< least recently seen first
    void refill(Bucket& b, Clock::time_point now) const;
    bool idle_and_full(const Bucket& b, Clock::time_point now) const;

    Limits limits_;
    std::size_t max_sources_;
    Order order_;
    std::unordered_map<std::string, Order::iterator> buckets_;
    std::uint64_t refused_ = 0;
};

/// Requests refused by the per-source limit, by method (metrics).
struct RateLimitStats {
    std::uint64_t messages = 0;
    std::uint64_t subscribes = 0;
    std::uint64_t invites = 0;
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
    /// Keeps the request so that it is answered after the handler returns (the bridge
    /// answers a MESSAGE once the XMPP server confirmed its stanza). The reply returned answers
    /// it, once; this one then counts as answered. Null when it cannot be kept: answer now.
    /// What is still held when the user agent shuts down is answered 503 by it.
    virtual std::shared_ptr<Reply> hold() = 0;
};

// ---------------------------------------------------------------------------
// Presence subscriptions (RFC 6665, RFC 3856) and publication (RFC 3903)

/// Subscription-State of a NOTIFY, or what became of a subscription.
enum class SubState { pending, active, terminated };

/// A NOTIFY received for one of our subscriptions (already answered 200).
struct NotifyInfo {
    SubState state = SubState::pending;
    std::string reason;       ///< Subscription-State reason (terminated), e.g. "rejected"
    std::string content_type; ///< media type without parameters, lower case; empty: no body
    std::string body;
    std::optional<std::chrono::seconds> expires; ///< Subscription-State expires=
};

/// The end of one of our subscriptions: after it the id is gone.
struct SubscriptionEnd {
    int status = 0;     ///< final status that ended it (0: a NOTIFY terminated it)
    std::string phrase; ///< its phrase
    std::string reason; ///< Subscription-State reason when a NOTIFY ended it
    std::optional<std::chrono::seconds> retry_after; ///< from Retry-After / retry-after=
};

/// A SUBSCRIBE we send (P1, P7: expires 0 = a fetch).
struct OutgoingSubscribe {
    std::string request_uri; ///< the presentity
    std::string from;        ///< the watcher (the gateway's form of the XMPP user)
    std::chrono::seconds expires{3600};
};

/// Handlers of one of our subscriptions; on_end runs once, last.
struct SubscriberCallbacks {
    std::function<void(const NotifyInfo&)> on_notify;
    std::function<void(const SubscriptionEnd&)> on_end;
};

/// A SUBSCRIBE that arrived (out of dialog: a new watcher; in dialog: a refresh).
struct IncomingSubscribe {
    std::string request_uri;
    std::string from; ///< the watcher's URI
    std::string to;
    std::string event;  ///< Event package, e.g. "presence"
    std::string accept; ///< the Accept header as received; empty: none
    std::optional<std::chrono::seconds> expires;
    bool refresh = false; ///< within an existing subscription
    std::string call_id;
};

// ---------------------------------------------------------------------------
// Calls (issue 8): INVITE dialogs whose SDP the bridge writes and reads as it is; the
// user agent never looks into it (signalling only, media flows end to end).

/// One call, ours or a peer's.
using CallId = std::uint64_t;

/// An INVITE to send.
struct OutgoingCall {
    std::string request_uri; ///< the callee
    std::string from;        ///< the caller (the gateway's form of the XMPP user)
    std::string to;          ///< usually the Request-URI
    std::string sdp;         ///< the offer (application/sdp)
};

/// An INVITE that arrived (out of any dialog).
struct IncomingCall {
    std::string request_uri;
    std::string from;        ///< From URI (no display name, no tag)
    std::string from_header; ///< the whole From header value, as received
    std::string to;
    std::string call_id;
    std::string content_type; ///< media type without parameters, lower case; empty: no body
    std::string sdp;          ///< the offer; empty: none (a delayed offer)
    int max_forwards = 70;
};

/// How a call ended: after it the id is gone and no callback runs.
struct CallEnd {
    int status = 0;         ///< the failure that ended it before it was set up (a peer's final
                            ///< response, or ours: 408 no answer, 503 transport); 0: it was
                            ///< set up, or the caller cancelled it
    std::string phrase;     ///< that status's phrase
    bool cancelled = false; ///< the caller cancelled it before it was answered
    bool bye = false;       ///< the peer sent BYE
    std::string why;        ///< what happened, for the log
};

/// Handlers of one call; on_end runs once, last.
struct CallCallbacks {
    /// A provisional response to our INVITE (180, 183), with its SDP if it has one.
    std::function<void(int status, const std::string& phrase, const std::string& sdp)> on_progress;
    /// Set up: our INVITE got a 2xx (ACK sent; sdp its answer) or the ACK for our 2xx came.
    std::function<void(const std::string& sdp)> on_answer;
    std::function<void(const CallEnd&)> on_end;
};

/// One watcher's subscription held by us as the notifier.
using WatcherId = std::uint64_t;
/// One subscription or publication of ours.
using SubscriptionId = std::uint64_t;

/// What UserAgent::shutdown ended one by one, and what it left to the stack's own shutdown.
struct ShutdownReport {
    std::size_t subscriptions = 0;      ///< un-SUBSCRIBEd (final NOTIFY answered, or an error)
    std::size_t watchers = 0;           ///< sent NOTIFY terminated, and it was answered
    std::size_t publications = 0;       ///< un-PUBLISHed
    std::size_t subscriptions_left = 0; ///< still open at the end of the paced part: nua's
    std::size_t watchers_left = 0;
    std::size_t publications_left = 0;
    std::size_t peak_outstanding = 0; ///< most requests outstanding at once (<= the window)
    bool stack_done = false;          ///< nua reported its own shutdown before the deadline
    std::chrono::milliseconds took{0};
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

    // --- Who may speak for a domain (issue 5 part 7) ---

    /// The outcome of a source check: status 0 takes the request, else the final response.
    struct SourceVerdict {
        int status = 0;
        std::string phrase;
        std::string retry_after; ///< Retry-After with a 503; empty: none
    };
    /// Decides whether source (the request's IP address) may send for from (its From URI);
    /// done may run at once or later, once.
    using SourceCheck = std::function<void(const std::string& from, const std::string& source,
                                           std::function<void(const SourceVerdict&)> done)>;
    /// With a check set, every MESSAGE and new SUBSCRIBE waits for its verdict (its handler
    /// runs after a pass; a refusal is the answer). None: every request is taken.
    void set_source_check(SourceCheck check) { source_check_ = std::move(check); }
    /// Requests refused by the source check so far.
    std::uint64_t source_refused() const { return source_refused_; }
    /// Requests waiting for the source check's verdict.
    std::size_t source_checks_waiting() const { return deferred_.size(); }

    // --- Subscriber (we watch a SIP presentity) ---

    /// Sends a SUBSCRIBE (Event: presence, Accept: application/pidf+xml) through the first
    /// hop that answers (D5 fail-over); the dialog is ours, on nta (src/sip/subscriber.cpp).
    /// Refreshes before expiry, honouring the notifier's expires, with jitter (P5); 423 is
    /// retried with Min-Expires (P4); a 481 on refresh ends it with 481 (the bridge starts a
    /// new dialog). Returns 0 when it cannot start (stopping, or no usable hop).
    SubscriptionId subscribe(const OutgoingSubscribe& request, std::vector<NextHop> hops,
                             SubscriberCallbacks callbacks);
    /// How long a subscription waits for its first NOTIFY after a 2xx, and for the final one
    /// after an un-SUBSCRIBE (Timer N, 64*T1).
    void set_timer_n(std::chrono::milliseconds wait) { timer_n_ = wait; }
    /// Ends one of our subscriptions: SUBSCRIBE Expires: 0 (P6), held until the final NOTIFY;
    /// no callback runs after.
    void unsubscribe(SubscriptionId id);

    // --- Notifier (a SIP watcher watches an XMPP user) ---

    /// The bridge's decision on a new SUBSCRIBE.
    struct SubscribeDecision {
        int status = 202;                ///< 200/202 accept; >= 300 refuse
        std::string phrase;              ///< for a refusal
        std::chrono::seconds expires{0}; ///< granted (accept)
        std::string min_expires;         ///< Min-Expires header for 423
        std::string retry_after;         ///< Retry-After for 503
        std::function<void()> after;     ///< runs once the response is sent (e.g. the first NOTIFY)
    };
    using SubscribeHandler = std::function<SubscribeDecision(WatcherId, const IncomingSubscribe&)>;
    using WatcherEndHandler = std::function<void(WatcherId, const std::string& reason)>;
    void set_subscribe_handler(SubscribeHandler handler) { on_subscribe_ = std::move(handler); }
    /// Runs when a watcher's subscription ended on its side (Expires: 0, expiry, error);
    /// the final NOTIFY the bridge gave through notify() has been sent.
    /// The longest subscription nua grants on a refresh it answers itself.
    void set_max_watcher_expires(std::chrono::seconds expires);
    void set_watcher_end_handler(WatcherEndHandler handler) {
        on_watcher_end_ = std::move(handler);
    }
    /// The body of the final NOTIFY the stack sends by itself when a watcher ends its
    /// subscription (Expires: 0): P9 wants the closed state there, not the last one sent.
    /// Returns a PIDF (application/pidf+xml), or "" to leave the NOTIFY as it is.
    using FinalBodyHandler = std::function<std::string(WatcherId)>;
    void set_final_body_handler(FinalBodyHandler handler) { final_body_ = std::move(handler); }
    /// Sends a NOTIFY to a watcher; state terminated ends the subscription (reason e.g.
    /// "rejected", "timeout"). Empty body: none. False when the watcher is gone.
    bool notify(WatcherId watcher, SubState state, const std::string& reason,
                const std::string& content_type, const std::string& body);

    // --- Calls (issue 8) ---

    /// Sends an INVITE with the SDP offer through the first hop that answers (D5: a 503,
    /// a timeout or a transport error before any provisional response tries the next
    /// hop). Returns 0 when it cannot start (no handle, stopping).
    CallId invite(const OutgoingCall& call, std::vector<NextHop> hops, CallCallbacks callbacks);
    /// Runs for a new INVITE; the callbacks it returns hear the call from then on. It answers
    /// with ring(), answer() or hang_up() (at once or later).
    using CallHandler = std::function<CallCallbacks(CallId, const IncomingCall&)>;
    void set_call_handler(CallHandler handler) { on_call_ = std::move(handler); }
    /// 180 Ringing to a call that is not answered yet. False when the call is gone.
    bool ring(CallId id);
    /// 200 OK with the SDP answer to a call not answered yet; on_answer runs with the ACK.
    bool answer(CallId id, const std::string& sdp);
    /// Ends a call; no callback runs after. Ours: CANCEL before the final response, BYE after.
    /// A peer's not yet answered: the final response status (>= 300) and phrase; answered:
    /// BYE. A Reason header (RFC 3326) says why when reason is not empty.
    void hang_up(CallId id, int status = 603, const std::string& phrase = "Decline",
                 const std::string& reason = {});
    /// Calls held now.
    std::size_t call_count() const { return calls_.size(); }

    // --- Publisher (client-server model, P13) ---

    /// Publishes (or updates) a presence document for aor through the hops; refreshed
    /// with SIP-If-Match until unpublish. Returns the publication's id (0: failed to start).
    SubscriptionId publish(const std::string& aor, const std::string& content_type,
                           const std::string& body, std::chrono::seconds expires,
                           std::vector<NextHop> hops);
    /// Sends a new body for a publication.
    void republish(SubscriptionId id, const std::string& content_type, const std::string& body);
    /// Removes a publication (Expires: 0).
    void unpublish(SubscriptionId id);

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

    /// S5: the per-source limit on new requests (out-of-dialog MESSAGE and SUBSCRIBE); takes
    /// effect at once (reload, tests). Requests within our dialogs are never limited.
    void set_rate_limits(RateLimiter::Limits limits) { rate_limiter_.set_limits(limits); }
    /// The per-source limit in force.
    RateLimiter::Limits rate_limits() const { return rate_limiter_.limits(); }
    /// Requests refused 503 by that limit so far.
    const RateLimitStats& rate_limit_stats() const { return rate_limited_; }
    /// S6: requests refused with 483 (Max-Forwards 0) so far.
    std::uint64_t too_many_hops() const { return too_many_hops_; }

    /// Requests a shutdown keeps outstanding at once (un-SUBSCRIBE, NOTIFY terminated,
    /// un-PUBLISH), and terminating NOTIFYs in flight at any time: at most a burst of this
    /// many meets a peer, so nothing is retransmitted for want of an answer.
    static constexpr std::size_t end_window = 256;
    /// How long a shutdown waits for the answer to one request before that request stops
    /// holding a place in the window (its handle stays, to answer a late NOTIFY 200).
    static constexpr std::chrono::milliseconds end_patience{1000};
    /// The shutdown deadline the destructor uses when nobody called shutdown before: well
    /// under systemd's stop timeout.
    static constexpr std::chrono::milliseconds default_shutdown_deadline{5000};

    /// Ends every subscription, watcher and publication one by one, end_window at a time,
    /// running the loop: un-SUBSCRIBE (and the final NOTIFY answered 200), NOTIFY
    /// terminated (the body the bridge gave, else none, reason deactivated), un-PUBLISH.
    /// Then stops the stack, which ends whatever is left at once. Returns within about
    /// the deadline; queued MESSAGEs fail with 503 and no callback runs any more.
    ShutdownReport shutdown(std::chrono::milliseconds deadline);

    /// Ends every MESSAGE waiting or in flight with this result (their callbacks run; an answer
    /// that comes later is ignored). Returns how many.
    std::size_t fail_messages(int status, const std::string& phrase);

    /// MESSAGEs waiting behind another to the same recipient, and in flight.
    std::size_t queued() const;

    // Sofia's event callback enters here (public for the C trampoline only).
    void on_event(int event, int status, const char* phrase, nua_handle_s* nh, void* hmagic,
                  const void* sip, const void* tags);

    /// SIP transactions alive in the stack now (server and client; answered ones count until
    /// their timers end, 32 s over UDP).
    std::size_t transactions() const;
    /// Subscriptions, watchers and publications held now (tests, metrics).
    std::size_t subscriber_count() const { return subscribers_.size(); }
    std::size_t watcher_count() const { return watchers_.size(); }
    std::size_t publication_count() const { return publishers_.size(); }
    /// Handles of answered MESSAGEs kept for the next one between the same parties.
    std::size_t idle_message_handles() const { return idle_handles_.size(); }
    /// Handles made for MESSAGEs so far (the others were kept ones used again).
    std::uint64_t message_handles_made() const { return message_handles_made_; }

private:
    struct Pending {
        OutgoingMessage message;
        std::vector<NextHop> hops;
        std::size_t next_hop = 0;
        SendCallback done;
        SendResult result;
        std::uint64_t serial = 0; ///< tells a resumed TLS check whose turn it was
    };
    /// S4: whether a next hop may be used now.
    enum class HopGate {
        go,      ///< not TLS, or its peer proved the name
        wait,    ///< a TLS check runs; resume is called when it ends
        refused, ///< its peer did not prove the name (refusal says why)
    };
    HopGate gate_hop(const NextHop& hop, std::function<void()> resume, std::string& refusal);
    void resume_subscriber(std::uint64_t id);
    void resume_publisher(std::uint64_t id);
    struct Magic;      // what every handle's magic points to: its kind
    struct Attempt;    // one MESSAGE transaction
    struct Subscriber; // one subscription of ours
    struct Watcher;    // one SIP watcher's subscription to us
    struct Publisher;  // one publication of ours
    struct Call;       // one call, ours or a peer's

    bool start_subscriber(Subscriber& s);
    bool send_subscribe(Subscriber& s, std::uint32_t expires);
    void on_subscribe_answer(Subscriber& s, int status, const char* phrase, const void* sip);
    /// nta's response callback of our SUBSCRIBEs (the magic is the Subscriber).
    static int subscribe_answered(nta_outgoing_magic_s* magic, nta_outgoing_s* orq,
                                  const sip_s* sip);
    /// A NOTIFY of one of our dialogs (the default leg's claim): the status to answer, or -1
    /// when it is not ours (nua answers it).
    int on_stray_request(nta_incoming_s* irq, const void* sip);
    int on_notify(Subscriber& s, const void* sip);
    void refresh_in(Subscriber& s, std::chrono::seconds granted);
    void new_dialog(Subscriber& s, std::chrono::seconds after);
    void schedule(Subscriber& s);
    void on_subscriber_timer();
    void arm_subscriber_timer(std::chrono::steady_clock::time_point at);
    /// Forgets a subscription without a word to anyone (its request in flight is dropped).
    void forget_subscriber(Subscriber& s);
    void end_subscriber(Subscriber& s, int status, const std::string& phrase,
                        const std::string& reason, std::optional<std::chrono::seconds> retry);
    void drop_subscribers();
    const std::string& contact_for(const std::string& transport) const;
    /// saved: the request's saved event when it was deferred (answered with it), else null.
    void on_incoming_subscribe(nua_handle_s* nh, Watcher* watcher, int status, const void* sip,
                               const void* tags, nua_saved_event** saved = nullptr);
    void arm_watcher_expiry(Watcher& w, std::chrono::seconds granted);
    void on_notify_response(Watcher& w, int status, const void* tags);
    void forget_watcher(Watcher& w, const std::string& reason);
    void send_final_notify(Watcher& w);
    void send_waiting_finals();
    void end_one_by_one(std::chrono::steady_clock::time_point until, ShutdownReport& report);
    bool start_call(Call& c);
    void on_invite_response(Call& c, int status, const char* phrase, const void* sip);
    void on_incoming_invite(nua_handle_s* nh, const void* sip);
    void on_call_event(Call& c, int event, int status, const char* phrase, const void* sip,
                       const void* tags);
    void end_call(Call& c, CallEnd end);
    void hang_up_all_calls();
    bool start_publisher(Publisher& p);
    void on_publish_response(Publisher& p, int status, const char* phrase);
    void start_next(const std::string& recipient);
    void try_hop(const std::string& recipient);
    std::string fresh_call_id();
    nua_handle_s* take_idle_handle(const std::string& key, const std::string& proxy);
    void keep_idle_handle(const std::string& key, nua_handle_s* nh, std::string proxy);
    void drop_idle_handles();
    void on_idle_handle_event(nua_handle_s* nh, int event);
    void finish(const std::string& recipient);
    void on_message_response(Attempt* attempt, int status, const char* phrase, const void* sip);
    void on_incoming_message(nua_handle_s* nh, const void* sip);
    /// S5: true when the current request's source is over its limit: then it was answered
    /// 503 with Retry-After and nh is destroyed.
    bool over_rate_limit(nua_handle_s* nh, const char* method);
    bool too_many_hops(nua_handle_s* nh, const void* sip, const char* method);
    struct Deferred; // a request waiting for the source check
    enum class Method { message, subscribe, invite };
    static const char* method_name(Method method);
    bool defer_for_source_check(nua_handle_s* nh, const void* sip, Method method);
    void resume_deferred(std::uint64_t id, const SourceVerdict& verdict);
    void answer_deferred(std::uint64_t id, int status, const char* phrase,
                         const std::string& retry_after);
    /// A deferred INVITE the caller cancelled: forgotten, its handle freed.
    void drop_deferred(std::uint64_t id);
    void take_message(nua_handle_s* nh, const void* sip, nua_saved_event** saved);
    friend class HeldReply;
    friend class NuaReply;
    /// Reply::hold(): keeps nh and the request's event (saved: already saved, taken over).
    std::shared_ptr<Reply> hold_request(nua_handle_s* nh, nua_saved_event** saved);
    void answer_held(std::uint64_t id, int status, const std::string& phrase,
                     const Reply::Headers& headers);

    core::EventLoop& loop_;
    std::unique_ptr<detail::TlsVerifier> tls_verifier_; ///< S4; none without sip.tls_listen
    /// S4: with TLS, the Contact for dialogs that are not over TLS ("<sip:host:port>" of
    /// sip.listen); empty without TLS or when listen's host is a wildcard (nua chooses).
    std::string plain_contact_;
    std::uint64_t next_serial_ = 0;
    core::SipConfig config_;
    nua_s* nua_ = nullptr;
    bool shut_down_ = false;
    bool stopping_ = false; ///< shutdown began: nothing new starts
    MessageHandler on_message_;
    SubscribeHandler on_subscribe_;
    std::chrono::seconds max_watcher_expires_{3600};
    std::chrono::milliseconds timer_n_{32000};
    WatcherEndHandler on_watcher_end_;
    FinalBodyHandler final_body_;
    /// Watchers by the Call-ID of their dialog (the final NOTIFY nua sends by itself, F2).
    std::unordered_map<std::string, WatcherId> watcher_by_call_id_;
    void on_outgoing_request(msg_s* msg);
    QueueLimits limits_;
    RateLimiter rate_limiter_;
    RateLimitStats rate_limited_;
    std::uint64_t too_many_hops_ = 0;
    SourceCheck source_check_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Deferred>> deferred_;
    std::uint64_t next_deferred_ = 0;
    std::unordered_map<std::uint64_t, std::unique_ptr<Deferred>> held_; ///< Reply::hold()
    std::uint64_t source_refused_ = 0;
    /// Checks that answer after the user agent is gone find it expired.
    std::shared_ptr<char> alive_ = std::make_shared<char>();
    std::size_t total_queued_ = 0;
    /// Call-IDs of our MESSAGEs: a random per-process key and a counter, mixed (fresh_call_id).
    std::uint64_t call_id_key_[2] = {0, 0};
    std::uint64_t call_id_count_ = 0;
    std::map<std::string, std::deque<Pending>> queues_; ///< per recipient; front is in flight
    /// Handles of finished MESSAGEs kept for the next one between the same two parties (a
    /// handle costs more to make than the request); least recently used first.
    struct IdleHandle {
        std::string key; ///< from and request URI
        nua_handle_s* nh = nullptr;
        std::string proxy; ///< the next hop it is set to
        std::chrono::steady_clock::time_point since;
    };
    std::list<IdleHandle> idle_handles_;
    std::unique_ptr<Magic> idle_magic_; ///< what an idle handle's magic points to
    /// MESSAGE attempts in flight, each its handle's magic until the answer (freed then, or by
    /// the destructor for those the stack never answered).
    std::unordered_set<Attempt*> attempts_;
    std::uint64_t message_handles_made_ = 0;
    std::unordered_map<std::string, std::list<IdleHandle>::iterator> idle_by_key_;
    std::uint64_t next_id_ = 1;
    std::unordered_map<SubscriptionId, std::unique_ptr<Subscriber>> subscribers_;
    /// Our subscriptions' dialogs live on nta beside nua (src/sip/sofia_nta.cpp): the default
    /// leg that shows us their NOTIFYs, a leg of ours to send their SUBSCRIBEs through, our
    /// Contact per transport, and when each subscription's next timer is due.
    detail::DefaultLeg* default_leg_ = nullptr;
    nta_leg_s* leg_ = nullptr;
    std::string contact_udp_, contact_tcp_, contact_tls_;
    std::string user_agent_;
    std::set<std::pair<std::chrono::steady_clock::time_point, SubscriptionId>> subscriber_due_;
    std::unique_ptr<core::Timer> subscriber_timer_;
    std::chrono::steady_clock::time_point subscriber_timer_at_{};
    std::minstd_rand refresh_random_;
    std::unordered_map<WatcherId, std::unique_ptr<Watcher>> watchers_;
    /// Watchers whose terminating NOTIFY is sent and not answered (at most end_window), and
    /// those whose NOTIFY waits for room, in order.
    std::unordered_set<WatcherId> finals_in_flight_;
    std::deque<WatcherId> finals_waiting_;
    std::unordered_map<SubscriptionId, std::unique_ptr<Publisher>> publishers_;
    CallHandler on_call_;
    std::unordered_map<CallId, std::unique_ptr<Call>> calls_;
};

} // namespace xsgw::sip
