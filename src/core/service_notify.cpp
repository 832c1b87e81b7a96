#include "xsgw/core/service_notify.hpp"

#include <cstdint>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace xsgw::core {

ServiceNotifier::ServiceNotifier(EventLoop& loop) : watchdog_timer_(loop) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        // Twice per period, as sd_watchdog_enabled(3) advises: a late tick is not a death.
        watchdog_every_ = std::chrono::milliseconds(std::max<std::uint64_t>(usec / 2000, 1));
        spdlog::info("systemd: watchdog every {} ms", watchdog_every_.count());
        watchdog();
    }
}

void ServiceNotifier::ready(const std::string& status) {
    if (ready_sent_) {
        this->status(status);
        return;
    }
    ready_sent_ = true;
    sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

void ServiceNotifier::status(const std::string& status) {
    sd_notifyf(0, "STATUS=%s", status.c_str());
}

void ServiceNotifier::stopping() {
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void ServiceNotifier::watchdog() {
    // Sent from a loop timer: a loop that hangs stops the pings and systemd restarts us.
    sd_notify(0, "WATCHDOG=1");
    watchdog_timer_.start(watchdog_every_, [this] { watchdog(); });
}

} // namespace xsgw::core
