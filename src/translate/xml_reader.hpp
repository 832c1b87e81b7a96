// The expat parser the translate readers share (PIDF, isComposing, the
// XHTML-IM check). Private to src/translate.
#pragma once

#include <cstddef>
#include <expat.h>
#include <string>
#include <string_view>

namespace xsgw::translate {

// An element or attribute name as expat reports it with namespaces on.
struct XmlName {
    std::string_view ns;    ///< namespace URI; empty when none
    std::string_view local; ///< local name
};

/// Splits a name expat reported ("uri local", or "local" outside any namespace).
XmlName split_xml_name(std::string_view expat_name);

// How one reader's parser is set up. The readers differ in these, and their
// errors must stay as they are.
struct XmlReaderOptions {
    std::size_t max_depth = 0;            ///< elements open at once; one more fails the parse
    const XML_Char* encoding = nullptr;   ///< imposed on the document, or nullptr: as it declares
    std::string_view syntax_error_prefix; ///< put before expat's own "<what> at line <n>"
};

/// One hardened, namespace-aware expat pass over a whole document: DOCTYPE and
/// entity declarations are refused (so no entity is ever expanded), nesting is
/// bounded, and the first failure, expat's or a hook's, is the error. A reader
/// derives from it and receives elements and text through three hooks, which
/// are no longer called once the parse has failed.
class XmlReader {
public:
    XmlReader(const XmlReader&) = delete;
    XmlReader& operator=(const XmlReader&) = delete;
    XmlReader(XmlReader&&) = delete; // expat holds a pointer to it while parsing
    XmlReader& operator=(XmlReader&&) = delete;
    virtual ~XmlReader() = default;

protected:
    explicit XmlReader(XmlReaderOptions options) : options_(options) {}

    /// Parses text as one complete document, calling the hooks; false when it
    /// is not well-formed, hits a bound or a hook failed, with error() saying why.
    bool parse_document(std::string_view text);

    /// Ends the parse with why as the error, unless it has failed already.
    void fail(std::string_view why);

    /// Why the parse failed; empty while it has not.
    const std::string& error() const { return error_; }

    /// An element opened; attributes are expat's null-terminated name, value pairs.
    virtual void start_element(XmlName name, const XML_Char** attributes) = 0;
    /// The innermost open element closed.
    virtual void end_element() = 0;
    /// Character data (never empty) inside the innermost open element.
    virtual void characters(std::string_view text) = 0;

private:
    static void on_start(void* self, const XML_Char* name, const XML_Char** attributes);
    static void on_end(void* self, const XML_Char* name);
    static void on_text(void* self, const XML_Char* text, int length);
    static void on_doctype(void* self, const XML_Char* name, const XML_Char* sysid,
                           const XML_Char* pubid, int has_internal_subset);
    static void on_entity(void* self, const XML_Char* name, int is_parameter_entity,
                          const XML_Char* value, int value_length, const XML_Char* base,
                          const XML_Char* sysid, const XML_Char* pubid, const XML_Char* notation);

    void handle_start(const XML_Char* expat_name, const XML_Char** attributes);
    void handle_end();
    void handle_text(const XML_Char* text, int length);

    XmlReaderOptions options_;
    XML_Parser parser_ = nullptr; // set only while parse_document runs
    std::size_t depth_ = 0;
    bool element_seen_ = false;
    std::string error_;
};

} // namespace xsgw::translate
