// The gateway's own XMPP services: disco, version, ping, iq:gateway (X6–X9).
#pragma once

#include "xsgw/xmpp/stanza.hpp"

#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace gloox {
class Tag;
}

namespace xsgw::xmpp {

/// What the gateway says about itself.
struct ServiceInfo {
    std::string name = "xsgw";
    std::string version;
    bool show_os = true;
    std::string gateway_desc =
        "Enter the SIP address of the contact (user@domain or sip:user@domain)";
    std::string gateway_prompt = "SIP address";
    std::vector<std::string> admins; ///< bare JIDs that may run the ad-hoc commands (XEP-0050)
    /// What a contact JID offers besides disco#info, version and ping (the Jingle features
    /// while calls are on): clients look for them before they offer a call.
    std::vector<std::string> contact_features;
};

/// The figures the "stats" ad-hoc command shows: (name, value) in order.
using StatsProvider = std::function<std::vector<std::pair<std::string, std::string>>()>;

/// Turns an iq:gateway prompt (a SIP address) into the contact's JID, or an error.
using GatewayPromptResolver =
    std::function<std::variant<std::string, StanzaError>(const std::string& prompt)>;

/// Answers every iq get/set addressed to the gateway exactly once (X8):
/// its own services, and service-unavailable for everything else. Knows no
/// socket: the caller sends what it returns.
class Services {
public:
    Services(std::string domain, ServiceInfo info, GatewayPromptResolver resolve);

    /// The one reply to an iq get/set (caller owns it); nullptr for results and errors,
    /// which are never answered.
    gloox::Tag* reply_to(const gloox::Tag& iq) const;
    /// The features disco#info lists: exactly what is implemented.
    /// Replaces what contact JIDs offer (ServiceInfo::contact_features), e.g. on reload.
    void set_contact_features(std::vector<std::string> features) {
        info_.contact_features = std::move(features);
    }
    static const std::vector<std::string>& features();
    /// Where the XEP-0050 "stats" command gets its figures.
    void set_stats_provider(StatsProvider provider) { stats_ = std::move(provider); }

private:
    gloox::Tag* domain_request(const gloox::Tag& iq, const gloox::Tag& payload, bool get) const;
    gloox::Tag* user_request(const gloox::Tag& iq, const gloox::Tag& payload, bool get) const;
    gloox::Tag* version_result(const gloox::Tag& iq) const;
    gloox::Tag* gateway_request(const gloox::Tag& iq, const gloox::Tag& payload, bool get) const;
    gloox::Tag* commands_items(const gloox::Tag& iq) const;
    gloox::Tag* command_request(const gloox::Tag& iq, const gloox::Tag& payload) const;
    bool is_admin(const gloox::Tag& iq) const;
    gloox::Tag* error(const gloox::Tag& iq, std::string type, std::string condition,
                      std::string text) const;

    std::string domain_;
    ServiceInfo info_;
    GatewayPromptResolver resolve_;
    std::string os_;
    StatsProvider stats_;
};

} // namespace xsgw::xmpp
