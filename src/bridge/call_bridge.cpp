#include "xsgw/bridge/call_bridge.hpp"

#include "xsgw/address/address.hpp"
#include "xsgw/bridge/routing.hpp"
#include "xsgw/bridge/stanza_jingle.hpp"
#include "xsgw/xmpp/stanza.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <gloox/tag.h>
#include <random>
#include <spdlog/spdlog.h>

namespace xsgw::bridge {

// One call. `party` is the XMPP user's full JID once known (the initiator of a call from
// XMPP; the resource that proceeded for a call from SIP), `contact` the gateway contact's
// JID we speak as (bob*sip.example@gw[/resource]).
struct CallBridge::Call {
    Key key = 0;
    bool from_xmpp = false;
    std::string sid;
    std::string party;      ///< XMPP user, full JID ("" while a proposal waits)
    std::string party_bare; ///< XMPP user, bare JID
    std::string contact;    ///< the gateway contact's JID we speak as
    std::string sip_uri;    ///< the SIP party
    std::string sip_from;   ///< From of our INVITE (the XMPP user's SIP form)
    sip::CallId sip_call = 0;
    enum class State {
        proposing,  ///< from SIP: JMI propose sent, waiting for proceed or reject
        initiating, ///< from SIP: session-initiate sent, waiting for session-accept
        gathering,  ///< from XMPP: waiting for ICE candidates
        resolving,  ///< from XMPP: waiting for DNS
        inviting,   ///< from XMPP: INVITE sent
        active,     ///< answered both ways
    } state = State::proposing;
    bool ringing_sent = false;
    translate::JingleDescription offer;     ///< the offer as Jingle (either direction)
    std::vector<translate::SdpSlot> layout; ///< from SIP: the offer's m-lines, for the answer
    std::uint64_t sdp_session = 0;
    std::uint64_t sdp_version = 0;
    std::unique_ptr<core::Timer> timer;
    std::string ping; ///< the id of the ping out, if any (active calls)
};

namespace {

// Session ids and SDP session ids: random per process, then counted (as MESSAGE Call-IDs).
std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

bool every_content_has_candidates(const translate::JingleDescription& d) {
    for (const auto& c : d.contents) {
        bool rtp = false;
        for (const auto& candidate : c.transport.candidates)
            rtp = rtp || candidate.component == 1;
        if (!rtp) return false;
    }
    return true;
}

// The reason text an XMPP caller reads when the SIP side refused the call.
std::string jingle_reason_text(int status, const std::string& phrase) {
    return fmt::format("SIP {} {}", status, phrase);
}

// Text for a quoted-string (RFC 3261 §25.1): printable ASCII without quote or backslash,
// at most 100 characters; anything else becomes a space or is cut.
std::string quoted_text(const std::string& text) {
    std::string out;
    for (const char ch : text.substr(0, 100))
        out += (ch >= 0x20 && ch < 0x7F && ch != '"' && ch != '\\') ? ch : ' ';
    return out;
}

} // namespace

const std::vector<std::string>& jingle_features() {
    static const std::vector<std::string> features{
        "urn:xmpp:jingle:1",
        "urn:xmpp:jingle:apps:rtp:1",
        "urn:xmpp:jingle:apps:rtp:audio",
        "urn:xmpp:jingle:apps:rtp:video",
        "urn:xmpp:jingle:transports:ice-udp:1",
        "urn:xmpp:jingle:transports:raw-udp:1",
        "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
        "urn:xmpp:jingle:apps:dtls:0",
        "urn:xmpp:jingle-message:0",
    };
    return features;
}

CallBridge::CallBridge(core::EventLoop& loop, const core::Config& config, xmpp::ComponentLink& link,
                       sip::UserAgent& agent, dns::Resolver& resolver)
    : loop_(loop), config_(config), link_(link), agent_(agent), resolver_(resolver) {
    std::random_device random;
    for (auto& word : sid_key_)
        word = (std::uint64_t{random()} << 32) ^ random();
}

CallBridge::~CallBridge() {
    *alive_ = false;
}

std::string CallBridge::new_sid() {
    const std::uint64_t n = ++sid_count_;
    return fmt::format("xsgw{:016x}{:08x}", mix(sid_key_[0] ^ n), mix(sid_key_[1] + n) >> 32);
}

CallBridge::Call* CallBridge::find_by_sid(const std::string& party, const std::string& sid) {
    const auto it = by_sid_.find({party, sid});
    if (it == by_sid_.end()) return nullptr;
    const auto call = calls_.find(it->second);
    return call == calls_.end() ? nullptr : call->second.get();
}

translate::SdpOrigin CallBridge::origin_for(Call& call) {
    translate::SdpOrigin origin;
    origin.session_id = call.sdp_session;
    origin.version = call.sdp_version++;
    for (const auto& c : call.offer.contents)
        for (const auto& candidate : c.transport.candidates)
            if (candidate.component == 1 && !candidate.ip.empty() &&
                candidate.ip.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos) {
                origin.address = candidate.ip;
                return origin;
            }
    return origin;
}

// ---------------------------------------------------------------------------
// From XMPP

bool CallBridge::from_xmpp_iq(const gloox::Tag& iq) {
    const std::string& type = iq.findAttribute("type");
    if (type == "result" || type == "error") {
        if (ping_answered(iq)) return true;
        const auto wait = iq_waits_.find(iq.findAttribute("id"));
        if (wait == iq_waits_.end()) return false;
        const auto it = calls_.find(wait->second);
        // Only the party the request went to answers it (an id is no secret).
        if (it != calls_.end() && iq.findAttribute("from") != it->second->party) return false;
        iq_waits_.erase(wait);
        if (it == calls_.end() || type == "result") return true;
        Call& call = *it->second;
        // The party refused our Jingle request (it does not know the session, or is gone).
        spdlog::info("bridge: call {} <-> {} (sid {}): the XMPP side refused our request: "
                     "ending it",
                     call.party, call.sip_uri, call.sid);
        end(call, "", "", 480, "XMPP user unreachable");
        return true;
    }
    auto read = read_jingle(iq);
    if (!read) return false;
    if (type != "set") {
        link_.send(xmpp::make_error_reply(iq, config_.xmpp.component,
                                          {"modify", "bad-request", "a Jingle request is a set"}));
        return true;
    }
    if (!read->has_value()) {
        link_.send(xmpp::make_error_reply(iq, config_.xmpp.component, read->error()));
        return true;
    }
    JingleIq jingle = std::move(read->value());
    if (jingle.action == JingleAction::session_initiate) {
        session_initiate(iq, jingle);
    } else {
        jingle_from_party(iq, jingle);
    }
    return true;
}

void CallBridge::session_initiate(const gloox::Tag& iq, JingleIq& jingle) {
    const std::string& from = iq.findAttribute("from");
    const std::string& to = iq.findAttribute("to");
    auto refuse = [&](const char* type, const char* condition, const std::string& why) {
        ++stats_.refused;
        spdlog::info("bridge: call from {} to {} (sid {}) refused: {}: {}", from, to, jingle.sid,
                     condition, why);
        link_.send(xmpp::make_error_reply(iq, config_.xmpp.component, {type, condition, why}));
    };
    if (stopping_) return refuse("cancel", "service-unavailable", "the gateway is stopping");
    if (!config_.calls.enabled)
        return refuse("cancel", "service-unavailable",
                      "calls are off on this gateway (calls.enabled)");
    if (find_by_sid(from, jingle.sid) != nullptr)
        return refuse("cancel", "conflict", "a session with this sid exists already");
    if (calls_.size() >= config_.calls.max_calls)
        return refuse(
            "wait", "resource-constraint",
            fmt::format("{} calls are under way already (calls.max_calls)", calls_.size()));
    address::AddressConfig addressing{config_.xmpp.component, config_.sip.domain};
    auto party = address::parse_jid(from);
    if (!party) return refuse("modify", "jid-malformed", party.error().reason);
    auto contact = address::parse_jid(to);
    if (!contact) return refuse("modify", "jid-malformed", contact.error().reason);
    auto target = address::contact_jid_to_sip(*contact, addressing);
    if (!target)
        return refuse(std::string(address::error_type(target.error().condition)).c_str(),
                      std::string(address::to_string(target.error().condition)).c_str(),
                      target.error().reason);
    target->gr.clear();
    auto caller = address::xmpp_user_to_sip(*party, addressing);
    if (!caller)
        return refuse(std::string(address::error_type(caller.error().condition)).c_str(),
                      std::string(address::to_string(caller.error().condition)).c_str(),
                      caller.error().reason);
    // XEP-0166 §6.3.2: the session-initiate is acknowledged first; what cannot be carried
    // is then said with session-terminate.
    link_.send(xmpp::make_iq_result(iq, config_.xmpp.component));
    ++stats_.from_xmpp;
    auto call = std::make_unique<Call>();
    call->key = next_key_++;
    call->from_xmpp = true;
    call->sid = jingle.sid;
    call->party = from;
    call->party_bare = address::bare_string(*party);
    call->contact = to;
    call->sip_uri = address::to_string(*target);
    call->sip_from = address::to_string(*caller);
    call->offer = std::move(jingle.description);
    call->sdp_session = mix(sid_key_[0] + call->key) >> 1;
    call->timer = std::make_unique<core::Timer>(loop_);
    Call& ref = *call;
    calls_.emplace(ref.key, std::move(call));
    by_sid_[{ref.party, ref.sid}] = ref.key;
    spdlog::info("bridge: call from {} to {} (sid {}): {} contents, to SIP {}", ref.party,
                 ref.contact, ref.sid, ref.offer.contents.size(), ref.sip_uri);
    if (ref.offer.contents.empty()) {
        ++stats_.refused;
        const bool transport = jingle.refused_for_transport;
        return end(ref, transport ? "unsupported-transports" : "unsupported-applications",
                   transport ? "no content with an ICE-UDP or raw-UDP transport"
                             : "no content with an RTP audio or video description",
                   0, "");
    }
    if (!every_content_has_candidates(ref.offer)) {
        // Trickle ICE (XEP-0176 §2): the candidates follow in transport-info; SIP has no
        // such step here, so they are gathered into the offer, for a while.
        ref.state = Call::State::gathering;
        ref.timer->start(candidate_wait_, [this, key = ref.key] { gathered(key); });
        return;
    }
    start_invite(ref);
}

void CallBridge::gathered(Key key) {
    const auto it = calls_.find(key);
    if (it == calls_.end() || it->second->state != Call::State::gathering) return;
    if (every_content_has_candidates(it->second->offer)) return start_invite(*it->second);
    // An offer without an address would set up a call no media can reach (SIP peers here do
    // not trickle).
    ++stats_.failed;
    end(*it->second, "failed-transport", "no ICE candidate arrived for every content in time", 0,
        "");
}

void CallBridge::start_invite(Call& call) {
    call.timer->cancel();
    call.state = Call::State::resolving;
    auto target = address::parse_sip_uri(call.sip_uri);
    if (!target) return end(call, "general-error", target.error().reason, 0, "");
    resolver_.resolve_sip(destination_of(*target),
                          [this, alive = alive_, key = call.key](const dns::Resolution& r) {
                              if (*alive) on_resolved(key, r);
                          });
}

void CallBridge::on_resolved(Key key, const dns::Resolution& resolution) {
    const auto it = calls_.find(key);
    if (it == calls_.end()) return;
    Call& call = *it->second;
    if (resolution.failure != dns::Failure::none || resolution.targets.empty()) {
        spdlog::info("bridge: call to {} (sid {}): DNS: {}", call.sip_uri, call.sid,
                     resolution.reason);
        return end(call,
                   resolution.failure == dns::Failure::unreachable ? "timeout"
                                                                   : "connectivity-error",
                   "DNS: " + resolution.reason, 0, "");
    }
    auto sdp =
        translate::jingle_to_sdp(call.offer, translate::SdpAuthor::initiator, origin_for(call));
    if (!sdp) {
        spdlog::info("bridge: call to {} (sid {}): no SDP offer: {}", call.sip_uri, call.sid,
                     sdp.error().what);
        return end(call, sdp.error().jingle_reason, sdp.error().what, 0, "");
    }
    sip::OutgoingCall out{call.sip_uri, call.sip_from, call.sip_uri, std::move(sdp.value())};
    sip::CallCallbacks callbacks;
    callbacks.on_progress = [this, key](int status, const std::string&, const std::string&) {
        on_sip_progress(key, status);
    };
    callbacks.on_answer = [this, key](const std::string& answer) { on_sip_answer(key, answer); };
    callbacks.on_end = [this, key](const sip::CallEnd& end) { on_sip_end(key, end); };
    call.sip_call = agent_.invite(out, hops_from(resolution), std::move(callbacks));
    if (call.sip_call == 0)
        return end(call, "general-error", "the INVITE could not be sent", 0, "");
    call.state = Call::State::inviting;
    // The stack gives an INVITE that rings no deadline of its own: the gateway's is the same
    // as for calls from SIP.
    const auto timeout = config_.calls.answer_timeout;
    call.timer->start(std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
                      [this, key = call.key, timeout] {
                          const auto it = calls_.find(key);
                          if (it == calls_.end() || it->second->state != Call::State::inviting)
                              return;
                          ++stats_.failed;
                          spdlog::info("bridge: call to {} (sid {}): not answered in {} s",
                                       it->second->sip_uri, it->second->sid, timeout.count());
                          end(*it->second, "timeout", "not answered", 487, "Request Terminated");
                      });
}

void CallBridge::on_sip_progress(Key key, int status) {
    const auto it = calls_.find(key);
    if (it == calls_.end()) return;
    Call& call = *it->second;
    if (status != 180 && status != 183) return;
    if (call.ringing_sent) return;
    call.ringing_sent = true;
    JingleIq info;
    info.action = JingleAction::session_info;
    info.sid = call.sid;
    info.info = "ringing";
    send_jingle(call, std::move(info));
}

void CallBridge::on_sip_answer(Key key, const std::string& sdp) {
    const auto it = calls_.find(key);
    if (it == calls_.end()) return;
    Call& call = *it->second;
    if (!call.from_xmpp) {
        // The ACK for our 200: the call is set up on both sides.
        spdlog::info("bridge: call from {} to {} (sid {}) answered", call.sip_uri, call.party,
                     call.sid);
        return;
    }
    auto answer = translate::sdp_to_jingle(sdp, translate::SdpAuthor::responder);
    if (!answer) {
        spdlog::info("bridge: call to {} (sid {}): the SDP answer cannot be read: {}", call.sip_uri,
                     call.sid, answer.error().what);
        return end(call, answer.error().jingle_reason, answer.error().what, -1, "");
    }
    // The answer's m-lines are the offer's, in order (RFC 3264 §6): each takes the name and
    // creator of the content it answers; those the SIP side refused (port 0) are left out.
    JingleIq accept;
    accept.action = JingleAction::session_accept;
    accept.sid = call.sid;
    accept.initiator = call.party;
    accept.responder = call.contact;
    std::size_t index = 0;
    for (const auto& slot : answer->layout) {
        const std::size_t at = index++;
        if (slot.content.empty() || at >= call.offer.contents.size()) continue;
        for (auto& content : answer->description.contents) {
            if (content.name != slot.content) continue;
            translate::JingleContent named = content;
            named.name = call.offer.contents[at].name;
            named.creator = call.offer.contents[at].creator;
            accept.description.contents.push_back(std::move(named));
            break;
        }
    }
    if (accept.description.contents.empty())
        return end(call, "unsupported-applications", "the SIP side refused every content", -1, "");
    set_active(call);
    spdlog::info("bridge: call from {} to {} (sid {}) answered", call.party, call.sip_uri,
                 call.sid);
    send_jingle(call, std::move(accept));
}

void CallBridge::on_sip_end(Key key, const sip::CallEnd& sip_end) {
    const auto it = calls_.find(key);
    if (it == calls_.end()) return;
    Call& call = *it->second;
    call.sip_call = 0; // ended on that side already
    const bool active = call.state == Call::State::active;
    if (!active) ++stats_.failed;
    spdlog::info("bridge: call {} <-> {} (sid {}): SIP side ended it: {}", call.party, call.sip_uri,
                 call.sid, sip_end.why);
    if (active) return end(call, "success", "", 0, "");
    if (sip_end.cancelled) return end(call, "cancel", "the SIP caller cancelled", 0, "");
    if (sip_end.status >= 300)
        return end(call, std::string(translate::jingle_reason_for_sip_status(sip_end.status)),
                   jingle_reason_text(sip_end.status, sip_end.phrase), 0, "");
    end(call, "general-error", sip_end.why, 0, "");
}

void CallBridge::jingle_from_party(const gloox::Tag& iq, JingleIq& jingle) {
    const std::string& from = iq.findAttribute("from");
    Call* found = find_by_sid(from, jingle.sid);
    if (found == nullptr) {
        // XEP-0166 §7.2: a request for a session we do not know.
        link_.send(make_jingle_error(iq, config_.xmpp.component,
                                     {"cancel", "item-not-found", "no such Jingle session"},
                                     "unknown-session"));
        return;
    }
    Call& call = *found;
    switch (jingle.action) {
    case JingleAction::session_terminate: {
        link_.send(xmpp::make_iq_result(iq, config_.xmpp.component));
        spdlog::info("bridge: call {} <-> {} (sid {}): XMPP side ended it: {}{}", call.party,
                     call.sip_uri, call.sid, jingle.reason.empty() ? "no reason" : jingle.reason,
                     jingle.reason_text.empty() ? "" : " (" + jingle.reason_text + ")");
        if (call.state != Call::State::active) ++stats_.failed;
        const int status = translate::sip_status_for_jingle_reason(jingle.reason);
        const std::string phrase = jingle.reason == "busy"      ? "Busy Here"
                                   : jingle.reason == "decline" ? "Decline"
                                   : jingle.reason_text.empty()
                                       ? "Call ended by the XMPP user: " + jingle.reason
                                       : jingle.reason_text;
        end(call, "", "", status, phrase);
        return;
    }
    case JingleAction::session_accept:
        if (call.from_xmpp || call.state != Call::State::initiating) {
            // XEP-0166 §7.2: not a request this session is waiting for.
            spdlog::info("bridge: call sid {}: session-accept out of order", call.sid);
            link_.send(make_jingle_error(iq, config_.xmpp.component,
                                         {"cancel", "unexpected-request",
                                          "this session is not waiting for a session-accept"},
                                         "out-of-order"));
            return;
        }
        link_.send(xmpp::make_iq_result(iq, config_.xmpp.component));
        accept_from_party(call, jingle);
        return;
    case JingleAction::transport_info: {
        link_.send(xmpp::make_iq_result(iq, config_.xmpp.component));
        // Candidates that trickle in: gathered into the offer until it is written (after the
        // DNS lookup); once the SDP went, SIP has no way to hear them (no trickle ICE towards
        // SIP).
        if (call.state != Call::State::gathering && call.state != Call::State::resolving) {
            spdlog::debug("bridge: call sid {}: transport-info after the offer left: not "
                          "carried to SIP",
                          call.sid);
            return;
        }
        for (const auto& update : jingle.description.contents)
            for (auto& content : call.offer.contents)
                if (content.name == update.name) {
                    for (const auto& candidate : update.transport.candidates)
                        content.transport.candidates.push_back(candidate);
                    if (!update.transport.ufrag.empty())
                        content.transport.ufrag = update.transport.ufrag;
                    if (!update.transport.pwd.empty()) content.transport.pwd = update.transport.pwd;
                }
        // The first candidates are usually the host ones; the server-reflexive and relayed
        // ones follow within moments: a short grace gathers them too.
        if (call.state == Call::State::gathering && every_content_has_candidates(call.offer))
            call.timer->start(candidate_grace, [this, key = call.key] { gathered(key); });
        return;
    }
    case JingleAction::session_info:
        if (!jingle.info.empty() || !jingle.unknown_info) {
            // Ringing, mute, hold...: told to nobody (SIP has no such in-dialog signal here).
            link_.send(xmpp::make_iq_result(iq, config_.xmpp.component));
        } else {
            link_.send(make_jingle_error(
                iq, config_.xmpp.component,
                {"modify", "feature-not-implemented", "this session-info is not supported"},
                "unsupported-info"));
        }
        return;
    default:
        link_.send(xmpp::make_error_reply(
            iq, config_.xmpp.component,
            {"cancel", "feature-not-implemented",
             fmt::format("Jingle action {} is not supported by the gateway", jingle.action_name)}));
        return;
    }
}

void CallBridge::accept_from_party(Call& call, const JingleIq& jingle) {
    auto sdp = translate::jingle_to_sdp(jingle.description, translate::SdpAuthor::responder,
                                        origin_for(call), &call.layout);
    if (!sdp) {
        spdlog::info("bridge: call from {} to {} (sid {}): the answer cannot be put in SDP: {}",
                     call.sip_uri, call.party, call.sid, sdp.error().what);
        return end(call, sdp.error().jingle_reason, sdp.error().what, sdp.error().sip_status,
                   sdp.error().what);
    }
    if (!agent_.answer(call.sip_call, sdp.value()))
        return end(call, "gone", "the SIP caller is gone", 0, "");
    set_active(call);
}

void CallBridge::set_active(Call& call) {
    call.state = Call::State::active;
    ++stats_.answered;
    call.timer->start(keepalive_interval_, [this, key = call.key] { keepalive(key); });
}

void CallBridge::keepalive(Key key) {
    const auto it = calls_.find(key);
    if (it == calls_.end() || it->second->state != Call::State::active) return;
    Call& call = *it->second;
    // One ping out per call: one that was never answered is forgotten (no answer says nothing).
    ping_waits_.erase(call.ping);
    call.ping = fmt::format("xsgw-ping-{}", ++next_iq_);
    ping_waits_[call.ping] = key;
    JingleIq ping;
    ping.action = JingleAction::session_info; // no payload: a ping (XEP-0166 §6.8)
    ping.sid = call.sid;
    link_.send(make_jingle_iq(call.contact, call.party, call.ping, ping));
    call.timer->start(keepalive_interval_, [this, key] { keepalive(key); });
}

bool CallBridge::ping_answered(const gloox::Tag& iq) {
    const auto wait = ping_waits_.find(iq.findAttribute("id"));
    if (wait == ping_waits_.end()) return false;
    const auto it = calls_.find(wait->second);
    // Only the party the ping went to answers it (an id is no secret).
    if (it != calls_.end() && iq.findAttribute("from") != it->second->party) return false;
    ping_waits_.erase(wait);
    if (it == calls_.end() || iq.findAttribute("type") != "error") return true;
    // Gone: the server answers for a client or account that is not there (RFC 6120 §8.5.3:
    // service-unavailable, recipient-unavailable, item-not-found), the client for a session it
    // does not know (item-not-found with unknown-session), a domain that does not exist. Any
    // other error (feature-not-implemented from a client that does not take pings) is an answer.
    std::string condition;
    if (const gloox::Tag* error = iq.findChild("error"))
        for (const gloox::Tag* child : error->children())
            if (child->xmlns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && child->name() != "text")
                condition = child->name();
    static constexpr std::string_view gone[] = {"service-unavailable", "recipient-unavailable",
                                                "item-not-found", "remote-server-not-found",
                                                "gone"};
    if (std::find(std::begin(gone), std::end(gone), condition) == std::end(gone)) return true;
    Call& call = *it->second;
    spdlog::info("bridge: call {} <-> {} (sid {}): the XMPP party is gone ({} to a ping): "
                 "ending it",
                 call.party, call.sip_uri, call.sid, condition);
    end(call, "", "", 480, "XMPP user gone");
    return true;
}

bool CallBridge::from_xmpp_message(const gloox::Tag& message) {
    auto jmi = read_jingle_message(message);
    if (!jmi) return false;
    if (message.findAttribute("type") == "error") {
        // Our propose bounced (it comes back from the user's address): the user cannot be
        // reached.
        // Only the bare JID (the server answers for the account) counts: an error from one
        // device says nothing of the others.
        const auto from = address::parse_jid(message.findAttribute("from"));
        const std::string bare =
            from && from->resource.empty() ? address::bare_string(*from) : std::string();
        for (auto& [key, call] : calls_)
            if (!bare.empty() && call->sid == jmi->id && !call->from_xmpp &&
                call->party_bare == bare && call->state == Call::State::proposing) {
                end(*call, "", "", 480, "XMPP user unreachable");
                break;
            }
        return true;
    }
    jmi_from_party(message, *jmi);
    return true;
}

void CallBridge::jmi_from_party(const gloox::Tag& message, const JingleMessage& jmi) {
    const std::string& from = message.findAttribute("from");
    const auto party = address::parse_jid(from);
    if (!party) return;
    const std::string bare = address::bare_string(*party);
    Call* found = nullptr;
    for (auto& [key, call] : calls_)
        if (call->sid == jmi.id && call->party_bare == bare) {
            found = call.get();
            break;
        }
    if (jmi.kind == JmiKind::propose) {
        // An XMPP client proposes a call to a SIP contact (XEP-0353 §3.1): the gateway
        // proceeds at once (the SIP side rings once it has the offer) as the contact's
        // resource "sip"; the session-initiate that follows starts the INVITE.
        if (found != nullptr) return;
        const std::string contact = message.findAttribute("to");
        auto to = address::parse_jid(contact);
        if (!to || to->local.empty()) return;
        to->resource = "sip";
        if (stopping_ || !config_.calls.enabled) {
            // XEP-0353 §3.2: refused at once, so the caller's client stops ringing.
            JingleMessage reject;
            reject.kind = JmiKind::reject;
            reject.id = jmi.id;
            reject.reason = "general-error";
            reject.reason_text =
                stopping_ ? "the gateway is stopping" : "calls are off on this gateway";
            spdlog::info("bridge: call proposed by {} to {} (id {}) rejected: {}", from, contact,
                         jmi.id, reject.reason_text);
            link_.send(
                make_jingle_message(address::to_string(*to), from, next_message_id(), reject));
            return;
        }
        JingleMessage proceed;
        proceed.kind = JmiKind::proceed;
        proceed.id = jmi.id;
        spdlog::info("bridge: call proposed by {} to {} (id {}): proceeding", from, contact,
                     jmi.id);
        link_.send(make_jingle_message(address::to_string(*to), from, next_message_id(), proceed));
        return;
    }
    if (found == nullptr) return; // retract, accept or finish of nothing of ours
    Call& call = *found;
    switch (jmi.kind) {
    case JmiKind::proceed:
        if (call.state == Call::State::proposing) proceed(call, from);
        return;
    case JmiKind::reject: {
        if (call.state != Call::State::proposing) return;
        ++stats_.failed;
        const std::string reason = jmi.reason.empty() ? "decline" : jmi.reason;
        spdlog::info("bridge: call from {} to {} (id {}) rejected by {}: {}", call.sip_uri,
                     call.party_bare, call.sid, from, reason);
        call.party.clear(); // nothing to terminate on the XMPP side
        end(call, "", "", translate::sip_status_for_jingle_reason(reason),
            reason == "busy" ? "Busy Here" : "Decline");
        return;
    }
    default:
        return; // accept (another device of the same user took it), ringing, retract, finish
    }
}

// ---------------------------------------------------------------------------
// From SIP

sip::CallCallbacks CallBridge::from_sip(sip::CallId id, const sip::IncomingCall& in) {
    sip::CallCallbacks none;
    auto refuse = [&](int status, const std::string& phrase) {
        ++stats_.refused;
        spdlog::info("bridge: call from {} to {} refused: {} {}", in.from, in.request_uri, status,
                     phrase);
        agent_.hang_up(id, status, phrase);
        return none;
    };
    if (stopping_) return refuse(503, "Gateway shutting down");
    if (!config_.calls.enabled) return refuse(488, "Calls are off on this gateway");
    if (!link_.up()) return refuse(480, "XMPP server unreachable");
    if (calls_.size() >= config_.calls.max_calls) return refuse(503, "Too many calls");
    address::AddressConfig addressing{config_.xmpp.component, config_.sip.domain};
    auto ruri = address::parse_sip_uri(in.request_uri);
    if (!ruri) return refuse(404, ruri.error().reason);
    auto user = address::sip_request_uri_to_xmpp_user(*ruri, addressing);
    if (!user) return refuse(404, user.error().reason);
    auto from = address::parse_sip_uri(in.from);
    if (!from) return refuse(400, from.error().reason);
    from->gr.clear();
    auto contact = address::sip_to_contact_jid(*from, addressing);
    if (!contact) return refuse(403, contact.error().reason);
    if (in.sdp.empty() || in.content_type != "application/sdp")
        return refuse(488, "An INVITE needs an SDP offer here");
    auto offer = translate::sdp_to_jingle(in.sdp, translate::SdpAuthor::initiator);
    if (!offer) return refuse(offer.error().sip_status, offer.error().what);
    ++stats_.from_sip;
    auto call = std::make_unique<Call>();
    call->key = next_key_++;
    call->from_xmpp = false;
    call->sid = new_sid();
    call->party_bare = address::bare_string(*user);
    contact->resource = "sip";
    call->contact = address::to_string(*contact);
    call->sip_uri = in.from;
    call->sip_call = id;
    call->offer = std::move(offer->description);
    call->layout = std::move(offer->layout);
    call->sdp_session = mix(sid_key_[1] + call->key) >> 1;
    call->timer = std::make_unique<core::Timer>(loop_);
    Call& ref = *call;
    calls_.emplace(ref.key, std::move(call));
    spdlog::info("bridge: call from {} to {} (sid {}): proposed to {}", ref.sip_uri, ref.party_bare,
                 ref.sid, ref.party_bare);
    JingleMessage propose;
    propose.kind = JmiKind::propose;
    propose.id = ref.sid;
    for (const auto& content : ref.offer.contents)
        propose.media.push_back(content.media);
    link_.send_or_keep(
        make_jingle_message(ref.contact, ref.party_bare, next_message_id(), propose));
    agent_.ring(id); // every client of the user rings now
    const auto timeout = config_.calls.answer_timeout;
    ref.timer->start(std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
                     [this, key = ref.key, timeout] {
                         const auto it = calls_.find(key);
                         if (it == calls_.end()) return;
                         ++stats_.failed;
                         spdlog::info("bridge: call sid {}: not answered in {} s", it->second->sid,
                                      timeout.count());
                         end(*it->second, "timeout", "not answered", 480, "No answer");
                     });
    sip::CallCallbacks callbacks;
    callbacks.on_answer = [this, key = ref.key](const std::string& sdp) {
        on_sip_answer(key, sdp);
    };
    callbacks.on_end = [this, key = ref.key](const sip::CallEnd& end) { on_sip_end(key, end); };
    return callbacks;
}

void CallBridge::proceed(Call& call, const std::string& resource_jid) {
    call.party = resource_jid;
    call.state = Call::State::initiating;
    by_sid_[{call.party, call.sid}] = call.key;
    JingleIq initiate;
    initiate.action = JingleAction::session_initiate;
    initiate.sid = call.sid;
    initiate.initiator = call.contact;
    initiate.description = call.offer;
    spdlog::info("bridge: call from {} to {} (sid {}): {} proceeds: session-initiate", call.sip_uri,
                 call.party_bare, call.sid, resource_jid);
    send_jingle(call, std::move(initiate));
}

// ---------------------------------------------------------------------------

void CallBridge::send_jingle(Call& call, JingleIq jingle) {
    const std::string id = fmt::format("xsgw-call-{}", ++next_iq_);
    // A refused session-initiate or session-accept ends the call; a refused session-info
    // (a client that does not know ringing) changes nothing.
    if (jingle.action != JingleAction::session_info) iq_waits_[id] = call.key;
    link_.send(make_jingle_iq(call.contact, call.party, id, jingle));
}

void CallBridge::send_terminate(Call& call, const std::string& reason, const std::string& text) {
    JingleIq terminate;
    terminate.action = JingleAction::session_terminate;
    terminate.sid = call.sid;
    terminate.reason = reason;
    terminate.reason_text = text;
    // Its answer is not awaited: the session is gone on our side either way.
    link_.send_or_keep(make_jingle_iq(call.contact, call.party,
                                      fmt::format("xsgw-call-{}", ++next_iq_), terminate));
}

void CallBridge::end(Call& call, const std::string& reason, const std::string& text, int sip_status,
                     const std::string& sip_phrase) {
    if (!reason.empty()) {
        if (call.state == Call::State::proposing && !call.from_xmpp) {
            // XEP-0353 §3.3: the proposal is taken back from every device of the user.
            JingleMessage retract;
            retract.kind = JmiKind::retract;
            retract.id = call.sid;
            retract.reason = reason;
            retract.reason_text = text;
            link_.send_or_keep(
                make_jingle_message(call.contact, call.party_bare, next_message_id(), retract));
        } else if (!call.party.empty()) {
            send_terminate(call, reason, text);
        }
    }
    if (call.sip_call != 0 && sip_status != 0) {
        const int status = sip_status < 0 ? 488 : sip_status;
        agent_.hang_up(call.sip_call, status,
                       sip_phrase.empty() ? std::string("Not Acceptable Here") : sip_phrase,
                       reason.empty() ? std::string()
                                      : fmt::format("SIP;cause={};text=\"{}\"", status,
                                                    quoted_text(text.empty() ? reason : text)));
        call.sip_call = 0;
    } else if (call.sip_call != 0) {
        agent_.hang_up(call.sip_call, 487, "Request Terminated");
        call.sip_call = 0;
    }
    forget(call);
}

void CallBridge::forget(Call& call) {
    if (!call.party.empty()) by_sid_.erase({call.party, call.sid});
    for (auto it = iq_waits_.begin(); it != iq_waits_.end();)
        it = it->second == call.key ? iq_waits_.erase(it) : std::next(it);
    ping_waits_.erase(call.ping);
    calls_.erase(call.key); // call is gone
}

std::string CallBridge::next_message_id() {
    return fmt::format("xsgw-jmi-{}", ++next_iq_);
}

void CallBridge::on_link_down() {
    if (calls_.empty()) return;
    // Nothing said to the XMPP side gets there now, and nothing from it comes: every call
    // ends; what the XMPP party should hear is kept for when the link is back.
    spdlog::info("bridge: XMPP link down: ending {} calls", calls_.size());
    std::vector<Key> keys;
    for (const auto& [key, call] : calls_)
        keys.push_back(key);
    for (const Key key : keys) {
        const auto it = calls_.find(key);
        if (it == calls_.end()) continue;
        ++stats_.failed;
        end(*it->second, "connectivity-error", "the gateway lost its XMPP server", 480,
            "XMPP server unreachable");
    }
}

void CallBridge::stop() {
    if (stopping_) return;
    stopping_ = true;
    std::vector<Key> keys;
    for (const auto& [key, call] : calls_)
        keys.push_back(key);
    if (!keys.empty()) spdlog::info("bridge: stopping: ending {} calls", keys.size());
    for (const Key key : keys) {
        const auto it = calls_.find(key);
        if (it == calls_.end()) continue;
        end(*it->second, "general-error", "the gateway is stopping", 503, "Gateway shutting down");
    }
}

} // namespace xsgw::bridge
