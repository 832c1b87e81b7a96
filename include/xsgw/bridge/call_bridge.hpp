// Calls (issue 8): Jingle (XEP-0166/0167, started directly or through XEP-0353
// Jingle Message Initiation) <-> SIP INVITE sessions. Signalling only: the SDP and
// the Jingle description are translated (translate/jingle), the media flows between
// the endpoints.
#pragma once

#include "xsgw/bridge/stanza_jingle.hpp"
#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/dns/resolver.hpp"
#include "xsgw/sip/user_agent.hpp"
#include "xsgw/translate/jingle.hpp"
#include "xsgw/xmpp/component_link.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace gloox {
class Tag;
}

namespace xsgw::bridge {

/// The disco#info features of a SIP contact while calls are on (XEP-0166, 0167, 0176, 0177,
/// 0293, 0320, 0353).
const std::vector<std::string>& jingle_features();

/// What the call bridge did so far (metrics).
struct CallStats {
    std::uint64_t from_xmpp = 0; ///< calls XMPP users started
    std::uint64_t from_sip = 0;  ///< calls SIP users started
    std::uint64_t answered = 0;  ///< set up both ways
    std::uint64_t failed = 0;    ///< ended before they were answered, for any reason
    std::uint64_t refused = 0;   ///< refused at once (limits, addresses, SDP / description)
};

/// One table of calls keyed by the XMPP party and the Jingle sid (the SIP side's events reach a
/// call through its key), and the translation of every step in between. Every call ends on both
/// sides: on either side's hang-up or failure, on the no-answer timeout and on stop().
class CallBridge {
public:
    /// How long a call from XMPP waits for ICE candidates to put in the SDP offer; without
    /// them it ends (failed-transport).
    static constexpr std::chrono::milliseconds candidate_wait{3000};
    /// Once every content has a candidate, how long more are gathered before the offer goes.
    static constexpr std::chrono::milliseconds candidate_grace{200};
    /// While a call is up, how often the XMPP party is asked whether it still has the session
    /// (XEP-0166 §6.8: an empty session-info is a ping). An answer that says it is gone (its
    /// client or account unavailable, the session unknown) ends the call on the SIP side: a
    /// client that vanished (crash, lost network) no longer leaves a call up until the SIP side
    /// hangs up. No answer, or another error, changes nothing.
    static constexpr std::chrono::milliseconds keepalive_interval{60'000};

    /// config is the gateway's: calls.* are read as they are at each call (SIGHUP changes them).
    CallBridge(core::EventLoop& loop, const core::Config& config, xmpp::ComponentLink& link,
               sip::UserAgent& agent, dns::Resolver& resolver);
    CallBridge(const CallBridge&) = delete;
    CallBridge& operator=(const CallBridge&) = delete;
    CallBridge(CallBridge&&) = delete;
    CallBridge& operator=(CallBridge&&) = delete;
    ~CallBridge();

    /// An iq from XMPP: true when it was the call bridge's (a <jingle/> request, or the
    /// answer to one of its own iqs), which then answered it.
    bool from_xmpp_iq(const gloox::Tag& iq);
    /// A message from XMPP: true when it carried an XEP-0353 element (handled here).
    bool from_xmpp_message(const gloox::Tag& message);
    /// A new INVITE from SIP (the user agent's call handler).
    sip::CallCallbacks from_sip(sip::CallId id, const sip::IncomingCall& call);

    /// Nothing new is taken; every call ends on both sides now (SIGTERM).
    void stop();
    /// The XMPP link went down: every call ends (SIP side now; the XMPP side hears when the
    /// link is back).
    void on_link_down();
    /// Calls held now.
    std::size_t count() const { return calls_.size(); }
    /// Changes how long candidates are waited for (tests).
    void set_candidate_wait(std::chrono::milliseconds wait) { candidate_wait_ = wait; }
    /// Changes how often an answered call's XMPP party is pinged (tests).
    void set_keepalive_interval(std::chrono::milliseconds interval) {
        keepalive_interval_ = interval;
    }
    const CallStats& stats() const { return stats_; }

private:
    struct Call;
    using Key = std::uint64_t;

    void session_initiate(const gloox::Tag& iq, JingleIq& jingle);
    void start_invite(Call& call);
    /// The candidate wait or grace ended: the INVITE goes, or the session ends without one.
    void gathered(Key key);
    void on_resolved(Key key, const dns::Resolution& resolution);
    void on_sip_progress(Key key, int status);
    void on_sip_answer(Key key, const std::string& sdp);
    void on_sip_end(Key key, const sip::CallEnd& end);
    void jingle_from_party(const gloox::Tag& iq, JingleIq& jingle);
    void jmi_from_party(const gloox::Tag& message, const JingleMessage& jmi);
    void proceed(Call& call, const std::string& resource_jid);
    void accept_from_party(Call& call, const JingleIq& jingle);
    /// The call is answered both ways: from now on its XMPP party is pinged.
    void set_active(Call& call);
    void keepalive(Key key);
    /// The answer to a ping (true when the iq was one).
    bool ping_answered(const gloox::Tag& iq);
    /// Sends an iq set with the jingle element to the XMPP party; its answer is matched.
    void send_jingle(Call& call, JingleIq jingle);
    void send_terminate(Call& call, const std::string& reason, const std::string& text);
    /// Ends the call on the XMPP side with reason (if it was told of the call) and on the SIP
    /// side with status (if it has a SIP call), and forgets it.
    void end(Call& call, const std::string& reason, const std::string& text, int sip_status,
             const std::string& sip_phrase);
    void forget(Call& call);
    Call* find_by_sid(const std::string& party, const std::string& sid);
    std::string new_sid();
    std::string next_message_id();
    translate::SdpOrigin origin_for(Call& call);

    core::EventLoop& loop_;
    const core::Config& config_;
    xmpp::ComponentLink& link_;
    sip::UserAgent& agent_;
    dns::Resolver& resolver_;
    bool stopping_ = false;
    std::chrono::milliseconds candidate_wait_{candidate_wait};
    std::chrono::milliseconds keepalive_interval_{keepalive_interval};
    CallStats stats_;
    Key next_key_ = 1;
    std::uint64_t sid_key_[2] = {0, 0};
    std::uint64_t sid_count_ = 0;
    std::unordered_map<Key, std::unique_ptr<Call>> calls_;
    std::map<std::pair<std::string, std::string>, Key> by_sid_; ///< (XMPP party, sid)
    std::unordered_map<std::string, Key> iq_waits_;             ///< our iq ids -> call
    std::unordered_map<std::string, Key> ping_waits_;           ///< our pings' ids -> call
    std::uint64_t next_iq_ = 0;
    /// Lookups that answer after the bridge is gone find it expired.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace xsgw::bridge
