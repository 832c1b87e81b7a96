// The fake XMPP server both benchmarks play (README.md here): it accepts xsgw's XEP-0114
// connection, sends the stream header, checks the handshake, pings the component until it
// answers and routes back what xsgw addresses to its own domain. What xsgw sends after that
// goes to the benchmark.

#pragma once

#include "fd.hpp"
#include "xml_stream.hpp"

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace xsgw::bench {

/// The gateway died, closed its link or spoke nonsense: the run cannot go on.
class GatewayFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// XEP-0114 §3: lowercase hex SHA-1 of stream id + secret.
std::string handshake_digest(std::string_view id, std::string_view secret);

struct ComponentServerSettings {
    std::string component; ///< the domain xsgw must open its stream to
    std::string secret;
    std::string stream_id;
    std::string ping_from; ///< the from of the readiness ping
    std::string ready_id;  ///< the id of the readiness ping
};

class FakeComponentServer {
public:
    /// A stanza after the handshake; true when the benchmark took it. Otherwise the server
    /// takes the ping's answer and stanzas to the component's domain, and calls `Unexpected`.
    using StanzaHandler =
        std::function<bool(std::string_view element, std::string_view name, std::int64_t now)>;
    using Unexpected = std::function<void()>;

    FakeComponentServer(ComponentServerSettings settings, StanzaHandler on_stanza,
                        Unexpected on_unexpected, std::function<std::int64_t()> clock);

    /// Listens on `socket` (bound, not yet listening).
    void listen_on(Fd socket);

    int listen_fd() const { return listen_.get(); }
    int link_fd() const { return link_.get(); }
    bool connected() const { return state_ != LinkState::no_connection; }
    /// The handshake is taken and the component answered the ping.
    bool ready() const { return ready_; }
    /// Stanzas for xsgw, written by `flush`.
    std::string& out() { return out_; }
    /// SIGTERM sent: xsgw closing its link is expected from now on.
    void expect_close() { stopping_ = true; }

    void accept_link();
    void read();
    void flush();

private:
    enum class LinkState { no_connection, awaiting_stream, awaiting_handshake, up };

    void drain(std::int64_t now);
    void on_stream_open(std::string_view header);
    void on_element(std::string_view element, std::int64_t now);
    void on_handshake(std::string_view element, std::string_view name);

    ComponentServerSettings settings_;
    StanzaHandler on_stanza_;
    Unexpected on_unexpected_;
    std::function<std::int64_t()> clock_;
    Fd listen_;
    Fd link_;
    LinkState state_ = LinkState::no_connection;
    bool ready_ = false;
    bool stopping_ = false;
    XmlStreamSplitter splitter_;
    std::string out_;
};

} // namespace xsgw::bench
