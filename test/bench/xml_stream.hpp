// Just enough XML for the benchmark's fake XMPP server: cut the byte stream
// xsgw writes into the stream header, whole top-level elements (stanzas,
// <handshake/>) and the stream end, and read an attribute or a child's text
// out of one element. No validation, no namespaces, no entity decoding: the
// benchmark only looks at values it wrote itself (ids, JIDs, bodies of
// digits and letters), which need none.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace xsgw::bench {

/// Splits an XMPP stream into events; keeps what it has not yet handed out.
class XmlStreamSplitter {
public:
    enum class Kind {
        need_more,    ///< nothing complete yet: feed more bytes
        stream_open,  ///< text = the <stream:stream ...> start tag
        element,      ///< text = one whole top-level element, start tag to end tag
        stream_close, ///< text = </stream:stream>
        malformed,    ///< text = where the stream stopped making sense
    };
    /// One event; text stays valid until the next feed().
    struct Event {
        Kind kind;
        std::string_view text;
    };

    XmlStreamSplitter() = default;
    XmlStreamSplitter(const XmlStreamSplitter&) = delete;
    XmlStreamSplitter& operator=(const XmlStreamSplitter&) = delete;
    XmlStreamSplitter(XmlStreamSplitter&&) = default;
    XmlStreamSplitter& operator=(XmlStreamSplitter&&) = default;
    ~XmlStreamSplitter() = default;

    /// Appends bytes read from the socket (and drops what was handed out before).
    void feed(std::string_view data);
    /// The next complete event, or need_more.
    Event next();

private:
    std::string buf_;
    std::size_t pos_ = 0;   // where scanning resumes
    std::size_t start_ = 0; // start of the top-level element being collected
    int depth_ = 0;         // 0 before the stream header, 1 between stanzas
};

/// The element name of a start tag or element text: "message" for "<message to='x'>".
std::string_view element_name(std::string_view element);

/// The raw value of attribute `name` on the element's start tag, if present.
std::optional<std::string_view> attribute(std::string_view element, std::string_view name);

/// The text of the first child element `name` (e.g. "body"), if present and closed.
std::optional<std::string_view> child_text(std::string_view element, std::string_view name);

} // namespace xsgw::bench
