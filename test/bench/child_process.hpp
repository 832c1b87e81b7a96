// One program the benchmarks start and watch: its process, its log, and the
// figures the kernel keeps about it (CPU time, resident memory, UDP drops).
// Used for xsgw itself (gateway_process.hpp) and for the Kamailio reference.
#pragma once

#include "fd.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace xsgw::bench {

/// One child process with stdout and stderr in a log file; killed (with the processes it
/// forked itself, if asked to count them) if still running when this is destroyed.
class ChildProcess {
public:
    /// `tree`: the figures (CPU, memory) cover the process and its direct children, for
    /// programs that fork workers (Kamailio); else the process alone.
    ChildProcess(std::vector<std::string> argv, std::string log_path, bool tree = false);
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ChildProcess(ChildProcess&&) = delete;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ~ChildProcess();

    /// Starts the program (stdin /dev/null, stdout/stderr into the log, environment without the
    /// service manager's variables); throws std::runtime_error when it cannot.
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
    /// utime + stime so far, in seconds (/proc/PID/stat), summed over the tree if asked.
    std::optional<double> cpu_seconds() const;
    /// A "NAME:   N kB" field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon, ...), of the
    /// main process only.
    std::optional<long> status_kib(std::string_view field) const;
    /// Proportional set size of the process (or the tree) now, in KiB: memory shared between
    /// the processes counted once (/proc/PID/smaps_rollup).
    std::optional<long> pss_kib() const;
    /// Datagrams the kernel dropped for a full receive buffer on the UDP socket bound to
    /// host:port (the drops column of /proc/PID/net/udp, which lists every socket of the
    /// network namespace).
    std::optional<std::uint64_t> udp_drops(const std::string& host, std::uint16_t port) const;
    /// SIGTERM, then wait up to `deadline` for the exit (SIGKILL after it); true if it exited 0.
    bool stop(std::chrono::milliseconds deadline);
    /// The last `lines` lines of the log.
    std::string log_tail(int lines) const;
    /// Number of lines in the log.
    long log_lines() const;
    const std::string& log_path() const { return log_path_; }

private:
    /// The process and, for a tree, its direct children (read from /proc now).
    std::vector<pid_t> members() const;
    void kill_tree();

    std::vector<std::string> argv_;
    std::string log_path_;
    bool tree_;
    pid_t pid_ = -1;
    Fd pidfd_;
    std::optional<int> wait_status_;
};

} // namespace xsgw::bench
