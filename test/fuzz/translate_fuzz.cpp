#include "xsgw/translate/message.hpp"
#include <cstdlib>
#include <string>
using namespace xsgw::translate;
static void check(bool ok) { if (!ok) std::abort(); }
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const char* types[] = {"text/plain", "text/html", "message/cpim", "application/im-iscomposing+xml",
                           "text/plain;charset=windows-1252", "text/html;charset=latin1"};
    std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
    SipMessageIn in;
    in.content_type = types[data[0] % 6];
    in.body = std::string(all);
    in.subject = std::string(all.substr(0, 20));
    in.call_id = std::string(all.substr(0, 30));
    in.content_language = std::string(all.substr(0, 10));
    auto r = sip_to_xmpp(in);
    if (r) {
        check(is_valid_utf8(r->body));
        check(r->xhtml.empty() || is_well_formed_xhtml_body(r->xhtml));
    } else {
        check(is_valid_utf8(r.error().reason));
        check(r.error().reason.find('\n') == std::string::npos);
    }
    (void)parse_media_type(all);
    (void)parse_cpim(all);
    (void)parse_iscomposing(all);
    auto t = html_to_text(all);
    check(is_valid_utf8(t));
    auto x = html_to_xhtml_im(all);
    if (x) check(is_well_formed_xhtml_body(*x));
    XmppMessage m; m.body = std::string(all); m.subject = std::string(all); m.thread = std::string(all); m.lang = std::string(all.substr(0,12));
    auto s = xmpp_to_sip(m);
    if (s && std::holds_alternative<SipMessageOut>(*s)) {
        auto& o = std::get<SipMessageOut>(*s);
        check(o.subject.find_first_of("\r\n") == std::string::npos);
        check(is_valid_utf8(o.subject));
    }
    return 0;
}
