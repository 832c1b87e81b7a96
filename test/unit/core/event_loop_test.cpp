// The loop primitives: timers, fd watches and signals as loop events.
#include "xsgw/core/event_loop.hpp"

#include <csignal>
#include <doctest/doctest.h>
#include <sofia-sip/su_wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using xsgw::core::EventLoop;

TEST_CASE("loop: a timer fires once, after its delay; a cancelled one never") {
    EventLoop loop;
    xsgw::core::Timer fired(loop), cancelled(loop);
    int fires = 0, cancelled_fires = 0;
    const auto start = std::chrono::steady_clock::now();
    fired.start(30ms, [&] { ++fires; });
    cancelled.start(10ms, [&] { ++cancelled_fires; });
    CHECK(cancelled.armed());
    cancelled.cancel();
    CHECK_FALSE(cancelled.armed());
    REQUIRE(loop.run_until([&] { return fires == 1; }, 2s));
    CHECK(std::chrono::steady_clock::now() - start >= 30ms);
    loop.run_until([] { return false; }, 50ms);
    CHECK(fires == 1);
    CHECK(cancelled_fires == 0);
}

TEST_CASE("loop: a timer callback may re-arm its own timer") {
    EventLoop loop;
    xsgw::core::Timer t(loop);
    int fires = 0;
    std::function<void()> again = [&] {
        if (++fires < 3) t.start(1ms, again);
    };
    t.start(1ms, again);
    REQUIRE(loop.run_until([&] { return fires == 3; }, 2s));
}

TEST_CASE("loop: an fd watch reports readability and detaches from inside its callback") {
    EventLoop loop;
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    xsgw::core::FdWatch watch(loop);
    int calls = 0;
    watch.attach(fds[0], SU_WAIT_IN, [&](int revents) {
        ++calls;
        CHECK((revents & SU_WAIT_IN) != 0);
        watch.detach();
    });
    REQUIRE(write(fds[1], "x", 1) == 1);
    REQUIRE(loop.run_until([&] { return calls == 1; }, 2s));
    loop.run_until([] { return false; }, 30ms);
    CHECK(calls == 1);
    CHECK_FALSE(watch.attached());
    close(fds[0]);
    close(fds[1]);
}

TEST_CASE("loop: signals arrive as loop events through the signalfd") {
    EventLoop loop;
    int got = 0;
    xsgw::core::SignalWatch signals(loop, {SIGUSR1}, [&](int signo) { got = signo; });
    REQUIRE(raise(SIGUSR1) == 0);
    REQUIRE(loop.run_until([&] { return got != 0; }, 2s));
    CHECK(got == SIGUSR1);
}
