// The user agent's calls (issue 8): INVITE sessions (RFC 3261 §13-15) on nua's
// session usage, with nua's own offer/answer engine off (NUTAG_MEDIA_ENABLE(0)):
// the bridge's SDP goes out as it is and the peer's comes back as it is.
//
// What nua does by itself here: it sends 100 Trying for an INVITE, ACKs a 2xx to our
// INVITE, answers CANCEL 200 and the INVITE 487, answers BYE 200, retransmits our 2xx
// until the ACK comes (and ends the call when none does), and reports every change of
// the call's state as nua_i_state, the last one `terminated`: that event alone ends a call.
#include "handles.hpp"
#include "incoming.hpp"

#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_status.h>
#include <spdlog/spdlog.h>

namespace xsgw::sip {

namespace {

constexpr const char* sdp_type = "application/sdp";

std::string sdp_of(const sip_t* sip) {
    if (sip == nullptr || sip->sip_payload == nullptr || sip->sip_payload->pl_data == nullptr)
        return {};
    return std::string(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
}

// The o= line of an SDP body (RFC 4566 §5.2); empty when there is none.
std::string origin_line(const std::string& sdp) {
    std::size_t at = sdp.rfind("o=", 0) == 0 ? 0 : sdp.find("\no=");
    if (at == std::string::npos) return {};
    if (at != 0) ++at;
    const std::size_t end = sdp.find_first_of("\r\n", at);
    return sdp.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// A reason phrase as it may go on a status line: printable ASCII (RFC 3261 §25.1 allows
// more, but nothing here needs it), at most 100 characters; never empty.
std::string safe_phrase(const std::string& phrase) {
    std::string out;
    for (const char ch : phrase.substr(0, 100))
        out += (ch >= 0x20 && ch < 0x7F) ? ch : ' ';
    return out.empty() ? std::string("Call ended") : out;
}

} // namespace

CallId UserAgent::invite(const OutgoingCall& call, std::vector<NextHop> hops,
                         CallCallbacks callbacks) {
    if (nua_ == nullptr || shut_down_ || stopping_) return 0;
    auto c = std::make_unique<Call>();
    c->id = next_id_++;
    c->outgoing = true;
    c->request = call;
    c->local_sdp = call.sdp;
    c->hops = std::move(hops);
    c->callbacks = std::move(callbacks);
    Call& ref = *c;
    calls_.emplace(c->id, std::move(c));
    if (!start_call(ref)) {
        calls_.erase(ref.id);
        return 0;
    }
    return ref.id;
}

bool UserAgent::start_call(Call& c) {
    while (c.next_hop < c.hops.size()) {
        const auto gate = gate_hop(
            c.hops[c.next_hop],
            [this, id = c.id] {
                const auto it = calls_.find(id);
                if (it == calls_.end() || stopping_ || shut_down_) return;
                Call& call = *it->second;
                if (call.ending || call.nh != nullptr) return;
                if (!start_call(call))
                    end_call(call, {503, call.refusal, false, false, call.refusal});
            },
            c.refusal);
        if (gate == HopGate::wait) return true;
        if (gate == HopGate::go) break;
        spdlog::warn("sip: INVITE {} -> {} not sent via {}: {}", c.request.from,
                     c.request.request_uri, c.hops[c.next_hop].host, c.refusal);
        ++c.next_hop;
    }
    if (c.next_hop >= c.hops.size()) return false;
    const NextHop& hop = c.hops[c.next_hop++];
    const std::string proxy = detail::hop_url(hop);
    const std::string to = "<" + c.request.to + ">";
    const std::string from = "<" + c.request.from + ">";
    c.nh =
        nua_handle(nua_, &c, SIPTAG_TO_STR(to.c_str()), SIPTAG_FROM_STR(from.c_str()), TAG_END());
    if (c.nh == nullptr) return false;
    nua_set_hparams(c.nh, NUTAG_PROXY(proxy.c_str()), TAG_END());
    spdlog::info("sip: INVITE {} -> {} via {} ({})", c.request.from, c.request.request_uri, proxy,
                 hop.host);
    const bool plain_contact = !plain_contact_.empty() && hop.transport != "tls";
    nua_invite(c.nh, NUTAG_URL(c.request.request_uri.c_str()),
               TAG_IF(plain_contact, SIPTAG_CONTACT_STR(plain_contact_.c_str())),
               SIPTAG_CONTENT_TYPE_STR(sdp_type), SIPTAG_PAYLOAD_STR(c.local_sdp.c_str()),
               TAG_END());
    return true;
}

bool UserAgent::ring(CallId id) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    Call& c = *it->second;
    if (c.outgoing || c.answered || c.ending) return false;
    nua_respond(c.nh, SIP_180_RINGING, TAG_END());
    return true;
}

bool UserAgent::answer(CallId id, const std::string& sdp) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    Call& c = *it->second;
    if (c.outgoing || c.answered || c.ending) return false;
    c.answered = true;
    c.local_sdp = sdp;
    spdlog::info("sip: call {} -> {}: 200 OK", c.request.from, c.request.request_uri);
    nua_respond(c.nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR(sdp_type),
                SIPTAG_PAYLOAD_STR(c.local_sdp.c_str()), TAG_END());
    return true;
}

void UserAgent::hang_up(CallId id, int status, const std::string& phrase,
                        const std::string& reason) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) return;
    Call& c = *it->second;
    c.callbacks = {};
    if (c.ending) return;
    c.ending = true;
    if (c.nh == nullptr || shut_down_) { // a TLS check still runs: nothing went out yet
        if (c.nh != nullptr) nua_handle_destroy(c.nh);
        calls_.erase(it);
        return;
    }
    const char* why = reason.empty() ? nullptr : reason.c_str();
    if (c.answered) {
        spdlog::info("sip: BYE {} -> {}", c.request.from, c.request.request_uri);
        nua_bye(c.nh, TAG_IF(why != nullptr, SIPTAG_REASON_STR(why)), TAG_END());
    } else if (c.outgoing) {
        spdlog::info("sip: CANCEL {} -> {}", c.request.from, c.request.request_uri);
        nua_cancel(c.nh, TAG_IF(why != nullptr, SIPTAG_REASON_STR(why)), TAG_END());
    } else {
        if (status < 300 || status > 699) status = 500;
        const std::string text = safe_phrase(phrase);
        spdlog::info("sip: call {} -> {} refused: {} {}", c.request.from, c.request.request_uri,
                     status, text);
        const char* owned = su_strdup(nua_handle_home(c.nh), text.c_str());
        nua_respond(c.nh, status, owned, TAG_IF(why != nullptr, SIPTAG_REASON_STR(why)), TAG_END());
    }
    // The handle goes with nua_i_state terminated.
}

void UserAgent::hang_up_all_calls() {
    std::vector<CallId> ids;
    ids.reserve(calls_.size());
    for (const auto& [id, c] : calls_)
        ids.push_back(id);
    for (const CallId id : ids)
        hang_up(id, 503, "Gateway shutting down", "SIP;cause=503;text=\"Gateway shutting down\"");
}

void UserAgent::on_incoming_invite(nua_handle_s* nh, const void* raw) {
    const auto* sip = static_cast<const sip_t*>(raw);
    const IncomingMessage m = detail::incoming_message_of(sip);
    IncomingCall in;
    in.request_uri = m.request_uri;
    in.from = m.from;
    in.from_header = m.from_header;
    in.to = m.to;
    in.call_id = m.call_id;
    in.max_forwards = m.max_forwards;
    if (sip != nullptr && sip->sip_content_type != nullptr &&
        sip->sip_content_type->c_type != nullptr) {
        in.content_type = sip->sip_content_type->c_type;
        for (char& ch : in.content_type)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    in.sdp = m.body;
    auto c = std::make_unique<Call>();
    c->id = next_id_++;
    c->nh = nh;
    c->remote_origin = origin_line(in.sdp);
    c->request.from = in.from;
    c->request.request_uri = in.request_uri;
    Call& ref = *c;
    calls_.emplace(c->id, std::move(c));
    nua_handle_bind(nh, &ref);
    spdlog::info("sip: INVITE {} -> {} (Call-ID {})", in.from, in.request_uri, in.call_id);
    if (stopping_ || shut_down_ || !on_call_) {
        hang_up(ref.id, 503, "Gateway shutting down");
        return;
    }
    const CallId id = ref.id;
    CallCallbacks callbacks = on_call_(id, in);
    const auto it = calls_.find(id);
    if (it == calls_.end() || it->second->ending) return; // refused at once
    it->second->callbacks = std::move(callbacks);
}

void UserAgent::on_call_event(Call& c, int event, int status, const char* phrase, const void* raw,
                              const void* tags) {
    const auto* sip = static_cast<const sip_t*>(raw);
    const std::string text = phrase != nullptr ? phrase : "";
    switch (static_cast<nua_event_t>(event)) {
    case nua_r_invite:
        on_invite_response(c, status, phrase, raw);
        break;
    case nua_i_invite: {
        // A re-INVITE in the call. A session refresh (no offer, or the same o= version: RFC
        // 3264 §8) is answered with the session as it is; a changed session (hold, new
        // address, more media) cannot be carried to the XMPP side yet: 488 leaves the session
        // as it was (RFC 3261 §14.2).
        const std::string offer = sdp_of(sip);
        if (offer.empty() || origin_line(offer) == c.remote_origin) {
            spdlog::info("sip: re-INVITE {} -> {}: a refresh, answered with the session as it is",
                         c.request.from, c.request.request_uri);
            nua_respond(c.nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR(sdp_type),
                        SIPTAG_PAYLOAD_STR(c.local_sdp.c_str()), TAG_END());
        } else {
            spdlog::info("sip: re-INVITE {} -> {} changes the session: 488 (not carried to "
                         "XMPP; the session stays as it was)",
                         c.request.from, c.request.request_uri);
            nua_respond(c.nh, 488, "Session changes are not supported by the gateway", TAG_END());
        }
        break;
    }
    case nua_i_ack:
        // The ACK for our 2xx to the INVITE; later ones are for re-INVITEs.
        if (!c.outgoing && !c.ending && !c.confirmed) {
            c.confirmed = true;
            if (c.callbacks.on_answer) {
                auto on_answer = c.callbacks.on_answer;
                on_answer(sdp_of(sip));
            }
        }
        break;
    case nua_i_cancel:
        c.end = {0, "", true, false, "the caller cancelled"};
        break;
    case nua_i_bye:
        c.end = {0, "", false, true, "the peer hung up (BYE)"};
        break;
    case nua_i_state:
        if (detail::callstate_of(tags) == nua_callstate_terminated) {
            if (c.end.why.empty())
                c.end = {c.answered ? 0 : (status >= 300 ? status : 500), text, false, false,
                         fmt::format("{} {}", status, text)};
            end_call(c, c.end);
        }
        break;
    default:
        // Any other request in the call's dialog (an in-dialog MESSAGE, SUBSCRIBE, INFO...)
        // is answered, not left to time out: RFC 5057 has some peers end the call on a 408.
        if (nua_event_is_incoming_request(static_cast<nua_event_t>(event)) && status < 200) {
            spdlog::info("sip: {} in the call {} -> {}: 405",
                         nua_event_name(static_cast<nua_event_t>(event)), c.request.from,
                         c.request.request_uri);
            nua_respond(c.nh, SIP_405_METHOD_NOT_ALLOWED, NUTAG_WITH_THIS(nua_), TAG_END());
        }
        break;
    }
}

void UserAgent::on_invite_response(Call& c, int status, const char* phrase, const void* raw) {
    const auto* sip = static_cast<const sip_t*>(raw);
    const std::string text = phrase != nullptr ? phrase : "";
    if (c.ending) {
        // A 2xx that crossed our CANCEL: nua has ACKed it, so the call is up on the other
        // side; it is ended at once (RFC 3261 §9.1).
        if (status >= 200 && status < 300 && !c.answered) {
            c.answered = true;
            spdlog::info("sip: INVITE {} -> {}: answered after our CANCEL: BYE", c.request.from,
                         c.request.request_uri);
            nua_bye(c.nh, TAG_END());
        }
        return;
    }
    if (c.answered) {
        // The answer to a refresh the stack sent by itself: nothing new for the bridge.
        spdlog::debug("sip: INVITE {} -> {}: {} {} to a refresh", c.request.from,
                      c.request.request_uri, status, text);
        return;
    }
    if (status < 200) {
        if (status > 100) c.provisional = true;
        if (status > 100 && c.callbacks.on_progress) {
            auto on_progress = c.callbacks.on_progress;
            on_progress(status, text, sdp_of(sip));
        }
        return;
    }
    spdlog::info("sip: INVITE {} -> {}: {} {}", c.request.from, c.request.request_uri, status,
                 text);
    if (status < 300) {
        c.answered = true;
        c.remote_origin = origin_line(sdp_of(sip));
        if (c.callbacks.on_answer) {
            auto on_answer = c.callbacks.on_answer;
            on_answer(sdp_of(sip));
        }
        return;
    }
    if (!c.provisional && detail::try_next_hop(status) && c.next_hop < c.hops.size()) {
        // D5: this hop failed, not the callee: the next hop gets a new INVITE on a new handle.
        nua_handle_destroy(c.nh);
        c.nh = nullptr;
        if (start_call(c)) return;
        // No hop left to try: the old handle is gone, so no `terminated` follows.
        return end_call(c, {status, text, false, false, fmt::format("{} {}", status, text)});
    }
    c.end = {status, text, false, false, fmt::format("{} {}", status, text)};
    // nua_i_state terminated follows and ends it.
}

void UserAgent::end_call(Call& c, CallEnd end) {
    CallCallbacks callbacks = std::move(c.callbacks);
    const bool was_ending = c.ending;
    spdlog::info("sip: call {} -> {} ended: {}", c.request.from, c.request.request_uri,
                 end.why.empty() ? std::string("hung up") : end.why);
    if (c.nh != nullptr) nua_handle_destroy(c.nh);
    calls_.erase(c.id); // c is gone
    if (!was_ending && callbacks.on_end) callbacks.on_end(end);
}

} // namespace xsgw::sip
