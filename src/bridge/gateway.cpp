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
    : config_(config), link_(loop, config.xmpp),
      services_(
          config.xmpp.component,
          xmpp::ServiceInfo{
              .name = "xsgw", .version = XSGW_VERSION, .show_os = config.xmpp.version_show_os},
          [this](const std::string& prompt) { return prompt_to_contact_jid(prompt, config_); }) {
    link_.set_stanza_handler([this](const gloox::Tag& stanza) { on_stanza(stanza); });
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
        on_message(stanza);
    } else {
        // Presence is gatewayed by the presence work (issue 4); until then it is only noted.
        spdlog::debug("xmpp: presence type='{}' from {} not handled yet",
                      stanza.findAttribute("type"), stanza.findAttribute("from"));
    }
}

void Gateway::on_message(const gloox::Tag& message) {
    // No SIP side yet: tell the sender instead of dropping the message silently.
    auto* error = xmpp::make_error_reply(
        message, config_.xmpp.component,
        {"cancel", "service-unavailable", "this gateway does not relay messages to SIP yet"});
    if (error == nullptr) return; // never answer an error with an error (E4)
    spdlog::info("xmpp: message id='{}' from {} to {} refused: SIP messaging not available",
                 message.findAttribute("id"), message.findAttribute("from"),
                 message.findAttribute("to"));
    reply(error, message);
}

} // namespace xsgw::bridge
