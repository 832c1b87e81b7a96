// The user agent's calls (issue 8) against another instance of itself on loopback:
// the SDP goes through untouched both ways, and every way a call ends is heard once.
#include "loopback.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <doctest/doctest.h>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;
using xsgw::sip::CallCallbacks;
using xsgw::sip::CallEnd;
using xsgw::sip::CallId;
using xsgw::sip::IncomingCall;
using xsgw::sip::NextHop;
using xsgw::sip::OutgoingCall;
using xsgw::sip::UserAgent;
using xsgw::test::listen_on;

namespace {

const std::string offer =
    "v=0\r\no=- 1 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
const std::string answer_sdp = "v=0\r\no=- 2 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                               "t=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

OutgoingCall call_to_bob() {
    return {"sip:bob@127.0.0.1:25072", "sip:alice*xmpp.test@sip.test", "sip:bob@127.0.0.1:25072",
            offer};
}

// What one side of a call heard.
struct Heard {
    std::vector<int> progress;
    std::optional<std::string> answer;
    std::optional<CallEnd> end;
    int ends = 0;
    CallCallbacks callbacks() {
        CallCallbacks c;
        c.on_progress = [this](int status, const std::string&, const std::string&) {
            progress.push_back(status);
        };
        c.on_answer = [this](const std::string& sdp) { answer = sdp; };
        c.on_end = [this](const CallEnd& e) {
            end = e;
            ++ends;
        };
        return c;
    }
};

struct CallRig {
    EventLoop loop;
    UserAgent caller{loop, listen_on(25071)};
    UserAgent callee{loop, listen_on(25072)};
    Heard at_caller;
    Heard at_callee;
    std::optional<IncomingCall> incoming;
    CallId incoming_id = 0;
    CallRig() {
        callee.set_call_handler([this](CallId id, const IncomingCall& in) {
            incoming = in;
            incoming_id = id;
            return at_callee.callbacks();
        });
    }
    CallId dial() {
        return caller.invite(call_to_bob(), {NextHop{"127.0.0.1", 25072, "udp", "callee", {}}},
                             at_caller.callbacks());
    }
};

} // namespace

TEST_CASE("J-SIP a call is answered both ways with the SDP untouched, and BYE ends it once") {
    CallRig rig;
    const CallId id = rig.dial();
    REQUIRE(id != 0);
    REQUIRE(rig.loop.run_until([&] { return rig.incoming.has_value(); }, 5s));
    CHECK(rig.incoming->sdp == offer);
    CHECK(rig.incoming->content_type == "application/sdp");
    CHECK(rig.incoming->from == "sip:alice*xmpp.test@sip.test");
    CHECK(rig.incoming->request_uri == "sip:bob@127.0.0.1:25072");
    CHECK(rig.callee.ring(rig.incoming_id));
    REQUIRE(rig.loop.run_until([&] { return !rig.at_caller.progress.empty(); }, 5s));
    CHECK(rig.at_caller.progress.front() == 180);
    CHECK(rig.callee.answer(rig.incoming_id, answer_sdp));
    CHECK_FALSE(rig.callee.answer(rig.incoming_id, answer_sdp)); // once only
    REQUIRE(rig.loop.run_until(
        [&] { return rig.at_caller.answer.has_value() && rig.at_callee.answer.has_value(); }, 5s));
    CHECK(*rig.at_caller.answer == answer_sdp);
    CHECK(rig.caller.call_count() == 1);
    CHECK(rig.callee.call_count() == 1);
    rig.caller.hang_up(id);
    REQUIRE(rig.loop.run_until([&] { return rig.at_callee.end.has_value(); }, 5s));
    CHECK(rig.at_callee.end->bye);
    CHECK(rig.at_callee.end->status == 0);
    REQUIRE(rig.loop.run_until([&] { return rig.caller.call_count() == 0; }, 5s));
    CHECK(rig.callee.call_count() == 0);
    CHECK(rig.at_caller.ends == 0); // who hangs up hears nothing more
    CHECK(rig.at_callee.ends == 1);
}

TEST_CASE("J-SIP a refused call ends at the caller with the callee's status") {
    for (const int status : {486, 603, 488, 480}) {
        CAPTURE(status);
        CallRig rig;
        REQUIRE(rig.dial() != 0);
        REQUIRE(rig.loop.run_until([&] { return rig.incoming.has_value(); }, 5s));
        rig.callee.hang_up(rig.incoming_id, status, "Refused here");
        REQUIRE(rig.loop.run_until([&] { return rig.at_caller.end.has_value(); }, 5s));
        CHECK(rig.at_caller.end->status == status);
        CHECK(rig.at_caller.end->phrase == "Refused here");
        CHECK(rig.at_caller.ends == 1);
        CHECK_FALSE(rig.at_caller.answer.has_value());
        REQUIRE(rig.loop.run_until([&] { return rig.callee.call_count() == 0; }, 5s));
        CHECK(rig.caller.call_count() == 0);
        CHECK(rig.at_callee.ends == 0);
    }
}

TEST_CASE("J-SIP a caller's hang-up before the answer is a CANCEL the callee hears") {
    CallRig rig;
    const CallId id = rig.dial();
    REQUIRE(rig.loop.run_until([&] { return rig.incoming.has_value(); }, 5s));
    rig.callee.ring(rig.incoming_id);
    REQUIRE(rig.loop.run_until([&] { return !rig.at_caller.progress.empty(); }, 5s));
    rig.caller.hang_up(id);
    REQUIRE(rig.loop.run_until([&] { return rig.at_callee.end.has_value(); }, 5s));
    CHECK(rig.at_callee.end->cancelled);
    CHECK_FALSE(rig.callee.answer(rig.incoming_id, answer_sdp)); // gone
    REQUIRE(rig.loop.run_until([&] { return rig.caller.call_count() == 0; }, 5s));
    CHECK(rig.at_caller.ends == 0);
    CHECK(rig.at_callee.ends == 1);
}

TEST_CASE("J-SIP the callee's BYE after the answer ends the call at the caller") {
    CallRig rig;
    REQUIRE(rig.dial() != 0);
    REQUIRE(rig.loop.run_until([&] { return rig.incoming.has_value(); }, 5s));
    rig.callee.answer(rig.incoming_id, answer_sdp);
    REQUIRE(rig.loop.run_until([&] { return rig.at_callee.answer.has_value(); }, 5s));
    rig.callee.hang_up(rig.incoming_id);
    REQUIRE(rig.loop.run_until([&] { return rig.at_caller.end.has_value(); }, 5s));
    CHECK(rig.at_caller.end->bye);
    CHECK(rig.at_caller.end->status == 0);
    CHECK(rig.at_caller.ends == 1);
}

TEST_CASE("J-SIP D5 a dead first hop is skipped for an INVITE") {
    CallRig rig;
    // Nothing listens on 25079: the first hop fails with a transport error (503).
    const CallId id = rig.caller.invite(call_to_bob(),
                                        {NextHop{"127.0.0.1", 25079, "tcp", "dead", {}},
                                         NextHop{"127.0.0.1", 25072, "udp", "callee", {}}},
                                        rig.at_caller.callbacks());
    REQUIRE(id != 0);
    REQUIRE(rig.loop.run_until([&] { return rig.incoming.has_value(); }, 10s));
    rig.callee.hang_up(rig.incoming_id, 486, "Busy Here");
    REQUIRE(rig.loop.run_until([&] { return rig.at_caller.end.has_value(); }, 5s));
    CHECK(rig.at_caller.end->status == 486);
}

TEST_CASE("J-SIP stopping ends the calls under way on both sides") {
    CallRig rig;
    REQUIRE(rig.dial() != 0);
    REQUIRE(rig.loop.run_until([&] { return rig.incoming.has_value(); }, 5s));
    rig.callee.answer(rig.incoming_id, answer_sdp);
    REQUIRE(rig.loop.run_until([&] { return rig.at_caller.answer.has_value(); }, 5s));
    rig.caller.shutdown(2000ms);
    REQUIRE(rig.loop.run_until([&] { return rig.at_callee.end.has_value(); }, 5s));
    CHECK(rig.at_callee.end->bye);
    CHECK(rig.caller.call_count() == 0);
}
