// The xsgw under test: the config file written for it, its process, and the
// figures the kernel keeps about it (CPU time, peak resident memory).
#pragma once

#include "child_process.hpp"

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

    /// Writes the config (mode 0600) and starts xsgw with stdout/stderr into the log;
    /// throws std::runtime_error when it cannot.
    void start();
    /// The process id; -1 before start().
    pid_t pid() const { return process_.pid(); }
    /// A pidfd that polls readable once the process has exited; -1 before start().
    int exit_fd() const { return process_.exit_fd(); }
    /// True once the process has exited (reaps it without blocking).
    bool exited() { return process_.exited(); }
    /// "exit status N" / "killed by signal S" once exited, else "running".
    std::string exit_description() const { return process_.exit_description(); }
    /// True when the process exited on its own with status 0.
    bool exited_cleanly() const { return process_.exited_cleanly(); }
    /// utime + stime so far, in seconds (/proc/PID/stat).
    std::optional<double> cpu_seconds() const { return process_.cpu_seconds(); }
    /// Peak resident set size so far in KiB (VmHWM in /proc/PID/status).
    std::optional<long> peak_rss_kib() const { return process_.status_kib("VmHWM"); }
    /// A "NAME:   N kB" field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon, ...).
    std::optional<long> status_kib(std::string_view field) const {
        return process_.status_kib(field);
    }
    /// Datagrams the kernel dropped for a full receive buffer on the UDP socket bound to
    /// settings' host:port (the drops column of /proc/PID/net/udp, which lists every socket of
    /// the network namespace: the benchmark's own too).
    std::optional<std::uint64_t> udp_drops(std::uint16_t port) const {
        return process_.udp_drops(settings_.host, port);
    }
    /// SIGTERM, then wait up to `deadline` for the exit (SIGKILL after it); true if it exited 0.
    bool stop(std::chrono::milliseconds deadline) { return process_.stop(deadline); }
    /// The last `lines` lines xsgw wrote to its log.
    std::string log_tail(int lines) const { return process_.log_tail(lines); }
    /// Number of lines xsgw wrote to its log.
    long log_lines() const { return process_.log_lines(); }
    const std::string& config_path() const { return config_path_; }
    const std::string& log_path() const { return process_.log_path(); }
    /// The process itself, for code that watches xsgw and other programs alike.
    ChildProcess& process() { return process_; }

private:
    GatewaySettings settings_;
    std::string config_path_;
    ChildProcess process_;
};

/// Writes `text` to `path` with mode 0600 (also when the file existed with a wider mode);
/// throws std::runtime_error when it cannot.
void write_private_file(const std::string& path, const std::string& text);

} // namespace xsgw::bench
