#include "xsgw/core/log.hpp"

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sofia-sip/su_log.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <string>
#include <sys/stat.h>

namespace xsgw::core {
namespace {

// Sofia may emit one line in several calls: collect until the newline.
std::string& sofia_pending() {
    static std::string pending;
    return pending;
}

void sofia_logger(void* /*stream*/, char const* format, va_list args) {
    std::array<char, 2048> buf{};
    va_list copy;
    va_copy(copy, args);
    const int n = std::vsnprintf(buf.data(), buf.size(), format, copy);
    va_end(copy);
    if (n <= 0) return;
    auto& pending = sofia_pending();
    pending.append(buf.data(), std::min<size_t>(static_cast<size_t>(n), buf.size() - 1));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
        if (nl > 0) spdlog::info("sofia: {}", std::string_view(pending).substr(0, nl));
        pending.erase(0, nl + 1);
    }
}

unsigned sofia_level_for(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::trace:
        return 9;
    case spdlog::level::debug:
        return 5;
    case spdlog::level::info:
        return 1;
    case spdlog::level::warn:
        return 1;
    default:
        return 0;
    }
}

// systemd sets JOURNAL_STREAM=dev:ino when stderr is connected to the journal.
bool stderr_is_journal() {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) return false;
    struct stat st {};
    if (fstat(2, &st) != 0) return false;
    unsigned long dev = 0, ino = 0;
    if (std::sscanf(env, "%lu:%lu", &dev, &ino) != 2) return false;
    return dev == st.st_dev && ino == st.st_ino;
}

} // namespace

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
    static constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 7> names{{
        {"trace", spdlog::level::trace},
        {"debug", spdlog::level::debug},
        {"info", spdlog::level::info},
        {"warn", spdlog::level::warn},
        {"error", spdlog::level::err},
        {"critical", spdlog::level::critical},
        {"off", spdlog::level::off},
    }};
    for (const auto& [n, l] : names)
        if (n == name) return l;
    return std::nullopt;
}

void init_logging(spdlog::level::level_enum level) {
    std::shared_ptr<spdlog::logger> logger;
    if (stderr_is_journal()) {
        logger = std::make_shared<spdlog::logger>(
            "xsgw", std::make_shared<spdlog::sinks::systemd_sink_st>("xsgw"));
        logger->set_pattern("%v");
    } else {
        logger = std::make_shared<spdlog::logger>(
            "xsgw", std::make_shared<spdlog::sinks::stderr_sink_st>());
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
    }
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    su_log_redirect(su_log_default, &sofia_logger, nullptr);
    su_log_redirect(su_log_global, &sofia_logger, nullptr);
    set_log_level(level);
}

void set_log_level(spdlog::level::level_enum level) {
    spdlog::set_level(level);
    su_log_set_level(su_log_default, sofia_level_for(level));
    su_log_set_level(su_log_global, sofia_level_for(level));
}

} // namespace xsgw::core
