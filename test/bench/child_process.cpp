#include "child_process.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace xsgw::bench {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The fields of /proc/PID/stat after the command name (field 3, state, is index 0).
std::vector<std::string> stat_fields(pid_t pid) {
    const std::string stat = read_file(fmt::format("/proc/{}/stat", pid));
    // The command name in parentheses may hold spaces: count fields after the last ')'.
    const std::size_t paren = stat.rfind(')');
    std::vector<std::string> fields;
    if (paren == std::string::npos) {
        return fields;
    }
    std::istringstream in(stat.substr(paren + 1));
    for (std::string field; in >> field;) {
        fields.push_back(std::move(field));
    }
    return fields;
}

/// A "NAME:   N kB" line of a /proc status-like text, in KiB.
std::optional<long> kib_field(const std::string& text, std::string_view field) {
    std::istringstream lines(text);
    const std::string prefix = std::string(field) + ":";
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with(prefix)) {
            return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
        }
    }
    return std::nullopt;
}

} // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path, bool tree)
    : argv_(std::move(argv)), log_path_(std::move(log_path)), tree_(tree) {}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !wait_status_) {
        kill_tree();
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

void ChildProcess::start() {
    if (pid_ > 0 && !exited()) {
        throw std::runtime_error(fmt::format("{} is running already", argv_.at(0)));
    }
    pid_ = -1;
    pidfd_.reset();
    wait_status_.reset();
    const Fd log(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    const Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!log || !null) {
        throw std::runtime_error(
            fmt::format("cannot open {}: {}", log_path_, std::strerror(errno)));
    }
    // Everything the child needs is prepared before fork: it only calls async-signal-safe code.
    std::vector<std::string> args = argv_;
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        // Not the bench's service manager's business: the child logs to its file, notifies nobody.
        if (entry.starts_with("NOTIFY_SOCKET=") || entry.starts_with("JOURNAL_STREAM=") ||
            entry.starts_with("LISTEN_FDS=") || entry.starts_with("LISTEN_PID=") ||
            entry.starts_with("WATCHDOG_")) {
            continue;
        }
        env_strings.emplace_back(entry);
    }
    std::vector<char*> envp;
    envp.reserve(env_strings.size() + 1);
    for (auto& e : env_strings) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);

    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM); // nothing outlives a killed benchmark
        if (::getppid() != parent) {
            ::_exit(127);
        }
        ::setpgid(0, 0); // its own process group: a tree is killed as one
        ::dup2(null.get(), 0);
        ::dup2(log.get(), 1);
        ::dup2(log.get(), 2);
        ::execve(argv[0], argv.data(), envp.data());
        const char* why = std::strerror(errno);
        (void)!::write(2, "bench: exec failed: ", 20);
        (void)!::write(2, why, std::strlen(why));
        (void)!::write(2, "\n", 1);
        ::_exit(127);
    }
    pid_ = pid;
    pidfd_ = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd_) {
        throw std::runtime_error(fmt::format("pidfd_open: {}", std::strerror(errno)));
    }
}

bool ChildProcess::exited() {
    if (wait_status_) {
        return true;
    }
    if (pid_ <= 0) {
        return false;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        wait_status_ = status;
        return true;
    }
    return false;
}

std::string ChildProcess::exit_description() const {
    if (!wait_status_) {
        return "running";
    }
    if (WIFEXITED(*wait_status_)) {
        return fmt::format("exit status {}", WEXITSTATUS(*wait_status_));
    }
    if (WIFSIGNALED(*wait_status_)) {
        const int sig = WTERMSIG(*wait_status_);
        return fmt::format("killed by signal {} ({})", sig, ::strsignal(sig));
    }
    return "ended";
}

bool ChildProcess::exited_cleanly() const {
    return wait_status_ && WIFEXITED(*wait_status_) && WEXITSTATUS(*wait_status_) == 0;
}

std::vector<pid_t> ChildProcess::members() const {
    std::vector<pid_t> pids;
    if (pid_ <= 0 || wait_status_) {
        return pids;
    }
    pids.push_back(pid_);
    if (!tree_) {
        return pids;
    }
    const std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    if (!proc) {
        return pids;
    }
    while (const dirent* entry = ::readdir(proc.get())) {
        char* end = nullptr;
        const long pid = std::strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0' || pid == pid_) {
            continue;
        }
        // Field 4 (ppid) is index 1 after the command name.
        const std::vector<std::string> fields = stat_fields(static_cast<pid_t>(pid));
        if (fields.size() > 1 && std::strtol(fields[1].c_str(), nullptr, 10) == pid_) {
            pids.push_back(static_cast<pid_t>(pid));
        }
    }
    return pids;
}

void ChildProcess::kill_tree() {
    if (tree_) {
        ::kill(-pid_, SIGKILL); // its process group
    }
    ::kill(pid_, SIGKILL);
}

std::optional<double> ChildProcess::cpu_seconds() const {
    const std::vector<pid_t> pids = members();
    if (pids.empty()) {
        return std::nullopt;
    }
    unsigned long long ticks = 0;
    for (const pid_t pid : pids) {
        // utime (field 14) is index 11, stime (field 15) index 12.
        const std::vector<std::string> fields = stat_fields(pid);
        if (fields.size() > 12) {
            ticks += std::stoull(fields[11]) + std::stoull(fields[12]);
        } else if (pid == pid_) {
            return std::nullopt;
        }
    }
    return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::optional<long> ChildProcess::status_kib(std::string_view field) const {
    if (pid_ <= 0 || wait_status_) {
        return std::nullopt;
    }
    return kib_field(read_file(fmt::format("/proc/{}/status", pid_)), field);
}

std::optional<long> ChildProcess::pss_kib() const {
    const std::vector<pid_t> pids = members();
    if (pids.empty()) {
        return std::nullopt;
    }
    long total = 0;
    for (const pid_t pid : pids) {
        total += kib_field(read_file(fmt::format("/proc/{}/smaps_rollup", pid)), "Pss").value_or(0);
    }
    return total;
}

std::optional<std::uint64_t> ChildProcess::udp_drops(const std::string& host,
                                                     std::uint16_t port) const {
    if (pid_ <= 0 || wait_status_) {
        return std::nullopt;
    }
    // Lines: "sl local_address rem_address st ... inode ref pointer drops"; the address is the
    // 32-bit value in host (little-endian) order, in hex.
    in_addr address{};
    if (::inet_pton(AF_INET, host.c_str(), &address) != 1) {
        return std::nullopt;
    }
    const std::string local = fmt::format("{:08X}:{:04X}", address.s_addr, port);
    std::istringstream table(read_file(fmt::format("/proc/{}/net/udp", pid_)));
    std::string line;
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot;
        std::string bound;
        fields >> slot >> bound;
        if (bound != local) {
            continue;
        }
        std::string last;
        for (std::string field; fields >> field;) {
            last = field;
        }
        return std::strtoull(last.c_str(), nullptr, 10);
    }
    return std::nullopt;
}

bool ChildProcess::stop(std::chrono::milliseconds deadline) {
    if (pid_ <= 0) {
        return false;
    }
    if (!exited()) {
        ::kill(pid_, SIGTERM);
        pollfd p{pidfd_.get(), POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(deadline.count()));
        if (!exited()) {
            kill_tree();
            int status = 0;
            ::waitpid(pid_, &status, 0);
            wait_status_ = status;
            return false;
        }
    }
    if (tree_) {
        ::kill(-pid_, SIGKILL); // a worker the main process left behind
    }
    return exited_cleanly();
}

std::string ChildProcess::log_tail(int lines) const {
    std::istringstream text(read_file(log_path_));
    std::vector<std::string> all;
    std::string line;
    while (std::getline(text, line)) {
        all.push_back(std::move(line));
    }
    std::string tail;
    const std::size_t first = all.size() > static_cast<std::size_t>(lines) ? all.size() - lines : 0;
    for (std::size_t i = first; i < all.size(); ++i) {
        tail += all[i];
        tail += '\n';
    }
    return tail;
}

long ChildProcess::log_lines() const {
    const std::string text = read_file(log_path_);
    long n = 0;
    for (const char c : text) {
        n += c == '\n' ? 1 : 0;
    }
    return n;
}

} // namespace xsgw::bench
