// gloox stanzas <-> message values (M1, M8, M9 parts the bridge reads and writes; E3).
#include "xsgw/bridge/stanza_message.hpp"

#include <doctest/doctest.h>
#include <gloox/tag.h>
#include <memory>

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
    std::unique_ptr<gloox::Tag> stanza(xsgw::bridge::stanza_from_message(m));
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
    std::unique_ptr<gloox::Tag> broken(xsgw::bridge::stanza_from_message(m));
    CHECK(broken->findChild("html") == nullptr); // never sends malformed XHTML
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
