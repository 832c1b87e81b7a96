// Presence both ways (STANDARDS.md P1-P14; RFC 8048, RFC 3856, RFC 6665, RFC 3903).
//
// Two kinds of subscription, keyed by (XMPP user's bare JID, contact's bare JID):
// - outbound: an XMPP user watches a SIP presentity; we SUBSCRIBE and turn
//   NOTIFYs into <presence/> from the contact to the user (P1-P7);
// - inbound: a SIP watcher watches an XMPP user; we are its notifier and turn
//   the presence the XMPP server sends to the contact into NOTIFYs (P8, P9).
// Presence goes only to the subscriber it is for (P12): each pair has its own
// SIP dialog and its own view of the user's resources. State is in memory and
// bounded per user and in total (P14). With presence.publish_to set, every XMPP
// user whose presence reaches the gateway is also PUBLISHed there (P13).
//
// Decisions [ours]:
// - A probe for a pair with fresh state (an active subscription that has had a
//   NOTIFY) is answered from it; for a pair whose subscription has no state yet,
//   by a fetch (SUBSCRIBE Expires: 0, P7). A probe for a pair with no
//   subscription at all re-establishes the subscription: a server probes only
//   contacts its user is subscribed to (RFC 6121 §4.3), so after a restart of
//   the gateway the probes sent at the user's next login rebuild the state.
// - An outbound subscription that fails for a reason that says nothing about
//   authorisation (timeout, 5xx, DNS, Subscription-State deactivated / timeout
//   / probation / giveup, 481) is re-established with a capped, jittered
//   backoff; meanwhile the contact shows unavailable. 403, 404, 489, 603 and
//   Subscription-State rejected / noresource end it with `unsubscribed`.
// - A SIP fetch (SUBSCRIBE Expires: 0 out of a dialog) gets the presence the
//   XMPP server last sent to that contact, or closed when none was: it never
//   asks the XMPP user, and never shows more than the contact may see.
// - A new SIP watcher of a pair whose other watcher is already active (the
//   same contact from another device) is active at once.
// - Which XMPP users watch which SIP contacts is kept in presence.state_file
//   (one "user contact" line per pair, rewritten a second after a change), and
//   re-subscribed once the link is up after a restart, a window at a time (a
//   fixed number in flight, the next one started as one settles): all at once,
//   the SUBSCRIBEs and their NOTIFYs outrun both ends and are retransmitted.
//   A pair still waiting its turn holds its place: it counts against P14, stays
//   in the state file, and a subscribe or probe for it starts it at once, an
//   unsubscribe takes it out. SIP watchers are not
//   kept: their dialogs die with the process; their next refresh gets 481 and
//   they subscribe anew (RFC 6665 §4.1.2.2).
// - P9, the one place we fall short: when a SIP watcher ends its subscription
//   with Expires: 0, Sofia's nua answers and sends the final NOTIFY itself,
//   before we hear of it, with the body of the last NOTIFY (the user's current
//   state, which RFC 6665 §4.2.1.4 allows) rather than a closed PIDF. On
//   expiry, rejection and shutdown the gateway sends the final NOTIFY itself,
//   with a closed PIDF. Either way the XMPP user gets unavailable from the
//   watcher's JID.
// - Presence sent to the bare gateway domain: subscribe is approved
//   (subscribed), unsubscribe answered unsubscribed, probe answered with the
//   gateway's own available presence.
#pragma once

#include "xsgw/address/address.hpp"
#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/dns/resolver.hpp"
#include "xsgw/sip/user_agent.hpp"
#include "xsgw/translate/presence.hpp"
#include "xsgw/xmpp/component_link.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// Counters of the presence bridge, for logs, tests and metrics.
struct PresenceStats {
    std::uint64_t xmpp_in = 0;        ///< presence stanzas taken from XMPP
    std::uint64_t xmpp_out = 0;       ///< presence stanzas sent to XMPP
    std::uint64_t notifies_in = 0;    ///< NOTIFYs received for our subscriptions
    std::uint64_t notifies_out = 0;   ///< NOTIFYs sent to SIP watchers
    std::uint64_t subscribes_out = 0; ///< new SUBSCRIBE dialogs started (incl. fetches)
    std::uint64_t subscribes_in = 0;  ///< new SIP watchers accepted
    std::uint64_t refused = 0;        ///< subscriptions refused (limits, bad input)
    std::uint64_t publishes = 0;      ///< PUBLISHes started or updated
    std::uint64_t pidf_errors = 0;    ///< NOTIFY bodies that could not be read
};

/// Owns every presence subscription of the gateway.
class PresenceBridge {
public:
    PresenceBridge(core::EventLoop& loop, const core::Config& config, xmpp::ComponentLink& link,
                   sip::UserAgent& agent, dns::Resolver& resolver);
    PresenceBridge(const PresenceBridge&) = delete;
    PresenceBridge& operator=(const PresenceBridge&) = delete;
    PresenceBridge(PresenceBridge&&) = delete;
    PresenceBridge& operator=(PresenceBridge&&) = delete;
    ~PresenceBridge();

    /// A <presence/> from XMPP addressed to a gateway contact or the gateway.
    void from_xmpp(const gloox::Tag& stanza);

    /// The XMPP link came up: the first time, the subscriptions kept in the state file
    /// are made again, at most restore_window of them in flight at once.
    void on_link_up();

    /// How many restored subscriptions may wait for their first NOTIFY (or end) at once.
    /// All at once, 10 000 pairs on loopback took 2.5x the time of a paced set-up, with as
    /// many retransmissions as pairs: the SUBSCRIBEs left within 0.5 s (T1) and the
    /// NOTIFYs then waited behind them. 256 in flight drain in ~20 ms at the ~12 000/s a
    /// paced set-up reaches on one core, so a notifier 20x slower still answers within
    /// T1; and over a 50 ms round trip 256 still restore ~5 000 pairs a second.
    static constexpr std::size_t restore_window = 256;

    /// SIGHUP: takes the bounds and expiry times of a re-read config (publish_to and
    /// state_file need a restart). Returns one line per value that changed.
    std::vector<std::string> reload(const core::PresenceConfig& next);

    /// Ends everything on shutdown: unSUBSCRIBEs, terminating NOTIFYs, unavailable
    /// to every XMPP watcher, unPUBLISHes.
    void shutdown();

    const PresenceStats& stats() const { return stats_; }
    /// Outbound subscriptions (XMPP watchers) and inbound ones (SIP watchers) held now.
    std::size_t outbound_count() const { return outbound_.size(); }
    std::size_t inbound_count() const { return inbound_.size(); }
    /// Pairs from the state file still waiting their turn in the restore.
    std::size_t restore_waiting() const { return queued_.size(); }
    /// Pairs the restore started that have had no NOTIFY and no end yet (<= restore_window).
    std::size_t restore_in_flight() const { return restoring_.size(); }

private:
    struct Key {
        std::string user;    ///< the XMPP user's bare JID
        std::string contact; ///< the gateway contact's bare JID
        auto operator<=>(const Key&) const = default;
    };
    enum class Phase { resolving, subscribing, active, retry_wait };
    struct Outbound {
        Phase phase = Phase::resolving;
        sip::SubscriptionId id = 0;
        std::uint64_t generation = 0; ///< bumps on every restart: late callbacks are stale
        bool told_subscribed = false; ///< `subscribed` sent to the user
        bool have_state = false;      ///< a NOTIFY with state arrived
        bool have_told = false;       ///< the user was told a state since (re)subscribing
        std::vector<translate::ResourcePresence> last; ///< what the user was last told
        std::string presentity;                        ///< SIP URI of the contact (AOR)
        std::string watcher;                           ///< SIP URI of the user
        unsigned failures = 0; ///< restarts in a row without an active NOTIFY
        std::unique_ptr<core::Timer> retry;
    };
    struct Inbound {
        Key key;
        std::string watcher;    ///< its SIP URI
        std::string presentity; ///< the XMPP user's SIP URI (PIDF entity)
        bool active = false;
    };
    struct Publication {
        sip::SubscriptionId id = 0;
        bool resolving = false;
        std::map<std::string, translate::ResourcePresence> resources;
        std::string body; ///< last published: a copy of the same broadcast changes nothing
    };

    // XMPP side
    void on_gateway_presence(const std::string& type, const address::Jid& from);
    void xmpp_subscribe(const Key& key, const address::Jid& contact);
    void xmpp_unsubscribe(const Key& key);
    void xmpp_probe(const Key& key, const address::Jid& contact);
    void xmpp_approve(const Key& key);
    void xmpp_refuse(const Key& key);
    void xmpp_presence(const Key& key, const translate::ResourcePresence& presence);
    void send_presence(const Key& key, const translate::ResourcePresence& presence);
    void send_type(const Key& key, const char* type);
    void send_error(const gloox::Tag& stanza, const char* condition, const std::string& text);

    // outbound subscriptions
    void start_outbound(const Key& key, std::chrono::seconds expires);
    void on_resolved(const Key& key, std::uint64_t generation, const dns::Resolution& resolution,
                     std::chrono::seconds expires);
    void on_notify(const Key& key, std::uint64_t generation, const sip::NotifyInfo& notify);
    void on_outbound_end(const Key& key, std::uint64_t generation, const sip::SubscriptionEnd& end);
    void tell(const Key& key, Outbound& out, std::vector<translate::ResourcePresence> now);
    void schedule_retry(const Key& key, Outbound& out, std::chrono::seconds at_least);
    void drop_outbound(const Key& key);
    void fetch(const Key& key, const std::string& presentity, const std::string& watcher);

    // inbound subscriptions
    sip::UserAgent::SubscribeDecision on_sip_subscribe(sip::WatcherId id,
                                                       const sip::IncomingSubscribe& request);
    void on_watcher_end(sip::WatcherId id, const std::string& reason);
    void notify_watcher(sip::WatcherId id, Inbound& in);
    void end_watcher(sip::WatcherId id, const std::string& reason, bool closed);
    std::string pidf_for(const Key& key, const std::string& presentity) const;

    // publication (P13)
    void publish(const std::string& user, const translate::ResourcePresence& presence);

    // the state file (restarts)
    void load_state();
    void restore_next();
    bool unqueue(const Key& key);
    void settle_restored(const Key& key);
    void save_state_soon();
    void save_state();

    // bounds (P14)
    bool may_add(const std::string& user, std::string& why) const;
    void count(const std::string& user, int delta);

    core::EventLoop& loop_;
    core::PresenceConfig config_;
    address::AddressConfig addressing_;
    std::string component_;
    xmpp::ComponentLink& link_;
    sip::UserAgent& agent_;
    dns::Resolver& resolver_;
    PresenceStats stats_;
    std::shared_ptr<bool> alive_; ///< false once destroyed: late callbacks do nothing
    std::uint64_t next_generation_ = 1;
    std::map<Key, Outbound> outbound_;
    std::unordered_map<sip::WatcherId, Inbound> inbound_;
    std::map<Key, std::set<sip::WatcherId>> watchers_; ///< inbound ids by pair
    /// What the XMPP server last sent each contact about each user resource (P12).
    std::map<Key, std::map<std::string, translate::ResourcePresence>> seen_;
    std::unordered_map<std::string, std::size_t> per_user_; ///< subscriptions per user
    std::map<std::string, Publication> publications_;       ///< by user bare JID
    std::string state_path_;                                ///< empty: nothing kept across restarts
    /// Read from the state file, made from link up on in this order; an entry not in
    /// queued_ any more was started or dropped meanwhile and is skipped.
    std::deque<Key> restore_;
    std::set<Key> queued_;            ///< pairs waiting in restore_ (counted in per_user_, P14)
    std::set<Key> restoring_;         ///< pairs started by the restore without a NOTIFY or end yet
    bool restored_ = false;           ///< the link came up once: the restore began
    bool restore_done_ = false;       ///< all started, settled or gone; or shut down
    std::size_t restore_total_ = 0;   ///< pairs the restore began with
    std::size_t restore_started_ = 0; ///< of them, started by the restore
    std::chrono::steady_clock::time_point restore_began_;
    std::unique_ptr<core::Timer> save_timer_; ///< a second after a change
};

} // namespace xsgw::bridge
