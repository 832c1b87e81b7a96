#include "xsgw/translate/presence.hpp"

namespace xsgw::translate {

std::string presence_to_pidf(std::string_view, const std::vector<ResourcePresence>&) {
    return {}; // TODO(helper): P10
}

Expected<std::vector<ResourcePresence>, PidfError> pidf_to_presence(std::string_view,
                                                                    std::size_t) {
    return PidfError{"not implemented"}; // TODO(helper): P11
}

} // namespace xsgw::translate
