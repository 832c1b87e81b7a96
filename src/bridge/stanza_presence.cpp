#include "xsgw/bridge/stanza_presence.hpp"

#include <gloox/tag.h>

namespace xsgw::bridge {

translate::ResourcePresence presence_from_stanza(const gloox::Tag&) {
    return {}; // TODO(helper)
}

gloox::Tag* stanza_from_presence(const translate::ResourcePresence&, const std::string&,
                                 const std::string&) {
    return nullptr; // TODO(helper)
}

} // namespace xsgw::bridge
