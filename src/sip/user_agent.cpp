#include "xsgw/sip/user_agent.hpp"

#include "handles.hpp"
#include "incoming.hpp"
#include "sofia_nta.hpp"
#include "tls.hpp"
#include "xsgw_build.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <random>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>
#include <sofia-sip/url_tag.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace xsgw::sip {

namespace {

// The leg our subscriptions' requests go out through: no request is ever meant for it (its URI is
// no address of ours), and none that nta gives it is taken.
int refuse_on_own_leg(nta_leg_magic_t*, nta_leg_t*, nta_incoming_t*, const sip_t*) {
    return 481;
}

void nua_trampoline(nua_event_t event, int status, char const* phrase, nua_t* /*nua*/,
                    nua_magic_t* magic, nua_handle_t* nh, nua_hmagic_t* hmagic, sip_t const* sip,
                    tagi_t tags[]) {
    static_cast<UserAgent*>(magic)->on_event(event, status, phrase, nh, hmagic, sip, tags);
}

} // namespace

/// The reply object handed to the bridge for one incoming request.
class NuaReply final : public Reply {
public:
    NuaReply(UserAgent* ua, nua_t* nua, nua_handle_t* nh, const IncomingMessage& request,
             nua_saved_event_t* saved = nullptr)
        : ua_(ua), nua_(nua), nh_(nh), request_(request), saved_(saved) {}
    NuaReply(const NuaReply&) = delete;
    NuaReply& operator=(const NuaReply&) = delete;
    NuaReply(NuaReply&&) = delete;
    NuaReply& operator=(NuaReply&&) = delete;
    ~NuaReply() override {
        if (!answered_) {
            spdlog::error("sip: {} left unanswered by the bridge: 500", what());
            respond(500, "Internal Server Error", {});
        }
    }
    void respond(int status, const std::string& phrase, const Headers& headers) override {
        if (answered_) {
            spdlog::error("sip: {} answered twice ({} after an answer{}): ignored", what(), status,
                          held_ ? " or a hold" : "");
            return;
        }
        answered_ = true;
        // nua sends the response later and keeps the phrase pointer: give it a copy it owns.
        const char* owned = su_strdup(nua_handle_home(nh_), phrase.c_str());
        nua_respond(nh_, status, owned, TAG_IF(saved_ == nullptr, NUTAG_WITH_THIS(nua_)),
                    TAG_IF(saved_ != nullptr, NUTAG_WITH_SAVED(saved_)),
                    TAG_IF(!headers.accept.empty(), SIPTAG_ACCEPT_STR(headers.accept.c_str())),
                    TAG_IF(!headers.retry_after.empty(),
                           SIPTAG_RETRY_AFTER_STR(headers.retry_after.c_str())),
                    TAG_END());
    }
    bool answered() const override { return answered_; }
    std::shared_ptr<Reply> hold() override {
        if (answered_) return nullptr;
        auto held = ua_->hold_request(nh_, saved_);
        if (!held) {
            spdlog::error("sip: cannot keep {} to answer it later: answered now", what());
            return nullptr;
        }
        answered_ = held_ = true;
        return held;
    }
    /// The request went to a held reply: nh is its owner's now.
    bool held() const { return held_; }

private:
    /// For the error logs only: formatted when one is written.
    std::string what() const {
        return fmt::format("MESSAGE from {} to {} (Call-ID {})", request_.from,
                           request_.request_uri, request_.call_id);
    }

    UserAgent* ua_;
    nua_t* nua_;
    nua_handle_t* nh_;
    const IncomingMessage& request_; ///< outlives the reply (on_incoming_message)
    nua_saved_event_t* saved_;       ///< a deferred request's saved event, else null
    bool answered_ = false;
    bool held_ = false;
};

/// A request kept past its handler (Reply::hold); answered through the user agent, which
/// answers it itself at shutdown.
class HeldReply final : public Reply {
public:
    HeldReply(UserAgent* ua, std::weak_ptr<char> alive, std::uint64_t id)
        : ua_(ua), alive_(std::move(alive)), id_(id) {}
    HeldReply(const HeldReply&) = delete;
    HeldReply& operator=(const HeldReply&) = delete;
    HeldReply(HeldReply&&) = delete;
    HeldReply& operator=(HeldReply&&) = delete;
    ~HeldReply() override {
        if (!answered_ && !alive_.expired()) {
            spdlog::error("sip: a held request was dropped unanswered: 500");
            ua_->answer_held(id_, 500, "Internal Server Error", {});
        }
    }
    void respond(int status, const std::string& phrase, const Headers& headers) override {
        if (answered_) {
            spdlog::error("sip: a held request answered twice ({} after an answer): ignored",
                          status);
            return;
        }
        answered_ = true;
        if (!alive_.expired()) ua_->answer_held(id_, status, phrase, headers);
    }
    bool answered() const override { return answered_; }
    std::shared_ptr<Reply> hold() override { return nullptr; }

private:
    UserAgent* ua_;
    std::weak_ptr<char> alive_;
    std::uint64_t id_;
    bool answered_ = false;
};

namespace {

/// A bijection of 64-bit values that looks random (splitmix64's finaliser): distinct inputs
/// stay distinct.
std::uint64_t mix(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void append_hex(std::string& out, std::uint64_t value) {
    static constexpr char digits[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4)
        out += digits[(value >> shift) & 0xF];
}

/// The address a request being handled came from, as text ("" when nua does not say):
/// IPv4 (also when mapped into IPv6) or IPv6, without the port.
// Where the request being handled came from: its source address and port, and whether over a
// connection (TCP or TLS: the request does not tell which).
struct Source {
    std::string address;
    unsigned port = 0;
    bool stream = false;
    sockaddr_storage raw{};
};

Source current_peer(nua_t* nua) {
    msg_t* msg = nua_current_request(nua);
    const su_addrinfo_t* ai = msg != nullptr ? msg_addrinfo(msg) : nullptr;
    if (ai == nullptr) return {};
    const auto text = detail::address_text(ai->ai_addr);
    if (!text || ai->ai_addrlen > sizeof(sockaddr_storage)) return {};
    Source source{text->first,
                  text->second,
                  ai->ai_protocol == IPPROTO_TCP || ai->ai_socktype == SOCK_STREAM,
                  {}};
    std::memcpy(&source.raw, ai->ai_addr, ai->ai_addrlen);
    return source;
}

std::string current_source(nua_t* nua) {
    return current_peer(nua).address;
}

// Idle MESSAGE handles kept at most (a few KiB each) and for at most this long.
constexpr std::size_t max_idle_handles = 4096;
constexpr auto idle_handle_life = std::chrono::seconds(60);

} // namespace

// ---------------------------------------------------------------------------
// S5: requests per source per second

RateLimiter::RateLimiter(Limits limits, std::size_t max_sources)
    : limits_(limits), max_sources_(std::max<std::size_t>(max_sources, 1)) {}

void RateLimiter::refill(Bucket& b, Clock::time_point now) const {
    if (now <= b.updated) return;
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min<double>(limits_.burst, b.tokens + elapsed * limits_.rate);
    b.updated = now;
}

bool RateLimiter::idle_and_full(const Bucket& b, Clock::time_point now) const {
    const double elapsed =
        now > b.updated ? std::chrono::duration<double>(now - b.updated).count() : 0.0;
    return b.tokens + elapsed * limits_.rate >= limits_.burst;
}

RateLimiter::Decision RateLimiter::admit(const std::string& source, Clock::time_point now) {
    Decision decision;
    if (limits_.rate == 0) return decision;
    // The table is bounded, so a flood from spoofed (UDP) sources cannot grow it without end:
    // buckets are kept least recently seen first, and a new source past max_sources_ takes
    // the place of a bucket that has refilled (dropping it loses nothing: a new bucket starts
    // full) among the oldest few, else of the oldest. A source so dropped starts again with
    // a full burst, which only an attacker cycling through more than max_sources_ addresses
    // can use, and each of those addresses still gets no more than a burst and the rate.
    // Each call also drops up to two refilled buckets at the old end, so in quiet times the
    // table holds only the sources of the last burst/rate seconds. All of it is O(1) per
    // request.
    auto found = buckets_.find(source);
    if (found == buckets_.end()) {
        if (buckets_.size() >= max_sources_) {
            auto victim = order_.begin();
            auto candidate = order_.begin();
            for (int looked = 0; looked < 8 && candidate != order_.end(); ++looked, ++candidate) {
                if (idle_and_full(*candidate, now)) {
                    victim = candidate;
                    break;
                }
            }
            buckets_.erase(victim->source);
            order_.erase(victim);
        }
        order_.push_back(Bucket{source, static_cast<double>(limits_.burst), now, std::nullopt, 0});
        found = buckets_.emplace(source, std::prev(order_.end())).first;
    } else {
        order_.splice(order_.end(), order_, found->second);
        refill(*found->second, now);
    }
    Bucket& b = *found->second;
    for (int dropped = 0; dropped < 2 && order_.begin() != found->second; ++dropped) {
        const Bucket& oldest = order_.front();
        if (oldest.unlogged != 0 || !idle_and_full(oldest, now)) break;
        buckets_.erase(oldest.source);
        order_.pop_front();
    }
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
    } else {
        decision.allowed = false;
        ++refused_;
        ++b.unlogged;
        // Whole seconds (Retry-After has no fraction), rounded up, at least 1 (RFC 3261
        // 20.33: the time until a token is free).
        const double wait = (1.0 - b.tokens) / limits_.rate;
        decision.retry_after = std::chrono::seconds(
            std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait - 1e-9))));
    }
    if (b.unlogged != 0 && (!b.logged || now - *b.logged >= log_interval)) {
        decision.log_refused = b.unlogged;
        b.unlogged = 0;
        b.logged = now;
    }
    return decision;
}

void RateLimiter::set_limits(Limits limits) {
    limits_ = limits;
    if (limits_.rate == 0) {
        buckets_.clear();
        order_.clear();
        return;
    }
    for (auto& b : order_)
        b.tokens = std::min<double>(b.tokens, limits_.burst);
}

// ---------------------------------------------------------------------------

UserAgent::UserAgent(core::EventLoop& loop, const core::SipConfig& config)
    : loop_(loop), config_(config),
      rate_limiter_({config.max_requests_per_source, config.burst_per_source}),
      idle_magic_(std::make_unique<Magic>(Magic::Kind::idle)) {
    std::random_device random;
    for (auto& word : call_id_key_)
        word = (std::uint64_t{random()} << 32) ^ random();
    const std::string agent = std::string("xsgw/") + XSGW_VERSION;
    // S4: Sofia reads the TLS files from a folder while nua_create runs; it is removed after.
    std::optional<detail::TlsFolder> tls_folder;
    const bool tls = !config_.tls_listen.empty();
    if (tls) {
        const detail::CertificateSummary cert = detail::check_tls_files(config_);
        spdlog::info("sip: TLS certificate {} names {} (expires {}); {} trusted CA certificates "
                     "from {}",
                     config_.tls_certificate, fmt::join(cert.names, ", "), cert.not_after,
                     cert.trusted_cas, config_.tls_ca_file);
        if (!cert.names_domain)
            spdlog::warn("sip: the TLS certificate does not name sip.domain {}: SIP servers that "
                         "check it (RFC 5922) refuse the gateway's TLS connections",
                         config_.domain);
        tls_folder.emplace(config_);
        tls_verifier_ = std::make_unique<detail::TlsVerifier>(loop_, config_.tls_ca_file);
        plain_contact_ = detail::plain_contact_of(config_.listen);
        if (plain_contact_.empty())
            spdlog::warn("sip: listen {} has no concrete host: dialogs (SUBSCRIBE) may get the TLS "
                         "Contact, and their NOTIFYs then come over TLS",
                         config_.listen);
    }
    // Who may speak for a domain: a TLS client's certificate counts, so every one is asked.
    detail::ask_tls_clients_for_certificates(tls && config_.verify_from_domain);
    nua_ = nua_create(
        loop_.root(), &nua_trampoline, this, NUTAG_URL(config_.listen.c_str()),
        TAG_IF(tls, NUTAG_SIPS_URL(config_.tls_listen.c_str())),
        TAG_IF(tls, TPTAG_CERTIFICATE(tls ? tls_folder->path().c_str() : nullptr)),
        // Every outgoing TLS connection: a chain to a trusted CA, in date, and the peer's
        // certificate names the host it was sought for (the URI's domain, RFC 5922 §4).
        // Incoming connections are not asked for a certificate (SIP user agents have none).
        TAG_IF(tls, TPTAG_TLS_VERIFY_POLICY(TPTLS_VERIFY_SUBJECTS_OUT)),
        TAG_IF(tls, TPTAG_TLS_VERIFY_DEPTH(9)), TAG_IF(tls, TPTAG_TLS_VERIFY_DATE(1)),
        NUTAG_APPL_METHOD("MESSAGE"), NUTAG_APPL_METHOD("SUBSCRIBE"),
        NUTAG_ALLOW_EVENTS("presence"),
        SIPTAG_ALLOW_STR("INVITE, ACK, CANCEL, BYE, MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY"),
        // Calls: the bridge says when the callee rings and answers.
        NUTAG_AUTOALERT(0), NUTAG_AUTOANSWER(0), NUTAG_AUTOACK(1),
        // No session timer of ours, and the peer refreshes if it wants one: a refresh of ours
        // would re-send the INVITE (or send one without SDP). No 100rel: the gateway has no
        // early media to make reliable (and PRACK is not handled). A 3xx is not followed by
        // the stack: its Contact would skip RFC 3263, the TLS check and the loop check.
        NUTAG_SESSION_TIMER(0), NUTAG_SESSION_REFRESHER(nua_remote_refresher),
        NUTAG_SUPPORTED("timer"), NUTAG_AUTO302(0),
        // Bursts of responses must not overflow the default ~200 KiB buffer.
        TPTAG_UDP_RMEM(4 * 1024 * 1024), TPTAG_UDP_WMEM(1024 * 1024), NUTAG_MEDIA_ENABLE(0),
        NUTAG_ENABLEMESSAGE(1), SIPTAG_USER_AGENT_STR(agent.c_str()), TAG_END());
    if (nua_ == nullptr)
        throw std::runtime_error(tls ? fmt::format("cannot listen for SIP on {} and {}",
                                                   config_.listen, config_.tls_listen)
                                     : fmt::format("cannot listen for SIP on {}", config_.listen));
    // Issue 4: our subscriptions' dialogs on nua's nta agent (src/sip/sofia_nta.cpp).
    default_leg_ = detail::take_default_leg();
    if (default_leg_ == nullptr) {
        // A Sofia-SIP whose calls do not go through the PLT (static, or -Bsymbolic-functions).
        nua_shutdown(nua_);
        loop_.run_until([this] { return shut_down_; }, std::chrono::seconds(2));
        nua_destroy(nua_);
        nua_ = nullptr;
        throw std::runtime_error("Sofia-SIP's nta_leg_tcreate did not go through xsgw's hook (a "
                                 "static Sofia-SIP, or one linked with -Bsymbolic-functions?): "
                                 "subscriptions cannot work");
    }
    default_leg_->claim = [this](nta_incoming_s* irq, const sip_t* sip) {
        return on_stray_request(irq, sip);
    };
    default_leg_->outgoing = [this](msg_s* msg) { on_outgoing_request(msg); };
    leg_ = nta_leg_tcreate(default_leg_->agent, &refuse_on_own_leg, nullptr, NTATAG_NO_DIALOG(1),
                           URLTAG_URL("sip:xsgw-subscriber.invalid"), TAG_END());
    if (leg_ == nullptr)
        spdlog::error("sip: no nta leg for subscriptions (out of memory?): subscribing to SIP "
                      "presence will fail");
    user_agent_ = agent;
    for (const sip_via_t* via = nta_agent_via(default_leg_->agent); via != nullptr;
         via = via->v_next) {
        if (via->v_protocol == nullptr || via->v_host == nullptr) continue;
        const std::string_view protocol = via->v_protocol;
        const std::string host =
            std::string_view(via->v_host).find(':') != std::string::npos && via->v_host[0] != '['
                ? fmt::format("[{}]", via->v_host)
                : std::string(via->v_host);
        const std::string port = via->v_port != nullptr ? via->v_port : "5060";
        if (su_casenmatch(protocol.data(), "SIP/2.0/UDP", 11) && contact_udp_.empty())
            contact_udp_ = fmt::format("<sip:{}:{}>", host, port);
        else if (su_casenmatch(protocol.data(), "SIP/2.0/TCP", 11) && contact_tcp_.empty())
            contact_tcp_ = fmt::format("<sip:{}:{};transport=tcp>", host, port);
        else if (su_casenmatch(protocol.data(), "SIP/2.0/TLS", 11) && contact_tls_.empty())
            contact_tls_ = fmt::format("<sip:{}:{};transport=tls>", host, port);
    }
    if (contact_udp_.empty()) contact_udp_ = contact_tcp_;
    spdlog::debug("sip: subscriptions' Contact {} / {} / {}", contact_udp_, contact_tcp_,
                  contact_tls_);
    if (tls && !detail::sofia_tls_hooked())
        spdlog::warn("sip: Sofia-SIP's TLS did not go through xsgw's OpenSSL hooks (a static "
                     "Sofia-SIP?): its TLS connections are never freed, and client certificates "
                     "not asked for");
    if (tls)
        spdlog::info("sip: listening on {} and, TLS, on {}", config_.listen, config_.tls_listen);
    else
        spdlog::info("sip: listening on {}", config_.listen);
}

UserAgent::~UserAgent() {
    shutdown(default_shutdown_deadline);
    // Requests that came during an earlier stop and still wait for their source check: each has
    // a saved event that must go before the stack does.
    while (!deferred_.empty())
        answer_deferred(deferred_.begin()->first, 503, "Gateway shutting down", "10");
    while (!held_.empty())
        answer_held(held_.begin()->first, 503, "Gateway shutting down", {"", "10"});
    drop_subscribers();
    if (leg_ != nullptr) nta_leg_destroy(leg_);
    leg_ = nullptr;
    if (nua_ != nullptr) nua_destroy(nua_);
    if (default_leg_ != nullptr) detail::release_default_leg(default_leg_);
    if (const auto freed = detail::sofia_ssl_freed(); freed > 0)
        spdlog::debug("sip: {} TLS connections' SSL objects freed for Sofia-SIP", freed);
    // MESSAGEs still in flight when the stack went: nua never reports them.
    for (Attempt* attempt : attempts_)
        delete attempt;
}

ShutdownReport UserAgent::shutdown(std::chrono::milliseconds deadline) {
    using Clock = std::chrono::steady_clock;
    ShutdownReport report;
    if (nua_ == nullptr || shut_down_ || stopping_) return report;
    const auto start = Clock::now();
    stopping_ = true;
    fail_messages(503, "Gateway shutting down");
    hang_up_all_calls();
    while (!deferred_.empty())
        answer_deferred(deferred_.begin()->first, 503, "Gateway shutting down", "10");
    while (!held_.empty())
        answer_held(held_.begin()->first, 503, "Gateway shutting down", {"", "10"});
    drop_idle_handles();
    // Nobody is told any more: the bridge went first.
    for (auto& [id, s] : subscribers_)
        s->callbacks = {};
    on_subscribe_ = nullptr;
    on_watcher_end_ = nullptr;
    // nua_shutdown alone ends every dialog in one burst: thousands of un-SUBSCRIBEs whose
    // final NOTIFYs then meet handles it already freed (481), and retransmissions all round.
    // So first one by one, a window at a time; nua gets the last quarter for what is left.
    end_one_by_one(start + deadline * 3 / 4, report);
    report.subscriptions_left = subscribers_.size();
    // The stack would not end ours (they are not nua's): they expire. Its agent goes when its
    // shutdown ends, and our leg with the requests in flight before it.
    drop_subscribers();
    if (leg_ != nullptr) nta_leg_destroy(leg_);
    leg_ = nullptr;
    report.watchers_left = watchers_.size();
    report.publications_left = publishers_.size();
    const auto paced = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    spdlog::info("sip: shutdown ended {} subscriptions, {} watchers and {} publications one by "
                 "one in {} ms (at most {} requests outstanding)",
                 report.subscriptions, report.watchers, report.publications, paced.count(),
                 report.peak_outstanding);
    if (report.subscriptions_left + report.watchers_left + report.publications_left != 0)
        spdlog::warn("sip: shutdown: {} subscriptions, {} watchers and {} publications not ended "
                     "in time, left to the stack's own shutdown",
                     report.subscriptions_left, report.watchers_left, report.publications_left);
    nua_shutdown(nua_);
    // At least a moment for the stack even when the paced part used all its time.
    const auto left = std::max(
        std::chrono::duration_cast<std::chrono::milliseconds>(start + deadline - Clock::now()),
        std::chrono::milliseconds(200));
    report.stack_done = loop_.run_until([this] { return shut_down_; }, left);
    shut_down_ = true;
    // The stack ended every call (BYE, CANCEL, a final response); it reports no more of them.
    for (auto& [id, call] : calls_)
        if (call->nh != nullptr) nua_handle_destroy(call->nh);
    calls_.clear();
    report.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (!report.stack_done)
        spdlog::warn("sip: the stack did not finish its shutdown within {} ms", deadline.count());
    return report;
}

void UserAgent::end_one_by_one(std::chrono::steady_clock::time_point until,
                               ShutdownReport& report) {
    using Clock = std::chrono::steady_clock;
    enum class Kind { subscription, watcher, publication };
    struct Open {
        Kind kind;
        std::uint64_t id;
        Clock::time_point since;
    };
    const auto start = Clock::now();
    std::vector<Open> open;
    // What is under way already holds its place: terminating NOTIFYs the bridge sent,
    // subscriptions it ended, publications it withdrew.
    std::vector<SubscriptionId> subscriptions;
    for (const auto& [id, s] : subscribers_) {
        if (s->ending) {
            open.push_back({Kind::subscription, id, start});
        } else {
            subscriptions.push_back(id);
        }
    }
    std::vector<WatcherId> watchers(finals_waiting_.begin(), finals_waiting_.end());
    finals_waiting_.clear();
    for (const auto& [id, w] : watchers_) {
        if (w->final_sent) {
            open.push_back({Kind::watcher, id, start});
        } else if (!w->terminated) {
            watchers.push_back(id);
        }
    }
    std::vector<SubscriptionId> publications;
    for (const auto& [id, p] : publishers_) {
        if (p->ending) {
            open.push_back({Kind::publication, id, start});
        } else {
            publications.push_back(id);
        }
    }
    // Oldest first: the order they were made in.
    std::sort(subscriptions.begin(), subscriptions.end());
    std::sort(publications.begin(), publications.end());
    std::size_t next_subscription = 0;
    std::size_t next_watcher = 0;
    std::size_t next_publication = 0;
    const auto gone = [this](const Open& o) {
        switch (o.kind) {
        case Kind::subscription:
            return subscribers_.count(o.id) == 0;
        case Kind::watcher:
            return watchers_.count(o.id) == 0;
        case Kind::publication:
            return publishers_.count(o.id) == 0;
        }
        return true;
    };
    const auto held = [this] {
        return subscribers_.size() + watchers_.size() + publishers_.size();
    };
    while (Clock::now() < until) {
        const auto now = Clock::now();
        std::erase_if(open, [&](const Open& o) {
            if (gone(o)) {
                ++(o.kind == Kind::subscription ? report.subscriptions
                   : o.kind == Kind::watcher    ? report.watchers
                                                : report.publications);
                return true;
            }
            // No answer yet: it keeps its handle, but no longer its place.
            return now - o.since >= end_patience;
        });
        while (open.size() < end_window) {
            if (next_subscription < subscriptions.size()) {
                const SubscriptionId id = subscriptions[next_subscription++];
                if (subscribers_.count(id) == 0) continue;
                unsubscribe(id); // P6, and the final NOTIFY is awaited
                open.push_back({Kind::subscription, id, now});
            } else if (next_watcher < watchers.size()) {
                const WatcherId id = watchers[next_watcher++];
                auto it = watchers_.find(id);
                if (it == watchers_.end() || it->second->final_sent) continue;
                Watcher& w = *it->second;
                if (!w.terminated) {
                    // Not ended by the bridge: the subscriber may come back elsewhere at once.
                    w.terminated = true;
                    w.accepted = false;
                    w.last_reason = "deactivated";
                    if (w.expiry) w.expiry->cancel();
                }
                send_final_notify(w);
                open.push_back({Kind::watcher, id, now});
            } else if (next_publication < publications.size()) {
                const SubscriptionId id = publications[next_publication++];
                if (publishers_.count(id) == 0) continue;
                unpublish(id);
                open.push_back({Kind::publication, id, now});
            } else {
                break;
            }
        }
        report.peak_outstanding = std::max(report.peak_outstanding, open.size());
        if (open.empty()) break; // all started and answered, or given up on
        const std::size_t before = held();
        const auto wait =
            std::min(std::chrono::duration_cast<std::chrono::milliseconds>(until - now),
                     std::chrono::milliseconds(50));
        loop_.run_until([&] { return held() != before; }, wait);
    }
}

std::size_t UserAgent::fail_messages(int status, const std::string& phrase) {
    // The callbacks may send more (an error stanza, not a MESSAGE); the queues are taken first.
    auto queues = std::move(queues_);
    queues_.clear();
    total_queued_ = 0;
    std::size_t failed = 0;
    for (auto& [recipient, queue] : queues) {
        for (auto& pending : queue) {
            pending.result = {status, phrase, pending.result.targets_tried, std::nullopt};
            if (pending.done) pending.done(pending.result);
            pending.done = nullptr;
            ++failed;
        }
    }
    return failed;
}

std::size_t UserAgent::queued() const {
    return total_queued_;
}

bool UserAgent::send_message(OutgoingMessage message, std::vector<NextHop> hops,
                             SendCallback done) {
    const std::string recipient = message.request_uri;
    auto found = queues_.find(recipient);
    const std::size_t waiting = found == queues_.end() ? 0 : found->second.size();
    if (waiting > limits_.per_recipient || total_queued_ >= limits_.total) {
        spdlog::warn("sip: MESSAGE to {} refused: {} queued for it, {} in all (bounds {}, {})",
                     recipient, waiting, total_queued_, limits_.per_recipient, limits_.total);
        return false;
    }
    auto& queue = queues_[recipient];
    ++total_queued_;
    queue.push_back(
        Pending{std::move(message), std::move(hops), 0, std::move(done), {}, ++next_serial_});
    // M10: one MESSAGE in flight per recipient; the rest wait in order.
    if (queue.size() == 1) try_hop(recipient);
    return true;
}

std::string UserAgent::fresh_call_id() {
    // Unique (a bijection of a counter under a per-process random key) and unguessable enough
    // to tell nothing of our traffic (RFC 3261 8.1.1.4); Sofia's own costs a guid and
    // printf per MESSAGE.
    std::string id;
    id.reserve(32);
    append_hex(id, call_id_key_[0]);
    append_hex(id, mix(call_id_count_++ ^ call_id_key_[1]));
    return id;
}

UserAgent::HopGate UserAgent::gate_hop(const NextHop& hop, std::function<void()> resume,
                                       std::string& refusal) {
    if (hop.transport != "tls") return HopGate::go;
    if (!tls_verifier_) {
        refusal = "TLS is not configured (sip.tls_listen)";
        return HopGate::refused;
    }
    if (const auto verdict = tls_verifier_->known(hop)) {
        if (!*verdict) return HopGate::go;
        refusal =
            fmt::format("TLS peer {} refused: {}", detail::TlsVerifier::identity(hop), **verdict);
        return HopGate::refused;
    }
    tls_verifier_->check(hop, std::move(resume));
    return HopGate::wait;
}

void UserAgent::try_hop(const std::string& recipient) {
    auto& pending = queues_[recipient].front();
    // S4: a TLS hop is used once its peer proved the name; a refused one is skipped (D5).
    while (pending.next_hop < pending.hops.size()) {
        std::string refusal;
        const auto gate = gate_hop(
            pending.hops[pending.next_hop],
            [this, recipient, serial = pending.serial] {
                const auto it = queues_.find(recipient);
                if (it != queues_.end() && !it->second.empty() &&
                    it->second.front().serial == serial)
                    try_hop(recipient);
            },
            refusal);
        if (gate == HopGate::wait) return;
        if (gate == HopGate::go) break;
        spdlog::warn("sip: MESSAGE {} -> {} not sent via {}: {}", pending.message.from,
                     pending.message.request_uri, pending.hops[pending.next_hop].host, refusal);
        ++pending.next_hop;
        pending.result = {503, refusal, pending.result.targets_tried + 1, std::nullopt};
    }
    if (pending.next_hop >= pending.hops.size()) {
        if (pending.result.status == 0)
            pending.result = {503, "No reachable next hop", 0, std::nullopt};
        finish(recipient);
        return;
    }
    const NextHop& hop = pending.hops[pending.next_hop++];
    const OutgoingMessage& m = pending.message;
    auto attempt = std::make_unique<Attempt>(recipient);
    attempt->proxy = detail::hop_url(hop);
    attempt->handle_key = m.from + ' ' + m.to + ' ' + m.request_uri;
    const std::string& proxy = attempt->proxy;
    // In angle brackets, so URI parameters such as ;gr= stay in the URI (A7).
    const std::string to = "<" + m.to + ">";
    const std::string from = "<" + m.from + ">";
    attempt->nh = take_idle_handle(attempt->handle_key, proxy);
    if (attempt->nh != nullptr) {
        nua_handle_bind(attempt->nh, attempt.get());
    } else {
        // No tags here: nua filters and copies a handle's tags at creation, which cost more
        // than the rest of the handle (callgrind); the request below carries To and Call-ID.
        attempt->nh = nua_handle(nua_, attempt.get(), TAG_END());
        if (attempt->nh == nullptr) {
            pending.result = {500, "Cannot create a SIP handle", pending.result.targets_tried,
                              std::nullopt};
            finish(recipient);
            return;
        }
        ++message_handles_made_;
        // The next hop is numeric and chosen by us: Sofia's own resolver never runs.
        nua_set_hparams(attempt->nh, NUTAG_PROXY(proxy.c_str()), TAG_END());
    }
    nua_handle_t* nh = attempt->nh;
    attempts_.insert(attempt.release()); // the handle's magic until the answer
    ++pending.result.targets_tried;
    spdlog::info("sip: MESSAGE {} -> {} via {} ({}), {} bytes", m.from, m.request_uri, proxy,
                 hop.host, m.body.size());
    const std::string call_id = m.call_id.empty() ? fresh_call_id() : m.call_id;
    nua_message(nh, NUTAG_URL(m.request_uri.c_str()), SIPTAG_TO_STR(to.c_str()),
                SIPTAG_CALL_ID_STR(call_id.c_str()), SIPTAG_FROM_STR(from.c_str()),
                SIPTAG_CONTENT_TYPE_STR(m.content_type.c_str()), SIPTAG_PAYLOAD_STR(m.body.c_str()),
                TAG_IF(!m.subject.empty(), SIPTAG_SUBJECT_STR(m.subject.c_str())),
                TAG_IF(!m.content_language.empty(),
                       SIPTAG_CONTENT_LANGUAGE_STR(m.content_language.c_str())),
                TAG_END());
}

nua_handle_s* UserAgent::take_idle_handle(const std::string& key, const std::string& proxy) {
    const auto found = idle_by_key_.find(key);
    if (found == idle_by_key_.end()) return nullptr;
    IdleHandle idle = std::move(*found->second);
    idle_handles_.erase(found->second);
    idle_by_key_.erase(found);
    if (idle.proxy != proxy) nua_set_hparams(idle.nh, NUTAG_PROXY(proxy.c_str()), TAG_END());
    return idle.nh;
}

void UserAgent::keep_idle_handle(const std::string& key, nua_handle_s* nh, std::string proxy) {
    const auto now = std::chrono::steady_clock::now();
    auto evict_oldest = [this] {
        nua_handle_destroy(idle_handles_.front().nh);
        idle_by_key_.erase(idle_handles_.front().key);
        idle_handles_.pop_front();
    };
    while (!idle_handles_.empty() && (idle_handles_.size() >= max_idle_handles ||
                                      now - idle_handles_.front().since > idle_handle_life))
        evict_oldest();
    if (const auto old = idle_by_key_.find(key); old != idle_by_key_.end()) {
        // Two MESSAGEs between the same parties were in flight at once (different hops'
        // queues): keep the newer handle.
        nua_handle_destroy(old->second->nh);
        idle_handles_.erase(old->second);
        idle_by_key_.erase(old);
    }
    idle_handles_.push_back({key, nh, std::move(proxy), now});
    idle_by_key_[key] = std::prev(idle_handles_.end());
}

void UserAgent::on_idle_handle_event(nua_handle_s* nh, int event) {
    // Nothing is expected on a handle between two MESSAGEs; a request that matched it (a peer
    // making up a dialog) is answered, and the handle is not used again.
    if (!nua_event_is_incoming_request(static_cast<nua_event_t>(event))) return;
    spdlog::info("sip: {} outside any dialog of ours: 481",
                 nua_event_name(static_cast<nua_event_t>(event)));
    nua_respond(nh, 481, "Call/Transaction Does Not Exist", NUTAG_WITH_THIS(nua_), TAG_END());
    for (auto it = idle_handles_.begin(); it != idle_handles_.end(); ++it) {
        if (it->nh != nh) continue;
        idle_by_key_.erase(it->key);
        idle_handles_.erase(it);
        break;
    }
    nua_handle_destroy(nh);
}

void UserAgent::drop_idle_handles() {
    for (auto& idle : idle_handles_)
        nua_handle_destroy(idle.nh);
    idle_handles_.clear();
    idle_by_key_.clear();
}

void UserAgent::finish(const std::string& recipient) {
    auto it = queues_.find(recipient);
    if (it == queues_.end() || it->second.empty()) return;
    Pending pending = std::move(it->second.front());
    it->second.pop_front();
    --total_queued_;
    const bool more = !it->second.empty();
    if (!more) queues_.erase(it);
    if (pending.done) pending.done(pending.result);
    if (more) try_hop(recipient);
}

void UserAgent::on_event(int event, int status, const char* phrase, nua_handle_s* nh, void* hmagic,
                         const void* sip, const void* tags) {
    auto* magic = static_cast<Magic*>(hmagic);
    auto is = [magic](Magic::Kind kind) { return magic != nullptr && magic->kind == kind; };
    if (is(Magic::Kind::idle)) {
        on_idle_handle_event(nh, event);
        return;
    }
    if (is(Magic::Kind::deferred_invite)) {
        // The caller gave up (CANCEL, answered 487 by nua) before the source check's verdict:
        // the verdict finds nothing.
        if (event == nua_i_state && detail::callstate_of(tags) == nua_callstate_terminated)
            drop_deferred(static_cast<Deferred*>(magic)->id);
        return;
    }
    if (is(Magic::Kind::call) && event != nua_i_invite) {
        on_call_event(*static_cast<Call*>(magic), event, status, phrase, sip, tags);
        return;
    }
    switch (static_cast<nua_event_t>(event)) {
    case nua_r_message:
        if (is(Magic::Kind::message))
            on_message_response(static_cast<Attempt*>(magic), status, phrase, sip);
        break;
    case nua_i_message:
        on_incoming_message(nh, sip);
        break;
    case nua_i_notify:
        // A NOTIFY for nothing of ours (our subscriptions' go to subscriber.cpp): nua
        // answered it 481.
        if (magic == nullptr && nh != nullptr) nua_handle_destroy(nh);
        break;
    case nua_i_subscribe:
        if (magic == nullptr && status < 200) {
            // A new watcher: limited per source. Refreshes (in a dialog of ours) are not:
            // nua has answered them already, and they come at the pace we granted.
            if (over_rate_limit(nh, "SUBSCRIBE") || too_many_hops(nh, sip, "SUBSCRIBE")) break;
            if (source_check_ && defer_for_source_check(nh, sip, Method::subscribe)) break;
            on_incoming_subscribe(nh, nullptr, status, sip, tags);
        } else if (is(Magic::Kind::watcher)) {
            on_incoming_subscribe(nh, static_cast<Watcher*>(magic), status, sip, tags);
        }
        break;
    case nua_r_notify:
        if (is(Magic::Kind::watcher))
            on_notify_response(*static_cast<Watcher*>(magic), status, tags);
        break;
    case nua_r_publish:
    case nua_r_unpublish:
        if (is(Magic::Kind::publisher))
            on_publish_response(*static_cast<Publisher*>(magic), status, phrase);
        break;
    case nua_r_shutdown:
        if (status >= 200) shut_down_ = true;
        break;
    case nua_i_invite:
        if (magic == nullptr) {
            // A new call: limited per source like every request that starts work.
            if (over_rate_limit(nh, "INVITE") || too_many_hops(nh, sip, "INVITE")) break;
            if (source_check_ && defer_for_source_check(nh, sip, Method::invite)) break;
            on_incoming_invite(nh, sip);
        } else if (is(Magic::Kind::call)) {
            on_call_event(*static_cast<Call*>(magic), event, status, phrase, sip, tags);
        }
        break;
    case nua_i_error:
        spdlog::warn("sip: stack error {} {}", status, phrase != nullptr ? phrase : "");
        break;
    default:
        spdlog::debug("sip: event {} {} {}", nua_event_name(static_cast<nua_event_t>(event)),
                      status, phrase != nullptr ? phrase : "");
        // Handles nua created for requests we do not take are ours to free.
        if (magic == nullptr && nh != nullptr &&
            nua_event_is_incoming_request(static_cast<nua_event_t>(event)))
            nua_handle_destroy(nh);
        break;
    }
}

bool UserAgent::over_rate_limit(nua_handle_s* nh, const char* method) {
    if (rate_limiter_.limits().rate == 0) return false;
    const std::string source = current_source(nua_);
    if (source.empty()) {
        spdlog::debug("sip: {} from an unknown address: not rate limited", method);
        return false;
    }
    const auto decision = rate_limiter_.admit(source, std::chrono::steady_clock::now());
    if (decision.log_refused != 0) {
        const auto limits = rate_limiter_.limits();
        spdlog::warn("sip: refused {} request(s) from {} with 503 since the last such line: "
                     "over sip.max_requests_per_source ({} per second, burst {})",
                     decision.log_refused, source, limits.rate, limits.burst);
    }
    if (decision.allowed) return false;
    const std::string_view name = method;
    ++(name == "MESSAGE"     ? rate_limited_.messages
       : name == "SUBSCRIBE" ? rate_limited_.subscribes
                             : rate_limited_.invites);
    const std::string retry = std::to_string(decision.retry_after.count());
    // S5: refused, never dropped: the sender hears when to try again (RFC 3261 21.5.4).
    nua_respond(nh, 503, "Too many requests from this address", NUTAG_WITH_THIS(nua_),
                SIPTAG_RETRY_AFTER_STR(retry.c_str()), TAG_END());
    nua_handle_destroy(nh);
    return true;
}

const char* UserAgent::method_name(Method method) {
    switch (method) {
    case Method::subscribe:
        return "SUBSCRIBE";
    case Method::invite:
        return "INVITE";
    case Method::message:
        break;
    }
    return "MESSAGE";
}

bool UserAgent::defer_for_source_check(nua_handle_s* nh, const void* raw, Method method) {
    const auto* sip = static_cast<const sip_t*>(raw);
    const Source source = current_peer(nua_);
    std::string from;
    if (sip != nullptr && sip->sip_from != nullptr) {
        detail::Home home;
        from = home.url(sip->sip_from->a_url);
    }
    // Issue 5 part 7: over TLS, a verified client certificate that names the From domain
    // speaks for it (the names compare without case); anything else goes on to the check of
    // the source address.
    if (source.stream && sip != nullptr && sip->sip_from != nullptr &&
        sip->sip_from->a_url->url_host != nullptr) {
        const std::string domain = sip->sip_from->a_url->url_host;
        const detail::TlsPeerProof proof =
            detail::tls_peer_proves(reinterpret_cast<const sockaddr*>(&source.raw), domain);
        if (proof.proves) {
            spdlog::debug("sip: {} from {}: the TLS certificate of {}:{} names {}",
                          method_name(method), from, source.address, source.port, domain);
            return false;
        }
        if (proof.presented)
            spdlog::info("sip: {} from {}: the TLS certificate of {}:{} does not speak for {} "
                         "({}); checking the address",
                         method_name(method), from, source.address, source.port, domain, proof.why);
    }
    auto d = std::make_unique<Deferred>();
    d->nh = nh;
    d->method = method;
    d->source = source.address;
    d->from = from;
    if (nua_save_event(nua_, d->saved) == 0) {
        spdlog::error("sip: cannot keep a request for its source check: taken unchecked");
        return false;
    }
    const std::uint64_t id = ++next_deferred_;
    d->id = id;
    if (method == Method::invite) nua_handle_bind(nh, d.get());
    deferred_.emplace(id, std::move(d));
    source_check_(from, source.address,
                  [this, id, alive = std::weak_ptr<char>(alive_)](const SourceVerdict& verdict) {
                      if (alive.expired()) return;
                      resume_deferred(id, verdict);
                  });
    return true;
}

void UserAgent::resume_deferred(std::uint64_t id, const SourceVerdict& verdict) {
    const auto it = deferred_.find(id);
    if (it == deferred_.end()) return;
    Deferred& d = *it->second;
    if (stopping_ || shut_down_) {
        answer_deferred(id, 503, "Gateway shutting down", "10");
        return;
    }
    if (verdict.status != 0) {
        ++source_refused_;
        spdlog::warn("sip: {} from {} (source {}) refused with {}: {}", method_name(d.method),
                     d.from, d.source, verdict.status, verdict.phrase);
        answer_deferred(id, verdict.status, verdict.phrase.c_str(), verdict.retry_after);
        return;
    }
    std::unique_ptr<Deferred> owned = std::move(it->second);
    deferred_.erase(it);
    const nua_event_data_t* data = nua_event_data(owned->saved);
    const sip_t* sip = data != nullptr ? sip_object(data->e_msg) : nullptr;
    if (owned->method == Method::subscribe)
        on_incoming_subscribe(owned->nh, nullptr, data != nullptr ? data->e_status : 100, sip,
                              data != nullptr ? data->e_tags : nullptr, owned->saved);
    else if (owned->method == Method::invite)
        on_incoming_invite(owned->nh, sip); // answered on its handle: the event is not needed
    else
        take_message(owned->nh, sip, owned->saved);
    if (owned->saved[0] != nullptr) nua_destroy_event(owned->saved); // else a held reply's now
}

void UserAgent::answer_deferred(std::uint64_t id, int status, const char* phrase,
                                const std::string& retry_after) {
    const auto it = deferred_.find(id);
    if (it == deferred_.end()) return;
    std::unique_ptr<Deferred> d = std::move(it->second);
    deferred_.erase(it);
    const char* owned = su_strdup(nua_handle_home(d->nh), phrase);
    nua_respond(d->nh, status, owned, NUTAG_WITH_SAVED(d->saved),
                TAG_IF(!retry_after.empty(), SIPTAG_RETRY_AFTER_STR(retry_after.c_str())),
                TAG_END());
    nua_destroy_event(d->saved);
    nua_handle_destroy(d->nh);
}

void UserAgent::drop_deferred(std::uint64_t id) {
    const auto it = deferred_.find(id);
    if (it == deferred_.end()) return;
    std::unique_ptr<Deferred> d = std::move(it->second);
    deferred_.erase(it);
    spdlog::info("sip: INVITE from {} (source {}) cancelled during its source check", d->from,
                 d->source);
    nua_destroy_event(d->saved);
    nua_handle_destroy(d->nh);
}

bool UserAgent::too_many_hops(nua_handle_s* nh, const void* raw, const char* method) {
    // S6: the gateway forwards what it takes (into XMPP), so it honours Max-Forwards as a
    // proxy does (RFC 3261 16.3): a request that arrives with 0 goes no further.
    const auto* sip = static_cast<const sip_t*>(raw);
    if (sip == nullptr || sip->sip_max_forwards == nullptr || sip->sip_max_forwards->mf_count != 0)
        return false;
    ++too_many_hops_;
    detail::Home home;
    spdlog::warn("sip: {} from {} (source {}) refused with 483: Max-Forwards 0 (a loop?)", method,
                 sip->sip_from != nullptr ? home.url(sip->sip_from->a_url) : std::string("?"),
                 current_source(nua_));
    nua_respond(nh, 483, sip_483_Too_many_hops, NUTAG_WITH_THIS(nua_), TAG_END());
    nua_handle_destroy(nh);
    return true;
}

void UserAgent::on_message_response(Attempt* attempt, int status, const char* phrase,
                                    const void* raw) {
    if (status < 200) return;
    std::unique_ptr<Attempt> owned(attempt);
    attempts_.erase(attempt);
    if (status < 300) {
        // The handle holds no dialog (MESSAGE makes none): the next MESSAGE between the same
        // two parties may use it. Each request still has its own Call-ID and CSeq.
        nua_handle_bind(attempt->nh, idle_magic_.get());
        keep_idle_handle(attempt->handle_key, attempt->nh, std::move(attempt->proxy));
    } else {
        nua_handle_destroy(attempt->nh);
    }
    auto it = queues_.find(attempt->recipient);
    if (it == queues_.end() || it->second.empty()) return;
    auto& pending = it->second.front();
    pending.result.status = status;
    pending.result.phrase = phrase != nullptr ? phrase : "";
    const auto* sip = static_cast<const sip_t*>(raw);
    pending.result.retry_after.reset();
    if (sip != nullptr && sip->sip_retry_after != nullptr)
        pending.result.retry_after = std::chrono::seconds(sip->sip_retry_after->af_delta);
    spdlog::info("sip: MESSAGE to {}: {} {} (attempt {})", attempt->recipient, status,
                 pending.result.phrase, pending.result.targets_tried);
    if (detail::try_next_hop(status) && pending.next_hop < pending.hops.size()) {
        try_hop(attempt->recipient);
        return;
    }
    finish(attempt->recipient);
}

void UserAgent::on_incoming_message(nua_handle_s* nh, const void* raw) {
    // Every MESSAGE starts work (a stanza, perhaps a DNS lookup): all are limited per source.
    if (over_rate_limit(nh, "MESSAGE") || too_many_hops(nh, raw, "MESSAGE")) return;
    if (source_check_ && defer_for_source_check(nh, raw, Method::message)) return;
    take_message(nh, raw, nullptr);
}

void UserAgent::take_message(nua_handle_s* nh, const void* raw, nua_saved_event** saved) {
    const IncomingMessage m = detail::incoming_message_of(static_cast<const sip_t*>(raw));
    bool held = false;
    {
        NuaReply reply(this, nua_, nh, m, saved);
        if (on_message_) {
            on_message_(m, reply);
        } else {
            reply.respond(503, "Not ready", {"", "5"});
        }
        held = reply.held();
    }
    if (!held) nua_handle_destroy(nh); // else the held reply's
}

std::shared_ptr<Reply> UserAgent::hold_request(nua_handle_s* nh, nua_saved_event** saved) {
    auto d = std::make_unique<Deferred>();
    d->nh = nh;
    if (saved != nullptr) { // saved for the source check: taken over
        d->saved[0] = saved[0];
        saved[0] = nullptr;
    } else if (nua_save_event(nua_, d->saved) == 0) {
        return nullptr;
    }
    const std::uint64_t id = ++next_deferred_;
    held_.emplace(id, std::move(d));
    return std::make_shared<HeldReply>(this, std::weak_ptr<char>(alive_), id);
}

void UserAgent::answer_held(std::uint64_t id, int status, const std::string& phrase,
                            const Reply::Headers& headers) {
    const auto it = held_.find(id);
    if (it == held_.end()) return; // answered at shutdown already
    std::unique_ptr<Deferred> d = std::move(it->second);
    held_.erase(it);
    const char* owned = su_strdup(nua_handle_home(d->nh), phrase.c_str());
    nua_respond(
        d->nh, status, owned, NUTAG_WITH_SAVED(d->saved),
        TAG_IF(!headers.accept.empty(), SIPTAG_ACCEPT_STR(headers.accept.c_str())),
        TAG_IF(!headers.retry_after.empty(), SIPTAG_RETRY_AFTER_STR(headers.retry_after.c_str())),
        TAG_END());
    nua_destroy_event(d->saved);
    nua_handle_destroy(d->nh);
}

} // namespace xsgw::sip
