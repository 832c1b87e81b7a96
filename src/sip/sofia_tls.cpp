// Two defects of Sofia-SIP 1.12.11's TLS (tport_tls.c) that xsgw works around from outside the
// library, by defining two OpenSSL functions itself: the dynamic linker binds Sofia's calls to
// these (the executable comes first in symbol lookup); every other caller (xsgw's own TLS check)
// gets OpenSSL's functions unchanged. Both act only when the caller is libsofia-sip-ua.
//
// 1. S4: every TLS connection's SSL object leaked. tls_free() ends a connection with
// SSL_shutdown(con), BIO_free(bio_con) and su_home_unref(); it never calls SSL_free(con). The SSL
// and everything it holds (its buffers, the peer's certificate chain, a reference to the master
// SSL_CTX) stayed allocated, some 75 KiB per connection in or out, so a peer that opens and closes
// TLS connections grew xsgw without bound. SSL_shutdown here frees the SSL after OpenSSL's
// shutdown. The SSL holds two references to its socket BIO (SSL_set_bio() with the same BIO both
// ways takes two) and SSL_free() drops both: one more is taken first so that the BIO_free()
// tls_free() does next still finds it alive. The same goes for the SSL_CTX: tls_init_secondary()
// copies the master's type into the connection's context, so tls_free() also SSL_CTX_free()s the
// shared SSL_CTX once per connection, a release balanced until now only by the reference the
// leaked SSL kept; one is taken for tls_free() to drop. Sofia uses no SSL after tls_free():
// tport_tls_deinit_secondary() forgets the context at once.
//
// 2. Issue 5 part 7: a TLS client is asked for a certificate only when every client must have
// one. tls_init_context() sets SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT when incoming
// connections are verified, else SSL_VERIFY_NONE, and then OpenSSL never asks. SSL_CTX_set_verify
// here turns Sofia's SSL_VERIFY_NONE into SSL_VERIFY_PEER with a callback that accepts every
// certificate (or none) as before, so nothing Sofia accepted is refused now, and notes which
// incoming connection (peer address and port) each SSL serves. What the certificate proves is
// read when a request needs it (tls_peer_proves): OpenSSL's verification result against
// tls_ca_file, and the names. Sofia's own callback (tls_verify_cb) is left out: with no
// verification configured it only clears every error, which would make any certificate look
// verified.
#include "tls.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <dlfcn.h>
#include <map>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string_view>
#include <sys/socket.h>
#include <utility>

namespace xsgw::sip::detail {
namespace {

std::uint64_t freed_count = 0;

template <typename Function> Function openssl(const char* name) {
    return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

using ShutdownFunction = int (*)(SSL*);
using SetVerifyFunction = void (*)(SSL_CTX*, int, SSL_verify_cb);

bool in_sofia(const void* address) {
    Dl_info info{};
    if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return false;
    return std::string_view(info.dli_fname).find("libsofia-sip-ua.so") != std::string_view::npos;
}

// Incoming connections Sofia serves over TLS whose peer presented a certificate, by the peer's
// address and port; an SSL stays valid until tls_free() (SSL_shutdown below) forgets it.
using Peer = std::pair<std::string, unsigned>;
std::map<Peer, SSL*> incoming_by_peer;
std::map<SSL*, Peer> peer_of;

std::optional<Peer> peer_of_socket(int fd) {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    if (fd < 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0)
        return std::nullopt;
    return address_text(reinterpret_cast<const sockaddr*>(&address));
}

void forget(SSL* ssl) {
    const auto it = peer_of.find(ssl);
    if (it == peer_of.end()) return;
    const auto by_peer = incoming_by_peer.find(it->second);
    if (by_peer != incoming_by_peer.end() && by_peer->second == ssl)
        incoming_by_peer.erase(by_peer);
    peer_of.erase(it);
}

// Called by OpenSSL for each certificate of the peer's chain (never when it presents none).
int note_and_accept(int /*preverified*/, X509_STORE_CTX* store) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl == nullptr || SSL_is_server(ssl) == 0 || peer_of.contains(ssl)) return 1;
    if (const auto peer = peer_of_socket(SSL_get_fd(ssl))) {
        // A connection noted for the same peer is gone: its peer's socket is this one now.
        if (const auto old = incoming_by_peer.find(*peer); old != incoming_by_peer.end())
            peer_of.erase(old->second);
        incoming_by_peer[*peer] = ssl;
        peer_of[ssl] = *peer;
    }
    return 1; // the verdict is OpenSSL's result, read at use; the handshake goes on as before
}

bool equal_nocase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// RFC 5922 §7.1: a subjectAltName URI sip:domain (or sips:) without a user part names it.
bool uri_names(X509* cert, const std::string& domain) {
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (names == nullptr) return false;
    bool found = false;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        const ASN1_IA5STRING* text = name->d.uniformResourceIdentifier;
        const std::string_view uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                   static_cast<std::size_t>(ASN1_STRING_length(text)));
        found = equal_nocase(uri, "sip:" + domain) || equal_nocase(uri, "sips:" + domain);
    }
    GENERAL_NAMES_free(names);
    return found;
}

} // namespace

std::optional<std::pair<std::string, unsigned>> address_text(const sockaddr* address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address == nullptr) return std::nullopt;
    if (address->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) == nullptr) return std::nullopt;
        return std::pair<std::string, unsigned>{text, ntohs(in->sin_port)};
    }
    if (address->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        const bool mapped = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
        const void* raw = mapped ? static_cast<const void*>(&in6->sin6_addr.s6_addr[12])
                                 : static_cast<const void*>(&in6->sin6_addr);
        if (inet_ntop(mapped ? AF_INET : AF_INET6, raw, text, sizeof text) == nullptr)
            return std::nullopt;
        return std::pair<std::string, unsigned>{text, ntohs(in6->sin6_port)};
    }
    return std::nullopt;
}

bool names_sip_domain(X509* cert, const std::string& domain) {
    if (cert == nullptr) return false;
    // X509_check_host alone would read the CN whenever there is no DNS entry (beside a URI one,
    // say): RFC 5922 §7.1 lets it count only in a certificate without subjectAltName.
    unsigned flags = X509_CHECK_FLAG_NO_WILDCARDS;
    if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0)
        flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
    return X509_check_host(cert, domain.data(), domain.size(), flags, nullptr) == 1 ||
           uri_names(cert, domain);
}

std::uint64_t sofia_ssl_freed() {
    return freed_count;
}

TlsPeerProof tls_peer_proves(const std::string& address, unsigned port, const std::string& domain) {
    TlsPeerProof proof;
    const auto it = incoming_by_peer.find(Peer{address, port});
    if (it == incoming_by_peer.end()) return proof;
    X509* cert = SSL_get1_peer_certificate(it->second);
    if (cert == nullptr) return proof;
    proof.presented = true;
    const long result = SSL_get_verify_result(it->second);
    if (result != X509_V_OK) {
        proof.why =
            std::string("its certificate is not trusted: ") + X509_verify_cert_error_string(result);
    } else if (names_sip_domain(cert, domain)) {
        proof.proves = true;
    } else {
        proof.why = "its certificate does not name " + domain;
    }
    X509_free(cert);
    return proof;
}

} // namespace xsgw::sip::detail

using xsgw::sip::detail::in_sofia;
using xsgw::sip::detail::openssl;

extern "C" __attribute__((visibility("default"))) int SSL_shutdown(SSL* ssl) {
    static const auto shutdown = openssl<xsgw::sip::detail::ShutdownFunction>("SSL_shutdown");
    const void* caller = __builtin_return_address(0);
    const int result = shutdown != nullptr ? shutdown(ssl) : -1;
    if (ssl == nullptr || !in_sofia(caller)) return result;
    xsgw::sip::detail::forget(ssl);
    BIO* bio = SSL_get_rbio(ssl);
    // Only the shape tls_init_secondary() makes: one socket BIO both ways (else leave it be).
    SSL_CTX* context = SSL_get_SSL_CTX(ssl);
    if (bio == nullptr || bio != SSL_get_wbio(ssl) || context == nullptr) return result;
    if (BIO_up_ref(bio) != 1) return result;
    if (SSL_CTX_up_ref(context) != 1) {
        BIO_free(bio);
        return result;
    }
    SSL_free(ssl);
    ++xsgw::sip::detail::freed_count;
    return result;
}

extern "C" __attribute__((visibility("default"))) void
SSL_CTX_set_verify(SSL_CTX* context, int mode, SSL_verify_cb callback) {
    static const auto set_verify =
        openssl<xsgw::sip::detail::SetVerifyFunction>("SSL_CTX_set_verify");
    const void* caller = __builtin_return_address(0);
    if (set_verify == nullptr) return;
    if (mode == SSL_VERIFY_NONE && in_sofia(caller)) {
        set_verify(context, SSL_VERIFY_PEER, &xsgw::sip::detail::note_and_accept);
        return;
    }
    set_verify(context, mode, callback);
}
