#include "xsgw/bridge/message_relay.hpp"

#include "xsgw/bridge/routing.hpp"
#include "xsgw/bridge/stanza_message.hpp"

#include <fmt/format.h>
#include <gloox/tag.h>
#include <memory>
#include <spdlog/spdlog.h>
#include <utility>

namespace xsgw::bridge {
namespace {

// Relayed SIP->XMPP messages remembered for a bounce (M12): at most this many, this long.
constexpr std::size_t max_remembered = 10000;
constexpr auto remember_for = std::chrono::minutes(10);
// Headers a MESSAGE carries besides its body, for the M4 size estimate.
constexpr std::size_t header_allowance = 600;

translate::XmppError address_error(const address::AddressError& e) {
    return {translate::condition_from_name(address::to_string(e.condition)), e.reason, {}};
}

translate::SipStatus address_status(const address::AddressError& e) {
    return translate::to_sip_status(translate::condition_from_name(address::to_string(e.condition)),
                                    e.reason);
}

// The stanza error inside a type='error' message: condition and text.
translate::XmppError error_of(const gloox::Tag& stanza) {
    translate::XmppError error;
    const gloox::Tag* err = stanza.findChild("error");
    if (err == nullptr) return error;
    for (const gloox::Tag* child : err->children()) {
        if (child->xmlns() != "urn:ietf:params:xml:ns:xmpp-stanzas") continue;
        if (child->name() == "text")
            error.text = translate::safe_reason(child->cdata());
        else
            error.condition = translate::condition_from_name(child->name());
    }
    return error;
}

} // namespace

MessageRelay::MessageRelay(const core::Config& config, xmpp::ComponentLink& link,
                           sip::UserAgent& agent, dns::Resolver& resolver)
    : config_(config), link_(link), agent_(agent), resolver_(resolver),
      alive_(std::make_shared<bool>(true)) {
    addressing_.component = config.xmpp.component;
    addressing_.sip_domain = config.sip.domain;
    limits_.max_body_bytes = config.sip.max_message_bytes;
    to_xmpp_.type = config.sip.message_type == "normal" ? translate::MessageType::normal
                                                        : translate::MessageType::chat;
}

MessageRelay::~MessageRelay() {
    *alive_ = false;
}

void MessageRelay::from_xmpp(const gloox::Tag& stanza) {
    ++stats_.xmpp_in;
    translate::XmppMessage m = message_from_stanza(stanza);
    if (m.type == translate::MessageType::error) {
        // E4: never forwarded, never answered; but a bounce of ours is told to SIP (M12).
        on_bounce(m.id, error_of(stanza));
        return;
    }
    if (stopping_ && !late_) {
        return fail(m, {translate::Condition::service_unavailable,
                        "the gateway is stopping; try again later",
                        {}});
    }
    auto to = address::parse_jid(m.to);
    if (!to) return fail(m, address_error(to.error()));
    auto target = address::contact_jid_to_sip(*to, addressing_);
    if (!target) return fail(m, address_error(target.error()));
    target->gr.clear(); // to the contact's address of record: its proxy picks the devices
    auto from = address::parse_jid(m.from);
    if (!from) return fail(m, address_error(from.error()));
    auto from_uri = address::xmpp_user_to_sip(*from, addressing_);
    if (!from_uri) return fail(m, address_error(from_uri.error()));

    auto converted = translate::xmpp_to_sip(m, limits_);
    if (!converted) return fail(m, converted.error());
    auto* out = std::get_if<translate::SipMessageOut>(&converted.value());
    if (out == nullptr) {
        spdlog::debug("bridge: message id='{}' from {}: nothing to send (no body, no chat state)",
                      m.id, m.from);
        return;
    }
    send_to_sip(std::move(m), std::move(*target), address::to_string(*from_uri), std::move(*out));
}

void MessageRelay::send_to_sip(translate::XmppMessage message, address::SipUri target,
                               std::string from_uri, translate::SipMessageOut out) {
    if (waiting_for_dns_ >= max_awaiting_dns_) {
        // S5: a lookup holds its message until DNS answers (seconds when a server is silent):
        // past the bound the sender hears at once; a lone chat state is just not sent.
        if (!out.notification)
            fail(message, {translate::Condition::resource_constraint,
                           fmt::format("{} messages wait for DNS already; try again later",
                                       waiting_for_dns_),
                           {}});
        return;
    }
    const std::uint64_t wait = next_wait_++;
    if (!out.notification) awaiting_dns_.emplace(wait, head_of(message));
    ++waiting_for_dns_;
    resolver_.resolve_sip(
        destination_of(target),
        [this, alive = alive_, wait, message = std::move(message), from_uri = std::move(from_uri),
         out = std::move(out),
         request_uri = address::to_string(target)](const dns::Resolution& resolution) mutable {
            // The resolver calls this once: its parts move on.
            if (!*alive) return;
            --waiting_for_dns_;
            if (!out.notification && awaiting_dns_.erase(wait) == 0)
                return; // abandoned at the end of a drain: its sender was answered then
            deliver(std::move(message), resolution, std::move(from_uri), std::move(out),
                    std::move(request_uri));
        });
}

translate::XmppMessage MessageRelay::head_of(const translate::XmppMessage& message) {
    if (message.receipt_request) return message;
    translate::XmppMessage head;
    head.id = message.id;
    head.from = message.from;
    head.to = message.to;
    head.type = message.type;
    return head;
}

void MessageRelay::stop_taking() {
    stopping_ = true;
}

std::size_t MessageRelay::abandon(const translate::XmppError& error) {
    auto waiting = std::move(awaiting_dns_);
    awaiting_dns_.clear();
    for (const auto& [wait, head] : waiting)
        fail(head, error);
    abandon_error_ = error;
    const std::size_t sent = agent_.fail_messages(503, "Gateway stopping");
    abandon_error_.reset();
    return waiting.size() + sent;
}

void MessageRelay::deliver(translate::XmppMessage request, const dns::Resolution& resolution,
                           std::string from_uri, translate::SipMessageOut out,
                           std::string request_uri) {
    if (resolution.failure != dns::Failure::none || resolution.targets.empty()) {
        spdlog::info("bridge: message id='{}' to {}: DNS: {}", request.id, request_uri,
                     resolution.reason);
        if (out.notification) return;
        auto error = translate::to_xmpp_error(resolution.failure == dns::Failure::unreachable
                                                  ? translate::DeliveryFailure::timeout
                                                  : translate::DeliveryFailure::unresolvable);
        if (!resolution.reason.empty()) error.text += " (" + resolution.reason + ")";
        return fail(request, error);
    }
    std::vector<sip::NextHop> hops;
    const bool large = out.body.size() + out.subject.size() + header_allowance >
                       translate::congestion_safe_request_bytes;
    for (const auto& target : resolution.targets) {
        // M4: a large request only over a congestion-controlled transport.
        if (large && target.transport == dns::Transport::udp) continue;
        hops.push_back(hop_from(target));
    }
    if (hops.empty()) {
        if (out.notification) return;
        return fail(request,
                    translate::to_xmpp_error(translate::DeliveryFailure::too_large_for_udp));
    }
    const translate::XmppMessage head = head_of(request);
    sip::OutgoingMessage sip_message;
    sip_message.request_uri = request_uri;
    sip_message.to = std::move(request_uri);
    sip_message.from = std::move(from_uri);
    sip_message.content_type = std::move(out.content_type);
    sip_message.body = std::move(out.body);
    sip_message.subject = std::move(out.subject);
    if (!out.call_id_hint.empty())
        sip_message.call_id = out.call_id_hint + "@" + config_.sip.domain;
    sip_message.content_language = std::move(out.content_language);
    const bool queued = agent_.send_message(
        std::move(sip_message), std::move(hops),
        [this, alive = alive_, request = head,
         notification = out.notification](const sip::SendResult& result) {
            if (!*alive) return;
            if (result.status >= 200 && result.status < 300) {
                ++stats_.sip_sent_ok;
                if (auto receipt = translate::receipt_for_sip_response(request, result.status))
                    link_.send_or_keep(stanza_from_message(*receipt));
                return;
            }
            if (notification) {
                spdlog::info("bridge: chat state to {} refused: {} {}", request.to, result.status,
                             result.phrase);
                return;
            }
            ++stats_.sip_failed;
            fail(request, abandon_error_ ? *abandon_error_
                                         : translate::to_xmpp_error(result.status, result.phrase));
        });
    if (!queued && !out.notification) {
        // S5: past the bound the sender hears at once, nothing waits unbounded.
        fail(head, {translate::Condition::resource_constraint,
                    "too many messages waiting for this SIP recipient; try again later",
                    {}});
    }
}

void MessageRelay::fail(const translate::XmppMessage& request, const translate::XmppError& error) {
    ++stats_.xmpp_errors[std::string(translate::to_string(error.condition))];
    spdlog::info("bridge: message id='{}' from {} to {} refused: {}{}{}", request.id, request.from,
                 request.to, translate::to_string(error.condition), error.text.empty() ? "" : ": ",
                 error.text);
    // While the XMPP server is away the error waits for its return: the sender hears then.
    if (!link_.send_or_keep(error_stanza_for(request, error)))
        spdlog::warn("bridge: error for message id='{}' lost: XMPP link {}", request.id,
                     late_ ? "closed (the message came as the stream closed)"
                           : "stopped, or not taking what we write");
}

void MessageRelay::from_sip(const sip::IncomingMessage& message, sip::Reply& reply) {
    ++stats_.sip_in;
    if (stopping_) {
        ++stats_.sip_refused;
        ++stats_.sip_refusals[503];
        spdlog::info("bridge: MESSAGE from {} to {}: 503, the gateway is stopping", message.from,
                     message.request_uri);
        reply.respond(503, "Gateway stopping", {"", "10"});
        return;
    }
    auto refuse = [&](const translate::SipStatus& status) {
        ++stats_.sip_refused;
        ++stats_.sip_refusals[status.code];
        spdlog::info("bridge: MESSAGE from {} to {} refused: {} {}", message.from,
                     message.request_uri, status.code, status.reason);
        reply.respond(status.code, status.reason, {status.accept, ""});
    };
    auto ruri = address::parse_sip_uri(message.request_uri);
    if (!ruri) return refuse(address_status(ruri.error()));
    auto user = address::sip_request_uri_to_xmpp_user(*ruri, addressing_);
    if (!user) return refuse(address_status(user.error()));
    auto from_uri = address::parse_sip_uri(message.from);
    if (!from_uri) return refuse(address_status(from_uri.error()));
    auto contact = address::sip_to_contact_jid(*from_uri, addressing_);
    if (!contact) return refuse(address_status(contact.error()));

    translate::SipMessageIn in{message.content_type, message.body, message.subject,
                               message.content_language, message.call_id};
    auto converted = translate::sip_to_xmpp(in, to_xmpp_, limits_);
    if (!converted) return refuse(converted.error());
    if (!link_.up()) {
        ++stats_.sip_refused;
        ++stats_.sip_refusals[503];
        spdlog::info("bridge: MESSAGE from {} to {}: 503, XMPP link down", message.from,
                     message.request_uri);
        reply.respond(503, "XMPP server not connected", {"", "10"});
        return;
    }
    if (unconfirmed_now_ >= max_unconfirmed_) {
        ++stats_.sip_refused;
        ++stats_.sip_refusals[503];
        spdlog::info("bridge: MESSAGE from {} to {}: 503, {} messages wait for the XMPP server to "
                     "confirm them already",
                     message.from, message.request_uri, unconfirmed_now_);
        reply.respond(503, "XMPP server slow to take messages", {"", "10"});
        return;
    }
    translate::XmppMessage x = std::move(converted.value());
    x.id = fmt::format("xsgw-{}", next_id_++);
    x.from = address::to_string(*contact);
    x.to = address::to_string(*user);
    const bool has_content = !x.body.empty();
    if (!link_.send(stanza_from_message(x))) {
        ++stats_.sip_refused;
        ++stats_.sip_refusals[503];
        reply.respond(503, "XMPP server not connected", {"", "10"});
        return;
    }
    spdlog::info("bridge: MESSAGE from {} -> stanza id='{}' to {}", message.from, x.id, x.to);
    // Delivery ledger: 202 once the XMPP server confirms it took the stanza; a server that dies
    // first may have lost it, and the sender hears so.
    if (auto held = reply.hold()) {
        ++unconfirmed_now_;
        link_.confirm(
            user->domain, [this, alive = alive_, held, id = x.id, from = message.from](bool taken) {
                if (!*alive) return;
                --unconfirmed_now_;
                if (taken) {
                    ++stats_.xmpp_delivered;
                    held->respond(202, "Accepted");
                    return;
                }
                ++stats_.sip_refusals[503];
                ++stats_.unconfirmed;
                // One line per message at debug: the link says how many at once.
                spdlog::debug("bridge: MESSAGE from {}: stanza id='{}' not confirmed by the XMPP "
                              "server before the link went down: 503 (it may or may not have been "
                              "delivered)",
                              from, id);
                held->respond(503, "XMPP server gone before it confirmed the message", {"", "10"});
            });
    } else {
        ++stats_.xmpp_delivered;
        reply.respond(202, "Accepted");
    }
    if (has_content) {
        ruri->gr.clear();
        remember(x.id, {message.from, address::to_string(*ruri), std::chrono::steady_clock::now()});
    }
}

void MessageRelay::remember(const std::string& id, Relayed relayed) {
    const auto now = relayed.at;
    while (!relayed_order_.empty() &&
           (relayed_order_.size() >= max_remembered ||
            now - relayed_.at(relayed_order_.front()).at > remember_for)) {
        relayed_.erase(relayed_order_.front());
        relayed_order_.pop_front();
    }
    relayed_.emplace(id, std::move(relayed));
    relayed_order_.push_back(id);
}

void MessageRelay::on_bounce(const std::string& id, const translate::XmppError& error) {
    auto it = relayed_.find(id);
    if (it == relayed_.end()) {
        spdlog::debug("bridge: error stanza id='{}' is no bounce of ours: dropped (E4)", id);
        return;
    }
    const Relayed relayed = it->second;
    auto sender = address::parse_sip_uri(relayed.sip_sender);
    if (!sender) return;
    const translate::SipMessageOut notice = translate::sip_notice_for_xmpp_error(error);
    spdlog::info("bridge: stanza id='{}' bounced ({}): telling {}", id,
                 translate::to_string(error.condition), relayed.sip_sender);
    ++stats_.bounces_notified;
    sender->gr.clear();
    const std::string request_uri = address::to_string(*sender);
    resolver_.resolve_sip(destination_of(*sender), [this, alive = alive_, notice, request_uri,
                                                    from = relayed.gateway_from,
                                                    id](const dns::Resolution& resolution) {
        if (!*alive || resolution.targets.empty()) return;
        std::vector<sip::NextHop> hops = hops_from(resolution);
        sip::OutgoingMessage m;
        m.request_uri = request_uri;
        m.to = request_uri;
        m.from = from;
        m.content_type = notice.content_type;
        m.body = notice.body;
        const bool queued =
            agent_.send_message(std::move(m), std::move(hops), [id](const sip::SendResult& r) {
                spdlog::info("bridge: bounce notice for id='{}': {} {}", id, r.status, r.phrase);
            });
        if (!queued) spdlog::warn("bridge: bounce notice for id='{}' dropped: queue full", id);
    });
}

} // namespace xsgw::bridge
