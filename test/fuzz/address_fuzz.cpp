// S2: JIDs and SIP URIs as they arrive from either network, through every mapping.
#include "xsgw/address/address.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

const xsgw::address::AddressConfig config{"sip.test", "xmpp.test", '*'};

// A mapping's output must parse again and map back to itself (A6) or fail cleanly.
void through_mappings(std::string_view text) {
    using namespace xsgw::address;
    if (auto jid = parse_jid(text)) {
        (void)to_string(*jid);
        if (auto uri = contact_jid_to_sip(*jid, config)) {
            auto again = parse_sip_uri(to_string(*uri));
            if (!again) std::abort(); // we produced a URI we cannot read
        }
        if (auto uri = xmpp_user_to_sip(*jid, config)) {
            auto again = parse_sip_uri(to_string(*uri));
            if (!again) std::abort();
        }
    }
    if (auto uri = parse_sip_uri(text)) {
        (void)to_string(*uri);
        if (auto jid = sip_to_contact_jid(*uri, config)) {
            auto again = parse_jid(to_string(*jid));
            if (!again) std::abort(); // we produced a JID we cannot read
        }
        (void)sip_request_uri_to_xmpp_user(*uri, config);
    }
    (void)parse_sip_address_prompt(text);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    through_mappings(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
