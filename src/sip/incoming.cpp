#include "incoming.hpp"

#include "handles.hpp"
#include "xsgw/sip/incoming.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_util.h>

namespace xsgw::sip {

namespace detail {

namespace {

/// A header value as the parser left it may keep its line folding (CRLF and blanks): one
/// space instead, as RFC 3261 7.3.1 makes them mean.
std::string unfolded(const char* raw) {
    std::string out;
    for (const char* p = raw; *p != '\0'; ++p) {
        if (*p == '\r' || *p == '\n') {
            while (p[1] == '\r' || p[1] == '\n' || p[1] == ' ' || p[1] == '\t')
                ++p;
            out += ' ';
            continue;
        }
        out += *p;
    }
    return out;
}

} // namespace

IncomingMessage incoming_message_of(const sip_t* sip) {
    IncomingMessage m;
    if (sip == nullptr) return m;
    Home home;
    if (sip->sip_request != nullptr) m.request_uri = home.url(sip->sip_request->rq_url);
    if (sip->sip_from != nullptr) {
        m.from = home.url(sip->sip_from->a_url);
        m.from_header = home.header(sip->sip_from);
    }
    if (sip->sip_to != nullptr) m.to = home.url(sip->sip_to->a_url);
    if (sip->sip_call_id != nullptr && sip->sip_call_id->i_id != nullptr)
        m.call_id = sip->sip_call_id->i_id;
    if (sip->sip_content_type != nullptr) m.content_type = home.header(sip->sip_content_type);
    if (sip->sip_payload != nullptr && sip->sip_payload->pl_data != nullptr)
        m.body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
    if (sip->sip_subject != nullptr && sip->sip_subject->g_value != nullptr)
        m.subject = unfolded(sip->sip_subject->g_value);
    if (sip->sip_content_language != nullptr)
        m.content_language = home.header(sip->sip_content_language);
    if (sip->sip_max_forwards != nullptr)
        m.max_forwards = static_cast<int>(sip->sip_max_forwards->mf_count);
    return m;
}

IncomingSubscribe incoming_subscribe_of(const sip_t* sip) {
    IncomingSubscribe in;
    if (sip == nullptr) return in;
    Home home;
    if (sip->sip_request != nullptr) in.request_uri = home.url(sip->sip_request->rq_url);
    if (sip->sip_from != nullptr) in.from = home.url(sip->sip_from->a_url);
    if (sip->sip_to != nullptr) in.to = home.url(sip->sip_to->a_url);
    if (sip->sip_event != nullptr && sip->sip_event->o_type != nullptr)
        in.event = sip->sip_event->o_type;
    // Every Accept element, not only the first: "Accept: a, b" (or two Accept lines) is a list.
    for (const sip_accept_t* a = sip->sip_accept; a != nullptr; a = a->ac_next) {
        if (!in.accept.empty()) in.accept += ", ";
        in.accept += home.header(a);
    }
    if (sip->sip_expires != nullptr) in.expires = std::chrono::seconds(sip->sip_expires->ex_delta);
    if (sip->sip_call_id != nullptr && sip->sip_call_id->i_id != nullptr)
        in.call_id = sip->sip_call_id->i_id;
    return in;
}

std::optional<std::chrono::seconds> seconds_of(const char* text) {
    if (text == nullptr || *text == '\0') return std::nullopt;
    char* end = nullptr;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (end == text) return std::nullopt;
    return std::chrono::seconds(std::min<unsigned long>(value, 86400UL * 365));
}

NotifyInfo notify_info_of(const sip_t* sip) {
    NotifyInfo info;
    const sip_subscription_state_t* ss = sip != nullptr ? sip->sip_subscription_state : nullptr;
    std::string said = ss != nullptr && ss->ss_substate != nullptr ? ss->ss_substate : "";
    std::transform(said.begin(), said.end(), said.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (said == "active") {
        info.state = SubState::active;
    } else if (said == "terminated") {
        info.state = SubState::terminated;
    } else {
        info.state = SubState::pending;
    }
    if (ss != nullptr) {
        if (ss->ss_reason != nullptr) info.reason = ss->ss_reason;
        info.expires = seconds_of(ss->ss_expires);
    }
    if (sip != nullptr && sip->sip_payload != nullptr && sip->sip_payload->pl_data != nullptr) {
        info.body.assign(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
        const sip_content_type_t* ct = sip->sip_content_type;
        if (ct != nullptr && ct->c_type != nullptr) {
            info.content_type = ct->c_type;
            std::transform(info.content_type.begin(), info.content_type.end(),
                           info.content_type.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        }
    }
    return info;
}

} // namespace detail

namespace {

using Message = std::unique_ptr<msg_t, void (*)(msg_t*)>;

// Parses text as the transport does a datagram; null unless it is a request with the headers
// every request has (RFC 3261 8.1.1), as the transaction layer lets through.
Message parsed(std::string_view text) {
    Message msg(msg_make(sip_default_mclass(), 0, text.data(), static_cast<isize_t>(text.size())),
                msg_destroy);
    if (!msg || msg_has_error(msg.get())) return Message(nullptr, msg_destroy);
    const sip_t* sip = sip_object(msg.get());
    if (sip == nullptr || sip->sip_request == nullptr || sip_sanity_check(sip) != 0)
        return Message(nullptr, msg_destroy);
    return msg;
}

} // namespace

std::optional<IncomingSubscribe> parse_subscribe(std::string_view text) {
    const Message msg = parsed(text);
    if (!msg) return std::nullopt;
    return detail::incoming_subscribe_of(sip_object(msg.get()));
}

std::optional<NotifyInfo> parse_notify(std::string_view text) {
    const Message msg = parsed(text);
    if (!msg) return std::nullopt;
    return detail::notify_info_of(sip_object(msg.get()));
}

std::optional<IncomingMessage> parse_request(std::string_view text) {
    const Message msg = parsed(text);
    if (!msg) return std::nullopt;
    return detail::incoming_message_of(sip_object(msg.get()));
}

} // namespace xsgw::sip
