// Telling the service manager (systemd, Type=notify) how the gateway is doing.
#pragma once

#include "xsgw/core/event_loop.hpp"

#include <string>

namespace xsgw::core {

/// sd_notify on our loop: READY=1 once (after the component handshake),
/// STATUS= on link changes, WATCHDOG=1 from a loop timer while the loop runs.
/// Without NOTIFY_SOCKET every call does nothing.
class ServiceNotifier {
public:
    explicit ServiceNotifier(EventLoop& loop);
    ServiceNotifier(const ServiceNotifier&) = delete;
    ServiceNotifier& operator=(const ServiceNotifier&) = delete;
    ServiceNotifier(ServiceNotifier&&) = delete;
    ServiceNotifier& operator=(ServiceNotifier&&) = delete;
    ~ServiceNotifier() = default;

    /// READY=1 the first time, with the status line; later calls send STATUS= only.
    void ready(const std::string& status);
    /// STATUS=: one line for `systemctl status`.
    void status(const std::string& status);
    /// STOPPING=1 at the start of a clean stop.
    void stopping();

private:
    void watchdog();

    Timer watchdog_timer_;
    std::chrono::milliseconds watchdog_every_{0};
    bool ready_sent_ = false;
};

} // namespace xsgw::core
