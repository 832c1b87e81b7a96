// RFC 3994 isComposing documents and their mapping to XEP-0085 chat states
// (M8), and the robustness of their parser (S2).
#include "xsgw/translate/message.hpp"

#include <doctest/doctest.h>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::translate {
// Internal linkage: each test file prints values its own way without ODR clashes.
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, ChatState state) {
    return out << to_string(state);
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, ComposingState state) {
    return out << (state == ComposingState::active ? "active" : "idle");
}
} // namespace xsgw::translate

using namespace xsgw::translate;

namespace {

IsComposing parsed(std::string_view xml) {
    const auto result = parse_iscomposing(xml);
    INFO((result ? std::string() : result.error().reason));
    REQUIRE(result.has_value());
    return *result;
}

std::string document(std::string_view inner) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"\n"
           "  xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
           "  xsi:schemaLocation=\"urn:ietf:params:xml:ns:im-composing iscomposing.xsd\">\n" +
           std::string(inner) + "</isComposing>\n";
}

} // namespace

TEST_CASE("M8 isComposing active with contenttype and refresh (RFC 3994 example)") {
    const auto composing = parsed(document(
        "<state>active</state><contenttype>text/plain</contenttype><refresh>90</refresh>"));
    CHECK(composing.state == ComposingState::active);
    CHECK(composing.content_type == "text/plain");
    CHECK(composing.refresh == 90u);
    CHECK(active_timeout_seconds(composing) == 90);
}

TEST_CASE("M8 isComposing idle with lastactive") {
    const auto composing =
        parsed(document("<state> idle </state><lastactive>2003-01-27T10:43:00Z</lastactive>"
                        "<contenttype>audio</contenttype>"));
    CHECK(composing.state == ComposingState::idle);
    CHECK(composing.lastactive == "2003-01-27T10:43:00Z");
    CHECK(composing.content_type == "audio");
    CHECK_FALSE(composing.refresh.has_value());
}

TEST_CASE("M8 refresh defaults to 120 s; a lastactive that is no date-time is ignored") {
    const auto composing =
        parsed(document("<state>active</state><lastactive>yesterday</lastactive>"));
    CHECK(active_timeout_seconds(composing) == 120);
    CHECK(composing.lastactive.empty());
    for (const std::string_view good : {"2003-01-27T10:43:00.5+01:00", "2003-01-27t10:43:00z"}) {
        CAPTURE(good);
        const auto doc =
            document("<state>idle</state><lastactive>" + std::string(good) + "</lastactive>");
        CHECK(parsed(doc).lastactive == good);
    }
}

TEST_CASE("M8 elements of other namespaces are ignored (RFC 3994 schema ##other)") {
    const auto composing =
        parsed(document("<x:extra xmlns:x='urn:example'><x:deep/></x:extra><state>active</state>"));
    CHECK(composing.state == ComposingState::active);
}

TEST_CASE("M8 malformed isComposing documents are refused") {
    const std::vector<std::string> bad = {
        "",
        "not xml",
        document(""),
        document("<state>typing</state>"),
        document("<state>active</state><state>idle</state>"),
        document("<state>active</state><refresh>0</refresh>"),
        document("<state>active</state><refresh>-5</refresh>"),
        document("<state>active</state><refresh>99999999999</refresh>"),
        document("<state>active</state><refresh>ten</refresh>"),
        "<isComposing><state>active</state></isComposing>",
        "<isComposing xmlns='urn:example'><state>active</state></isComposing>",
        "<other xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>active</state></other>",
        "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>active</state>",
        document("<state>&bogus;</state>"),
    };
    for (const auto& xml : bad) {
        CAPTURE(xml);
        const auto result = parse_iscomposing(xml);
        REQUIRE(!result.has_value());
        CHECK(!result.error().reason.empty());
    }
}

TEST_CASE("S2 isComposing refuses DOCTYPE, so no entity expansion (billion laughs)") {
    const std::string laughs =
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
        "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
        "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>&lol3;</state>"
        "</isComposing>";
    const auto result = parse_iscomposing(laughs);
    REQUIRE(!result.has_value());
    CHECK(result.error().reason.find("DOCTYPE") != std::string::npos);
}

TEST_CASE("S2 isComposing bounds nesting depth") {
    std::string deep = "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'>";
    for (int i = 0; i < 100; ++i) {
        deep += "<x:a xmlns:x='urn:x'>";
    }
    for (int i = 0; i < 100; ++i) {
        deep += "</x:a>";
    }
    deep += "<state>idle</state></isComposing>";
    CHECK_FALSE(parse_iscomposing(deep).has_value());
}

TEST_CASE("S2 isComposing parser survives every prefix of a document") {
    const std::string full =
        document("<state>active</state><lastactive>2003-01-27T10:43:00Z</lastactive>"
                 "<contenttype>text/plain</contenttype><refresh>60</refresh>");
    for (std::size_t length = 0; length < full.size(); ++length) {
        const auto result = parse_iscomposing(std::string_view(full).substr(0, length));
        if (result) {
            // Only the trailing newline after the root may be missing.
            CHECK(length >= full.size() - 1);
        }
    }
    CHECK(parse_iscomposing(full).has_value());
}

TEST_CASE("M8 make_iscomposing writes what parse_iscomposing reads") {
    IsComposing composing;
    composing.state = ComposingState::active;
    composing.content_type = "text/plain";
    composing.refresh = 120;
    composing.lastactive = "2024-05-01T12:00:00Z";
    const auto xml = make_iscomposing(composing);
    CHECK(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0) == 0);
    CHECK(parsed(xml) == composing);
    IsComposing idle;
    idle.content_type = "<&>";
    CHECK(parsed(make_iscomposing(idle)) == idle);
}

TEST_CASE("M8 chat state <-> isComposing state table") {
    struct Row {
        ChatState chat_state;
        ComposingState state;
    };
    const std::vector<Row> xmpp_to_sip = {
        {ChatState::composing, ComposingState::active}, {ChatState::active, ComposingState::idle},
        {ChatState::paused, ComposingState::idle},      {ChatState::inactive, ComposingState::idle},
        {ChatState::gone, ComposingState::idle},
    };
    for (const auto& row : xmpp_to_sip) {
        CAPTURE(row.chat_state);
        CHECK(composing_state_for(row.chat_state) == row.state);
    }
    CHECK(chat_state_for(ComposingState::active) == ChatState::composing);
    CHECK(chat_state_for(ComposingState::idle) == ChatState::paused);
}
