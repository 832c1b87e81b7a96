#include "xsgw/bridge/presence_bridge.hpp"

#include "xsgw/bridge/routing.hpp"
#include "xsgw/bridge/stanza_presence.hpp"
#include "xsgw/core/long_lived.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <gloox/tag.h>
#include <random>
#include <spdlog/spdlog.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace xsgw::bridge {
namespace {

constexpr const char* pidf_type = "application/pidf+xml";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
// Re-establishing a failed outbound subscription: first wait, cap.
constexpr auto retry_first = std::chrono::seconds(5);
constexpr auto retry_cap = std::chrono::seconds(3600);

bool ends_for_good(int status) {
    // P4: the notifier or the user's domain said no, or there is no such user.
    return status == 403 || status == 404 || status == 410 || status == 484 || status == 489 ||
           status == 603;
}

bool reason_ends_for_good(const std::string& reason) {
    return reason == "rejected" || reason == "noresource";
}

// Whether a SIP Accept header allows a PIDF body.
bool accepts_pidf(const std::string& accept) {
    if (accept.empty()) return true; // RFC 3856 §6.7: PIDF is the default
    std::size_t start = 0;
    while (start <= accept.size()) {
        std::size_t comma = accept.find(',', start);
        if (comma == std::string::npos) comma = accept.size();
        std::string range = accept.substr(start, comma - start);
        range = range.substr(0, range.find(';'));
        range.erase(std::remove_if(range.begin(), range.end(),
                                   [](unsigned char c) { return std::isspace(c) != 0; }),
                    range.end());
        std::transform(range.begin(), range.end(), range.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (range == "application/pidf+xml" || range == "application/*" || range == "*/*")
            return true;
        start = comma + 1;
    }
    return false;
}

std::string describe(const sip::SubscriptionEnd& end) {
    if (end.status != 0) return fmt::format("{} {}", end.status, end.phrase);
    return fmt::format("terminated;reason={}", end.reason.empty() ? "none" : end.reason);
}

} // namespace

PresenceBridge::PresenceBridge(core::EventLoop& loop, const core::Config& config,
                               xmpp::ComponentLink& link, sip::UserAgent& agent,
                               dns::Resolver& resolver)
    : loop_(loop), config_(config.presence), component_(config.xmpp.component), link_(link),
      agent_(agent), resolver_(resolver), alive_(std::make_shared<bool>(true)) {
    addressing_.component = config.xmpp.component;
    addressing_.sip_domain = config.sip.domain;
    agent_.set_subscribe_handler([this](sip::WatcherId id, const sip::IncomingSubscribe& request) {
        return on_sip_subscribe(id, request);
    });
    agent_.set_watcher_end_handler(
        [this](sip::WatcherId id, const std::string& reason) { on_watcher_end(id, reason); });
    // P9: a watcher that ends its subscription sees the user closed in the final NOTIFY.
    agent_.set_final_body_handler([this](sip::WatcherId id) {
        const auto it = inbound_.find(id);
        return it == inbound_.end() ? std::string()
                                    : translate::presence_to_pidf(it->second.presentity, {});
    });
    agent_.set_max_watcher_expires(config_.max_expires);
    state_path_ = config_.state_file;
    if (state_path_.empty()) {
        const char* dir = std::getenv("STATE_DIRECTORY"); // systemd's StateDirectory=
        if (dir != nullptr && *dir == '/') {
            std::string first(dir);
            first = first.substr(0, first.find(':'));
            state_path_ = first + "/presence.state";
        }
    }
    if (!state_path_.empty()) load_state();
}

PresenceBridge::~PresenceBridge() {
    *alive_ = false;
    agent_.set_subscribe_handler(nullptr);
    agent_.set_watcher_end_handler(nullptr);
    agent_.set_final_body_handler(nullptr);
}

// ---------------------------------------------------------------------------
// XMPP side

void PresenceBridge::from_xmpp(const gloox::Tag& stanza) {
    const core::LongLived long_lived; // subscriptions' state (issue 4)
    ++stats_.xmpp_in;
    const std::string type = stanza.findAttribute("type");
    auto from = address::parse_jid(stanza.findAttribute("from"));
    auto to = address::parse_jid(stanza.findAttribute("to"));
    if (!from || !to) {
        spdlog::info("bridge: presence type='{}' from '{}' to '{}' dropped: bad address", type,
                     stanza.findAttribute("from"), stanza.findAttribute("to"));
        return;
    }
    if (type == "error") {
        // E4: never answered. An error for our subscribe to a user refuses its watchers.
        spdlog::info("bridge: presence error from {} to {}", address::to_string(*from),
                     address::to_string(*to));
        xmpp_refuse({address::bare_string(*from), address::bare_string(*to)});
        return;
    }
    if (to->local.empty()) return on_gateway_presence(type, *from);
    const Key key{address::bare_string(*from), address::bare_string(*to)};
    if (type.empty() || type == "unavailable") {
        xmpp_presence(key, presence_from_stanza(stanza));
    } else if (type == "subscribe") {
        // A pair still waiting its turn in the restore is started now, as a new one: it
        // leaves the queue first, so its reserved place (P14) is the one it takes.
        unqueue(key);
        std::string why;
        if (outbound_.find(key) == outbound_.end() && !may_add(key.user, why)) {
            ++stats_.refused;
            spdlog::warn("bridge: subscribe from {} to {} refused: {}", key.user, key.contact, why);
            return send_error(stanza, "policy-violation", why);
        }
        xmpp_subscribe(key, *to);
    } else if (type == "unsubscribe") {
        xmpp_unsubscribe(key);
    } else if (type == "subscribed") {
        xmpp_approve(key);
    } else if (type == "unsubscribed") {
        xmpp_refuse(key);
    } else if (type == "probe") {
        xmpp_probe(key, *to);
    } else {
        spdlog::debug("bridge: presence of unknown type '{}' from {} dropped", type, key.user);
    }
}

void PresenceBridge::on_gateway_presence(const std::string& type, const address::Jid& from) {
    auto reply = std::make_unique<gloox::Tag>("presence");
    reply->addAttribute("from", component_);
    reply->addAttribute("to", address::bare_string(from));
    if (type == "subscribe") {
        reply->addAttribute("type", "subscribed");
    } else if (type == "unsubscribe") {
        reply->addAttribute("type", "unsubscribed");
    } else if (type == "probe") {
        reply->addAttribute("to", address::to_string(from));
    } else {
        return;
    }
    ++stats_.xmpp_out;
    link_.send(reply.release());
}

void PresenceBridge::send_presence(const Key& key, const translate::ResourcePresence& presence) {
    std::string from = key.contact;
    if (!presence.resource.empty()) {
        // A tuple id from the SIP side becomes a resource only when it makes a valid JID.
        const std::string full = from + "/" + presence.resource;
        if (address::parse_jid(full)) {
            from = full;
        } else {
            spdlog::debug("bridge: tuple '{}' of {} is no valid resource: sent from the bare JID",
                          presence.resource, key.contact);
        }
    }
    ++stats_.xmpp_out;
    if (!link_.send(stanza_from_presence(presence, from, key.user)))
        spdlog::info("bridge: presence from {} to {} lost: XMPP link down", from, key.user);
}

void PresenceBridge::send_type(const Key& key, const char* type) {
    auto* stanza = new gloox::Tag("presence");
    stanza->addAttribute("from", key.contact);
    stanza->addAttribute("to", key.user);
    stanza->addAttribute("type", type);
    ++stats_.xmpp_out;
    if (!link_.send(stanza))
        spdlog::info("bridge: presence {} from {} to {} lost: XMPP link down", type, key.contact,
                     key.user);
}

void PresenceBridge::send_error(const gloox::Tag& request, const char* condition,
                                const std::string& text) {
    auto* stanza = new gloox::Tag("presence");
    stanza->addAttribute("from", request.findAttribute("to"));
    stanza->addAttribute("to", request.findAttribute("from"));
    stanza->addAttribute("type", "error");
    if (request.hasAttribute("id")) stanza->addAttribute("id", request.findAttribute("id"));
    auto* error = new gloox::Tag(stanza, "error");
    error->addAttribute("type", "modify");
    new gloox::Tag(error, condition, "xmlns", ns_stanzas);
    if (!text.empty()) {
        auto* t = new gloox::Tag(error, "text", text);
        t->setXmlns(ns_stanzas);
    }
    ++stats_.xmpp_out;
    link_.send(stanza);
}

void PresenceBridge::xmpp_subscribe(const Key& key, const address::Jid& contact) {
    auto it = outbound_.find(key);
    if (it != outbound_.end()) {
        Outbound& out = it->second;
        spdlog::info("bridge: subscribe from {} to {}: already subscribed", key.user, key.contact);
        if (out.told_subscribed) {
            send_type(key, "subscribed");
            for (const auto& r : out.last)
                send_presence(key, r);
        }
        return;
    }
    (void)contact;
    start_outbound(key, config_.subscribe_expires);
}

void PresenceBridge::xmpp_unsubscribe(const Key& key) {
    if (unqueue(key)) {
        // Waiting its turn in the restore: it never starts, and leaves the state file.
        spdlog::info("bridge: unsubscribe from {} to {}: taken out of the restore", key.user,
                     key.contact);
        save_state_soon();
    }
    auto it = outbound_.find(key);
    if (it == outbound_.end()) {
        // Nothing held (e.g. after a restart): still confirm, the user's roster expects it.
        send_type(key, "unsubscribed");
        return;
    }
    spdlog::info("bridge: unsubscribe from {} to {}: ending the SIP subscription", key.user,
                 key.contact);
    drop_outbound(key); // P6: SUBSCRIBE Expires: 0
    send_type(key, "unsubscribed");
    send_type(key, "unavailable");
}

void PresenceBridge::xmpp_probe(const Key& key, const address::Jid& contact) {
    unqueue(key); // waiting its turn in the restore: the user wants it now
    auto it = outbound_.find(key);
    if (it == outbound_.end()) {
        std::string why;
        if (!may_add(key.user, why)) {
            spdlog::warn("bridge: probe from {} to {} not followed: {}", key.user, key.contact,
                         why);
            return;
        }
        spdlog::info("bridge: probe from {} to {} without a subscription: re-establishing it",
                     key.user, key.contact);
        (void)contact;
        start_outbound(key, config_.subscribe_expires);
        return;
    }
    Outbound& out = it->second;
    if (out.phase == Phase::active && out.have_state) {
        // P7: the cached state is fresh (NOTIFYs keep it so).
        if (out.last.empty()) send_type(key, "unavailable");
        for (const auto& r : out.last)
            send_presence(key, r);
        return;
    }
    if (!out.presentity.empty()) fetch(key, out.presentity, out.watcher);
}

void PresenceBridge::xmpp_approve(const Key& key) {
    auto found = watchers_.find(key);
    if (found == watchers_.end()) {
        spdlog::debug("bridge: subscribed from {} for {}: no SIP watcher waits", key.user,
                      key.contact);
        return;
    }
    bool newly = false;
    for (sip::WatcherId id : found->second) {
        Inbound& in = inbound_.at(id);
        if (in.active) continue;
        in.active = true;
        newly = true;
        spdlog::info("bridge: {} approved {}: NOTIFY active", key.user, in.watcher);
        notify_watcher(id, in);
    }
    if (newly) {
        // The user's current presence, which its server sends a contact that probes it
        // (RFC 6121 §4.3); each resource's answer then becomes a NOTIFY.
        auto* probe = new gloox::Tag("presence");
        probe->addAttribute("from", key.contact);
        probe->addAttribute("to", key.user);
        probe->addAttribute("type", "probe");
        ++stats_.xmpp_out;
        link_.send(probe);
    }
}

void PresenceBridge::xmpp_refuse(const Key& key) {
    auto found = watchers_.find(key);
    if (found == watchers_.end()) return;
    const std::set<sip::WatcherId> ids = found->second;
    for (sip::WatcherId id : ids) {
        spdlog::info("bridge: {} refused or revoked {}: NOTIFY terminated;reason=rejected",
                     key.user, inbound_.at(id).watcher);
        end_watcher(id, "rejected", true);
    }
}

void PresenceBridge::xmpp_presence(const Key& key, const translate::ResourcePresence& presence) {
    auto found = watchers_.find(key);
    if (found != watchers_.end()) {
        // Kept only for pairs with SIP watchers: nobody else can ask for it (bounded by P14).
        auto& resources = seen_[key];
        if (presence.available) {
            resources[presence.resource] = presence;
        } else if (presence.resource.empty()) {
            resources.clear(); // unavailable from the bare JID: every resource is gone
        } else {
            resources.erase(presence.resource);
        }
        for (sip::WatcherId id : found->second) {
            Inbound& in = inbound_.at(id);
            if (in.active) notify_watcher(id, in);
        }
    }
    if (!config_.publish_to.empty()) publish(key.user, presence);
}

// ---------------------------------------------------------------------------
// Outbound subscriptions: an XMPP user watches a SIP presentity

void PresenceBridge::start_outbound(const Key& key, std::chrono::seconds expires) {
    auto contact = address::parse_jid(key.contact);
    auto user = address::parse_jid(key.user);
    if (!contact || !user) return;
    auto presentity = address::contact_jid_to_sip(*contact, addressing_);
    auto watcher = address::xmpp_user_to_sip(*user, addressing_);
    if (!presentity || !watcher) {
        const auto& e = !presentity ? presentity.error() : watcher.error();
        spdlog::info("bridge: subscribe from {} to {} refused: {}", key.user, key.contact,
                     e.reason);
        ++stats_.refused;
        send_type(key, "unsubscribed");
        return;
    }
    presentity->gr.clear();
    auto [it, inserted] = outbound_.try_emplace(key);
    Outbound& out = it->second;
    if (inserted) {
        count(key.user, +1);
        save_state_soon();
    }
    out.presentity = address::to_string(*presentity);
    out.watcher = address::to_string(*watcher);
    out.phase = Phase::resolving;
    out.generation = next_generation_++;
    const std::uint64_t generation = out.generation;
    resolver_.resolve_sip(
        destination_of(*presentity),
        [this, alive = alive_, key, generation, expires](const dns::Resolution& resolution) {
            if (!*alive) return;
            on_resolved(key, generation, resolution, expires);
        });
}

void PresenceBridge::on_resolved(const Key& key, std::uint64_t generation,
                                 const dns::Resolution& resolution, std::chrono::seconds expires) {
    const core::LongLived long_lived; // subscriptions' state (issue 4)
    auto it = outbound_.find(key);
    if (it == outbound_.end() || it->second.generation != generation) return;
    Outbound& out = it->second;
    if (resolution.failure != dns::Failure::none || resolution.targets.empty()) {
        spdlog::info("bridge: subscription of {} to {}: DNS: {}", key.user, out.presentity,
                     resolution.reason);
        if (resolution.failure == dns::Failure::unreachable) {
            schedule_retry(key, out, retry_first);
        } else {
            // The domain does not exist for SIP: nothing to subscribe to, ever.
            send_type(key, "unsubscribed");
            drop_outbound(key);
        }
        return;
    }
    sip::OutgoingSubscribe request{out.presentity, out.watcher, expires};
    sip::SubscriberCallbacks callbacks;
    callbacks.on_notify = [this, alive = alive_, key, generation](const sip::NotifyInfo& n) {
        if (*alive) on_notify(key, generation, n);
    };
    callbacks.on_end = [this, alive = alive_, key, generation](const sip::SubscriptionEnd& end) {
        if (*alive) on_outbound_end(key, generation, end);
    };
    ++stats_.subscribes_out;
    out.phase = Phase::subscribing;
    out.id = agent_.subscribe(request, hops_from(resolution), std::move(callbacks));
    if (out.id == 0) schedule_retry(key, out, retry_first);
}

void PresenceBridge::on_notify(const Key& key, std::uint64_t generation,
                               const sip::NotifyInfo& notify) {
    ++stats_.notifies_in;
    auto it = outbound_.find(key);
    if (it == outbound_.end() || it->second.generation != generation) return;
    settle_restored(key); // answered, pending or not: its turn in the restore is over
    Outbound& out = it->second;
    if (notify.state == sip::SubState::pending) return; // P2: nothing to XMPP yet
    std::vector<translate::ResourcePresence> now;
    bool readable = true;
    if (!notify.body.empty() && notify.content_type == pidf_type) {
        auto parsed = translate::pidf_to_presence(notify.body);
        if (parsed) {
            for (auto& r : *parsed)
                if (r.available) now.push_back(std::move(r));
        } else {
            ++stats_.pidf_errors;
            readable = false;
            spdlog::info("bridge: NOTIFY for {} from {}: unreadable PIDF: {}", key.user,
                         out.presentity, parsed.error().what);
        }
    } else if (!notify.body.empty()) {
        readable = false;
        spdlog::info("bridge: NOTIFY for {} from {}: body of type '{}' ignored", key.user,
                     out.presentity, notify.content_type);
    }
    if (notify.state == sip::SubState::active) {
        out.phase = Phase::active;
        out.failures = 0;
        if (!out.told_subscribed) {
            out.told_subscribed = true;
            spdlog::info("bridge: {} is subscribed to {}", key.user, out.presentity);
            send_type(key, "subscribed"); // P2: first active NOTIFY
        }
    }
    // P3: no body, or nothing open, is unavailable; an unreadable body changes nothing.
    if (!readable) return;
    out.have_state = true;
    tell(key, out, std::move(now));
}

void PresenceBridge::tell(const Key& key, Outbound& out,
                          std::vector<translate::ResourcePresence> now) {
    // Resources that went away become unavailable, one by one.
    for (const auto& before : out.last) {
        const bool still = std::any_of(
            now.begin(), now.end(), [&](const auto& r) { return r.resource == before.resource; });
        if (!still) {
            translate::ResourcePresence gone;
            gone.resource = before.resource;
            send_presence(key, gone);
        }
    }
    if (now.empty() && out.last.empty() && !out.have_told) send_type(key, "unavailable");
    for (const auto& r : now) {
        // A refresh's NOTIFY repeats the state: only what changed goes to the user.
        const bool same = std::find(out.last.begin(), out.last.end(), r) != out.last.end();
        if (!same || !out.have_told) send_presence(key, r);
    }
    out.have_told = true;
    out.last = std::move(now);
}

void PresenceBridge::on_outbound_end(const Key& key, std::uint64_t generation,
                                     const sip::SubscriptionEnd& end) {
    auto it = outbound_.find(key);
    if (it == outbound_.end() || it->second.generation != generation) return;
    settle_restored(key);
    Outbound& out = it->second;
    out.id = 0;
    spdlog::info("bridge: subscription of {} to {} ended: {}", key.user, out.presentity,
                 describe(end));
    if (ends_for_good(end.status) || (end.status == 0 && reason_ends_for_good(end.reason))) {
        // P4: refused: the user hears unsubscribed and the state goes.
        if (!out.last.empty()) tell(key, out, {});
        send_type(key, "unsubscribed");
        drop_outbound(key);
        return;
    }
    if (!out.last.empty()) tell(key, out, {});
    auto wait = end.retry_after.value_or(std::chrono::seconds(0));
    // RFC 6665 §4.1.3: deactivated and timeout (and 481 on a refresh) may retry at once.
    if ((end.reason == "deactivated" || end.reason == "timeout" || end.status == 481) &&
        out.failures == 0 && !end.retry_after) {
        ++out.failures;
        out.told_subscribed = out.told_subscribed && out.have_state;
        start_outbound(key, config_.subscribe_expires);
        return;
    }
    schedule_retry(key, out, wait);
}

void PresenceBridge::schedule_retry(const Key& key, Outbound& out, std::chrono::seconds at_least) {
    ++out.failures;
    out.phase = Phase::retry_wait;
    auto backoff = retry_first * (1U << std::min(out.failures - 1, 10U));
    backoff = std::min<std::chrono::seconds>(backoff, retry_cap);
    static thread_local std::minstd_rand random{std::random_device{}()};
    const auto jitter = std::chrono::milliseconds(std::uniform_int_distribution<long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count() / 2)(random));
    const auto wait =
        std::max<std::chrono::milliseconds>(backoff + jitter, std::chrono::seconds(at_least));
    spdlog::info("bridge: subscription of {} to {} retried in {} ms", key.user, out.presentity,
                 wait.count());
    if (!out.retry) out.retry = std::make_unique<core::Timer>(loop_);
    out.retry->start(wait, [this, key] {
        auto it = outbound_.find(key);
        if (it != outbound_.end() && it->second.phase == Phase::retry_wait)
            start_outbound(key, config_.subscribe_expires);
    });
    settle_restored(key); // waiting, not in flight: the restore goes on without it
}

void PresenceBridge::drop_outbound(const Key& key) {
    auto it = outbound_.find(key);
    if (it == outbound_.end()) return;
    if (it->second.id != 0) agent_.unsubscribe(it->second.id);
    outbound_.erase(it);
    count(key.user, -1);
    save_state_soon();
    settle_restored(key);
}

void PresenceBridge::fetch(const Key& key, const std::string& presentity,
                           const std::string& watcher) {
    auto uri = address::parse_sip_uri(presentity);
    if (!uri) return;
    resolver_.resolve_sip(destination_of(*uri), [this, alive = alive_, key, presentity,
                                                 watcher](const dns::Resolution& resolution) {
        if (!*alive || resolution.targets.empty()) return;
        sip::SubscriberCallbacks callbacks;
        callbacks.on_notify = [this, alive, key](const sip::NotifyInfo& n) {
            if (!*alive || n.state == sip::SubState::pending) return;
            ++stats_.notifies_in;
            if (n.content_type != pidf_type || n.body.empty()) return;
            auto parsed = translate::pidf_to_presence(n.body);
            if (!parsed) return;
            bool any = false;
            for (const auto& r : *parsed) {
                if (!r.available) continue;
                any = true;
                send_presence(key, r);
            }
            if (!any) send_type(key, "unavailable");
        };
        callbacks.on_end = [](const sip::SubscriptionEnd&) {};
        ++stats_.subscribes_out;
        spdlog::info("bridge: probe from {}: fetching {}", key.user, presentity);
        agent_.subscribe({presentity, watcher, std::chrono::seconds(0)}, hops_from(resolution),
                         std::move(callbacks));
    });
}

// ---------------------------------------------------------------------------
// Inbound subscriptions: a SIP watcher watches an XMPP user

sip::UserAgent::SubscribeDecision
PresenceBridge::on_sip_subscribe(sip::WatcherId id, const sip::IncomingSubscribe& request) {
    sip::UserAgent::SubscribeDecision decision;
    auto refuse = [&](int status, std::string phrase) {
        ++stats_.refused;
        spdlog::info("bridge: SUBSCRIBE from {} to {} refused: {} {}", request.from,
                     request.request_uri, status, phrase);
        decision.status = status;
        decision.phrase = std::move(phrase);
        return decision;
    };
    const auto expires = request.expires.value_or(config_.max_expires);
    auto existing = inbound_.find(id);
    if (request.refresh && existing != inbound_.end()) {
        Inbound& in = existing->second;
        if (expires.count() == 0) {
            // P9: the watcher ends it.
            decision.status = 200;
            decision.after = [this, id] { end_watcher(id, "timeout", true); };
            return decision;
        }
        if (expires < config_.min_expires) {
            decision = refuse(423, "Interval Too Brief");
            decision.min_expires = std::to_string(config_.min_expires.count());
            return decision;
        }
        decision.status = 200;
        decision.expires = std::min(expires, config_.max_expires);
        decision.after = [this, id] {
            auto it = inbound_.find(id);
            if (it != inbound_.end()) notify_watcher(id, it->second); // P9: current state
        };
        (void)in;
        return decision;
    }
    if (request.event != "presence") return refuse(489, "Bad Event");
    if (!accepts_pidf(request.accept)) {
        decision = refuse(406, "Not Acceptable");
        return decision;
    }
    auto ruri = address::parse_sip_uri(request.request_uri);
    if (!ruri) return refuse(400, "Bad Request-URI");
    auto user = address::sip_request_uri_to_xmpp_user(*ruri, addressing_);
    if (!user)
        return refuse(user.error().condition == address::Condition::forbidden ? 403 : 404,
                      user.error().reason);
    auto from = address::parse_sip_uri(request.from);
    if (!from) return refuse(400, "Bad From");
    from->gr.clear();
    auto contact = address::sip_to_contact_jid(*from, addressing_);
    if (!contact) return refuse(403, contact.error().reason);
    ruri->gr.clear();
    ruri->params.clear();
    const Key key{address::bare_string(*user), address::bare_string(*contact)};
    const std::string presentity = address::to_string(*ruri);
    if (expires.count() == 0) {
        // A fetch: the state this contact may see now, then terminated.
        decision.status = 200;
        decision.after = [this, id, key, presentity] {
            ++stats_.notifies_out;
            agent_.notify(id, sip::SubState::terminated, "timeout", pidf_type,
                          pidf_for(key, presentity));
        };
        return decision;
    }
    if (expires < config_.min_expires) {
        decision = refuse(423, "Interval Too Brief");
        decision.min_expires = std::to_string(config_.min_expires.count());
        return decision;
    }
    std::string why;
    if (!may_add(key.user, why)) {
        decision = refuse(503, "Subscription limit reached");
        decision.retry_after = "600";
        spdlog::warn("bridge: SUBSCRIBE from {} to {}: {}", request.from, key.user, why);
        return decision;
    }
    if (!link_.up()) {
        decision = refuse(503, "XMPP server not connected");
        decision.retry_after = "10";
        return decision;
    }
    Inbound in{key, address::to_string(*from), presentity, false};
    auto& ids = watchers_[key];
    // Another device of the same contact already approved: active at once.
    for (sip::WatcherId other : ids)
        in.active = in.active || inbound_.at(other).active;
    ids.insert(id);
    inbound_.emplace(id, std::move(in));
    count(key.user, +1);
    ++stats_.subscribes_in;
    decision.status = 202;
    decision.expires = std::min(expires, config_.max_expires);
    spdlog::info("bridge: {} subscribes to {} ({} s)", request.from, key.user,
                 decision.expires.count());
    decision.after = [this, id, key] {
        auto it = inbound_.find(id);
        if (it == inbound_.end()) return;
        // P8: NOTIFY pending at once, and ask the XMPP user.
        notify_watcher(id, it->second);
        if (!it->second.active) {
            auto* stanza = new gloox::Tag("presence");
            stanza->addAttribute("from", key.contact);
            stanza->addAttribute("to", key.user);
            stanza->addAttribute("type", "subscribe");
            ++stats_.xmpp_out;
            link_.send(stanza);
        }
    };
    return decision;
}

std::string PresenceBridge::pidf_for(const Key& key, const std::string& presentity) const {
    std::vector<translate::ResourcePresence> resources;
    auto seen = seen_.find(key);
    if (seen != seen_.end())
        for (const auto& [resource, presence] : seen->second)
            resources.push_back(presence);
    return translate::presence_to_pidf(presentity, resources);
}

void PresenceBridge::notify_watcher(sip::WatcherId id, Inbound& in) {
    ++stats_.notifies_out;
    if (!in.active) {
        agent_.notify(id, sip::SubState::pending, "", "", "");
        return;
    }
    agent_.notify(id, sip::SubState::active, "", pidf_type, pidf_for(in.key, in.presentity));
}

void PresenceBridge::end_watcher(sip::WatcherId id, const std::string& reason, bool closed) {
    auto it = inbound_.find(id);
    if (it == inbound_.end()) return;
    const Inbound in = std::move(it->second);
    inbound_.erase(it);
    auto ids = watchers_.find(in.key);
    if (ids != watchers_.end()) {
        ids->second.erase(id);
        if (ids->second.empty()) {
            watchers_.erase(ids);
            seen_.erase(in.key);
        }
    }
    count(in.key.user, -1);
    if (closed) {
        ++stats_.notifies_out;
        agent_.notify(id, sip::SubState::terminated, reason, pidf_type,
                      translate::presence_to_pidf(in.presentity, {}));
    }
    if (reason == "timeout") {
        // P9: the contact no longer sees the user.
        auto* stanza = new gloox::Tag("presence");
        stanza->addAttribute("from", in.key.contact);
        stanza->addAttribute("to", in.key.user);
        stanza->addAttribute("type", "unavailable");
        ++stats_.xmpp_out;
        link_.send(stanza);
    }
}

void PresenceBridge::on_watcher_end(sip::WatcherId id, const std::string& reason) {
    if (inbound_.find(id) == inbound_.end()) return;
    spdlog::info("bridge: SIP watcher {} ended: {}", inbound_.at(id).watcher, reason);
    end_watcher(id, reason.empty() ? "timeout" : reason, true);
}

// ---------------------------------------------------------------------------
// Publication (P13)

void PresenceBridge::publish(const std::string& user, const translate::ResourcePresence& presence) {
    if (publications_.find(user) == publications_.end()) {
        if (!presence.available) return; // nothing published, nothing to take back
        if (publications_.size() >= config_.max_total) {
            spdlog::warn("bridge: presence of {} not published: {} publications held "
                         "(presence.max_total)",
                         user, publications_.size());
            return;
        }
    }
    Publication& p = publications_[user];
    if (presence.available) {
        p.resources[presence.resource] = presence;
    } else if (presence.resource.empty()) {
        p.resources.clear();
    } else {
        p.resources.erase(presence.resource);
    }
    auto jid = address::parse_jid(user);
    if (!jid) return;
    auto aor = address::xmpp_user_to_sip(*jid, addressing_);
    if (!aor) return;
    const std::string entity = address::to_string(*aor);
    if (p.resources.empty()) {
        if (p.id != 0) {
            spdlog::info("bridge: {} offline: removing its publication", user);
            agent_.unpublish(p.id);
        }
        if (!p.resolving) publications_.erase(user);
        return;
    }
    std::vector<translate::ResourcePresence> all;
    for (const auto& [resource, r] : p.resources)
        all.push_back(r);
    std::string body = translate::presence_to_pidf(entity, all);
    // The server sends one copy of a broadcast per contact: publish a change once (RFC 3903).
    if (body == p.body) return;
    p.body = std::move(body);
    ++stats_.publishes;
    if (p.id != 0) {
        agent_.republish(p.id, pidf_type, p.body);
        return;
    }
    if (p.resolving) return; // the body is made again when the lookup is back
    auto server = address::parse_sip_uri(config_.publish_to);
    if (!server) return;
    p.resolving = true;
    resolver_.resolve_sip(destination_of(*server), [this, alive = alive_, user,
                                                    entity](const dns::Resolution& resolution) {
        if (!*alive) return;
        auto it = publications_.find(user);
        if (it == publications_.end()) return;
        Publication& pub = it->second;
        pub.resolving = false;
        if (pub.resources.empty()) {
            publications_.erase(it);
            return;
        }
        if (resolution.targets.empty()) {
            spdlog::warn("bridge: cannot publish {}: {}: {}", user, config_.publish_to,
                         resolution.reason);
            publications_.erase(it);
            return;
        }
        std::vector<translate::ResourcePresence> all;
        for (const auto& [resource, r] : pub.resources)
            all.push_back(r);
        pub.body = translate::presence_to_pidf(entity, all);
        pub.id = agent_.publish(entity, pidf_type, pub.body, config_.publish_expires,
                                hops_from(resolution));
    });
}

// ---------------------------------------------------------------------------
// Bounds (P14) and shutdown

bool PresenceBridge::may_add(const std::string& user, std::string& why) const {
    // Pairs waiting their turn in the restore hold their place (they are in per_user_ too).
    const std::size_t total = outbound_.size() + inbound_.size() + queued_.size();
    if (total >= config_.max_total) {
        why = fmt::format("the gateway holds {} subscriptions (presence.max_total)", total);
        return false;
    }
    auto it = per_user_.find(user);
    const std::size_t mine = it == per_user_.end() ? 0 : it->second;
    if (mine >= config_.max_per_user) {
        why = fmt::format("{} takes part in {} subscriptions (presence.max_per_user)", user, mine);
        return false;
    }
    return true;
}

void PresenceBridge::count(const std::string& user, int delta) {
    auto& n = per_user_[user];
    if (delta < 0 && n > 0) {
        --n;
    } else if (delta > 0) {
        ++n;
    }
    if (n == 0) per_user_.erase(user);
}

std::vector<std::string> PresenceBridge::reload(const core::PresenceConfig& next) {
    std::vector<std::string> changed;
    auto take = [&](const char* key, auto& mine, const auto& theirs) {
        if (mine == theirs) return;
        changed.push_back(fmt::format("presence.{} {} -> {}", key, mine, theirs));
        mine = theirs;
    };
    auto take_seconds = [&](const char* key, std::chrono::seconds& mine,
                            std::chrono::seconds theirs) {
        if (mine == theirs) return;
        changed.push_back(
            fmt::format("presence.{} {} s -> {} s", key, mine.count(), theirs.count()));
        mine = theirs;
    };
    take("max_per_user", config_.max_per_user, next.max_per_user);
    take("max_total", config_.max_total, next.max_total);
    take_seconds("subscribe_expires", config_.subscribe_expires, next.subscribe_expires);
    take_seconds("min_expires", config_.min_expires, next.min_expires);
    take_seconds("max_expires", config_.max_expires, next.max_expires);
    take_seconds("publish_expires", config_.publish_expires, next.publish_expires);
    agent_.set_max_watcher_expires(config_.max_expires);
    if (next.publish_to != config_.publish_to)
        changed.push_back("presence.publish_to changed: takes effect after a restart");
    if (next.state_file != config_.state_file)
        changed.push_back("presence.state_file changed: takes effect after a restart");
    return changed;
}

// ---------------------------------------------------------------------------
// The state file

void PresenceBridge::on_link_up() {
    // A link that comes back goes on with the restore begun, if any; after shutdown() there
    // is nothing to restore, and nothing to save.
    if (restored_ || restore_done_) return;
    restored_ = true;
    restore_total_ = queued_.size();
    restore_began_ = std::chrono::steady_clock::now();
    if (restore_total_ != 0)
        spdlog::info("bridge: restoring {} subscriptions of XMPP users from {}, {} at a time",
                     restore_total_, state_path_, restore_window);
    restore_next();
}

void PresenceBridge::restore_next() {
    const core::LongLived long_lived; // subscriptions' state (issue 4)
    if (!restored_ || restore_done_) return;
    while (restoring_.size() < restore_window && !restore_.empty()) {
        const Key key = restore_.front();
        restore_.pop_front();
        if (!unqueue(key)) continue;             // started or taken out meanwhile
        if (outbound_.count(key) != 0) continue; // cannot happen: a started pair leaves the queue
        std::string why;
        if (!may_add(key.user, why)) {
            spdlog::warn("bridge: subscription of {} to {} not restored: {}", key.user, key.contact,
                         why);
            save_state_soon();
            continue;
        }
        start_outbound(key, config_.subscribe_expires);
        if (outbound_.count(key) == 0) continue; // refused at once (the user heard unsubscribed)
        ++restore_started_;
        restoring_.insert(key);
    }
    if (!restore_.empty() || !restoring_.empty()) return;
    restore_done_ = true;
    if (restore_total_ == 0) return;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - restore_began_;
    spdlog::info("bridge: restored {} subscriptions of XMPP users from {} in {:.2f} s{}",
                 restore_started_, state_path_, took.count(),
                 restore_started_ == restore_total_
                     ? std::string()
                     : fmt::format(" (of {} pairs: the others were started or dropped by "
                                   "their users first, or refused)",
                                   restore_total_));
}

bool PresenceBridge::unqueue(const Key& key) {
    if (queued_.erase(key) == 0) return false;
    count(key.user, -1); // its reserved place goes (restore_ skips it when its turn comes)
    return true;
}

void PresenceBridge::settle_restored(const Key& key) {
    if (restoring_.erase(key) != 0) restore_next();
}

void PresenceBridge::load_state() {
    const core::LongLived long_lived; // subscriptions' state (issue 4)
    std::ifstream in(state_path_);
    if (!in) {
        if (errno != ENOENT)
            spdlog::warn("bridge: cannot read {}: {}", state_path_, std::strerror(errno));
        return;
    }
    std::string line;
    std::size_t bad = 0;
    std::size_t over = 0;
    while (std::getline(in, line) && queued_.size() < config_.max_total) {
        std::istringstream fields(line);
        std::string user, contact, extra;
        fields >> user >> contact >> extra;
        auto u = address::parse_jid(user);
        auto c = address::parse_jid(contact);
        if (!u || !c || !extra.empty() || c->domain != component_) {
            ++bad;
            continue;
        }
        Key key{address::bare_string(*u), address::bare_string(*c)};
        if (queued_.count(key) != 0) continue; // twice in the file
        auto mine = per_user_.find(key.user);
        if (mine != per_user_.end() && mine->second >= config_.max_per_user) {
            ++over;
            continue;
        }
        queued_.insert(key);
        count(key.user, +1); // its place is held until its turn (P14)
        restore_.push_back(std::move(key));
    }
    spdlog::info("bridge: {} subscriptions to restore from {}{}{}", queued_.size(), state_path_,
                 bad != 0 ? fmt::format(" ({} unreadable lines skipped)", bad) : "",
                 over != 0 ? fmt::format(" ({} over presence.max_per_user skipped)", over) : "");
}

void PresenceBridge::save_state_soon() {
    if (state_path_.empty() || !restored_) return; // nothing kept, or not yet read back
    if (!save_timer_) save_timer_ = std::make_unique<core::Timer>(loop_);
    if (save_timer_->armed()) return;
    save_timer_->start(std::chrono::seconds(1), [this] { save_state(); });
}

void PresenceBridge::save_state() {
    // Small and local: written whole, then renamed over the old one (never half a file).
    const std::string tmp = state_path_ + ".new";
    {
        const mode_t old = ::umask(077);
        std::ofstream out(tmp, std::ios::trunc);
        ::umask(old);
        for (const auto& [key, out_sub] : outbound_)
            out << key.user << ' ' << key.contact << '\n';
        // Pairs still waiting their turn in the restore are kept too, in their order.
        for (const Key& key : restore_)
            if (queued_.count(key) != 0) out << key.user << ' ' << key.contact << '\n';
        out.flush();
        if (!out) {
            spdlog::warn("bridge: cannot write {}: {}", tmp, std::strerror(errno));
            return;
        }
    }
    if (::rename(tmp.c_str(), state_path_.c_str()) != 0) {
        spdlog::warn("bridge: cannot replace {}: {}", state_path_, std::strerror(errno));
        return;
    }
    spdlog::debug("bridge: {} subscriptions written to {}", outbound_.size() + queued_.size(),
                  state_path_);
}

void PresenceBridge::shutdown() {
    if (!state_path_.empty() && restored_) {
        if (save_timer_) save_timer_->cancel();
        save_state(); // what the next start makes again, pairs still waiting included
    }
    restored_ = false; // nothing below is a change to keep
    if (!restore_.empty() || !restoring_.empty())
        spdlog::info("bridge: restore cut short by the shutdown: {} pairs not started yet",
                     queued_.size());
    restore_done_ = true; // and nothing more starts
    restore_.clear();
    queued_.clear();
    restoring_.clear();
    spdlog::info("bridge: ending {} outbound and {} inbound subscriptions, {} publications",
                 outbound_.size(), inbound_.size(), publications_.size());
    // The un-SUBSCRIBEs and un-PUBLISHes are the user agent's, once per dialog, when it
    // shuts the stack down right after this (a second one of ours would make the
    // notifier's final NOTIFY meet a dialog already gone).
    for (auto& [key, out] : outbound_) {
        if (!out.last.empty() || out.told_subscribed) send_type(key, "unavailable"); // X10
    }
    outbound_.clear();
    std::vector<sip::WatcherId> ids;
    for (const auto& [id, in] : inbound_)
        ids.push_back(id);
    for (sip::WatcherId id : ids)
        end_watcher(id, "deactivated", true);
    publications_.clear();
    per_user_.clear();
}

} // namespace xsgw::bridge
