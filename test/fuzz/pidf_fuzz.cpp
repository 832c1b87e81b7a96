// S2: pidf_to_presence on any bytes. Besides surviving, what it reads must be
// clean (valid UTF-8, resources without controls and within 1023 bytes, show
// and priority only on available resources, priority in 0..127), and writing
// it as PIDF and reading that back must give the same values: the gateway may
// relay presence more than once.
#include "xsgw/translate/message.hpp"
#include "xsgw/translate/presence.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace xsgw::translate;

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

bool has_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c < 0x20 || c == 0x7F;
    });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto result = pidf_to_presence(body);
    if (!result) {
        check(!result.error().what.empty());
        return 0;
    }
    for (const ResourcePresence& p : *result) {
        check(is_valid_utf8(p.resource) && !has_control(p.resource) && p.resource.size() <= 1023);
        check(is_valid_utf8(p.status) && is_valid_utf8(p.status_lang));
        check(!p.status.empty() || p.status_lang.empty());
        check(p.available || (p.show == Show::none && !p.priority));
        check(!p.priority || (*p.priority >= 0 && *p.priority <= 127));
    }
    if (result->empty()) {
        return 0; // an empty list is written as one closed tuple
    }
    const auto again = pidf_to_presence(presence_to_pidf("sip:fuzz@example.com", *result),
                                        std::size_t{16} * 1024 * 1024);
    check(again.has_value() && *again == *result);
    return 0;
}
