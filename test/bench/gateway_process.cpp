#include "gateway_process.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace xsgw::bench {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_private_file(const std::string& path, const std::string& text) {
    const Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) {
        throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    }
    // The file holds the component secret: 0600 even if it existed with a wider mode.
    if (::fchmod(fd.get(), 0600) != 0 ||
        ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    }
}

} // namespace

GatewayProcess::GatewayProcess(GatewaySettings settings)
    : settings_(std::move(settings)),
      config_path_(settings_.workdir + "/" + settings_.name + ".toml"),
      log_path_(settings_.workdir + "/" + settings_.name + ".log") {}

GatewayProcess::~GatewayProcess() {
    if (pid_ > 0 && !wait_status_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

void GatewayProcess::start() {
    // Logging is part of the cost being measured: warn, as an operator would run it under load.
    write_private_file(config_path_,
                       fmt::format(R"([xmpp]
component = "{}"
host = "{}"
port = {}
secret = "{}"

[sip]
domain = "{}"
listen = "sip:{}:{}"

[log]
level = "warn"
{}{})",
                                   settings_.component, settings_.host, settings_.xmpp_port,
                                   settings_.secret, settings_.sip_domain, settings_.host,
                                   settings_.sip_port, settings_.extra_config.empty() ? "" : "\n",
                                   settings_.extra_config));

    const Fd log(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    const Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!log || !null) {
        throw std::runtime_error(
            fmt::format("cannot open {}: {}", log_path_, std::strerror(errno)));
    }
    // Everything the child needs is prepared before fork: it only calls async-signal-safe code.
    std::vector<std::string> args = {settings_.binary, "-c", config_path_};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        // Not the bench's service manager's business: xsgw logs to its file and notifies nobody.
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
        ::prctl(PR_SET_PDEATHSIG, SIGTERM); // no gateway outlives a killed benchmark
        if (::getppid() != parent) {
            ::_exit(127);
        }
        ::dup2(null.get(), 0);
        ::dup2(log.get(), 1);
        ::dup2(log.get(), 2);
        ::execve(argv[0], argv.data(), envp.data());
        const char* why = std::strerror(errno);
        (void)!::write(2, "xsgw_bench: exec failed: ", 25);
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

bool GatewayProcess::exited() {
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

std::string GatewayProcess::exit_description() const {
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

bool GatewayProcess::exited_cleanly() const {
    return wait_status_ && WIFEXITED(*wait_status_) && WEXITSTATUS(*wait_status_) == 0;
}

std::optional<double> GatewayProcess::cpu_seconds() const {
    if (pid_ <= 0 || wait_status_) {
        return std::nullopt;
    }
    const std::string stat = read_file(fmt::format("/proc/{}/stat", pid_));
    // The command name in parentheses may hold spaces: count fields after the last ')'.
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(stat.substr(paren + 1));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    // After ')': field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    for (int i = 0; i <= 12 && fields >> field; ++i) {
        if (i == 11) {
            utime = std::stoull(field);
        } else if (i == 12) {
            stime = std::stoull(field);
        }
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::optional<long> GatewayProcess::peak_rss_kib() const {
    return status_kib("VmHWM");
}

std::optional<long> GatewayProcess::status_kib(std::string_view field) const {
    if (pid_ <= 0 || wait_status_) {
        return std::nullopt;
    }
    std::istringstream status(read_file(fmt::format("/proc/{}/status", pid_)));
    const std::string prefix = std::string(field) + ":";
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with(prefix)) {
            return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> GatewayProcess::udp_drops(std::uint16_t port) const {
    if (pid_ <= 0 || wait_status_) {
        return std::nullopt;
    }
    // Lines: "sl local_address rem_address st ... inode ref pointer drops"; the address is the
    // 32-bit value in host (little-endian) order, in hex.
    in_addr host{};
    if (::inet_pton(AF_INET, settings_.host.c_str(), &host) != 1) {
        return std::nullopt;
    }
    const std::string local = fmt::format("{:08X}:{:04X}", host.s_addr, port);
    std::istringstream table(read_file(fmt::format("/proc/{}/net/udp", pid_)));
    std::string line;
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot;
        std::string address;
        fields >> slot >> address;
        if (address != local) {
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

bool GatewayProcess::stop(std::chrono::milliseconds deadline) {
    if (pid_ <= 0) {
        return false;
    }
    if (!exited()) {
        ::kill(pid_, SIGTERM);
        pollfd p{pidfd_.get(), POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(deadline.count()));
        if (!exited()) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            wait_status_ = status;
            return false;
        }
    }
    return exited_cleanly();
}

std::string GatewayProcess::log_tail(int lines) const {
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

long GatewayProcess::log_lines() const {
    const std::string text = read_file(log_path_);
    long n = 0;
    for (const char c : text) {
        n += c == '\n' ? 1 : 0;
    }
    return n;
}

} // namespace xsgw::bench
