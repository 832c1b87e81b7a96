#include "xsgw/bridge/gateway.hpp"

#include "xsgw/address/address.hpp"
#include "xsgw/bridge/routing.hpp"
#include "xsgw/xmpp/stanza.hpp"
#include "xsgw_build.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gloox/tag.h>
#include <spdlog/spdlog.h>

namespace xsgw::bridge {
namespace {
// How long a graceful stop waits for the server's closing tag after ours.
constexpr std::chrono::milliseconds close_wait{1000};

xmpp::StanzaError to_stanza_error(const address::AddressError& e) {
    return {std::string(address::error_type(e.condition)),
            std::string(address::to_string(e.condition)), e.reason};
}

// The domain of the sender's JID as the address rules normalise it; empty when it does not parse.
std::string sender_domain(const gloox::Tag& stanza) {
    auto from = address::parse_jid(stanza.findAttribute("from"));
    return from ? from->domain : std::string();
}

// A list of domains for a log line.
std::string domains_text(const std::vector<std::string>& domains) {
    if (domains.empty()) return "[] (every domain)";
    return fmt::format("[{}]", fmt::join(domains, ", "));
}

address::AddressConfig address_config(const core::Config& config) {
    address::AddressConfig a;
    a.component = config.xmpp.component;
    a.sip_domain = config.sip.domain;
    return a;
}

} // namespace

std::variant<std::string, xmpp::StanzaError> prompt_to_contact_jid(const std::string& prompt,
                                                                   const core::Config& config) {
    auto uri = address::parse_sip_address_prompt(prompt);
    if (!uri) return to_stanza_error(uri.error());
    uri->gr.clear(); // the contact is its address of record, not one device
    auto jid = address::sip_to_contact_jid(uri.value(), address_config(config));
    if (!jid) return to_stanza_error(jid.error());
    return address::bare_string(jid.value());
}

std::optional<std::pair<std::string, std::string>> check_addressing(const core::Config& config) {
    auto why = address::validate_config(address_config(config));
    if (!why) return std::nullopt;
    if (address::validate_config({config.xmpp.component, "example.org"}))
        return std::make_pair(std::string("xmpp.component"), *why);
    return std::make_pair(std::string("sip.domain"), *why);
}

bool starts_call(const gloox::Tag& stanza) {
    if (stanza.name() != "iq" || stanza.findAttribute("type") != "set") return false;
    const gloox::Tag* jingle = stanza.findChild("jingle", "xmlns", "urn:xmpp:jingle:1");
    return jingle != nullptr && jingle->findAttribute("action") == "session-initiate";
}

bool starts_sip_work(const gloox::Tag& stanza) {
    const std::string& name = stanza.name();
    const std::string& type = stanza.findAttribute("type");
    if (starts_call(stanza)) {
        // A call: an INVITE (checked below like a message: to a contact).
    } else if (name == "message") {
        if (type == "error") return false; // E4
    } else if (name != "presence" || type != "subscribe") {
        return false;
    }
    // A local part: an '@' before any '/' (RFC 7622 §3.1), not first. No full parse on the
    // message path: the relay parses (and refuses) the address itself.
    const std::string& to = stanza.findAttribute("to");
    const std::size_t at = to.find('@');
    return at != std::string::npos && at > 0 && at < to.find('/');
}

SenderVerdict check_sender_domain(const gloox::Tag& stanza,
                                  const std::vector<std::string>& allowed_domains) {
    if (allowed_domains.empty()) return SenderVerdict::pass;
    const std::string& name = stanza.name();
    const bool call = starts_call(stanza);
    if (name != "message" && name != "presence" && !call)
        return SenderVerdict::pass; // iq: the gateway's own, or within a call
    const std::string& type = stanza.findAttribute("type");
    if (type == "error") return SenderVerdict::pass; // E4; a bounce of ours is told to SIP (M12)
    if (name == "presence" && (type == "unsubscribe" || type == "unsubscribed"))
        return SenderVerdict::pass; // ends state, relays nothing new
    auto to = address::parse_jid(stanza.findAttribute("to"));
    if (!to || to->local.empty()) return SenderVerdict::pass; // to the gateway itself
    const std::string domain = sender_domain(stanza);
    if (domain.empty()) return SenderVerdict::pass;
    if (std::find(allowed_domains.begin(), allowed_domains.end(), domain) != allowed_domains.end())
        return SenderVerdict::pass;
    if (name == "message" || type == "subscribe" || call) return SenderVerdict::refuse;
    return SenderVerdict::ignore;
}

namespace {

// S4: RFC 3263 picks TLS targets only when the user agent has TLS.
dns::Resolver::Options resolver_options(const core::Config& config) {
    dns::Resolver::Options options;
    options.tls = !config.sip.tls_listen.empty();
    return options;
}

} // namespace

Gateway::Gateway(core::EventLoop& loop, const core::Config& config)
    : loop_(loop), config_(config),
      sender_limiter_({config.xmpp.max_stanzas_per_sender, config.xmpp.burst_per_sender}),
      link_(loop, config.xmpp), resolver_(loop, config.dns, resolver_options(config)),
      agent_(loop, config.sip), trimmer_(loop, [this] { return agent_.transactions(); }),
      services_(
          config.xmpp.component,
          xmpp::ServiceInfo{.name = "xsgw",
                            .version = XSGW_VERSION,
                            .show_os = config.xmpp.version_show_os,
                            .admins = config.xmpp.admins,
                            .contact_features = config.calls.enabled ? jingle_features()
                                                                     : std::vector<std::string>{}},
          [this](const std::string& prompt) { return prompt_to_contact_jid(prompt, config_); }),
      relay_(config_, link_, agent_, resolver_), presence_(loop, config_, link_, agent_, resolver_),
      calls_(loop, config_, link_, agent_, resolver_) {
    link_.set_stanza_handler([this](const gloox::Tag& stanza) { on_stanza(stanza); });
    link_.set_state_handler([this](bool up, const std::string& reason) {
        if (up) presence_.on_link_up();
        if (!up) calls_.on_link_down();
        if (on_link_state_) on_link_state_(up, reason);
    });
    // The ad-hoc command shows exactly the figures /metrics serves.
    services_.set_stats_provider([this] {
        std::vector<std::pair<std::string, std::string>> fields;
        for (const auto& sample : metrics()) {
            std::string var = sample.name;
            for (const auto& [label, value] : sample.labels)
                var += "." + label + "=" + value;
            fields.emplace_back(std::move(var), fmt::format("{}", sample.value));
        }
        return fields;
    });
    agent_.set_message_handler([this](const sip::IncomingMessage& message, sip::Reply& reply) {
        relay_.from_sip(message, reply);
    });
    agent_.set_call_handler([this](sip::CallId id, const sip::IncomingCall& call) {
        return calls_.from_sip(id, call);
    });
    if (config_.sip.verify_from_domain)
        agent_.set_source_check(
            [this](const std::string& from, const std::string& source,
                   std::function<void(const sip::UserAgent::SourceVerdict&)> done) {
                check_from_domain(from, source, done);
            });
}

void Gateway::check_from_domain(
    const std::string& from, const std::string& source,
    const std::function<void(const sip::UserAgent::SourceVerdict&)>& done) {
    const auto uri = address::parse_sip_uri(from);
    if (!uri) {
        done({403, "From is not a SIP URI", ""});
        return;
    }
    const std::string host = dns::normalize_host(uri->host);
    if (dns::is_numeric_host(host)) {
        if (host == source)
            done({});
        else
            done({403, fmt::format("From address {} is not the source {}", host, source), ""});
        return;
    }
    resolver_.resolve_sip(from_domain_destination(*uri),
                          [done, host, source](const dns::Resolution& resolution) {
                              done(from_domain_verdict(host, source, resolution));
                          });
}

void Gateway::start() {
    link_.start();
}

std::vector<std::string> Gateway::reload(const core::Config& next) {
    std::vector<std::string> changed = presence_.reload(next.presence);
    if (next.sip.max_message_bytes != relay_.max_body_bytes()) {
        changed.push_back(fmt::format("sip.max_message_bytes {} -> {}", relay_.max_body_bytes(),
                                      next.sip.max_message_bytes));
        relay_.set_max_body_bytes(next.sip.max_message_bytes);
    }
    // S5: the per-source and per-sender limits, at once; existing buckets keep their tokens
    // (at most the new burst). Each changed key is named: "KEY old -> new".
    auto limits_changed = [&](sip::RateLimiter::Limits now, sip::RateLimiter::Limits wanted,
                              const char* rate_key, const char* burst_key) {
        if (wanted.rate != now.rate)
            changed.push_back(fmt::format("{} {} -> {}", rate_key, now.rate, wanted.rate));
        if (wanted.burst != now.burst)
            changed.push_back(fmt::format("{} {} -> {}", burst_key, now.burst, wanted.burst));
        return wanted != now;
    };
    const sip::RateLimiter::Limits per_source{next.sip.max_requests_per_source,
                                              next.sip.burst_per_source};
    if (limits_changed(agent_.rate_limits(), per_source, "sip.max_requests_per_source",
                       "sip.burst_per_source"))
        agent_.set_rate_limits(per_source);
    const sip::RateLimiter::Limits per_sender{next.xmpp.max_stanzas_per_sender,
                                              next.xmpp.burst_per_sender};
    if (limits_changed(sender_limiter_.limits(), per_sender, "xmpp.max_stanzas_per_sender",
                       "xmpp.burst_per_sender"))
        sender_limiter_.set_limits(per_sender);
    if (next.xmpp.allowed_domains != config_.xmpp.allowed_domains) {
        changed.push_back(fmt::format("xmpp.allowed_domains {} -> {}",
                                      domains_text(config_.xmpp.allowed_domains),
                                      domains_text(next.xmpp.allowed_domains)));
        config_.xmpp.allowed_domains = next.xmpp.allowed_domains;
    }
    // Calls: for new calls from now on.
    if (next.calls.enabled != config_.calls.enabled)
        changed.push_back(
            fmt::format("calls.enabled {} -> {}", config_.calls.enabled, next.calls.enabled));
    if (next.calls.max_calls != config_.calls.max_calls)
        changed.push_back(
            fmt::format("calls.max_calls {} -> {}", config_.calls.max_calls, next.calls.max_calls));
    if (next.calls.answer_timeout != config_.calls.answer_timeout)
        changed.push_back(fmt::format("calls.answer_timeout {} -> {}",
                                      config_.calls.answer_timeout.count(),
                                      next.calls.answer_timeout.count()));
    config_.calls = next.calls;
    services_.set_contact_features(config_.calls.enabled ? jingle_features()
                                                         : std::vector<std::string>{});
    auto restart = [&](const char* key, bool differs) {
        if (differs)
            changed.push_back(fmt::format("{} changed: takes effect after a restart", key));
    };
    restart("xmpp.component", next.xmpp.component != config_.xmpp.component);
    restart("xmpp.host", next.xmpp.host != config_.xmpp.host);
    restart("xmpp.port", next.xmpp.port != config_.xmpp.port);
    restart("xmpp.secret", next.xmpp.secret != config_.xmpp.secret);
    restart("sip.domain", next.sip.domain != config_.sip.domain);
    restart("sip.listen", next.sip.listen != config_.sip.listen);
    restart("sip.message_type", next.sip.message_type != config_.sip.message_type);
    restart("sip.tls_listen", next.sip.tls_listen != config_.sip.tls_listen);
    restart("sip.tls_certificate", next.sip.tls_certificate != config_.sip.tls_certificate);
    restart("sip.tls_key", next.sip.tls_key != config_.sip.tls_key);
    restart("sip.tls_ca_file", next.sip.tls_ca_file != config_.sip.tls_ca_file);
    restart("sip.verify_from_domain",
            next.sip.verify_from_domain != config_.sip.verify_from_domain);
    restart("dns.servers", next.dns.servers != config_.dns.servers);
    restart("metrics.listen", next.metrics.listen != config_.metrics.listen);
    return changed;
}

void Gateway::begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    relay_.stop_taking();
    presence_.shutdown();
    calls_.stop();
    trimmer_.stop();
}

std::size_t Gateway::toward_sip() const {
    return relay_.awaiting_dns() + agent_.queued();
}

void Gateway::drain(std::chrono::milliseconds deadline) {
    begin_stop();
    const auto start = std::chrono::steady_clock::now();
    const std::size_t at_start = toward_sip();
    // MESSAGEs from SIP whose stanza waits for the server's confirmation get it while the
    // link is still up (the stanzas went before our closing tag: the server takes them, but
    // after the close their senders could only be told 503).
    loop_.run_until([&] { return toward_sip() == 0 && relay_.unconfirmed_now() == 0; }, deadline);
    const std::size_t left = toward_sip();
    if (left != 0) {
        // Their senders hear now, while the link is up: the answer may still come from SIP,
        // so say the outcome is unknown rather than that it failed.
        const translate::XmppError error{translate::Condition::service_unavailable,
                                         "the gateway stopped before SIP answered; the message "
                                         "may or may not have been delivered",
                                         {}};
        relay_.abandon(error);
        spdlog::warn("xsgw: stopping: {} messages to SIP not answered within {} ms: their "
                     "senders were told",
                     left, deadline.count());
    }
    // What was written (answers, unavailable presence) reaches the server before the stream
    // ends.
    loop_.run_until([this] { return link_.pending_bytes() == 0 || !link_.up(); },
                    std::chrono::seconds(1));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    spdlog::info("xsgw: stopping: {} messages to SIP were under way, {} answered by SIP, in {} ms",
                 at_start, at_start - left, took.count());
    close_link(deadline);
}

void Gateway::close_link(std::chrono::milliseconds deadline) {
    // RFC 6120 section 4.4: our closing tag first, then read until the server's. Until the
    // server reads our tag it routes stanzas to us; closing the socket at once would lose
    // them without a word to their senders (the fault test saw it). What comes now is
    // delivered; from the server's close on, the server answers senders itself.
    if (!link_.begin_close()) return link_.stop();
    relay_.take_late();
    const std::size_t before = relay_.stats().xmpp_in;
    loop_.run_until([this] { return !link_.closing(); }, close_wait);
    const bool server_closed = !link_.closing();
    const std::size_t late = relay_.stats().xmpp_in - before;
    if (late != 0)
        loop_.run_until([&] { return toward_sip() == 0; }, std::min(deadline, close_wait));
    const std::size_t lost = toward_sip() == 0
                                 ? 0
                                 : relay_.abandon({translate::Condition::service_unavailable,
                                                   "the gateway stopped before SIP answered",
                                                   {}});
    spdlog::info("xsgw: stream closed{}; {} messages came as it closed{}",
                 server_closed ? " by the server too" : " (the server did not close in time)", late,
                 lost != 0 ? fmt::format(", {} of them not answered by SIP in time: their senders "
                                         "cannot be told",
                                         lost)
                           : std::string());
    link_.stop();
}

void Gateway::stop() {
    begin_stop();
    link_.stop();
}

void Gateway::reply(gloox::Tag* stanza, const gloox::Tag& request) {
    if (stanza == nullptr) return;
    if (!link_.send(stanza))
        spdlog::warn("xmpp: reply to id '{}' lost: link down", request.findAttribute("id"));
}

void Gateway::on_stanza(const gloox::Tag& stanza) {
    const std::string& name = stanza.name();
    if (spdlog::should_log(spdlog::level::debug)) // the lookups cost even when not logged
        spdlog::debug("xmpp: {} id='{}' type='{}' from {} to {}", name, stanza.findAttribute("id"),
                      stanza.findAttribute("type"), stanza.findAttribute("from"),
                      stanza.findAttribute("to"));
    if (!sender_allowed(stanza) || !sender_within_rate(stanza)) return;
    if (stopping_ && name == "presence") {
        spdlog::debug("xmpp: presence from {} ignored: stopping", stanza.findAttribute("from"));
        return;
    }
    if (name == "iq") {
        if (calls_.from_xmpp_iq(stanza)) return;
        reply(services_.reply_to(stanza), stanza);
    } else if (name == "message") {
        if (calls_.from_xmpp_message(stanza)) return;
        relay_.from_xmpp(stanza);
    } else if (name == "presence") {
        presence_.from_xmpp(stanza);
    }
}

bool Gateway::sender_allowed(const gloox::Tag& stanza) {
    const SenderVerdict verdict = check_sender_domain(stanza, config_.xmpp.allowed_domains);
    if (verdict == SenderVerdict::pass) return true;
    const std::string domain = sender_domain(stanza);
    const std::string& type = stanza.findAttribute("type");
    if (verdict == SenderVerdict::ignore) {
        ++domain_refusals_.ignored;
        spdlog::debug("bridge: presence type='{}' from {} to {} ignored: domain {} may not use "
                      "this gateway (xmpp.allowed_domains)",
                      type, stanza.findAttribute("from"), stanza.findAttribute("to"), domain);
        return false;
    }
    const bool message = stanza.name() == "message";
    const bool call = starts_call(stanza);
    ++(call      ? domain_refusals_.calls
       : message ? domain_refusals_.messages
                 : domain_refusals_.subscribes);
    const std::string why = fmt::format("domain {} may not use this gateway", domain);
    spdlog::info("bridge: {} id='{}'{} from {} to {} refused: forbidden: {} "
                 "(xmpp.allowed_domains)",
                 call      ? "call"
                 : message ? "message"
                           : "presence",
                 stanza.findAttribute("id"), message || call ? "" : " type='subscribe'",
                 stanza.findAttribute("from"), stanza.findAttribute("to"), why);
    reply(xmpp::make_error_reply(stanza, config_.xmpp.component, {"auth", "forbidden", why}),
          stanza);
    return false;
}

bool Gateway::sender_within_rate(const gloox::Tag& stanza) {
    if (sender_limiter_.limits().rate == 0 || !starts_sip_work(stanza)) return true;
    const auto from = address::parse_jid(stanza.findAttribute("from"));
    if (!from) return true; // the relay answers what it cannot read
    const std::string sender = address::bare_string(*from);
    const auto decision = sender_limiter_.admit(sender, std::chrono::steady_clock::now());
    const auto limits = sender_limiter_.limits();
    if (decision.log_refused != 0)
        spdlog::warn("bridge: refused {} stanza(s) from {} with resource-constraint since the last "
                     "such line: over xmpp.max_stanzas_per_sender ({} per second, burst {})",
                     decision.log_refused, sender, limits.rate, limits.burst);
    if (decision.allowed) return true;
    const bool message = stanza.name() == "message";
    ++(starts_call(stanza) ? sender_refusals_.calls
       : message           ? sender_refusals_.messages
                           : sender_refusals_.subscribes);
    reply(xmpp::make_error_reply(
              stanza, config_.xmpp.component,
              {"wait", "resource-constraint",
               fmt::format("too many messages, calls and subscription requests from {}: at "
                           "most {} a second; try again in {} s",
                           sender, limits.rate, decision.retry_after.count())}),
          stanza);
    return false;
}

std::vector<core::Sample> Gateway::metrics() const {
    std::vector<core::Sample> out;
    auto add = [&](std::string name, std::string help, std::string type, double value,
                   std::vector<std::pair<std::string, std::string>> labels = {}) {
        out.push_back(
            {std::move(name), std::move(help), std::move(type), std::move(labels), value});
    };
    const RelayStats& r = relay_.stats();
    const char* messages = "Messages by direction and outcome";
    auto message_count = [&](const char* direction, const char* outcome, std::uint64_t n) {
        add("xsgw_messages_total", messages, "counter", static_cast<double>(n),
            {{"direction", direction}, {"outcome", outcome}});
    };
    message_count("xmpp_to_sip", "received", r.xmpp_in);
    message_count("xmpp_to_sip", "delivered", r.sip_sent_ok);
    message_count("xmpp_to_sip", "failed", r.sip_failed);
    message_count("sip_to_xmpp", "received", r.sip_in);
    message_count("sip_to_xmpp", "delivered", r.xmpp_delivered);
    message_count("sip_to_xmpp", "refused", r.sip_refused);
    message_count("sip_to_xmpp", "unconfirmed", r.unconfirmed);
    add("xsgw_bounce_notices_total", "XMPP bounces told to the SIP sender (M12)", "counter",
        static_cast<double>(r.bounces_notified));
    for (const auto& [condition, n] : r.xmpp_errors)
        add("xsgw_xmpp_errors_total", "Error stanzas sent to XMPP senders, by condition", "counter",
            static_cast<double>(n), {{"condition", condition}});
    for (const auto& [status, n] : r.sip_refusals)
        add("xsgw_sip_refusals_total", "Error responses sent to SIP senders, by status", "counter",
            static_cast<double>(n), {{"status", std::to_string(status)}});
    const sip::RateLimitStats& limited = agent_.rate_limit_stats();
    for (const auto& [method, n] :
         {std::pair{"MESSAGE", limited.messages}, std::pair{"SUBSCRIBE", limited.subscribes},
          std::pair{"INVITE", limited.invites}})
        add("xsgw_sip_rate_limited_total",
            "SIP requests refused 503 over sip.max_requests_per_source, by method (S5)", "counter",
            static_cast<double>(n), {{"method", method}});
    for (const auto& [kind, n] : {std::pair{"message", sender_refusals_.messages},
                                  std::pair{"subscribe", sender_refusals_.subscribes},
                                  std::pair{"call", sender_refusals_.calls}})
        add("xsgw_xmpp_rate_limited_total",
            "XMPP stanzas toward SIP refused over xmpp.max_stanzas_per_sender, by kind (S5)",
            "counter", static_cast<double>(n), {{"kind", kind}});
    add("xsgw_sip_too_many_hops_total",
        "SIP requests refused 483 because they arrived with Max-Forwards 0 (S6)", "counter",
        static_cast<double>(agent_.too_many_hops()));
    add("xsgw_sip_from_domain_refused_total",
        "SIP requests refused because their source is not a SIP server of their From domain "
        "(sip.verify_from_domain)",
        "counter", static_cast<double>(agent_.source_refused()));
    add("xsgw_memory_pool_bytes",
        "Bytes of the long-lived pool in use (subscriptions' state, issue 4)", "gauge",
        static_cast<double>(core::LongLived::in_use()));
    add("xsgw_memory_trims_total",
        "Times the heap's free memory was given back to the system (malloc_trim)", "counter",
        static_cast<double>(trimmer_.trims()));
    add("xsgw_memory_returned_bytes_total", "Resident bytes those trims gave back to the system",
        "counter", static_cast<double>(trimmer_.returned_bytes()));
    add("xsgw_dns_waiting_messages", "Messages toward SIP waiting for their DNS lookup", "gauge",
        static_cast<double>(relay_.waiting_for_dns()));
    add("xsgw_sip_awaiting_confirmation",
        "MESSAGEs from SIP held until the XMPP server confirms "
        "their stanza",
        "gauge", static_cast<double>(relay_.unconfirmed_now()));
    add("xsgw_sip_queued_messages", "MESSAGEs in flight or waiting for their recipient", "gauge",
        static_cast<double>(agent_.queued()));
    const auto& d = resolver_.stats();
    add("xsgw_dns_queries_total", "DNS queries sent", "counter",
        static_cast<double>(d.queries_sent));
    add("xsgw_dns_cache_hits_total", "DNS answers taken from the cache", "counter",
        static_cast<double>(d.cache_hits));
    add("xsgw_dns_cache_misses_total", "DNS answers not in the cache", "counter",
        static_cast<double>(d.cache_misses));
    const PresenceStats& p = presence_.stats();
    add("xsgw_presence_subscriptions", "Presence subscriptions held, by who watches", "gauge",
        static_cast<double>(presence_.outbound_count()), {{"watcher", "xmpp"}});
    add("xsgw_presence_subscriptions", "Presence subscriptions held, by who watches", "gauge",
        static_cast<double>(presence_.inbound_count()), {{"watcher", "sip"}});
    auto presence_count = [&](const char* what, std::uint64_t n) {
        add("xsgw_presence_events_total", "Presence work by kind", "counter",
            static_cast<double>(n), {{"kind", what}});
    };
    presence_count("xmpp_in", p.xmpp_in);
    presence_count("xmpp_out", p.xmpp_out);
    presence_count("notify_in", p.notifies_in);
    presence_count("notify_out", p.notifies_out);
    presence_count("subscribe_out", p.subscribes_out);
    presence_count("subscribe_in", p.subscribes_in);
    presence_count("refused", p.refused);
    presence_count("publish", p.publishes);
    presence_count("pidf_error", p.pidf_errors);
    auto domain_refusal = [&](const char* stanza, const char* action, std::uint64_t n) {
        add("xsgw_domain_refusals_total",
            "Stanzas from XMPP domains not in xmpp.allowed_domains, by kind and action (S7)",
            "counter", static_cast<double>(n), {{"stanza", stanza}, {"action", action}});
    };
    domain_refusal("message", "refused", domain_refusals_.messages);
    domain_refusal("presence", "refused", domain_refusals_.subscribes);
    domain_refusal("presence", "ignored", domain_refusals_.ignored);
    domain_refusal("iq", "refused", domain_refusals_.calls);
    const CallStats& c = calls_.stats();
    auto call_count = [&](const char* what, std::uint64_t n) {
        add("xsgw_calls_total", "Calls by what became of them", "counter", static_cast<double>(n),
            {{"kind", what}});
    };
    call_count("from_xmpp", c.from_xmpp);
    call_count("from_sip", c.from_sip);
    call_count("answered", c.answered);
    call_count("failed", c.failed);
    call_count("refused", c.refused);
    add("xsgw_calls", "Calls under way", "gauge", static_cast<double>(calls_.count()));
    add("xsgw_xmpp_link_up", "1 while the component link is up", "gauge", link_.up() ? 1 : 0);
    add("xsgw_xmpp_connect_attempts_total", "Component connection attempts", "counter",
        static_cast<double>(link_.attempts()));
    add("xsgw_xmpp_pending_bytes", "Bytes waiting to be written to the XMPP server", "gauge",
        static_cast<double>(link_.pending_bytes()));
    return out;
}

} // namespace xsgw::bridge
