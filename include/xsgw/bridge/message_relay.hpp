// Instant messages both ways: XMPP <message/> <-> SIP MESSAGE (M1-M12, E1-E4).
#pragma once

#include "xsgw/address/address.hpp"
#include "xsgw/core/config.hpp"
#include "xsgw/dns/resolver.hpp"
#include "xsgw/sip/user_agent.hpp"
#include "xsgw/translate/message.hpp"
#include "xsgw/xmpp/component_link.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// Counters of what the relay did, for logs, tests and metrics.
struct RelayStats {
    std::uint64_t xmpp_in = 0; ///< message stanzas taken from XMPP
    std::uint64_t unconfirmed =
        0; ///< SIP MESSAGEs answered 503: link lost before the server confirmed
    std::uint64_t sip_sent_ok = 0;      ///< MESSAGEs that got a 2xx
    std::uint64_t sip_failed = 0;       ///< MESSAGEs that ended in an error stanza
    std::uint64_t sip_in = 0;           ///< MESSAGEs taken from SIP
    std::uint64_t xmpp_delivered = 0;   ///< stanzas the XMPP server confirmed (answered 202)
    std::uint64_t sip_refused = 0;      ///< MESSAGEs answered with an error status
    std::uint64_t bounces_notified = 0; ///< M12 notices sent for XMPP error bounces
    std::map<std::string, std::uint64_t> xmpp_errors; ///< error stanzas sent, by condition
    std::map<int, std::uint64_t> sip_refusals;        ///< error responses sent, by status
};

/// Carries messages between the component link and the SIP user agent. Every
/// message either reaches the next hop or its sender gets an error.
class MessageRelay {
public:
    MessageRelay(const core::Config& config, xmpp::ComponentLink& link, sip::UserAgent& agent,
                 dns::Resolver& resolver);
    MessageRelay(const MessageRelay&) = delete;
    MessageRelay& operator=(const MessageRelay&) = delete;
    MessageRelay(MessageRelay&&) = delete;
    MessageRelay& operator=(MessageRelay&&) = delete;
    ~MessageRelay();

    /// A <message/> from XMPP addressed to a gateway contact.
    void from_xmpp(const gloox::Tag& stanza);
    /// A MESSAGE from SIP; answered exactly once through reply.
    void from_sip(const sip::IncomingMessage& message, sip::Reply& reply);
    const RelayStats& stats() const { return stats_; }
    /// S5: messages (and lone chat states) waiting for DNS at once; past it resource-constraint.
    static constexpr std::size_t default_max_awaiting_dns = 10'000;
    void set_max_awaiting_dns(std::size_t n) { max_awaiting_dns_ = n; }
    /// Lookups under way for messages toward SIP.
    std::size_t waiting_for_dns() const { return waiting_for_dns_; }
    /// S5: MESSAGEs from SIP whose stanza waits for the XMPP server's confirmation (their SIP
    /// transactions are held); past it 503 with Retry-After at once, so that a stalled server
    /// cannot make the gateway hold transactions without end.
    static constexpr std::size_t default_max_unconfirmed = 10'000;
    void set_max_unconfirmed(std::size_t n) { max_unconfirmed_ = n; }
    std::size_t unconfirmed_now() const { return unconfirmed_now_; }
    /// SIGHUP: the largest body carried either way (sip.max_message_bytes).
    void set_max_body_bytes(std::size_t bytes) { limits_.max_body_bytes = bytes; }
    std::size_t max_body_bytes() const { return limits_.max_body_bytes; }

    /// SIGTERM: from now on a message from XMPP gets service-unavailable and a MESSAGE from SIP
    /// 503 with Retry-After; what is under way goes on.
    void stop_taking();
    /// The end of a drain, once our closing tag is sent: a message the server routed to us before
    /// it read that tag is taken after all (it cannot be refused any more, only delivered; should
    /// SIP refuse it, the error cannot reach its sender and is logged). MESSAGEs from SIP are
    /// still refused.
    void take_late() { late_ = true; }
    /// Messages from XMPP waiting for DNS before they can go to the user agent.
    std::size_t awaiting_dns() const { return awaiting_dns_.size(); }
    /// The end of a drain: every message still waiting for DNS or for its SIP answer gets this
    /// error now (a resolution or an answer that comes later is ignored). Returns how many.
    std::size_t abandon(const translate::XmppError& error);

private:
    struct Relayed {              ///< a SIP MESSAGE turned stanza, kept for a bounce (M12)
        std::string sip_sender;   ///< the SIP From URI
        std::string gateway_from; ///< the SIP URI of the XMPP user it went to
        std::chrono::steady_clock::time_point at;
    };

    void send_to_sip(translate::XmppMessage message, address::SipUri target, std::string from_uri,
                     translate::SipMessageOut out);
    void deliver(translate::XmppMessage request, const dns::Resolution& resolution,
                 std::string from_uri, translate::SipMessageOut out, std::string request_uri);
    void fail(const translate::XmppMessage& request, const translate::XmppError& error);
    void on_bounce(const std::string& id, const translate::XmppError& error);
    void remember(const std::string& id, Relayed relayed);
    /// What an answer to the sender needs of a message: addresses, id, type (all of it when
    /// a receipt was asked for: XEP-0184 looks at the body).
    static translate::XmppMessage head_of(const translate::XmppMessage& message);

    core::Config config_;
    address::AddressConfig addressing_;
    translate::Limits limits_;
    translate::SipToXmppOptions to_xmpp_;
    xmpp::ComponentLink& link_;
    sip::UserAgent& agent_;
    dns::Resolver& resolver_;
    bool stopping_ = false;
    bool late_ = false; ///< take_late(): XMPP messages taken again while the stream closes
    /// Set while abandon() fails the user agent's MESSAGEs: the error their senders get.
    std::optional<translate::XmppError> abandon_error_;
    std::uint64_t next_wait_ = 0;
    /// Messages (their heads) waiting for DNS, by a number of their own; notifications
    /// (chat states) are not here: nobody is told of their failure.
    std::unordered_map<std::uint64_t, translate::XmppMessage> awaiting_dns_;
    std::size_t waiting_for_dns_ = 0; ///< lookups under way (awaiting_dns_ plus chat states)
    std::size_t max_unconfirmed_ = default_max_unconfirmed;
    std::size_t unconfirmed_now_ = 0; ///< held MESSAGEs waiting for the server's confirmation
    std::size_t max_awaiting_dns_ = default_max_awaiting_dns;
    RelayStats stats_;
    std::shared_ptr<bool> alive_; ///< false once destroyed: late callbacks do nothing
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::string, Relayed> relayed_; ///< by stanza id
    std::deque<std::string> relayed_order_;            ///< oldest first, for the bound
};

} // namespace xsgw::bridge
