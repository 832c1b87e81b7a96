// What the fuzz targets of stanzas share: bytes fed to gloox's parser as they would come from
// the XMPP server after the component handshake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <gloox/parser.h>
#include <gloox/taghandler.h>
#include <string>

namespace xsgw::fuzz {

/// Feeds data to a parser whose stream is already open (jabber:component:accept); handler
/// receives each top-level element.
inline void feed_component_stream(gloox::TagHandler& handler, const std::uint8_t* data,
                                  std::size_t size) {
    gloox::Parser parser(&handler);
    std::string open = "<stream:stream xmlns='jabber:component:accept' "
                       "xmlns:stream='http://etherx.jabber.org/streams' id='f'>";
    parser.feed(open);
    std::string bytes(reinterpret_cast<const char*>(data), size);
    parser.feed(bytes);
}

} // namespace xsgw::fuzz
