// S2: sdp_to_jingle on any bytes, as written by either party. Besides
// surviving, what it reads must hold together (unique content names, a layout
// slot for each content, every value writable), and writing it back as SDP,
// as an offer and as the answer to its own layout, must give clean SDP
// (printable ASCII lines ended CRLF) that reads back as the same description:
// the gateway may carry a session through more than one hop.
#include "xsgw/translate/jingle.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace {

using namespace xsgw::translate;

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

// Printable ASCII lines, each ended CRLF, the first one v=0.
bool is_clean_sdp(std::string_view sdp) {
    if (sdp.substr(0, 5) != "v=0\r\n") {
        return false;
    }
    for (std::size_t i = 0; i < sdp.size(); ++i) {
        const auto c = static_cast<unsigned char>(sdp[i]);
        if (c == '\r') {
            if (i + 1 >= sdp.size() || sdp[i + 1] != '\n') {
                return false;
            }
            ++i;
        } else if (c < 0x20 || c >= 0x7F) {
            return false;
        }
    }
    return sdp.size() >= 2 && sdp.substr(sdp.size() - 2) == "\r\n";
}

void check_session(const SdpSession& session) {
    const auto& contents = session.description.contents;
    check(!contents.empty());
    std::set<std::string> names;
    std::size_t slots = 0;
    for (const auto& slot : session.layout) {
        check(slot.refused.rfind("m=", 0) == 0);
        if (!slot.content.empty()) {
            ++slots;
        }
    }
    check(slots == contents.size());
    for (const auto& c : contents) {
        check(!c.name.empty() && names.insert(c.name).second);
        check(c.media == "audio" || c.media == "video");
        check(!c.payloads.empty());
        for (const auto& p : c.payloads) {
            check(p.id <= 127 && !p.name.empty() && p.clockrate != 0 && p.channels != 0);
        }
        if (c.transport.kind == TransportKind::raw_udp) {
            check(!c.transport.candidates.empty() && c.transport.candidates[0].component == 1);
        }
    }
}

void check_round_trip(const SdpSession& session, SdpAuthor author) {
    SdpOrigin origin;
    origin.session_id = 1;
    const auto offer = jingle_to_sdp(session.description, author, origin);
    if (!offer) {
        // Only an ICE content without a pwd cannot be written back.
        check(!offer.error().what.empty() && offer.error().sip_status == 488);
        return;
    }
    check(is_clean_sdp(*offer));
    const auto again = sdp_to_jingle(*offer, author, std::size_t{1} << 24);
    check(again.has_value() && again->description == session.description);

    const auto answer = jingle_to_sdp(session.description, author, origin, &session.layout);
    check(answer.has_value() && is_clean_sdp(*answer));
    const auto back = sdp_to_jingle(*answer, author, std::size_t{1} << 24);
    check(back.has_value() && back->description == session.description);
    check(back->layout.size() == session.layout.size());
    for (std::size_t i = 0; i < back->layout.size(); ++i) {
        check(back->layout[i].content == session.layout[i].content);
        if (session.layout[i].content.empty()) {
            check(back->layout[i].refused == session.layout[i].refused);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    for (const auto author : {SdpAuthor::initiator, SdpAuthor::responder}) {
        const auto result = sdp_to_jingle(body, author);
        if (!result) {
            const auto& e = result.error();
            check(!e.what.empty() && std::all_of(e.what.begin(), e.what.end(), [](char c) {
                return static_cast<unsigned char>(c) >= 0x20 &&
                       static_cast<unsigned char>(c) < 0x7F;
            }));
            check((e.sip_status == 400 && e.jingle_reason == "failed-application") ||
                  (e.sip_status == 488 && e.jingle_reason == "unsupported-applications"));
            continue;
        }
        check_session(*result);
        check_round_trip(*result, author);
    }
    return 0;
}
