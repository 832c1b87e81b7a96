#include "xsgw/sip/user_agent.hpp"

#include "handles.hpp"
#include "xsgw_build.hpp"

#include <fmt/format.h>
#include <random>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <utility>

namespace xsgw::sip {

namespace {

void nua_trampoline(nua_event_t event, int status, char const* phrase, nua_t* /*nua*/,
                    nua_magic_t* magic, nua_handle_t* nh, nua_hmagic_t* hmagic, sip_t const* sip,
                    tagi_t tags[]) {
    static_cast<UserAgent*>(magic)->on_event(event, status, phrase, nh, hmagic, sip, tags);
}

/// The reply object handed to the bridge for one incoming request.
class NuaReply final : public Reply {
public:
    NuaReply(nua_t* nua, nua_handle_t* nh, const IncomingMessage& request)
        : nua_(nua), nh_(nh), request_(request) {}
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
            spdlog::error("sip: {} answered twice ({} after an answer): ignored", what(), status);
            return;
        }
        answered_ = true;
        // nua sends the response later and keeps the phrase pointer: give it a copy it owns.
        const char* owned = su_strdup(nua_handle_home(nh_), phrase.c_str());
        nua_respond(nh_, status, owned, NUTAG_WITH_THIS(nua_),
                    TAG_IF(!headers.accept.empty(), SIPTAG_ACCEPT_STR(headers.accept.c_str())),
                    TAG_IF(!headers.retry_after.empty(),
                           SIPTAG_RETRY_AFTER_STR(headers.retry_after.c_str())),
                    TAG_END());
    }
    bool answered() const override { return answered_; }

private:
    /// For the error logs only: formatted when one is written.
    std::string what() const {
        return fmt::format("MESSAGE from {} to {} (Call-ID {})", request_.from,
                           request_.request_uri, request_.call_id);
    }

    nua_t* nua_;
    nua_handle_t* nh_;
    const IncomingMessage& request_; ///< outlives the reply (on_incoming_message)
    bool answered_ = false;
};

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

// Idle MESSAGE handles kept at most (a few KiB each) and for at most this long.
constexpr std::size_t max_idle_handles = 4096;
constexpr auto idle_handle_life = std::chrono::seconds(60);

} // namespace

UserAgent::UserAgent(core::EventLoop& loop, const core::SipConfig& config)
    : loop_(loop), config_(config), idle_magic_(std::make_unique<Magic>(Magic::Kind::idle)) {
    std::random_device random;
    for (auto& word : call_id_key_)
        word = (std::uint64_t{random()} << 32) ^ random();
    const std::string agent = std::string("xsgw/") + XSGW_VERSION;
    nua_ = nua_create(
        loop_.root(), &nua_trampoline, this, NUTAG_URL(config_.listen.c_str()),
        NUTAG_APPL_METHOD("MESSAGE"), NUTAG_APPL_METHOD("SUBSCRIBE"),
        NUTAG_ALLOW_EVENTS("presence"), SIPTAG_ALLOW_STR("MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY"),
        // Bursts of responses must not overflow the default ~200 KiB buffer.
        TPTAG_UDP_RMEM(4 * 1024 * 1024), TPTAG_UDP_WMEM(1024 * 1024), NUTAG_MEDIA_ENABLE(0),
        NUTAG_ENABLEMESSAGE(1), SIPTAG_USER_AGENT_STR(agent.c_str()), TAG_END());
    if (nua_ == nullptr)
        throw std::runtime_error(fmt::format("cannot listen for SIP on {}", config_.listen));
    spdlog::info("sip: listening on {}", config_.listen);
}

UserAgent::~UserAgent() {
    shutdown(std::chrono::milliseconds(2000));
    if (nua_ != nullptr) nua_destroy(nua_);
}

void UserAgent::shutdown(std::chrono::milliseconds deadline) {
    if (nua_ == nullptr || shut_down_) return;
    for (auto& [recipient, queue] : queues_) {
        for (auto& pending : queue) {
            pending.result = {503, "Gateway shutting down", pending.result.targets_tried};
            if (pending.done) pending.done(pending.result);
            pending.done = nullptr;
        }
    }
    queues_.clear();
    total_queued_ = 0;
    drop_idle_handles();
    // Subscriptions end with the stack (un-SUBSCRIBE, NOTIFY terminated, un-PUBLISH, sent by
    // nua); nobody is told any more: the bridge goes first.
    for (auto& [id, s] : subscribers_)
        s->callbacks = {};
    on_subscribe_ = nullptr;
    on_watcher_end_ = nullptr;
    nua_shutdown(nua_);
    loop_.run_until([this] { return shut_down_; }, deadline);
    shut_down_ = true;
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
    queue.push_back(Pending{std::move(message), std::move(hops), 0, std::move(done), {}});
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

void UserAgent::try_hop(const std::string& recipient) {
    auto& pending = queues_[recipient].front();
    if (pending.next_hop >= pending.hops.size()) {
        if (pending.result.status == 0) pending.result = {503, "No reachable next hop", 0};
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
            pending.result = {500, "Cannot create a SIP handle", pending.result.targets_tried};
            finish(recipient);
            return;
        }
        ++message_handles_made_;
        // The next hop is numeric and chosen by us: Sofia's own resolver never runs.
        nua_set_hparams(attempt->nh, NUTAG_PROXY(proxy.c_str()), TAG_END());
    }
    nua_handle_t* nh = attempt.release()->nh; // owned by the handle's magic until the answer
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
    switch (static_cast<nua_event_t>(event)) {
    case nua_r_message:
        if (is(Magic::Kind::message))
            on_message_response(static_cast<Attempt*>(magic), status, phrase, sip);
        break;
    case nua_i_message:
        on_incoming_message(nh, sip);
        break;
    case nua_r_subscribe:
    case nua_r_unsubscribe:
        if (is(Magic::Kind::subscriber))
            on_subscribe_response(*static_cast<Subscriber*>(magic), event == nua_r_unsubscribe,
                                  status, phrase, sip, tags);
        break;
    case nua_i_notify:
        if (is(Magic::Kind::subscriber)) {
            on_notify(*static_cast<Subscriber*>(magic), status, sip, tags);
        } else if (magic == nullptr && nh != nullptr) {
            nua_handle_destroy(nh); // a NOTIFY for nothing of ours: nua answered it 481
        }
        break;
    case nua_i_subscribe:
        if (magic == nullptr && status < 200) {
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
        // Calls come later (Jingle); until then say so instead of leaving the caller ringing.
        nua_respond(nh, 488, "Calls not supported by this gateway", NUTAG_WITH_THIS(nua_),
                    TAG_END());
        nua_handle_destroy(nh);
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

void UserAgent::on_message_response(Attempt* attempt, int status, const char* phrase,
                                    const void* /*sip*/) {
    if (status < 200) return;
    std::unique_ptr<Attempt> owned(attempt);
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
    spdlog::info("sip: MESSAGE to {}: {} {} (attempt {})", attempt->recipient, status,
                 pending.result.phrase, pending.result.targets_tried);
    if (detail::try_next_hop(status) && pending.next_hop < pending.hops.size()) {
        try_hop(attempt->recipient);
        return;
    }
    finish(attempt->recipient);
}

void UserAgent::on_incoming_message(nua_handle_s* nh, const void* raw) {
    const auto* sip = static_cast<const sip_t*>(raw);
    detail::Home home;
    IncomingMessage m;
    if (sip != nullptr) {
        if (sip->sip_request != nullptr) m.request_uri = home.url(sip->sip_request->rq_url);
        if (sip->sip_from != nullptr) {
            m.from = home.url(sip->sip_from->a_url);
            m.from_header = home.header(sip->sip_from);
        }
        if (sip->sip_to != nullptr) m.to = home.url(sip->sip_to->a_url);
        if (sip->sip_call_id != nullptr && sip->sip_call_id->i_id != nullptr)
            m.call_id = sip->sip_call_id->i_id;
        if (sip->sip_content_type != nullptr) m.content_type = home.header(sip->sip_content_type);
        if (sip->sip_payload != nullptr && sip->sip_payload->pl_data != nullptr)
            m.body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
        if (sip->sip_subject != nullptr && sip->sip_subject->g_value != nullptr)
            m.subject = sip->sip_subject->g_value;
        if (sip->sip_content_language != nullptr)
            m.content_language = home.header(sip->sip_content_language);
        if (sip->sip_max_forwards != nullptr)
            m.max_forwards = static_cast<int>(sip->sip_max_forwards->mf_count);
    }
    {
        NuaReply reply(nua_, nh, m);
        if (on_message_) {
            on_message_(m, reply);
        } else {
            reply.respond(503, "Not ready", {"", "5"});
        }
    }
    nua_handle_destroy(nh);
}

} // namespace xsgw::sip
