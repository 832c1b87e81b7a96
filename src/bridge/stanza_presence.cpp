#include "xsgw/bridge/stanza_presence.hpp"

#include "xsgw/translate/xml_text.hpp"
#include "xsgw/xmpp/stanza.hpp"

#include <algorithm>
#include <gloox/tag.h>
#include <string_view>

namespace xsgw::bridge {
namespace {

bool is_stanza_namespace(const std::string& ns) {
    return ns.empty() || ns == "jabber:client" || ns == "jabber:server" ||
           ns == "jabber:component:accept";
}

// An integer in -128..127 with an optional sign; empty for anything else.
std::optional<int> parse_priority(std::string_view text) {
    text = translate::trim_xml_space(text);
    bool negative = false;
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
        negative = text.front() == '-';
        text.remove_prefix(1);
    }
    if (text.empty() ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    int value = 0;
    for (const char c : text) {
        value = value * 10 + (c - '0');
        if (value > 128) {
            return std::nullopt; // also keeps long digit strings from overflowing
        }
    }
    if (negative) {
        value = -value;
    }
    if (value < -128 || value > 127) {
        return std::nullopt;
    }
    return value;
}

} // namespace

translate::ResourcePresence presence_from_stanza(const gloox::Tag& stanza) {
    translate::ResourcePresence p;
    const std::string& from = stanza.findAttribute("from");
    if (const auto slash = from.find('/'); slash != std::string::npos) {
        p.resource = from.substr(slash + 1);
    }
    p.available = stanza.findAttribute("type").empty();
    const gloox::Tag* status = nullptr;       // the first without its own xml:lang
    const gloox::Tag* first_status = nullptr; // the first of all
    for (const gloox::Tag* child : stanza.children()) {
        if (!is_stanza_namespace(child->xmlns())) {
            continue;
        }
        const std::string& name = child->name();
        if (name == "show" && p.available) {
            p.show = translate::parse_show(translate::trim_xml_space(child->cdata()))
                         .value_or(translate::Show::none);
        } else if (name == "priority" && p.available) {
            p.priority = parse_priority(child->cdata());
        } else if (name == "status") {
            if (first_status == nullptr) {
                first_status = child;
            }
            if (status == nullptr && xmpp::xml_lang(*child).empty()) {
                status = child;
            }
        }
    }
    if (status == nullptr) {
        status = first_status;
    }
    if (status != nullptr) {
        p.status = status->cdata();
        p.status_lang = xmpp::xml_lang(*status);
        if (p.status_lang.empty()) p.status_lang = xmpp::xml_lang(stanza);
        if (p.status.empty()) {
            p.status_lang.clear();
        }
    }
    return p;
}

gloox::Tag* stanza_from_presence(const translate::ResourcePresence& presence,
                                 const std::string& from, const std::string& to) {
    auto* stanza = new gloox::Tag("presence");
    stanza->addAttribute("from", from);
    stanza->addAttribute("to", to);
    if (!presence.available) {
        stanza->addAttribute("type", "unavailable");
    }
    if (presence.available && presence.show != translate::Show::none) {
        new gloox::Tag(stanza, "show", std::string(translate::to_string(presence.show)));
    }
    if (!presence.status.empty()) {
        auto* status = new gloox::Tag(stanza, "status", presence.status);
        if (!presence.status_lang.empty()) {
            status->addAttribute("xml:lang", presence.status_lang);
        }
    }
    if (presence.available && presence.priority && *presence.priority >= -128 &&
        *presence.priority <= 127) {
        new gloox::Tag(stanza, "priority", std::to_string(*presence.priority));
    }
    return stanza;
}

} // namespace xsgw::bridge
