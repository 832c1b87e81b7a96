#include "xsgw/bridge/gateway.hpp"

#include "xsgw/address/address.hpp"
#include "xsgw_build.hpp"

#include <gloox/tag.h>
#include <spdlog/spdlog.h>

namespace xsgw::bridge {
namespace {

xmpp::StanzaError to_stanza_error(const address::AddressError& e) {
    return {std::string(address::error_type(e.condition)),
            std::string(address::to_string(e.condition)), e.reason};
}

address::AddressConfig address_config(const core::Config& config) {
    address::AddressConfig a;
    a.component = config.xmpp.component;
    a.sip_domain = config.sip.domain;
    return a;
}

} // namespace

std::variant<std::string, xmpp::StanzaError> prompt_to_contact_jid(const std::string& prompt,
                                                                   const core::Config& config) {
    auto uri = address::parse_sip_address_prompt(prompt);
    if (!uri) return to_stanza_error(uri.error());
    uri->gr.clear(); // the contact is its address of record, not one device
    auto jid = address::sip_to_contact_jid(uri.value(), address_config(config));
    if (!jid) return to_stanza_error(jid.error());
    return address::bare_string(jid.value());
}

std::optional<std::pair<std::string, std::string>> check_addressing(const core::Config& config) {
    auto why = address::validate_config(address_config(config));
    if (!why) return std::nullopt;
    if (address::validate_config({config.xmpp.component, "example.org"}))
        return std::make_pair(std::string("xmpp.component"), *why);
    return std::make_pair(std::string("sip.domain"), *why);
}

Gateway::Gateway(core::EventLoop& loop, const core::Config& config)
    : config_(config), link_(loop, config.xmpp), resolver_(loop, config.dns),
      agent_(loop, config.sip),
      services_(
          config.xmpp.component,
          xmpp::ServiceInfo{
              .name = "xsgw", .version = XSGW_VERSION, .show_os = config.xmpp.version_show_os},
          [this](const std::string& prompt) { return prompt_to_contact_jid(prompt, config_); }),
      relay_(config_, link_, agent_, resolver_) {
    link_.set_stanza_handler([this](const gloox::Tag& stanza) { on_stanza(stanza); });
    agent_.set_message_handler([this](const sip::IncomingMessage& message, sip::Reply& reply) {
        relay_.from_sip(message, reply);
    });
}

void Gateway::start() {
    link_.start();
}

void Gateway::stop() {
    link_.stop();
}

void Gateway::reply(gloox::Tag* stanza, const gloox::Tag& request) {
    if (stanza == nullptr) return;
    if (!link_.send(stanza))
        spdlog::warn("xmpp: reply to id '{}' lost: link down", request.findAttribute("id"));
}

void Gateway::on_stanza(const gloox::Tag& stanza) {
    const std::string& name = stanza.name();
    spdlog::debug("xmpp: {} id='{}' type='{}' from {} to {}", name, stanza.findAttribute("id"),
                  stanza.findAttribute("type"), stanza.findAttribute("from"),
                  stanza.findAttribute("to"));
    if (name == "iq") {
        reply(services_.reply_to(stanza), stanza);
    } else if (name == "message") {
        relay_.from_xmpp(stanza);
    } else {
        // Presence is gatewayed by the presence work (issue 4); until then it is only noted.
        spdlog::debug("xmpp: presence type='{}' from {} not handled yet",
                      stanza.findAttribute("type"), stanza.findAttribute("from"));
    }
}

} // namespace xsgw::bridge
