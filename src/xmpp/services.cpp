#include "xsgw/xmpp/services.hpp"

#include <gloox/tag.h>
#include <sys/utsname.h>
#include <utility>

namespace xsgw::xmpp {
namespace {

constexpr const char* ns_disco_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_disco_items = "http://jabber.org/protocol/disco#items";
constexpr const char* ns_version = "jabber:iq:version";
constexpr const char* ns_ping = "urn:xmpp:ping";
constexpr const char* ns_gateway = "jabber:iq:gateway";
constexpr const char* ns_commands = "http://jabber.org/protocol/commands";
constexpr const char* ns_data = "jabber:x:data";
constexpr const char* stats_node = "stats";

// The single payload element of an iq get/set, or nullptr when there is not exactly one.
const gloox::Tag* single_payload(const gloox::Tag& iq) {
    const gloox::Tag* payload = nullptr;
    for (const gloox::Tag* child : iq.children()) {
        if (payload != nullptr) return nullptr;
        payload = child;
    }
    return payload;
}

gloox::Tag* query(gloox::Tag* parent, const char* ns) {
    auto* q = new gloox::Tag(parent, "query");
    q->setXmlns(ns);
    return q;
}

std::string local_part(const std::string& jid) {
    const auto slash = jid.find('/');
    const auto at = jid.find('@');
    if (at == std::string::npos || (slash != std::string::npos && at > slash)) return {};
    return jid.substr(0, at);
}

} // namespace

Services::Services(std::string domain, ServiceInfo info, GatewayPromptResolver resolve)
    : domain_(std::move(domain)), info_(std::move(info)), resolve_(std::move(resolve)) {
    utsname u{};
    if (uname(&u) == 0) os_ = std::string(u.sysname) + " " + u.release;
}

const std::vector<std::string>& Services::features() {
    static const std::vector<std::string> list{ns_disco_info, ns_disco_items, ns_commands,
                                               ns_gateway,    ns_version,     ns_ping};
    return list;
}

gloox::Tag* Services::error(const gloox::Tag& iq, std::string type, std::string condition,
                            std::string text) const {
    return make_error_reply(iq, domain_, {std::move(type), std::move(condition), std::move(text)});
}

gloox::Tag* Services::reply_to(const gloox::Tag& iq) const {
    const std::string& type = iq.findAttribute("type");
    const bool get = type == "get";
    if (!get && type != "set") return nullptr; // results and errors are not requests
    const gloox::Tag* payload = single_payload(iq);
    if (payload == nullptr)
        return error(iq, "modify", "bad-request", "an iq get/set carries exactly one payload");
    const std::string& to = iq.findAttribute("to");
    if (!jid_in_domain(to, domain_))
        return error(iq, "cancel", "service-unavailable", "not addressed to this gateway");
    return local_part(to).empty() ? domain_request(iq, *payload, get)
                                  : user_request(iq, *payload, get);
}

gloox::Tag* Services::domain_request(const gloox::Tag& iq, const gloox::Tag& payload,
                                     bool get) const {
    const std::string ns = payload.xmlns();
    const std::string& name = payload.name();
    if (get && name == "query" && ns == ns_disco_info) {
        if (!payload.findAttribute("node").empty())
            return error(iq, "cancel", "item-not-found", "no such node");
        auto* reply = make_iq_result(iq, domain_);
        auto* q = query(reply, ns_disco_info);
        auto* identity = new gloox::Tag(q, "identity");
        identity->addAttribute("category", "gateway");
        identity->addAttribute("type", "simple");
        identity->addAttribute("name", "SIP/SIMPLE gateway");
        for (const auto& feature : features())
            new gloox::Tag(q, "feature", "var", feature);
        return reply;
    }
    if (get && name == "query" && ns == ns_disco_items) {
        if (payload.findAttribute("node") == ns_commands) return commands_items(iq);
        if (!payload.findAttribute("node").empty())
            return error(iq, "cancel", "item-not-found", "no such node");
        auto* reply = make_iq_result(iq, domain_);
        query(reply, ns_disco_items);
        return reply;
    }
    if (name == "query" && ns == ns_gateway) return gateway_request(iq, payload, get);
    if (!get && name == "command" && ns == ns_commands) return command_request(iq, payload);
    return user_request(iq, payload, get);
}

bool Services::is_admin(const gloox::Tag& iq) const {
    const std::string& from = iq.findAttribute("from");
    const std::string bare = from.substr(0, from.find('/'));
    for (const auto& admin : info_.admins)
        if (admin == bare) return true;
    return false;
}

// XEP-0050 §2.2: the commands an entity may run; others see an empty list.
gloox::Tag* Services::commands_items(const gloox::Tag& iq) const {
    auto* reply = make_iq_result(iq, domain_);
    auto* q = query(reply, ns_disco_items);
    q->addAttribute("node", ns_commands);
    if (is_admin(iq)) {
        auto* item = new gloox::Tag(q, "item");
        item->addAttribute("jid", domain_);
        item->addAttribute("node", stats_node);
        item->addAttribute("name", "Gateway statistics");
    }
    return reply;
}

// XEP-0050 §2.4: a one-stage command, completed at once with a result form.
gloox::Tag* Services::command_request(const gloox::Tag& iq, const gloox::Tag& payload) const {
    if (payload.findAttribute("node") != stats_node)
        return error(iq, "cancel", "item-not-found", "no such command");
    const std::string& action = payload.findAttribute("action");
    if (!action.empty() && action != "execute")
        return error(iq, "modify", "bad-request", "the stats command only executes");
    if (!is_admin(iq))
        return error(iq, "auth", "forbidden", "only the gateway's admins may run commands");
    auto* reply = make_iq_result(iq, domain_);
    auto* command = new gloox::Tag(reply, "command");
    command->setXmlns(ns_commands);
    command->addAttribute("node", stats_node);
    command->addAttribute("status", "completed");
    const std::string& session = payload.findAttribute("sessionid");
    command->addAttribute("sessionid", session.empty() ? "stats" : session);
    auto* form = new gloox::Tag(command, "x");
    form->setXmlns(ns_data);
    form->addAttribute("type", "result");
    new gloox::Tag(form, "title", "Gateway statistics");
    if (stats_) {
        for (const auto& [var, value] : stats_()) {
            auto* field = new gloox::Tag(form, "field");
            field->addAttribute("var", var);
            field->addAttribute("type", "text-single");
            new gloox::Tag(field, "value", value);
        }
    }
    return reply;
}

gloox::Tag* Services::user_request(const gloox::Tag& iq, const gloox::Tag& payload,
                                   bool get) const {
    const std::string ns = payload.xmlns();
    const std::string& name = payload.name();
    if (get && name == "query" && ns == ns_version) return version_result(iq);
    if (get && name == "ping" && ns == ns_ping) return make_iq_result(iq, domain_);
    if (get && name == "query" && ns == ns_disco_info && payload.findAttribute("node").empty() &&
        !local_part(iq.findAttribute("to")).empty()) {
        // A SIP contact (XEP-0030): a phone-like client, with what the gateway does for it.
        auto* reply = make_iq_result(iq, domain_);
        auto* q = query(reply, ns_disco_info);
        auto* identity = new gloox::Tag(q, "identity");
        identity->addAttribute("category", "client");
        identity->addAttribute("type", "phone");
        identity->addAttribute("name", "SIP contact");
        for (const char* feature : {ns_disco_info, ns_ping, ns_version})
            new gloox::Tag(q, "feature", "var", feature);
        for (const auto& feature : info_.contact_features)
            new gloox::Tag(q, "feature", "var", feature);
        return reply;
    }
    return error(iq, "cancel", "service-unavailable", "");
}

gloox::Tag* Services::version_result(const gloox::Tag& iq) const {
    auto* reply = make_iq_result(iq, domain_);
    auto* q = query(reply, ns_version);
    new gloox::Tag(q, "name", info_.name);
    new gloox::Tag(q, "version", info_.version);
    if (info_.show_os && !os_.empty()) new gloox::Tag(q, "os", os_);
    return reply;
}

gloox::Tag* Services::gateway_request(const gloox::Tag& iq, const gloox::Tag& payload,
                                      bool get) const {
    if (get) {
        auto* reply = make_iq_result(iq, domain_);
        auto* q = query(reply, ns_gateway);
        new gloox::Tag(q, "desc", info_.gateway_desc);
        new gloox::Tag(q, "prompt", info_.gateway_prompt);
        return reply;
    }
    const gloox::Tag* prompt = payload.findChild("prompt");
    if (prompt == nullptr || prompt->cdata().empty())
        return error(iq, "modify", "bad-request", "a <prompt/> with a SIP address is required");
    if (!resolve_) return error(iq, "cancel", "service-unavailable", "");
    auto outcome = resolve_(prompt->cdata());
    if (auto* e = std::get_if<StanzaError>(&outcome)) return make_error_reply(iq, domain_, *e);
    const auto& jid = std::get<std::string>(outcome);
    auto* reply = make_iq_result(iq, domain_);
    auto* q = query(reply, ns_gateway);
    // XEP-0100 §6.3: <jid/>; older clients read <prompt/>, so both are sent.
    new gloox::Tag(q, "jid", jid);
    new gloox::Tag(q, "prompt", jid);
    return reply;
}

} // namespace xsgw::xmpp
