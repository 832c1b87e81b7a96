#include "xml_stream.hpp"

namespace xsgw::bench {
namespace {

constexpr auto npos = std::string_view::npos;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// End of the start tag that begins at element[0] ('<'): the index of its '>',
// skipping any '>' inside a quoted attribute value; npos if not closed.
std::size_t tag_end(std::string_view text, std::size_t from) {
    char quote = 0;
    for (std::size_t i = from + 1; i < text.size(); ++i) {
        const char c = text[i];
        if (quote != 0) {
            if (c == quote) {
                quote = 0;
            }
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '>') {
            return i;
        }
    }
    return npos;
}

} // namespace

void XmlStreamSplitter::feed(std::string_view data) {
    // Bytes before this point have been handed out or skipped and are needed no more.
    const std::size_t keep_from = depth_ >= 2 ? start_ : pos_;
    if (keep_from > 0 && (keep_from == buf_.size() || keep_from >= 65536)) {
        buf_.erase(0, keep_from);
        pos_ -= keep_from;
        start_ = start_ >= keep_from ? start_ - keep_from : 0;
    }
    buf_.append(data);
}

XmlStreamSplitter::Event XmlStreamSplitter::next() {
    const std::string_view text(buf_);
    for (;;) {
        const std::size_t lt = text.find('<', pos_);
        if (lt == npos) {
            pos_ = text.size(); // character data: nothing to keep for it
            return {Kind::need_more, {}};
        }
        const std::string_view rest = text.substr(lt);
        if (rest.size() < 2) {
            pos_ = lt;
            return {Kind::need_more, {}};
        }
        if (rest[1] == '!' || rest[1] == '?') {
            // Comment, CDATA or processing instruction (the XML declaration): skipped whole.
            if (rest.size() < 9) {
                pos_ = lt;
                return {Kind::need_more, {}};
            }
            std::string_view terminator = ">";
            if (rest.starts_with("<!--")) {
                terminator = "-->";
            } else if (rest.starts_with("<![CDATA[")) {
                terminator = "]]>";
            } else if (rest[1] == '?') {
                terminator = "?>";
            }
            const std::size_t end = rest.find(terminator, 2);
            if (end == npos) {
                pos_ = lt;
                return {Kind::need_more, {}};
            }
            pos_ = lt + end + terminator.size();
            continue;
        }
        const std::size_t gt = tag_end(text, lt);
        if (gt == npos) {
            pos_ = lt;
            return {Kind::need_more, {}};
        }
        pos_ = gt + 1;
        const std::string_view tag = text.substr(lt, gt + 1 - lt);
        if (tag[1] == '/') {
            --depth_;
            if (depth_ == 0) {
                return {Kind::stream_close, tag};
            }
            if (depth_ == 1) {
                return {Kind::element, text.substr(start_, pos_ - start_)};
            }
            if (depth_ < 0) {
                return {Kind::malformed, tag};
            }
            continue;
        }
        const bool self_closing = tag[tag.size() - 2] == '/';
        if (depth_ == 0) {
            if (self_closing) {
                return {Kind::malformed, tag};
            }
            depth_ = 1;
            return {Kind::stream_open, tag};
        }
        if (depth_ == 1) {
            start_ = lt;
            if (self_closing) {
                return {Kind::element, tag};
            }
        }
        if (!self_closing) {
            ++depth_;
        }
    }
}

std::string_view element_name(std::string_view element) {
    if (element.empty() || element[0] != '<') {
        return {};
    }
    std::size_t end = 1;
    while (end < element.size() && !is_space(element[end]) && element[end] != '/' &&
           element[end] != '>') {
        ++end;
    }
    return element.substr(1, end - 1);
}

std::optional<std::string_view> attribute(std::string_view element, std::string_view name) {
    const std::size_t gt = tag_end(element, 0);
    const std::string_view tag = element.substr(0, gt == npos ? element.size() : gt);
    std::size_t i = 1 + element_name(element).size();
    while (i < tag.size()) {
        while (i < tag.size() && is_space(tag[i])) {
            ++i;
        }
        const std::size_t name_start = i;
        while (i < tag.size() && tag[i] != '=' && !is_space(tag[i]) && tag[i] != '/') {
            ++i;
        }
        const std::string_view attr = tag.substr(name_start, i - name_start);
        while (i < tag.size() && is_space(tag[i])) {
            ++i;
        }
        if (i >= tag.size() || tag[i] != '=') {
            return std::nullopt; // "/" of a self-closing tag, or not XML we understand
        }
        ++i;
        while (i < tag.size() && is_space(tag[i])) {
            ++i;
        }
        if (i >= tag.size() || (tag[i] != '\'' && tag[i] != '"')) {
            return std::nullopt;
        }
        const char quote = tag[i++];
        const std::size_t close = tag.find(quote, i);
        if (close == npos) {
            return std::nullopt;
        }
        if (attr == name) {
            return tag.substr(i, close - i);
        }
        i = close + 1;
    }
    return std::nullopt;
}

std::optional<std::string_view> child_text(std::string_view element, std::string_view name) {
    std::size_t from = tag_end(element, 0);
    while (from != npos) {
        const std::size_t lt = element.find('<', from);
        if (lt == npos) {
            return std::nullopt;
        }
        if (element_name(element.substr(lt)) == name) {
            const std::size_t gt = tag_end(element, lt);
            if (gt == npos) {
                return std::nullopt;
            }
            if (element[gt - 1] == '/') {
                return std::string_view(); // <body/>
            }
            const std::size_t end = element.find("</", gt + 1);
            if (end == npos) {
                return std::nullopt;
            }
            return element.substr(gt + 1, end - gt - 1);
        }
        from = lt + 1;
    }
    return std::nullopt;
}

} // namespace xsgw::bench
