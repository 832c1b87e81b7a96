#include "xsgw/xmpp/stanza.hpp"

#include <gloox/tag.h>

namespace xsgw::xmpp {

bool jid_in_domain(std::string_view jid, std::string_view domain) {
    const auto slash = jid.find('/');
    const auto bare = jid.substr(0, slash);
    const auto at = bare.find('@');
    const auto host = at == std::string_view::npos ? bare : bare.substr(at + 1);
    return !host.empty() && host == domain;
}

std::string reply_from(const gloox::Tag& request, std::string_view domain) {
    const std::string& to = request.findAttribute("to");
    return jid_in_domain(to, domain) ? to : std::string(domain);
}

static gloox::Tag* make_reply(const gloox::Tag& request, std::string_view domain,
                              const std::string& type) {
    auto* reply = new gloox::Tag(request.name());
    reply->addAttribute("type", type);
    const std::string& id = request.findAttribute("id");
    if (!id.empty()) reply->addAttribute("id", id);
    reply->addAttribute("from", reply_from(request, domain));
    const std::string& from = request.findAttribute("from");
    if (!from.empty()) reply->addAttribute("to", from);
    return reply;
}

gloox::Tag* make_iq_result(const gloox::Tag& request, std::string_view domain) {
    return make_reply(request, domain, "result");
}

gloox::Tag* make_error_reply(const gloox::Tag& request, std::string_view domain,
                             const StanzaError& error) {
    if (request.findAttribute("type") == "error") return nullptr;
    auto* reply = make_reply(request, domain, "error");
    auto* err = new gloox::Tag(reply, "error");
    err->addAttribute("type", error.type);
    auto* condition = new gloox::Tag(err, error.condition);
    condition->setXmlns("urn:ietf:params:xml:ns:xmpp-stanzas");
    if (!error.text.empty()) {
        auto* text = new gloox::Tag(err, "text", error.text);
        text->setXmlns("urn:ietf:params:xml:ns:xmpp-stanzas");
        text->addAttribute("xml:lang", "en");
    }
    return reply;
}

std::string xml_lang(const gloox::Tag& element) {
    for (const gloox::Tag::Attribute* a : element.attributes()) {
        if ((a->name() == "lang" && a->prefix() == "xml") || a->name() == "xml:lang")
            return a->value();
    }
    return {};
}

} // namespace xsgw::xmpp
