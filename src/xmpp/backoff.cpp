#include "xsgw/xmpp/backoff.hpp"

#include <algorithm>

namespace xsgw::xmpp {

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed)
    : min_(std::max(min, std::chrono::milliseconds(1))), max_(std::max(max, min_)), rng_(seed) {}

std::chrono::milliseconds Backoff::ceiling(unsigned failures) const {
    auto delay = min_;
    for (unsigned i = 0; i < failures && delay < max_; ++i)
        delay *= 2;
    return std::min(delay, max_);
}

std::chrono::milliseconds Backoff::next() {
    const auto top = ceiling(failures_).count();
    if (failures_ < 64) ++failures_;
    std::uniform_int_distribution<long long> pick(top / 2, top);
    return std::chrono::milliseconds(pick(rng_));
}

} // namespace xsgw::xmpp
