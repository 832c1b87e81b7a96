// X9: the iq:gateway prompt mapped through the address rules with the real config types.
#include "xsgw/bridge/gateway.hpp"

#include <doctest/doctest.h>
#include <string>
#include <variant>

namespace {

xsgw::core::Config config() {
    xsgw::core::Config c;
    c.xmpp.component = "sip.test";
    c.sip.domain = "xmpp.test";
    return c;
}

} // namespace

TEST_CASE("X9 iq:gateway prompt: SIP address forms map to the contact's bare JID") {
    const struct {
        std::string prompt, jid;
    } rows[] = {
        {"alice@sip.example.org", "alice*sip.example.org@sip.test"},
        {"sip:alice@sip.example.org", "alice*sip.example.org@sip.test"},
        {"  <sip:alice@sip.example.org>  ", "alice*sip.example.org@sip.test"},
        {"sip:alice@sip.example.org;gr=phone", "alice*sip.example.org@sip.test"},
        {"sip:Alice@Sip.Example.org", "alice*sip.example.org@sip.test"},
        {"*67@example.org", "*67*example.org@sip.test"},
        {"sip:john%20doe@example.org", "john\\20doe*example.org@sip.test"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.prompt);
        auto out = xsgw::bridge::prompt_to_contact_jid(row.prompt, config());
        REQUIRE(std::holds_alternative<std::string>(out));
        CHECK(std::get<std::string>(out) == row.jid);
    }
}

TEST_CASE("X9 iq:gateway prompt: what is no SIP address is refused with a condition") {
    const struct {
        std::string prompt, condition;
    } rows[] = {
        {"no-at-sign", "jid-malformed"},
        {"", "jid-malformed"},
        {"sip:@example.org", "jid-malformed"},
        {"alice@", "jid-malformed"},
        {"sips:alice@example.org", "not-acceptable"},
        {"alice@exa\r\nmple.org", "jid-malformed"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.prompt);
        auto out = xsgw::bridge::prompt_to_contact_jid(row.prompt, config());
        REQUIRE(std::holds_alternative<xsgw::xmpp::StanzaError>(out));
        CHECK(std::get<xsgw::xmpp::StanzaError>(out).condition == row.condition);
        CHECK_FALSE(std::get<xsgw::xmpp::StanzaError>(out).text.empty());
    }
}

TEST_CASE("X9 config domains the address rules cannot use are named with their key") {
    auto c = config();
    CHECK_FALSE(xsgw::bridge::check_addressing(c).has_value());
    c.xmpp.component = "a*b.test";
    auto bad = xsgw::bridge::check_addressing(c);
    REQUIRE(bad.has_value());
    CHECK(bad->first == "xmpp.component");
    CHECK_FALSE(bad->second.empty());
    c = config();
    c.sip.domain = "x*y.test";
    bad = xsgw::bridge::check_addressing(c);
    REQUIRE(bad.has_value());
    CHECK(bad->first == "sip.domain");
}
