// gloox <presence/> stanzas <-> presence values (the XMPP side of P10, P11).
#include "../parsed_stanza.hpp"
#include "xsgw/bridge/stanza_presence.hpp"

#include <doctest/doctest.h>
#include <gloox/parser.h>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

using xsgw::translate::ResourcePresence;
using xsgw::translate::Show;

TEST_SUITE_BEGIN("bridge/stanza_presence");

namespace {

using xsgw::test::Parsed;

// A <presence/> to fill in; gloox::Tag is not safe to copy, so it lives on the heap.
std::unique_ptr<gloox::Tag> presence_stanza(const std::string& from, const std::string& type = {}) {
    auto stanza = std::make_unique<gloox::Tag>("presence");
    stanza->addAttribute("from", from);
    stanza->addAttribute("to", "bob*simple.test@sip.test");
    if (!type.empty()) {
        stanza->addAttribute("type", type);
    }
    return stanza;
}

} // namespace

TEST_CASE("P10 xml:lang of a parsed stanza is kept (gloox parses it as prefix xml, name lang)") {
    const Parsed own("<presence xmlns='jabber:client' from='alice@xmpp.test/pc'>"
                     "<status xml:lang='en'>hi</status></presence>");
    const ResourcePresence p = xsgw::bridge::presence_from_stanza(own.tag());
    CHECK(p.status == "hi");
    CHECK(p.status_lang == "en");
    const Parsed inherited("<presence xmlns='jabber:client' xml:lang='de' "
                           "from='alice@xmpp.test/pc'><status>hallo</status></presence>");
    CHECK(xsgw::bridge::presence_from_stanza(inherited.tag()).status_lang == "de");
    const Parsed choice("<presence xmlns='jabber:client' from='alice@xmpp.test/pc'>"
                        "<status xml:lang='fr'>salut</status><status>hello</status></presence>");
    CHECK(xsgw::bridge::presence_from_stanza(choice.tag()).status == "hello");
}

TEST_CASE("P10 a presence stanza's parts are read: resource, show, status, lang, priority") {
    auto stanza = presence_stanza("alice@xmpp.test/pc");
    new gloox::Tag(stanza.get(), "show", "dnd");
    auto* status = new gloox::Tag(stanza.get(), "status", "In a meeting");
    status->addAttribute("xml:lang", "en");
    new gloox::Tag(stanza.get(), "priority", "5");
    const ResourcePresence p = xsgw::bridge::presence_from_stanza(*stanza);
    CHECK(p.resource == "pc");
    CHECK(p.available);
    CHECK(p.show == Show::dnd);
    CHECK(p.status == "In a meeting");
    CHECK(p.status_lang == "en");
    CHECK(p.priority == 5);
}

TEST_CASE("P10 the resource is everything after the first slash of from") {
    struct Row {
        std::string from;
        std::string resource;
    };
    const Row rows[] = {
        {"alice@xmpp.test/pc", "pc"},
        {"alice@xmpp.test/pc/with/slashes", "pc/with/slashes"},
        {"alice@xmpp.test/home laptop", "home laptop"},
        {"alice@xmpp.test", ""},
        {"alice@xmpp.test/", ""},
        {"", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.from);
        CHECK(xsgw::bridge::presence_from_stanza(*presence_stanza(row.from)).resource ==
              row.resource);
    }
}

TEST_CASE("P10 every show value; anything else is plain available") {
    struct Row {
        std::string_view text;
        Show show;
    };
    const Row rows[] = {
        {"away", Show::away}, {"chat", Show::chat},   {"dnd", Show::dnd},
        {"xa", Show::xa},     {" xa\n", Show::xa},    {"", Show::none},
        {"DND", Show::none},  {"online", Show::none}, {"busy", Show::none},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        auto stanza = presence_stanza("alice@xmpp.test/pc");
        new gloox::Tag(stanza.get(), "show", std::string(row.text));
        CHECK(xsgw::bridge::presence_from_stanza(*stanza).show == row.show);
        CHECK(xsgw::translate::parse_show(row.text).value_or(Show::none) ==
              (row.text == " xa\n" ? Show::none : row.show)); // parse_show is exact
    }
}

TEST_CASE("P10 priority: integers in -128..127, anything else none") {
    struct Row {
        std::string_view text;
        std::optional<int> priority;
    };
    const Row rows[] = {
        {"0", 0},
        {"1", 1},
        {"-1", -1},
        {"126", 126},
        {"127", 127},
        {"-128", -128},
        {"+3", 3},
        {" 7 ", 7},
        {"007", 7},
        {"128", std::nullopt},
        {"-129", std::nullopt},
        {"1000", std::nullopt},
        {"99999999999999999999", std::nullopt},
        {"", std::nullopt},
        {"-", std::nullopt},
        {"+", std::nullopt},
        {"abc", std::nullopt},
        {"1.5", std::nullopt},
        {"5x", std::nullopt},
        {"0x10", std::nullopt},
        {"--1", std::nullopt},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        auto stanza = presence_stanza("alice@xmpp.test/pc");
        new gloox::Tag(stanza.get(), "priority", std::string(row.text));
        CHECK(xsgw::bridge::presence_from_stanza(*stanza).priority == row.priority);
    }
    CHECK_FALSE(xsgw::bridge::presence_from_stanza(*presence_stanza("a@b/c")).priority.has_value());
}

TEST_CASE("P10 type unavailable: not available, status kept, show and priority dropped") {
    auto stanza = presence_stanza("alice@xmpp.test/pc", "unavailable");
    new gloox::Tag(stanza.get(), "show", "away");
    new gloox::Tag(stanza.get(), "status", "Gone home");
    new gloox::Tag(stanza.get(), "priority", "5");
    const ResourcePresence p = xsgw::bridge::presence_from_stanza(*stanza);
    CHECK(p.resource == "pc");
    CHECK_FALSE(p.available);
    CHECK(p.show == Show::none);
    CHECK(p.status == "Gone home");
    CHECK_FALSE(p.priority.has_value());
    // Types the bridge should not pass here read as unavailable too.
    for (const std::string type : {"subscribe", "probe", "error", "bogus"}) {
        CHECK_FALSE(xsgw::bridge::presence_from_stanza(*presence_stanza("alice@xmpp.test/pc", type))
                        .available);
    }
}

TEST_CASE("P10 several statuses: the one in the default language, else the first") {
    auto stanza = presence_stanza("alice@xmpp.test/pc");
    stanza->addAttribute("xml:lang", "en");
    auto* de = new gloox::Tag(stanza.get(), "status", "Beim Essen");
    de->addAttribute("xml:lang", "de");
    new gloox::Tag(stanza.get(), "status", "At lunch");
    ResourcePresence p = xsgw::bridge::presence_from_stanza(*stanza);
    CHECK(p.status == "At lunch");
    CHECK(p.status_lang == "en"); // the stanza's language

    auto only_tagged = presence_stanza("alice@xmpp.test/pc");
    auto* fr = new gloox::Tag(only_tagged.get(), "status", "Au d\xc3\xa9jeuner");
    fr->addAttribute("xml:lang", "fr");
    auto* it = new gloox::Tag(only_tagged.get(), "status", "A pranzo");
    it->addAttribute("xml:lang", "it");
    p = xsgw::bridge::presence_from_stanza(*only_tagged);
    CHECK(p.status == "Au d\xc3\xa9jeuner");
    CHECK(p.status_lang == "fr");

    auto no_lang = presence_stanza("alice@xmpp.test/pc");
    new gloox::Tag(no_lang.get(), "status", "hi");
    p = xsgw::bridge::presence_from_stanza(*no_lang);
    CHECK(p.status == "hi");
    CHECK(p.status_lang.empty());

    auto empty_status = presence_stanza("alice@xmpp.test/pc");
    auto* empty = new gloox::Tag(empty_status.get(), "status");
    empty->addAttribute("xml:lang", "en");
    p = xsgw::bridge::presence_from_stanza(*empty_status);
    CHECK(p.status.empty());
    CHECK(p.status_lang.empty()); // a language describes a text
}

TEST_CASE("P10 children in other namespaces are not show, status or priority") {
    auto stanza = presence_stanza("alice@xmpp.test/pc");
    auto* show = new gloox::Tag(stanza.get(), "show", "dnd");
    show->setXmlns("urn:example:other");
    auto* status = new gloox::Tag(stanza.get(), "status", "not this");
    status->setXmlns("urn:example:other");
    auto* priority = new gloox::Tag(stanza.get(), "priority", "9");
    priority->setXmlns("urn:example:other");
    auto* caps = new gloox::Tag(stanza.get(), "c");
    caps->setXmlns("http://jabber.org/protocol/caps");
    const ResourcePresence p = xsgw::bridge::presence_from_stanza(*stanza);
    CHECK(p.available);
    CHECK(p.show == Show::none);
    CHECK(p.status.empty());
    CHECK_FALSE(p.priority.has_value());

    // The stanza's own namespaces are fine.
    for (const std::string ns : {"jabber:client", "jabber:server", "jabber:component:accept"}) {
        auto namespaced = presence_stanza("alice@xmpp.test/pc");
        namespaced->setXmlns(ns);
        new gloox::Tag(namespaced.get(), "show", "xa");
        CHECK(xsgw::bridge::presence_from_stanza(*namespaced).show == Show::xa);
    }
}

TEST_CASE("P11 building a presence stanza from a value") {
    ResourcePresence p;
    p.resource = "pc";
    p.available = true;
    p.show = Show::away;
    p.status = "Back <soon> & \"then\"";
    p.status_lang = "en";
    p.priority = -1;
    std::unique_ptr<gloox::Tag> stanza(
        xsgw::bridge::stanza_from_presence(p, "bob*simple.test@sip.test/pc", "alice@xmpp.test"));
    REQUIRE(stanza);
    CHECK(stanza->name() == "presence");
    CHECK(stanza->findAttribute("from") == "bob*simple.test@sip.test/pc");
    CHECK(stanza->findAttribute("to") == "alice@xmpp.test");
    CHECK_FALSE(stanza->hasAttribute("type"));
    REQUIRE(stanza->findChild("show") != nullptr);
    CHECK(stanza->findChild("show")->cdata() == "away");
    REQUIRE(stanza->findChild("status") != nullptr);
    CHECK(stanza->findChild("status")->cdata() == p.status);
    CHECK(stanza->findChild("status")->findAttribute("xml:lang") == "en");
    REQUIRE(stanza->findChild("priority") != nullptr);
    CHECK(stanza->findChild("priority")->cdata() == "-1");
    CHECK(stanza->xml().find("Back &lt;soon&gt; &amp;") != std::string::npos);
    CHECK(xsgw::bridge::presence_from_stanza(*stanza) == p);
}

TEST_CASE("P11 building an unavailable presence: type, status, no show or priority") {
    ResourcePresence p;
    p.resource = "pc";
    p.show = Show::dnd;
    p.status = "Gone";
    p.priority = 3;
    std::unique_ptr<gloox::Tag> stanza(
        xsgw::bridge::stanza_from_presence(p, "bob*simple.test@sip.test/pc", "alice@xmpp.test"));
    CHECK(stanza->findAttribute("type") == "unavailable");
    CHECK(stanza->findChild("show") == nullptr);
    CHECK(stanza->findChild("priority") == nullptr);
    REQUIRE(stanza->findChild("status") != nullptr);
    CHECK_FALSE(stanza->findChild("status")->hasAttribute("xml:lang"));

    const ResourcePresence plain{};
    std::unique_ptr<gloox::Tag> bare(
        xsgw::bridge::stanza_from_presence(plain, "bob*simple.test@sip.test", "alice@xmpp.test"));
    CHECK(bare->findAttribute("type") == "unavailable");
    CHECK(bare->children().empty());
}

TEST_CASE("P10 P11 every value survives stanza_from_presence then presence_from_stanza") {
    const Show shows[] = {Show::none, Show::away, Show::chat, Show::dnd, Show::xa};
    const std::optional<int> priorities[] = {std::nullopt, -128, -1, 0, 1, 126, 127};
    const std::pair<std::string_view, std::string_view> statuses[] = {
        {"", ""}, {"hi", ""}, {"hi", "en"}, {"<&>'\"", "x-y"}, {"caf\xc3\xa9\nline", "fr"}};
    int checked = 0;
    for (const bool available : {true, false}) {
        for (const Show show : shows) {
            for (const auto& priority : priorities) {
                for (const auto& [status, lang] : statuses) {
                    ResourcePresence p;
                    p.resource = "res/1";
                    p.available = available;
                    p.show = available ? show : Show::none;
                    p.priority = available ? priority : std::nullopt;
                    p.status = std::string(status);
                    p.status_lang = std::string(lang);
                    std::unique_ptr<gloox::Tag> stanza(xsgw::bridge::stanza_from_presence(
                        p, "bob*simple.test@sip.test/res/1", "alice@xmpp.test"));
                    CHECK(xsgw::bridge::presence_from_stanza(*stanza) == p);
                    ++checked;
                }
            }
        }
    }
    CHECK(checked == 2 * 5 * 7 * 5);
}

TEST_SUITE_END();
