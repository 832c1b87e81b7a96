// A bounded TTL cache of DNS answers keyed by (name, type). Pure: time is passed in.
#pragma once

#include "xsgw/dns/rfc3263.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace xsgw::dns {

/// Keeps answers for min(TTL, max_ttl), negative answers (NXDOMAIN, no data) for
/// negative_ttl, failures (AnswerStatus::error) and TTL 0 answers not at all; holds at most
/// max_entries, dropping expired entries first, then those closest to expiry.
class AnswerCache {
public:
    using Clock = std::chrono::steady_clock;

    struct Limits {
        std::chrono::seconds max_ttl{3600};
        std::chrono::seconds negative_ttl{30};
        std::size_t max_entries = 10000;
    };

    explicit AnswerCache(Limits limits) : limits_(limits) {}
    ~AnswerCache() = default;
    AnswerCache(const AnswerCache&) = delete;
    AnswerCache& operator=(const AnswerCache&) = delete;
    AnswerCache(AnswerCache&&) = default;
    AnswerCache& operator=(AnswerCache&&) = default;

    /// The answer stored for q if it has not expired at `now`; drops it once expired.
    std::optional<Answer> find(const Query& q, Clock::time_point now);
    /// Stores a (copy of the) answer received at `now`, replacing any earlier one.
    void store(const Query& q, const Answer& answer, Clock::time_point now);
    /// Seconds left before q expires (rounded down), nullopt when not cached or expired.
    std::optional<std::chrono::seconds> remaining_ttl(const Query& q, Clock::time_point now) const;
    /// Entries held, expired ones included until they are dropped.
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        Answer answer;
        Clock::time_point expires;
    };

    void erase(std::map<Query, Entry>::iterator it);
    void make_room(Clock::time_point now);

    Limits limits_;
    std::map<Query, Entry> entries_;
    // Every entry by expiry, so the next one to drop is the first.
    std::set<std::pair<Clock::time_point, Query>> by_expiry_;
};

} // namespace xsgw::dns
