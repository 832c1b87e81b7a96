// S2: Jingle and XEP-0353 stanzas as the XMPP server could send them: gloox parses the bytes,
// read_jingle / read_jingle_message must take any stanza without crashing, and what they
// read must write and read back equal (the gateway writes Jingle it read), and go into
// an SDP offer or a clean error.
#include "component_stream.hpp"
#include "xsgw/bridge/stanza_jingle.hpp"
#include "xsgw/translate/jingle.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>
#include <string>

namespace {

using namespace xsgw::bridge;

void check(bool ok) {
    if (!ok) std::abort();
}

void exercise(const gloox::Tag& stanza) {
    if (stanza.name() == "message") {
        const auto jmi = read_jingle_message(stanza);
        if (!jmi) return;
        std::unique_ptr<gloox::Tag> out(
            make_jingle_message("a*b.example@sip.test/sip", "alice@xmpp.test", "m1", *jmi));
        check(out != nullptr);
        const auto again = read_jingle_message(*out);
        check(again.has_value() && *again == *jmi);
        return;
    }
    if (stanza.name() != "iq") return;
    const auto read = read_jingle(stanza);
    if (!read) return;
    if (!read->has_value()) {
        check(!read->error().condition.empty());
        return;
    }
    JingleIq jingle = read->value();
    std::unique_ptr<gloox::Tag> out(
        make_jingle_iq("a*b.example@sip.test", "alice@xmpp.test/r", "i1", jingle));
    check(out != nullptr);
    const auto again = read_jingle(*out);
    check(again.has_value() && again->has_value());
    JingleIq copy = again->value();
    // What is only read is never written.
    jingle.refused_contents.clear();
    jingle.refused_for_transport = false;
    jingle.unknown_info = false;
    if (jingle.action != JingleAction::other) jingle.action_name.clear();
    if (copy.action != JingleAction::other) copy.action_name.clear();
    check(copy == jingle);
    for (const auto author :
         {xsgw::translate::SdpAuthor::initiator, xsgw::translate::SdpAuthor::responder}) {
        const auto sdp = xsgw::translate::jingle_to_sdp(jingle.description, author, {});
        if (!sdp) {
            check(!sdp.error().what.empty());
            continue;
        }
        const auto back = xsgw::translate::sdp_to_jingle(*sdp, author);
        check(back.has_value() || !back.error().what.empty());
    }
}

class Sink final : public gloox::TagHandler {
public:
    void handleTag(gloox::Tag* tag) override {
        if (tag == nullptr) return;
        exercise(*tag);
        for (const gloox::Tag* child : tag->children())
            exercise(*child);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Sink sink;
    xsgw::fuzz::feed_component_stream(sink, data, size);
    return 0;
}
