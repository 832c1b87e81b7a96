// xsgw: the daemon. Wiring only: config, logging, the loop, the gateway, signals.
#include "xsgw/bridge/gateway.hpp"
#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/core/log.hpp"
#include "xsgw/core/metrics.hpp"
#include "xsgw/core/service_notify.hpp"
#include "xsgw_build.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>

namespace {

// SIGTERM: at most 3 s for the answers to messages under way (+1 s to flush the link), then at
// most 15 s to end the SIP dialogs (some 10 000 a second: 100 000 subscriptions take ~10 s);
// TimeoutStopSec in the unit is 30 s.
constexpr std::chrono::milliseconds drain_deadline{3000};
constexpr std::chrono::milliseconds sip_stop_deadline{15000};

constexpr int exit_config = 2;
constexpr int exit_runtime = 1;

// The config file checked by the config loader and by the address rules.
std::optional<xsgw::core::Config> checked_config(const std::string& path) {
    auto loaded = xsgw::core::load_config(path);
    if (!loaded.ok()) {
        std::fprintf(stderr, "xsgw: %s\n", loaded.error->to_string().c_str());
        return std::nullopt;
    }
    if (auto bad = xsgw::bridge::check_addressing(*loaded.config)) {
        const xsgw::core::ConfigError error{path, bad->first, bad->second};
        std::fprintf(stderr, "xsgw: %s\n", error.to_string().c_str());
        return std::nullopt;
    }
    return std::move(loaded.config);
}

int run(const std::string& config_path, const std::string& cli_level) {
    const auto checked = checked_config(config_path);
    if (!checked) return exit_config;
    const xsgw::core::Config& config = *checked;
    const auto level =
        xsgw::core::parse_log_level(cli_level.empty() ? config.log.level : cli_level);
    xsgw::core::init_logging(*level);
    for (const auto& warning : config.warnings)
        spdlog::warn("config: {}", warning);
    spdlog::info("xsgw {} starting: component {} via {}:{}, SIP domain {}", XSGW_VERSION,
                 config.xmpp.component, config.xmpp.host, config.xmpp.port, config.sip.domain);

    xsgw::core::EventLoop loop;
    xsgw::bridge::Gateway gateway(loop, config);
    xsgw::core::ServiceNotifier notifier(loop);
    std::unique_ptr<xsgw::core::MetricsServer> metrics;
    if (!config.metrics.listen.empty())
        metrics = std::make_unique<xsgw::core::MetricsServer>(loop, config.metrics.listen,
                                                              [&] { return gateway.metrics(); });
    gateway.set_link_state_handler([&](bool up, const std::string& reason) {
        // READY only once the XMPP server took us: before that we serve nobody.
        if (up)
            notifier.ready(fmt::format("component {} connected to {}:{}", config.xmpp.component,
                                       config.xmpp.host, config.xmpp.port));
        else if (reason == "stopping")
            notifier.status("XMPP link closed: stopping");
        else
            notifier.status(fmt::format("XMPP link down ({}), reconnecting", reason));
    });
    auto current_level = *level;
    xsgw::core::SignalWatch signals(loop, {SIGTERM, SIGINT, SIGHUP}, [&](int signo) {
        if (signo == SIGHUP) {
            auto reread = xsgw::core::load_config(config_path);
            if (!reread.ok()) {
                spdlog::error("xsgw: SIGHUP: config not reloaded: {}", reread.error->to_string());
                return;
            }
            for (const auto& change : gateway.reload(*reread.config))
                spdlog::info("xsgw: SIGHUP: {}", change);
            if (!cli_level.empty()) {
                spdlog::info("xsgw: SIGHUP: log level fixed by --log-level {}", cli_level);
                return;
            }
            const auto next = *xsgw::core::parse_log_level(reread.config->log.level);
            if (next == current_level) {
                spdlog::info("xsgw: SIGHUP: log level unchanged ({})", reread.config->log.level);
                return;
            }
            spdlog::info("xsgw: SIGHUP: log level {} -> {}",
                         spdlog::level::to_string_view(current_level), reread.config->log.level);
            current_level = next;
            xsgw::core::set_log_level(next);
            return;
        }
        spdlog::info("xsgw: stopping ({})", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        notifier.stopping();
        gateway.begin_stop();
        loop.stop();
    });
    gateway.start();
    loop.run();
    // Outside the signal handler, so the loop is not run from inside itself: the messages under
    // way get their answers, the link closes, then the SIP dialogs end one by one
    // (un-SUBSCRIBE, NOTIFY terminated, un-PUBLISH), well within systemd's stop timeout.
    gateway.drain(drain_deadline);
    gateway.end_sip(sip_stop_deadline);
    spdlog::info("xsgw: stopped");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xsgw: a transparent XMPP <-> SIP/SIMPLE gateway (XEP-0114 component)", "xsgw"};
    std::string config_path = "/etc/xsgw/xsgw.toml";
    std::string cli_level;
    bool check_only = false;
    app.add_option("-c,--config", config_path, "configuration file (TOML)")->capture_default_str();
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
    app.add_option("--log-level", cli_level, "override log.level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.set_version_flag("--version", std::string("xsgw ") + XSGW_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : exit_config;
    }

    if (check_only) {
        const auto checked = checked_config(config_path);
        if (!checked) return exit_config;
        for (const auto& warning : checked->warnings)
            std::fprintf(stderr, "xsgw: warning: %s\n", warning.c_str());
        std::printf("%s: configuration OK\n", config_path.c_str());
        return 0;
    }
    try {
        return run(config_path, cli_level);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "xsgw: fatal: %s\n", e.what());
        return exit_runtime;
    }
}
