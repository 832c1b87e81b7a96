// The user agent's subscriber role (RFC 6665 §4.1, RFC 3856): our SUBSCRIBE dialogs, kept by
// xsgw itself and sent through nta beside nua (see src/sip/sofia_nta.cpp for why and how).
//
// What it does, as nua did before it: refreshes ahead of expiry with jitter, honouring the
// notifier's Expires and Subscription-State expires= (P5); retries 423 once with Min-Expires
// (P4) and a 5xx with a Retry-After under 32 s after it; makes a new dialog after
// terminated;reason=deactivated (at once) or probation (after retry-after); ends a fetch (Expires:
// 0) with its terminating NOTIFY (P7). What it does that nua did not: Timer N (RFC 6665 §4.1.2.4)
// for the first NOTIFY after a SUBSCRIBE, and the final NOTIFY after an un-SUBSCRIBE. A dialog
// costs a few hundred bytes instead of nua's ~4 KiB.
#include "handles.hpp"
#include "incoming.hpp"
#include "sofia_nta.hpp"
#include "xsgw/core/long_lived.hpp"

#include <algorithm>
#include <charconv>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_string.h>
#include <spdlog/spdlog.h>

namespace xsgw::sip {
namespace {

constexpr const char* event_presence = "presence";
constexpr const char* accept_pidf = "application/pidf+xml";
using Clock = std::chrono::steady_clock;
// A 5xx with a Retry-After under this many seconds is retried, at most max_retries times in a row.
constexpr unsigned long max_retry_after = 32;
constexpr std::uint8_t max_retries = 5;
// deactivated / probation answered by a new dialog at most this many times in a row without an
// active NOTIFY between; then the subscription ends (the bridge retries with its back-off).
constexpr std::uint8_t max_resubscribes = 3;
// The subscriptions' timer serves what is due this far ahead in one firing (on_subscriber_timer).
constexpr auto subscriber_tick = std::chrono::milliseconds(50);

// A subscription's Call-ID starts with its id: "s<id>-<random>".
std::optional<SubscriptionId> id_of_call_id(const char* call_id) {
    if (call_id == nullptr || call_id[0] != 's') return std::nullopt;
    const std::string_view text(call_id + 1);
    SubscriptionId id = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (error != std::errc() || end == text.data() || *end != '-') return std::nullopt;
    return id;
}

// The route set of a Record-Route list as a Route header value: in order (reversed: a response
// to our request) or as received (a NOTIFY that made the dialog).
std::string route_of(const sip_record_route_t* rr, bool reverse) {
    std::vector<std::string> entries;
    detail::Home home;
    for (; rr != nullptr; rr = rr->r_next)
        entries.push_back(home.header(rr));
    if (reverse) std::reverse(entries.begin(), entries.end());
    std::string route;
    for (const std::string& e : entries) {
        if (e.empty()) continue;
        if (!route.empty()) route += ", ";
        route += e;
    }
    return route;
}

// A Contact as the remote target: without URI headers (nta would put them in our requests) or a
// method parameter (RFC 3261 §12.1.2, as Sofia's own legs do).
std::string target_of(const sip_contact_t* contact) {
    if (contact == nullptr) return {};
    detail::Home home;
    url_t url = *contact->m_url;
    url.url_headers = nullptr;
    if (url.url_params != nullptr) {
        char* params = su_strdup(home.get(), url.url_params);
        url.url_params = params != nullptr ? url_strip_param_string(params, "method") : nullptr;
        if (url.url_params != nullptr && url.url_params[0] == '\0') url.url_params = nullptr;
    }
    return home.url(&url);
}

} // namespace

int UserAgent::subscribe_answered(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                  const sip_t* sip) {
    auto* s = reinterpret_cast<Subscriber*>(magic);
    const int status = sip != nullptr && sip->sip_status != nullptr ? sip->sip_status->st_status
                                                                    : nta_outgoing_status(orq);
    if (status < 200) return 0;
    const char* phrase = sip != nullptr && sip->sip_status != nullptr ? sip->sip_status->st_phrase
                                                                      : sip_status_phrase(status);
    // The response lives as long as the transaction: the handler first (it may send the next
    // request, or forget s), then the transaction goes.
    s->orq = nullptr;
    s->owner->on_subscribe_answer(*s, status, phrase, sip);
    nta_outgoing_destroy(orq);
    return 0;
}

std::size_t UserAgent::transactions() const {
    if (default_leg_ == nullptr || leg_ == nullptr) return 0;
    usize_t incoming = 0;
    usize_t outgoing = 0;
    nta_agent_get_stats(default_leg_->agent, NTATAG_S_IRQ_HASH_USED_REF(incoming),
                        NTATAG_S_ORQ_HASH_USED_REF(outgoing), TAG_END());
    return incoming + outgoing;
}

const std::string& UserAgent::contact_for(const std::string& transport) const {
    if (transport == "tls" && !contact_tls_.empty()) return contact_tls_;
    if (transport == "tcp" && !contact_tcp_.empty()) return contact_tcp_;
    return contact_udp_;
}

SubscriptionId UserAgent::subscribe(const OutgoingSubscribe& request, std::vector<NextHop> hops,
                                    SubscriberCallbacks callbacks) {
    const core::LongLived long_lived; // the dialog's state (issue 4)
    if (nua_ == nullptr || leg_ == nullptr || shut_down_ || stopping_) return 0;
    auto s = std::make_unique<Subscriber>();
    s->owner = this;
    s->id = next_id_++;
    s->request = request;
    s->expires = static_cast<std::uint32_t>(std::max<long>(request.expires.count(), 0));
    s->hops = std::move(hops);
    s->callbacks = std::move(callbacks);
    Subscriber& ref = *s;
    subscribers_.emplace(s->id, std::move(s));
    if (!start_subscriber(ref)) {
        subscribers_.erase(ref.id);
        return 0;
    }
    return ref.id;
}

bool UserAgent::start_subscriber(Subscriber& s) {
    // S4: as for MESSAGE, a TLS hop waits for its peer to prove the name; refused ones are skipped.
    while (s.next_hop < s.hops.size()) {
        const auto gate = gate_hop(
            s.hops[s.next_hop], [this, id = s.id] { resume_subscriber(id); }, s.refusal);
        if (gate == HopGate::wait) return true;
        if (gate == HopGate::go) break;
        spdlog::warn("sip: SUBSCRIBE {} -> {} not sent via {}: {}", s.request.from,
                     s.request.request_uri, s.hops[s.next_hop].host, s.refusal);
        ++s.next_hop;
    }
    if (s.next_hop >= s.hops.size()) return false;
    const NextHop& hop = s.hops[s.next_hop++];
    s.proxy = detail::hop_url(hop);
    s.transport = hop.transport;
    spdlog::info("sip: SUBSCRIBE {} -> {} via {} ({}), expires {}", s.request.from,
                 s.request.request_uri, s.proxy, hop.host, s.expires);
    new_dialog(s, std::chrono::seconds(0));
    return s.orq != nullptr;
}

void UserAgent::new_dialog(Subscriber& s, std::chrono::seconds after) {
    // The old dialog's request in flight (a refresh crossing the NOTIFY that ended it) would
    // answer into the new one.
    if (s.orq != nullptr) nta_outgoing_destroy(s.orq);
    s.orq = nullptr;
    s.call_id = fmt::format("s{}-{}", s.id, fresh_call_id());
    s.local_tag = fresh_call_id().substr(0, 16);
    s.remote_tag.clear();
    s.target.clear();
    s.route.clear();
    s.remote_cseq = 0;
    s.notified = false;
    s.notify_by = {};
    if (after.count() > 0) {
        s.refresh_at = Clock::now() + after;
        schedule(s);
        return;
    }
    s.refresh_at = {};
    (void)send_subscribe(s, s.expires);
    schedule(s);
}

bool UserAgent::send_subscribe(Subscriber& s, std::uint32_t expires) {
    if (leg_ == nullptr) return false;
    if (s.orq != nullptr) nta_outgoing_destroy(s.orq); // superseded (an un-SUBSCRIBE)
    s.orq = nullptr;
    ++s.cseq;
    const std::string from = fmt::format("<{}>;tag={}", s.request.from, s.local_tag);
    const std::string to = s.remote_tag.empty()
                               ? fmt::format("<{}>", s.request.request_uri)
                               : fmt::format("<{}>;tag={}", s.request.request_uri, s.remote_tag);
    const std::string cseq = fmt::format("{} SUBSCRIBE", s.cseq);
    const std::string& uri = s.target.empty() ? s.request.request_uri : s.target;
    const std::string value = std::to_string(expires);
    s.orq = nta_outgoing_tcreate(
        leg_, &UserAgent::subscribe_answered, reinterpret_cast<nta_outgoing_magic_t*>(&s),
        URL_STRING_MAKE(s.proxy.c_str()), SIP_METHOD_SUBSCRIBE, URL_STRING_MAKE(uri.c_str()),
        SIPTAG_CALL_ID_STR(s.call_id.c_str()), SIPTAG_FROM_STR(from.c_str()),
        SIPTAG_TO_STR(to.c_str()), SIPTAG_CSEQ_STR(cseq.c_str()),
        TAG_IF(!s.route.empty(), SIPTAG_ROUTE_STR(s.route.c_str())),
        SIPTAG_CONTACT_STR(contact_for(s.transport).c_str()), SIPTAG_EVENT_STR(event_presence),
        SIPTAG_ACCEPT_STR(accept_pidf), SIPTAG_EXPIRES_STR(value.c_str()),
        SIPTAG_USER_AGENT_STR(user_agent_.c_str()), TAG_END());
    if (s.orq == nullptr) {
        spdlog::warn("sip: SUBSCRIBE {} -> {}: the stack could not send it", s.request.from,
                     s.request.request_uri);
        return false;
    }
    return true;
}

void UserAgent::resume_subscriber(std::uint64_t id) {
    const auto it = subscribers_.find(id);
    if (it == subscribers_.end() || stopping_ || shut_down_) return;
    Subscriber& s = *it->second;
    if (s.ending || s.orq != nullptr) return;
    if (start_subscriber(s)) return;
    const std::string why = s.refusal.empty() ? std::string("Cannot send") : s.refusal;
    end_subscriber(s, 503, why, "", std::nullopt);
}

void UserAgent::unsubscribe(SubscriptionId id) {
    auto it = subscribers_.find(id);
    if (it == subscribers_.end()) return;
    Subscriber& s = *it->second;
    s.callbacks = {};
    if (s.ending) return;
    s.ending = true;
    if (!s.remote_tag.empty() && !shut_down_ && s.expires > 0) {
        // P6: SUBSCRIBE Expires: 0 in the dialog; the final NOTIFY ends it (or Timer N).
        spdlog::info("sip: unSUBSCRIBE {} -> {}", s.request.from, s.request.request_uri);
        s.unsubscribed = true;
        s.refresh_at = {};
        if (send_subscribe(s, 0)) {
            s.notify_by = Clock::now() + timer_n_;
            schedule(s);
            return;
        }
    } else if (s.orq != nullptr && s.remote_tag.empty() && !shut_down_) {
        return; // its answer makes the dialog that is then ended (on_subscribe_answer)
    }
    forget_subscriber(s);
}

void UserAgent::on_subscribe_answer(Subscriber& s, int status, const char* phrase,
                                    const void* raw) {
    const core::LongLived long_lived; // the dialog's state (issue 4)
    const auto* sip = static_cast<const sip_t*>(raw);
    const std::string text = phrase != nullptr ? phrase : "";
    const bool ok = status < 300;
    if (ok && s.remote_tag.empty() && sip != nullptr && sip->sip_to != nullptr &&
        sip->sip_to->a_tag != nullptr) {
        // The dialog is made by this 2xx (RFC 3261 §12.1.2).
        s.remote_tag = sip->sip_to->a_tag;
        s.route = route_of(sip->sip_record_route, true);
    }
    // A target refresh; not from another fork's 2xx.
    if (ok && sip != nullptr && sip->sip_contact != nullptr && sip->sip_to != nullptr &&
        sip->sip_to->a_tag != nullptr && su_casematch(sip->sip_to->a_tag, s.remote_tag.c_str()))
        s.target = target_of(sip->sip_contact);
    if (s.ending) {
        if (!s.unsubscribed && ok && !s.remote_tag.empty() && s.expires > 0) {
            // unsubscribe() came before this answer: the dialog it made is ended now.
            s.unsubscribed = true;
            if (send_subscribe(s, 0)) {
                s.notify_by = Clock::now() + timer_n_;
                schedule(s);
                return;
            }
        }
        // An error, or the un-SUBSCRIBE's 2xx: its final NOTIFY may still come (Timer N).
        if (!ok || s.notify_by == Clock::time_point{}) forget_subscriber(s);
        return;
    }
    if (ok) {
        s.answered = true;
        s.retries = 0;
        s.hops.clear();
        s.hops.shrink_to_fit();
        spdlog::debug("sip: SUBSCRIBE {} -> {}: {} {}", s.request.from, s.request.request_uri,
                      status, text);
        if (s.expires > 0) {
            std::uint32_t granted = s.expires;
            if (sip != nullptr && sip->sip_expires != nullptr)
                granted = std::min(granted, static_cast<std::uint32_t>(sip->sip_expires->ex_delta));
            if (granted > 0) refresh_in(s, std::chrono::seconds(granted));
        }
        // P5: Timer N (64*T1): a 2xx without a NOTIFY is no subscription.
        if (!s.notified && s.notify_by == Clock::time_point{})
            s.notify_by = Clock::now() + timer_n_;
        schedule(s);
        return;
    }
    spdlog::info("sip: SUBSCRIBE {} -> {}: {} {}{}", s.request.from, s.request.request_uri, status,
                 text, s.answered ? " (refresh)" : "");
    if (status == 423 && !s.raised && sip != nullptr && sip->sip_min_expires != nullptr &&
        sip->sip_min_expires->me_delta > s.expires) {
        // P4: once, with the notifier's Min-Expires, in the same dialog (or the same attempt).
        s.raised = true;
        s.expires = static_cast<std::uint32_t>(sip->sip_min_expires->me_delta);
        if (send_subscribe(s, s.expires)) return;
    }
    if (status >= 500 && status < 600 && sip != nullptr && sip->sip_retry_after != nullptr &&
        sip->sip_retry_after->af_delta < max_retry_after && s.retries < max_retries) {
        // As nua did: the same request again after a short Retry-After, a few times.
        ++s.retries;
        s.refresh_at = Clock::now() + std::chrono::seconds(sip->sip_retry_after->af_delta);
        schedule(s);
        return;
    }
    if (!s.answered && s.remote_tag.empty() && detail::try_next_hop(status) &&
        s.next_hop < s.hops.size()) {
        if (start_subscriber(s)) return; // D5: this hop failed; a new dialog through the next
    }
    std::optional<std::chrono::seconds> retry;
    if (sip != nullptr && sip->sip_retry_after != nullptr)
        retry = std::chrono::seconds(sip->sip_retry_after->af_delta);
    end_subscriber(s, status, text, "", retry);
}

int UserAgent::on_stray_request(nta_incoming_s* irq, const void* raw) {
    const core::LongLived long_lived; // the dialog's state (issue 4)
    (void)irq;
    const auto* sip = static_cast<const sip_t*>(raw);
    if (sip == nullptr || sip->sip_request == nullptr ||
        sip->sip_request->rq_method != sip_method_notify || sip->sip_call_id == nullptr)
        return -1;
    const auto id = id_of_call_id(sip->sip_call_id->i_id);
    if (!id) return -1;
    const auto it = subscribers_.find(*id);
    if (it == subscribers_.end() || it->second->call_id != sip->sip_call_id->i_id) return -1;
    Subscriber& s = *it->second;
    // Ours: the To tag is our tag; the From tag the notifier's (once there is a dialog, the
    // same: a NOTIFY of another fork gets 481).
    const char* to_tag = sip->sip_to != nullptr ? sip->sip_to->a_tag : nullptr;
    const char* from_tag = sip->sip_from != nullptr ? sip->sip_from->a_tag : nullptr;
    if (to_tag == nullptr || !su_casematch(to_tag, s.local_tag.c_str()) || from_tag == nullptr ||
        (!s.remote_tag.empty() && !su_casematch(from_tag, s.remote_tag.c_str())))
        return 481;
    if (sip->sip_event == nullptr || !su_casematch(sip->sip_event->o_type, event_presence))
        return 489; // Bad Event (RFC 6665 §8.2.2)
    if (sip->sip_subscription_state == nullptr) return 400;
    if (sip->sip_cseq == nullptr || sip->sip_cseq->cs_seq < s.remote_cseq) return 500;
    if (s.remote_tag.empty()) {
        // A NOTIFY before the 2xx makes the dialog (RFC 6665 §4.1.2.4).
        s.remote_tag = from_tag;
        s.route = route_of(sip->sip_record_route, false);
    }
    s.remote_cseq = sip->sip_cseq->cs_seq;
    if (sip->sip_contact != nullptr) s.target = target_of(sip->sip_contact);
    return on_notify(s, sip);
}

int UserAgent::on_notify(Subscriber& s, const void* raw) {
    const auto* sip = static_cast<const sip_t*>(raw);
    NotifyInfo info = detail::notify_info_of(sip);
    if (s.ending) {
        if (info.state == SubState::terminated) forget_subscriber(s); // the final NOTIFY came
        return 200;
    }
    s.answered = true;
    s.notified = true;
    s.notify_by = {};
    const sip_subscription_state_t* ss = sip->sip_subscription_state;
    std::optional<std::chrono::seconds> retry = detail::seconds_of(ss->ss_retry_after);
    bool again = false;
    if (info.state == SubState::active) s.resubscribes = 0;
    if (info.state == SubState::terminated &&
        (info.reason == "deactivated" || info.reason == "probation") &&
        s.resubscribes < max_resubscribes && s.expires > 0) {
        ++s.resubscribes;
        // RFC 6665 §4.1.3: subscribe again (a new dialog), at once or after retry-after.
        spdlog::info("sip: NOTIFY {} -> {}: terminated;reason={}, subscribing again{}",
                     s.request.request_uri, s.request.from, info.reason,
                     retry ? fmt::format(" in {} s", retry->count()) : std::string());
        info.state = SubState::pending;
        info.body.clear();
        again = true;
    } else if (info.state != SubState::terminated && info.expires && s.expires > 0) {
        // P5: the notifier's expires= rules (it may shorten the subscription, not lengthen it).
        refresh_in(s, std::min(*info.expires, std::chrono::seconds(s.expires)));
    }
    spdlog::debug("sip: NOTIFY {} -> {}: {} {} bytes", s.request.request_uri, s.request.from,
                  ss->ss_substate != nullptr ? ss->ss_substate : "", info.body.size());
    const SubscriptionId id = s.id;
    // A copy: the callback may unsubscribe, which clears s.callbacks while it runs.
    if (const auto tell = s.callbacks.on_notify) tell(info);
    // The callback may have unsubscribed.
    auto it = subscribers_.find(id);
    if (it == subscribers_.end() || it->second.get() != &s || s.ending) return 200;
    if (again) {
        new_dialog(s, info.reason == "probation" ? retry.value_or(std::chrono::seconds(0))
                                                 : std::chrono::seconds(0));
        if (s.orq == nullptr && s.refresh_at == Clock::time_point{})
            end_subscriber(s, 503, "Cannot send", "", std::nullopt);
    } else if (info.state == SubState::terminated) {
        end_subscriber(s, 0, "", info.reason, retry);
    } else {
        // P7: a fetch ends with its terminating NOTIFY; one that says something else is
        // waited for no longer than Timer N.
        if (s.expires == 0) s.notify_by = Clock::now() + timer_n_;
        schedule(s);
    }
    return 200;
}

void UserAgent::refresh_in(Subscriber& s, std::chrono::seconds granted) {
    // P5: as nua did: 30 to 60 s ahead of a short expiry, else somewhere in the middle half.
    const auto delta = static_cast<long>(granted.count());
    long low = 0;
    long high = 0;
    if (delta > 90 && delta < 300) {
        low = (delta - 60) * 1000;
        high = (delta - 30) * 1000;
    } else {
        low = std::max<long>((delta * 1000 + 2000) / 4, 500);
        high = low + (delta * 1000 + 1000) / 2;
    }
    const long ms = std::uniform_int_distribution<long>(low, std::max(low, high))(refresh_random_);
    s.refresh_at = Clock::now() + std::chrono::milliseconds(ms);
}

void UserAgent::schedule(Subscriber& s) {
    Clock::time_point next{};
    for (const auto t : {s.refresh_at, s.notify_by})
        if (t != Clock::time_point{} && (next == Clock::time_point{} || t < next)) next = t;
    if (next == s.due) return;
    if (s.due != Clock::time_point{}) subscriber_due_.erase({s.due, s.id});
    s.due = next;
    if (next == Clock::time_point{}) return;
    subscriber_due_.emplace(next, s.id);
    if (!subscriber_timer_ || !subscriber_timer_->armed() || next < subscriber_timer_at_)
        arm_subscriber_timer(next);
}

void UserAgent::arm_subscriber_timer(std::chrono::steady_clock::time_point at) {
    if (!subscriber_timer_) subscriber_timer_ = std::make_unique<core::Timer>(loop_);
    subscriber_timer_at_ = at;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        at - Clock::now() + std::chrono::microseconds(999));
    subscriber_timer_->start(std::max(wait, std::chrono::milliseconds(0)),
                             [this] { on_subscriber_timer(); });
}

void UserAgent::on_subscriber_timer() {
    const core::LongLived long_lived; // the dialog's state (issue 4)
    // What falls due within the next tick goes now: Sofia's loop waits for a timer in whole
    // milliseconds and polls without waiting through the last one, so each firing costs up to a
    // millisecond of CPU. A firing per refresh (each at its own millisecond) took 9 % of a CPU
    // at 100 refreshes/s; at most one per tick bounds it.
    const auto now = Clock::now() + subscriber_tick;
    // A bounded batch per turn of the loop: the rest follows at once.
    for (int n = 0; n < 1000 && !subscriber_due_.empty(); ++n) {
        const auto [at, id] = *subscriber_due_.begin();
        if (at > now) break;
        subscriber_due_.erase(subscriber_due_.begin());
        auto it = subscribers_.find(id);
        if (it == subscribers_.end()) continue;
        Subscriber& s = *it->second;
        s.due = {};
        if (s.notify_by != Clock::time_point{} && s.notify_by <= now) {
            s.notify_by = {};
            if (s.ending) {
                forget_subscriber(s); // no final NOTIFY came
                continue;
            }
            if (s.notified && s.expires == 0) {
                // A fetch that got its state but no terminating NOTIFY: over all the same.
                end_subscriber(s, 0, "", "timeout", std::nullopt);
                continue;
            }
            spdlog::info("sip: SUBSCRIBE {} -> {}: no NOTIFY within Timer N", s.request.from,
                         s.request.request_uri);
            end_subscriber(s, 408, "No NOTIFY (Timer N)", "", std::nullopt);
            continue;
        }
        if (s.refresh_at != Clock::time_point{} && s.refresh_at <= now) {
            s.refresh_at = {};
            if (!s.ending && s.orq == nullptr && !stopping_) {
                if (s.remote_tag.empty() && !s.answered)
                    spdlog::debug("sip: SUBSCRIBE {} -> {} again", s.request.from,
                                  s.request.request_uri);
                if (!send_subscribe(s, s.expires)) {
                    end_subscriber(s, 503, "Cannot send", "", std::nullopt);
                    continue;
                }
            } else if (s.orq != nullptr) {
                s.refresh_at = now + std::chrono::seconds(1); // one in flight: a moment later
            }
        }
        schedule(s);
    }
    subscriber_timer_at_ = {};
    if (!subscriber_due_.empty()) arm_subscriber_timer(subscriber_due_.begin()->first);
}

void UserAgent::forget_subscriber(Subscriber& s) {
    if (s.orq != nullptr) nta_outgoing_destroy(s.orq);
    if (s.due != Clock::time_point{}) subscriber_due_.erase({s.due, s.id});
    subscribers_.erase(s.id); // s is gone
}

void UserAgent::end_subscriber(Subscriber& s, int status, const std::string& phrase,
                               const std::string& reason,
                               std::optional<std::chrono::seconds> retry) {
    SubscriberCallbacks callbacks = std::move(s.callbacks);
    forget_subscriber(s);
    if (callbacks.on_end) callbacks.on_end(SubscriptionEnd{status, phrase, reason, retry});
}

void UserAgent::drop_subscribers() {
    for (auto& [id, s] : subscribers_)
        if (s->orq != nullptr) nta_outgoing_destroy(s->orq);
    subscribers_.clear();
    subscriber_due_.clear();
    if (subscriber_timer_) subscriber_timer_->cancel();
}

} // namespace xsgw::sip
