#include "incoming.hpp"

#include "handles.hpp"
#include "xsgw/sip/incoming.hpp"

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

} // namespace detail

std::optional<IncomingMessage> parse_request(std::string_view text) {
    // msg_make parses a complete message from a buffer, as the transport does a datagram.
    const std::unique_ptr<msg_t, void (*)(msg_t*)> msg(
        msg_make(sip_default_mclass(), 0, text.data(), static_cast<isize_t>(text.size())),
        msg_destroy);
    if (!msg || msg_has_error(msg.get())) return std::nullopt;
    const sip_t* sip = sip_object(msg.get());
    // What the transaction layer lets through to the user agent: a request with the headers
    // every request has (RFC 3261 8.1.1).
    if (sip == nullptr || sip->sip_request == nullptr || sip_sanity_check(sip) != 0)
        return std::nullopt;
    return detail::incoming_message_of(sip);
}

} // namespace xsgw::sip
