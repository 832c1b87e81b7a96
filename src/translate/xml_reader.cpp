#include "xml_reader.hpp"

#include <climits>
#include <fmt/format.h>
#include <memory>

namespace xsgw::translate {
namespace {

struct ParserDeleter {
    void operator()(XML_ParserStruct* parser) const { XML_ParserFree(parser); }
};
using ParserPtr = std::unique_ptr<XML_ParserStruct, ParserDeleter>;

// Separates namespace URI and local name in the names expat reports; expat
// refuses a namespace URI that contains it, and no local name can.
constexpr char ns_separator = ' ';

} // namespace

XmlName split_xml_name(std::string_view expat_name) {
    const auto split = expat_name.find(ns_separator);
    if (split == std::string_view::npos) {
        return {{}, expat_name};
    }
    return {expat_name.substr(0, split), expat_name.substr(split + 1)};
}

bool XmlReader::parse_document(std::string_view text) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
        error_ = "document too large";
        return false;
    }
    ParserPtr parser(XML_ParserCreateNS(options_.encoding, ns_separator));
    if (!parser) {
        error_ = "out of memory";
        return false;
    }
    parser_ = parser.get();
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, &XmlReader::on_start, &XmlReader::on_end);
    XML_SetCharacterDataHandler(parser_, &XmlReader::on_text);
    XML_SetStartDoctypeDeclHandler(parser_, &XmlReader::on_doctype);
    XML_SetEntityDeclHandler(parser_, &XmlReader::on_entity);
    const auto status = XML_Parse(parser_, text.data(), static_cast<int>(text.size()), XML_TRUE);
    if (status != XML_STATUS_OK && error_.empty()) {
        error_ = fmt::format("{}{} at line {}", options_.syntax_error_prefix,
                             XML_ErrorString(XML_GetErrorCode(parser_)),
                             XML_GetCurrentLineNumber(parser_));
    }
    parser_ = nullptr;
    if (!error_.empty()) {
        return false;
    }
    if (!element_seen_) {
        error_ = "no root element";
        return false;
    }
    return true;
}

void XmlReader::fail(std::string_view why) {
    if (error_.empty()) {
        error_ = std::string(why);
    }
    if (parser_ != nullptr) {
        XML_StopParser(parser_, XML_FALSE);
    }
}

void XmlReader::on_start(void* self, const XML_Char* name, const XML_Char** attributes) {
    static_cast<XmlReader*>(self)->handle_start(name, attributes);
}

void XmlReader::on_end(void* self, const XML_Char* /*name*/) {
    static_cast<XmlReader*>(self)->handle_end();
}

void XmlReader::on_text(void* self, const XML_Char* text, int length) {
    static_cast<XmlReader*>(self)->handle_text(text, length);
}

void XmlReader::on_doctype(void* self, const XML_Char* /*name*/, const XML_Char* /*sysid*/,
                           const XML_Char* /*pubid*/, int /*has_internal_subset*/) {
    static_cast<XmlReader*>(self)->fail("DOCTYPE not allowed");
}

void XmlReader::on_entity(void* self, const XML_Char* /*name*/, int /*is_parameter_entity*/,
                          const XML_Char* /*value*/, int /*value_length*/, const XML_Char* /*base*/,
                          const XML_Char* /*sysid*/, const XML_Char* /*pubid*/,
                          const XML_Char* /*notation*/) {
    static_cast<XmlReader*>(self)->fail("entity declarations not allowed");
}

void XmlReader::handle_start(const XML_Char* expat_name, const XML_Char** attributes) {
    if (!error_.empty()) {
        return;
    }
    if (depth_ >= options_.max_depth) {
        fail("nesting too deep");
        return;
    }
    ++depth_;
    element_seen_ = true;
    start_element(split_xml_name(expat_name), attributes);
}

void XmlReader::handle_end() {
    // expat may still report the end of an element after a stop.
    if (!error_.empty() || depth_ == 0) {
        return;
    }
    --depth_;
    end_element();
}

void XmlReader::handle_text(const XML_Char* text, int length) {
    if (error_.empty() && length > 0) {
        characters(std::string_view(text, static_cast<std::size_t>(length)));
    }
}

} // namespace xsgw::translate
