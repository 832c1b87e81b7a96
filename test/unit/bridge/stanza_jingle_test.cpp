// gloox Jingle / JMI elements <-> translate's Jingle values (the XML side of issue 8).
#include "../parsed_stanza.hpp"
#include "xsgw/bridge/stanza_jingle.hpp"

#include <doctest/doctest.h>
#include <gloox/parser.h>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The tables below build values with designated initializers that leave members at their
// defaults on purpose; GCC 12 warns about each such member.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using xsgw::bridge::JingleAction;
using xsgw::bridge::JingleIq;
using xsgw::bridge::JingleMessage;
using xsgw::bridge::JmiKind;
using xsgw::test::Parsed;
using xsgw::translate::JingleCandidate;
using xsgw::translate::JingleContent;
using xsgw::translate::JingleCrypto;
using xsgw::translate::JingleFingerprint;
using xsgw::translate::JinglePayload;
using xsgw::translate::JingleTransport;
using xsgw::translate::RtcpFeedback;
using xsgw::translate::Senders;
using xsgw::translate::TransportKind;

TEST_SUITE_BEGIN("bridge/stanza_jingle");

namespace {

constexpr const char* fingerprint_value = "02:1A:CC:54:27:AB:EB:9C:53:3F:3E:4B:65:2E:7D:46:3F:54:"
                                          "42:CD:54:F1:7A:03:A2:7D:F9:B0:7F:46:19:B2";

// An iq set from a client to the gateway around a <jingle/> element.
std::string iq_around(const std::string& jingle) {
    return "<iq xmlns='jabber:component:accept' type='set' id='j1' "
           "from='alice@xmpp.test/Conversations.x1' to='bob*sip.test@gw.test'>" +
           jingle + "</iq>";
}

// A <jingle/> with the usual attributes around some content.
std::string jingle_around(const std::string& inner,
                          const std::string& action = "session-initiate") {
    return iq_around("<jingle xmlns='urn:xmpp:jingle:1' action='" + action +
                     "' sid='s1' initiator='alice@xmpp.test/Conversations.x1'>" + inner +
                     "</jingle>");
}

// One audio content with an ICE transport around a payload-type / candidate to vary.
std::string content_around(const std::string& description_inner,
                           const std::string& transport_inner = {}) {
    return jingle_around("<content creator='initiator' name='0'>"
                         "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>" +
                         description_inner +
                         "</description>"
                         "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' "
                         "ufrag='u1' pwd='p1'>" +
                         transport_inner + "</transport></content>");
}

std::optional<xsgw::Expected<JingleIq, xsgw::xmpp::StanzaError>> read_xml(const std::string& xml) {
    const Parsed parsed(xml);
    return xsgw::bridge::read_jingle(parsed.tag());
}

// The value of a stanza that must be well-formed Jingle.
JingleIq read_ok(const std::string& xml) {
    const auto read = read_xml(xml);
    REQUIRE(read.has_value());
    if (!read->has_value()) {
        FAIL("unexpected error: " << read->error().text);
    }
    return read->value();
}

// The Jingle of an iq we wrote: read from the Tag itself and from its serialised bytes,
// which must agree (namespaces have to survive the text).
JingleIq written_and_read(const JingleIq& jingle) {
    const std::unique_ptr<gloox::Tag> iq(
        xsgw::bridge::make_jingle_iq("bob*sip.test@gw.test", "alice@xmpp.test/pc", "w1", jingle));
    REQUIRE(iq != nullptr);
    CHECK(iq->name() == "iq");
    CHECK(iq->findAttribute("type") == "set");
    CHECK(iq->findAttribute("from") == "bob*sip.test@gw.test");
    CHECK(iq->findAttribute("to") == "alice@xmpp.test/pc");
    CHECK(iq->findAttribute("id") == "w1");
    const auto direct = xsgw::bridge::read_jingle(*iq);
    REQUIRE(direct.has_value());
    if (!direct->has_value()) {
        FAIL("written Jingle unreadable: " << direct->error().text);
    }
    JingleIq from_text = read_ok(iq->xml());
    CHECK(from_text == direct->value());
    return from_text;
}

// The written <jingle/> element as XML text.
std::string written_jingle_xml(const JingleIq& jingle) {
    const std::unique_ptr<gloox::Tag> iq(xsgw::bridge::make_jingle_iq("gw", "alice", "i1", jingle));
    const gloox::Tag* element = iq->findChild("jingle");
    REQUIRE(element != nullptr);
    return element->xml();
}

// A Conversations-like session-initiate: opus with rtcp-fb and parameters, ICE with a
// DTLS fingerprint, rtcp-mux, plus things we ignore (header extensions, sources, BUNDLE).
const std::string conversations_initiate = iq_around(
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='2p3TfWu6Ta0w9QjQ' "
    "initiator='alice@xmpp.test/Conversations.x1'>"
    "<content creator='initiator' name='0' senders='both'>"
    "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
    "<payload-type id='111' name='opus' clockrate='48000' channels='2'>"
    "<parameter name='minptime' value='10'/>"
    "<parameter name='useinbandfec' value='1'/>"
    "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>"
    "</payload-type>"
    "<payload-type id='63' name='red' clockrate='48000' channels='2'>"
    "<parameter value='111/111'/></payload-type>"
    "<payload-type id='9' name='G722' clockrate='8000'/>"
    "<payload-type id='0' name='PCMU' clockrate='8000'/>"
    "<payload-type id='8' name='PCMA' clockrate='8000'/>"
    "<payload-type id='126' name='telephone-event' clockrate='8000'/>"
    "<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' "
    "uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>"
    "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2116296478'>"
    "<parameter name='cname' value='gQ1tS/1f'/></source>"
    "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/>"
    "<rtcp-mux/>"
    "</description>"
    "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Tq6M' "
    "pwd='AeMlhDKfLN6ShuZUp6mbGYri'>"
    "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>\n  " +
    std::string(fingerprint_value) +
    "\n</fingerprint>"
    "<candidate component='1' foundation='2700226297' generation='0' id='c0' "
    "ip='192.168.1.7' network='1' port='45193' priority='2122260223' protocol='udp' "
    "type='host'/>"
    "<candidate component='1' foundation='842163049' generation='0' id='c1' "
    "ip='198.51.100.7' network='1' port='45193' priority='1686052607' protocol='udp' "
    "type='srflx' rel-addr='192.168.1.7' rel-port='45193'/>"
    "</transport>"
    "</content>"
    "<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='0'/>"
    "</group>"
    "</jingle>");

JingleContent conversations_audio() {
    JingleContent c;
    c.creator = "initiator";
    c.name = "0";
    c.media = "audio";
    c.payloads = {
        JinglePayload{.id = 111,
                      .name = "opus",
                      .clockrate = 48000,
                      .channels = 2,
                      .parameters = {{"minptime", "10"}, {"useinbandfec", "1"}},
                      .feedback = {RtcpFeedback{.type = "transport-cc"}}},
        JinglePayload{.id = 63,
                      .name = "red",
                      .clockrate = 48000,
                      .channels = 2,
                      .parameters = {{"", "111/111"}}},
        JinglePayload{.id = 9, .name = "G722", .clockrate = 8000},
        JinglePayload{.id = 0, .name = "PCMU", .clockrate = 8000},
        JinglePayload{.id = 8, .name = "PCMA", .clockrate = 8000},
        JinglePayload{.id = 126, .name = "telephone-event", .clockrate = 8000},
    };
    c.feedback = {RtcpFeedback{.type = "nack", .subtype = "pli"}};
    c.rtcp_mux = true;
    c.transport.kind = TransportKind::ice_udp;
    c.transport.ufrag = "Tq6M";
    c.transport.pwd = "AeMlhDKfLN6ShuZUp6mbGYri";
    c.transport.candidates = {
        JingleCandidate{.component = 1,
                        .foundation = "2700226297",
                        .id = "c0",
                        .ip = "192.168.1.7",
                        .network = 1,
                        .port = 45193,
                        .priority = 2122260223},
        JingleCandidate{.component = 1,
                        .foundation = "842163049",
                        .id = "c1",
                        .ip = "198.51.100.7",
                        .network = 1,
                        .port = 45193,
                        .priority = 1686052607,
                        .type = "srflx",
                        .rel_addr = "192.168.1.7",
                        .rel_port = 45193},
    };
    c.transport.fingerprint =
        JingleFingerprint{.hash = "sha-256", .setup = "actpass", .value = fingerprint_value};
    return c;
}

// XEP-0177 raw UDP with SDES (XEP-0167 §7 examples): what older clients and Jitsi sent.
const std::string raw_udp_initiate = iq_around(
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='a73sjjvkla37jfea' "
    "initiator='romeo@montague.lit/orchard'>"
    "<content creator='initiator' name='voice'>"
    "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
    "<payload-type id='96' name='speex' clockrate='16000' ptime='20' maxptime='40'/>"
    "<payload-type id='97' name='speex' clockrate='8000'/>"
    "<payload-type id='18' name='G729'><parameter name='annexb' value='yes'/></payload-type>"
    "<payload-type id='101' name='telephone-event' clockrate='8000'>"
    "<parameter name='events' value='0-15'/></payload-type>"
    "<encryption required='1'>"
    "<crypto crypto-suite='AES_CM_128_HMAC_SHA1_80' "
    "key-params='inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32' "
    "session-params='KDR=1 UNENCRYPTED_SRTCP' tag='1'/>"
    "</encryption>"
    "</description>"
    "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'>"
    "<candidate component='1' generation='0' id='a9j3mnbtu1' ip='10.1.1.104' port='13540'/>"
    "<candidate component='2' generation='0' id='a9j3mnbtu2' ip='10.1.1.104' port='13541' "
    "type='host'/>"
    "</transport>"
    "</content>"
    "</jingle>");

JingleIq raw_udp_expected() {
    JingleIq j;
    j.action = JingleAction::session_initiate;
    j.action_name = "session-initiate";
    j.sid = "a73sjjvkla37jfea";
    j.initiator = "romeo@montague.lit/orchard";
    JingleContent c;
    c.name = "voice";
    c.media = "audio";
    c.payloads = {
        JinglePayload{.id = 96, .name = "speex", .clockrate = 16000, .ptime = 20, .maxptime = 40},
        JinglePayload{.id = 97, .name = "speex", .clockrate = 8000},
        JinglePayload{.id = 18, .name = "G729", .parameters = {{"annexb", "yes"}}},
        JinglePayload{.id = 101,
                      .name = "telephone-event",
                      .clockrate = 8000,
                      .parameters = {{"events", "0-15"}}},
    };
    c.crypto = {
        JingleCrypto{.tag = 1,
                     .suite = "AES_CM_128_HMAC_SHA1_80",
                     .key_params = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32",
                     .session_params = "KDR=1 UNENCRYPTED_SRTCP"}};
    c.crypto_required = true;
    c.transport.kind = TransportKind::raw_udp;
    c.transport.candidates = {
        JingleCandidate{.component = 1, .id = "a9j3mnbtu1", .ip = "10.1.1.104", .port = 13540},
        JingleCandidate{.component = 2, .id = "a9j3mnbtu2", .ip = "10.1.1.104", .port = 13541},
    };
    j.description.contents = {c};
    return j;
}

} // namespace

TEST_CASE("J-XML action names: the five handled ones both ways, the other ten defined") {
    struct Row {
        std::string_view name;
        JingleAction action;
        bool defined;
    };
    const Row rows[] = {
        {"session-initiate", JingleAction::session_initiate, true},
        {"session-accept", JingleAction::session_accept, true},
        {"session-info", JingleAction::session_info, true},
        {"session-terminate", JingleAction::session_terminate, true},
        {"transport-info", JingleAction::transport_info, true},
        {"content-accept", JingleAction::other, true},
        {"content-add", JingleAction::other, true},
        {"content-modify", JingleAction::other, true},
        {"content-reject", JingleAction::other, true},
        {"content-remove", JingleAction::other, true},
        {"description-info", JingleAction::other, true},
        {"security-info", JingleAction::other, true},
        {"transport-accept", JingleAction::other, true},
        {"transport-reject", JingleAction::other, true},
        {"transport-replace", JingleAction::other, true},
        {"", JingleAction::other, false},
        {"Session-Initiate", JingleAction::other, false},
        {"session-initiate ", JingleAction::other, false},
        {"session_initiate", JingleAction::other, false},
        {"ringing", JingleAction::other, false},
    };
    for (const Row& row : rows) {
        CAPTURE(row.name);
        CHECK(xsgw::bridge::parse_jingle_action(row.name) == row.action);
        CHECK(xsgw::bridge::is_jingle_action(row.name) == row.defined);
        if (row.action != JingleAction::other) {
            CHECK(xsgw::bridge::to_string(row.action) == row.name);
        }
    }
    CHECK(xsgw::bridge::to_string(JingleAction::other).empty());
}

TEST_CASE("J-XML session-initiate from a Conversations-like client: opus, ICE, DTLS, rtcp-fb") {
    const JingleIq j = read_ok(conversations_initiate);
    CHECK(j.action == JingleAction::session_initiate);
    CHECK(j.action_name == "session-initiate");
    CHECK(j.sid == "2p3TfWu6Ta0w9QjQ");
    CHECK(j.initiator == "alice@xmpp.test/Conversations.x1");
    CHECK(j.responder.empty());
    CHECK(j.refused_contents.empty());
    CHECK_FALSE(j.refused_for_transport);
    CHECK(j.reason.empty());
    CHECK(j.info.empty());
    CHECK_FALSE(j.unknown_info); // <group/> is not a session-info payload
    REQUIRE(j.description.contents.size() == 1);
    const JingleContent& c = j.description.contents.front();
    const JingleContent expected = conversations_audio();
    CHECK(c.name == "0");
    CHECK(c.senders == Senders::both);
    CHECK(c.media == "audio");
    REQUIRE(c.payloads.size() == 6);
    CHECK(c.payloads[0] == expected.payloads[0]);
    CHECK(c.payloads[1].parameters == expected.payloads[1].parameters); // no name: ""
    CHECK(c.feedback == expected.feedback); // the ssma <parameter/> is not a payload's
    CHECK(c.rtcp_mux);
    CHECK(c.transport.kind == TransportKind::ice_udp);
    CHECK(c.transport.candidates == expected.transport.candidates);
    REQUIRE(c.transport.fingerprint.has_value());
    CHECK(c.transport.fingerprint->value == fingerprint_value); // white space around trimmed
    CHECK(c == expected);
}

TEST_CASE("J-XML session-initiate over raw UDP with SDES crypto, ptime and maxptime") {
    const JingleIq j = read_ok(raw_udp_initiate);
    REQUIRE(j.description.contents.size() == 1);
    const JingleContent& c = j.description.contents.front();
    CHECK(c.transport.kind == TransportKind::raw_udp);
    CHECK(c.transport.candidates.size() == 2);
    CHECK(c.crypto_required);
    CHECK(c.payloads.front().ptime == 20u);
    CHECK(c.payloads.front().maxptime == 40u);
    CHECK(j == raw_udp_expected());
}

TEST_CASE(
    "J-XML transport-info from a Dino-like client keeps the content with only its transport") {
    const JingleIq j = read_ok(iq_around(
        "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='vP6Z1ZtJ'>"
        "<content creator='initiator' name='audio'>"
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Xg5e' "
        "pwd='kOu2yD8lMDRwZ7Gf6xX0Sm'>"
        "<candidate component='1' foundation='1' generation='0' id='cq7h' ip='2001:db8::5' "
        "network='0' port='50312' priority='2015363327' protocol='udp' type='host'/>"
        "<candidate component='2' foundation='1' generation='0' id='cq7i' ip='2001:db8::5' "
        "network='0' port='50313' priority='2015363326' protocol='udp' type='host'/>"
        "</transport></content>"
        "<content creator='responder' name='video'>"
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Xg5e' "
        "pwd='kOu2yD8lMDRwZ7Gf6xX0Sm'>"
        "<candidate component='1' foundation='3' generation='0' id='cq7j' ip='203.0.113.9' "
        "network='0' port='3478' priority='16777215' protocol='udp' type='relay' "
        "rel-addr='198.51.100.2' rel-port='41000'/>"
        "</transport></content>"
        "</jingle>"));
    CHECK(j.action == JingleAction::transport_info);
    CHECK(j.initiator.empty());
    REQUIRE(j.description.contents.size() == 2);
    const JingleContent& audio = j.description.contents[0];
    CHECK(audio.name == "audio");
    CHECK(audio.media.empty()); // no description: the bridge merges by content name
    CHECK(audio.payloads.empty());
    CHECK(audio.transport.kind == TransportKind::ice_udp);
    CHECK(audio.transport.ufrag == "Xg5e");
    CHECK(audio.transport.candidates ==
          std::vector<JingleCandidate>{JingleCandidate{.component = 1,
                                                       .foundation = "1",
                                                       .id = "cq7h",
                                                       .ip = "2001:db8::5",
                                                       .port = 50312,
                                                       .priority = 2015363327},
                                       JingleCandidate{.component = 2,
                                                       .foundation = "1",
                                                       .id = "cq7i",
                                                       .ip = "2001:db8::5",
                                                       .port = 50313,
                                                       .priority = 2015363326}});
    const JingleContent& video = j.description.contents[1];
    CHECK(video.creator == "responder");
    REQUIRE(video.transport.candidates.size() == 1);
    CHECK(video.transport.candidates[0].type == "relay");
    CHECK(video.transport.candidates[0].rel_addr == "198.51.100.2");
    CHECK(video.transport.candidates[0].rel_port == 41000);
}

TEST_CASE("J-XML session-terminate reasons: condition, text, none, extra elements ignored") {
    struct Row {
        std::string inner;
        std::string reason;
        std::string text;
    };
    const Row rows[] = {
        {"<reason><busy/></reason>", "busy", ""},
        {"<reason><decline/><text>Not now</text></reason>", "decline", "Not now"},
        {"<reason><text>Bye</text><success/></reason>", "success", "Bye"},
        {"<reason><success/><text>Thanks</text>"
         "<call-ended xmlns='urn:example:app'/></reason>",
         "success", "Thanks"},
        {"<reason><alternative-session><sid>b84tkkwlmb48kgfb</sid></alternative-session>"
         "</reason>",
         "alternative-session", ""},
        {"<reason><failed-application/><incompatible-parameters/></reason>", "failed-application",
         ""},
        {"<reason><cancel/></reason><reason><busy/></reason>", "cancel", ""},
        {"<reason/>", "", ""},
        {"", "", ""},
        {"<reason xmlns='urn:example:other'><busy/></reason>", "", ""},
    };
    for (const Row& row : rows) {
        CAPTURE(row.inner);
        const JingleIq j = read_ok(jingle_around(row.inner, "session-terminate"));
        CHECK(j.action == JingleAction::session_terminate);
        CHECK(j.reason == row.reason);
        CHECK(j.reason_text == row.text);
        CHECK(j.description.contents.empty());
    }
}

TEST_CASE("J-XML session-info: the six RTP payloads, a ping, and unknown payloads") {
    struct Row {
        std::string inner;
        std::string info;
        bool unknown;
    };
    const std::string rtp_info = " xmlns='urn:xmpp:jingle:apps:rtp:info:1'";
    const Row rows[] = {
        {"<ringing" + rtp_info + "/>", "ringing", false},
        {"<active" + rtp_info + "/>", "active", false},
        {"<hold" + rtp_info + "/>", "hold", false},
        {"<unhold" + rtp_info + "/>", "unhold", false},
        {"<mute" + rtp_info + " creator='responder' name='voice'/>", "mute", false},
        {"<unmute" + rtp_info + " creator='responder' name='voice'/>", "unmute", false},
        {"", "", false}, // a session ping
        {"<ringing xmlns='urn:example:other'/>", "", true},
        {"<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>", "", true},
        {"<dance" + rtp_info + "/>", "", true},
        {"<ringing" + rtp_info + "/><hold" + rtp_info + "/>", "ringing", false},
    };
    for (const Row& row : rows) {
        CAPTURE(row.inner);
        const JingleIq j = read_ok(jingle_around(row.inner, "session-info"));
        CHECK(j.action == JingleAction::session_info);
        CHECK(j.info == row.info);
        CHECK(j.unknown_info == row.unknown);
    }
    // Outside session-info, foreign children are extensions, not info payloads.
    const JingleIq accept =
        read_ok(jingle_around("<ringing" + rtp_info + "/><x xmlns='urn:a'/>", "session-accept"));
    CHECK_FALSE(accept.unknown_info);
}

TEST_CASE("J-XML contents that are not RTP over ICE / raw UDP are refused, by name") {
    const std::string rtp = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
                            "<payload-type id='0' name='PCMU' clockrate='8000'/></description>";
    const std::string ft = "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>"
                           "<file><name>a.txt</name></file></description>";
    const std::string ice = "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' "
                            "ufrag='u' pwd='p'/>";
    const std::string s5b = "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='x'/>";
    const std::string ibb = "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' "
                            "block-size='4096' sid='y'/>";
    auto content = [](const std::string& name, const std::string& inner) {
        return "<content creator='initiator' name='" + name + "'>" + inner + "</content>";
    };
    struct Row {
        std::string label;
        std::string inner;
        std::vector<std::string> kept;
        std::vector<std::string> refused;
        bool for_transport;
    };
    const Row rows[] = {
        {"usable", content("a", rtp + ice), {"a"}, {}, false},
        {"file transfer", content("f", ft + s5b), {}, {"f"}, false},
        {"file transfer over ICE", content("f", ft + ice), {}, {"f"}, false},
        {"RTP over s5b", content("a", rtp + s5b), {}, {"a"}, true},
        {"RTP over ibb next to a usable one",
         content("v", rtp + ibb) + content("a", rtp + ice),
         {"a"},
         {"v"},
         true},
        {"description in the Jingle namespace",
         content("x", "<description media='audio'/>" + ice),
         {},
         {"x"},
         false},
        {"no description (transport-info)", content("t", ice), {"t"}, {}, false},
        {"no transport", content("n", rtp), {"n"}, {}, false},
        {"neither", content("e", ""), {"e"}, {}, false},
        {"first description counts", content("d", rtp + ft + ice), {"d"}, {}, false},
    };
    for (const Row& row : rows) {
        CAPTURE(row.label);
        const JingleIq j = read_ok(jingle_around(row.inner));
        std::vector<std::string> kept;
        for (const JingleContent& c : j.description.contents) {
            kept.push_back(c.name);
        }
        CHECK(kept == row.kept);
        CHECK(j.refused_contents == row.refused);
        CHECK(j.refused_for_transport == row.for_transport);
    }
    const JingleIq no_transport = read_ok(jingle_around(content("n", rtp)));
    CHECK(no_transport.description.contents.at(0).transport == JingleTransport{});
}

TEST_CASE("J-XML stanzas without a Jingle element of urn:xmpp:jingle:1 give nullopt") {
    const std::string rows[] = {
        iq_around("<ping xmlns='urn:xmpp:ping'/>"),
        iq_around(""),
        iq_around("<jingle xmlns='urn:xmpp:jingle:0' action='session-initiate' sid='s'/>"),
        iq_around("<jingle action='session-initiate' sid='s'/>"),
        iq_around("<query xmlns='urn:xmpp:jingle:1'/>"),
        "<message from='a@b' to='c@d'><body>hi</body></message>",
    };
    for (const std::string& xml : rows) {
        CAPTURE(xml);
        CHECK_FALSE(read_xml(xml).has_value());
    }
    // It must be a child of the stanza, not a deeper descendant.
    CHECK_FALSE(read_xml(iq_around("<wrap xmlns='urn:a'><jingle xmlns='urn:xmpp:jingle:1' "
                                   "action='session-initiate' sid='s'/></wrap>"))
                    .has_value());
}

TEST_CASE("J-XML malformed Jingle is bad-request with a text, never a crash") {
    struct Row {
        std::string label;
        std::string xml;
        std::string text_has; ///< a part of the error text
    };
    const auto payload = [](const std::string& attributes) {
        return content_around("<payload-type " + attributes + "/>");
    };
    const auto candidate = [](const std::string& attributes) {
        return content_around("<payload-type id='0'/>", "<candidate " + attributes + "/>");
    };
    const std::string good_candidate_start = "component='1' foundation='1' generation='0' "
                                             "id='c' network='0' priority='1' protocol='udp' "
                                             "type='host' ";
    const auto raw_candidate = [](const std::string& attributes) {
        return jingle_around("<content creator='initiator' name='0'>"
                             "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'>"
                             "<candidate " +
                             attributes + "/></transport></content>");
    };
    const auto crypto = [](const std::string& encryption_attributes,
                           const std::string& crypto_attributes) {
        return content_around("<encryption " + encryption_attributes + "><crypto " +
                              crypto_attributes + "/></encryption>");
    };
    const auto fingerprint = [](const std::string& attributes, const std::string& value) {
        return content_around("", "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' " + attributes +
                                      ">" + value + "</fingerprint>");
    };
    const std::string j = "<jingle xmlns='urn:xmpp:jingle:1' ";
    const std::string suite = "crypto-suite='AES_CM_128_HMAC_SHA1_80' ";
    const std::string key = "key-params='inline:abc' ";
    const Row rows[] = {
        {"no action", iq_around(j + "sid='s'/>"), "action"},
        {"empty action", iq_around(j + "action='' sid='s'/>"), "action"},
        {"undefined action", iq_around(j + "action='session-dance' sid='s'/>"), "action"},
        {"action in capitals", iq_around(j + "action='SESSION-INITIATE' sid='s'/>"), "action"},
        {"no sid", iq_around(j + "action='session-initiate'/>"), "sid"},
        {"empty sid", iq_around(j + "action='session-terminate' sid=''/>"), "sid"},
        {"sid with a space", iq_around(j + "action='session-terminate' sid='a b'/>"), "sid"},
        {"sid with a line break", iq_around(j + "action='session-info' sid='a&#10;b'/>"), "sid"},
        {"initiator with a line break",
         iq_around(j + "action='session-info' sid='s' initiator='a@b/c&#13;&#10;d'/>"),
         "initiator"},
        {"content without name", jingle_around("<content creator='initiator'/>"), "name"},
        {"content with empty name", jingle_around("<content creator='initiator' name=''/>"),
         "name"},
        {"content name with a space", jingle_around("<content name='a b'/>"), "name"},
        {"content of an unknown creator", jingle_around("<content creator='both' name='a'/>"),
         "creator"},
        {"content of unknown senders", jingle_around("<content name='a' senders='all'/>"),
         "senders"},
        {"content of senders in capitals", jingle_around("<content name='a' senders='Both'/>"),
         "senders"},
        {"description without media",
         jingle_around("<content name='a'>"
                       "<description xmlns='urn:xmpp:jingle:apps:rtp:1'/></content>"),
         "media"},
        {"media with a space",
         jingle_around("<content name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' "
                       "media='audio video'/></content>"),
         "media"},
        {"payload-type without id", payload("name='PCMU'"), "id"},
        {"payload-type with id 128", payload("id='128'"), "id"},
        {"payload-type with id -1", payload("id='-1'"), "id"},
        {"payload-type with id +8", payload("id='+8'"), "id"},
        {"payload-type with id ' 8'", payload("id=' 8'"), "id"},
        {"payload-type with id 1.5", payload("id='1.5'"), "id"},
        {"payload-type with id abc", payload("id='abc'"), "id"},
        {"payload-type with a huge id", payload("id='99999999999999999999999'"), "id"},
        {"payload-type with a bad clockrate", payload("id='0' clockrate='48k'"), "clockrate"},
        {"payload-type with a clockrate over 32 bits", payload("id='0' clockrate='4294967296'"),
         "clockrate"},
        {"payload-type with 0 channels", payload("id='0' channels='0'"), "channels"},
        {"payload-type with 256 channels", payload("id='0' channels='256'"), "channels"},
        {"payload-type with a bad ptime", payload("id='0' ptime='twenty'"), "ptime"},
        {"payload-type with a negative maxptime", payload("id='0' maxptime='-20'"), "maxptime"},
        {"payload-type name with a space", payload("id='0' name='PC MU'"), "name"},
        {"parameter value with a line break",
         content_around("<payload-type id='0'><parameter name='a' value='1&#13;&#10;a=x'/>"
                        "</payload-type>"),
         "value"},
        {"parameter name with a space",
         content_around("<payload-type id='0'><parameter name='a b' value='1'/></payload-type>"),
         "name"},
        {"rtcp-fb type with a space",
         content_around("<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack pli'/>"),
         "type"},
        {"candidate without port", candidate(good_candidate_start + "ip='192.0.2.1'"), "port"},
        {"candidate with port 65536",
         candidate(good_candidate_start + "ip='192.0.2.1' port='65536'"), "port"},
        {"candidate with port -1", candidate(good_candidate_start + "ip='192.0.2.1' port='-1'"),
         "port"},
        {"candidate with port http", candidate(good_candidate_start + "ip='192.0.2.1' port='http'"),
         "port"},
        {"candidate without ip", candidate(good_candidate_start + "port='5000'"), "ip"},
        {"candidate with ip and a line",
         candidate(good_candidate_start + "ip='192.0.2.1&#13;&#10;a=x' port='5000'"), "ip"},
        {"candidate of component 0",
         candidate("component='0' ip='192.0.2.1' port='5000' priority='1'"), "component"},
        {"candidate of component 257",
         candidate("component='257' ip='192.0.2.1' port='5000' priority='1'"), "component"},
        {"candidate with a priority over 32 bits",
         candidate("ip='192.0.2.1' port='5000' priority='4294967296'"), "priority"},
        {"candidate with a bad generation", candidate("ip='192.0.2.1' port='5000' generation='x'"),
         "generation"},
        {"candidate with a bad network", candidate("ip='192.0.2.1' port='5000' network='-'"),
         "network"},
        {"candidate with a bad rel-port",
         candidate("ip='192.0.2.1' port='5000' type='srflx' rel-addr='10.0.0.1' "
                   "rel-port='70000'"),
         "rel-port"},
        {"candidate with a type of two words",
         candidate("ip='192.0.2.1' port='5000' type='host a=x'"), "type"},
        {"raw-udp candidate with a bad port",
         raw_candidate("component='1' generation='0' id='a' ip='10.0.0.1' port='1e3'"), "port"},
        {"raw-udp candidate without ip", raw_candidate("component='1' port='5000'"), "ip"},
        {"ufrag with a space",
         jingle_around("<content name='a'><transport "
                       "xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='a b' pwd='p'/>"
                       "</content>"),
         "ufrag"},
        {"pwd with a line break",
         jingle_around("<content name='a'><transport "
                       "xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p&#10;'/>"
                       "</content>"),
         "pwd"},
        {"encryption required maybe", crypto("required='maybe'", suite + key + "tag='1'"),
         "required"},
        {"crypto without tag", crypto("", suite + key), "tag"},
        {"crypto with a bad tag", crypto("", suite + key + "tag='one'"), "tag"},
        {"crypto with a tag of ten digits", crypto("", suite + key + "tag='1234567890'"), "tag"},
        {"crypto without suite", crypto("", key + "tag='1'"), "crypto-suite"},
        {"crypto without key-params", crypto("required='true'", suite + "tag='1'"), "key-params"},
        {"crypto session-params with a line",
         crypto("", suite + key + "tag='1' session-params='KDR=1&#10;a=x'"), "session-params"},
        {"fingerprint without hash", fingerprint("setup='actpass'", fingerprint_value),
         "fingerprint"},
        {"fingerprint without value", fingerprint("hash='sha-256' setup='actpass'", "  "),
         "fingerprint"},
        {"fingerprint with a line inside",
         fingerprint("hash='sha-256' setup='actpass'", "AB:CD&#10;a=x"), "fingerprint"},
        {"fingerprint setup with a space", fingerprint("hash='sha-256' setup='act pass'", "AB"),
         "setup"},
        {"the first bad content of several",
         jingle_around("<content name='ok'/><content creator='initiator'/>"), "name"},
    };
    for (const Row& row : rows) {
        CAPTURE(row.label);
        const auto read = read_xml(row.xml);
        REQUIRE(read.has_value());
        REQUIRE_FALSE(read->has_value());
        CHECK(read->error().type == "modify");
        CHECK(read->error().condition == "bad-request");
        CHECK(read->error().text.find(row.text_has) != std::string::npos);
    }
}

TEST_CASE("J-XML lenient on what costs nothing: missing creator, senders, empty attributes") {
    const JingleIq j = read_ok(jingle_around(
        "<content name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
        "<payload-type id='0' clockrate='' ptime=''><parameter/><parameter name='x'/>"
        "</payload-type><rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0'/>"
        "<encryption/><unknown/></description>"
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>"
        "<candidate ip='192.0.2.1' port='0'/><remote-candidate component='1' ip='1' port='2'/>"
        "</transport><security xmlns='urn:example:sec'/></content>"));
    REQUIRE(j.description.contents.size() == 1);
    const JingleContent& c = j.description.contents[0];
    CHECK(c.creator == "initiator");
    CHECK(c.senders == Senders::both);
    REQUIRE(c.payloads.size() == 1);
    CHECK(c.payloads[0] == JinglePayload{.id = 0, .parameters = {{"x", ""}}});
    CHECK(c.feedback.empty()); // an rtcp-fb without type says nothing
    CHECK(c.crypto.empty());
    CHECK_FALSE(c.crypto_required);
    CHECK(c.transport.candidates ==
          std::vector<JingleCandidate>{JingleCandidate{.ip = "192.0.2.1", .port = 0}});
}

TEST_CASE("J-XML round trips: read_jingle(make_jingle_iq(x)) == x") {
    JingleIq initiate;
    initiate.action = JingleAction::session_initiate;
    initiate.action_name = "session-initiate";
    initiate.sid = "2p3TfWu6Ta0w9QjQ";
    initiate.initiator = "bob*sip.test@gw.test/sip";
    JingleContent video = conversations_audio();
    video.name = "1";
    video.media = "video";
    video.senders = Senders::initiator;
    video.payloads = {
        JinglePayload{.id = 96,
                      .name = "VP8",
                      .clockrate = 90000,
                      .feedback = {RtcpFeedback{.type = "goog-remb"},
                                   RtcpFeedback{.type = "ccm", .subtype = "fir"},
                                   RtcpFeedback{.type = "nack"}}},
        JinglePayload{.id = 97, .name = "rtx", .clockrate = 90000, .parameters = {{"apt", "96"}}}};
    initiate.description.contents = {conversations_audio(), video};

    JingleIq accept;
    accept.action = JingleAction::session_accept;
    accept.action_name = "session-accept";
    accept.sid = "s-9";
    accept.initiator = "alice@xmpp.test/pc";
    accept.responder = "bob*sip.test@gw.test/sip";
    JingleContent answer = conversations_audio();
    answer.senders = Senders::none;
    answer.transport.fingerprint->setup = "active";
    answer.payloads.resize(1);
    answer.payloads[0].ptime = 20;
    answer.payloads[0].maxptime = 120;
    answer.payloads[0].channels = 6;
    accept.description.contents = {answer};

    JingleIq sdes = raw_udp_expected();
    sdes.description.contents[0].creator = "responder";
    sdes.description.contents[0].senders = Senders::responder;
    sdes.description.contents[0].crypto.push_back(
        JingleCrypto{.tag = 2, .suite = "AES_CM_128_HMAC_SHA1_32", .key_params = "inline:xyz"});

    JingleIq transport_info;
    transport_info.action = JingleAction::transport_info;
    transport_info.action_name = "transport-info";
    transport_info.sid = "s-9";
    JingleContent candidates_only;
    candidates_only.name = "0";
    candidates_only.transport = conversations_audio().transport;
    candidates_only.transport.fingerprint.reset();
    transport_info.description.contents = {candidates_only};

    JingleIq terminate;
    terminate.action = JingleAction::session_terminate;
    terminate.action_name = "session-terminate";
    terminate.sid = "s-9";
    terminate.reason = "busy";
    terminate.reason_text = "486 Busy Here <from the SIP side> & more";

    JingleIq terminate_bare = terminate;
    terminate_bare.reason = "success";
    terminate_bare.reason_text.clear();

    JingleIq ringing;
    ringing.action = JingleAction::session_info;
    ringing.action_name = "session-info";
    ringing.sid = "s-9";
    ringing.info = "ringing";

    JingleIq ping = ringing;
    ping.info.clear();

    JingleIq content_add = accept;
    content_add.action = JingleAction::other;
    content_add.action_name = "content-add";

    JingleIq utf8 = terminate;
    utf8.reason_text = "Besetzt – später";
    utf8.description.contents = {candidates_only};
    utf8.description.contents[0].name = "audio-é";

    JingleIq no_candidates = initiate;
    no_candidates.description.contents[0].transport.candidates.clear();
    no_candidates.description.contents[0].payloads[0].parameters = {{"", "0-15"}};

    struct Row {
        std::string label;
        JingleIq value;
    };
    const Row rows[] = {
        {"Conversations-like session-initiate, audio and video", initiate},
        {"session-accept with senders none, ptime, maxptime, 6 channels", accept},
        {"raw UDP with two SDES keys, creator responder", sdes},
        {"transport-info", transport_info},
        {"session-terminate with text", terminate},
        {"session-terminate without text", terminate_bare},
        {"session-info ringing", ringing},
        {"session-info ping", ping},
        {"content-add (other)", content_add},
        {"UTF-8 names and text", utf8},
        {"no candidates, a parameter without name", no_candidates},
    };
    for (const Row& row : rows) {
        CAPTURE(row.label);
        CHECK(written_and_read(row.value) == row.value);
    }
}

TEST_CASE("J-XML writing: the action from the enum when action_name is empty") {
    JingleIq j;
    j.action = JingleAction::session_terminate;
    j.sid = "s";
    j.reason = "cancel";
    const JingleIq read = written_and_read(j);
    CHECK(read.action == JingleAction::session_terminate);
    CHECK(read.action_name == "session-terminate");
    // action_name wins over action: it is what was received.
    j.action = JingleAction::other;
    j.action_name = "session-terminate";
    CHECK(written_and_read(j).action == JingleAction::session_terminate);
}

TEST_CASE("J-XML writing: exact elements, optional attributes only when they say something") {
    JingleIq accept;
    accept.action = JingleAction::session_accept;
    accept.sid = "s1";
    accept.responder = "bob@gw.test/sip";
    JingleContent c;
    c.name = "audio";
    c.media = "audio";
    c.payloads = {JinglePayload{.id = 0, .name = "PCMU", .clockrate = 8000},
                  JinglePayload{.id = 111,
                                .name = "opus",
                                .clockrate = 48000,
                                .channels = 2,
                                .parameters = {{"useinbandfec", "1"}}}};
    c.transport.kind = TransportKind::ice_udp;
    c.transport.ufrag = "u";
    c.transport.pwd = "p";
    c.transport.candidates = {JingleCandidate{
        .foundation = "1", .id = "c1", .ip = "192.0.2.1", .port = 5000, .priority = 2130706431}};
    accept.description.contents = {c};
    CHECK(written_jingle_xml(accept) ==
          "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' responder='bob@gw.test/sip' "
          "sid='s1'><content creator='initiator' name='audio'>"
          "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
          "<payload-type id='0' name='PCMU' clockrate='8000'/>"
          "<payload-type id='111' name='opus' clockrate='48000' channels='2'>"
          "<parameter name='useinbandfec' value='1'/></payload-type></description>"
          "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'>"
          "<candidate component='1' foundation='1' generation='0' id='c1' ip='192.0.2.1' "
          "network='0' port='5000' priority='2130706431' protocol='udp' type='host'/>"
          "</transport></content></jingle>");

    JingleIq sdes = raw_udp_expected();
    sdes.description.contents[0].payloads.resize(1);
    sdes.description.contents[0].senders = Senders::initiator;
    sdes.description.contents[0].rtcp_mux = true;
    sdes.description.contents[0].feedback = {RtcpFeedback{.type = "nack"}};
    sdes.description.contents[0].transport.candidates.resize(1);
    sdes.description.contents[0].transport.fingerprint =
        JingleFingerprint{.hash = "sha-1", .value = "AB:CD"};
    sdes.description.contents[0].crypto[0].session_params.clear();
    CHECK(written_jingle_xml(sdes) ==
          "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' "
          "initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'>"
          "<content creator='initiator' name='voice' senders='initiator'>"
          "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
          "<payload-type id='96' name='speex' clockrate='16000' ptime='20' maxptime='40'/>"
          "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/><rtcp-mux/>"
          "<encryption required='1'><crypto crypto-suite='AES_CM_128_HMAC_SHA1_80' "
          "key-params='inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32' tag='1'/>"
          "</encryption></description>"
          "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'>"
          "<candidate component='1' generation='0' id='a9j3mnbtu1' ip='10.1.1.104' "
          "port='13540' type='host'/>"
          "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-1'>AB:CD</fingerprint>"
          "</transport></content></jingle>");

    struct Row {
        std::string label;
        JingleIq value;
        std::string xml;
    };
    JingleIq terminate;
    terminate.action = JingleAction::session_terminate;
    terminate.sid = "s";
    terminate.reason = "busy";
    terminate.reason_text = "a < b";
    JingleIq ringing;
    ringing.action = JingleAction::session_info;
    ringing.sid = "s";
    ringing.info = "ringing";
    JingleIq transport_info;
    transport_info.action = JingleAction::transport_info;
    transport_info.sid = "s";
    JingleContent ice_only;
    ice_only.name = "0";
    ice_only.creator = "responder";
    ice_only.transport.kind = TransportKind::ice_udp;
    ice_only.transport.candidates = {JingleCandidate{.foundation = "2",
                                                     .id = "c",
                                                     .ip = "2001:db8::1",
                                                     .port = 9,
                                                     .priority = 1,
                                                     .protocol = "tcp",
                                                     .type = "relay",
                                                     .rel_addr = "2001:db8::2",
                                                     .rel_port = 0}};
    transport_info.description.contents = {ice_only};
    JingleIq nameless;
    nameless.sid = "s";
    const Row rows[] = {
        {"reason with text, escaped", terminate,
         "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'>"
         "<reason><busy/><text>a &lt; b</text></reason></jingle>"},
        {"session-info", ringing,
         "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>"
         "<ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/></jingle>"},
        {"transport-info: no description, rel-port 0 written with rel-addr", transport_info,
         "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'>"
         "<content creator='responder' name='0'>"
         "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>"
         "<candidate component='1' foundation='2' generation='0' id='c' ip='2001:db8::1' "
         "network='0' port='9' priority='1' protocol='tcp' type='relay' rel-addr='2001:db8::2' "
         "rel-port='0'/></transport></content></jingle>"},
        {"other without a name: no action attribute", nameless,
         "<jingle xmlns='urn:xmpp:jingle:1' sid='s'/>"},
    };
    for (const Row& row : rows) {
        CAPTURE(row.label);
        CHECK(written_jingle_xml(row.value) == row.xml);
    }
}

TEST_CASE("J-XML every attribute removed or garbled: bad-request or a value that round trips") {
    // Mutations of real stanzas: each attribute removed, or given a hostile value; each
    // empty element removed. Whatever comes out is a bad-request or a value we can write
    // and read back unchanged.
    const std::string garbage[] = {
        "",      "-1",           "0",        "4294967296", "99999999999999999999", "x y",
        "&#10;", "a&#13;&#10;b", "\xc3\xa9", "1.5"};
    const std::regex attribute(R"( ([A-Za-z][\w:-]*)='([^']*)')");
    const std::regex empty_element(R"(<[A-Za-z][\w:-]*( [^<>]*)?/>)");
    std::size_t values = 0;
    std::size_t errors = 0;
    std::size_t none = 0;
    for (const std::string& original : {conversations_initiate, raw_udp_initiate}) {
        std::vector<std::string> mutants;
        for (auto it = std::sregex_iterator(original.begin(), original.end(), attribute);
             it != std::sregex_iterator(); ++it) {
            const auto at = static_cast<std::size_t>(it->position(0));
            const auto length = static_cast<std::size_t>(it->length(0));
            const std::string before = original.substr(0, at);
            const std::string after = original.substr(at + length);
            mutants.push_back(before + after);
            for (const std::string& value : garbage) {
                std::string mutant = before;
                mutant.append(" ").append((*it)[1].str()).append("='").append(value);
                mutant.append("'").append(after);
                mutants.push_back(std::move(mutant));
            }
        }
        for (auto it = std::sregex_iterator(original.begin(), original.end(), empty_element);
             it != std::sregex_iterator(); ++it) {
            const auto at = static_cast<std::size_t>(it->position(0));
            mutants.push_back(original.substr(0, at) +
                              original.substr(at + static_cast<std::size_t>(it->length(0))));
        }
        for (const std::string& mutant : mutants) {
            CAPTURE(mutant);
            const auto read = read_xml(mutant);
            if (!read) {
                ++none;
                continue;
            }
            if (!read->has_value()) {
                ++errors;
                CHECK(read->error().condition == "bad-request");
                CHECK_FALSE(read->error().text.empty());
                continue;
            }
            ++values;
            const JingleIq& value = read->value();
            if (value.refused_contents.empty()) {
                CHECK(written_and_read(value) == value);
            }
        }
    }
    CHECK(values > 100);
    CHECK(errors > 100);
    CHECK(none > 0); // the <jingle/> namespace itself removed
}

TEST_CASE("J-XML make_jingle_error: the stanza error plus a urn:xmpp:jingle:errors:1 element") {
    const Parsed request(jingle_around("", "session-info"));
    const std::string conditions[] = {"unknown-session", "out-of-order", "tie-break",
                                      "unsupported-info"};
    for (const std::string& condition : conditions) {
        CAPTURE(condition);
        const std::unique_ptr<gloox::Tag> reply(xsgw::bridge::make_jingle_error(
            request.tag(), "gw.test", {"cancel", "item-not-found", "no such session"}, condition));
        REQUIRE(reply != nullptr);
        CHECK(reply->name() == "iq");
        CHECK(reply->findAttribute("type") == "error");
        CHECK(reply->findAttribute("id") == "j1");
        CHECK(reply->findAttribute("from") == "bob*sip.test@gw.test");
        CHECK(reply->findAttribute("to") == "alice@xmpp.test/Conversations.x1");
        const gloox::Tag* error = reply->findChild("error");
        REQUIRE(error != nullptr);
        CHECK(error->findAttribute("type") == "cancel");
        const gloox::Tag* stanza_condition = error->findChild("item-not-found");
        REQUIRE(stanza_condition != nullptr);
        CHECK(stanza_condition->xmlns() == "urn:ietf:params:xml:ns:xmpp-stanzas");
        const gloox::Tag* text = error->findChild("text");
        REQUIRE(text != nullptr);
        CHECK(text->cdata() == "no such session");
        const gloox::Tag* jingle_condition = error->findChild(condition);
        REQUIRE(jingle_condition != nullptr);
        CHECK(jingle_condition->xmlns() == "urn:xmpp:jingle:errors:1");
        CHECK(error->children().size() == 3);
        // It survives serialisation: gloox parses it back with the namespace.
        const Parsed parsed(reply->xml());
        const gloox::Tag* reparsed = parsed.tag().findChild("error")->findChild(condition);
        REQUIRE(reparsed != nullptr);
        CHECK(reparsed->xmlns() == "urn:xmpp:jingle:errors:1");
    }

    const std::unique_ptr<gloox::Tag> plain(xsgw::bridge::make_jingle_error(
        request.tag(), "gw.test", {"modify", "bad-request", ""}, ""));
    REQUIRE(plain != nullptr);
    const gloox::Tag* error = plain->findChild("error");
    REQUIRE(error != nullptr);
    CHECK(error->findAttribute("type") == "modify");
    REQUIRE(error->children().size() == 1);
    CHECK(error->children().front()->name() == "bad-request");

    const Parsed error_stanza("<iq type='error' id='e1' from='a@b/c' to='gw.test'>"
                              "<error type='cancel'><item-not-found "
                              "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    CHECK(xsgw::bridge::make_jingle_error(error_stanza.tag(), "gw.test",
                                          {"cancel", "item-not-found", ""},
                                          "unknown-session") == nullptr);
}

TEST_CASE("J-XML JMI kinds: names both ways") {
    const std::pair<JmiKind, std::string_view> rows[] = {
        {JmiKind::propose, "propose"}, {JmiKind::retract, "retract"}, {JmiKind::accept, "accept"},
        {JmiKind::proceed, "proceed"}, {JmiKind::reject, "reject"},   {JmiKind::ringing, "ringing"},
        {JmiKind::finish, "finish"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.second);
        CHECK(xsgw::bridge::to_string(row.first) == row.second);
        CHECK(xsgw::bridge::parse_jmi_kind(row.second) == row.first);
    }
    CHECK_FALSE(xsgw::bridge::parse_jmi_kind("Propose").has_value());
    CHECK_FALSE(xsgw::bridge::parse_jmi_kind("").has_value());
}

TEST_CASE("J-XML JMI messages as clients send them are read") {
    const auto message = [](const std::string& inner) {
        return "<message xmlns='jabber:component:accept' type='chat' id='m1' "
               "from='alice@xmpp.test/Conversations.x1' to='bob*sip.test@gw.test'>" +
               inner + "</message>";
    };
    const std::string jmi = " xmlns='urn:xmpp:jingle-message:0'";
    const std::string rtp = " xmlns='urn:xmpp:jingle:apps:rtp:1'";
    const std::string jingle = " xmlns='urn:xmpp:jingle:1'";
    struct Row {
        std::string label;
        std::string xml;
        std::optional<JingleMessage> expected;
    };
    const Row rows[] = {
        {"propose audio + video (Conversations)",
         message("<propose" + jmi + " id='sid1'><description" + rtp +
                 " media='audio'/><description" + rtp +
                 " media='video'/></propose><request xmlns='urn:xmpp:receipts'/>"
                 "<store xmlns='urn:xmpp:hints'/>"),
         JingleMessage{.kind = JmiKind::propose, .id = "sid1", .media = {"audio", "video"}}},
        {"propose with a non-RTP description and one without media",
         message("<propose" + jmi + " id='sid2'><description" + rtp +
                 " media='audio'/><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>"
                 "<description" +
                 rtp + "/></propose>"),
         JingleMessage{.kind = JmiKind::propose, .id = "sid2", .media = {"audio"}}},
        {"proceed with an OMEMO device",
         message("<proceed" + jmi +
                 " id='sid1'><device xmlns='http://gultsch.de/xmpp/drafts/omemo/"
                 "dlts-verification' id='1234'/></proceed>"),
         JingleMessage{.kind = JmiKind::proceed, .id = "sid1"}},
        {"accept (carbon to the other devices)", message("<accept" + jmi + " id='sid1'/>"),
         JingleMessage{.kind = JmiKind::accept, .id = "sid1"}},
        {"reject busy with text",
         message("<reject" + jmi + " id='sid1'><reason" + jingle +
                 "><busy/><text>In a meeting</text></reason></reject>"),
         JingleMessage{.kind = JmiKind::reject,
                       .id = "sid1",
                       .reason = "busy",
                       .reason_text = "In a meeting"}},
        {"retract cancel with tie-break",
         message("<retract" + jmi + " id='sid1'><reason" + jingle +
                 "><cancel/><text>Retracted</text></reason><tie-break/></retract>"),
         JingleMessage{.kind = JmiKind::retract,
                       .id = "sid1",
                       .reason = "cancel",
                       .reason_text = "Retracted"}},
        {"ringing", message("<ringing" + jmi + " id='sid1'/>"),
         JingleMessage{.kind = JmiKind::ringing, .id = "sid1"}},
        {"finish success, migrated",
         message("<finish" + jmi + " id='sid1'><reason" + jingle +
                 "><success/></reason><migrated to='sid3'/></finish>"),
         JingleMessage{.kind = JmiKind::finish, .id = "sid1", .reason = "success"}},
        {"a reason not in the Jingle namespace is none",
         message("<reject" + jmi + " id='sid1'><reason><busy/></reason></reject>"),
         JingleMessage{.kind = JmiKind::reject, .id = "sid1"}},
        {"media of a non-propose are ignored",
         message("<proceed" + jmi + " id='sid1'><description" + rtp + " media='audio'/></proceed>"),
         JingleMessage{.kind = JmiKind::proceed, .id = "sid1"}},
        {"an unknown JMI element before a known one",
         message("<dance" + jmi + " id='x'/><reject" + jmi + " id='sid1'/>"),
         JingleMessage{.kind = JmiKind::reject, .id = "sid1"}},
        {"no id", message("<propose" + jmi + "><description" + rtp + " media='audio'/></propose>"),
         std::nullopt},
        {"empty id", message("<retract" + jmi + " id=''/>"), std::nullopt},
        {"unknown element only", message("<dance" + jmi + " id='x'/>"), std::nullopt},
        {"another namespace", message("<propose xmlns='urn:xmpp:jingle-message:1' id='x'/>"),
         std::nullopt},
        {"no namespace", message("<propose id='x'/>"), std::nullopt},
        {"a plain chat message", message("<body>hello</body>"), std::nullopt},
    };
    for (const Row& row : rows) {
        CAPTURE(row.label);
        const Parsed parsed(row.xml);
        CHECK(xsgw::bridge::read_jingle_message(parsed.tag()) == row.expected);
    }
}

TEST_CASE("J-XML JMI messages written: chat, store hint, and read back unchanged") {
    const JingleMessage rows[] = {
        JingleMessage{.kind = JmiKind::propose, .id = "sid1", .media = {"audio"}},
        JingleMessage{.kind = JmiKind::propose, .id = "sid2", .media = {"audio", "video"}},
        JingleMessage{.kind = JmiKind::retract, .id = "sid1"},
        JingleMessage{
            .kind = JmiKind::retract, .id = "sid1", .reason = "cancel", .reason_text = "gone"},
        JingleMessage{.kind = JmiKind::accept, .id = "sid1"},
        JingleMessage{.kind = JmiKind::proceed, .id = "sid1"},
        JingleMessage{.kind = JmiKind::reject, .id = "sid1", .reason = "busy"},
        JingleMessage{.kind = JmiKind::reject,
                      .id = "sid1",
                      .reason = "decline",
                      .reason_text = "603 Decline"},
        JingleMessage{.kind = JmiKind::ringing, .id = "sid1"},
        JingleMessage{.kind = JmiKind::finish, .id = "sid1", .reason = "success"},
    };
    for (const JingleMessage& jmi : rows) {
        CAPTURE(xsgw::bridge::to_string(jmi.kind));
        CAPTURE(jmi.reason);
        const std::unique_ptr<gloox::Tag> message(xsgw::bridge::make_jingle_message(
            "bob*sip.test@gw.test/sip", "alice@xmpp.test", "m7", jmi));
        REQUIRE(message != nullptr);
        CHECK(message->name() == "message");
        CHECK(message->findAttribute("type") == "chat");
        CHECK(message->findAttribute("from") == "bob*sip.test@gw.test/sip");
        CHECK(message->findAttribute("to") == "alice@xmpp.test");
        CHECK(message->findAttribute("id") == "m7");
        const gloox::Tag* element =
            message->findChild(std::string(xsgw::bridge::to_string(jmi.kind)));
        REQUIRE(element != nullptr);
        CHECK(element->xmlns() == "urn:xmpp:jingle-message:0");
        CHECK(element->findAttribute("id") == jmi.id);
        const gloox::Tag* store = message->findChild("store");
        REQUIRE(store != nullptr);
        CHECK(store->xmlns() == "urn:xmpp:hints");
        const gloox::Tag* reason = element->findChild("reason");
        CHECK((reason != nullptr) == !jmi.reason.empty());
        if (reason != nullptr) {
            CHECK(reason->xmlns() == "urn:xmpp:jingle:1");
        }
        CHECK(xsgw::bridge::read_jingle_message(*message) == jmi);
        const Parsed parsed(message->xml());
        CHECK(xsgw::bridge::read_jingle_message(parsed.tag()) == jmi);
    }
    const std::unique_ptr<gloox::Tag> propose(xsgw::bridge::make_jingle_message(
        "b@gw", "a@x", "m1",
        JingleMessage{.kind = JmiKind::propose, .id = "s", .media = {"audio"}}));
    CHECK(propose->xml() ==
          "<message type='chat' from='b@gw' to='a@x' id='m1'>"
          "<propose xmlns='urn:xmpp:jingle-message:0' id='s'>"
          "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
          "<store xmlns='urn:xmpp:hints'/></message>");
    const std::unique_ptr<gloox::Tag> reject(xsgw::bridge::make_jingle_message(
        "b@gw", "a@x", "m2",
        JingleMessage{.kind = JmiKind::reject, .id = "s", .reason = "busy", .reason_text = "x"}));
    CHECK(reject->xml() == "<message type='chat' from='b@gw' to='a@x' id='m2'>"
                           "<reject xmlns='urn:xmpp:jingle-message:0' id='s'>"
                           "<reason xmlns='urn:xmpp:jingle:1'><busy/><text>x</text></reason>"
                           "</reject><store xmlns='urn:xmpp:hints'/></message>");
}

TEST_SUITE_END();

TEST_CASE("J-XML a reason text without a condition is no reason (found by fuzz_jingle)") {
    const Parsed parsed(
        jingle_around("<reason><text>on the phone</text></reason>", "session-terminate"));
    const auto read = xsgw::bridge::read_jingle(parsed.tag());
    REQUIRE(read.has_value());
    REQUIRE(read->has_value());
    CHECK(read->value().reason.empty());
    CHECK(read->value().reason_text.empty());
}
