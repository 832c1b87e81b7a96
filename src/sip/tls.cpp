#include "tls.hpp"

#include "xsgw/core/event_loop.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sofia-sip/su_wait.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace xsgw::sip::detail {

namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct NamesFree {
    void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;

// OpenSSL's reason for the last failure, or fallback when it gave none.
std::string openssl_reason(const char* fallback) {
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0) return fallback;
    const char* reason = ERR_reason_error_string(code);
    return reason != nullptr ? reason : fallback;
}

[[noreturn]] void fail(const std::string& key, const std::string& file, const std::string& why) {
    throw std::runtime_error(fmt::format("sip.{} \"{}\": {}", key, file, why));
}

Bio open_file(const std::string& key, const std::string& file) {
    Bio bio(BIO_new_file(file.c_str(), "r"));
    if (!bio) fail(key, file, fmt::format("cannot open: {}", openssl_reason("no such file")));
    return bio;
}

std::string time_text(const ASN1_TIME* t) {
    Bio mem(BIO_new(BIO_s_mem()));
    if (!mem || ASN1_TIME_print(mem.get(), t) != 1) return "?";
    char* data = nullptr;
    const long size = BIO_get_mem_data(mem.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::vector<std::string> names_of(X509* cert) {
    std::vector<std::string> names;
    std::unique_ptr<GENERAL_NAMES, NamesFree> alt(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; alt && i < sk_GENERAL_NAME_num(alt.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt.get(), i);
        if (name->type != GEN_DNS) continue;
        const ASN1_STRING* dns = name->d.dNSName;
        names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                           static_cast<std::size_t>(ASN1_STRING_length(dns)));
    }
    if (names.empty()) {
        char cn[256] = {};
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) >
            0)
            names.emplace_back(cn);
    }
    return names;
}

std::string read_whole(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("cannot read \"{}\"", file));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_private(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error(
            fmt::format("cannot create \"{}\": {}", path, std::system_category().message(errno)));
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int error = errno;
            ::close(fd);
            throw std::runtime_error(fmt::format("cannot write \"{}\": {}", path,
                                                 std::system_category().message(error)));
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

} // namespace

CertificateSummary check_tls_files(const core::SipConfig& config) {
    CertificateSummary summary;
    Bio cert_file = open_file("tls_certificate", config.tls_certificate);
    Certificate cert(PEM_read_bio_X509(cert_file.get(), nullptr, nullptr, nullptr));
    if (!cert)
        fail("tls_certificate", config.tls_certificate,
             fmt::format("no certificate: {}", openssl_reason("not PEM")));
    Bio key_file = open_file("tls_key", config.tls_key);
    std::unique_ptr<EVP_PKEY, KeyFree> key(
        PEM_read_bio_PrivateKey(key_file.get(), nullptr, nullptr, nullptr));
    if (!key)
        fail("tls_key", config.tls_key,
             fmt::format("no private key (an encrypted key is not supported): {}",
                         openssl_reason("not PEM")));
    if (X509_check_private_key(cert.get(), key.get()) != 1)
        fail("tls_key", config.tls_key,
             fmt::format("does not match the certificate in \"{}\"", config.tls_certificate));
    ERR_clear_error();
    summary.not_after = time_text(X509_get0_notAfter(cert.get()));
    if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0)
        fail("tls_certificate", config.tls_certificate,
             fmt::format("expired on {}", summary.not_after));
    summary.names = names_of(cert.get());
    summary.names_domain = names_sip_domain(cert.get(), config.domain);

    Bio ca_file = open_file("tls_ca_file", config.tls_ca_file);
    while (Certificate ca{PEM_read_bio_X509(ca_file.get(), nullptr, nullptr, nullptr)})
        ++summary.trusted_cas;
    ERR_clear_error(); // the end of the file reads as an error
    if (summary.trusted_cas == 0) fail("tls_ca_file", config.tls_ca_file, "holds no certificate");
    return summary;
}

TlsFolder::TlsFolder(const core::SipConfig& config) {
    const char* base = std::getenv("RUNTIME_DIRECTORY");
    if (base == nullptr || *base == '\0') base = std::getenv("TMPDIR");
    if (base == nullptr || *base == '\0') base = "/tmp";
    // RUNTIME_DIRECTORY may list several folders, separated by ':'.
    std::string folder =
        std::string(base).substr(0, std::string(base).find(':')) + "/xsgw-tls-XXXXXX";
    if (::mkdtemp(folder.data()) == nullptr)
        throw std::runtime_error(fmt::format("cannot make a folder for the TLS files ({}): {}",
                                             folder, std::system_category().message(errno)));
    path_ = folder;
    try {
        std::string agent = read_whole(config.tls_key);
        if (!agent.empty() && agent.back() != '\n') agent += '\n';
        agent += read_whole(config.tls_certificate);
        write_private(path_ + "/agent.pem", agent);
        write_private(path_ + "/cafile.pem", read_whole(config.tls_ca_file));
    } catch (...) {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
        throw;
    }
}

TlsFolder::~TlsFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

// ---------------------------------------------------------------------------

struct TlsVerifier::Probe {
    explicit Probe(core::EventLoop& loop) : watch(loop), deadline(loop) {}
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    Probe(Probe&&) = delete;
    Probe& operator=(Probe&&) = delete;
    ~Probe() {
        watch.detach();
        if (ssl != nullptr) SSL_free(ssl);
        if (fd >= 0) ::close(fd);
    }
    NextHop hop;
    int fd = -1;
    SSL* ssl = nullptr;
    core::FdWatch watch;
    core::Timer deadline;
    std::vector<std::function<void()>> waiting;
};

namespace {

std::string hop_key(const NextHop& hop) {
    return fmt::format("{} {} {}", hop.address, hop.port, TlsVerifier::identity(hop));
}

bool is_ip(const std::string& text) {
    in6_addr buffer{};
    return inet_pton(AF_INET, text.c_str(), &buffer) == 1 ||
           inet_pton(AF_INET6, text.c_str(), &buffer) == 1;
}

// Why the peer's certificate, after a completed handshake, does not prove identity.
// A domain's name is checked here, after the chain (RFC 5922 §7: names_sip_domain); an address
// by OpenSSL during the handshake.
TlsVerifier::Verdict verdict_of(SSL* ssl, const std::string& identity) {
    const long result = SSL_get_verify_result(ssl);
    Certificate cert(SSL_get1_peer_certificate(ssl));
    const bool mismatch =
        result == X509_V_ERR_IP_ADDRESS_MISMATCH ||
        (result == X509_V_OK && !is_ip(identity) && !names_sip_domain(cert.get(), identity));
    if (result == X509_V_OK && !mismatch) return std::nullopt;
    if (mismatch) {
        const auto names = cert ? names_of(cert.get()) : std::vector<std::string>{};
        return fmt::format("its certificate names {}, not {}",
                           names.empty() ? "nothing" : fmt::format("{}", fmt::join(names, ", ")),
                           identity);
    }
    return fmt::format("its certificate is not trusted: {}", X509_verify_cert_error_string(result));
}

} // namespace

TlsVerifier::TlsVerifier(core::EventLoop& loop, const std::string& ca_file)
    : loop_(loop), reaper_(std::make_unique<core::Timer>(loop)) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) throw std::runtime_error("TLS: cannot make an OpenSSL context");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    // The verification runs either way; the handshake is let finish so that a refusal can say
    // what the certificate names.
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_verify_depth(ctx_, 9);
    if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
        const std::string why = openssl_reason("cannot load");
        SSL_CTX_free(ctx_);
        throw std::runtime_error(fmt::format("sip.tls_ca_file \"{}\": {}", ca_file, why));
    }
}

TlsVerifier::~TlsVerifier() {
    probes_.clear();
    finished_.clear();
    SSL_CTX_free(ctx_);
}

const std::string& TlsVerifier::identity(const NextHop& hop) {
    return hop.domain.empty() ? hop.address : hop.domain;
}

std::optional<TlsVerifier::Verdict> TlsVerifier::known(const NextHop& hop) {
    if (hop.transport != "tls") return Verdict{};
    const auto it = kept_.find(hop_key(hop));
    if (it == kept_.end()) return std::nullopt;
    if (it->second.until <= Clock::now()) {
        kept_.erase(it);
        return std::nullopt;
    }
    return it->second.verdict;
}

void TlsVerifier::check(const NextHop& hop, std::function<void()> done) {
    const std::string key = hop_key(hop);
    if (auto it = probes_.find(key); it != probes_.end()) {
        it->second->waiting.push_back(std::move(done));
        return;
    }
    auto probe = std::make_unique<Probe>(loop_);
    Probe& p = *probe;
    p.hop = hop;
    p.waiting.push_back(std::move(done));
    probes_.emplace(key, std::move(probe));

    sockaddr_storage address{};
    socklen_t length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    if (inet_pton(AF_INET, hop.address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(hop.port);
        length = sizeof *v4;
    } else if (inet_pton(AF_INET6, hop.address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(hop.port);
        length = sizeof *v6;
    } else {
        finish(key, fmt::format("{} is not an address", hop.address), refusal_kept);
        return;
    }
    p.fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p.fd < 0 || (::connect(p.fd, reinterpret_cast<sockaddr*>(&address), length) != 0 &&
                     errno != EINPROGRESS)) {
        // Unreachable is not for us to judge: Sofia tries and reports it.
        finish(key, std::nullopt, unreachable_kept);
        return;
    }
    p.deadline.start(std::chrono::duration_cast<std::chrono::milliseconds>(handshake_deadline),
                     [this, key] { finish(key, "no TLS handshake within 5 s", refusal_kept); });
    p.watch.attach(p.fd, SU_WAIT_OUT, [this, key](int) { step(key); });
}

void TlsVerifier::step(const std::string& key) {
    const auto it = probes_.find(key);
    if (it == probes_.end()) return;
    Probe& p = *it->second;
    if (p.ssl == nullptr) {
        int error = 0;
        socklen_t size = sizeof error;
        if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
            finish(key, std::nullopt, unreachable_kept);
            return;
        }
        const std::string& name = identity(p.hop);
        p.ssl = SSL_new(ctx_);
        if (p.ssl == nullptr || SSL_set_fd(p.ssl, p.fd) != 1) {
            finish(key, std::nullopt, unreachable_kept);
            return;
        }
        if (is_ip(name)) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p.ssl), name.c_str());
        } else {
            SSL_set_tlsext_host_name(p.ssl, name.c_str()); // the name: verdict_of()
        }
    }
    const int r = SSL_connect(p.ssl);
    if (r == 1) {
        Verdict verdict = verdict_of(p.ssl, identity(p.hop));
        (void)SSL_shutdown(p.ssl); // close_notify, best effort; the socket closes after
        const auto kept = verdict ? refusal_kept : pass_kept;
        finish(key, std::move(verdict), kept);
        return;
    }
    switch (SSL_get_error(p.ssl, r)) {
    case SSL_ERROR_WANT_READ:
        p.watch.set_events(SU_WAIT_IN);
        return;
    case SSL_ERROR_WANT_WRITE:
        p.watch.set_events(SU_WAIT_OUT);
        return;
    default:
        finish(key, fmt::format("TLS handshake failed: {}", openssl_reason("connection closed")),
               refusal_kept);
    }
}

void TlsVerifier::finish(const std::string& key, Verdict verdict, std::chrono::seconds keep) {
    const auto it = probes_.find(key);
    if (it == probes_.end()) return;
    std::unique_ptr<Probe> probe = std::move(it->second);
    probes_.erase(it);
    probe->watch.detach();
    probe->deadline.cancel();
    if (verdict)
        spdlog::warn("sip: TLS peer {}:{} ({}) refused for {}: {}", probe->hop.address,
                     probe->hop.port, probe->hop.host, identity(probe->hop), *verdict);
    else if (keep == pass_kept)
        spdlog::info("sip: TLS peer {}:{} ({}) proved the name {}", probe->hop.address,
                     probe->hop.port, probe->hop.host, identity(probe->hop));
    const auto now = Clock::now();
    // Verdicts are kept per (address, port, name): forget the stale ones before the table grows.
    if (kept_.size() >= max_kept)
        std::erase_if(kept_, [now](const auto& entry) { return entry.second.until <= now; });
    if (kept_.size() >= max_kept) kept_.erase(kept_.begin());
    kept_[key] = Kept{std::move(verdict), now + keep};
    // The waiting callbacks and the probe's end run from the loop, not from inside its watch.
    finished_.push_back(std::move(probe));
    if (!reaper_->armed())
        reaper_->start(std::chrono::milliseconds(0), [this] {
            auto done = std::move(finished_);
            finished_.clear();
            for (auto& p : done)
                for (auto& callback : p->waiting)
                    if (callback) callback();
        });
}

} // namespace xsgw::sip::detail
