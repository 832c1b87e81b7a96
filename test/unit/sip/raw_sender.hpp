// A SIP sender as bare as it gets, shared by the SIP unit tests that must write requests by hand.
#pragma once

#include <arpa/inet.h>
#include <cstdint>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace xsgw::test {

/// One UDP socket on loopback, MESSAGEs written by hand,
/// final responses collected as text.
class RawSender {
public:
    explicit RawSender(int to_port) : fd_(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) {
        to_.sin_family = AF_INET;
        to_.sin_port = htons(static_cast<std::uint16_t>(to_port));
        to_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sockaddr_in self{};
        self.sin_family = AF_INET;
        self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof self;
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&self), sizeof self) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr*>(&self), &len) != 0)
            return;
        port_ = ntohs(self.sin_port);
    }
    ~RawSender() {
        if (fd_ >= 0) close(fd_);
    }
    RawSender(const RawSender&) = delete;
    RawSender& operator=(const RawSender&) = delete;
    RawSender(RawSender&&) = delete;
    RawSender& operator=(RawSender&&) = delete;

    bool ok() const { return port_ != 0; }
    int port() const { return port_; }

    /// Sends text as one datagram.
    void send(const std::string& text) {
        (void)sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&to_),
                     sizeof to_);
    }

    /// Sends MESSAGE number n (its own recipient, Call-ID and branch).
    void message(int n) {
        const std::string body = "n" + std::to_string(n);
        const std::string to =
            "sip:bob" + std::to_string(n) + "@127.0.0.1:" + std::to_string(ntohs(to_.sin_port));
        const std::string text =
            "MESSAGE " + to + " SIP/2.0\r\n" +
            "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(port_) + ";branch=z9hG4bK-s5-" +
            std::to_string(n) + ";rport\r\n" + "Max-Forwards: 70\r\n" +
            "From: <sip:flood@127.0.0.1>;tag=s5\r\n" + "To: <" + to + ">\r\n" + "Call-ID: s5-" +
            std::to_string(n) + "@127.0.0.1\r\n" + "CSeq: 1 MESSAGE\r\n" +
            "Content-Type: text/plain\r\n" + "Content-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body;
        send(text);
    }

    /// Reads what has come (final responses only); returns how many are held.
    std::size_t receive() {
        char buffer[65536];
        for (;;) {
            const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            std::string text(buffer, static_cast<std::size_t>(n));
            if (!text.starts_with("SIP/2.0 1")) responses.push_back(std::move(text));
        }
        return responses.size();
    }

    std::vector<std::string> responses;

private:
    int fd_;
    int port_ = 0;
    sockaddr_in to_{};
};

/// A MESSAGE (body "hi") or a SUBSCRIBE (Event: presence, Expires: 60) to
/// sip:alice*xmpp.test@127.0.0.1:port, sent from 127.0.0.1:from_port; id makes Call-ID and branch.
inline std::string sip_request(const std::string& method, int port, const std::string& id,
                               int from_port, int max_forwards = 70,
                               const std::string& from = "sip:carol@127.0.0.1") {
    const std::string ruri = "sip:alice*xmpp.test@127.0.0.1:" + std::to_string(port);
    const std::string body = method == "MESSAGE" ? "hi" : "";
    const std::string contact =
        "Contact: <sip:carol@127.0.0.1:" + std::to_string(from_port) + ">\r\n";
    return method + " " + ruri + " SIP/2.0\r\n" +
           "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(from_port) + ";branch=z9hG4bK-" + id +
           ";rport\r\n" + "Max-Forwards: " + std::to_string(max_forwards) + "\r\n" + "From: <" +
           from + ">;tag=t" + id + "\r\n" + "To: <" + ruri + ">\r\n" + "Call-ID: " + id +
           "@127.0.0.1\r\n" + "CSeq: 1 " + method + "\r\n" +
           (method == "SUBSCRIBE" ? "Event: presence\r\nExpires: 60\r\n" + contact
                                  : "Content-Type: text/plain\r\n") +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

} // namespace xsgw::test
