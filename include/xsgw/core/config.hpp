// The gateway's configuration: the TOML file of DESIGN.md's config contract, loaded and validated.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::core {

/// [xmpp]: the XEP-0114 component link to the XMPP server.
struct XmppConfig {
    /// Required: the domain this component owns.
    std::string component;
    /// Host name or IP of the component port.
    std::string host = "127.0.0.1";
    /// Component port, 1..65535.
    uint16_t port = 5347;
    /// From xmpp.secret or xmpp.secret_file (one trailing newline dropped); never log it.
    std::string secret;
    /// "secret" or the secret_file path, for messages.
    std::string secret_source;
    /// Silence on the link before a ping through the server, > 0.
    std::chrono::seconds keepalive_interval{30};
    /// Wait for the server after a keepalive before the link counts as lost, > 0.
    std::chrono::seconds keepalive_timeout{10};
    /// First reconnect delay, > 0, <= reconnect_max.
    std::chrono::milliseconds reconnect_min{500};
    /// Cap of the reconnect backoff, > 0.
    std::chrono::milliseconds reconnect_max{30000};
    /// Whether jabber:iq:version answers carry the OS.
    bool version_show_os = true;
    /// True when the secret was written in the config file itself (S1 mode check).
    bool secret_inline = false;
    /// Bare JIDs that may run the XEP-0050 ad-hoc commands (statistics).
    std::vector<std::string> admins;
    /// S7: the only XMPP domains whose users may use the gateway toward SIP, lowercase,
    /// without a trailing dot, each once; empty: every domain may.
    std::vector<std::string> allowed_domains;
    /// S5: messages and subscription requests toward SIP taken per sender (bare JID) per
    /// second, 0..1000000; past it resource-constraint (wait). 0: no limit.
    std::uint32_t max_stanzas_per_sender = 20;
    /// S5: how many one sender may send at once (the bucket's size), 1..1000000; when the file
    /// does not set it, twice max_stanzas_per_sender.
    std::uint32_t burst_per_sender = 40;
};

/// [sip]: the Sofia-SIP user agent.
struct SipConfig {
    /// Required: the SIP domain XMPP users appear under.
    std::string domain;
    /// Sofia URL sip: host[:port][;transport=udp|tcp] (TLS: tls_listen).
    std::string listen = "sip:127.0.0.1:5080";
    /// S4: where SIP over TLS listens, sips: host[:port]; empty: no TLS at all (TLS targets
    /// of RFC 3263 are skipped and a sips: destination fails).
    std::string tls_listen;
    /// S4: PEM certificate chain the gateway presents (leaf first); absolute path. Required
    /// with tls_listen.
    std::string tls_certificate;
    /// S4: PEM private key of tls_certificate; absolute path, not world-readable.
    std::string tls_key;
    /// S4: PEM file of the CAs trusted to sign a TLS peer's certificate; absolute path.
    std::string tls_ca_file = "/etc/ssl/certs/ca-certificates.crt";
    /// Who may speak for a domain: a MESSAGE or new SUBSCRIBE is taken only from a source
    /// address among its From domain's RFC 3263 targets; else 403 (503 when DNS fails).
    bool verify_from_domain = false;
    /// Type of the XMPP messages made from SIP MESSAGEs: "chat" or "normal" (M7).
    std::string message_type = "chat";
    /// Largest message body carried either way, 1..1048576 bytes; past it 413 / policy-violation.
    std::size_t max_message_bytes = 65536;
    /// S5: new requests (MESSAGE, new SUBSCRIBE) taken per source IP address per second,
    /// 0..1000000; past it 503 with Retry-After. 0: no limit.
    std::uint32_t max_requests_per_source = 200;
    /// S5: how many such requests one source may send at once (the token bucket's size),
    /// 1..1000000; when the file does not set it, twice max_requests_per_source.
    std::uint32_t burst_per_source = 400;
};

/// [dns]: the c-ares resolver.
struct DnsConfig {
    /// "IPv4:port" or "[IPv6]:port"; empty: system resolver.
    std::vector<std::string> servers;
};

/// [log]: the process logger.
struct LogConfig {
    /// One of trace debug info warn error critical off.
    std::string level = "info";
};

/// [metrics]: the optional Prometheus listener.
struct MetricsConfig {
    std::string listen; ///< "IPv4:port" or "[IPv6]:port" for GET /metrics; empty: off.
};

/// [presence]: subscriptions both ways (P1-P14) and the optional PUBLISH (P13).
struct PresenceConfig {
    /// Expires of the SUBSCRIBEs sent for XMPP watchers (P1), 1..86400 s.
    std::chrono::seconds subscribe_expires{3600};
    /// Shortest Expires taken from a SIP watcher; shorter: 423 with Min-Expires, 1..86400 s.
    std::chrono::seconds min_expires{60};
    /// Longest Expires granted to a SIP watcher; longer requests are shortened, >= min_expires.
    std::chrono::seconds max_expires{3600};
    /// Subscriptions one XMPP user may take part in, both directions together (P14).
    std::size_t max_per_user = 1000;
    /// Subscriptions in all (P14).
    std::size_t max_total = 200000;
    /// SIP URI of a presence server to PUBLISH XMPP users' presence to (P13); empty: off.
    std::string publish_to;
    /// Expires of those PUBLISHes, 1..86400 s.
    std::chrono::seconds publish_expires{3600};
    /// File keeping which XMPP users watch which SIP contacts across restarts; empty:
    /// $STATE_DIRECTORY/presence.state under systemd, else none.
    std::string state_file;
};

/// The [calls] table (issue 8): Jingle <-> SIP call set-up.
struct CallsConfig {
    /// Off: an INVITE gets 488 and a Jingle session-initiate service-unavailable.
    bool enabled = true;
    /// Calls at once; past it a new one is refused (503 / resource-constraint).
    std::size_t max_calls = 1000;
    /// How long a call from SIP rings at the XMPP user before it ends with 480, 5..600 s.
    std::chrono::seconds answer_timeout{60};
};

/// A complete, validated configuration: every field holds a usable value.
struct Config {
    /// The file it came from (as given), for messages.
    std::string path;
    /// The [xmpp] table.
    XmppConfig xmpp;
    /// The [sip] table.
    SipConfig sip;
    /// The [dns] table.
    DnsConfig dns;
    /// The [log] table.
    LogConfig log;
    /// The [metrics] table.
    MetricsConfig metrics;
    /// The [presence] table.
    PresenceConfig presence;
    /// The [calls] table.
    CallsConfig calls;
    /// Non-fatal notes, one line each "FILE: KEY: WHAT".
    std::vector<std::string> warnings;
};

/// Why a configuration was refused; never holds the secret.
struct ConfigError {
    /// The config file as given.
    std::string file;
    /// Dotted key ("xmpp.secret_file", "dns.servers[1]"); empty: whole file.
    std::string key;
    /// What is wrong, in words, one line.
    std::string what;
    /// One line "FILE: KEY: WHAT" ("FILE: WHAT" without a key).
    std::string to_string() const;
};

/// Exactly one of config and error is set.
struct ConfigResult {
    /// Set when the file was accepted.
    std::optional<Config> config;
    /// Set when it was refused: the first problem found.
    std::optional<ConfigError> error;
    /// True when config is set.
    bool ok() const { return config.has_value(); }
};

/// Reads and validates the file at path; refuses one that holds xmpp.secret and is
/// world-readable. Never throws.
ConfigResult load_config(const std::string& path);

/// Validates toml_text as if read from path_for_messages (no mode check of that file);
/// xmpp.secret_file is still read from disk, relative to path_for_messages' folder. Never throws.
ConfigResult parse_config(std::string_view toml_text, const std::string& path_for_messages);

/// True for exactly trace, debug, info, warn, error, critical and off.
bool is_valid_log_level(std::string_view level);

} // namespace xsgw::core
