// What the SIP user agent's source files share: the handle magics and small helpers.
// Private to src/sip.
#pragma once

#include "xsgw/sip/user_agent.hpp"

#include <fmt/format.h>
#include <memory>
#include <sofia-sip/nta.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>
#include <string>
#include <vector>

namespace xsgw::sip {

struct UserAgent::Magic {
    enum class Kind { message, watcher, publisher, idle, call, deferred_invite };
    explicit Magic(Kind k) : kind(k) {}
    Kind kind;
};

struct UserAgent::Attempt : Magic {
    Attempt(std::string r) : Magic(Kind::message), recipient(std::move(r)) {}
    std::string recipient;
    nua_handle_t* nh = nullptr;
    std::string handle_key; ///< from and request URI: which idle handles fit
    std::string proxy;      ///< the next hop nh is set to
};

// One subscription of ours: its dialog kept here, its requests sent through nta (not nua).
struct UserAgent::Subscriber {
    using Clock = std::chrono::steady_clock;
    UserAgent* owner = nullptr;
    SubscriptionId id = 0;
    OutgoingSubscribe request;
    std::vector<NextHop> hops; ///< until the first answer (D5); then only proxy counts
    std::size_t next_hop = 0;
    SubscriberCallbacks callbacks;
    std::string refusal; ///< why the last TLS hop was skipped (S4)
    // The dialog (RFC 6665 §4.1, RFC 3261 §12); no remote tag: none yet.
    std::string call_id;
    std::string local_tag;
    std::string remote_tag;
    std::string target; ///< the remote target (the notifier's Contact); empty: the request URI
    std::string route;  ///< the route set as a Route header value; empty: none
    std::string proxy;  ///< the next hop every request of the dialog goes to
    std::string transport;
    std::uint32_t cseq = 0;         ///< of our last request
    std::uint32_t remote_cseq = 0;  ///< of the notifier's last NOTIFY
    std::uint32_t expires = 0;      ///< asked for (a 423's Min-Expires raises it)
    nta_outgoing_s* orq = nullptr;  ///< our request in flight
    Clock::time_point refresh_at{}; ///< next SUBSCRIBE (refresh, or a new dialog); zero: none
    Clock::time_point notify_by{};  ///< Timer N: a NOTIFY must come by then; zero: none
    Clock::time_point due{};        ///< the earlier of the two: its place in the timer queue
    bool answered = false;          ///< a 2xx or a NOTIFY came: no more fail-over
    bool notified = false;          ///< a NOTIFY came in this dialog
    bool ending = false;            ///< unsubscribe asked: only the end is awaited
    bool unsubscribed = false;      ///< the SUBSCRIBE Expires: 0 is sent
    bool raised = false;            ///< a 423 raised expires once already
    std::uint8_t retries = 0;       ///< 5xx with a short Retry-After in a row
    std::uint8_t resubscribes = 0;  ///< new dialogs after deactivated / probation in a row
};

struct UserAgent::Watcher : Magic {
    Watcher() : Magic(Kind::watcher) {}
    WatcherId id = 0;
    nua_handle_t* nh = nullptr;
    bool accepted = false;          ///< the bridge took it: it hears the end
    bool terminated = false;        ///< the bridge gave the final NOTIFY
    bool final_sent = false;        ///< and it left (it may wait for room first)
    std::string last_reason;        ///< of the final NOTIFY
    std::string final_content_type; ///< the final NOTIFY's body while it waits
    std::string final_body;
    bool ending_by_peer = false;         ///< the watcher sent Expires: 0
    std::string call_id;                 ///< of its dialog
    std::unique_ptr<core::Timer> expiry; ///< ours, just ahead of nua's own
};

struct UserAgent::Publisher : Magic {
    Publisher() : Magic(Kind::publisher) {}
    SubscriptionId id = 0;
    std::string aor;
    std::string content_type;
    std::string body;
    std::chrono::seconds expires{3600};
    std::vector<NextHop> hops;
    std::size_t next_hop = 0;
    nua_handle_t* nh = nullptr;
    bool published = false; ///< a 2xx came: no more fail-over
    bool ending = false;
    std::string refusal; ///< why the last TLS hop was skipped (S4)
};

struct UserAgent::Call : Magic {
    Call() : Magic(Kind::call) {}
    CallId id = 0;
    bool outgoing = false;
    OutgoingCall request; ///< ours: what to send; a peer's: its From and To for the logs
    std::vector<NextHop> hops;
    std::size_t next_hop = 0;
    CallCallbacks callbacks;
    nua_handle_t* nh = nullptr;
    bool provisional = false;  ///< a provisional response came: no more fail-over (D5)
    bool answered = false;     ///< 2xx sent or received
    bool ending = false;       ///< hung up by us: only the stack's end is awaited
    bool confirmed = false;    ///< a peer's call: the ACK for our 2xx came
    std::string local_sdp;     ///< our offer or answer: given again to a re-INVITE
    std::string remote_origin; ///< the o= line of the peer's SDP (a re-INVITE that changes it
                               ///< changes the session)
    std::string refusal;       ///< why the last TLS hop was skipped (S4)
    CallEnd end;               ///< what is known of the end so far
};

// A request waiting for the source check. A deferred INVITE's handle has it as its magic:
// the caller may CANCEL meanwhile, and the handle must not be freed under it.
struct UserAgent::Deferred : Magic {
    Deferred() : Magic(Kind::deferred_invite) {}
    std::uint64_t id = 0;
    nua_handle_t* nh = nullptr;
    nua_saved_event_t saved[1] = {};
    Method method = Method::message;
    std::string from;
    std::string source;
};

namespace detail {

/// A su_home for the strings of one event.
class Home {
public:
    Home() { su_home_init(home_); }
    ~Home() { su_home_deinit(home_); }
    Home(const Home&) = delete;
    Home& operator=(const Home&) = delete;
    Home(Home&&) = delete;
    Home& operator=(Home&&) = delete;
    su_home_t* get() { return home_; }
    std::string url(const url_t* url) {
        if (url == nullptr) return {};
        char* s = url_as_string(home_, url);
        return s != nullptr ? std::string(s) : std::string();
    }
    std::string header(const void* h) {
        if (h == nullptr) return {};
        char* s = sip_header_as_string(home_, static_cast<const sip_header_t*>(h));
        return s != nullptr ? std::string(s) : std::string();
    }

private:
    su_home_t home_[1] = {};
};

// The next hop as Sofia's proxy URL. Over TLS the URL's host is the domain the certificate
// must name (Sofia checks the peer against it) and maddr the address it connects to.
inline std::string hop_url(const NextHop& hop) {
    const bool v6 = hop.address.find(':') != std::string::npos;
    const std::string address = v6 ? "[" + hop.address + "]" : hop.address;
    if (hop.transport == "tls" && !hop.domain.empty() && hop.domain != hop.address)
        return fmt::format("sip:{}:{};maddr={};transport=tls", hop.domain, hop.port, address);
    return fmt::format("sip:{}:{};transport={}", address, hop.port, hop.transport);
}

// "<sip:HOST:PORT>" of a listen URL (sip:HOST[:PORT][;params]), port 5060 when none; empty
// when HOST is a wildcard (*, 0.0.0.0, [::]) and so no address a peer could use.
inline std::string plain_contact_of(const std::string& listen) {
    const std::size_t colon = listen.find(':');
    if (colon == std::string::npos) return {};
    std::string rest = listen.substr(colon + 1);
    rest = rest.substr(0, rest.find(';'));
    std::string host = rest;
    std::string port = "5060";
    if (!rest.empty() && rest.front() == '[') {
        const std::size_t close = rest.find(']');
        if (close == std::string::npos) return {};
        host = rest.substr(0, close + 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else if (const std::size_t c = rest.find(':'); c != std::string::npos) {
        host = rest.substr(0, c);
        port = rest.substr(c + 1);
    }
    if (host.empty() || host == "*" || host == "0.0.0.0" || host == "[::]") return {};
    return "<sip:" + host + ":" + port + ">";
}

// The call state an nua_i_state event reports (NUTAG_CALLSTATE).
inline int callstate_of(const void* tags) {
    int state = nua_callstate_init;
    tl_gets(static_cast<const tagi_t*>(tags), NUTAG_CALLSTATE_REF(state), TAG_END());
    return state;
}

// D5: these outcomes say nothing about the recipient, only about this hop.
inline bool try_next_hop(int status) {
    return status == 503 || status == 408 || status >= 700;
}

} // namespace detail

} // namespace xsgw::sip
