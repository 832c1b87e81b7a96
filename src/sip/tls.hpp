// S4: the TLS files of [sip], checked with OpenSSL and laid out the way Sofia-SIP 1.12 reads
// them (a folder with agent.pem = key + chain and cafile.pem; it has no tags for the files).
#pragma once

#include "xsgw/core/config.hpp"
#include "xsgw/sip/user_agent.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct sockaddr;
struct x509_st;

namespace xsgw::sip::detail {

/// SSL objects of Sofia-SIP's TLS connections freed by xsgw (src/sip/sofia_tls.cpp: Sofia
/// 1.12's tls_free() never frees them itself).
std::uint64_t sofia_ssl_freed();
/// Peer certificates' subjectAltName extensions that Sofia-SIP's peer check decoded and xsgw freed
/// (src/sip/sofia_tls.cpp, 4), and those decoded and not freed yet (0 between checks).
std::uint64_t sofia_peer_names_freed();
std::size_t sofia_peer_names_pending();

/// A socket address as text (an IPv4-mapped IPv6 address as IPv4) and its port.
std::optional<std::pair<std::string, unsigned>> address_text(const sockaddr* address);

/// RFC 5922 §7: the certificate names the SIP domain in a subjectAltName DNS entry or a
/// subjectAltName URI sip:domain (or sips:), compared whole and without case (no wildcards); the
/// CN counts only in a certificate without subjectAltName.
bool names_sip_domain(x509_st* cert, const std::string& domain);

/// With true, Sofia-SIP's TLS contexts made from now on ask every TLS client for a certificate
/// (none required) and note its connection once the handshake is done, for tls_peer_proves;
/// for sip.verify_from_domain. Default false: Sofia's own settings.
void ask_tls_clients_for_certificates(bool ask);
/// True once Sofia-SIP made a TLS context through xsgw's hook (src/sip/sofia_tls.cpp).
bool sofia_tls_hooked();

/// What the certificate of an incoming TLS connection says for a domain (issue 5 part 7).
struct TlsPeerProof {
    bool presented = false; ///< the source has a TLS connection whose peer gave a certificate
    bool proves = false;    ///< verified, names the domain, and no other connection is there
    std::string why;        ///< presented but proves nothing: the reason
};
/// The certificate of the incoming TLS connection from source (a request's source address and
/// port): chained to tls_ca_file and in date, names_sip_domain(domain), the handshake done, and
/// no other TCP connection from that address and port (a request does not show which of them
/// it came on). Nothing presented when no such TLS connection is open, or its peer sent no
/// certificate.
TlsPeerProof tls_peer_proves(const sockaddr* source, const std::string& domain);

/// What the gateway's certificate says, for the start-up log line.
struct CertificateSummary {
    std::vector<std::string> names; ///< subjectAltName DNS entries, else the CN
    std::string not_after;          ///< expiry, as OpenSSL prints it
    bool names_domain = false;      ///< one of names matches sip.domain (RFC 6125 rules)
    int trusted_cas = 0;            ///< certificates in tls_ca_file
};

/// Loads tls_certificate, tls_key and tls_ca_file; throws std::runtime_error with the file
/// and the reason when one does not load, the key does not match the certificate, the
/// certificate has expired or the CA file holds no certificate.
CertificateSummary check_tls_files(const core::SipConfig& config);

/// A private folder (0700) holding agent.pem (key, then certificate chain; 0600) and
/// cafile.pem, removed by the destructor. Sofia reads both when the user agent starts.
class TlsFolder {
public:
    /// Under $RUNTIME_DIRECTORY (systemd) or $TMPDIR or /tmp; throws std::runtime_error.
    explicit TlsFolder(const core::SipConfig& config);
    TlsFolder(const TlsFolder&) = delete;
    TlsFolder& operator=(const TlsFolder&) = delete;
    TlsFolder(TlsFolder&&) = delete;
    TlsFolder& operator=(TlsFolder&&) = delete;
    ~TlsFolder();

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

} // namespace xsgw::sip::detail

struct ssl_ctx_st;

namespace xsgw::core {
class EventLoop;
class Timer;
} // namespace xsgw::core

namespace xsgw::sip::detail {

/// S4: checks, before Sofia-SIP sends over a TLS next hop, that the peer there proves the
/// name sought (chain to a trusted CA, in date, name = the URI's domain; RFC 5922 §4) with a
/// handshake of its own on the loop. Sofia verifies the same but, when it refuses, drops the
/// request silently (a 408 after 32 s, no reason); this gives the sender a 503 at once and
/// the log the reason. Verdicts are kept: a pass 10 minutes, a refusal 1 minute; a peer that
/// cannot be reached gets no verdict (Sofia reports that itself).
class TlsVerifier {
public:
    /// nullopt: the peer proved the name; else why not.
    using Verdict = std::optional<std::string>;
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds pass_kept{600};
    static constexpr std::chrono::seconds refusal_kept{60};
    static constexpr std::chrono::seconds handshake_deadline{5};
    /// A peer that cannot be reached passes for this long: Sofia tries it and reports that.
    static constexpr std::chrono::seconds unreachable_kept{5};
    /// Most verdicts kept (stale ones go first, then any).
    static constexpr std::size_t max_kept = 10'000;

    /// Trusts the CAs of ca_file; throws std::runtime_error when it does not load.
    TlsVerifier(core::EventLoop& loop, const std::string& ca_file);
    ~TlsVerifier();
    TlsVerifier(const TlsVerifier&) = delete;
    TlsVerifier& operator=(const TlsVerifier&) = delete;
    TlsVerifier(TlsVerifier&&) = delete;
    TlsVerifier& operator=(TlsVerifier&&) = delete;

    /// The kept verdict for hop, if any (a hop that is not TLS always passes).
    std::optional<Verdict> known(const NextHop& hop);
    /// Checks hop; done runs later, from the loop, once (never after the verifier is gone).
    /// Checks of one hop at a time share one handshake.
    void check(const NextHop& hop, std::function<void()> done);
    /// The name a hop's certificate must hold: its domain, else its address.
    static const std::string& identity(const NextHop& hop);

private:
    struct Probe;
    void step(const std::string& key);
    void finish(const std::string& key, Verdict verdict, std::chrono::seconds keep);

    core::EventLoop& loop_;
    std::unique_ptr<core::Timer> reaper_;
    std::vector<std::unique_ptr<Probe>> finished_;
    ssl_ctx_st* ctx_ = nullptr;
    struct Kept {
        Verdict verdict;
        Clock::time_point until;
    };
    std::map<std::string, Kept> kept_;
    std::map<std::string, std::unique_ptr<Probe>> probes_;
};

} // namespace xsgw::sip::detail
