// Issue 8 through the whole gateway: a fake XEP-0114 server plays the XMPP side (the
// Jingle endpoint's stanzas), a second user agent on 127.0.0.1:25304 plays the SIP phone.
#include "../fake_component_server.hpp"
#include "xsgw/bridge/gateway.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <optional>
#include <string>

using namespace std::chrono_literals;

namespace {

xsgw::core::Config on_fake_server(std::uint16_t port) {
    xsgw::core::Config c;
    c.xmpp.component = "sip.test";
    c.sip.domain = "xmpp.test";
    c.xmpp.host = "127.0.0.1";
    c.xmpp.port = port;
    c.xmpp.secret = "test";
    c.sip.listen = "sip:127.0.0.1:25301";
    c.dns.servers = {"127.0.0.1:25303"};
    return c;
}

const char* bob = "bob*127.0.0.1\\3a25304@sip.test";

// alice's session-initiate: PCMU and PCMA over raw UDP to 127.0.0.1:41000.
std::string session_initiate(const std::string& sid, const std::string& id) {
    return "<iq from='alice@xmpp.test/r' to='" + std::string(bob) + "' id='" + id +
           "' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='" + sid +
           "' initiator='alice@xmpp.test/r'><content creator='initiator' name='voice'>"
           "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
           "<payload-type id='0' name='PCMU' clockrate='8000'/>"
           "<payload-type id='8' name='PCMA' clockrate='8000'/></description>"
           "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate component='1' "
           "generation='0' id='c1' ip='127.0.0.1' port='41000'/></transport></content>"
           "</jingle></iq>";
}

std::string jingle(const char* from, const char* to, const std::string& id,
                   const std::string& action, const std::string& sid, const std::string& inner) {
    return std::string("<iq from='") + from + "' to='" + to + "' id='" + id +
           "' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='" + action + "' sid='" + sid +
           "'>" + inner + "</jingle></iq>";
}

const std::string phone_answer =
    "v=0\r\no=- 7 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 42000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

const std::string phone_offer =
    "v=0\r\no=- 9 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 43000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=sendrecv\r\n";

// The value of attribute `name` in the first element of `received` (from `from` on) that
// holds `marker`, searching back to its start.
std::string attribute_near(const std::string& received, const std::string& marker,
                           const std::string& name) {
    const auto at = received.find(marker);
    if (at == std::string::npos) return {};
    const auto start = received.rfind('<', at);
    const auto end = received.find('>', at);
    const std::string tag = received.substr(start, end - start);
    const auto a = tag.find(name + "=");
    if (a == std::string::npos) return {};
    const char quote = tag[a + name.size() + 1];
    const auto b = tag.find(quote, a + name.size() + 2);
    return tag.substr(a + name.size() + 2, b - a - name.size() - 2);
}

struct CallRig {
    explicit CallRig(bool calls_enabled = true)
        : server(loop), config(with_calls(on_fake_server(server.port()), calls_enabled)),
          gateway(loop, config), phone(loop, phone_sip()) {
        phone.set_call_handler([this](xsgw::sip::CallId id, const xsgw::sip::IncomingCall& in) {
            incoming = in;
            incoming_id = id;
            xsgw::sip::CallCallbacks c;
            c.on_answer = [this](const std::string& sdp) { answered = sdp; };
            c.on_end = [this](const xsgw::sip::CallEnd& e) { ended = e; };
            return c;
        });
        gateway.start();
        REQUIRE(loop.run_until([&] { return gateway.link().up(); }, 5s));
    }
    static xsgw::core::Config with_calls(xsgw::core::Config c, bool enabled) {
        c.calls.enabled = enabled;
        return c;
    }
    static xsgw::core::SipConfig phone_sip() {
        xsgw::core::SipConfig s;
        s.listen = "sip:127.0.0.1:25304";
        return s;
    }
    bool sent(const std::string& text) {
        return loop.run_until([&] { return server.received.find(text) != std::string::npos; }, 5s);
    }
    xsgw::core::EventLoop loop;
    xsgw::test::ComponentServer server;
    xsgw::core::Config config;
    xsgw::bridge::Gateway gateway;
    xsgw::sip::UserAgent phone;
    std::optional<xsgw::sip::IncomingCall> incoming;
    xsgw::sip::CallId incoming_id = 0;
    std::optional<std::string> answered;
    std::optional<xsgw::sip::CallEnd> ended;
};

} // namespace

TEST_CASE_FIXTURE(CallRig, "J-CALL XMPP calls SIP: ringing, accept with the phone's media "
                           "address, hang-up from XMPP is a BYE") {
    server.write(session_initiate("s1", "i1"));
    REQUIRE(sent("id='i1'"));
    CHECK(attribute_near(server.received, "id='i1'", "type") == "result");
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    CHECK(incoming->from == "sip:alice*xmpp.test@xmpp.test;gr=r"); // A7: the device
    CHECK(incoming->sdp.find("m=audio 41000 RTP/AVP 0 8") != std::string::npos);
    CHECK(incoming->sdp.find("c=IN IP4 127.0.0.1") != std::string::npos);
    phone.ring(incoming_id);
    REQUIRE(sent("<ringing"));
    phone.answer(incoming_id, phone_answer);
    REQUIRE(sent("session-accept"));
    CHECK(server.received.find("port='42000'") != std::string::npos);
    CHECK(attribute_near(server.received, "action='session-accept'", "sid") == "s1");
    CHECK(server.received.find("name='voice'") != std::string::npos);  // the offer's name
    REQUIRE(loop.run_until([&] { return answered.has_value(); }, 5s)); // the ACK
    CHECK(gateway.calls().count() == 1);
    server.write(jingle("alice@xmpp.test/r", bob, "t1", "session-terminate", "s1",
                        "<reason><success/></reason>"));
    REQUIRE(loop.run_until([&] { return ended.has_value(); }, 5s));
    CHECK(ended->bye);
    CHECK(gateway.calls().count() == 0);
    CHECK(gateway.calls().stats().answered == 1);
}

TEST_CASE_FIXTURE(CallRig, "J-CALL XMPP calls SIP: the phone's refusal is the matching Jingle "
                           "reason") {
    const struct {
        int status;
        const char* reason;
    } rows[] = {{486, "<busy/>"},
                {603, "<decline/>"},
                {488, "<unsupported-applications/>"},
                {404, "<gone/>"},
                {500, "<general-error/>"}};
    int n = 0;
    for (const auto& row : rows) {
        CAPTURE(row.status);
        const std::string sid = "r" + std::to_string(n++);
        incoming.reset();
        server.write(session_initiate(sid, "i" + sid));
        REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
        phone.hang_up(incoming_id, row.status, "No");
        REQUIRE(loop.run_until([&] { return gateway.calls().count() == 0; }, 5s));
        REQUIRE(sent(std::string("sid='") + sid + "'><reason>" + row.reason));
    }
}

TEST_CASE_FIXTURE(CallRig, "J-CALL XMPP cancels before the answer: CANCEL; a session the "
                           "gateway does not know is unknown-session") {
    server.write(session_initiate("c1", "ic1"));
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    phone.ring(incoming_id);
    REQUIRE(sent("<ringing"));
    server.write(jingle("alice@xmpp.test/r", bob, "tc1", "session-terminate", "c1",
                        "<reason><cancel/></reason>"));
    REQUIRE(loop.run_until([&] { return ended.has_value(); }, 5s));
    CHECK(ended->cancelled);
    server.write(jingle("alice@xmpp.test/r", bob, "tc2", "session-terminate", "c1",
                        "<reason><success/></reason>"));
    REQUIRE(sent("unknown-session"));
}

TEST_CASE_FIXTURE(CallRig, "J-CALL SIP calls XMPP: propose, proceed, session-initiate, accept "
                           "is the 200 with the answer; BYE is session-terminate success") {
    xsgw::sip::CallCallbacks callbacks;
    std::optional<std::string> caller_answer;
    std::optional<xsgw::sip::CallEnd> caller_end;
    std::vector<int> progress;
    callbacks.on_progress = [&](int status, const std::string&, const std::string&) {
        progress.push_back(status);
    };
    callbacks.on_answer = [&](const std::string& sdp) { caller_answer = sdp; };
    callbacks.on_end = [&](const xsgw::sip::CallEnd& e) { caller_end = e; };
    const auto id =
        phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                      "sip:alice*xmpp.test@xmpp.test", phone_offer},
                     {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, callbacks);
    REQUIRE(id != 0);
    REQUIRE(sent("<propose"));
    const std::string sid = attribute_near(server.received, "<propose", "id");
    CHECK(attribute_near(server.received, "<propose", "xmlns") == "urn:xmpp:jingle-message:0");
    CHECK(server.received.find("to='alice@xmpp.test'") != std::string::npos);
    REQUIRE(loop.run_until([&] { return !progress.empty(); }, 5s));
    CHECK(progress.front() == 180);
    const std::string contact = "bob*127.0.0.1\\3a25304@sip.test/sip";
    server.write("<message from='alice@xmpp.test/r' to='" + contact +
                 "'><proceed xmlns='urn:xmpp:jingle-message:0' id='" + sid + "'/></message>");
    REQUIRE(sent("action='session-initiate'"));
    CHECK(server.received.find("port='43000'") != std::string::npos);
    const std::string initiate_id =
        attribute_near(server.received, "action='session-initiate'", "sid");
    CHECK(initiate_id == sid);
    server.write("<iq from='alice@xmpp.test/r' to='" + contact + "' type='result' id='" +
                 attribute_near(server.received, "<iq", "id") + "'/>");
    server.write(jingle("alice@xmpp.test/r", contact.c_str(), "a1", "session-accept", sid,
                        "<content creator='initiator' name='audio'>"
                        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
                        "<payload-type id='8' name='PCMA' clockrate='8000'/></description>"
                        "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate "
                        "component='1' generation='0' id='x' ip='127.0.0.1' port='44000'/>"
                        "</transport></content>"));
    REQUIRE(loop.run_until([&] { return caller_answer.has_value(); }, 5s));
    CHECK(caller_answer->find("m=audio 44000 RTP/AVP 8") != std::string::npos);
    CHECK(gateway.calls().stats().answered == 1);
    phone.hang_up(id);
    REQUIRE(sent("<success/>"));
    REQUIRE(loop.run_until([&] { return gateway.calls().count() == 0; }, 5s));
}

TEST_CASE_FIXTURE(CallRig, "J-CALL SIP calls XMPP: a reject is 603 (busy: 486); a CANCEL before "
                           "the proceed retracts the proposal") {
    for (const char* reason : {"", "<reason xmlns='urn:xmpp:jingle:1'><busy/></reason>"}) {
        CAPTURE(reason);
        server.received.clear();
        std::optional<xsgw::sip::CallEnd> caller_end;
        xsgw::sip::CallCallbacks callbacks;
        callbacks.on_end = [&](const xsgw::sip::CallEnd& e) { caller_end = e; };
        phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                      "sip:alice*xmpp.test@xmpp.test", phone_offer},
                     {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, callbacks);
        REQUIRE(sent("<propose"));
        const std::string sid = attribute_near(server.received, "<propose", "id");
        server.write("<message from='alice@xmpp.test/r' to='bob*127.0.0.1\\3a25304@sip.test/sip'>"
                     "<reject xmlns='urn:xmpp:jingle-message:0' id='" +
                     sid + "'>" + reason + "</reject></message>");
        REQUIRE(loop.run_until([&] { return caller_end.has_value(); }, 5s));
        CHECK(caller_end->status == (*reason == '\0' ? 603 : 486));
    }
    server.received.clear();
    const auto id = phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                                  "sip:alice*xmpp.test@xmpp.test", phone_offer},
                                 {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, {});
    REQUIRE(sent("<propose"));
    phone.hang_up(id);
    REQUIRE(sent("<retract"));
    REQUIRE(loop.run_until([&] { return gateway.calls().count() == 0; }, 5s));
}

TEST_CASE_FIXTURE(CallRig, "J-CALL an INVITE whose SDP has no usable media is refused 488; one "
                           "without SDP too") {
    std::optional<xsgw::sip::CallEnd> caller_end;
    xsgw::sip::CallCallbacks callbacks;
    callbacks.on_end = [&](const xsgw::sip::CallEnd& e) { caller_end = e; };
    const std::string no_rtp = "v=0\r\no=- 9 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                               "t=0 0\r\nm=application 5000 TCP/BFCP *\r\n";
    phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                  "sip:alice*xmpp.test@xmpp.test", no_rtp},
                 {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, callbacks);
    REQUIRE(loop.run_until([&] { return caller_end.has_value(); }, 5s));
    CHECK(caller_end->status == 488);
    CHECK(server.received.find("<propose") == std::string::npos);
    CHECK(gateway.calls().stats().refused == 1);
}

TEST_CASE_FIXTURE(CallRig, "J-CALL stopping the gateway ends its calls on both sides") {
    server.write(session_initiate("st1", "ist1"));
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    phone.answer(incoming_id, phone_answer);
    REQUIRE(sent("session-accept"));
    gateway.begin_stop();
    REQUIRE(sent("<general-error/>"));
    REQUIRE(loop.run_until([&] { return ended.has_value(); }, 5s));
    CHECK(ended->bye);
    server.write(session_initiate("st2", "ist2"));
    REQUIRE(sent("id='ist2'"));
    CHECK(attribute_near(server.received, "id='ist2'", "type") == "error");
}

TEST_CASE_FIXTURE(CallRig, "J-CALL ICE without candidates: trickled ones start the INVITE; none in "
                           "time ends the session failed-transport") {
    gateway.calls().set_candidate_wait(300ms);
    auto initiate = [&](const std::string& sid) {
        return "<iq from='alice@xmpp.test/r' to='" + std::string(bob) + "' id='i" + sid +
               "' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='" +
               sid +
               "' initiator='alice@xmpp.test/r'><content creator='initiator' name='voice'>"
               "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
               "<payload-type id='0' name='PCMU' clockrate='8000'/></description>"
               "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='uf1' "
               "pwd='pwd1pwd1pwd1pwd1pwd1pw'/></content></jingle></iq>";
    };
    server.write(initiate("ice1"));
    REQUIRE(sent("id='iice1'"));
    server.write(jingle("alice@xmpp.test/r", bob, "ti1", "transport-info", "ice1",
                        "<content creator='initiator' name='voice'><transport "
                        "xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='uf1' "
                        "pwd='pwd1pwd1pwd1pwd1pwd1pw'><candidate component='1' foundation='1' "
                        "generation='0' id='k1' ip='127.0.0.1' network='0' port='45000' "
                        "priority='2130706431' protocol='udp' type='host'/></transport>"
                        "</content>"));
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    CHECK(incoming->sdp.find("m=audio 45000 ") != std::string::npos);
    CHECK(incoming->sdp.find("a=ice-ufrag:uf1") != std::string::npos);
    CHECK(incoming->sdp.find("a=candidate:1 1 udp 2130706431 127.0.0.1 45000 typ host") !=
          std::string::npos);
    phone.hang_up(incoming_id, 486, "Busy Here");
    REQUIRE(sent("<busy/>"));

    incoming.reset();
    server.write(initiate("ice2"));
    REQUIRE(sent("<failed-transport/>"));
    CHECK(attribute_near(server.received, "<failed-transport/>", "sid").empty()); // inside reason
    CHECK_FALSE(incoming.has_value());
    CHECK(gateway.calls().count() == 0);
}

namespace {
struct CallsOffRig : CallRig {
    CallsOffRig() : CallRig(false) {}
};
} // namespace

TEST_CASE_FIXTURE(CallsOffRig, "J-CALL calls.enabled = false: a session-initiate is "
                               "service-unavailable, a propose is rejected, an INVITE gets 488") {
    server.write(session_initiate("off1", "ioff1"));
    REQUIRE(sent("id='ioff1'"));
    CHECK(attribute_near(server.received, "id='ioff1'", "type") == "error");
    CHECK(server.received.find("<service-unavailable") != std::string::npos);
    server.write("<message from='alice@xmpp.test/r' to='" + std::string(bob) +
                 "'><propose xmlns='urn:xmpp:jingle-message:0' id='p-off'><description "
                 "xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>");
    REQUIRE(sent("<reject"));
    CHECK(attribute_near(server.received, "<reject", "id") == "p-off");
    std::optional<xsgw::sip::CallEnd> caller_end;
    xsgw::sip::CallCallbacks callbacks;
    callbacks.on_end = [&](const xsgw::sip::CallEnd& e) { caller_end = e; };
    phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                  "sip:alice*xmpp.test@xmpp.test", phone_offer},
                 {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, callbacks);
    REQUIRE(loop.run_until([&] { return caller_end.has_value(); }, 5s));
    CHECK(caller_end->status == 488);
    CHECK(gateway.calls().count() == 0);
}

TEST_CASE_FIXTURE(CallRig, "J-CALL only the party answers the gateway's Jingle requests: an "
                           "error from anyone else changes nothing") {
    xsgw::sip::CallCallbacks callbacks;
    std::optional<xsgw::sip::CallEnd> caller_end;
    callbacks.on_end = [&](const xsgw::sip::CallEnd& e) { caller_end = e; };
    const auto id =
        phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                      "sip:alice*xmpp.test@xmpp.test", phone_offer},
                     {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, callbacks);
    REQUIRE(sent("<propose"));
    const std::string sid = attribute_near(server.received, "<propose", "id");
    const std::string contact = "bob*127.0.0.1\\3a25304@sip.test/sip";
    // A bounce of the propose from someone else is not the user's.
    server.write("<message type='error' from='mallory@xmpp.test' to='" + contact +
                 "'><propose xmlns='urn:xmpp:jingle-message:0' id='" + sid + "'/></message>");
    server.write("<message from='alice@xmpp.test/r' to='" + contact +
                 "'><proceed xmlns='urn:xmpp:jingle-message:0' id='" + sid + "'/></message>");
    REQUIRE(sent("action='session-initiate'"));
    // The id of the gateway's iq, on the <iq> before the jingle element.
    const auto at = server.received.rfind("<iq", server.received.find("action='session-initiate'"));
    const std::string request_id = attribute_near(server.received.substr(at), "<iq", "id");
    REQUIRE_FALSE(request_id.empty());
    server.write("<iq type='error' id='" + request_id + "' from='mallory@xmpp.test/x' to='" +
                 contact +
                 "'><error type='cancel'><item-not-found "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    server.write("<iq type='get' id='barrier' from='alice@xmpp.test/r' to='sip.test'><ping "
                 "xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE(sent("id='barrier'"));
    CHECK(gateway.calls().count() == 1);
    CHECK_FALSE(caller_end.has_value());
    phone.hang_up(id);
    REQUIRE(loop.run_until([&] { return gateway.calls().count() == 0; }, 5s));
}

TEST_CASE_FIXTURE(CallRig, "J-CALL an answered call pings its XMPP party: answers keep it up, "
                           "an answer that says the party is gone ends it with a BYE") {
    gateway.calls().set_keepalive_interval(100ms);
    server.write(session_initiate("s9", "i9"));
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    phone.answer(incoming_id, phone_answer);
    REQUIRE(sent("session-accept"));
    REQUIRE(loop.run_until([&] { return answered.has_value(); }, 5s));
    // The n-th ping: an empty session-info to the party, with the session's sid.
    auto ping = [&](int n) {
        std::string id;
        REQUIRE(loop.run_until(
            [&] {
                std::size_t at = 0;
                int seen = 0;
                while ((at = server.received.find("action='session-info'", at)) !=
                       std::string::npos) {
                    const std::size_t iq = server.received.rfind("<iq", at);
                    const std::size_t close = server.received.find("</iq>", at);
                    const std::string whole = server.received.substr(iq, close - iq);
                    if (whole.find("<ringing") == std::string::npos && ++seen == n) {
                        CHECK(whole.find("sid='s9'") != std::string::npos);
                        CHECK(whole.find("to='alice@xmpp.test/r'") != std::string::npos);
                        id = attribute_near(whole, "<iq", "id");
                        return true;
                    }
                    ++at;
                }
                return false;
            },
            5s));
        return id;
    };
    const std::string contact = bob;
    auto reply = [&](const std::string& id, const std::string& from, const std::string& error) {
        server.write("<iq type='" + std::string(error.empty() ? "result" : "error") + "' id='" +
                     id + "' from='" + from + "' to='" + contact + "'>" +
                     (error.empty()
                          ? ""
                          : "<error type='cancel'><" + error +
                                " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>") +
                     "</iq>");
    };
    reply(ping(1), "alice@xmpp.test/r", "");                        // alive
    reply(ping(2), "alice@xmpp.test/r", "feature-not-implemented"); // alive, no pings
    reply(ping(3), "mallory@xmpp.test/x", "service-unavailable");   // not the party's answer
    CHECK(gateway.calls().count() == 1);
    CHECK_FALSE(ended.has_value());
    reply(ping(4), "alice@xmpp.test/r", "service-unavailable"); // the server: she is gone
    REQUIRE(loop.run_until([&] { return ended.has_value(); }, 5s));
    CHECK(ended->bye);
    CHECK(gateway.calls().count() == 0);
}

TEST_CASE_FIXTURE(CallRig, "J-CALL the XMPP server lost: every call ends on the SIP side, the "
                           "XMPP side hears once it is back; new INVITEs get 480 meanwhile") {
    server.write(session_initiate("ld1", "ild1"));
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    phone.answer(incoming_id, phone_answer);
    REQUIRE(sent("session-accept"));
    REQUIRE(loop.run_until([&] { return answered.has_value(); }, 5s));
    server.drop();
    REQUIRE(loop.run_until([&] { return ended.has_value(); }, 5s));
    CHECK(ended->bye);
    CHECK(gateway.calls().count() == 0);
    std::optional<xsgw::sip::CallEnd> caller_end;
    xsgw::sip::CallCallbacks callbacks;
    callbacks.on_end = [&](const xsgw::sip::CallEnd& e) { caller_end = e; };
    REQUIRE_FALSE(gateway.link().up()); // it reconnects after 0.5 s at the earliest
    phone.invite({"sip:alice*xmpp.test@xmpp.test", "sip:bob@127.0.0.1:25304",
                  "sip:alice*xmpp.test@xmpp.test", phone_offer},
                 {xsgw::sip::NextHop{"127.0.0.1", 25301, "udp", "gw", {}}}, callbacks);
    REQUIRE(loop.run_until([&] { return caller_end.has_value(); }, 5s));
    CHECK(caller_end->status == 480);
    // Back: the session-terminate kept for alice goes out.
    REQUIRE(loop.run_until([&] { return gateway.link().up(); }, 10s));
    REQUIRE(sent("<connectivity-error/>"));
}

TEST_CASE_FIXTURE(CallRig, "J-CALL a session-accept the session does not wait for is "
                           "out-of-order; the call goes on") {
    server.write(session_initiate("oo1", "ioo1"));
    REQUIRE(loop.run_until([&] { return incoming.has_value(); }, 5s));
    // alice started this session: she has nothing to accept.
    server.write(jingle("alice@xmpp.test/r", bob, "acc1", "session-accept", "oo1",
                        "<content creator='initiator' name='voice'><description "
                        "xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='0' "
                        "name='PCMU' clockrate='8000'/></description></content>"));
    REQUIRE(sent("id='acc1'"));
    CHECK(attribute_near(server.received, "id='acc1'", "type") == "error");
    CHECK(server.received.find("<out-of-order") != std::string::npos);
    CHECK(gateway.calls().count() == 1);
    phone.hang_up(incoming_id, 603, "Decline");
    REQUIRE(sent("<decline/>"));
}
