// Defects of Sofia-SIP 1.12.11's TLS (tport_tls.c) that xsgw works around from outside the
// library, by defining six OpenSSL functions itself: the dynamic linker binds Sofia's calls to
// these (the executable comes first in symbol lookup); every other caller (xsgw's own TLS check,
// Sofia's STUN client) gets OpenSSL's functions unchanged. Each checks its caller: SSL_shutdown
// acts only for tls_free(), the others only for libsofia-sip-ua. They are never inlined (the
// caller is the return address).
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
// connections are verified, else SSL_VERIFY_NONE, and then OpenSSL never asks. When the gateway
// checks who speaks for a domain (sip.verify_from_domain), SSL_CTX_set_verify here turns Sofia's
// SSL_VERIFY_NONE into SSL_VERIFY_PEER with a callback that accepts every certificate (or none),
// so nothing Sofia accepted is refused now; renegotiation is off (the peer cannot swap its
// certificate later) and any key usage will do (a SIP server's certificate often names
// serverAuth alone). An info callback notes each incoming connection once its handshake is done
// (the peer proved it holds the key; resumed sessions too), by the peer's address and port.
// What a certificate proves is read when a request needs it (tls_peer_proves): OpenSSL's
// verification result against tls_ca_file, and the names (RFC 5922 §7). Sofia's own callback
// (tls_verify_cb) is left out: with no verification configured it clears every error, which
// would make any certificate look verified. A request shows only its source address and port,
// not whether it came over TLS or plain TCP: where two connections share that remote endpoint
// (a NAT that keeps ports, a peer with SO_REUSEADDR), the certificate proves nothing; the
// kernel is asked (sock_diag) whether any other socket has it.
//
// 3. If SSL_new() fails (out of memory), tls_init_secondary() still runs tls_free(), which then
// releases the master's SSL_CTX once more than it was taken (see 1): SSL_new here takes that
// reference when it returns nothing to Sofia.
//
// 4. tls_post_connection_check() reads a peer certificate's subjectAltName with X509V3_EXT_get,
// X509V3_EXT_d2i and the method's i2v, copies the names, and frees neither the decoded names nor
// their text list: some 200 bytes per connection whose peer presents a certificate (every outgoing
// one; every incoming one with verify_from_domain). X509V3_EXT_get here hands Sofia a copy of the
// extension's method whose i2v notes the list it makes, X509V3_EXT_d2i notes what it decodes, and
// the X509_free() Sofia calls at the end of that check frees both.
#include "tls.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sofia-sip/su_string.h>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace xsgw::sip::detail {
namespace {

std::uint64_t freed_count = 0;
bool ask_certificates = false;
bool verify_hooked = false;

template <typename Function> Function openssl(const char* name) {
    const auto function = reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
    if (function == nullptr) std::abort(); // OpenSSL without it: nothing here could be right
    return function;
}

using ShutdownFunction = int (*)(SSL*);
using SetVerifyFunction = void (*)(SSL_CTX*, int, SSL_verify_cb);
using NewFunction = SSL* (*)(SSL_CTX*);
using ExtGetFunction = const X509V3_EXT_METHOD* (*)(X509_EXTENSION*);
using ExtD2iFunction = void* (*)(X509_EXTENSION*);
using X509FreeFunction = void (*)(X509*);

bool in_sofia(const void* address, const char* function = nullptr) {
    Dl_info info{};
    if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return false;
    if (std::string_view(info.dli_fname).find("libsofia-sip-ua.so") == std::string_view::npos)
        return false;
    return function == nullptr ||
           (info.dli_sname != nullptr && std::strcmp(info.dli_sname, function) == 0);
}

// 4: what Sofia's peer check decoded and listed, freed at its X509_free. Never destroyed (as
// below). A copy of each extension method Sofia asked for, whose i2v notes its list.
struct Decoded {
    void* value;
    const X509V3_EXT_METHOD* method;
};
auto& decoded = *new std::vector<Decoded>;
auto& listed = *new std::vector<STACK_OF(CONF_VALUE)*>;
auto& method_copies = *new std::map<const X509V3_EXT_METHOD*, X509V3_EXT_METHOD>;
auto& originals = *new std::map<const X509V3_EXT_METHOD*, const X509V3_EXT_METHOD*>;

STACK_OF(CONF_VALUE) *
    noting_i2v(const X509V3_EXT_METHOD* copy, void* value, STACK_OF(CONF_VALUE) * list) {
    const auto original = originals.find(copy);
    if (original == originals.end() || original->second->i2v == nullptr) return list;
    STACK_OF(CONF_VALUE)* made = original->second->i2v(original->second, value, list);
    if (made != nullptr && made != list) {
        try {
            listed.push_back(made);
        } catch (...) { // out of memory: that one stays allocated, as before
        }
    }
    return made;
}

std::uint64_t names_freed = 0;

void free_decoded() {
    names_freed += decoded.size();
    for (const Decoded& d : decoded) {
        if (d.method->it != nullptr)
            ASN1_item_free(static_cast<ASN1_VALUE*>(d.value), ASN1_ITEM_ptr(d.method->it));
        else if (d.method->ext_free != nullptr)
            d.method->ext_free(d.value);
    }
    decoded.clear();
    for (STACK_OF(CONF_VALUE) * list : listed)
        sk_CONF_VALUE_pop_free(list, X509V3_conf_free);
    listed.clear();
}

// Incoming connections Sofia serves over TLS whose handshake is done, by the peer's address and
// port (normally one each); an SSL stays valid until tls_free() (SSL_shutdown below) forgets it.
// Never destroyed: Sofia may free connections while statics are destroyed.
using Peer = std::pair<std::string, unsigned>;
auto& incoming_by_peer = *new std::map<Peer, std::vector<SSL*>>;
auto& peer_of = *new std::map<SSL*, Peer>;

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
    if (by_peer != incoming_by_peer.end()) {
        std::erase(by_peer->second, ssl);
        if (by_peer->second.empty()) incoming_by_peer.erase(by_peer);
    }
    peer_of.erase(it);
}

int accept_any(int /*preverified*/, X509_STORE_CTX* /*store*/) noexcept {
    return 1; // the verdict is OpenSSL's result, read at use; the handshake goes on as before
}

void note_handshake(const SSL* ssl, int where, int /*ret*/) noexcept {
    if ((where & SSL_CB_HANDSHAKE_DONE) == 0 || SSL_is_server(const_cast<SSL*>(ssl)) == 0) return;
    auto* connection = const_cast<SSL*>(ssl);
    try {
        if (peer_of.contains(connection)) return;
        if (const auto peer = peer_of_socket(SSL_get_fd(connection))) {
            incoming_by_peer[*peer].push_back(connection);
            peer_of[connection] = *peer;
        }
    } catch (...) { // out of memory: this connection just proves nothing
    }
}

// RFC 5922 §7.1: a subjectAltName URI with the scheme sip and no user part names the domain.
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
        const std::string expected = "sip:" + domain;
        found = uri.size() == expected.size() &&
                su_casenmatch(uri.data(), expected.data(), expected.size());
    }
    GENERAL_NAMES_free(names);
    return found;
}

// How many TCP sockets of one family in this network namespace are connected to address:port
// (sock_diag, the kernel filtering); nullopt when it cannot tell.
std::optional<int> sockets_of_family_connected_to(const sockaddr* peer) {
    const bool v6 = peer->sa_family == AF_INET6;
    const std::size_t address_size = v6 ? 16 : 4;
    // One condition (INET_DIAG_BC_D_COND: the remote address, whole, and port); true jumps to
    // the end (the socket matches), false past it (it does not).
    inet_diag_bc_op op{};
    inet_diag_hostcond cond{};
    const std::size_t filter_size = sizeof op + sizeof cond + address_size;
    op.code = INET_DIAG_BC_D_COND;
    op.yes = static_cast<unsigned char>(filter_size);
    op.no = static_cast<unsigned short>(filter_size + 4);
    cond.family = v6 ? AF_INET6 : AF_INET;
    cond.prefix_len = v6 ? 128 : 32;
    const void* address = nullptr;
    if (v6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(peer);
        cond.port = ntohs(in6->sin6_port);
        address = &in6->sin6_addr;
    } else {
        const auto* in = reinterpret_cast<const sockaddr_in*>(peer);
        cond.port = ntohs(in->sin_port);
        address = &in->sin_addr;
    }
    nlmsghdr header{};
    inet_diag_req_v2 request{};
    nlattr attribute{};
    header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.sdiag_family = static_cast<std::uint8_t>(cond.family);
    request.sdiag_protocol = IPPROTO_TCP;
    request.idiag_states = 1u << TCP_ESTABLISHED;
    attribute.nla_type = INET_DIAG_REQ_BYTECODE;
    attribute.nla_len = static_cast<unsigned short>(NLA_HDRLEN + filter_size);
    std::vector<unsigned char> message;
    auto put = [&message](const void* data, std::size_t size) {
        const auto* bytes = static_cast<const unsigned char*>(data);
        message.insert(message.end(), bytes, bytes + size);
    };
    header.nlmsg_len =
        static_cast<std::uint32_t>(sizeof header + sizeof request + NLA_HDRLEN + filter_size);
    put(&header, sizeof header);
    put(&request, sizeof request);
    put(&attribute, sizeof attribute);
    put(&op, sizeof op);
    put(&cond, sizeof cond);
    put(address, address_size);

    const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return std::nullopt;
    // The kernel answers at once; a bound all the same, the loop waits meanwhile.
    const timeval limit{0, 200'000};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    std::optional<int> count;
    if (::send(fd, message.data(), message.size(), 0) == static_cast<ssize_t>(message.size())) {
        int found = 0;
        alignas(nlmsghdr) char buffer[8192];
        for (bool done = false; !done;) {
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            const auto size = static_cast<std::size_t>(n);
            for (std::size_t offset = 0; offset + sizeof(nlmsghdr) <= size;) {
                const auto* h = reinterpret_cast<const nlmsghdr*>(buffer + offset);
                if (h->nlmsg_len < sizeof(nlmsghdr) || h->nlmsg_len > size - offset) {
                    done = true; // malformed: cannot tell
                    break;
                }
                if (h->nlmsg_type == NLMSG_DONE) {
                    count = found;
                    done = true;
                    break;
                }
                if (h->nlmsg_type == NLMSG_ERROR) {
                    done = true;
                    break;
                }
                ++found;
                offset += NLMSG_ALIGN(h->nlmsg_len);
            }
        }
    }
    ::close(fd);
    return count;
}

// The same for an IPv4 peer in both its forms: as itself (IPv4 sockets) and IPv4-mapped
// (dual-stack IPv6 sockets); an IPv6 peer as it is.
std::optional<int> sockets_connected_to(const sockaddr* peer) {
    sockaddr_in v4{};
    sockaddr_in6 v6{};
    v4.sin_family = AF_INET;
    v6.sin6_family = AF_INET6;
    if (peer->sa_family == AF_INET) {
        v4 = *reinterpret_cast<const sockaddr_in*>(peer);
    } else if (peer->sa_family == AF_INET6) {
        v6 = *reinterpret_cast<const sockaddr_in6*>(peer);
        if (!IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) return sockets_of_family_connected_to(peer);
        std::memcpy(&v4.sin_addr, &v6.sin6_addr.s6_addr[12], 4);
        v4.sin_port = v6.sin6_port;
    } else {
        return std::nullopt;
    }
    v6.sin6_family = AF_INET6;
    v6.sin6_port = v4.sin_port;
    v6.sin6_addr = {};
    v6.sin6_addr.s6_addr[10] = 0xff;
    v6.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    const auto as_v4 = sockets_of_family_connected_to(reinterpret_cast<const sockaddr*>(&v4));
    const auto as_v6 = sockets_of_family_connected_to(reinterpret_cast<const sockaddr*>(&v6));
    if (!as_v4 || !as_v6) return std::nullopt;
    return *as_v4 + *as_v6;
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

std::uint64_t sofia_peer_names_freed() {
    return names_freed;
}

std::size_t sofia_peer_names_pending() {
    return decoded.size() + listed.size();
}

void ask_tls_clients_for_certificates(bool ask) {
    ask_certificates = ask;
}

bool sofia_tls_hooked() {
    return verify_hooked;
}

TlsPeerProof tls_peer_proves(const sockaddr* source, const std::string& domain) {
    TlsPeerProof proof;
    const auto peer = address_text(source);
    if (!peer) return proof;
    const auto it = incoming_by_peer.find(*peer);
    if (it == incoming_by_peer.end()) return proof;
    if (it->second.size() != 1) {
        proof.presented = true;
        proof.why = "more than one connection from that address and port";
        return proof;
    }
    SSL* ssl = it->second.front();
    X509* cert = SSL_is_init_finished(ssl) == 1 ? SSL_get1_peer_certificate(ssl) : nullptr;
    if (cert == nullptr) return proof;
    proof.presented = true;
    const long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) {
        proof.why =
            std::string("its certificate is not trusted: ") + X509_verify_cert_error_string(result);
    } else if (!names_sip_domain(cert, domain)) {
        proof.why = "its certificate does not name " + domain;
    } else if (const auto sockets = sockets_connected_to(source); !sockets || *sockets != 1) {
        // The request may have come over another connection from the same endpoint.
        proof.why = sockets ? "another connection comes from the same address and port"
                            : "cannot tell whether another connection comes from there";
    } else {
        proof.proves = true;
    }
    X509_free(cert);
    return proof;
}

} // namespace xsgw::sip::detail

using xsgw::sip::detail::in_sofia;
using xsgw::sip::detail::openssl;

extern "C" __attribute__((visibility("default"), noinline)) int SSL_shutdown(SSL* ssl) {
    static const auto shutdown = openssl<xsgw::sip::detail::ShutdownFunction>("SSL_shutdown");
    const void* caller = __builtin_return_address(0);
    const int result = shutdown(ssl);
    if (ssl == nullptr || !in_sofia(caller, "tls_free")) return result;
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

extern "C" __attribute__((visibility("default"), noinline)) void
SSL_CTX_set_verify(SSL_CTX* context, int mode, SSL_verify_cb callback) {
    static const auto set_verify =
        openssl<xsgw::sip::detail::SetVerifyFunction>("SSL_CTX_set_verify");
    const void* caller = __builtin_return_address(0);
    if (mode == SSL_VERIFY_NONE && in_sofia(caller)) {
        xsgw::sip::detail::verify_hooked = true;
        if (xsgw::sip::detail::ask_certificates) {
            set_verify(context, SSL_VERIFY_PEER, &xsgw::sip::detail::accept_any);
            SSL_CTX_set_info_callback(context, &xsgw::sip::detail::note_handshake);
            SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION);
            SSL_CTX_set_purpose(context, X509_PURPOSE_ANY);
            return;
        }
    }
    set_verify(context, mode, callback);
}

extern "C" __attribute__((visibility("default"), noinline)) SSL* SSL_new(SSL_CTX* context) {
    static const auto make = openssl<xsgw::sip::detail::NewFunction>("SSL_new");
    const void* caller = __builtin_return_address(0);
    SSL* ssl = make(context);
    if (ssl == nullptr && context != nullptr && in_sofia(caller)) SSL_CTX_up_ref(context);
    return ssl;
}

extern "C" __attribute__((visibility("default"), noinline)) const X509V3_EXT_METHOD*
X509V3_EXT_get(X509_EXTENSION* extension) {
    static const auto get = openssl<xsgw::sip::detail::ExtGetFunction>("X509V3_EXT_get");
    const void* caller = __builtin_return_address(0);
    const X509V3_EXT_METHOD* method = get(extension);
    if (method == nullptr || method->i2v == nullptr || !in_sofia(caller)) return method;
    try {
        auto& copies = xsgw::sip::detail::method_copies;
        auto it = copies.find(method);
        if (it == copies.end()) {
            X509V3_EXT_METHOD copy = *method;
            copy.i2v = reinterpret_cast<X509V3_EXT_I2V>(&xsgw::sip::detail::noting_i2v);
            it = copies.emplace(method, copy).first;
            xsgw::sip::detail::originals.emplace(&it->second, method);
        }
        return &it->second;
    } catch (...) { // out of memory: Sofia's list stays allocated, as before
        return method;
    }
}

extern "C" __attribute__((visibility("default"), noinline)) void*
X509V3_EXT_d2i(X509_EXTENSION* extension) {
    static const auto d2i = openssl<xsgw::sip::detail::ExtD2iFunction>("X509V3_EXT_d2i");
    static const auto get = openssl<xsgw::sip::detail::ExtGetFunction>("X509V3_EXT_get");
    const void* caller = __builtin_return_address(0);
    void* value = d2i(extension);
    if (value == nullptr || !in_sofia(caller)) return value;
    if (const X509V3_EXT_METHOD* method = get(extension)) {
        try {
            xsgw::sip::detail::decoded.push_back({value, method});
        } catch (...) { // out of memory: that one stays allocated, as before
        }
    }
    return value;
}

extern "C" __attribute__((visibility("default"), noinline)) void X509_free(X509* cert) {
    static const auto free_cert = openssl<xsgw::sip::detail::X509FreeFunction>("X509_free");
    const void* caller = __builtin_return_address(0);
    if ((!xsgw::sip::detail::decoded.empty() || !xsgw::sip::detail::listed.empty()) &&
        in_sofia(caller))
        xsgw::sip::detail::free_decoded();
    free_cert(cert);
}
