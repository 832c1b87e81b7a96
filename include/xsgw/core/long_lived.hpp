// Memory for state that lives long (a subscription's, issue 4), kept apart from the short-lived.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace xsgw::core {

/// While one exists (on the loop's thread), the C++ allocations of that thread of up to
/// LongLived::max_size bytes come from a pool of their own, packed by size, instead of the heap
/// that the SIP stack's messages come from. A subscription's few hundred bytes are made among
/// the many kilobytes of the messages that set it up; once those are freed, the subscription's
/// scattered pieces would keep most of the heap's pages resident (the allocator can give back
/// only whole free pages). Held in the pool they keep only their own.
///
/// What is allocated in scope and freed soon goes back to the pool and is used again; nothing
/// else changes. Sanitizer builds keep their own allocator (the pool is off there).
class LongLived {
public:
    LongLived();
    ~LongLived();
    LongLived(const LongLived&) = delete;
    LongLived& operator=(const LongLived&) = delete;
    LongLived(LongLived&&) = delete;
    LongLived& operator=(LongLived&&) = delete;

    static constexpr std::size_t max_size = 512;

    /// Bytes of the pool in use now, and reserved from the system (its blocks).
    static std::size_t in_use();
    static std::size_t reserved();
    /// Whether the pool serves allocations in this build.
    static bool enabled();
};

class EventLoop;
class Timer;

/// Gives the heap's free memory back to the system after a burst: a burst of SIP transactions
/// (each kept 32 s after its answer over UDP) leaves its memory free but resident until the
/// allocator is told (malloc_trim). Telling it costs time in proportion to the heap's free pieces
/// while the burst's transactions still live (up to some 0.2 s at 100 000 of them), and next to
/// nothing once they are gone, which the long-lived pool lets happen (nothing else stays between
/// them). malloc_trim gives back each free piece with a system call of its own: while a tenth of
/// a burst still lives, the holes between them make it last a second (measured at 100 000
/// subscriptions set up at 11 000/s), once they are gone one piece is left and it lasts
/// milliseconds. So every interval it looks (cheap: the resident size, and the transactions
/// alive that `busy` gives) and trims once the process grew by grow_above since the last trim
/// and the transactions alive are down to 1/quiet_ratio of the most seen since. Each trim is
/// logged with what it gave back and how long the loop waited: about a millisecond per MiB (the
/// kernel's work), paid when the gateway has been quiet for 32 s.
class HeapTrimmer {
public:
    static constexpr std::size_t grow_above = std::size_t{64} << 20;
    static constexpr std::size_t quiet_ratio = 256;
    /// busy: how many transactions (or other short-lived things) are alive now.
    HeapTrimmer(EventLoop& loop, std::function<std::size_t()> busy,
                std::chrono::milliseconds interval = std::chrono::seconds(5));
    ~HeapTrimmer();
    HeapTrimmer(const HeapTrimmer&) = delete;
    HeapTrimmer& operator=(const HeapTrimmer&) = delete;
    HeapTrimmer(HeapTrimmer&&) = delete;
    HeapTrimmer& operator=(HeapTrimmer&&) = delete;

    /// No more looks (a stop: its bursts are not worth a trim).
    void stop();
    /// Looks now (what the timer does); true when it trimmed.
    bool check();
    /// Trims done, and the resident bytes they gave back.
    std::uint64_t trims() const { return trims_; }
    std::uint64_t returned_bytes() const { return returned_bytes_; }

private:
    void arm();
    std::unique_ptr<Timer> timer_;
    std::function<std::size_t()> busy_;
    std::chrono::milliseconds interval_;
    std::size_t resident_after_ = 0; ///< after the last trim (or at the start)
    std::size_t most_busy_ = 0;      ///< since the last trim
    std::uint64_t trims_ = 0;
    std::uint64_t returned_bytes_ = 0;
};

} // namespace xsgw::core
