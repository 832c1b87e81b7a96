// Reconnect pacing for the component link (X3).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace xsgw::xmpp {

/// Capped exponential backoff with jitter: attempt n waits a random delay in
/// [d/2, d] where d = min(max, min * 2^n). Jitter keeps several gateways that
/// lost the same server from reconnecting in lock step.
class Backoff {
public:
    Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed);

    /// The delay before the next attempt; each call counts one more failure.
    std::chrono::milliseconds next();
    /// Back to the shortest delay, after a link came up.
    void reset() { failures_ = 0; }
    /// Consecutive failures counted since the last reset.
    unsigned failures() const { return failures_; }
    /// The upper bound of the delay for the given failure count (no jitter).
    std::chrono::milliseconds ceiling(unsigned failures) const;

private:
    std::chrono::milliseconds min_;
    std::chrono::milliseconds max_;
    unsigned failures_ = 0;
    std::mt19937_64 rng_;
};

} // namespace xsgw::xmpp
