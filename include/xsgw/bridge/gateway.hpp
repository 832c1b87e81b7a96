// The gateway: routes what the XMPP link delivers to its services and, later, to SIP.
#pragma once

#include "xsgw/bridge/call_bridge.hpp"
#include "xsgw/bridge/message_relay.hpp"
#include "xsgw/bridge/presence_bridge.hpp"
#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/core/long_lived.hpp"
#include "xsgw/core/metrics.hpp"
#include "xsgw/dns/resolver.hpp"
#include "xsgw/sip/user_agent.hpp"
#include "xsgw/xmpp/component_link.hpp"
#include "xsgw/xmpp/services.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// Maps an iq:gateway prompt ("user@host" or "sip:user@host") to the contact's JID (X9).
std::variant<std::string, xmpp::StanzaError> prompt_to_contact_jid(const std::string& prompt,
                                                                   const core::Config& config);

/// Why the configured domains cannot drive the address mapping; empty when they can.
/// Returns {key, what} for a one-line config error.
std::optional<std::pair<std::string, std::string>> check_addressing(const core::Config& config);

/// What the gateway does with a stanza from an XMPP user under xmpp.allowed_domains (S7).
enum class SenderVerdict {
    pass,   ///< goes on as if the key were not set
    refuse, ///< answered with a forbidden error; goes no further
    ignore, ///< dropped without an answer (it asks for none)
};

/// S7 (RFC 8048 §8.1): pass when allowed_domains (lowercase, no final dot) is empty or holds
/// the domain of the sender's bare JID, compared as the address rules compare JID domains.
/// Otherwise only what would use the gateway toward SIP is stopped: a message or a presence
/// subscribe is refused; available, unavailable, probe and subscribed presence is ignored.
/// A Jingle session-initiate (a call) is refused like a message.
/// Always pass: other iq, stanzas to the gateway's own domain (no local part), error stanzas,
/// unsubscribe and unsubscribed (they only end state), and senders that do not parse
/// (the relay and the presence bridge refuse those themselves).
SenderVerdict check_sender_domain(const gloox::Tag& stanza,
                                  const std::vector<std::string>& allowed_domains);

/// What the S7 check stopped so far.
struct DomainRefusals {
    std::uint64_t messages = 0;   ///< messages answered with forbidden
    std::uint64_t subscribes = 0; ///< presence subscribes answered with forbidden
    std::uint64_t ignored = 0;    ///< other presence dropped
    std::uint64_t calls = 0;      ///< Jingle session-initiates answered with forbidden
};

/// True for a Jingle session-initiate (an iq set): it starts a call, an INVITE.
bool starts_call(const gloox::Tag& stanza);

/// True for what would start work toward SIP: a message (not an error), a presence
/// subscribe or a Jingle session-initiate to a contact (a JID with a local part). Presence
/// probes, unsubscribes and other iq are the gateway's own or end state.
bool starts_sip_work(const gloox::Tag& stanza);

/// What the S5 per-sender limit stopped so far (answered resource-constraint).
struct SenderRefusals {
    std::uint64_t messages = 0;
    std::uint64_t subscribes = 0;
    std::uint64_t calls = 0;
};

/// Owns the component link, the SIP user agent and the resolver, and routes
/// everything that arrives on either side.
class Gateway {
public:
    Gateway(core::EventLoop& loop, const core::Config& config);
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;
    Gateway(Gateway&&) = delete;
    Gateway& operator=(Gateway&&) = delete;
    ~Gateway() = default;

    /// Connects the link; it keeps itself up from then on.
    void start();
    /// Hears the component link go up (after the handshake) and down, with a reason.
    void set_link_state_handler(xmpp::ComponentLink::StateHandler handler) {
        on_link_state_ = std::move(handler);
    }
    /// SIGHUP: applies what a re-read config may change without a restart (bounds,
    /// expiry times, sip.max_message_bytes, xmpp.allowed_domains) and names what needs
    /// one. One line per change.
    std::vector<std::string> reload(const core::Config& next);
    /// SIGTERM, from the signal handler: nothing new is taken (a message from XMPP gets
    /// service-unavailable, a MESSAGE from SIP 503, presence from XMPP is ignored), the
    /// presence state is saved and gateway contacts go unavailable (X10). The link stays up
    /// for the answers still to come: drain() closes it.
    void begin_stop();
    /// After begin_stop() and the loop's end: runs the loop until every message on its way to
    /// SIP (waiting for DNS or for its final response) is answered, or the deadline; the rest
    /// get service-unavailable now, so every sender hears. Then the link is flushed (at most
    /// a second) and closed.
    void drain(std::chrono::milliseconds deadline);
    /// begin_stop() and the link closed at once (tests).
    void stop();
    /// After stop() and the loop's end: ends the SIP dialogs one window at a time, running the
    /// loop, within the deadline (UserAgent::shutdown).
    sip::ShutdownReport end_sip(std::chrono::milliseconds deadline) {
        return agent_.shutdown(deadline);
    }
    /// The component link, for status and tests.
    const xmpp::ComponentLink& link() const { return link_; }
    /// Every figure of the gateway for the metrics listener (Prometheus names).
    std::vector<core::Sample> metrics() const;
    /// What the message relay did so far.
    const RelayStats& relay_stats() const { return relay_.stats(); }
    /// The message relay itself (its bounds, for tests).
    MessageRelay& relay() { return relay_; }
    /// What the presence bridge did so far.
    const PresenceStats& presence_stats() const { return presence_.stats(); }
    /// The call bridge (its bounds and figures, for tests).
    CallBridge& calls() { return calls_; }
    /// What xmpp.allowed_domains stopped so far (S7).
    const DomainRefusals& domain_refusals() const { return domain_refusals_; }
    const SenderRefusals& sender_refusals() const { return sender_refusals_; }

private:
    void on_stanza(const gloox::Tag& stanza);
    /// The end of drain(): our closing tag, then what the server still routes to us is taken
    /// and given up to `deadline` to be answered, then the link is closed.
    void close_link(std::chrono::milliseconds deadline);
    /// Messages on their way to SIP: waiting for DNS or for their final response.
    std::size_t toward_sip() const;
    /// S7: true when the stanza may go on; otherwise it has been answered or dropped.
    bool sender_allowed(const gloox::Tag& stanza);
    void reply(gloox::Tag* stanza, const gloox::Tag& request);
    /// S5: true when the sender is within xmpp.max_stanzas_per_sender; otherwise answered.
    bool sender_within_rate(const gloox::Tag& stanza);
    /// sip.verify_from_domain: is source a SIP server of from's domain (RFC 3263)?
    void check_from_domain(const std::string& from, const std::string& source,
                           const std::function<void(const sip::UserAgent::SourceVerdict&)>& done);

    core::EventLoop& loop_;
    core::Config config_;
    bool stopping_ = false; ///< begin_stop() ran
    DomainRefusals domain_refusals_;
    sip::RateLimiter sender_limiter_; ///< S5 per sender (bare JID) toward SIP
    SenderRefusals sender_refusals_;
    xmpp::ComponentLink::StateHandler on_link_state_;
    xmpp::ComponentLink link_;
    dns::Resolver resolver_;
    sip::UserAgent agent_;
    core::HeapTrimmer trimmer_; ///< issue 4: a burst's memory goes back
    xmpp::Services services_;
    MessageRelay relay_;
    PresenceBridge presence_;
    CallBridge calls_; ///< last: destroyed first, before what it uses
};

} // namespace xsgw::bridge
