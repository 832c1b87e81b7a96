// The long-lived pool (see long_lived.hpp): the process's operator new and delete, which take
// from the pool while a LongLived scope is open on the thread and from malloc otherwise; delete
// tells the two apart by address. The pool is blocks of 1 MiB from mmap, each for one size class
// (16-byte steps up to max_size), carved in order and refilled from a free list per class. It
// serves one thread (the loop's): memory it handed out must be freed on that thread too.
#include "xsgw/core/long_lived.hpp"

#include "xsgw/core/event_loop.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#define XSGW_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) ||                         \
    __has_feature(thread_sanitizer)
#define XSGW_POOL 0
#endif
#endif
#ifndef XSGW_POOL
#define XSGW_POOL 1
#endif

namespace xsgw::core {
namespace {

thread_local int depth = 0;

#if XSGW_POOL
constexpr std::size_t step = 16;
constexpr std::size_t classes = LongLived::max_size / step + 1;
constexpr std::size_t block_size = std::size_t{1} << 20;
constexpr std::size_t max_blocks = 1U << 16; // 64 GiB of pool at most; then malloc

struct Block {
    std::uintptr_t base;
    std::size_t size_class;
};

struct Class {
    void* free = nullptr; // a list through the first word of each free slot
    char* next = nullptr; // the part of the newest block not handed out yet
    char* end = nullptr;
};

// Plain static data: operator new cannot use containers that allocate with it.
Block blocks[max_blocks]; // sorted by base
std::size_t block_count = 0;
std::uintptr_t lowest = UINTPTR_MAX;
std::uintptr_t highest = 0;
Class pool[classes];
std::size_t used = 0;

bool add_block(std::size_t size_class) {
    if (block_count == max_blocks) return false;
    void* memory =
        mmap(nullptr, block_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return false;
    const auto base = reinterpret_cast<std::uintptr_t>(memory);
    Block* at = std::upper_bound(blocks, blocks + block_count, base,
                                 [](std::uintptr_t b, const Block& x) { return b < x.base; });
    std::memmove(at + 1, at, static_cast<std::size_t>(blocks + block_count - at) * sizeof(Block));
    *at = Block{base, size_class};
    ++block_count;
    lowest = std::min(lowest, base);
    highest = std::max(highest, base + block_size);
    pool[size_class].next = static_cast<char*>(memory);
    pool[size_class].end = static_cast<char*>(memory) + block_size;
    return true;
}

void* take(std::size_t size) {
    const std::size_t size_class = (std::max<std::size_t>(size, 1) + step - 1) / step;
    Class& c = pool[size_class];
    const std::size_t bytes = size_class * step;
    if (c.free != nullptr) {
        void* slot = c.free;
        c.free = *static_cast<void**>(slot);
        used += bytes;
        return slot;
    }
    if (c.next == nullptr || c.next + bytes > c.end) {
        if (!add_block(size_class)) return nullptr;
    }
    void* slot = c.next;
    c.next += bytes;
    used += bytes;
    return slot;
}

// Gives p back to the pool when it is the pool's.
bool give_back(void* p) {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    if (address < lowest || address >= highest) return false;
    const Block* after =
        std::upper_bound(blocks, blocks + block_count, address,
                         [](std::uintptr_t a, const Block& x) { return a < x.base; });
    if (after == blocks) return false;
    const Block& block = *(after - 1);
    if (address >= block.base + block_size) return false;
    Class& c = pool[block.size_class];
    *static_cast<void**>(p) = c.free;
    c.free = p;
    used -= block.size_class * step;
    return true;
}
#endif

void* allocate(std::size_t size) {
#if XSGW_POOL
    if (depth > 0 && size <= LongLived::max_size) {
        if (void* p = take(size)) return p;
    }
#endif
    return std::malloc(size == 0 ? 1 : size);
}

[[maybe_unused]] void release(void* p) {
    if (p == nullptr) return;
#if XSGW_POOL
    if (give_back(p)) return;
#endif
    std::free(p);
}

[[maybe_unused]] void* allocate_or_throw(std::size_t size) {
    for (;;) {
        if (void* p = allocate(size)) return p;
        const std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) throw std::bad_alloc();
        handler();
    }
}

} // namespace

LongLived::LongLived() {
    ++depth;
}
LongLived::~LongLived() {
    --depth;
}

std::size_t LongLived::in_use() {
#if XSGW_POOL
    return used;
#else
    return 0;
#endif
}

std::size_t LongLived::reserved() {
#if XSGW_POOL
    return block_count * block_size;
#else
    return 0;
#endif
}

bool LongLived::enabled() {
    return XSGW_POOL != 0;
}

namespace {

// Resident bytes of this process (/proc/self/statm), 0 when unknown.
std::size_t resident_bytes() {
    std::FILE* file = std::fopen("/proc/self/statm", "re");
    if (file == nullptr) return 0;
    unsigned long size = 0;
    unsigned long resident = 0;
    const int read = std::fscanf(file, "%lu %lu", &size, &resident);
    std::fclose(file);
    if (read != 2) return 0;
    return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

} // namespace

HeapTrimmer::HeapTrimmer(EventLoop& loop, std::function<std::size_t()> busy,
                         std::chrono::milliseconds interval)
    : timer_(std::make_unique<Timer>(loop)), busy_(std::move(busy)), interval_(interval),
      resident_after_(resident_bytes()) {
    arm();
}

HeapTrimmer::~HeapTrimmer() = default;

void HeapTrimmer::arm() {
    timer_->start(interval_, [this] {
        check();
        arm();
    });
}

void HeapTrimmer::stop() {
    timer_->cancel();
}

bool HeapTrimmer::check() {
    using Clock = std::chrono::steady_clock;
    const std::size_t busy = busy_ ? busy_() : 0;
    most_busy_ = std::max(most_busy_, busy);
    const std::size_t resident = resident_bytes();
    if (resident < resident_after_ + grow_above || busy * quiet_ratio > most_busy_) return false;
    const auto began = Clock::now();
    const struct mallinfo2 heap = mallinfo2();
    malloc_trim(0);
    const auto took = Clock::now() - began;
    const std::size_t after = resident_bytes();
    ++trims_;
    returned_bytes_ += resident > after ? resident - after : 0;
    spdlog::info("memory: resident {} -> {} MiB: the heap's free memory given back after a burst "
                 "({} MiB of it in use, {} MiB in the long-lived pool; {} transactions alive, "
                 "{} at most) in {:.1f} ms",
                 resident >> 20, after >> 20, heap.uordblks >> 20, LongLived::in_use() >> 20, busy,
                 most_busy_,
                 std::chrono::duration_cast<std::chrono::microseconds>(took).count() / 1000.0);
    resident_after_ = after;
    most_busy_ = busy;
    return true;
}

} // namespace xsgw::core

#if XSGW_POOL
// The replaceable global allocation functions ([new.delete]); the aligned forms stay the
// library's (aligned_alloc and free: never the pool's).
void* operator new(std::size_t size) {
    return xsgw::core::allocate_or_throw(size);
}
void* operator new[](std::size_t size) {
    return xsgw::core::allocate_or_throw(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return xsgw::core::allocate_or_throw(size);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return xsgw::core::allocate_or_throw(size);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept {
    xsgw::core::release(p);
}
void operator delete[](void* p) noexcept {
    xsgw::core::release(p);
}
void operator delete(void* p, std::size_t) noexcept {
    xsgw::core::release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    xsgw::core::release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    xsgw::core::release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    xsgw::core::release(p);
}
#endif
