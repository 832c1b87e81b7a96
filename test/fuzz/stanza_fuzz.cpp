// S2: bytes as the XMPP server could send them after the handshake: gloox's parser
// turns them into stanzas, and the gateway's services must answer each without crashing.
#include "component_stream.hpp"
#include "xsgw/bridge/gateway.hpp"
#include "xsgw/xmpp/services.hpp"

#include <cstddef>
#include <cstdint>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>
#include <string>

namespace {

class Sink final : public gloox::TagHandler {
public:
    Sink()
        : services_("sip.test", {.name = "xsgw", .version = "fuzz", .show_os = false},
                    [this](const std::string& prompt) {
                        return xsgw::bridge::prompt_to_contact_jid(prompt, config_);
                    }) {
        config_.xmpp.component = "sip.test";
        config_.sip.domain = "xmpp.test";
    }
    void handleTag(gloox::Tag* tag) override {
        if (tag == nullptr) return;
        for (const gloox::Tag* stanza : tag->children()) {
            if (stanza->name() != "iq") continue;
            std::unique_ptr<gloox::Tag> reply(services_.reply_to(*stanza));
            if (reply) (void)reply->xml();
        }
        if (tag->name() == "iq") {
            std::unique_ptr<gloox::Tag> reply(services_.reply_to(*tag));
            if (reply) (void)reply->xml();
        }
    }

private:
    xsgw::core::Config config_;
    xsgw::xmpp::Services services_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Sink sink;
    xsgw::fuzz::feed_component_stream(sink, data, size);
    return 0;
}
