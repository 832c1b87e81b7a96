// gloox stanzas <-> message values (M1, M8, M9 parts the bridge reads and writes; E3).
#include "xsgw/bridge/stanza_message.hpp"
#include "xsgw/translate/xml_text.hpp"

#include <doctest/doctest.h>
#include <gloox/parser.h>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>
#include <string>

namespace {

// What the XMPP server's parser makes of the text we write: one element, or none.
class OneElement final : public gloox::TagHandler {
public:
    std::unique_ptr<gloox::Tag> parse(std::string xml) {
        gloox::Parser parser(this);
        if (parser.feed(xml) >= 0 || !tag_) return nullptr;
        return std::move(tag_);
    }
    void handleTag(gloox::Tag* tag) override {
        tag_.reset(tag != nullptr ? tag->clone() : nullptr);
    }

private:
    std::unique_ptr<gloox::Tag> tag_;
};

std::unique_ptr<gloox::Tag> parsed(const std::string& xml) {
    return OneElement().parse(xml);
}

} // namespace

using xsgw::translate::ChatState;
using xsgw::translate::MessageType;
using xsgw::translate::XmppMessage;

TEST_CASE("M1 a message stanza's parts are read: body, subject, thread, lang, type, id") {
    gloox::Tag stanza("message");
    stanza.addAttribute("id", "m1");
    stanza.addAttribute("type", "chat");
    stanza.addAttribute("from", "alice@xmpp.test/pc");
    stanza.addAttribute("to", "bob*simple.test@sip.test");
    stanza.addAttribute("xml:lang", "fr");
    new gloox::Tag(&stanza, "subject", "sujet");
    new gloox::Tag(&stanza, "body", "h\xc3\xa9llo");
    new gloox::Tag(&stanza, "thread", "t-1");
    auto* state = new gloox::Tag(&stanza, "active");
    state->setXmlns("http://jabber.org/protocol/chatstates");
    auto* request = new gloox::Tag(&stanza, "request");
    request->setXmlns("urn:xmpp:receipts");
    const XmppMessage m = xsgw::bridge::message_from_stanza(stanza);
    CHECK(m.id == "m1");
    CHECK(m.type == MessageType::chat);
    CHECK(m.from == "alice@xmpp.test/pc");
    CHECK(m.to == "bob*simple.test@sip.test");
    CHECK(m.lang == "fr");
    CHECK(m.subject == "sujet");
    CHECK(m.body == "h\xc3\xa9llo");
    CHECK(m.thread == "t-1");
    CHECK(m.chat_state == ChatState::active);
    CHECK(m.receipt_request);
}

TEST_CASE("M8 a value written as a stanza reads back the same") {
    XmppMessage m;
    m.id = "x1";
    m.type = MessageType::chat;
    m.from = "bob*simple.test@sip.test";
    m.to = "alice@xmpp.test";
    m.body = "plain <&> text";
    m.subject = "s";
    m.thread = "th";
    m.lang = "en";
    m.chat_state = ChatState::composing;
    m.xhtml = "<p>plain <strong>text</strong></p>";
    std::unique_ptr<gloox::Tag> stanza = parsed(xsgw::bridge::stanza_from_message(m));
    REQUIRE(stanza);
    const gloox::Tag* html = stanza->findChild("html");
    REQUIRE(html != nullptr);
    CHECK(html->xmlns() == "http://jabber.org/protocol/xhtml-im");
    XmppMessage back = xsgw::bridge::message_from_stanza(*stanza);
    CHECK(back.body == m.body);
    CHECK(back.subject == m.subject);
    CHECK(back.thread == m.thread);
    CHECK(back.chat_state == m.chat_state);
    CHECK(back.xhtml.find("<strong>text</strong>") != std::string::npos);
    m.xhtml = "<p>not closed";
    std::unique_ptr<gloox::Tag> broken = parsed(xsgw::bridge::stanza_from_message(m));
    REQUIRE(broken);
    CHECK(broken->findChild("html") == nullptr); // never sends malformed XHTML
    CHECK(broken->findChild("body")->cdata() == m.body);
}

TEST_CASE("M1 M6 the stanza text as written: attribute order, escaping, no empty parts") {
    XmppMessage m;
    m.id = "xsgw-7";
    m.type = MessageType::chat;
    m.from = "bob*simple.test@sip.test";
    m.to = "alice@xmpp.test";
    m.body = "a<b & 'c' \"d\" >\n\tend";
    CHECK(xsgw::bridge::stanza_from_message(m) ==
          "<message id=\"xsgw-7\" type=\"chat\" from=\"bob*simple.test@sip.test\" "
          "to=\"alice@xmpp.test\"><body>a&lt;b &amp; &apos;c&apos; &quot;d&quot; &gt;\n\tend"
          "</body></message>");
    m.id.clear();
    m.body.clear();
    m.type = MessageType::normal;
    m.chat_state = ChatState::composing;
    m.receipt_for = "r\"1";
    m.lang = "de";
    CHECK(xsgw::bridge::stanza_from_message(m) ==
          "<message type=\"normal\" from=\"bob*simple.test@sip.test\" to=\"alice@xmpp.test\" "
          "xml:lang=\"de\"><composing xmlns=\"http://jabber.org/protocol/chatstates\"/>"
          "<received xmlns=\"urn:xmpp:receipts\" id=\"r&quot;1\"/></message>");
}

TEST_CASE("M6 S3 text XML cannot carry never reaches the stream; the rest reads back exactly") {
    // Each value goes through an attribute and an element; the server's parser must accept the
    // stanza and read back the value less what XML 1.0 cannot carry.
    const std::string values[] = {
        "plain",
        "\x01\x08\x0b\x0c\x1f control characters",
        "cr\r\nlf",
        "tab\tin attribute",
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80",
        "bad \xff\xfe utf-8 \xc3",
        "\xef\xbf\xbe\xef\xbf\xbf noncharacters U+FFFE U+FFFF",
        "]]> <![CDATA[ &#38; &amp;",
    };
    for (const std::string& value : values) {
        CAPTURE(value);
        XmppMessage m;
        m.type = MessageType::chat;
        m.from = "bob*simple.test@sip.test";
        m.to = "alice@xmpp.test";
        m.id = value;
        m.body = value;
        m.thread = value;
        const std::string xml = xsgw::bridge::stanza_from_message(m);
        std::unique_ptr<gloox::Tag> stanza = parsed(xml);
        REQUIRE(stanza);
        const XmppMessage back = xsgw::bridge::message_from_stanza(*stanza);
        std::string expected;
        xsgw::translate::append_xml_escaped(expected, value);
        CHECK(xml.find("<body>" + expected + "</body>") != std::string::npos);
        CHECK(back.body.find('\x01') == std::string::npos);
        CHECK(back.body.find('\x0b') == std::string::npos);
        CHECK(xsgw::translate::is_valid_utf8(back.body));
        CHECK(xsgw::translate::is_valid_utf8(back.id));
        CHECK(back.thread == back.body);
    }
}

TEST_CASE("E3 the error reply to a message: swapped addresses, same id, type and text") {
    XmppMessage request;
    request.id = "e1";
    request.from = "alice@xmpp.test/pc";
    request.to = "nobody*simple.test@sip.test";
    xsgw::translate::XmppError error;
    error.condition = xsgw::translate::Condition::item_not_found;
    error.text = "SIP 404 Not Found";
    std::unique_ptr<gloox::Tag> reply(xsgw::bridge::error_stanza_for(request, error));
    CHECK(reply->findAttribute("type") == "error");
    CHECK(reply->findAttribute("id") == "e1");
    CHECK(reply->findAttribute("from") == "nobody*simple.test@sip.test");
    CHECK(reply->findAttribute("to") == "alice@xmpp.test/pc");
    const gloox::Tag* e = reply->findChild("error");
    REQUIRE(e != nullptr);
    CHECK(e->findAttribute("type") == "cancel");
    CHECK(e->findChild("item-not-found") != nullptr);
    CHECK(e->findChild("text")->cdata() == "SIP 404 Not Found");
}
