// The xsgw under test: the config file written for it, its process, and the
// figures the kernel keeps about it (CPU time, peak resident memory).
#pragma once

#include "fd.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace xsgw::bench {

/// Where and how the gateway runs; everything on loopback.
struct GatewaySettings {
    std::string binary;  ///< path of the xsgw executable
    std::string workdir; ///< config and log go here
    std::string name;    ///< file name stem: <name>.toml, <name>.log
    std::uint16_t xmpp_port = 0;
    std::uint16_t sip_port = 0;
    std::string secret;
    std::string component;  ///< xmpp.component
    std::string sip_domain; ///< sip.domain
    /// The IPv4 loopback address of both the XMPP server xsgw connects to and its SIP listener.
    std::string host = "127.0.0.1";
    /// More TOML tables appended to the config as they are (e.g. "[presence]\n...").
    std::string extra_config{};
};

/// One xsgw process; killed if still running when this is destroyed.
class GatewayProcess {
public:
    explicit GatewayProcess(GatewaySettings settings);
    GatewayProcess(const GatewayProcess&) = delete;
    GatewayProcess& operator=(const GatewayProcess&) = delete;
    GatewayProcess(GatewayProcess&&) = delete;
    GatewayProcess& operator=(GatewayProcess&&) = delete;
    ~GatewayProcess();

    /// Writes the config (mode 0600) and starts xsgw with stdout/stderr into the log;
    /// throws std::runtime_error when it cannot.
    void start();
    /// The process id; -1 before start().
    pid_t pid() const { return pid_; }
    /// A pidfd that polls readable once the process has exited; -1 before start().
    int exit_fd() const { return pidfd_.get(); }
    /// True once the process has exited (reaps it without blocking).
    bool exited();
    /// "exit status N" / "killed by signal S" once exited, else "running".
    std::string exit_description() const;
    /// True when the process exited on its own with status 0.
    bool exited_cleanly() const;
    /// utime + stime so far, in seconds (/proc/PID/stat).
    std::optional<double> cpu_seconds() const;
    /// Peak resident set size so far in KiB (VmHWM in /proc/PID/status).
    std::optional<long> peak_rss_kib() const;
    /// A "NAME:   N kB" field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon, ...).
    std::optional<long> status_kib(std::string_view field) const;
    /// Datagrams the kernel dropped for a full receive buffer on the UDP socket bound to
    /// settings' host:port (the drops column of /proc/PID/net/udp, which lists every socket of
    /// the network namespace: the benchmark's own too).
    std::optional<std::uint64_t> udp_drops(std::uint16_t port) const;
    /// SIGTERM, then wait up to `deadline` for the exit (SIGKILL after it); true if it exited 0.
    bool stop(std::chrono::milliseconds deadline);
    /// The last `lines` lines xsgw wrote to its log.
    std::string log_tail(int lines) const;
    /// Number of lines xsgw wrote to its log.
    long log_lines() const;
    const std::string& config_path() const { return config_path_; }
    const std::string& log_path() const { return log_path_; }

private:
    GatewaySettings settings_;
    std::string config_path_;
    std::string log_path_;
    pid_t pid_ = -1;
    Fd pidfd_;
    std::optional<int> wait_status_;
};

} // namespace xsgw::bench
