// One logger for the whole process: spdlog, with Sofia-SIP's su_log fed into it.
#pragma once

#include <optional>
#include <spdlog/spdlog.h>
#include <string_view>

namespace xsgw::core {

/// Parses a config/command-line level name (trace debug info warn error critical off).
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

/// Installs the process logger: the journal when stderr is journald's stream, else stderr.
/// Also routes every Sofia-SIP su_log line into it.
void init_logging(spdlog::level::level_enum level);

/// Changes the level of our logger and the matching Sofia-SIP log threshold.
void set_log_level(spdlog::level::level_enum level);

} // namespace xsgw::core
