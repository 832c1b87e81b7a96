#include "xsgw/dns/cache.hpp"

#include <algorithm>

namespace xsgw::dns {

std::optional<Answer> AnswerCache::find(const Query& q, Clock::time_point now) {
    const auto it = entries_.find(q);
    if (it == entries_.end()) return std::nullopt;
    if (it->second.expires <= now) {
        erase(it);
        return std::nullopt;
    }
    return it->second.answer;
}

void AnswerCache::store(const Query& q, const Answer& answer, Clock::time_point now) {
    std::chrono::seconds ttl{0};
    switch (answer.status) {
    case AnswerStatus::ok:
        ttl = std::min(std::chrono::seconds(answer.ttl), limits_.max_ttl);
        break;
    case AnswerStatus::no_data:
    case AnswerStatus::no_domain:
        ttl = std::min(limits_.negative_ttl, limits_.max_ttl);
        break;
    case AnswerStatus::error:
        // A timeout says nothing about the name; the next lookup must ask again.
        break;
    }
    if (const auto it = entries_.find(q); it != entries_.end()) erase(it);
    if (ttl.count() <= 0 || limits_.max_entries == 0) return;
    make_room(now);
    const auto expires = now + ttl;
    entries_.emplace(q, Entry{answer, expires});
    by_expiry_.emplace(expires, q);
}

std::optional<std::chrono::seconds> AnswerCache::remaining_ttl(const Query& q,
                                                               Clock::time_point now) const {
    const auto it = entries_.find(q);
    if (it == entries_.end() || it->second.expires <= now) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now);
}

void AnswerCache::erase(std::map<Query, Entry>::iterator it) {
    by_expiry_.erase({it->second.expires, it->first});
    entries_.erase(it);
}

void AnswerCache::make_room(Clock::time_point now) {
    while (!by_expiry_.empty() && by_expiry_.begin()->first <= now)
        erase(entries_.find(by_expiry_.begin()->second));
    while (entries_.size() >= limits_.max_entries && !by_expiry_.empty())
        erase(entries_.find(by_expiry_.begin()->second));
}

} // namespace xsgw::dns
