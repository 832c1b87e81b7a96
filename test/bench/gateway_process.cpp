#include "gateway_process.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace xsgw::bench {

void write_private_file(const std::string& path, const std::string& text) {
    const Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) {
        throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    }
    // The file may hold a secret: 0600 even if it existed with a wider mode.
    if (::fchmod(fd.get(), 0600) != 0 ||
        ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    }
}

GatewayProcess::GatewayProcess(GatewaySettings settings)
    : settings_(std::move(settings)),
      config_path_(settings_.workdir + "/" + settings_.name + ".toml"),
      process_({settings_.binary, "-c", config_path_},
               settings_.workdir + "/" + settings_.name + ".log") {}

void GatewayProcess::start() {
    // Logging is part of the cost being measured: warn, as an operator would run it under load.
    write_private_file(config_path_,
                       fmt::format(R"([xmpp]
component = "{}"
host = "{}"
port = {}
secret = "{}"
# A few senders at full speed: the per-sender limit (S5) would measure itself.
max_stanzas_per_sender = 0

[sip]
domain = "{}"
listen = "sip:{}:{}"
# One load generator on one address: the per-source limit (S5) would measure itself.
max_requests_per_source = 0

[log]
level = "warn"
{}{})",
                                   settings_.component, settings_.host, settings_.xmpp_port,
                                   settings_.secret, settings_.sip_domain, settings_.host,
                                   settings_.sip_port, settings_.extra_config.empty() ? "" : "\n",
                                   settings_.extra_config));
    process_.start();
}

} // namespace xsgw::bench
