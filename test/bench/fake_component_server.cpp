#include "fake_component_server.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <iterator>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <utility>

namespace xsgw::bench {

std::string handshake_digest(std::string_view id, std::string_view secret) {
    const std::string input = std::string(id) + std::string(secret);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(input.data(), input.size(), md, &len, EVP_sha1(), nullptr) != 1) {
        throw std::runtime_error("SHA-1 failed");
    }
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
        fmt::format_to(std::back_inserter(hex), "{:02x}", md[i]);
    }
    return hex;
}

FakeComponentServer::FakeComponentServer(ComponentServerSettings settings, StanzaHandler on_stanza,
                                         Unexpected on_unexpected,
                                         std::function<std::int64_t()> clock)
    : settings_(std::move(settings)), on_stanza_(std::move(on_stanza)),
      on_unexpected_(std::move(on_unexpected)), clock_(std::move(clock)) {}

void FakeComponentServer::listen_on(Fd socket) {
    listen_ = std::move(socket);
    if (::listen(listen_.get(), 4) != 0) {
        throw std::runtime_error(fmt::format("listen: {}", std::strerror(errno)));
    }
}

void FakeComponentServer::accept_link() {
    Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
        return;
    }
    if (link_) {
        throw GatewayFailure("xsgw opened a second XMPP connection (did the first fail?)");
    }
    const int one = 1;
    ::setsockopt(conn.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    link_ = std::move(conn);
    listen_.reset(); // a reconnect would be a failure of the run: nobody to accept it
    state_ = LinkState::awaiting_stream;
}

void FakeComponentServer::read() {
    std::array<char, 65536> buf{};
    for (int i = 0; i < 16 && link_; ++i) {
        const ssize_t n = ::recv(link_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
            splitter_.feed({buf.data(), static_cast<std::size_t>(n)});
            drain(clock_());
            if (static_cast<std::size_t>(n) < buf.size()) {
                return;
            }
            continue;
        }
        if (n == 0) {
            if (stopping_) {
                link_.reset(); // what it does on SIGTERM
                return;
            }
            throw GatewayFailure("xsgw closed the XMPP connection");
        }
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        if (stopping_) {
            link_.reset();
            return;
        }
        throw GatewayFailure(fmt::format("XMPP connection: {}", std::strerror(errno)));
    }
}

void FakeComponentServer::drain(std::int64_t now) {
    for (;;) {
        const XmlStreamSplitter::Event event = splitter_.next();
        switch (event.kind) {
        case XmlStreamSplitter::Kind::need_more:
            return;
        case XmlStreamSplitter::Kind::stream_open:
            on_stream_open(event.text);
            break;
        case XmlStreamSplitter::Kind::element:
            on_element(event.text, now);
            break;
        case XmlStreamSplitter::Kind::stream_close:
            if (stopping_) {
                out_ += "</stream:stream>";
                break;
            }
            throw GatewayFailure("xsgw closed its XMPP stream");
        case XmlStreamSplitter::Kind::malformed:
            throw GatewayFailure(
                fmt::format("xsgw sent XML the benchmark cannot follow: {}", event.text));
        }
    }
}

void FakeComponentServer::on_stream_open(std::string_view header) {
    if (state_ != LinkState::awaiting_stream) {
        throw GatewayFailure("second stream header on the XMPP connection");
    }
    if (attribute(header, "to") != settings_.component) {
        throw GatewayFailure(fmt::format("xsgw opened a stream to the wrong domain: {}", header));
    }
    fmt::format_to(std::back_inserter(out_),
                   "<?xml version='1.0'?><stream:stream "
                   "xmlns:stream='http://etherx.jabber.org/streams' "
                   "xmlns='jabber:component:accept' from='{}' id='{}'>",
                   settings_.component, settings_.stream_id);
    state_ = LinkState::awaiting_handshake;
}

void FakeComponentServer::on_element(std::string_view element, std::int64_t now) {
    const std::string_view name = element_name(element);
    if (state_ == LinkState::awaiting_handshake) {
        on_handshake(element, name);
        return;
    }
    if (on_stanza_(element, name, now)) {
        return;
    }
    if (name == "iq" && attribute(element, "id") == settings_.ready_id) {
        ready_ = attribute(element, "type") == "result";
        if (!ready_) {
            throw GatewayFailure(fmt::format("xsgw did not answer the ping: {}", element));
        }
    } else if (attribute(element, "to") == settings_.component) {
        // The server's routing: a stanza to the component's own domain (its keepalive ping)
        // goes back to the component.
        out_.append(element);
    } else if (const auto id = attribute(element, "id");
               name == "iq" && attribute(element, "type") == "get" && id &&
               id->substr(0, 13) == "xsgw-confirm-") {
        // A ping to the server's domain (xsgw's confirmation that we took what came before it):
        // the server answers it itself, as Prosody, jabberd2 and ejabberd do.
        out_ += fmt::format("<iq type='result' id='{}' from='{}' to='{}'/>", *id,
                            attribute(element, "to").value_or(""), settings_.component);
    } else {
        on_unexpected_();
    }
}

void FakeComponentServer::on_handshake(std::string_view element, std::string_view name) {
    const std::size_t open_end = element.find('>');
    const std::size_t close = element.rfind("</");
    const std::string_view digest =
        name == "handshake" && open_end != std::string_view::npos && close > open_end
            ? element.substr(open_end + 1, close - open_end - 1)
            : std::string_view();
    if (digest != handshake_digest(settings_.stream_id, settings_.secret)) {
        out_ += "<stream:error><not-authorized "
                "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
                "</stream:stream>";
        flush();
        throw GatewayFailure(fmt::format(
            "xsgw's handshake is not SHA-1(id + secret) in lowercase hex: {}", element));
    }
    out_ += "<handshake/>";
    state_ = LinkState::up;
    // Proves the link is up on xsgw's side: it answers stanzas only after <handshake/>.
    fmt::format_to(std::back_inserter(out_),
                   "<iq type='get' id='{}' from='{}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
                   settings_.ready_id, settings_.ping_from, settings_.component);
}

void FakeComponentServer::flush() {
    while (!out_.empty() && link_) {
        const ssize_t n =
            ::send(link_.get(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            out_.erase(0, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (stopping_) {
            link_.reset(); // xsgw closed its end on SIGTERM
            out_.clear();
            return;
        }
        throw GatewayFailure(fmt::format("XMPP connection: {}", std::strerror(errno)));
    }
}

} // namespace xsgw::bench
