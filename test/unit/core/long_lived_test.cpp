// Issue 4: the long-lived pool and the heap trimmer.
#include "xsgw/core/event_loop.hpp"
#include "xsgw/core/long_lived.hpp"

#include <cstdio>
#include <doctest/doctest.h>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using xsgw::core::EventLoop;
using xsgw::core::HeapTrimmer;
using xsgw::core::LongLived;

namespace {

std::size_t resident() {
    std::FILE* file = std::fopen("/proc/self/statm", "re");
    REQUIRE(file != nullptr);
    unsigned long size = 0;
    unsigned long pages = 0;
    REQUIRE(std::fscanf(file, "%lu %lu", &size, &pages) == 2);
    std::fclose(file);
    return pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

} // namespace

TEST_CASE("P14 what a LongLived scope allocates comes from the pool and goes back to it") {
    if (!LongLived::enabled()) {
        MESSAGE("the pool is off in sanitizer builds (their allocator stays)");
        CHECK(LongLived::in_use() == 0);
        return;
    }
    const std::size_t before = LongLived::in_use();
    std::vector<std::unique_ptr<std::string>> kept;
    kept.reserve(1000); // outside any scope: the heap
    {
        const LongLived scope;
        for (int i = 0; i < 1000; ++i)
            kept.push_back(std::make_unique<std::string>(40, 'x')); // object + 41 bytes
    }
    const std::size_t held = LongLived::in_use() - before;
    // Each: a 32-byte string object and a 48-byte buffer (16-byte classes), nothing else.
    CHECK(held == 1000 * (32 + 48));
    // Outside a scope nothing comes from the pool, even to grow what is in it.
    kept.front()->append(std::string(100, 'y'));
    CHECK(LongLived::in_use() - before == held - 48);
    kept.clear();
    CHECK(LongLived::in_use() == before);
    // What went back is used again.
    const std::size_t reserved = LongLived::reserved();
    {
        const LongLived scope;
        for (int i = 0; i < 1000; ++i)
            kept.push_back(std::make_unique<std::string>(40, 'x'));
    }
    CHECK(LongLived::reserved() == reserved);
    kept.clear();
    // Larger than max_size: the heap, scope or not.
    {
        const LongLived scope;
        auto big = std::make_unique<char[]>(LongLived::max_size + 1);
        CHECK(LongLived::in_use() == before);
    }
}

TEST_CASE("P14 the heap trimmer gives a burst's memory back once it is over, not before") {
    if (!LongLived::enabled()) {
        MESSAGE("sanitizer build: its allocator keeps freed memory itself");
        CHECK(LongLived::reserved() == 0);
        return;
    }
    EventLoop loop;
    std::size_t busy = 0;
    HeapTrimmer trimmer(
        loop, [&busy] { return busy; }, std::chrono::hours(1));
    // A burst: 256 MiB in small pieces (what transactions leave), all alive.
    std::vector<std::unique_ptr<char[]>> burst;
    const std::size_t pieces = (std::size_t{256} << 20) / 1024;
    burst.reserve(pieces);
    for (std::size_t i = 0; i < pieces; ++i) {
        burst.push_back(std::make_unique<char[]>(1000));
        burst.back()[0] = 1; // resident
    }
    // Something that lives on above it (so free() alone cannot shrink the heap).
    const auto pin = std::make_unique<char[]>(1000);
    busy = 100000;
    CHECK_FALSE(trimmer.check()); // grown, but busy
    burst.clear();
    burst.shrink_to_fit();
    busy = 1000; // down to 1 %: still too many holes
    CHECK_FALSE(trimmer.check());
    CHECK(trimmer.trims() == 0);
    const std::size_t high = resident();
    busy = 0;
    CHECK(trimmer.check());
    CHECK(trimmer.trims() == 1);
    CHECK(resident() + (std::size_t{128} << 20) < high);
    CHECK(trimmer.returned_bytes() > (std::size_t{128} << 20));
    CHECK_FALSE(trimmer.check()); // nothing grew since
}
