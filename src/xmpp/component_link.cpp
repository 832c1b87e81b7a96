#include "xsgw/xmpp/component_link.hpp"

#include "xsgw/xmpp/loop_connection.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <fmt/format.h>
#include <gloox/component.h>
#include <gloox/tag.h>
#include <random>
#include <spdlog/spdlog.h>
#include <utility>

namespace xsgw::xmpp {

/// gloox's Component with stanza dispatch taken over: gloox keeps the stream
/// and the handshake, every stanza goes to our handler whatever its namespace.
class AcceptStream final : public gloox::Component {
public:
    AcceptStream(const core::XmppConfig& config, ComponentLink::StanzaHandler& handler)
        : gloox::Component(gloox::XMLNS_COMPONENT_ACCEPT, config.host, config.component,
                           config.secret, config.port),
          handler_(handler) {}
    AcceptStream(const AcceptStream&) = delete;
    AcceptStream& operator=(const AcceptStream&) = delete;
    AcceptStream(AcceptStream&&) = delete;
    AcceptStream& operator=(AcceptStream&&) = delete;
    ~AcceptStream() override = default;

    bool handshaken() const { return handshaken_; }

    /// Writes text to the stream as it is (gloox keeps this protected).
    void send_text(const std::string& xml) { gloox::ClientBase::send(xml); }

    // gloox serialises every incoming element for its debug log before anything else, whether
    // or not the log is wanted; stanzas skip that unless we log at debug level.
    void handleTag(gloox::Tag* tag) override {
        if (tag != nullptr && handshaken_ && !spdlog::should_log(spdlog::level::debug) &&
            is_stanza(*tag)) {
            if (handler_) handler_(*tag);
            return;
        }
        gloox::Component::handleTag(tag);
    }

protected:
    bool handleNormalNode(gloox::Tag* tag) override {
        if (tag->name() == "handshake") {
            // jabberd2 answers <handshake xmlns='jabber:component:accept'></handshake>.
            handshaken_ = true;
            return gloox::Component::handleNormalNode(tag);
        }
        if (handshaken_ && is_stanza(*tag)) {
            if (handler_) handler_(*tag);
        } else {
            spdlog::debug("xmpp: ignoring <{} xmlns='{}'>", tag->name(), tag->xmlns());
        }
        return true;
    }

private:
    static bool is_stanza(const gloox::Tag& tag) {
        const std::string& name = tag.name();
        if (name != "message" && name != "presence" && name != "iq") return false;
        const std::string ns = tag.xmlns();
        return ns.empty() || ns == gloox::XMLNS_CLIENT || ns == gloox::XMLNS_COMPONENT_ACCEPT; // X5
    }

    ComponentLink::StanzaHandler& handler_;
    bool handshaken_ = false;
};

namespace {

std::string_view stream_error_name(gloox::StreamError e) {
    using namespace gloox;
    switch (e) {
    case StreamErrorBadFormat:
        return "bad-format";
    case StreamErrorBadNamespacePrefix:
        return "bad-namespace-prefix";
    case StreamErrorConflict:
        return "conflict";
    case StreamErrorConnectionTimeout:
        return "connection-timeout";
    case StreamErrorHostGone:
        return "host-gone";
    case StreamErrorHostUnknown:
        return "host-unknown";
    case StreamErrorImproperAddressing:
        return "improper-addressing";
    case StreamErrorInternalServerError:
        return "internal-server-error";
    case StreamErrorInvalidFrom:
        return "invalid-from";
    case StreamErrorInvalidId:
        return "invalid-id";
    case StreamErrorInvalidNamespace:
        return "invalid-namespace";
    case StreamErrorInvalidXml:
        return "invalid-xml";
    case StreamErrorNotAuthorized:
        return "not-authorized";
    case StreamErrorPolicyViolation:
        return "policy-violation";
    case StreamErrorRemoteConnectionFailed:
        return "remote-connection-failed";
    case StreamErrorResourceConstraint:
        return "resource-constraint";
    case StreamErrorRestrictedXml:
        return "restricted-xml";
    case StreamErrorSeeOtherHost:
        return "see-other-host";
    case StreamErrorSystemShutdown:
        return "system-shutdown";
    case StreamErrorUndefinedCondition:
        return "undefined-condition";
    case StreamErrorUnsupportedEncoding:
        return "unsupported-encoding";
    case StreamErrorUnsupportedStanzaType:
        return "unsupported-stanza-type";
    case StreamErrorUnsupportedVersion:
        return "unsupported-version";
    case StreamErrorXmlNotWellFormed:
        return "xml-not-well-formed";
    default:
        return "undefined-condition";
    }
}

// The handshake digest is derived from the secret: keep it out of the log (S1).
std::string redact_handshake(const std::string& xml) {
    const auto open = xml.find("<handshake>");
    if (open == std::string::npos) return xml;
    const auto close = xml.find("</handshake>", open);
    if (close == std::string::npos) return xml;
    return xml.substr(0, open) + "<handshake>[redacted]" + xml.substr(close);
}

std::uint64_t seed() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

ComponentLink::ComponentLink(core::EventLoop& loop, const core::XmppConfig& config)
    : loop_(loop), config_(config), backoff_(config.reconnect_min, config.reconnect_max, seed()),
      reconnect_timer_(loop), keepalive_timer_(loop), confirm_timer_(loop),
      confirm_key_(fmt::format("{:x}", seed())) {
    dispatch_ = [this](const gloox::Tag& stanza) {
        if (!take_confirmation(stanza) && on_stanza_) on_stanza_(stanza);
    };
}

ComponentLink::~ComponentLink() {
    stopped_ = true;
    reconnect_timer_.cancel();
    keepalive_timer_.cancel();
    if (stream_) {
        stream_->removeConnectionListener(this);
        stream_.reset();
    }
}

void ComponentLink::start() {
    stopped_ = false;
    attempt();
}

void ComponentLink::stop() {
    stopped_ = true;
    closing_ = false;
    if (!kept_.empty()) {
        spdlog::warn("xmpp: stopping: {} answers kept for the link's return are never sent",
                     kept_.size());
        kept_.clear();
    }
    confirmations_ended("link stopped");
    reconnect_timer_.cancel();
    keepalive_timer_.cancel();
    if (stream_) {
        pending_reason_ = "stopping";
        stream_->disconnect(); // sends </stream:stream> and closes
    }
}

bool ComponentLink::begin_close() {
    stopped_ = true;
    reconnect_timer_.cancel();
    keepalive_timer_.cancel();
    if (!up_ || !stream_ || connection_ == nullptr) return false;
    stream_->send_text("</stream:stream>");
    connection_->end_writes();
    up_ = false;
    closing_ = true;
    pending_reason_ = "stopping";
    spdlog::info("xmpp: closing the stream; reading what the server still routes to us");
    if (on_state_) on_state_(false, "stopping");
    return true;
}

void ComponentLink::confirm(const std::string& domain, Confirmation done) {
    if (!up_) {
        done(false);
        return;
    }
    PendingConfirmations& pending = confirmations_[domain];
    pending.next.push_back(std::move(done));
    if (pending.ping_id.empty()) send_confirmation_ping(domain);
}

void ComponentLink::send_confirmation_ping(const std::string& domain) {
    PendingConfirmations& pending = confirmations_[domain];
    // Ids no other instance or sender can guess: an answer to someone else's ping confirms
    // nothing of ours.
    pending.ping_id = fmt::format("xsgw-confirm-{}-{}", confirm_key_, ++confirm_id_);
    pending.sent = std::chrono::steady_clock::now();
    pending.covered = std::move(pending.next);
    pending.next.clear();
    confirmation_domains_[pending.ping_id] = domain;
    // Written as text (the message path pays for no Tag), and past the write-buffer bound: a
    // ping is small, and one refused would leave its stanzas waiting for nothing.
    if (up_ && stream_)
        stream_->send_text(fmt::format(
            "<iq type='get' id='{}' from='{}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            pending.ping_id, config_.component, domain));
    pending.ping_end = connection_ != nullptr ? connection_->queued_total() : 0;
    if (!confirm_timer_.armed())
        confirm_timer_.start(confirm_timeout_, [this] { confirmation_check(); });
}

bool ComponentLink::take_confirmation(const gloox::Tag& stanza) {
    if (confirmation_domains_.empty() || stanza.name() != "iq") return false;
    const std::string& type = stanza.findAttribute("type");
    if (type != "result" && type != "error") return false;
    const auto it = confirmation_domains_.find(stanza.findAttribute("id"));
    if (it == confirmation_domains_.end()) return false;
    // Only the domain we asked answers for it (JID domains compare case-insensitively).
    const std::string& from = stanza.findAttribute("from");
    if (from.size() != it->second.size() ||
        !std::equal(from.begin(), from.end(), it->second.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        }))
        return false;
    confirmed(std::string(it->second));
    return true;
}

void ComponentLink::confirmed(const std::string& domain) {
    const auto p = confirmations_.find(domain);
    if (p == confirmations_.end()) return;
    confirmation_domains_.erase(p->second.ping_id);
    std::vector<Confirmation> covered = std::move(p->second.covered);
    p->second.covered.clear();
    p->second.ping_id.clear();
    if (!p->second.next.empty())
        send_confirmation_ping(domain);
    else
        confirmations_.erase(p);
    for (auto& done : covered)
        done(true);
}

void ComponentLink::confirmation_check() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> late;
    // Late, and the ping has left our buffer for the socket: what came before it went on a live
    // link. Still in our buffer (a server that reads nothing): nothing is taken yet; the
    // keepalive ends such a link, and the held MESSAGEs are bounded.
    const std::uint64_t written = connection_ != nullptr ? connection_->written_total() : 0;
    for (const auto& [domain, pending] : confirmations_)
        if (!pending.ping_id.empty() && now - pending.sent >= confirm_timeout_ &&
            written >= pending.ping_end)
            late.push_back(domain);
    for (const auto& domain : late) {
        const auto p = confirmations_.find(domain);
        if (p == confirmations_.end()) continue;
        spdlog::info("xmpp: no answer from the server to ping {} to {} within {} ms: the {} "
                     "stanzas before it went on a live link, taken as delivered",
                     p->second.ping_id, domain, confirm_timeout_.count(), p->second.covered.size());
        confirmed(domain);
    }
    if (!confirmations_.empty())
        confirm_timer_.start(std::chrono::milliseconds(500), [this] { confirmation_check(); });
}

void ComponentLink::confirmations_ended(const char* why) {
    confirm_timer_.cancel();
    if (confirmations_.empty()) return;
    auto all = std::move(confirmations_);
    confirmations_.clear();
    confirmation_domains_.clear();
    std::size_t n = 0;
    for (auto& [domain, pending] : all)
        n += pending.covered.size() + pending.next.size();
    spdlog::warn("xmpp: {}: {} stanzas sent but not confirmed by the server: they may or may not "
                 "have been taken",
                 why, n);
    for (auto& [domain, pending] : all) {
        for (auto& done : pending.covered)
            done(false);
        for (auto& done : pending.next)
            done(false);
    }
}

bool ComponentLink::room_to_send() {
    const std::size_t pending = pending_bytes();
    if (full_ && pending <= max_pending_ / 2) {
        spdlog::info("xmpp: the server takes stanzas again ({} bytes waiting); {} were refused",
                     pending, refused_full_);
        full_ = false;
    }
    if (!full_ && pending >= max_pending_) {
        full_ = true;
        spdlog::warn("xmpp: the server does not take what we write: {} bytes waiting; stanzas "
                     "are refused until it does",
                     pending);
    }
    if (full_) ++refused_full_;
    return !full_;
}

bool ComponentLink::send(gloox::Tag* stanza) {
    if (!up_ || !stream_ || !room_to_send()) {
        delete stanza;
        return false;
    }
    stream_->send(stanza);
    return true;
}

bool ComponentLink::send_or_keep(gloox::Tag* stanza) {
    if (up_ && stream_) return send(stanza); // up: refused only by a full buffer, as send()
    const std::unique_ptr<gloox::Tag> owned(stanza);
    return !stopped_ && send_or_keep(owned->xml());
}

bool ComponentLink::send_or_keep(std::string xml) {
    if (up_ && stream_) return send(xml);
    if (stopped_) return false;
    if (kept_.size() >= max_kept) {
        kept_.pop_front();
        if (kept_dropped_++ % 1000 == 0)
            spdlog::warn("xmpp: {} answers kept for the link's return: the oldest dropped ({} so "
                         "far)",
                         max_kept, kept_dropped_);
    }
    kept_.push_back({std::chrono::steady_clock::now(), std::move(xml)});
    return true;
}

void ComponentLink::send_kept() {
    if (kept_.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    std::size_t sent = 0;
    std::size_t stale = 0;
    while (!kept_.empty() && up_) {
        Kept& k = kept_.front();
        if (now - k.at > keep_for) {
            ++stale;
        } else if (send(k.xml)) {
            ++sent;
        } else {
            break; // the buffer is full: the rest wait for the next time up
        }
        kept_.pop_front();
    }
    spdlog::info("xmpp: {} answers kept while the link was down sent{}", sent,
                 stale != 0 ? fmt::format(", {} older than {} min dropped", stale, keep_for.count())
                            : std::string());
}

bool ComponentLink::send(const std::string& xml) {
    if (!up_ || !stream_ || !room_to_send()) return false;
    stream_->send_text(xml);
    return true;
}

std::size_t ComponentLink::pending_bytes() const {
    return connection_ != nullptr ? connection_->pending_bytes() : 0;
}

void ComponentLink::attempt() {
    if (stopped_) return;
    // A fresh gloox stream per attempt: no parser or stream state survives a failure.
    // The previous one is never destroyed inside its own callbacks, only here.
    if (stream_) stream_->removeConnectionListener(this);
    stream_ = std::make_unique<AcceptStream>(config_, dispatch_);
    stream_->setTls(gloox::TLSDisabled);
    stream_->setCompression(false);
    stream_->registerConnectionListener(this);
    stream_->logInstance().registerLogHandler(gloox::LogLevelDebug, gloox::LogAreaAll, this);
    auto connection =
        std::make_unique<LoopConnection>(loop_, stream_.get(), config_.host, config_.port);
    connection->set_activity_callback([this] { last_rx_ = std::chrono::steady_clock::now(); });
    connection_ = connection.get();
    stream_->setConnectionImpl(connection.release());
    pending_reason_.clear();
    ++attempts_;
    spdlog::info("xmpp: connecting to {}:{} (attempt {})", config_.host, config_.port, attempts_);
    if (!stream_->connect(false)) link_failed(connection_->last_error());
}

void ComponentLink::onConnect() {
    up_ = true;
    backoff_.reset();
    last_rx_ = std::chrono::steady_clock::now();
    spdlog::info("xmpp: link up: component {} on {}:{}", config_.component, config_.host,
                 config_.port);
    keepalive_timer_.start(config_.keepalive_interval, [this] { keepalive_tick(); });
    if (on_state_) on_state_(true, "handshake accepted");
    send_kept();
}

void ComponentLink::onDisconnect(gloox::ConnectionError error) {
    link_failed(describe(error));
}

bool ComponentLink::onTLSConnect(const gloox::CertInfo& /*info*/) {
    return false;
}

std::string ComponentLink::describe(gloox::ConnectionError error) const {
    if (!pending_reason_.empty()) return pending_reason_;
    const std::string detail = connection_ != nullptr ? connection_->last_error() : std::string();
    switch (error) {
    case gloox::ConnStreamError: {
        std::string reason =
            fmt::format("stream error <{}/>", stream_error_name(stream_->streamError()));
        const std::string& text = stream_->streamErrorText();
        if (!text.empty()) reason += fmt::format(" ({})", text);
        if (!stream_->handshaken()) reason += " before handshake";
        return reason;
    }
    case gloox::ConnStreamClosed:
        return detail.empty() ? "stream closed" : fmt::format("stream closed: {}", detail);
    case gloox::ConnConnectionRefused:
        return "connection refused";
    case gloox::ConnParseError:
        return "XML parse error on the stream";
    case gloox::ConnIoError:
        return detail.empty() ? "connection lost" : detail;
    case gloox::ConnDnsError:
        return detail;
    case gloox::ConnUserDisconnected:
        return "closed by us";
    default:
        return fmt::format("gloox error {}", static_cast<int>(error));
    }
}

void ComponentLink::link_failed(const std::string& reason) {
    const bool was_up = up_;
    up_ = false;
    closing_ = false;
    last_failure_ = reason;
    keepalive_timer_.cancel();
    if (stopped_) {
        spdlog::info("xmpp: link closed: {}", reason);
        confirmations_ended("link closed");
        if (was_up && on_state_) on_state_(false, reason);
        return;
    }
    const auto delay = backoff_.next();
    spdlog::warn("xmpp: link down: {}; reconnecting in {} ms", reason, delay.count());
    confirmations_ended("link down");
    if (was_up && on_state_) on_state_(false, reason);
    reconnect_timer_.start(delay, [this] { attempt(); });
}

namespace {
// Pings sent within one keepalive_timeout window before the link counts as dead.
// Where N instances share a domain each ping and each answer reaches us with
// probability 1/N: 16 round trips make a false alarm negligible even for N=3.
constexpr int probes_per_window = 16;
} // namespace

void ComponentLink::keepalive_tick() {
    const auto idle = std::chrono::steady_clock::now() - last_rx_;
    if (idle < config_.keepalive_interval) {
        keepalive_timer_.start(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   config_.keepalive_interval - idle),
                               [this] { keepalive_tick(); });
        return;
    }
    window_start_ = std::chrono::steady_clock::now();
    probes_sent_ = 0;
    keepalive_probe();
}

// A ping to our own domain goes through the server and back: only a live
// server routes it, which a whitespace keepalive cannot prove. Where a server
// spreads one domain over several connections (jabberd2, ejabberd) the ping or
// its answer may reach another instance, so one window sends several, and
// anything at all received in the window (the other instances' pings too)
// proves the link alive.
void ComponentLink::keepalive_probe() {
    auto* iq = new gloox::Tag("iq");
    iq->addAttribute("type", "get");
    iq->addAttribute("id", fmt::format("xsgw-keepalive-{}", ++keepalive_id_));
    iq->addAttribute("from", config_.component);
    iq->addAttribute("to", config_.component);
    auto* ping = new gloox::Tag(iq, "ping");
    ping->setXmlns("urn:xmpp:ping");
    send(iq);
    ++probes_sent_;
    keepalive_timer_.start(
        std::max(std::chrono::milliseconds(config_.keepalive_timeout) / probes_per_window,
                 std::chrono::milliseconds(1)),
        [this] { keepalive_check(); });
}

void ComponentLink::keepalive_check() {
    if (last_rx_ >= window_start_) {
        keepalive_timer_.start(config_.keepalive_interval, [this] { keepalive_tick(); });
        return;
    }
    if (probes_sent_ < probes_per_window) {
        keepalive_probe();
        return;
    }
    const auto idle = std::chrono::steady_clock::now() - last_rx_;
    pending_reason_ =
        fmt::format("keepalive timeout: {} pings unanswered in {} s, nothing received for {} ms",
                    probes_sent_, config_.keepalive_timeout.count(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(idle).count());
    stream_->disconnect();
}

void ComponentLink::handleLog(gloox::LogLevel level, gloox::LogArea area,
                              const std::string& message) {
    switch (level) {
    case gloox::LogLevelError:
        spdlog::error("gloox: {}", message);
        break;
    case gloox::LogLevelWarning:
        spdlog::warn("gloox: {}", message);
        break;
    default:
        if (!spdlog::should_log(spdlog::level::debug)) return;
        if (area == gloox::LogAreaXmlIncoming)
            spdlog::debug("xmpp: << {}", message);
        else if (area == gloox::LogAreaXmlOutgoing)
            spdlog::debug("xmpp: >> {}", redact_handshake(message));
        else
            spdlog::debug("gloox: {}", message);
    }
}

} // namespace xsgw::xmpp
