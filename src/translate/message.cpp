#include "xsgw/translate/message.hpp"

#include "xml_reader.hpp"
#include "xsgw/translate/xml_text.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <fmt/format.h>

namespace xsgw::translate {
namespace {

constexpr auto npos = std::string_view::npos;

constexpr std::string_view iscomposing_ns = "urn:ietf:params:xml:ns:im-iscomposing";
constexpr std::string_view xhtml_ns = "http://www.w3.org/1999/xhtml";

// ---------------------------------------------------------------------------
// Small text helpers

std::string ascii_lowercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}

bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
    if (is_digit(c)) {
        return c - '0';
    }
    return ascii_lower(c) - 'a' + 10;
}

bool is_lws(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
    constexpr std::string_view ws = " \t\r\n\f\v";
    const auto first = text.find_first_not_of(ws);
    if (first == npos) {
        return {};
    }
    const auto last = text.find_last_not_of(ws);
    return text.substr(first, last - first + 1);
}

// True when the text holds a byte below 0x20 other than TAB, or DEL.
bool has_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && c != '\t') || c == 0x7F;
    });
}

bool is_control_code_point(char32_t c) {
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

// Characters that end a line or separate words in a header: they become a space.
bool is_break_or_tab(char32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

std::string xml_escaped(std::string_view utf8) {
    std::string out;
    append_xml_escaped(out, utf8);
    return out;
}

// Parses 1..10 decimal digits into an unsigned; empty on anything else or overflow.
std::optional<unsigned> parse_unsigned(std::string_view text) {
    if (text.empty() || text.size() > 10) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    for (const char c : text) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > UINT_MAX) {
        return std::nullopt;
    }
    return static_cast<unsigned>(value);
}

// RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
bool is_rfc3339_date_time(std::string_view text) {
    const auto digits = [&](std::size_t at, std::size_t count) {
        if (at + count > text.size()) {
            return false;
        }
        return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(at),
                           text.begin() + static_cast<std::ptrdiff_t>(at + count), is_digit);
    };
    const auto char_at = [&](std::size_t at, std::string_view allowed) {
        return at < text.size() && allowed.find(text[at]) != npos;
    };
    if (!(digits(0, 4) && char_at(4, "-") && digits(5, 2) && char_at(7, "-") && digits(8, 2) &&
          char_at(10, "Tt") && digits(11, 2) && char_at(13, ":") && digits(14, 2) &&
          char_at(16, ":") && digits(17, 2))) {
        return false;
    }
    std::size_t at = 19;
    if (char_at(at, ".")) {
        ++at;
        const std::size_t start = at;
        while (at < text.size() && is_digit(text[at])) {
            ++at;
        }
        if (at == start) {
            return false;
        }
    }
    if (char_at(at, "Zz")) {
        return at + 1 == text.size();
    }
    return char_at(at, "+-") && digits(at + 1, 2) && char_at(at + 3, ":") && digits(at + 4, 2) &&
           at + 6 == text.size();
}

// 64-bit FNV-1a: a short, stable digest for shortened Call-IDs.
std::uint64_t fnv1a(std::string_view text) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

// ---------------------------------------------------------------------------
// XML: a small value tree built with expat. Used for isComposing documents
// and to check the XHTML-IM we write. Refuses DOCTYPE and entity
// declarations, so no entity expansion can happen, and bounds depth and size.

struct XmlElement {
    std::string ns;   ///< namespace URI; empty when none
    std::string name; ///< local name
    std::vector<std::pair<std::string, std::string>> attributes;
    std::string text; ///< character data directly inside this element
    std::vector<XmlElement> children;
};

class XmlTreeBuilder final : public XmlReader {
public:
    XmlTreeBuilder(std::size_t max_depth, std::size_t max_elements)
        : XmlReader(XmlReaderOptions{
              .max_depth = max_depth, .encoding = nullptr, .syntax_error_prefix = ""}),
          max_elements_(max_elements) {}
    XmlTreeBuilder(const XmlTreeBuilder&) = delete;
    XmlTreeBuilder& operator=(const XmlTreeBuilder&) = delete;
    XmlTreeBuilder(XmlTreeBuilder&&) = delete;
    XmlTreeBuilder& operator=(XmlTreeBuilder&&) = delete;
    ~XmlTreeBuilder() override = default;

    // The document's root element, or empty with error() saying why.
    std::optional<XmlElement> parse(std::string_view text) {
        if (!parse_document(text)) {
            return std::nullopt;
        }
        return std::move(root_);
    }

    using XmlReader::error;

private:
    void start_element(XmlName name, const XML_Char** attributes) override {
        if (++elements_ > max_elements_) {
            fail("too many elements");
            return;
        }
        XmlElement element;
        element.ns = std::string(name.ns);
        element.name = std::string(name.local);
        for (std::size_t i = 0; attributes[i] != nullptr && attributes[i + 1] != nullptr; i += 2) {
            element.attributes.emplace_back(attributes[i], attributes[i + 1]);
        }
        if (stack_.empty()) {
            root_ = std::move(element);
            stack_.push_back(&*root_);
        } else {
            // Only the innermost open element gains children, so the pointers
            // to its ancestors on the stack stay valid.
            auto& children = stack_.back()->children;
            children.push_back(std::move(element));
            stack_.push_back(&children.back());
        }
    }

    void end_element() override {
        if (!stack_.empty()) {
            stack_.pop_back();
        }
    }

    void characters(std::string_view text) override {
        if (!stack_.empty()) {
            stack_.back()->text.append(text);
        }
    }

    std::size_t max_elements_;
    std::size_t elements_ = 0;
    std::optional<XmlElement> root_;
    std::vector<XmlElement*> stack_;
};

// ---------------------------------------------------------------------------
// Charsets

// windows-1252 bytes 0x80..0x9F; 0 marks the five undefined bytes.
constexpr std::array<char16_t, 32> cp1252_high = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

enum class Charset { utf8, ascii, latin1, cp1252, unsupported };

Charset charset_named(std::string_view name) {
    const std::string lower = ascii_lowercase(trim(name));
    if (lower.empty() || lower == "utf-8" || lower == "utf8") {
        return Charset::utf8;
    }
    if (lower == "us-ascii" || lower == "ascii" || lower == "ansi_x3.4-1968" ||
        lower == "iso646-us") {
        return Charset::ascii;
    }
    if (lower == "iso-8859-1" || lower == "iso8859-1" || lower == "iso_8859-1" ||
        lower == "latin1" || lower == "latin-1" || lower == "l1" || lower == "iso-ir-100" ||
        lower == "cp819" || lower == "ibm819") {
        return Charset::latin1;
    }
    if (lower == "windows-1252" || lower == "cp1252") {
        return Charset::cp1252;
    }
    return Charset::unsupported;
}

// ---------------------------------------------------------------------------
// Language tags

bool is_subtag(std::string_view subtag, bool first) {
    if (subtag.empty() || subtag.size() > 8) {
        return false;
    }
    return std::all_of(subtag.begin(), subtag.end(), first ? is_alpha : is_alnum);
}

// ---------------------------------------------------------------------------
// Media types (RFC 3261 §25.1 token, quoted-string)

bool is_token_char(char c) {
    return is_alnum(c) || std::string_view("-.!%*_+`'~").find(c) != npos;
}

std::size_t skip_lws(std::string_view text, std::size_t pos) {
    while (pos < text.size() && is_lws(text[pos])) {
        ++pos;
    }
    return pos;
}

std::size_t token_end(std::string_view text, std::size_t pos) {
    while (pos < text.size() && is_token_char(text[pos])) {
        ++pos;
    }
    return pos;
}

// ---------------------------------------------------------------------------
// CPIM (RFC 3862)

// NAMECHAR of RFC 3862 §3.1, plus "." which joins a namespace prefix.
bool is_cpim_name_char(char c) {
    return is_alnum(c) || std::string_view("!#$%&'*+-^_`|~.").find(c) != npos;
}

// The header names RFC 3862 §4 defines; only these can be "understood".
bool is_known_cpim_header(std::string_view name) {
    for (const std::string_view known :
         {"From", "To", "cc", "DateTime", "Subject", "NS", "Require"}) {
        if (iequals(name, known)) {
            return true;
        }
    }
    return false;
}

// Undoes the escapes of RFC 3862 §3.2: \uXXXX \b \t \n \r \" \' \\. An
// unknown escape keeps its backslash.
std::string cpim_unescape(std::string_view value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c != '\\' || i + 1 >= value.size()) {
            out += c;
            continue;
        }
        const char next = value[i + 1];
        switch (next) {
        case 'b':
            out += '\b';
            break;
        case 't':
            out += '\t';
            break;
        case 'n':
            out += '\n';
            break;
        case 'r':
            out += '\r';
            break;
        case '"':
        case '\'':
        case '\\':
            out += next;
            break;
        case 'u':
            if (i + 5 < value.size() && is_hex(value[i + 2]) && is_hex(value[i + 3]) &&
                is_hex(value[i + 4]) && is_hex(value[i + 5])) {
                const char32_t cp = static_cast<char32_t>(
                    (hex_value(value[i + 2]) << 12) | (hex_value(value[i + 3]) << 8) |
                    (hex_value(value[i + 4]) << 4) | hex_value(value[i + 5]));
                append_utf8(out, cp);
                i += 4;
                break;
            }
            out += c;
            continue;
        default:
            out += c;
            continue;
        }
        ++i;
    }
    return out;
}

ParseError parse_error(const std::string& reason) {
    return ParseError{safe_reason(reason)};
}

// Reads one line ending in LF (a CR before it is dropped); false at the end of input.
bool next_line(std::string_view text, std::size_t& pos, std::string_view& line) {
    if (pos >= text.size()) {
        return false;
    }
    const auto newline = text.find('\n', pos);
    if (newline == npos) {
        return false;
    }
    line = text.substr(pos, newline - pos);
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    pos = newline + 1;
    return true;
}

constexpr std::size_t max_cpim_headers = 128;

// Parses "Name:[;param]* value" into a CpimHeader.
std::optional<CpimHeader> parse_cpim_header_line(std::string_view line, std::string& why) {
    const auto colon = line.find(':');
    if (colon == npos || colon == 0) {
        why = "CPIM header line without a name";
        return std::nullopt;
    }
    CpimHeader header;
    header.name = std::string(line.substr(0, colon));
    if (!std::all_of(header.name.begin(), header.name.end(), is_cpim_name_char)) {
        why = "bad CPIM header name";
        return std::nullopt;
    }
    std::size_t pos = colon + 1;
    while (pos < line.size() && line[pos] == ';') {
        const auto end = line.find_first_of("; ", pos + 1);
        const auto param = line.substr(pos + 1, end == npos ? npos : end - pos - 1);
        const auto eq = param.find('=');
        if (eq != npos && iequals(param.substr(0, eq), "lang")) {
            header.lang = std::string(param.substr(eq + 1));
        }
        pos = end == npos ? line.size() : end;
    }
    header.value = cpim_unescape(trim(line.substr(pos)));
    return header;
}

// ---------------------------------------------------------------------------
// HTML tokenizer: tolerant, linear, no recursion.

struct HtmlToken {
    enum class Kind { text, start, end };
    Kind kind = Kind::text;
    std::string name; ///< lowercase tag name (start / end)
    std::string text; ///< decoded character data (text)
    /// Lowercase names and decoded values, first occurrence of each name only.
    std::vector<std::pair<std::string, std::string>> attributes;
    bool self_closing = false;

    // The value of the named attribute; empty when absent.
    std::string attribute(std::string_view wanted) const {
        for (const auto& [key, value] : attributes) {
            if (key == wanted) {
                return value;
            }
        }
        return {};
    }
};

struct NamedEntity {
    std::string_view name;
    char32_t code_point;
};

// The HTML 4 entities outside Latin-1 that IM text plausibly uses.
constexpr NamedEntity named_entities[] = {
    {"quot", 34},     {"amp", 38},      {"apos", 39},     {"lt", 60},       {"gt", 62},
    {"OElig", 338},   {"oelig", 339},   {"Scaron", 352},  {"scaron", 353},  {"Yuml", 376},
    {"fnof", 402},    {"circ", 710},    {"tilde", 732},   {"ensp", 8194},   {"emsp", 8195},
    {"thinsp", 8201}, {"zwnj", 8204},   {"zwj", 8205},    {"lrm", 8206},    {"rlm", 8207},
    {"ndash", 8211},  {"mdash", 8212},  {"lsquo", 8216},  {"rsquo", 8217},  {"sbquo", 8218},
    {"ldquo", 8220},  {"rdquo", 8221},  {"bdquo", 8222},  {"dagger", 8224}, {"Dagger", 8225},
    {"bull", 8226},   {"hellip", 8230}, {"permil", 8240}, {"prime", 8242},  {"Prime", 8243},
    {"lsaquo", 8249}, {"rsaquo", 8250}, {"euro", 8364},   {"trade", 8482},  {"larr", 8592},
    {"uarr", 8593},   {"rarr", 8594},   {"darr", 8595},   {"harr", 8596},   {"hearts", 9829},
};

// Latin-1 entities U+00A0..U+00FF in code point order (HTML 4.01 §24.2).
constexpr std::array<std::string_view, 96> latin1_entities = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
    "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
    "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
    "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
    "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
    "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
    "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

std::optional<char32_t> lookup_entity(std::string_view name) {
    for (const auto& entity : named_entities) {
        if (entity.name == name) {
            return entity.code_point;
        }
    }
    for (std::size_t i = 0; i < latin1_entities.size(); ++i) {
        if (latin1_entities[i] == name) {
            return static_cast<char32_t>(0xA0 + i);
        }
    }
    return std::nullopt;
}

// Decodes character references; an unknown or malformed one stays as written.
std::string decode_entities(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto amp = text.find('&', i);
        out.append(text.substr(i, amp == npos ? npos : amp - i));
        if (amp == npos) {
            break;
        }
        i = amp + 1;
        if (i < text.size() && text[i] == '#') {
            std::size_t j = i + 1;
            const bool hex = j < text.size() && (text[j] == 'x' || text[j] == 'X');
            if (hex) {
                ++j;
            }
            const std::size_t digits_start = j;
            std::uint32_t value = 0;
            while (j < text.size() && (hex ? is_hex(text[j]) : is_digit(text[j]))) {
                if (value <= 0x10FFFF) {
                    value = value * (hex ? 16 : 10) +
                            static_cast<std::uint32_t>(hex ? hex_value(text[j]) : text[j] - '0');
                }
                ++j;
            }
            if (j == digits_start) {
                out += '&';
                continue;
            }
            if (j < text.size() && text[j] == ';') {
                ++j;
            }
            const bool valid =
                value != 0 && value <= 0x10FFFF && !(value >= 0xD800 && value <= 0xDFFF);
            append_utf8(out, valid ? static_cast<char32_t>(value) : 0xFFFD);
            i = j;
            continue;
        }
        std::size_t j = i;
        while (j < text.size() && j - i < 32 && is_alnum(text[j])) {
            ++j;
        }
        if (j > i && j < text.size() && text[j] == ';') {
            if (const auto cp = lookup_entity(text.substr(i, j - i))) {
                append_utf8(out, *cp);
                i = j + 1;
                continue;
            }
        }
        out += '&';
    }
    return out;
}

bool is_html_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

constexpr std::size_t max_html_attributes = 32;

class HtmlTokenizer {
public:
    explicit HtmlTokenizer(std::string_view html) : in_(html) {}

    // The next token; false at the end of input.
    bool next(HtmlToken& token) {
        while (pos_ < in_.size()) {
            if (!raw_text_end_.empty()) {
                skip_raw_text();
                continue;
            }
            if (in_[pos_] != '<') {
                return read_text(token);
            }
            const std::string_view rest = in_.substr(pos_);
            if (rest.substr(0, 4) == "<!--") {
                skip_past(rest.find("-->", 4), 3);
                continue;
            }
            if (rest.size() >= 2 && (rest[1] == '!' || rest[1] == '?')) {
                skip_past(rest.find('>'), 1);
                continue;
            }
            if (rest.size() >= 3 && rest[1] == '/' && is_alpha(rest[2])) {
                return read_end_tag(token);
            }
            if (rest.size() >= 2 && is_alpha(rest[1])) {
                if (read_start_tag(token)) {
                    return true;
                }
                continue;
            }
            if (rest.size() == 1 || (rest.size() == 2 && rest[1] == '/')) {
                truncated_ = true;
                pos_ = in_.size();
                return false;
            }
            // A "<" that starts no tag is text, as in HTML.
            token = HtmlToken{};
            token.text = "<";
            ++pos_;
            return true;
        }
        return false;
    }

    // True when the input ended inside a tag, comment or raw-text element.
    bool truncated() const { return truncated_; }

private:
    void skip_past(std::size_t found, std::size_t length) {
        if (found == npos) {
            truncated_ = true;
            pos_ = in_.size();
        } else {
            pos_ += found + length;
        }
    }

    // Skips script / style content up to its end tag (case-insensitive).
    void skip_raw_text() {
        const std::string closing = "</" + raw_text_end_;
        std::size_t at = pos_;
        while (true) {
            at = in_.find("</", at);
            if (at == npos) {
                truncated_ = true;
                pos_ = in_.size();
                break;
            }
            if (istarts_with(in_.substr(at), closing)) {
                pos_ = at;
                break;
            }
            at += 2;
        }
        raw_text_end_.clear();
    }

    bool read_text(HtmlToken& token) {
        const auto end = in_.find('<', pos_);
        token = HtmlToken{};
        token.text = decode_entities(in_.substr(pos_, end == npos ? npos : end - pos_));
        pos_ = end == npos ? in_.size() : end;
        return true;
    }

    std::string read_name() {
        std::string name;
        while (pos_ < in_.size() && (is_alnum(in_[pos_]) || in_[pos_] == '-' || in_[pos_] == ':')) {
            if (name.size() < 32) {
                name += ascii_lower(in_[pos_]);
            }
            ++pos_;
        }
        return name;
    }

    bool read_end_tag(HtmlToken& token) {
        pos_ += 2;
        token = HtmlToken{};
        token.kind = HtmlToken::Kind::end;
        token.name = read_name();
        skip_past(in_.substr(pos_).find('>'), 1);
        return !truncated_;
    }

    bool read_start_tag(HtmlToken& token) {
        ++pos_;
        token = HtmlToken{};
        token.kind = HtmlToken::Kind::start;
        token.name = read_name();
        while (true) {
            while (pos_ < in_.size() && is_html_space(in_[pos_])) {
                ++pos_;
            }
            if (pos_ >= in_.size()) {
                truncated_ = true;
                return false;
            }
            if (in_[pos_] == '>') {
                ++pos_;
                break;
            }
            if (in_[pos_] == '/') {
                ++pos_;
                if (pos_ < in_.size() && in_[pos_] == '>') {
                    token.self_closing = true;
                    ++pos_;
                    break;
                }
                continue;
            }
            if (!read_attribute(token)) {
                return false;
            }
        }
        if (!token.self_closing && (token.name == "script" || token.name == "style")) {
            raw_text_end_ = token.name;
        }
        return true;
    }

    bool read_attribute(HtmlToken& token) {
        std::string name;
        while (pos_ < in_.size() && !is_html_space(in_[pos_]) && in_[pos_] != '=' &&
               in_[pos_] != '>' && in_[pos_] != '/') {
            if (name.size() < 32) {
                name += ascii_lower(in_[pos_]);
            }
            ++pos_;
        }
        if (name.empty()) {
            // A stray "=" or the like: step over it so the loop advances.
            ++pos_;
            return true;
        }
        while (pos_ < in_.size() && is_html_space(in_[pos_])) {
            ++pos_;
        }
        std::string value;
        if (pos_ < in_.size() && in_[pos_] == '=') {
            ++pos_;
            while (pos_ < in_.size() && is_html_space(in_[pos_])) {
                ++pos_;
            }
            if (pos_ >= in_.size()) {
                truncated_ = true;
                return false;
            }
            if (in_[pos_] == '"' || in_[pos_] == '\'') {
                const char quote = in_[pos_];
                const auto end = in_.find(quote, pos_ + 1);
                if (end == npos) {
                    truncated_ = true;
                    pos_ = in_.size();
                    return false;
                }
                value = decode_entities(in_.substr(pos_ + 1, end - pos_ - 1));
                pos_ = end + 1;
            } else {
                const std::size_t start = pos_;
                while (pos_ < in_.size() && !is_html_space(in_[pos_]) && in_[pos_] != '>') {
                    ++pos_;
                }
                value = decode_entities(in_.substr(start, pos_ - start));
            }
        }
        if (token.attributes.size() < max_html_attributes && token.attribute(name).empty()) {
            token.attributes.emplace_back(std::move(name), std::move(value));
        }
        return true;
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    bool truncated_ = false;
    std::string raw_text_end_;
};

bool is_void_element(std::string_view name) {
    for (const std::string_view v : {"br", "img", "hr", "meta", "link", "input", "area", "base",
                                     "col", "embed", "param", "source", "track", "wbr", "keygen"}) {
        if (name == v) {
            return true;
        }
    }
    return false;
}

// Elements whose content is not part of the message text.
bool is_dropped_element(std::string_view name) {
    for (const std::string_view d :
         {"head", "title", "script", "style", "template", "object", "iframe", "applet", "noembed",
          "noframes", "svg", "math", "audio", "video", "canvas", "select", "datalist"}) {
        if (name == d) {
            return true;
        }
    }
    return false;
}

bool is_heading(std::string_view name) {
    return name.size() == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6';
}

// Elements that start a new line in the plain text.
bool is_block_element(std::string_view name) {
    if (is_heading(name)) {
        return true;
    }
    for (const std::string_view b :
         {"p",      "div",      "ul",      "ol",      "li",     "blockquote", "pre",     "table",
          "tr",     "hr",       "dl",      "dt",      "dd",     "address",    "section", "article",
          "header", "footer",   "nav",     "aside",   "figure", "figcaption", "main",    "center",
          "form",   "fieldset", "details", "summary", "caption"}) {
        if (name == b) {
            return true;
        }
    }
    return false;
}

// The href of a link when its scheme is one the gateway lets through, else empty.
std::string safe_href(std::string_view href) {
    const auto trimmed = trim(href);
    if (trimmed.empty() || trimmed.size() > 2048 || !is_valid_utf8(trimmed)) {
        return {};
    }
    for (const char ch : trimmed) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7F || c == '"' || c == '<' || c == '>' || c == '\\') {
            return {};
        }
    }
    const auto colon = trimmed.find(':');
    if (colon == npos) {
        return {};
    }
    const std::string scheme = ascii_lowercase(trimmed.substr(0, colon));
    for (const std::string_view allowed :
         {"http", "https", "mailto", "xmpp", "sip", "sips", "tel"}) {
        if (scheme == allowed) {
            return std::string(trimmed);
        }
    }
    return {};
}

// A CSS value is kept only when it is short and made of harmless characters.
bool is_safe_css_value(std::string_view value) {
    if (value.empty() || value.size() > 64) {
        return false;
    }
    for (const char c : value) {
        if (!is_alnum(c) && std::string_view(" #%.,-'\"()").find(c) == npos) {
            return false;
        }
    }
    const std::string lower = ascii_lowercase(value);
    return lower.find("url") == npos && lower.find("expression") == npos &&
           lower.find("script") == npos;
}

// XEP-0071 §7's recommended style properties, each with a checked value.
std::string sanitize_style(std::string_view style) {
    static constexpr std::string_view allowed[] = {
        "background-color", "color",       "font-family",  "font-size",  "font-style",
        "font-weight",      "margin-left", "margin-right", "text-align", "text-decoration"};
    std::string out;
    std::size_t start = 0;
    while (start <= style.size()) {
        const auto end = style.find(';', start);
        const auto declaration = style.substr(start, end == npos ? npos : end - start);
        const auto colon = declaration.find(':');
        if (colon != npos) {
            const std::string property = ascii_lowercase(trim(declaration.substr(0, colon)));
            const auto value = trim(declaration.substr(colon + 1));
            const bool known =
                std::find(std::begin(allowed), std::end(allowed), property) != std::end(allowed);
            if (known && is_safe_css_value(value)) {
                if (!out.empty()) {
                    out += "; ";
                }
                out += property;
                out += ": ";
                out += value;
            }
        }
        if (end == npos) {
            break;
        }
        start = end + 1;
    }
    return out;
}

// ---- HTML -> plain text

class PlainTextWriter {
public:
    void text(std::string_view utf8) {
        if (pre_depth > 0) {
            out_.append(utf8);
            pending_space_ = false;
            return;
        }
        std::size_t pos = 0;
        while (pos < utf8.size()) {
            const char c = utf8[pos];
            if (is_html_space(c)) {
                pending_space_ = !out_.empty() && out_.back() != '\n';
                ++pos;
                continue;
            }
            flush_space();
            if (utf8.substr(pos, 2) == "\xC2\xA0") {
                // A no-break space is a real space in plain text.
                out_ += ' ';
                pos += 2;
                continue;
            }
            out_ += c;
            ++pos;
        }
    }

    void line_break() {
        out_ += '\n';
        pending_space_ = false;
    }

    void block_boundary() {
        if (!out_.empty() && out_.back() != '\n') {
            out_ += '\n';
        }
        pending_space_ = false;
    }

    void word_gap() { pending_space_ = !out_.empty() && out_.back() != '\n'; }

    std::size_t size() const { return out_.size(); }
    std::string_view since(std::size_t mark) const {
        return std::string_view(out_).substr(std::min(mark, out_.size()));
    }

    std::string finish() {
        const auto trimmed = trim(out_);
        return xml_safe_text(trimmed);
    }

    int pre_depth = 0;

private:
    void flush_space() {
        if (pending_space_) {
            out_ += ' ';
            pending_space_ = false;
        }
    }

    std::string out_;
    bool pending_space_ = false;
};

// Tracks elements whose content is dropped (head, script, ...).
class DropTracker {
public:
    // True when the token is swallowed because of an enclosing dropped element.
    bool swallow(const HtmlToken& token) {
        if (stack_.empty()) {
            if (token.kind == HtmlToken::Kind::start && !token.self_closing &&
                is_dropped_element(token.name)) {
                stack_.push_back(token.name);
                return true;
            }
            return false;
        }
        if (token.kind == HtmlToken::Kind::start) {
            if (token.name == "body" && stack_.front() == "head") {
                // <body> ends an unclosed <head>, as in HTML.
                stack_.clear();
                return false;
            }
            if (!token.self_closing && token.name == stack_.back() && stack_.size() < 64) {
                stack_.push_back(token.name);
            }
        } else if (token.kind == HtmlToken::Kind::end && token.name == stack_.back()) {
            stack_.pop_back();
        }
        return true;
    }

private:
    std::vector<std::string> stack_;
};

struct ListLevel {
    bool ordered = false;
    unsigned counter = 0;
};

// ---- HTML -> XHTML-IM

constexpr std::size_t max_html_depth = 32;

bool is_inline_output(std::string_view name) {
    return name == "a" || name == "span" || name == "strong" || name == "em" || name == "cite";
}

class XhtmlWriter {
public:
    explicit XhtmlWriter(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    void start(const HtmlToken& token) {
        const std::string& name = token.name;
        if (name == "br" || name == "hr") {
            line_break();
            return;
        }
        if (name == "img") {
            const std::string alt = token.attribute("alt");
            if (!alt.empty()) {
                text(alt);
            }
            return;
        }
        if (is_void_element(name)) {
            return;
        }
        if (is_block_element(name) || name == "li") {
            close_implied_by(name);
        }
        if (token.self_closing) {
            return;
        }
        if (open_.size() >= max_html_depth) {
            failed_ = true;
            return;
        }
        OpenElement element{name, {}};
        std::string attributes;
        const std::string output = map_element(token, attributes);
        if (!output.empty()) {
            element.output = output;
            emit_start(output, attributes);
        } else if (is_block_element(name)) {
            line_break_if_needed();
        } else if (name == "td" || name == "th") {
            pending_space_ = has_content_;
        }
        if (name == "pre") {
            ++pre_depth_;
        }
        open_.push_back(std::move(element));
    }

    void end(const HtmlToken& token) {
        const auto found = std::find_if(open_.rbegin(), open_.rend(), [&](const OpenElement& e) {
            return e.input == token.name;
        });
        if (found == open_.rend()) {
            if (token.name == "br") {
                line_break(); // </br> reads as <br> in HTML
            }
            return; // a stray end tag changes nothing
        }
        const auto keep = static_cast<std::size_t>(open_.rend() - found) - 1;
        while (open_.size() > keep) {
            close_top();
        }
    }

    void text(std::string_view utf8) {
        std::size_t pos = 0;
        while (pos < utf8.size()) {
            const char c = utf8[pos];
            if (pre_depth_ > 0) {
                if (c == '\n') {
                    line_break();
                } else if (c == ' ' || c == '\t') {
                    // Significant whitespace becomes no-break spaces (XEP-0071 rule 9).
                    flush_break();
                    out_ += "\xC2\xA0";
                    has_content_ = true;
                } else if (c != '\r') {
                    flush_break();
                    append_char(utf8, pos);
                    continue;
                }
                ++pos;
                continue;
            }
            if (is_html_space(c)) {
                pending_space_ = has_content_ && !pending_break_;
                ++pos;
                continue;
            }
            flush_break();
            if (pending_space_) {
                out_ += ' ';
                pending_space_ = false;
            }
            append_char(utf8, pos);
        }
    }

    // The XHTML-IM, or empty when it is not worth sending or not safe to.
    std::optional<std::string> finish(bool truncated) {
        while (!open_.empty()) {
            close_top();
        }
        if (failed_ || truncated || !formatted_ || out_.size() > max_bytes_) {
            return std::nullopt;
        }
        std::string result(trim(out_));
        if (!is_well_formed_xhtml_body(result)) {
            return std::nullopt;
        }
        return result;
    }

private:
    struct OpenElement {
        std::string input;  ///< the HTML element name
        std::string output; ///< the XHTML-IM element written for it; empty when unwrapped
    };

    void append_char(std::string_view utf8, std::size_t& pos) {
        const std::size_t start = pos;
        next_code_point(utf8, pos);
        append_xml_escaped(out_, utf8.substr(start, pos - start));
        has_content_ = true;
    }

    // A block may open at the top level or directly in a <blockquote> or
    // <li>, never inside a <p> or an inline element.
    bool block_allowed() const {
        const OpenElement* nearest = nullptr;
        for (const auto& element : open_) {
            const auto& out = element.output;
            if (out == "p" || is_inline_output(out)) {
                return false;
            }
            if (!out.empty()) {
                nearest = &element;
            }
        }
        return nearest == nullptr || nearest->output == "blockquote" || nearest->output == "li";
    }

    bool in_list() const {
        for (auto it = open_.rbegin(); it != open_.rend(); ++it) {
            if (!it->output.empty()) {
                return it->output == "ul" || it->output == "ol";
            }
        }
        return false;
    }

    // HTML's implied end tags: a block closes an open <p>, an <li> closes the
    // previous <li> of its list, when only inline elements lie in between.
    void close_implied_by(std::string_view name) {
        const std::string_view closes = name == "li" ? "li" : "p";
        for (auto it = open_.rbegin(); it != open_.rend(); ++it) {
            if (it->input == closes) {
                const auto keep = static_cast<std::size_t>(open_.rend() - it) - 1;
                while (open_.size() > keep) {
                    close_top();
                }
                return;
            }
            if (!is_inline_output(it->output) && !it->output.empty()) {
                return;
            }
            if (it->output.empty() && (is_block_element(it->input) || it->input == "li")) {
                return;
            }
        }
    }

    std::string style_attribute(std::string_view style) const {
        const std::string clean = sanitize_style(style);
        if (clean.empty()) {
            return {};
        }
        return " style=\"" + xml_escaped(clean) + "\"";
    }

    // The XHTML-IM element for an HTML start tag (with its attributes), or
    // empty when the element is unwrapped.
    std::string map_element(const HtmlToken& token, std::string& attributes) {
        const std::string& name = token.name;
        const std::string style = token.attribute("style");
        if (name == "a") {
            const std::string href = safe_href(token.attribute("href"));
            if (href.empty()) {
                return {};
            }
            attributes = " href=\"" + xml_escaped(href) + "\"" + style_attribute(style);
            return "a";
        }
        if (name == "b" || name == "strong") {
            return "strong";
        }
        if (name == "i" || name == "em") {
            return "em";
        }
        if (name == "cite") {
            return "cite";
        }
        if (name == "span" || name == "font" || name == "u" || name == "ins" || name == "s" ||
            name == "strike" || name == "del" || name == "code" || name == "tt" || name == "kbd" ||
            name == "samp") {
            std::string css = style;
            if (name == "u" || name == "ins") {
                css += ";text-decoration: underline";
            } else if (name == "s" || name == "strike" || name == "del") {
                css += ";text-decoration: line-through";
            } else if (name == "code" || name == "tt" || name == "kbd" || name == "samp") {
                css += ";font-family: monospace";
            } else if (name == "font") {
                css += ";color: " + token.attribute("color");
                css += ";font-family: " + token.attribute("face");
            }
            attributes = style_attribute(css);
            return attributes.empty() ? std::string() : "span";
        }
        if (name == "li") {
            if (!in_list()) {
                return {};
            }
            attributes = style_attribute(style);
            return "li";
        }
        if (!block_allowed()) {
            return {};
        }
        if (name == "ul" || name == "ol" || name == "blockquote") {
            attributes = style_attribute(style);
            return name;
        }
        if (name == "p" || name == "div" || name == "pre" || name == "center" || is_heading(name)) {
            std::string css = style;
            if (is_heading(name)) {
                css += ";font-weight: bold";
            } else if (name == "center") {
                css += ";text-align: center";
            } else if (name == "pre") {
                css += ";font-family: monospace";
            }
            attributes = style_attribute(css);
            return "p";
        }
        return {};
    }

    void emit_start(std::string_view name, std::string_view attributes) {
        if (name != "p" || !attributes.empty()) {
            formatted_ = true;
        }
        const bool is_inline = is_inline_output(name);
        if (is_inline) {
            flush_break();
            if (pending_space_) {
                out_ += ' '; // the space before an inline element stays outside it
            }
        } else {
            pending_break_ = false; // the block starts a line of its own
        }
        pending_space_ = false;
        out_ += '<';
        out_ += name;
        out_ += attributes;
        out_ += '>';
        if (!is_inline) {
            has_content_ = false;
        }
    }

    void close_top() {
        const OpenElement element = std::move(open_.back());
        open_.pop_back();
        if (element.input == "pre" && pre_depth_ > 0) {
            --pre_depth_;
        }
        if (!element.output.empty()) {
            out_ += "</" + element.output + ">";
            // After an inline element the line goes on (a pending space moves
            // after its end tag); after a block a new line starts.
            if (!is_inline_output(element.output)) {
                pending_space_ = false;
                pending_break_ = false;
                has_content_ = false;
            }
        } else if (is_block_element(element.input)) {
            line_break_if_needed();
        }
    }

    void line_break() {
        flush_break();
        out_ += "<br/>";
        pending_space_ = false;
        has_content_ = false;
    }

    // An unwrapped block ends its line, but only if something follows: the
    // break is written when the next content comes.
    void line_break_if_needed() {
        if (has_content_) {
            pending_break_ = true;
        }
    }

    void flush_break() {
        if (pending_break_) {
            pending_break_ = false;
            out_ += "<br/>";
            pending_space_ = false;
            has_content_ = false;
        }
    }

    std::size_t max_bytes_;
    std::string out_;
    std::vector<OpenElement> open_;
    int pre_depth_ = 0;
    bool pending_space_ = false;
    bool pending_break_ = false; ///< a line break owed before the next content
    bool has_content_ = false;   ///< text since the last line break or block start
    bool formatted_ = false;     ///< some markup beyond plain paragraphs and breaks
    bool failed_ = false;
};

// ---------------------------------------------------------------------------
// SIP -> XMPP content conversion

SipStatus sip_error(int code, std::string_view reason) {
    SipStatus status;
    status.code = code;
    status.reason = safe_reason(reason);
    if (status.reason.empty()) {
        status.reason = std::string(default_reason_phrase(code));
    }
    return status;
}

SipStatus unsupported(std::string_view what) {
    SipStatus status = sip_error(415, what);
    status.accept = std::string(accepted_content_types);
    return status;
}

// Decodes a text body in the charset its media type names; a status when it cannot.
Result<std::string, SipStatus> decode_text_body(const MediaType& media, std::string_view body) {
    const std::string charset = media.param("charset");
    bool supported = true;
    auto decoded = decode_charset(body, charset, &supported);
    if (!supported) {
        return unsupported(fmt::format("Unsupported charset {}", charset));
    }
    if (!decoded) {
        return sip_error(400,
                         fmt::format("Body is not valid {}", charset.empty() ? "UTF-8" : charset));
    }
    return std::move(*decoded);
}

std::optional<SipStatus> convert_content(const MediaType& media, std::string_view body,
                                         XmppMessage& out, const Limits& limits, bool nested) {
    if (media.is("text/plain")) {
        auto text = decode_text_body(media, body);
        if (!text) {
            return text.error();
        }
        out.body = xml_safe_text(*text);
    } else if (media.is("text/html")) {
        auto html = decode_text_body(media, body);
        if (!html) {
            return html.error();
        }
        out.body = html_to_text(*html);
        if (auto xhtml = html_to_xhtml_im(*html, limits.max_body_bytes)) {
            out.xhtml = std::move(*xhtml);
        }
    } else if (media.is("message/cpim") && !nested) {
        auto cpim = parse_cpim(body);
        if (!cpim) {
            return sip_error(400, "Malformed message/cpim: " + cpim.error().reason);
        }
        const auto& encoding = cpim->content_transfer_encoding;
        if (!encoding.empty() && encoding != "7bit" && encoding != "8bit" && encoding != "binary") {
            return unsupported("Unsupported Content-Transfer-Encoding " + encoding);
        }
        if (out.subject.empty()) {
            out.subject = header_safe_text(cpim->subject, std::string::npos);
            if (out.subject.size() > limits.max_subject_bytes) {
                return sip_error(413, "Subject too long");
            }
        }
        const std::string inner_type =
            cpim->content_type.empty() ? std::string("text/plain") : cpim->content_type;
        const auto inner = parse_media_type(inner_type);
        if (!inner) {
            return sip_error(400, "Malformed Content-Type inside message/cpim");
        }
        return convert_content(*inner, cpim->content, out, limits, true);
    } else if (media.is(iscomposing_type)) {
        auto composing = parse_iscomposing(body);
        if (!composing) {
            return sip_error(400, "Malformed isComposing: " + composing.error().reason);
        }
        out.chat_state = chat_state_for(composing->state);
        out.type = MessageType::chat;
        out.subject.clear();
        return std::nullopt;
    } else {
        return unsupported(fmt::format("Unsupported Media Type {}/{}", media.type, media.subtype));
    }
    if (out.body.empty()) {
        return sip_error(400, "MESSAGE has no text to deliver");
    }
    if (out.body.size() > limits.max_body_bytes) {
        return sip_error(413, fmt::format("Message body exceeds the gateway limit of {} bytes",
                                          limits.max_body_bytes));
    }
    return std::nullopt;
}

} // namespace

// ---------------------------------------------------------------------------
// Enumerations

std::string_view to_string(MessageType type) {
    switch (type) {
    case MessageType::normal:
        return "normal";
    case MessageType::chat:
        return "chat";
    case MessageType::headline:
        return "headline";
    case MessageType::groupchat:
        return "groupchat";
    case MessageType::error:
        return "error";
    }
    return "normal";
}

std::optional<MessageType> parse_message_type(std::string_view text) {
    if (text.empty() || text == "normal") {
        return MessageType::normal;
    }
    for (const auto type :
         {MessageType::chat, MessageType::headline, MessageType::groupchat, MessageType::error}) {
        if (text == to_string(type)) {
            return type;
        }
    }
    return std::nullopt;
}

std::string_view to_string(ChatState state) {
    switch (state) {
    case ChatState::active:
        return "active";
    case ChatState::composing:
        return "composing";
    case ChatState::paused:
        return "paused";
    case ChatState::inactive:
        return "inactive";
    case ChatState::gone:
        return "gone";
    }
    return "active";
}

std::optional<ChatState> parse_chat_state(std::string_view name) {
    for (const auto state : {ChatState::active, ChatState::composing, ChatState::paused,
                             ChatState::inactive, ChatState::gone}) {
        if (name == to_string(state)) {
            return state;
        }
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Text

std::optional<char32_t> next_code_point(std::string_view text, std::size_t& pos) {
    if (pos >= text.size()) {
        return std::nullopt;
    }
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(pos);
    if (lead < 0x80) {
        ++pos;
        return lead;
    }
    std::size_t length = 0;
    char32_t cp = 0;
    char32_t minimum = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        cp = lead & 0x1F;
        minimum = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        cp = lead & 0x0F;
        minimum = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        cp = lead & 0x07;
        minimum = 0x10000;
    } else {
        ++pos;
        return std::nullopt;
    }
    if (text.size() - pos < length) {
        ++pos;
        return std::nullopt;
    }
    for (std::size_t i = 1; i < length; ++i) {
        const unsigned char c = byte(pos + i);
        if ((c & 0xC0) != 0x80) {
            ++pos;
            return std::nullopt;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        ++pos;
        return std::nullopt;
    }
    pos += length;
    return cp;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        cp = 0xFFFD;
    }
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool is_valid_utf8(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        if (static_cast<unsigned char>(text[pos]) < 0x80) {
            ++pos; // ASCII: the common case, decided here
            continue;
        }
        if (!next_code_point(text, pos)) {
            return false;
        }
    }
    return true;
}

std::string header_safe_text(std::string_view text, std::size_t max_bytes) {
    std::string out;
    bool pending_space = false;
    std::size_t pos = 0;
    std::string encoded;
    while (pos < text.size()) {
        const char32_t c = next_code_point(text, pos).value_or(0xFFFD);
        if (is_break_or_tab(c)) {
            pending_space = !out.empty();
            continue;
        }
        if (is_control_code_point(c)) {
            continue;
        }
        encoded.clear();
        append_utf8(encoded, c);
        const std::size_t needed = encoded.size() + (pending_space ? 1 : 0);
        if (out.size() + needed > max_bytes) {
            break;
        }
        if (pending_space) {
            out += ' ';
            pending_space = false;
        }
        out += encoded;
    }
    return out;
}

std::string xml_safe_text(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size());
    // Printable ASCII, TAB and LF go over as they are (append_plain_run).
    const auto plain = [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return (u >= 0x20 && u < 0x80) || ch == '\n' || ch == '\t';
    };
    std::size_t pos = 0;
    while (append_plain_run(out, utf8, pos, plain)) {
        const char32_t c = next_code_point(utf8, pos).value_or(0xFFFD);
        if (c == '\r') {
            out += '\n';
            if (pos < utf8.size() && utf8[pos] == '\n') {
                ++pos;
            }
            continue;
        }
        if (is_xml_char(c)) {
            append_utf8(out, c);
        }
    }
    return out;
}

std::optional<std::string> decode_charset(std::string_view bytes, std::string_view charset,
                                          bool* supported) {
    const Charset which = charset_named(charset);
    if (supported != nullptr) {
        *supported = which != Charset::unsupported;
    }
    std::string out;
    switch (which) {
    case Charset::utf8:
        if (!is_valid_utf8(bytes)) {
            return std::nullopt;
        }
        return std::string(bytes);
    case Charset::ascii:
        if (std::any_of(bytes.begin(), bytes.end(),
                        [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
            return std::nullopt;
        }
        return std::string(bytes);
    case Charset::latin1:
    case Charset::cp1252:
        out.reserve(bytes.size() * 2);
        for (const char ch : bytes) {
            const auto c = static_cast<unsigned char>(ch);
            char32_t cp = c;
            if (which == Charset::cp1252 && c >= 0x80 && c <= 0x9F) {
                cp = cp1252_high[c - 0x80];
                if (cp == 0) {
                    return std::nullopt;
                }
            }
            append_utf8(out, cp);
        }
        return out;
    case Charset::unsupported:
        break;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Header values

std::string call_id_from_thread(std::string_view thread) {
    static constexpr std::string_view literal_extra = "-.!*_+~'`()";
    static constexpr std::size_t max_bytes = 128;
    static constexpr std::size_t kept_prefix = 100;
    std::string encoded;
    for (const char ch : thread) {
        if (is_alnum(ch) || literal_extra.find(ch) != npos) {
            encoded += ch;
        } else {
            encoded += fmt::format("%{:02X}", static_cast<unsigned char>(ch));
        }
    }
    if (encoded.size() <= max_bytes) {
        return encoded;
    }
    std::size_t cut = kept_prefix;
    // Never split a %HH escape.
    while (cut > 0 && (encoded[cut - 1] == '%' || (cut >= 2 && encoded[cut - 2] == '%'))) {
        --cut;
    }
    return fmt::format("{}-{:016x}", encoded.substr(0, cut), fnv1a(thread));
}

std::string thread_from_call_id(std::string_view call_id) {
    const auto trimmed = trim(call_id);
    if (trimmed.empty() || trimmed.size() > 256 || !is_valid_utf8(trimmed) ||
        has_control(trimmed) || trimmed.find('\t') != npos) {
        return {};
    }
    return std::string(trimmed);
}

bool is_language_tag(std::string_view tag) {
    if (tag.empty() || tag.size() > 64) {
        return false;
    }
    std::size_t start = 0;
    bool first = true;
    while (true) {
        const auto dash = tag.find('-', start);
        if (!is_subtag(tag.substr(start, dash == npos ? npos : dash - start), first)) {
            return false;
        }
        if (dash == npos) {
            return true;
        }
        first = false;
        start = dash + 1;
    }
}

std::string content_language_from_lang(std::string_view xml_lang) {
    const auto tag = trim(xml_lang);
    return is_language_tag(tag) ? std::string(tag) : std::string();
}

std::string lang_from_content_language(std::string_view header) {
    std::size_t start = 0;
    while (start <= header.size()) {
        const auto comma = header.find(',', start);
        const auto tag = trim(header.substr(start, comma == npos ? npos : comma - start));
        if (is_language_tag(tag)) {
            return std::string(tag);
        }
        if (comma == npos) {
            break;
        }
        start = comma + 1;
    }
    return {};
}

// ---------------------------------------------------------------------------
// Content-Type

std::string MediaType::param(std::string_view name) const {
    for (const auto& [key, value] : params) {
        if (iequals(key, name)) {
            return value;
        }
    }
    return {};
}

bool MediaType::is(std::string_view type_slash_subtype) const {
    const auto slash = type_slash_subtype.find('/');
    return slash != npos && type == type_slash_subtype.substr(0, slash) &&
           subtype == type_slash_subtype.substr(slash + 1);
}

std::optional<MediaType> parse_media_type(std::string_view header) {
    const auto text = trim(header);
    MediaType media;
    std::size_t pos = 0;
    auto end = token_end(text, pos);
    if (end == pos) {
        return std::nullopt;
    }
    media.type = ascii_lowercase(text.substr(pos, end - pos));
    pos = skip_lws(text, end);
    if (pos >= text.size() || text[pos] != '/') {
        return std::nullopt;
    }
    pos = skip_lws(text, pos + 1);
    end = token_end(text, pos);
    if (end == pos) {
        return std::nullopt;
    }
    media.subtype = ascii_lowercase(text.substr(pos, end - pos));
    pos = skip_lws(text, end);
    while (pos < text.size()) {
        if (text[pos] != ';') {
            return std::nullopt;
        }
        pos = skip_lws(text, pos + 1);
        if (pos >= text.size()) {
            break; // a trailing ";" is tolerated
        }
        end = token_end(text, pos);
        if (end == pos) {
            return std::nullopt;
        }
        std::string name = ascii_lowercase(text.substr(pos, end - pos));
        pos = skip_lws(text, end);
        if (pos >= text.size() || text[pos] != '=') {
            return std::nullopt;
        }
        pos = skip_lws(text, pos + 1);
        std::string value;
        if (pos < text.size() && text[pos] == '"') {
            ++pos;
            bool closed = false;
            while (pos < text.size()) {
                const char c = text[pos++];
                if (c == '"') {
                    closed = true;
                    break;
                }
                if (c == '\\' && pos < text.size()) {
                    value += text[pos++];
                } else {
                    value += c;
                }
            }
            if (!closed || has_control(value) || !is_valid_utf8(value)) {
                return std::nullopt;
            }
        } else {
            end = token_end(text, pos);
            if (end == pos) {
                return std::nullopt;
            }
            value = std::string(text.substr(pos, end - pos));
            pos = end;
        }
        media.params.emplace_back(std::move(name), std::move(value));
        pos = skip_lws(text, pos);
    }
    return media;
}

// ---------------------------------------------------------------------------
// CPIM

Result<CpimMessage, ParseError> parse_cpim(std::string_view body) {
    CpimMessage message;
    std::size_t pos = 0;
    std::string_view line;
    bool subject_without_lang = false;
    while (true) {
        if (!next_line(body, pos, line)) {
            return parse_error("CPIM message headers do not end in a blank line");
        }
        if (line.empty()) {
            break;
        }
        if (message.headers.size() >= max_cpim_headers) {
            return parse_error("too many CPIM headers");
        }
        if (!is_valid_utf8(line) || has_control(line)) {
            return parse_error("CPIM header is not clean UTF-8");
        }
        std::string why;
        auto header = parse_cpim_header_line(line, why);
        if (!header) {
            return parse_error(why);
        }
        const std::string& name = header->name;
        if (iequals(name, "From") && message.from.empty()) {
            message.from = header->value;
        } else if (iequals(name, "To") && message.to.empty()) {
            message.to = header->value;
        } else if (iequals(name, "DateTime") && message.datetime.empty()) {
            message.datetime = header->value;
        } else if (iequals(name, "Subject") && !subject_without_lang) {
            if (header->lang.empty() || message.subject.empty()) {
                message.subject = header->value;
                message.subject_lang = header->lang;
                subject_without_lang = header->lang.empty();
            }
        } else if (iequals(name, "Require")) {
            std::string_view list = header->value;
            std::size_t start = 0;
            while (start <= list.size()) {
                const auto comma = list.find(',', start);
                const auto required =
                    trim(list.substr(start, comma == npos ? npos : comma - start));
                if (!required.empty() && !is_known_cpim_header(required)) {
                    return parse_error(fmt::format("CPIM Require names a header the gateway does "
                                                   "not understand: {}",
                                                   required));
                }
                if (comma == npos) {
                    break;
                }
                start = comma + 1;
            }
        }
        message.headers.push_back(std::move(*header));
    }
    while (true) {
        if (!next_line(body, pos, line)) {
            return parse_error("CPIM content headers do not end in a blank line");
        }
        if (line.empty()) {
            break;
        }
        if (message.content_headers.size() >= max_cpim_headers) {
            return parse_error("too many MIME headers in CPIM");
        }
        if (!is_valid_utf8(line) || has_control(line)) {
            return parse_error("MIME header in CPIM is not clean UTF-8");
        }
        if (is_lws(line.front())) {
            if (message.content_headers.empty()) {
                return parse_error("MIME header continuation without a header");
            }
            auto& value = message.content_headers.back().second;
            value += ' ';
            value += trim(line);
            continue;
        }
        const auto colon = line.find(':');
        const auto name = trim(line.substr(0, colon == npos ? 0 : colon));
        if (colon == npos || name.empty() ||
            !std::all_of(name.begin(), name.end(), is_token_char)) {
            return parse_error("malformed MIME header in CPIM");
        }
        message.content_headers.emplace_back(std::string(name),
                                             std::string(trim(line.substr(colon + 1))));
    }
    for (const auto& [name, value] : message.content_headers) {
        if (iequals(name, "Content-Type") && message.content_type.empty()) {
            message.content_type = value;
        } else if (iequals(name, "Content-Transfer-Encoding") &&
                   message.content_transfer_encoding.empty()) {
            message.content_transfer_encoding = ascii_lowercase(value);
        }
    }
    message.content = std::string(body.substr(pos));
    return message;
}

// ---------------------------------------------------------------------------
// isComposing

Result<IsComposing, ParseError> parse_iscomposing(std::string_view xml) {
    XmlTreeBuilder builder(16, 256);
    const auto root = builder.parse(xml);
    if (!root) {
        return parse_error("not well-formed XML: " + builder.error());
    }
    if (root->ns != iscomposing_ns || root->name != "isComposing") {
        return parse_error("root element is not isComposing in " + std::string(iscomposing_ns));
    }
    IsComposing composing;
    bool have_state = false;
    for (const auto& child : root->children) {
        if (child.ns != iscomposing_ns) {
            continue; // extensions in other namespaces are allowed and ignored
        }
        const auto value = trim(child.text);
        if (child.name == "state") {
            if (have_state) {
                return parse_error("more than one state");
            }
            if (value == "active") {
                composing.state = ComposingState::active;
            } else if (value == "idle") {
                composing.state = ComposingState::idle;
            } else {
                return parse_error("state is neither idle nor active");
            }
            have_state = true;
        } else if (child.name == "refresh") {
            const auto seconds = parse_unsigned(value);
            if (!seconds || *seconds == 0) {
                return parse_error("refresh is not a positive integer");
            }
            composing.refresh = seconds;
        } else if (child.name == "lastactive") {
            if (is_rfc3339_date_time(value)) {
                composing.lastactive = std::string(value);
            }
        } else if (child.name == "contenttype") {
            composing.content_type = header_safe_text(value, 128);
        }
    }
    if (!have_state) {
        return parse_error("no state element");
    }
    return composing;
}

std::string make_iscomposing(const IsComposing& composing) {
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<isComposing xmlns=\"";
    out += iscomposing_ns;
    out += "\"><state>";
    out += composing.state == ComposingState::active ? "active" : "idle";
    out += "</state>";
    if (!composing.lastactive.empty()) {
        out += "<lastactive>" + xml_escaped(composing.lastactive) + "</lastactive>";
    }
    if (!composing.content_type.empty()) {
        out += "<contenttype>" + xml_escaped(composing.content_type) + "</contenttype>";
    }
    if (composing.refresh && *composing.refresh > 0) {
        out += fmt::format("<refresh>{}</refresh>", *composing.refresh);
    }
    out += "</isComposing>\n";
    return out;
}

ComposingState composing_state_for(ChatState state) {
    return state == ChatState::composing ? ComposingState::active : ComposingState::idle;
}

ChatState chat_state_for(ComposingState state) {
    return state == ComposingState::active ? ChatState::composing : ChatState::paused;
}

unsigned active_timeout_seconds(const IsComposing& composing) {
    return composing.refresh.value_or(default_composing_refresh);
}

// ---------------------------------------------------------------------------
// HTML

std::string html_to_text(std::string_view html) {
    HtmlTokenizer tokenizer(html);
    PlainTextWriter writer;
    DropTracker dropped;
    std::vector<ListLevel> lists;
    struct OpenLink {
        std::size_t mark;
        std::string href;
    };
    std::vector<OpenLink> links;
    HtmlToken token;
    while (tokenizer.next(token)) {
        if (dropped.swallow(token)) {
            continue;
        }
        if (token.kind == HtmlToken::Kind::text) {
            writer.text(token.text);
            continue;
        }
        const std::string& name = token.name;
        const bool start = token.kind == HtmlToken::Kind::start;
        if (name == "br") {
            writer.line_break();
        } else if (name == "img" && start) {
            writer.text(token.attribute("alt"));
        } else if (name == "td" || name == "th") {
            writer.word_gap();
        } else if (name == "a") {
            if (start && !token.self_closing && links.size() < max_html_depth) {
                links.push_back({writer.size(), safe_href(token.attribute("href"))});
            } else if (!start && !links.empty()) {
                const OpenLink link = std::move(links.back());
                links.pop_back();
                const auto label = trim(writer.since(link.mark));
                const std::string_view href = link.href;
                const bool same =
                    label == href || (istarts_with(href, "mailto:") && label == href.substr(7));
                if (!href.empty() && !same) {
                    writer.text(label.empty() ? link.href : " (" + link.href + ")");
                }
            }
        } else if (is_block_element(name)) {
            writer.block_boundary();
            if (name == "pre") {
                writer.pre_depth += (start && !token.self_closing) ? 1 : -1;
                writer.pre_depth = std::max(writer.pre_depth, 0);
            } else if ((name == "ul" || name == "ol") && !token.self_closing) {
                if (start && lists.size() < max_html_depth) {
                    lists.push_back({name == "ol", 0});
                } else if (!start && !lists.empty()) {
                    lists.pop_back();
                }
            } else if (name == "li" && start) {
                const bool numbered = !lists.empty() && lists.back().ordered;
                writer.text(numbered ? fmt::format("{}. ", ++lists.back().counter) : "- ");
            }
        }
    }
    return writer.finish();
}

std::optional<std::string> html_to_xhtml_im(std::string_view html, std::size_t max_bytes) {
    HtmlTokenizer tokenizer(html);
    XhtmlWriter writer(max_bytes);
    DropTracker dropped;
    HtmlToken token;
    while (tokenizer.next(token)) {
        if (dropped.swallow(token)) {
            continue;
        }
        switch (token.kind) {
        case HtmlToken::Kind::text:
            writer.text(token.text);
            break;
        case HtmlToken::Kind::start:
            writer.start(token);
            break;
        case HtmlToken::Kind::end:
            writer.end(token);
            break;
        }
    }
    return writer.finish(tokenizer.truncated());
}

bool is_well_formed_xhtml_body(std::string_view inner_xml) {
    std::string document = "<body xmlns=\"";
    document += xhtml_ns;
    document += "\">";
    document += inner_xml;
    document += "</body>";
    XmlTreeBuilder builder(max_html_depth + 2, std::size_t{64} * 1024);
    return builder.parse(document).has_value();
}

// ---------------------------------------------------------------------------
// The two directions

Result<SipSend, XmppError> xmpp_to_sip(const XmppMessage& message, const Limits& limits) {
    if (message.type == MessageType::error) {
        return SipSend{NoMessage::error_stanza};
    }
    if (message.type == MessageType::groupchat) {
        return XmppError{Condition::feature_not_implemented,
                         "The SIP gateway does not support groupchat messages",
                         {}};
    }
    SipMessageOut out;
    out.call_id_hint = call_id_from_thread(message.thread);
    if (message.body.empty()) {
        if (!message.chat_state) {
            return SipSend{NoMessage::no_content};
        }
        IsComposing composing;
        composing.state = composing_state_for(*message.chat_state);
        composing.content_type = "text/plain";
        if (composing.state == ComposingState::active) {
            composing.refresh = default_composing_refresh;
        }
        out.content_type = std::string(iscomposing_type);
        out.body = make_iscomposing(composing);
        out.notification = true;
        return SipSend{std::move(out)};
    }
    if (!is_valid_utf8(message.body)) {
        return XmppError{Condition::bad_request, "Message body is not valid UTF-8", {}};
    }
    if (message.body.size() > limits.max_body_bytes) {
        return XmppError{Condition::policy_violation,
                         fmt::format("Message body of {} bytes exceeds the gateway limit of {}",
                                     message.body.size(), limits.max_body_bytes),
                         {}};
    }
    // Cleaned in full first: a cut here could hide an over-long subject.
    out.subject = header_safe_text(message.subject, std::string::npos);
    if (out.subject.size() > limits.max_subject_bytes) {
        return XmppError{
            Condition::policy_violation,
            fmt::format("Subject exceeds the gateway limit of {} bytes", limits.max_subject_bytes),
            {}};
    }
    out.content_type = std::string(text_plain_utf8);
    out.body = message.body;
    out.content_language = content_language_from_lang(message.lang);
    return SipSend{std::move(out)};
}

Result<XmppMessage, SipStatus> sip_to_xmpp(const SipMessageIn& message,
                                           const SipToXmppOptions& options, const Limits& limits) {
    if (message.body.size() > limits.max_body_bytes) {
        return sip_error(413, fmt::format("Message body exceeds the gateway limit of {} bytes",
                                          limits.max_body_bytes));
    }
    if (message.body.empty()) {
        return sip_error(400, "MESSAGE without a body");
    }
    XmppMessage out;
    out.type = (options.type == MessageType::normal) ? MessageType::normal : MessageType::chat;
    out.subject = header_safe_text(message.subject, std::string::npos);
    if (out.subject.size() > limits.max_subject_bytes) {
        return sip_error(413, "Subject too long");
    }
    out.lang = lang_from_content_language(message.content_language);
    if (options.call_id_as_thread) {
        out.thread = thread_from_call_id(message.call_id);
    }
    const auto type_header = trim(message.content_type);
    const auto media = parse_media_type(type_header.empty() ? "text/plain" : type_header);
    if (!media) {
        return sip_error(400, "Malformed Content-Type");
    }
    if (auto refused = convert_content(*media, message.body, out, limits, false)) {
        return std::move(*refused);
    }
    return out;
}

std::optional<XmppMessage> receipt_for_sip_response(const XmppMessage& sent, int status) {
    if (status != 200 || !sent.receipt_request || sent.id.empty() || sent.body.empty() ||
        sent.type == MessageType::error || sent.type == MessageType::groupchat) {
        return std::nullopt;
    }
    XmppMessage receipt;
    receipt.from = sent.to;
    receipt.to = sent.from;
    receipt.type = sent.type;
    receipt.receipt_for = sent.id;
    return receipt;
}

SipMessageOut sip_notice_for_xmpp_error(const XmppError& error) {
    std::string condition(to_string(error.condition));
    std::replace(condition.begin(), condition.end(), '-', ' ');
    const std::string text = safe_reason(error.text);
    SipMessageOut notice;
    notice.content_type = std::string(text_plain_utf8);
    notice.body = text.empty() ? fmt::format("Your message could not be delivered: {}.", condition)
                               : fmt::format("Your message could not be delivered: {} ({}).",
                                             condition, text);
    notice.notification = true;
    return notice;
}

} // namespace xsgw::translate
