// X4 and X6–X9: the replies the gateway's own services build.
#include "xsgw/xmpp/services.hpp"

#include <doctest/doctest.h>
#include <gloox/tag.h>
#include <memory>
#include <string>
#include <vector>

namespace {

using xsgw::xmpp::Services;
using xsgw::xmpp::StanzaError;

std::unique_ptr<gloox::Tag> iq(const std::string& type, const std::string& to, const char* child,
                               const char* ns, const std::string& id = "q1") {
    auto t = std::make_unique<gloox::Tag>("iq");
    t->addAttribute("type", type);
    t->addAttribute("id", id);
    t->addAttribute("from", "alice@xmpp.test/pc");
    t->addAttribute("to", to);
    if (child != nullptr) {
        auto* c = new gloox::Tag(t.get(), child);
        c->setXmlns(ns);
    }
    return t;
}

Services services() {
    return Services("sip.test", {.name = "xsgw", .version = "9.9", .show_os = false, .admins = {}},
                    [](const std::string& prompt) -> std::variant<std::string, StanzaError> {
                        if (prompt == "alice@sip.example.org")
                            return "alice*sip.example.org@sip.test";
                        return StanzaError{"modify", "jid-malformed", "bad address"};
                    });
}

std::unique_ptr<gloox::Tag> reply(const gloox::Tag& request) {
    return std::unique_ptr<gloox::Tag>(services().reply_to(request));
}

std::string condition(const gloox::Tag& r) {
    const gloox::Tag* e = r.findChild("error");
    if (e == nullptr || e->children().empty()) return {};
    return e->children().front()->name();
}

} // namespace

TEST_CASE("X4 replies swap from and to, keep the id, and come from our domain") {
    const struct {
        std::string to, expected_from;
    } rows[] = {
        {"sip.test", "sip.test"},
        {"alice*sip.example.org@sip.test", "alice*sip.example.org@sip.test"},
        {"alice*sip.example.org@sip.test/res", "alice*sip.example.org@sip.test/res"},
    };
    for (const auto& row : rows) {
        auto request = iq("get", row.to, "ping", "urn:xmpp:ping", "id-42");
        auto r = reply(*request);
        REQUIRE(r);
        CHECK(r->findAttribute("type") == "result");
        CHECK(r->findAttribute("id") == "id-42");
        CHECK(r->findAttribute("from") == row.expected_from);
        CHECK(r->findAttribute("to") == "alice@xmpp.test/pc");
    }
    // Addressed elsewhere (a misrouting server): still answered from our domain.
    auto stray = iq("get", "other.example", "ping", "urn:xmpp:ping");
    auto r = reply(*stray);
    REQUIRE(r);
    CHECK(r->findAttribute("from") == "sip.test");
    CHECK(condition(*r) == "service-unavailable");
}

TEST_CASE("X6 disco#info names identity gateway/simple and exactly the implemented features") {
    auto r = reply(*iq("get", "sip.test", "query", "http://jabber.org/protocol/disco#info"));
    REQUIRE(r);
    CHECK(r->findAttribute("type") == "result");
    const gloox::Tag* q = r->findChild("query");
    REQUIRE(q != nullptr);
    const gloox::Tag* identity = q->findChild("identity");
    REQUIRE(identity != nullptr);
    CHECK(identity->findAttribute("category") == "gateway");
    CHECK(identity->findAttribute("type") == "simple");
    std::vector<std::string> vars;
    for (const gloox::Tag* f : q->findChildren("feature"))
        vars.push_back(f->findAttribute("var"));
    CHECK(vars == Services::features());
    CHECK(vars == std::vector<std::string>{"http://jabber.org/protocol/disco#info",
                                           "http://jabber.org/protocol/disco#items",
                                           "http://jabber.org/protocol/commands",
                                           "jabber:iq:gateway", "jabber:iq:version",
                                           "urn:xmpp:ping"});
}

TEST_CASE("X6 disco#items is an empty result; an unknown node is item-not-found") {
    auto r = reply(*iq("get", "sip.test", "query", "http://jabber.org/protocol/disco#items"));
    REQUIRE(r);
    REQUIRE(r->findChild("query") != nullptr);
    CHECK(r->findChild("query")->children().empty());
    auto node = iq("get", "sip.test", "query", "http://jabber.org/protocol/disco#info");
    node->findChild("query")->addAttribute("node", "x");
    auto rn = reply(*node);
    CHECK(condition(*rn) == "item-not-found");
}

TEST_CASE("X7 version and ping answer on the domain and on user JIDs") {
    for (const std::string to : {"sip.test", "bob*example.org@sip.test"}) {
        auto v = reply(*iq("get", to, "query", "jabber:iq:version"));
        REQUIRE(v);
        CHECK(v->findAttribute("type") == "result");
        const gloox::Tag* q = v->findChild("query");
        REQUIRE(q != nullptr);
        CHECK(q->findChild("name")->cdata() == "xsgw");
        CHECK(q->findChild("version")->cdata() == "9.9");
        CHECK(q->findChild("os") == nullptr); // show_os = false
        auto p = reply(*iq("get", to, "ping", "urn:xmpp:ping"));
        REQUIRE(p);
        CHECK(p->findAttribute("type") == "result");
    }
    Services with_os("sip.test", {.name = "xsgw", .version = "1", .show_os = true, .admins = {}},
                     nullptr);
    std::unique_ptr<gloox::Tag> v(
        with_os.reply_to(*iq("get", "sip.test", "query", "jabber:iq:version")));
    CHECK(v->findChild("query")->findChild("os") != nullptr);
}

TEST_CASE("X8 every get/set is answered once; unknown namespaces get service-unavailable") {
    const struct {
        std::string type, to;
        const char* child;
        const char* ns;
        std::string condition;
    } rows[] = {
        {"get", "sip.test", "query", "urn:example:nope", "service-unavailable"},
        {"set", "sip.test", "query", "urn:example:nope", "service-unavailable"},
        {"set", "sip.test", "ping", "urn:xmpp:ping", "service-unavailable"},
        {"set", "sip.test", "query", "jabber:iq:version", "service-unavailable"},
        {"set", "a*b@sip.test", "query", "http://jabber.org/protocol/disco#info",
         "service-unavailable"},
        {"get", "a*b@sip.test", "vCard", "vcard-temp", "service-unavailable"},
        {"get", "sip.test", nullptr, nullptr, "bad-request"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.ns);
        auto r = reply(*iq(row.type, row.to, row.child, row.ns, "u1"));
        REQUIRE(r);
        CHECK(r->findAttribute("type") == "error");
        CHECK(r->findAttribute("id") == "u1");
        CHECK(condition(*r) == row.condition);
    }
    auto two = iq("get", "sip.test", "ping", "urn:xmpp:ping");
    new gloox::Tag(two.get(), "extra");
    CHECK(condition(*reply(*two)) == "bad-request");
    // Results and errors are never answered.
    CHECK(reply(*iq("result", "sip.test", nullptr, nullptr)) == nullptr);
    CHECK(reply(*iq("error", "sip.test", "ping", "urn:xmpp:ping")) == nullptr);
}

TEST_CASE("X6 a contact's disco#info: a phone-like client with ping, version and the contact "
          "features (Jingle while calls are on)") {
    for (const bool calls : {false, true}) {
        CAPTURE(calls);
        xsgw::xmpp::ServiceInfo info{
            .name = "xsgw", .version = "1", .show_os = false, .admins = {}};
        if (calls) info.contact_features = {"urn:xmpp:jingle:1", "urn:xmpp:jingle-message:0"};
        Services s("sip.test", info, nullptr);
        std::unique_ptr<gloox::Tag> r(s.reply_to(*iq("get", "bob*example.org@sip.test/sip", "query",
                                                     "http://jabber.org/protocol/disco#info")));
        REQUIRE(r);
        CHECK(r->findAttribute("type") == "result");
        const gloox::Tag* q = r->findChild("query");
        REQUIRE(q != nullptr);
        const gloox::Tag* identity = q->findChild("identity");
        REQUIRE(identity != nullptr);
        CHECK(identity->findAttribute("category") == "client");
        CHECK(identity->findAttribute("type") == "phone");
        std::vector<std::string> features;
        for (const gloox::Tag* f : q->findChildren("feature"))
            features.push_back(f->findAttribute("var"));
        std::vector<std::string> expected{"http://jabber.org/protocol/disco#info", "urn:xmpp:ping",
                                          "jabber:iq:version"};
        if (calls) {
            expected.push_back("urn:xmpp:jingle:1");
            expected.push_back("urn:xmpp:jingle-message:0");
        }
        CHECK(features == expected);
        // A node the contact does not have.
        auto node =
            iq("get", "bob*example.org@sip.test", "query", "http://jabber.org/protocol/disco#info");
        node->findChild("query")->addAttribute("node", "x");
        std::unique_ptr<gloox::Tag> n(s.reply_to(*node));
        CHECK(n->findAttribute("type") == "error");
    }
}

TEST_CASE("X9 iq:gateway get gives desc and prompt; set maps the address or errs") {
    auto g = reply(*iq("get", "sip.test", "query", "jabber:iq:gateway"));
    REQUIRE(g);
    const gloox::Tag* q = g->findChild("query");
    REQUIRE(q != nullptr);
    CHECK(q->xmlns() == "jabber:iq:gateway");
    CHECK(q->findChild("desc") != nullptr);
    CHECK(q->findChild("prompt") != nullptr);

    auto set = iq("set", "sip.test", "query", "jabber:iq:gateway");
    new gloox::Tag(set->findChild("query"), "prompt", "alice@sip.example.org");
    auto s = reply(*set);
    REQUIRE(s);
    CHECK(s->findAttribute("type") == "result");
    CHECK(s->findChild("query")->findChild("jid")->cdata() == "alice*sip.example.org@sip.test");

    auto bad = iq("set", "sip.test", "query", "jabber:iq:gateway");
    new gloox::Tag(bad->findChild("query"), "prompt", "nonsense");
    CHECK(condition(*reply(*bad)) == "jid-malformed");

    auto empty = iq("set", "sip.test", "query", "jabber:iq:gateway");
    CHECK(condition(*reply(*empty)) == "bad-request");
}

TEST_CASE("E3 error replies carry the type, the condition and the text; E4 never answer an error") {
    gloox::Tag message("message");
    message.addAttribute("id", "m1");
    message.addAttribute("from", "alice@xmpp.test/pc");
    message.addAttribute("to", "bob*example.org@sip.test");
    std::unique_ptr<gloox::Tag> r(xsgw::xmpp::make_error_reply(
        message, "sip.test", {"cancel", "service-unavailable", "why"}));
    REQUIRE(r);
    CHECK(r->name() == "message");
    CHECK(r->findAttribute("type") == "error");
    CHECK(r->findAttribute("id") == "m1");
    CHECK(r->findAttribute("from") == "bob*example.org@sip.test");
    CHECK(r->findAttribute("to") == "alice@xmpp.test/pc");
    const gloox::Tag* e = r->findChild("error");
    REQUIRE(e != nullptr);
    CHECK(e->findAttribute("type") == "cancel");
    CHECK(e->findChild("service-unavailable") != nullptr);
    CHECK(e->findChild("text")->cdata() == "why");
    message.addAttribute("type", "error");
    CHECK(xsgw::xmpp::make_error_reply(message, "sip.test", {"cancel", "x", ""}) == nullptr);
}

TEST_CASE("X8 ad-hoc stats command (XEP-0050): listed and run for admins, forbidden for others") {
    Services s("sip.test",
               {.name = "xsgw", .version = "1", .show_os = false, .admins = {"admin@xmpp.test"}},
               nullptr);
    s.set_stats_provider([] {
        return std::vector<std::pair<std::string, std::string>>{{"messages_in", "7"}};
    });
    auto list = [&](const std::string& from) {
        auto q = iq("get", "sip.test", "query", "http://jabber.org/protocol/disco#items");
        q->findChild("query")->addAttribute("node", "http://jabber.org/protocol/commands");
        q->addAttribute("from", from);
        return std::unique_ptr<gloox::Tag>(s.reply_to(*q));
    };
    auto admin_list = list("admin@xmpp.test/pc");
    REQUIRE(admin_list->findChild("query")->findChild("item") != nullptr);
    CHECK(admin_list->findChild("query")->findChild("item")->findAttribute("node") == "stats");
    CHECK(list("alice@xmpp.test/pc")->findChild("query")->children().empty());

    auto run = [&](const std::string& from, const std::string& node) {
        auto q = iq("set", "sip.test", "command", "http://jabber.org/protocol/commands");
        q->findChild("command")->addAttribute("node", node);
        q->findChild("command")->addAttribute("action", "execute");
        q->addAttribute("from", from);
        return std::unique_ptr<gloox::Tag>(s.reply_to(*q));
    };
    auto done = run("admin@xmpp.test/pc", "stats");
    REQUIRE(done->findAttribute("type") == "result");
    const gloox::Tag* command = done->findChild("command");
    REQUIRE(command != nullptr);
    CHECK(command->findAttribute("status") == "completed");
    const gloox::Tag* field = command->findChild("x")->findChild("field");
    REQUIRE(field != nullptr);
    CHECK(field->findAttribute("var") == "messages_in");
    CHECK(field->findChild("value")->cdata() == "7");
    CHECK(condition(*run("alice@xmpp.test/pc", "stats")) == "forbidden");
    CHECK(condition(*run("admin@xmpp.test/pc", "nope")) == "item-not-found");
}
