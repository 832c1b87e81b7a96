// S4 / issue 5: Sofia-SIP 1.12.11 leaks every TLS connection's SSL object.
//
// tport_tls.c's tls_free() ends a connection with SSL_shutdown(con), BIO_free(bio_con) and
// su_home_unref(); it never calls SSL_free(con). The SSL and everything it holds (its read and
// write buffers, the peer's certificate chain, a reference to the master SSL_CTX) stay allocated:
// some 75 KiB per connection, incoming or outgoing, for as long as xsgw runs. A peer that opens
// and closes TLS connections could grow xsgw without bound.
//
// xsgw defines SSL_shutdown itself. The dynamic linker binds Sofia's call to this one (the
// executable comes first in symbol lookup), which calls OpenSSL's and then, when the caller is
// Sofia-SIP's library, frees the SSL. The SSL holds two references to its socket BIO
// (SSL_set_bio() with the same BIO both ways takes two) and SSL_free() drops both; one more is
// taken first so that the BIO_free() tls_free() does next still finds it alive and frees it.
// The same goes for the SSL_CTX: tls_init_secondary() copies the master's type into the
// connection's context, so tls_free() goes on to SSL_CTX_free() the shared SSL_CTX once per
// connection as well, a release balanced until now only by the reference the leaked SSL kept.
// SSL_free() gives that reference back, so one is taken for tls_free() to drop.
// Sofia uses no SSL after tls_free(): tport_tls_deinit_secondary() forgets the context at once.
// Every other caller of SSL_shutdown (xsgw's own TLS check) gets OpenSSL's function unchanged.
#include "tls.hpp"

#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <string_view>

namespace xsgw::sip::detail {
namespace {

std::uint64_t freed_count = 0;

using ShutdownFunction = int (*)(SSL*);

ShutdownFunction openssl_shutdown() {
    static const auto function =
        reinterpret_cast<ShutdownFunction>(dlsym(RTLD_NEXT, "SSL_shutdown"));
    return function;
}

bool in_sofia(const void* address) {
    Dl_info info{};
    if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return false;
    return std::string_view(info.dli_fname).find("libsofia-sip-ua.so") != std::string_view::npos;
}

} // namespace

std::uint64_t sofia_ssl_freed() {
    return freed_count;
}

} // namespace xsgw::sip::detail

extern "C" __attribute__((visibility("default"))) int SSL_shutdown(SSL* ssl) {
    const void* caller = __builtin_return_address(0);
    const auto shutdown = xsgw::sip::detail::openssl_shutdown();
    const int result = shutdown != nullptr ? shutdown(ssl) : -1;
    if (ssl == nullptr || !xsgw::sip::detail::in_sofia(caller)) return result;
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
