// The user agent's notifier (RFC 6665 §4.2) and publisher (RFC 3903) roles, on nua's dialog
// usages (the subscriber role is in subscriber.cpp, on nta).
//
// What nua does by itself here (found by experiment, see the commit message): as notifier it
// answers refreshes, sends the final NOTIFY on expiry or Expires: 0 (with the last body: the
// closed state goes in, on_outgoing_request), and refreshes a
// publication with SIP-If-Match.
#include "handles.hpp"
#include "incoming.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_string.h>
#include <spdlog/spdlog.h>

namespace xsgw::sip {
namespace {

constexpr const char* event_presence = "presence";
constexpr const char* accept_pidf = "application/pidf+xml";

// True when the request's Via says it came over TLS (the transport it arrived on).
bool came_over_tls(const void* raw) {
    const auto* sip = static_cast<const sip_t*>(raw);
    if (sip == nullptr || sip->sip_via == nullptr || sip->sip_via->v_protocol == nullptr)
        return false;
    const std::string_view protocol = sip->sip_via->v_protocol;
    return protocol.size() >= 3 && (protocol.substr(protocol.size() - 3) == "TLS" ||
                                    protocol.substr(protocol.size() - 3) == "tls");
}

int substate_of(const void* tags) {
    int substate = nua_substate_embryonic;
    tl_gets(static_cast<const tagi_t*>(tags), NUTAG_SUBSTATE_REF(substate), TAG_END());
    return substate;
}

} // namespace

// ---------------------------------------------------------------------------
// Notifier

void UserAgent::set_max_watcher_expires(std::chrono::seconds expires) {
    max_watcher_expires_ = expires;
    if (nua_ != nullptr)
        nua_set_params(nua_, NUTAG_SUB_EXPIRES(static_cast<unsigned>(expires.count())), TAG_END());
}

void UserAgent::on_incoming_subscribe(nua_handle_s* nh, Watcher* known, int status, const void* raw,
                                      const void* tags, nua_saved_event** saved) {
    const auto* sip = static_cast<const sip_t*>(raw);
    IncomingSubscribe in = detail::incoming_subscribe_of(sip);
    in.refresh = known != nullptr;
    if (known != nullptr && status >= 200) {
        // nua answered this refresh (or Expires: 0) itself and re-sends the last NOTIFY (P9).
        if (substate_of(tags) == nua_substate_terminated ||
            (in.expires && in.expires->count() == 0)) {
            spdlog::info("sip: watcher {} ended its subscription (Expires: 0)", known->id);
            known->ending_by_peer = true;
            return; // nua_r_notify of the final NOTIFY forgets it
        }
        const auto granted =
            std::min(in.expires.value_or(max_watcher_expires_), max_watcher_expires_);
        arm_watcher_expiry(*known, granted);
        return;
    }
    Watcher* w = known;
    std::unique_ptr<Watcher> fresh;
    if (w == nullptr) {
        fresh = std::make_unique<Watcher>();
        fresh->id = next_id_++;
        fresh->nh = nh;
        w = fresh.get();
    }
    SubscribeDecision decision;
    if (on_subscribe_) {
        decision = on_subscribe_(w->id, in);
    } else {
        decision.status = 503;
        decision.phrase = "Not ready";
        decision.retry_after = "5";
    }
    const bool accept = decision.status >= 200 && decision.status < 300;
    const std::string expires = std::to_string(decision.expires.count());
    const char* phrase =
        su_strdup(nua_handle_home(nh), decision.phrase.empty() ? sip_status_phrase(decision.status)
                                                               : decision.phrase.c_str());
    nua_respond(
        nh, decision.status, phrase, TAG_IF(saved == nullptr, NUTAG_WITH_THIS(nua_)),
        TAG_IF(saved != nullptr, NUTAG_WITH_SAVED(saved)),
        TAG_IF(accept, SIPTAG_EXPIRES_STR(expires.c_str())),
        TAG_IF(!decision.min_expires.empty(), SIPTAG_MIN_EXPIRES_STR(decision.min_expires.c_str())),
        TAG_IF(!decision.retry_after.empty(), SIPTAG_RETRY_AFTER_STR(decision.retry_after.c_str())),
        // As for our SUBSCRIBEs: a watcher that came without TLS gets the plain Contact.
        TAG_IF(accept && fresh && !plain_contact_.empty() && !came_over_tls(raw),
               SIPTAG_CONTACT_STR(plain_contact_.c_str())),
        TAG_END());
    if (fresh) {
        if (!accept) {
            nua_handle_destroy(nh);
            return;
        }
        fresh->accepted = true;
        fresh->call_id = in.call_id;
        watcher_by_call_id_.emplace(in.call_id, fresh->id);
        nua_handle_bind(nh, fresh.get());
        watchers_.emplace(fresh->id, std::move(fresh));
    }
    if (accept && decision.expires.count() > 0) arm_watcher_expiry(*w, decision.expires);
    if (decision.after) decision.after();
}

void UserAgent::on_outgoing_request(msg_s* msg) {
    // F2 (P9): nua's own final NOTIFY to a watcher (after its Expires: 0) carries the last body
    // it sent; the closed state goes in instead. Ours (the bridge's, w.final_sent) are left.
    sip_t* sip = sip_object(msg);
    if (sip == nullptr || sip->sip_request == nullptr ||
        sip->sip_request->rq_method != sip_method_notify || sip->sip_call_id == nullptr ||
        sip->sip_subscription_state == nullptr ||
        !su_casematch(sip->sip_subscription_state->ss_substate, "terminated") || !final_body_)
        return;
    const auto found = watcher_by_call_id_.find(sip->sip_call_id->i_id);
    if (found == watcher_by_call_id_.end()) return;
    const auto it = watchers_.find(found->second);
    if (it == watchers_.end() || it->second->final_sent) return;
    const std::string body = final_body_(found->second);
    if (body.empty()) return;
    su_home_t* home = msg_home(msg);
    sip_payload_t* payload = sip_payload_make(home, body.c_str());
    sip_content_type_t* type = sip_content_type_make(home, "application/pidf+xml");
    sip_content_length_t* length = sip_content_length_create(home, body.size());
    if (payload == nullptr || type == nullptr || length == nullptr) return;
    auto* pub = reinterpret_cast<msg_pub_t*>(sip);
    const auto header = [](auto* h) { return reinterpret_cast<msg_header_t*>(h); };
    if (sip->sip_payload != nullptr) msg_header_remove(msg, pub, header(sip->sip_payload));
    if (sip->sip_content_type != nullptr)
        msg_header_remove(msg, pub, header(sip->sip_content_type));
    if (sip->sip_content_length != nullptr)
        msg_header_remove(msg, pub, header(sip->sip_content_length));
    msg_header_insert(msg, pub, header(type));
    msg_header_insert(msg, pub, header(length));
    msg_header_insert(msg, pub, header(payload));
    spdlog::info("sip: watcher {} ended its subscription: its final NOTIFY carries the closed "
                 "state",
                 found->second);
}

void UserAgent::arm_watcher_expiry(Watcher& w, std::chrono::seconds granted) {
    // Ours, a moment ahead of nua's own: the final NOTIFY then carries a closed PIDF (P9).
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(granted);
    const auto ahead = std::max(ms - std::chrono::milliseconds(1500), ms / 2);
    if (!w.expiry) w.expiry = std::make_unique<core::Timer>(loop_);
    const WatcherId id = w.id;
    w.expiry->start(ahead, [this, id] {
        auto it = watchers_.find(id);
        if (it == watchers_.end() || it->second->terminated) return;
        spdlog::info("sip: watcher subscription {} expired without a refresh", id);
        it->second->accepted = false;
        if (on_watcher_end_) on_watcher_end_(id, "timeout");
        auto again = watchers_.find(id);
        if (again != watchers_.end() && !again->second->terminated)
            forget_watcher(*again->second, "timeout");
    });
}

bool UserAgent::notify(WatcherId id, SubState state, const std::string& reason,
                       const std::string& content_type, const std::string& body) {
    auto it = watchers_.find(id);
    if (it == watchers_.end() || it->second->terminated || shut_down_) return false;
    Watcher& w = *it->second;
    if (state == SubState::terminated) {
        w.terminated = true;
        w.accepted = false; // the bridge ended it: it needs no word back
        w.last_reason = reason.empty() ? std::string("noresource") : reason;
        if (w.expiry) w.expiry->cancel();
        w.final_content_type = body.empty() ? std::string() : content_type;
        w.final_body = body;
        // Many end at once (a shutdown, a user gone with all its watchers): a window of
        // them in flight, the rest in order behind, so no burst outruns the peers.
        if (finals_in_flight_.size() >= end_window) {
            finals_waiting_.push_back(id);
            return true;
        }
        send_final_notify(w);
        return true;
    }
    const int substate = state == SubState::active ? nua_substate_active : nua_substate_pending;
    nua_notify(w.nh, NUTAG_SUBSTATE(substate), SIPTAG_EVENT_STR(event_presence),
               TAG_IF(!body.empty(), SIPTAG_CONTENT_TYPE_STR(content_type.c_str())),
               TAG_IF(!body.empty(), SIPTAG_PAYLOAD_STR(body.c_str())), TAG_END());
    return true;
}

void UserAgent::send_final_notify(Watcher& w) {
    w.final_sent = true;
    finals_in_flight_.insert(w.id);
    const std::string ss = "terminated;reason=" + w.last_reason;
    const std::string content_type = std::move(w.final_content_type);
    const std::string body = std::move(w.final_body);
    nua_notify(w.nh, NUTAG_SUBSTATE(nua_substate_terminated), SIPTAG_EVENT_STR(event_presence),
               SIPTAG_SUBSCRIPTION_STATE_STR(ss.c_str()),
               TAG_IF(!body.empty(), SIPTAG_CONTENT_TYPE_STR(content_type.c_str())),
               TAG_IF(!body.empty(), SIPTAG_PAYLOAD_STR(body.c_str())), TAG_END());
}

void UserAgent::send_waiting_finals() {
    while (finals_in_flight_.size() < end_window && !finals_waiting_.empty()) {
        const WatcherId id = finals_waiting_.front();
        finals_waiting_.pop_front();
        auto it = watchers_.find(id);
        if (it != watchers_.end() && !it->second->final_sent) send_final_notify(*it->second);
    }
}

void UserAgent::on_notify_response(Watcher& w, int status, const void* tags) {
    if (status < 200) return;
    if (status >= 300) {
        spdlog::info("sip: NOTIFY to watcher {}: {}", w.id, status);
    }
    // The usage is gone: our final NOTIFY, nua's own on expiry or Expires: 0, or the watcher
    // answered 481 / 408.
    if (w.final_sent || substate_of(tags) == nua_substate_terminated || status == 481 ||
        status == 408)
        forget_watcher(w, w.terminated ? w.last_reason : (status >= 300 ? "giveup" : "timeout"));
}

void UserAgent::forget_watcher(Watcher& w, const std::string& reason) {
    const WatcherId id = w.id;
    const bool tell = w.accepted;
    w.accepted = false;
    if (w.nh != nullptr) nua_handle_destroy(w.nh);
    if (const auto it = watcher_by_call_id_.find(w.call_id);
        it != watcher_by_call_id_.end() && it->second == id)
        watcher_by_call_id_.erase(it);
    watchers_.erase(id); // w is gone
    if (finals_in_flight_.erase(id) != 0 && !stopping_) send_waiting_finals();
    if (tell && on_watcher_end_) on_watcher_end_(id, reason);
}

// ---------------------------------------------------------------------------
// Publisher

SubscriptionId UserAgent::publish(const std::string& aor, const std::string& content_type,
                                  const std::string& body, std::chrono::seconds expires,
                                  std::vector<NextHop> hops) {
    if (nua_ == nullptr || shut_down_ || stopping_) return 0;
    auto p = std::make_unique<Publisher>();
    p->id = next_id_++;
    p->aor = aor;
    p->content_type = content_type;
    p->body = body;
    p->expires = expires;
    p->hops = std::move(hops);
    Publisher& ref = *p;
    publishers_.emplace(p->id, std::move(p));
    if (!start_publisher(ref)) {
        publishers_.erase(ref.id);
        return 0;
    }
    return ref.id;
}

bool UserAgent::start_publisher(Publisher& p) {
    while (p.next_hop < p.hops.size()) {
        const auto gate = gate_hop(
            p.hops[p.next_hop], [this, id = p.id] { resume_publisher(id); }, p.refusal);
        if (gate == HopGate::wait) return true;
        if (gate == HopGate::go) break;
        spdlog::warn("sip: PUBLISH {} not sent via {}: {}", p.aor, p.hops[p.next_hop].host,
                     p.refusal);
        ++p.next_hop;
    }
    if (p.next_hop >= p.hops.size()) return false;
    const NextHop& hop = p.hops[p.next_hop++];
    const std::string proxy = detail::hop_url(hop);
    const std::string aor = "<" + p.aor + ">";
    p.nh =
        nua_handle(nua_, &p, SIPTAG_TO_STR(aor.c_str()), SIPTAG_FROM_STR(aor.c_str()), TAG_END());
    if (p.nh == nullptr) return false;
    nua_set_hparams(p.nh, NUTAG_PROXY(proxy.c_str()), TAG_END());
    const std::string expires = std::to_string(p.expires.count());
    spdlog::info("sip: PUBLISH {} via {} ({}), expires {}", p.aor, proxy, hop.host, expires);
    nua_publish(p.nh, NUTAG_URL(p.aor.c_str()), SIPTAG_EVENT_STR(event_presence),
                SIPTAG_CONTENT_TYPE_STR(p.content_type.c_str()), SIPTAG_PAYLOAD_STR(p.body.c_str()),
                SIPTAG_EXPIRES_STR(expires.c_str()), TAG_END());
    return true;
}

void UserAgent::resume_publisher(std::uint64_t id) {
    const auto it = publishers_.find(id);
    if (it == publishers_.end() || stopping_ || shut_down_) return;
    Publisher& p = *it->second;
    if (p.ending || p.nh != nullptr) return;
    if (!start_publisher(p))
        spdlog::warn("sip: PUBLISH {}: no next hop left ({}); the next update tries again", p.aor,
                     p.refusal);
}

void UserAgent::republish(SubscriptionId id, const std::string& content_type,
                          const std::string& body) {
    auto it = publishers_.find(id);
    if (it == publishers_.end() || it->second->ending) return;
    Publisher& p = *it->second;
    p.content_type = content_type;
    p.body = body;
    if (p.nh == nullptr) {
        // No handle yet (a TLS check runs) or no hop was usable: start again from the first.
        if (p.next_hop >= p.hops.size()) {
            p.next_hop = 0;
            (void)start_publisher(p);
        }
        return;
    }
    const std::string expires = std::to_string(p.expires.count());
    nua_publish(p.nh, SIPTAG_EVENT_STR(event_presence),
                SIPTAG_CONTENT_TYPE_STR(p.content_type.c_str()), SIPTAG_PAYLOAD_STR(p.body.c_str()),
                SIPTAG_EXPIRES_STR(expires.c_str()), TAG_END());
}

void UserAgent::unpublish(SubscriptionId id) {
    auto it = publishers_.find(id);
    if (it == publishers_.end() || it->second->ending) return;
    Publisher& p = *it->second;
    p.ending = true;
    if (!p.published || shut_down_) {
        if (p.nh != nullptr) nua_handle_destroy(p.nh);
        publishers_.erase(it);
        return;
    }
    spdlog::info("sip: unPUBLISH {}", p.aor);
    nua_unpublish(p.nh, SIPTAG_EVENT_STR(event_presence), TAG_END());
}

void UserAgent::on_publish_response(Publisher& p, int status, const char* phrase) {
    if (status < 200) return;
    const std::string text = phrase != nullptr ? phrase : "";
    if (p.ending) {
        nua_handle_destroy(p.nh);
        publishers_.erase(p.id);
        return;
    }
    if (status < 300) {
        p.published = true;
        spdlog::debug("sip: PUBLISH {}: {} {}", p.aor, status, text);
        return;
    }
    spdlog::warn("sip: PUBLISH {}: {} {}", p.aor, status, text);
    if (!p.published && detail::try_next_hop(status) && p.next_hop < p.hops.size()) {
        nua_handle_destroy(p.nh);
        p.nh = nullptr;
        if (start_publisher(p)) return;
    }
    if (status == 412 && p.published) {
        // The server lost our entity tag: publish afresh, once.
        p.published = false;
        nua_handle_destroy(p.nh);
        p.nh = nullptr;
        p.next_hop = 0;
        if (start_publisher(p)) return;
    }
    // Kept: the next update tries again through the same handle.
}

} // namespace xsgw::sip
