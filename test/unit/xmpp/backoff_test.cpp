#include "xsgw/xmpp/backoff.hpp"

#include <doctest/doctest.h>
#include <set>

using namespace std::chrono_literals;
using xsgw::xmpp::Backoff;

TEST_CASE("X3 backoff doubles from the minimum up to the cap") {
    Backoff b(500ms, 30000ms, 1);
    const long long expected[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (unsigned n = 0; n < std::size(expected); ++n)
        CHECK(b.ceiling(n).count() == expected[n]);
}

TEST_CASE("X3 each delay lies within [ceiling/2, ceiling]") {
    Backoff b(200ms, 1000ms, 42);
    for (unsigned n = 0; n < 50; ++n) {
        const auto ceiling = b.ceiling(b.failures());
        const auto d = b.next();
        CHECK(d <= ceiling);
        CHECK(d >= ceiling / 2);
    }
    CHECK(b.failures() == 50);
}

TEST_CASE("X3 jitter: delays at the cap are not all equal") {
    Backoff b(100ms, 100ms, 7);
    std::set<long long> seen;
    for (int i = 0; i < 100; ++i)
        seen.insert(b.next().count());
    CHECK(seen.size() > 10);
}

TEST_CASE("X3 reset returns to the minimum") {
    Backoff b(500ms, 30000ms, 3);
    for (int i = 0; i < 10; ++i)
        b.next();
    CHECK(b.next() >= 15000ms);
    b.reset();
    CHECK(b.failures() == 0);
    CHECK(b.next() <= 500ms);
}

TEST_CASE("X3 a zero or inverted range is clamped, never a busy loop") {
    Backoff b(0ms, 0ms, 9);
    CHECK(b.next() >= 0ms);
    CHECK(b.ceiling(0) == 1ms);
    Backoff inverted(1000ms, 10ms, 9);
    CHECK(inverted.ceiling(5) == 1000ms);
}
