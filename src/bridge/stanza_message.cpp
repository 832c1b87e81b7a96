#include "xsgw/bridge/stanza_message.hpp"

#include "xsgw/translate/xml_text.hpp"
#include "xsgw/xmpp/stanza.hpp"

#include <gloox/parser.h>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>

namespace xsgw::bridge {
namespace {

constexpr const char* ns_chat_states = "http://jabber.org/protocol/chatstates";
constexpr const char* ns_receipts = "urn:xmpp:receipts";
constexpr const char* ns_xhtml_im = "http://jabber.org/protocol/xhtml-im";
constexpr const char* ns_xhtml = "http://www.w3.org/1999/xhtml";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

// Parses a well-formed XML fragment into one Tag (caller owns it), for XHTML-IM bodies.
class FragmentParser final : public gloox::TagHandler {
public:
    std::unique_ptr<gloox::Tag> parse(const std::string& xml) {
        gloox::Parser parser(this);
        std::string copy = xml;
        if (parser.feed(copy) >= 0 || !tag_) return nullptr;
        return std::move(tag_);
    }
    void handleTag(gloox::Tag* tag) override {
        tag_.reset(tag != nullptr ? tag->clone() : nullptr);
    }

private:
    std::unique_ptr<gloox::Tag> tag_;
};

} // namespace

translate::XmppMessage message_from_stanza(const gloox::Tag& stanza) {
    translate::XmppMessage m;
    m.id = stanza.findAttribute("id");
    m.from = stanza.findAttribute("from");
    m.to = stanza.findAttribute("to");
    m.type = translate::parse_message_type(stanza.findAttribute("type"))
                 .value_or(translate::MessageType::normal);
    m.lang = xmpp::xml_lang(stanza);
    for (const gloox::Tag* child : stanza.children()) {
        const std::string& name = child->name();
        const std::string ns = child->xmlns();
        if (name == "body" &&
            (ns.empty() || ns == "jabber:client" || ns == "jabber:component:accept")) {
            // One body per language may appear; the one without xml:lang (or the first) wins.
            if (m.body.empty() || xmpp::xml_lang(*child).empty()) m.body = child->cdata();
        } else if (name == "subject") {
            if (m.subject.empty()) m.subject = child->cdata();
        } else if (name == "thread") {
            m.thread = child->cdata();
        } else if (ns == ns_chat_states) {
            m.chat_state = translate::parse_chat_state(name);
        } else if (ns == ns_receipts && name == "request") {
            m.receipt_request = true;
        } else if (ns == ns_receipts && name == "received") {
            m.receipt_for = child->findAttribute("id");
        } else if (ns == ns_xhtml_im && name == "html") {
            if (const gloox::Tag* body = child->findChild("body")) {
                std::string inner;
                for (const gloox::Tag* part : body->children())
                    inner += part->xml();
                m.xhtml = inner;
            }
        }
    }
    return m;
}

namespace {

void append_attribute(std::string& xml, std::string_view name, std::string_view value) {
    xml += ' ';
    xml += name;
    xml += "=\"";
    translate::append_xml_escaped(xml, value, true);
    xml += '"';
}

void append_element(std::string& xml, std::string_view name, std::string_view text) {
    xml += '<';
    xml += name;
    xml += '>';
    translate::append_xml_escaped(xml, text);
    xml += "</";
    xml += name;
    xml += '>';
}

} // namespace

std::string stanza_from_message(const translate::XmppMessage& m) {
    // Written straight to text: this is the hot path of every SIP->XMPP message, and a
    // gloox Tag tree costs some fifty allocations to build and serialise.
    std::string xml;
    xml.reserve(160 + m.from.size() + m.to.size() + m.subject.size() + m.body.size() +
                m.thread.size() + m.xhtml.size());
    xml += "<message";
    if (!m.id.empty()) append_attribute(xml, "id", m.id);
    append_attribute(xml, "type", translate::to_string(m.type));
    append_attribute(xml, "from", m.from);
    append_attribute(xml, "to", m.to);
    if (!m.lang.empty()) append_attribute(xml, "xml:lang", m.lang);
    xml += '>';
    if (!m.subject.empty()) append_element(xml, "subject", m.subject);
    if (!m.body.empty()) append_element(xml, "body", m.body);
    if (!m.thread.empty()) append_element(xml, "thread", m.thread);
    if (m.chat_state) {
        xml += '<';
        xml += translate::to_string(*m.chat_state);
        append_attribute(xml, "xmlns", ns_chat_states);
        xml += "/>";
    }
    if (!m.receipt_for.empty()) {
        xml += "<received";
        append_attribute(xml, "xmlns", ns_receipts);
        append_attribute(xml, "id", m.receipt_for);
        xml += "/>";
    }
    if (!m.xhtml.empty()) {
        // Only well-formed XHTML goes out, as gloox writes it back (never malformed XML).
        FragmentParser parser;
        auto body =
            parser.parse("<body xmlns='" + std::string(ns_xhtml) + "'>" + m.xhtml + "</body>");
        if (body) {
            xml += "<html";
            append_attribute(xml, "xmlns", ns_xhtml_im);
            xml += '>';
            xml += body->xml();
            xml += "</html>";
        }
    }
    xml += "</message>";
    return xml;
}

gloox::Tag* error_stanza_for(const translate::XmppMessage& request,
                             const translate::XmppError& error) {
    auto* stanza = new gloox::Tag("message");
    stanza->addAttribute("type", "error");
    if (!request.id.empty()) stanza->addAttribute("id", request.id);
    stanza->addAttribute("from", request.to);
    stanza->addAttribute("to", request.from);
    auto* err = new gloox::Tag(stanza, "error");
    err->addAttribute("type",
                      std::string(translate::to_string(translate::error_type(error.condition))));
    auto* condition = new gloox::Tag(err, std::string(translate::to_string(error.condition)),
                                     error.alternate_address);
    condition->setXmlns(ns_stanzas);
    if (!error.text.empty()) {
        auto* text = new gloox::Tag(err, "text", error.text);
        text->setXmlns(ns_stanzas);
        text->addAttribute("xml:lang", "en");
    }
    return stanza;
}

} // namespace xsgw::bridge
