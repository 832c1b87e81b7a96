// SIP requests as xsgw receives them (S2): Sofia-SIP's parser, then what the user agent
// reads of the request (as a MESSAGE, a SUBSCRIBE and a NOTIFY), then the bridge's pure
// steps on it (addresses, message translation).
#include "xsgw/address/address.hpp"
#include "xsgw/sip/incoming.hpp"
#include "xsgw/translate/message.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

static void check(bool ok) {
    if (!ok) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (const auto n = xsgw::sip::parse_notify(text)) {
        check(n->body.size() <= size);
        check(!n->expires || n->expires->count() <= 86400L * 365);
        check(n->content_type.size() <= size);
    }
    if (const auto s = xsgw::sip::parse_subscribe(text)) {
        check(s->accept.size() <= 2 * size + 64); // as Sofia prints it back
        if (auto ruri = xsgw::address::parse_sip_uri(s->request_uri)) (void)ruri->host.size();
    }
    const auto m = xsgw::sip::parse_request(text);
    if (!m) return 0;
    check(m->body.size() <= size);
    xsgw::address::AddressConfig config;
    config.component = "sip.test";
    config.sip_domain = "sip.test";
    if (auto ruri = xsgw::address::parse_sip_uri(m->request_uri))
        (void)xsgw::address::sip_request_uri_to_xmpp_user(*ruri, config);
    if (auto from = xsgw::address::parse_sip_uri(m->from)) {
        if (auto jid = xsgw::address::sip_to_contact_jid(*from, config))
            check(xsgw::translate::is_valid_utf8(xsgw::address::to_string(*jid)));
    }
    const xsgw::translate::SipMessageIn in{m->content_type, m->body, m->subject,
                                           m->content_language, m->call_id};
    if (auto x = xsgw::translate::sip_to_xmpp(in)) {
        check(xsgw::translate::is_valid_utf8(x->body));
        check(xsgw::translate::is_valid_utf8(x->subject));
    } else {
        check(x.error().code >= 400 && x.error().code < 700);
    }
    return 0;
}
