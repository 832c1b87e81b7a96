// S2: bytes as the XMPP server could send them after the handshake: gloox's parser
// turns them into stanzas, and the gateway's services must answer each without crashing.
#include "xsgw/bridge/gateway.hpp"
#include "xsgw/xmpp/services.hpp"

#include <gloox/parser.h>
#include <gloox/tag.h>
#include <gloox/taghandler.h>

#include <cstddef>
#include <cstdint>
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
    gloox::Parser parser(&sink);
    std::string input = "<stream:stream xmlns='jabber:component:accept' "
                        "xmlns:stream='http://etherx.jabber.org/streams' id='f'>";
    parser.feed(input);
    std::string bytes(reinterpret_cast<const char*>(data), size);
    parser.feed(bytes);
    return 0;
}
