#include "xsgw/core/config.hpp"

#include <cstdlib>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#ifndef XSGW_SOURCE_DIR
#define XSGW_SOURCE_DIR "."
#endif

using xsgw::core::Config;
using xsgw::core::ConfigError;
using xsgw::core::ConfigResult;
using xsgw::core::is_valid_log_level;
using xsgw::core::load_config;
using xsgw::core::parse_config;

// Every config below that holds a secret holds this one; no message may ever show it.
#define MARK "Zq7distinctiveSECRETxY9"

namespace {

constexpr std::string_view marker = MARK;

const std::string xmpp_ok = "[xmpp]\ncomponent = \"sip.test\"\nsecret = \"" MARK "\"\n";
const std::string sip_ok = "[sip]\ndomain = \"xmpp.test\"\n";
const std::string minimal = xmpp_ok + sip_ok;
// A minimal file with extra lines in [xmpp].
std::string xmpp_ok_admins(const std::string& lines) {
    return xmpp_ok + lines + sip_ok;
}
const std::string path = "/etc/xsgw/test.toml";

// A file in /tmp with the given bytes and mode, removed at the end of the test.
class TempFile {
public:
    TempFile(std::string_view contents, mode_t mode) {
        std::string name = "/tmp/xsgw_config_test_XXXXXX";
        const int fd = ::mkstemp(name.data());
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, contents.data(), contents.size()) ==
                static_cast<ssize_t>(contents.size()));
        ::close(fd);
        REQUIRE(::chmod(name.c_str(), mode) == 0);
        path_ = name;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    TempFile(TempFile&&) = delete;
    TempFile& operator=(TempFile&&) = delete;
    ~TempFile() { ::unlink(path_.c_str()); }

    const std::string& path() const { return path_; }
    std::string name() const { return path_.substr(path_.rfind('/') + 1); }

private:
    std::string path_;
};

std::string with_secret_file(const std::string& file) {
    return "[xmpp]\ncomponent = \"sip.test\"\nsecret_file = \"" + file + "\"\n" + sip_ok;
}

// Checks the result's invariant and that neither error nor warnings show the secret.
void check_shape(const ConfigResult& result, std::string_view secret) {
    CHECK(result.config.has_value() != result.error.has_value());
    CHECK(result.ok() == result.config.has_value());
    if (result.error) {
        const std::string line = result.error->to_string();
        CHECK(line.find(secret) == std::string::npos);
        CHECK(line.find('\n') == std::string::npos);
    }
    if (result.config) {
        for (const auto& warning : result.config->warnings) {
            CHECK(warning.find(secret) == std::string::npos);
            CHECK(warning.find('\n') == std::string::npos);
        }
    }
}

ConfigError expect_error(const ConfigResult& result) {
    check_shape(result, marker);
    REQUIRE(result.error.has_value());
    return *result.error;
}

Config expect_config(const ConfigResult& result) {
    check_shape(result, marker);
    if (result.error) {
        FAIL_CHECK("unexpected error: " << result.error->to_string());
    }
    REQUIRE(result.config.has_value());
    return *result.config;
}

struct BadCase {
    std::string name;
    std::string toml;
    std::string key;
    std::string what; // a substring of ConfigError::what
};

const std::vector<BadCase> bad_cases = {
    // whole file
    {"empty file", "", "xmpp.component", "required key missing"},
    {"syntax error", xmpp_ok + "port = \n" + sip_ok, "", "syntax error at line 4, column"},
    {"syntax error later", minimal + "listen = 'sip:x\n", "", "syntax error at line 6"},
    {"syntax: duplicate key", xmpp_ok + "port = 1\nport = 2\n" + sip_ok, "", "syntax error"},
    {"syntax in the secret's value", "[xmpp]\nsecret = \"" MARK "\n", "", "details withheld"},
    {"syntax: unquoted secret", "[xmpp]\nsecret = " MARK "\n", "", "details withheld"},
    {"syntax: secret in multi-line string", "[xmpp]\nsecret = \"\"\"\n" MARK "\\q\n\"\"\"\n", "",
     "details withheld"},
    // unknown names
    {"unknown table", minimal + "[xmp]\n", "xmp", "unknown table (did you mean xmpp?)"},
    {"unknown table far off", minimal + "[media]\n", "media", "unknown table"},
    {"unknown root key", "foo = 1\n" + minimal, "foo", "unknown key"},
    {"unknown xmpp key, value a secret", xmpp_ok + "secrte = \"" MARK "\"\n" + sip_ok,
     "xmpp.secrte", "unknown key (did you mean secret?)"},
    {"unknown sip key", minimal + "listne = \"sip:h\"\n", "sip.listne", "unknown key"},
    {"unknown dns key", minimal + "[dns]\nserver = []\n", "dns.server", "unknown key"},
    {"unknown log key", minimal + "[log]\nfile = \"x\"\n", "log.file", "unknown key"},
    {"sub-table", minimal + "[xmpp.tls]\n", "xmpp.tls", "unknown table"},
    {"empty key", xmpp_ok + "\"\" = 1\n" + sip_ok, "xmpp.\"\"", "unknown key"},
    {"key with a newline", xmpp_ok + "\"a\\nb\" = 1\n" + sip_ok, "xmpp.\"a\\x0ab\"", "unknown key"},
    // wrong types
    {"table is a string", "xmpp = \"x\"\n" + sip_ok, "xmpp", "expected table, got string"},
    {"table is an array of tables", minimal + "[[log]]\n", "log", "expected table, got array"},
    {"component integer", "[xmpp]\ncomponent = 5\nsecret = \"" MARK "\"\n" + sip_ok,
     "xmpp.component", "expected string, got integer"},
    {"host integer", xmpp_ok + "host = 127\n" + sip_ok, "xmpp.host",
     "expected string, got integer"},
    {"port string", xmpp_ok + "port = \"5347\"\n" + sip_ok, "xmpp.port",
     "expected integer, got string"},
    {"port float", xmpp_ok + "port = 5347.0\n" + sip_ok, "xmpp.port",
     "expected integer, got float"},
    {"secret integer", "[xmpp]\ncomponent = \"sip.test\"\nsecret = 12345\n" + sip_ok, "xmpp.secret",
     "expected string, got integer"},
    {"secret_file boolean", xmpp_ok + "secret_file = true\n" + sip_ok, "xmpp.secret_file",
     "expected string, got boolean"},
    {"keepalive float", xmpp_ok + "keepalive_interval = 1.5\n" + sip_ok, "xmpp.keepalive_interval",
     "expected integer, got float"},
    {"keepalive string", xmpp_ok + "keepalive_timeout = \"10s\"\n" + sip_ok,
     "xmpp.keepalive_timeout", "expected integer, got string"},
    {"reconnect date", xmpp_ok + "reconnect_min = 2024-01-01\n" + sip_ok, "xmpp.reconnect_min",
     "expected integer, got date"},
    {"version_show_os string", xmpp_ok + "version_show_os = \"yes\"\n" + sip_ok,
     "xmpp.version_show_os", "expected boolean, got string"},
    {"verify_from_domain integer", minimal + "verify_from_domain = 1\n", "sip.verify_from_domain",
     "expected boolean, got integer"},
    {"domain array", xmpp_ok + "[sip]\ndomain = [\"xmpp.test\"]\n", "sip.domain",
     "expected string, got array"},
    {"listen table", minimal + "listen = {host = \"h\"}\n", "sip.listen",
     "expected string, got table"},
    {"servers string", minimal + "[dns]\nservers = \"127.0.0.1:53\"\n", "dns.servers",
     "expected array, got string"},
    {"servers entry integer", minimal + "[dns]\nservers = [53]\n", "dns.servers[0]",
     "expected string, got integer"},
    {"level integer", minimal + "[log]\nlevel = 3\n", "log.level", "expected string, got integer"},
    // required keys
    {"no component", "[xmpp]\nsecret = \"" MARK "\"\n" + sip_ok, "xmpp.component",
     "required key missing"},
    {"no sip.domain", xmpp_ok, "sip.domain", "required key missing"},
    {"no secret", "[xmpp]\ncomponent = \"sip.test\"\n" + sip_ok, "xmpp.secret",
     "set xmpp.secret or xmpp.secret_file"},
    {"secret and secret_file", xmpp_ok + "secret_file = \"/etc/xsgw/secret\"\n" + sip_ok,
     "xmpp.secret_file", "conflicts with xmpp.secret"},
    {"empty secret", "[xmpp]\ncomponent = \"sip.test\"\nsecret = \"\"\n" + sip_ok, "xmpp.secret",
     "must not be empty"},
    {"empty secret_file", "[xmpp]\ncomponent = \"sip.test\"\nsecret_file = \"\"\n" + sip_ok,
     "xmpp.secret_file", "must not be empty"},
    {"missing secret_file", with_secret_file("/nonexistent/xsgw-secret"), "xmpp.secret_file",
     "cannot open"},
    {"secret_file a folder", with_secret_file("/tmp"), "xmpp.secret_file", "not a regular file"},
    // ranges
    {"port 0", xmpp_ok + "port = 0\n" + sip_ok, "xmpp.port", "out of range"},
    {"port 65536", xmpp_ok + "port = 65536\n" + sip_ok, "xmpp.port", "65536 is out of range"},
    {"port negative", xmpp_ok + "port = -1\n" + sip_ok, "xmpp.port", "out of range"},
    {"keepalive_interval 0", xmpp_ok + "keepalive_interval = 0\n" + sip_ok,
     "xmpp.keepalive_interval", "out of range"},
    {"keepalive_interval huge", xmpp_ok + "keepalive_interval = 86401\n" + sip_ok,
     "xmpp.keepalive_interval", "out of range"},
    {"keepalive_timeout negative", xmpp_ok + "keepalive_timeout = -10\n" + sip_ok,
     "xmpp.keepalive_timeout", "out of range"},
    {"reconnect_min 0", xmpp_ok + "reconnect_min = 0\n" + sip_ok, "xmpp.reconnect_min",
     "out of range"},
    {"reconnect_max negative", xmpp_ok + "reconnect_max = -1\n" + sip_ok, "xmpp.reconnect_max",
     "out of range"},
    {"reconnect_max int64 max", xmpp_ok + "reconnect_max = 9223372036854775807\n" + sip_ok,
     "xmpp.reconnect_max", "out of range"},
    {"reconnect_min above max", xmpp_ok + "reconnect_min = 5000\nreconnect_max = 1000\n" + sip_ok,
     "xmpp.reconnect_min", "larger than xmpp.reconnect_max"},
    {"reconnect_min above default max", xmpp_ok + "reconnect_min = 30001\n" + sip_ok,
     "xmpp.reconnect_min", "larger than xmpp.reconnect_max"},
    // names
    {"component empty", "[xmpp]\ncomponent = \"\"\nsecret = \"" MARK "\"\n" + sip_ok,
     "xmpp.component", "not a valid DNS name"},
    {"component double dot", "[xmpp]\ncomponent = \"sip..test\"\nsecret = \"" MARK "\"\n" + sip_ok,
     "xmpp.component", "not a valid DNS name: \"sip..test\""},
    {"component leading hyphen",
     "[xmpp]\ncomponent = \"-sip.test\"\nsecret = \"" MARK "\"\n" + sip_ok, "xmpp.component",
     "not a valid DNS name"},
    {"component trailing hyphen",
     "[xmpp]\ncomponent = \"sip-.test\"\nsecret = \"" MARK "\"\n" + sip_ok, "xmpp.component",
     "not a valid DNS name"},
    {"component underscore",
     "[xmpp]\ncomponent = \"sip_gw.test\"\nsecret = \"" MARK "\"\n" + sip_ok, "xmpp.component",
     "not a valid DNS name"},
    {"component trailing dot",
     "[xmpp]\ncomponent = \"sip.test.\"\nsecret = \"" MARK "\"\n" + sip_ok, "xmpp.component",
     "not a valid DNS name"},
    {"component with a user",
     "[xmpp]\ncomponent = \"a@sip.test\"\nsecret = \"" MARK "\"\n" + sip_ok, "xmpp.component",
     "not a valid DNS name"},
    {"component IPv4", "[xmpp]\ncomponent = \"127.0.0.1\"\nsecret = \"" MARK "\"\n" + sip_ok,
     "xmpp.component", "not a valid DNS name"},
    {"component label of 64",
     "[xmpp]\ncomponent = \"" + std::string(64, 'a') + ".test\"\nsecret = \"" MARK "\"\n" + sip_ok,
     "xmpp.component", "not a valid DNS name"},
    {"component of 254",
     "[xmpp]\ncomponent = \"" + std::string(63, 'a') + "." + std::string(63, 'b') + "." +
         std::string(63, 'c') + "." + std::string(62, 'd') + "\"\nsecret = \"" MARK "\"\n" + sip_ok,
     "xmpp.component", "not a valid DNS name"},
    {"domain space", xmpp_ok + "[sip]\ndomain = \"xmpp test\"\n", "sip.domain",
     "not a valid DNS name"},
    {"domain non-ASCII", xmpp_ok + "[sip]\ndomain = \"bücher.test\"\n", "sip.domain",
     "not a valid DNS name"},
    {"host bad", xmpp_ok + "host = \"not a host\"\n" + sip_ok, "xmpp.host",
     "not a host name or IP address"},
    {"host bracketed IPv6", xmpp_ok + "host = \"[::1]\"\n" + sip_ok, "xmpp.host",
     "not a host name or IP address"},
    // xmpp.admins
    {"admins not array", xmpp_ok_admins("admins = \"a@b.test\"\n"), "xmpp.admins",
     "expected array"},
    {"admins resource", xmpp_ok_admins("admins = [\"a@b.test/r\"]\n"), "xmpp.admins[0]",
     "not a bare JID"},
    {"admins no at", xmpp_ok_admins("admins = [\"a@b.test\", \"b.test\"]\n"), "xmpp.admins[1]",
     "not a bare JID"},
    // xmpp.allowed_domains (S7)
    {"allowed_domains not array", xmpp_ok_admins("allowed_domains = \"xmpp.test\"\n"),
     "xmpp.allowed_domains", "expected array, got string"},
    {"allowed_domains table", xmpp_ok_admins("allowed_domains = { a = \"xmpp.test\" }\n"),
     "xmpp.allowed_domains", "expected array, got table"},
    {"allowed_domains entry integer", xmpp_ok_admins("allowed_domains = [\"xmpp.test\", 5]\n"),
     "xmpp.allowed_domains[1]", "expected string, got integer"},
    {"allowed_domains empty entry", xmpp_ok_admins("allowed_domains = [\"\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains only a dot", xmpp_ok_admins("allowed_domains = [\".\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains a JID", xmpp_ok_admins("allowed_domains = [\"alice@xmpp.test\"]\n"),
     "xmpp.allowed_domains[0]", "\"alice@xmpp.test\" is not an XMPP domain name"},
    {"allowed_domains with resource", xmpp_ok_admins("allowed_domains = [\"xmpp.test/r\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains space", xmpp_ok_admins("allowed_domains = [\"a.test\", \"x y.test\"]\n"),
     "xmpp.allowed_domains[1]", "is not an XMPP domain name"},
    {"allowed_domains wildcard", xmpp_ok_admins("allowed_domains = [\"*.example.org\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains empty label", xmpp_ok_admins("allowed_domains = [\"a..test\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains two dots at the end", xmpp_ok_admins("allowed_domains = [\"a.test..\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains numeric", xmpp_ok_admins("allowed_domains = [\"10.0.0.1\"]\n"),
     "xmpp.allowed_domains[0]", "is not an XMPP domain name"},
    {"allowed_domains control character", xmpp_ok_admins("allowed_domains = [\"a.test\\n\"]\n"),
     "xmpp.allowed_domains[0]", "\"a.test\\x0a\" is not an XMPP domain name"},
    {"allowed_domains twice, any case",
     xmpp_ok_admins("allowed_domains = [\"xmpp.test\", \"XMPP.Test.\"]\n"),
     "xmpp.allowed_domains[1]", "listed twice"},
    {"allowed_domains misspelt", xmpp_ok_admins("allowed_domain = [\"xmpp.test\"]\n"),
     "xmpp.allowed_domain", "unknown key"},
    // metrics.listen
    {"metrics listen name", minimal + "[metrics]\nlisten = \"localhost:9477\"\n", "metrics.listen",
     "expected"},
    {"metrics listen no port", minimal + "[metrics]\nlisten = \"127.0.0.1\"\n", "metrics.listen",
     "expected"},
    {"metrics unknown key", minimal + "[metrics]\nport = 9477\n", "metrics.port", "unknown key"},
    // sip.message_type, sip.max_message_bytes
    {"message_type other", minimal + "message_type = \"groupchat\"\n", "sip.message_type",
     "neither"},
    {"message_type int", minimal + "message_type = 1\n", "sip.message_type", "expected string"},
    {"max_message_bytes zero", minimal + "max_message_bytes = 0\n", "sip.max_message_bytes",
     "out of range"},
    {"max_message_bytes huge", minimal + "max_message_bytes = 1048577\n", "sip.max_message_bytes",
     "out of range"},
    // S5 sip.max_requests_per_source, sip.burst_per_source
    {"S5 max_requests_per_source negative", minimal + "max_requests_per_source = -1\n",
     "sip.max_requests_per_source", "out of range"},
    {"S5 max_requests_per_source huge", minimal + "max_requests_per_source = 1000001\n",
     "sip.max_requests_per_source", "out of range"},
    {"S5 max_requests_per_source string", minimal + "max_requests_per_source = \"200\"\n",
     "sip.max_requests_per_source", "expected integer"},
    {"S5 max_requests_per_source float", minimal + "max_requests_per_source = 2.5\n",
     "sip.max_requests_per_source", "expected integer"},
    {"S5 burst_per_source zero", minimal + "burst_per_source = 0\n", "sip.burst_per_source",
     "out of range"},
    {"S5 burst_per_source negative", minimal + "burst_per_source = -5\n", "sip.burst_per_source",
     "out of range"},
    {"S5 burst_per_source huge", minimal + "burst_per_source = 1000001\n", "sip.burst_per_source",
     "out of range"},
    {"S5 burst_per_source string", minimal + "burst_per_source = \"10\"\n", "sip.burst_per_source",
     "expected integer"},
    {"S5 rate misspelt", minimal + "max_requests_per_second = 10\n", "sip.max_requests_per_second",
     "unknown key"},
    // S5 xmpp.max_stanzas_per_sender, xmpp.burst_per_sender
    {"S5 max_stanzas_per_sender negative", xmpp_ok + "max_stanzas_per_sender = -1\n" + sip_ok,
     "xmpp.max_stanzas_per_sender", "expected 0..1000000 stanzas per second"},
    {"S5 max_stanzas_per_sender string", xmpp_ok + "max_stanzas_per_sender = \"9\"\n" + sip_ok,
     "xmpp.max_stanzas_per_sender", "expected integer"},
    {"S5 burst_per_sender zero", xmpp_ok + "burst_per_sender = 0\n" + sip_ok,
     "xmpp.burst_per_sender", "expected 1..1000000 stanzas"},
    // sip.listen
    {"listen no scheme", minimal + "listen = \"127.0.0.1:5080\"\n", "sip.listen", "bad URL"},
    {"listen no colon", minimal + "listen = \"localhost\"\n", "sip.listen", "bad URL"},
    {"listen http", minimal + "listen = \"http://127.0.0.1\"\n", "sip.listen", "bad URL"},
    {"listen tel", minimal + "listen = \"tel:+123\"\n", "sip.listen", "not sip: or sips:"},
    {"listen no host", minimal + "listen = \"sip:\"\n", "sip.listen", "bad URL"},
    {"listen no host but port", minimal + "listen = \"sip::5080\"\n", "sip.listen", "bad URL"},
    {"listen user part", minimal + "listen = \"sip:gw@127.0.0.1\"\n", "sip.listen", "bad host"},
    {"listen port 0", minimal + "listen = \"sip:127.0.0.1:0\"\n", "sip.listen", "bad URL"},
    {"listen port 65536", minimal + "listen = \"sip:127.0.0.1:65536\"\n", "sip.listen",
     "not in 1..65535"},
    {"listen port not a number", minimal + "listen = \"sip:127.0.0.1:50a0\"\n", "sip.listen",
     "bad URL"},
    {"listen port empty", minimal + "listen = \"sip:127.0.0.1:\"\n", "sip.listen", "bad URL"},
    {"listen unclosed IPv6", minimal + "listen = \"sip:[::1:5080\"\n", "sip.listen", "bad URL"},
    {"listen bad IPv6", minimal + "listen = \"sip:[::g]:5080\"\n", "sip.listen", "bad host"},
    {"listen IPv6 unbracketed", minimal + "listen = \"sip:::1\"\n", "sip.listen", "bad URL"},
    {"listen junk after IPv6", minimal + "listen = \"sip:[::1]x\"\n", "sip.listen", "bad URL"},
    {"listen transport sctp", minimal + "listen = \"sip:127.0.0.1;transport=sctp\"\n", "sip.listen",
     "transport \"sctp\" is not udp, tcp or tls"},
    {"S4 listen name tls", minimal + "listen = \"sip:gw.example.com;transport=tls\"\n",
     "sip.listen", "set sip.tls_listen"},
    {"S4 listen sips tcp", minimal + "listen = \"sips:gw.example.com:5061;transport=tcp\"\n",
     "sip.listen", "is TLS"},
    {"S4 listen TLS upper case", minimal + "listen = \"sip:gw.example.com;Transport=TLS\"\n",
     "sip.listen", "is TLS"},
    {"S4 tls_listen without files", minimal + "tls_listen = \"sips:127.0.0.1:5061\"\n",
     "sip.tls_certificate", "required key missing"},
    {"S4 tls_listen sip:", minimal + "tls_listen = \"sip:127.0.0.1:5061\"\n", "sip.tls_listen",
     "not sips:HOST[:PORT]"},
    {"S4 tls_listen with a parameter",
     minimal + "tls_listen = \"sips:127.0.0.1:5061;transport=tcp\"\n", "sip.tls_listen",
     "not sips:HOST[:PORT]"},
    {"S4 tls_listen bad host", minimal + "tls_listen = \"sips:exa mple:5061\"\n", "sip.tls_listen",
     "bad URL"},
    {"S4 tls_key without tls_listen", minimal + "tls_key = \"/etc/xsgw/key.pem\"\n", "sip.tls_key",
     "set without sip.tls_listen"},
    {"S4 tls_ca_file without tls_listen", minimal + "tls_ca_file = \"/etc/ssl/ca.pem\"\n",
     "sip.tls_ca_file", "set without sip.tls_listen"},
    {"listen transport empty", minimal + "listen = \"sip:127.0.0.1;transport=\"\n", "sip.listen",
     "bad URL"},
    {"listen transport twice", minimal + "listen = \"sip:127.0.0.1;transport=tcp;transport=udp\"\n",
     "sip.listen", "transport given twice"},
    {"listen other parameter", minimal + "listen = \"sip:127.0.0.1;lr\"\n", "sip.listen",
     "unsupported parameter"},
    {"listen empty parameter", minimal + "listen = \"sip:127.0.0.1;\"\n", "sip.listen",
     "unsupported parameter"},
    {"listen sips over udp", minimal + "listen = \"sips:127.0.0.1;transport=udp\"\n", "sip.listen",
     "sips: cannot use transport=udp"},
    {"listen headers", minimal + "listen = \"sip:127.0.0.1?x=y\"\n", "sip.listen", "bad URL"},
    // dns.servers
    {"server without port", minimal + "[dns]\nservers = [\"127.0.0.53\"]\n", "dns.servers[0]",
     "not host:port"},
    {"server by name", minimal + "[dns]\nservers = [\"dns.test:53\"]\n", "dns.servers[0]",
     "not an IPv4 address"},
    {"server IPv6 unbracketed", minimal + "[dns]\nservers = [\"::1:53\"]\n", "dns.servers[0]",
     "not an IPv4 address"},
    {"server IPv6 without port", minimal + "[dns]\nservers = [\"[::1]\"]\n", "dns.servers[0]",
     "not host:port"},
    {"server port 0", minimal + "[dns]\nservers = [\"127.0.0.53:0\"]\n", "dns.servers[0]",
     "port is not in 1..65535"},
    {"server port too large", minimal + "[dns]\nservers = [\"[::1]:99999\"]\n", "dns.servers[0]",
     "port is not in 1..65535"},
    {"second server bad", minimal + "[dns]\nservers = [\"127.0.0.53:53\", \"1.2.3:53\"]\n",
     "dns.servers[1]", "\"1.2.3:53\""},
    // log.level
    {"level unknown", minimal + "[log]\nlevel = \"verbose\"\n", "log.level",
     "\"verbose\" is not one of"},
    {"level upper case", minimal + "[log]\nlevel = \"INFO\"\n", "log.level", "is not one of"},
    {"level spdlog alias", minimal + "[log]\nlevel = \"warning\"\n", "log.level", "is not one of"},
    // [presence]
    {"presence: subscribe_expires 0", minimal + "[presence]\nsubscribe_expires = 0\n",
     "presence.subscribe_expires", "0 is out of range: expected 1..86400 seconds"},
    {"presence: subscribe_expires too long", minimal + "[presence]\nsubscribe_expires = 86401\n",
     "presence.subscribe_expires", "out of range"},
    {"presence: min_expires string", minimal + "[presence]\nmin_expires = \"60\"\n",
     "presence.min_expires", "expected integer, got string"},
    {"presence: max below min", minimal + "[presence]\nmin_expires = 600\nmax_expires = 60\n",
     "presence.max_expires", "60 is below presence.min_expires (600)"},
    {"presence: publish_expires negative", minimal + "[presence]\npublish_expires = -1\n",
     "presence.publish_expires", "out of range"},
    {"presence: max_per_user 0", minimal + "[presence]\nmax_per_user = 0\n",
     "presence.max_per_user", "expected 1..10000000 subscriptions"},
    {"presence: max_total huge", minimal + "[presence]\nmax_total = 10000001\n",
     "presence.max_total", "out of range"},
    {"presence: publish_to not a URL", minimal + "[presence]\npublish_to = \"presence.example\"\n",
     "presence.publish_to", "bad URL"},
    {"presence: publish_to http", minimal + "[presence]\npublish_to = \"http://x.example\"\n",
     "presence.publish_to", "scheme"},
    {"presence: publish_to wildcard", minimal + "[presence]\npublish_to = \"sip:*\"\n",
     "presence.publish_to", "wildcard"},
    {"presence: state_file relative", minimal + "[presence]\nstate_file = \"presence.state\"\n",
     "presence.state_file", "not an absolute path"},
    {"presence: unknown key", minimal + "[presence]\nexpires = 60\n", "presence.expires",
     "unknown key"},
    // [calls]
    {"calls: enabled string", minimal + "[calls]\nenabled = \"yes\"\n", "calls.enabled",
     "expected boolean, got string"},
    {"calls: max_calls 0", minimal + "[calls]\nmax_calls = 0\n", "calls.max_calls",
     "expected 1..1000000 calls"},
    {"calls: max_calls huge", minimal + "[calls]\nmax_calls = 1000001\n", "calls.max_calls",
     "out of range"},
    {"calls: answer_timeout 4", minimal + "[calls]\nanswer_timeout = 4\n", "calls.answer_timeout",
     "expected 5..600 seconds"},
    {"calls: answer_timeout 601", minimal + "[calls]\nanswer_timeout = 601\n",
     "calls.answer_timeout", "out of range"},
    {"calls: unknown key", minimal + "[calls]\nvideo = true\n", "calls.video", "unknown key"},
};

const std::string full = R"([xmpp]
component = "sip-gw.example.com"
host = "::1"
port = 5348
secret = ")" MARK R"("
keepalive_interval = 60
keepalive_timeout = 5
reconnect_min = 100
reconnect_max = 100
version_show_os = false

[sip]
domain = "xmpp-gw.example.com"
listen = "sip:gw.example.com:5060;transport=tcp"
verify_from_domain = true
max_requests_per_source = 20
burst_per_source = 30

[dns]
servers = ["127.0.0.53:53", "[::1]:5353"]

[log]
level = "debug"

[presence]
subscribe_expires = 600
min_expires = 30
max_expires = 7200
max_per_user = 50
max_total = 5000
publish_to = "sip:presence.example.org:5070;transport=tcp"
publish_expires = 900
state_file = "/var/lib/xsgw/presence.state"

[calls]
enabled = false
max_calls = 7
answer_timeout = 5
)";

std::string read_text(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

} // namespace

TEST_CASE("config: every bad config gives one error naming its key, never the secret") {
    for (const auto& bad : bad_cases) {
        INFO("case: " << bad.name);
        INFO("toml:\n" << bad.toml);
        const ConfigError error = expect_error(parse_config(bad.toml, path));
        CHECK(error.file == path);
        CHECK(error.key == bad.key);
        CHECK_MESSAGE(error.what.find(bad.what) != std::string::npos, error.what);
        const std::string line = error.to_string();
        CHECK(line == (bad.key.empty() ? path + ": " + error.what
                                       : path + ": " + bad.key + ": " + error.what));
    }
}

TEST_CASE("config: a syntax error in a secret's value does not quote the value") {
    const std::string number = "123456789012345678901234567890";
    const ConfigError error =
        expect_error(parse_config("[xmpp]\ncomponent = \"a.b\"\nsecret = " + number + "\n", path));
    CHECK(error.key.empty());
    CHECK(error.what.find("line 3") != std::string::npos);
    CHECK(error.to_string().find(number) == std::string::npos);
    CHECK(error.to_string().find("12345") == std::string::npos);

    // Elsewhere toml++'s own words are kept: they say where and what.
    const ConfigError other = expect_error(parse_config(xmpp_ok + "port = " + number + "\n", path));
    CHECK(other.what.find("line 4") != std::string::npos);
    CHECK(other.what.find("64 bits") != std::string::npos);
}

TEST_CASE("config: minimal config takes every default") {
    const Config config = expect_config(parse_config(minimal, path));
    CHECK(config.path == path);
    CHECK(config.xmpp.component == "sip.test");
    CHECK(config.xmpp.host == "127.0.0.1");
    CHECK(config.xmpp.port == 5347);
    CHECK(config.xmpp.secret == marker);
    CHECK(config.xmpp.secret_source == "secret");
    CHECK(config.xmpp.keepalive_interval == std::chrono::seconds{30});
    CHECK(config.xmpp.keepalive_timeout == std::chrono::seconds{10});
    CHECK(config.xmpp.reconnect_min == std::chrono::milliseconds{500});
    CHECK(config.xmpp.reconnect_max == std::chrono::milliseconds{30000});
    CHECK(config.xmpp.version_show_os);
    CHECK(config.sip.domain == "xmpp.test");
    CHECK(config.sip.listen == "sip:127.0.0.1:5080");
    CHECK(config.sip.max_requests_per_source == 200);
    CHECK(config.sip.burst_per_source == 400);
    CHECK_FALSE(config.sip.verify_from_domain);
    CHECK(config.dns.servers.empty());
    CHECK(config.log.level == "info");
    CHECK(config.presence.subscribe_expires == std::chrono::seconds{3600});
    CHECK(config.presence.min_expires == std::chrono::seconds{60});
    CHECK(config.presence.max_expires == std::chrono::seconds{3600});
    CHECK(config.presence.max_per_user == 1000);
    CHECK(config.presence.max_total == 200000);
    CHECK(config.presence.publish_to.empty());
    CHECK(config.presence.publish_expires == std::chrono::seconds{3600});
    CHECK(config.calls.enabled);
    CHECK(config.calls.max_calls == 1000);
    CHECK(config.calls.answer_timeout == std::chrono::seconds{60});
    CHECK(config.warnings.empty());
}

TEST_CASE("config: every key set to a non-default value") {
    const Config config = expect_config(parse_config(full, path));
    CHECK(config.xmpp.component == "sip-gw.example.com");
    CHECK(config.xmpp.host == "::1");
    CHECK(config.xmpp.port == 5348);
    CHECK(config.xmpp.secret == marker);
    CHECK(config.xmpp.keepalive_interval == std::chrono::seconds{60});
    CHECK(config.xmpp.keepalive_timeout == std::chrono::seconds{5});
    CHECK(config.xmpp.reconnect_min == std::chrono::milliseconds{100});
    CHECK(config.xmpp.reconnect_max == std::chrono::milliseconds{100});
    CHECK_FALSE(config.xmpp.version_show_os);
    CHECK(config.sip.domain == "xmpp-gw.example.com");
    CHECK(config.sip.listen == "sip:gw.example.com:5060;transport=tcp");
    CHECK(config.sip.tls_listen.empty());
    CHECK(config.sip.verify_from_domain);
    CHECK(config.sip.max_requests_per_source == 20);
    CHECK(config.sip.burst_per_source == 30);
    CHECK(config.dns.servers == std::vector<std::string>{"127.0.0.53:53", "[::1]:5353"});
    CHECK(config.log.level == "debug");
    CHECK(config.presence.subscribe_expires == std::chrono::seconds{600});
    CHECK(config.presence.min_expires == std::chrono::seconds{30});
    CHECK(config.presence.max_expires == std::chrono::seconds{7200});
    CHECK(config.presence.max_per_user == 50);
    CHECK(config.presence.max_total == 5000);
    CHECK(config.presence.publish_to == "sip:presence.example.org:5070;transport=tcp");
    CHECK(config.presence.publish_expires == std::chrono::seconds{900});
    CHECK(config.presence.state_file == "/var/lib/xsgw/presence.state");
    CHECK_FALSE(config.calls.enabled);
    CHECK(config.calls.max_calls == 7);
    CHECK(config.calls.answer_timeout == std::chrono::seconds{5});
    CHECK(config.warnings.empty());
}

TEST_CASE("config: accepted values at the edges") {
    struct GoodCase {
        std::string name;
        std::string toml;
    };
    const std::vector<GoodCase> good_cases = {
        {"port 1", xmpp_ok + "port = 1\n" + sip_ok},
        {"port 65535", xmpp_ok + "port = 65535\n" + sip_ok},
        {"host name", xmpp_ok + "host = \"xmpp.example.org\"\n" + sip_ok},
        {"host single label", xmpp_ok + "host = \"localhost\"\n" + sip_ok},
        {"host IPv4", xmpp_ok + "host = \"10.0.0.1\"\n" + sip_ok},
        {"host IPv6", xmpp_ok + "host = \"2001:db8::1\"\n" + sip_ok},
        {"component single label", "[xmpp]\ncomponent = \"gw\"\nsecret = \"" MARK "\"\n" + sip_ok},
        {"component digits and hyphens",
         "[xmpp]\ncomponent = \"sip-1.example-2.org\"\nsecret = \"" MARK "\"\n" + sip_ok},
        {"component label of 63", "[xmpp]\ncomponent = \"" + std::string(63, 'a') +
                                      ".test\"\nsecret = \"" MARK "\"\n" + sip_ok},
        {"keepalive of a day", xmpp_ok + "keepalive_interval = 86400\n" + sip_ok},
        {"reconnect 1 ms", xmpp_ok + "reconnect_min = 1\nreconnect_max = 1\n" + sip_ok},
        {"listen without port", minimal + "listen = \"sip:127.0.0.1\"\n"},
        {"listen any address", minimal + "listen = \"sip:*:5060\"\n"},
        {"listen 0.0.0.0 udp", minimal + "listen = \"sip:0.0.0.0:5060;transport=udp\"\n"},
        {"listen IPv6 tcp", minimal + "listen = \"sip:[::1]:5080;transport=tcp\"\n"},
        {"listen IPv6 without port", minimal + "listen = \"sip:[::]\"\n"},
        {"listen upper case", minimal + "listen = \"SIP:gw.example.com;Transport=UDP\"\n"},
        {"dns servers empty", minimal + "[dns]\nservers = []\n"},
        {"dns table empty", minimal + "[dns]\n"},
        {"all tables, no optional keys", minimal + "[dns]\n[log]\n"},
        {"dotted keys",
         "xmpp.component = \"sip.test\"\nxmpp.secret = \"" MARK "\"\nsip.domain = \"xmpp.test\"\n"},
        {"inline tables",
         "xmpp = {component = \"sip.test\", secret = \"" MARK "\"}\nsip = {domain = \"x.test\"}\n"},
        {"comments and CRLF", "# c\r\n[xmpp] # c\r\ncomponent = \"sip.test\"\r\nsecret = \"" MARK
                              "\"\r\n[sip]\r\ndomain = \"xmpp.test\"\r\n"},
    };
    for (const auto& good : good_cases) {
        INFO("case: " << good.name);
        expect_config(parse_config(good.toml, path));
    }
    for (const std::string level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        INFO("level: " << level);
        std::string toml = minimal;
        toml += "[log]\nlevel = \"" + level + "\"\n";
        CHECK(expect_config(parse_config(toml, path)).log.level == level);
    }
}

TEST_CASE("config: S5 the per-sender limit toward SIP: defaults, 0 = off, burst twice the rate") {
    const struct {
        std::string name;
        std::string extra;
        std::uint32_t rate;
        std::uint32_t burst;
    } cases[] = {
        {"defaults", "", 20, 40},
        {"rate only: burst twice it", "max_stanzas_per_sender = 5\n", 5, 10},
        {"rate and burst", "max_stanzas_per_sender = 5\nburst_per_sender = 3\n", 5, 3},
        {"off", "max_stanzas_per_sender = 0\n", 0, 1},
    };
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        const Config config = expect_config(parse_config(xmpp_ok + c.extra + sip_ok, path));
        CHECK(config.xmpp.max_stanzas_per_sender == c.rate);
        CHECK(config.xmpp.burst_per_sender == c.burst);
    }
}

TEST_CASE("config: S5 the per-source limit: defaults, 0 = off, burst twice the rate unless set") {
    const struct {
        std::string name;
        std::string extra;
        std::uint32_t rate;
        std::uint32_t burst;
    } cases[] = {
        {"defaults", "", 200, 400},
        {"rate only: burst twice it", "max_requests_per_source = 50\n", 50, 100},
        {"rate and burst", "max_requests_per_source = 50\nburst_per_source = 7\n", 50, 7},
        {"burst only", "burst_per_source = 1000\n", 200, 1000},
        {"burst smaller than the rate", "max_requests_per_source = 10\nburst_per_source = 1\n", 10,
         1},
        {"off", "max_requests_per_source = 0\n", 0, 1},
        {"off, burst kept", "max_requests_per_source = 0\nburst_per_source = 9\n", 0, 9},
        {"largest", "max_requests_per_source = 1000000\n", 1000000, 1000000},
        {"largest burst", "burst_per_source = 1000000\n", 200, 1000000},
    };
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        const Config config = expect_config(parse_config(minimal + c.extra, path));
        CHECK(config.sip.max_requests_per_source == c.rate);
        CHECK(config.sip.burst_per_source == c.burst);
    }
}

TEST_CASE("config: S7 xmpp.allowed_domains is kept lowercase, without a final dot") {
    const struct {
        std::string name;
        std::string lines;
        std::vector<std::string> domains;
    } rows[] = {
        {"absent", "", {}},
        {"empty", "allowed_domains = []\n", {}},
        {"one", "allowed_domains = [\"xmpp.test\"]\n", {"xmpp.test"}},
        {"several, order kept",
         "allowed_domains = [\"b.test\", \"a.test\"]\n",
         {"b.test", "a.test"}},
        {"upper case", "allowed_domains = [\"Jabber.EXAMPLE\"]\n", {"jabber.example"}},
        {"final dot", "allowed_domains = [\"jabber.example.\"]\n", {"jabber.example"}},
        {"single label", "allowed_domains = [\"localhost\"]\n", {"localhost"}},
        {"digits and hyphens", "allowed_domains = [\"x-1.2go.test\"]\n", {"x-1.2go.test"}},
    };
    for (const auto& row : rows) {
        INFO("case: " << row.name);
        const Config config = expect_config(parse_config(xmpp_ok_admins(row.lines), path));
        CHECK(config.xmpp.allowed_domains == row.domains);
        CHECK(config.warnings.empty());
    }
}

TEST_CASE("config: is_valid_log_level knows exactly the seven levels") {
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        CHECK(is_valid_log_level(level));
    }
    for (const char* level : {"", "INFO", "warning", "err", "fatal", "info ", "none"}) {
        CHECK_FALSE(is_valid_log_level(level));
    }
}

TEST_CASE("config: ConfigError::to_string is FILE: KEY: WHAT on one line") {
    CHECK(ConfigError{"a.toml", "xmpp.port", "bad"}.to_string() == "a.toml: xmpp.port: bad");
    CHECK(ConfigError{"a.toml", "", "cannot open"}.to_string() == "a.toml: cannot open");
}

TEST_CASE("config: secret_file supplies the secret") {
    struct FileCase {
        std::string name;
        std::string contents;
        std::string secret;
    };
    const std::vector<FileCase> cases = {
        {"trailing newline", MARK "\n", MARK},
        {"no trailing newline", MARK, MARK},
        {"CRLF", MARK "\r\n", MARK},
        {"only one newline stripped", MARK "\n\n", MARK "\n"},
        {"inner spaces kept", " a b \n", " a b "},
    };
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        const TempFile secret(c.contents, 0600);
        const Config config = expect_config(parse_config(with_secret_file(secret.path()), path));
        CHECK(config.xmpp.secret == c.secret);
        CHECK(config.xmpp.secret_source == secret.path());
        CHECK(config.warnings.empty());
    }
}

TEST_CASE("config: a relative secret_file is found next to the config file") {
    const TempFile secret(MARK "\n", 0400);
    const Config config =
        expect_config(parse_config(with_secret_file(secret.name()), "/tmp/xsgw.toml"));
    CHECK(config.xmpp.secret == marker);
    CHECK(config.xmpp.secret_source == secret.path());

    const ConfigError error =
        expect_error(parse_config(with_secret_file(secret.name()), "/nonexistent/xsgw.toml"));
    CHECK(error.key == "xmpp.secret_file");
    CHECK(error.what.find("/nonexistent/" + secret.name()) != std::string::npos);
}

TEST_CASE("config: an empty secret_file is refused") {
    for (const char* contents : {"", "\n", "\r\n"}) {
        const TempFile secret(contents, 0600);
        const ConfigError error = expect_error(parse_config(with_secret_file(secret.path()), path));
        CHECK(error.key == "xmpp.secret_file");
        CHECK(error.what.find("file is empty") != std::string::npos);
        CHECK(error.what.find(secret.path()) != std::string::npos);
    }
}

TEST_CASE("config: S1 a world-readable secret_file is refused, a group-readable one noted") {
    {
        const TempFile secret(MARK "\n", 0644);
        const ConfigError error = expect_error(parse_config(with_secret_file(secret.path()), path));
        CHECK(error.key == "xmpp.secret_file");
        CHECK(error.what.find("world-readable file holds a secret (chmod o-r)") !=
              std::string::npos);
        CHECK(error.what.find(secret.path()) != std::string::npos);
    }
    {
        const TempFile secret(MARK "\n", 0604);
        CHECK(expect_error(parse_config(with_secret_file(secret.path()), path)).key ==
              "xmpp.secret_file");
    }
    {
        const TempFile secret(MARK "\n", 0640);
        const Config config = expect_config(parse_config(with_secret_file(secret.path()), path));
        CHECK(config.xmpp.secret == marker);
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0].find(path + ": xmpp.secret_file: ") == 0);
        CHECK(config.warnings[0].find("group-readable (mode 0640)") != std::string::npos);
    }
}

TEST_CASE("config: an unreadable secret_file is refused") {
    const TempFile secret(MARK "\n", 0000);
    const ConfigResult result = parse_config(with_secret_file(secret.path()), path);
    if (::geteuid() == 0) {
        // root reads any file: nothing to refuse, but the mode is still checked.
        CHECK(expect_config(result).xmpp.secret == marker);
    } else {
        const ConfigError error = expect_error(result);
        CHECK(error.key == "xmpp.secret_file");
        CHECK(error.what.find("cannot open") != std::string::npos);
    }
}

TEST_CASE("config: load_config reads the file and checks its mode") {
    SUBCASE("missing file") {
        const ConfigError error = expect_error(load_config("/nonexistent/xsgw.toml"));
        CHECK(error.file == "/nonexistent/xsgw.toml");
        CHECK(error.key.empty());
        CHECK(error.to_string() ==
              "/nonexistent/xsgw.toml: cannot open: No such file or directory");
    }
    SUBCASE("a folder") {
        const ConfigError error = expect_error(load_config("/tmp"));
        CHECK(error.key.empty());
        CHECK(error.what == "not a regular file");
    }
    SUBCASE("unreadable") {
        const TempFile file(minimal, 0000);
        const ConfigResult result = load_config(file.path());
        if (::geteuid() == 0) {
            MESSAGE("running as root, which reads any file: nothing to refuse");
        } else {
            CHECK(expect_error(result).what.find("cannot open: Permission denied") == 0);
        }
    }
    SUBCASE("0600 with a secret") {
        const TempFile file(minimal, 0600);
        const Config config = expect_config(load_config(file.path()));
        CHECK(config.path == file.path());
        CHECK(config.xmpp.secret == marker);
        CHECK(config.warnings.empty());
    }
    SUBCASE("S1 world-readable with a secret") {
        for (const mode_t mode : {0644, 0604, 0666}) {
            const TempFile file(minimal, mode);
            const ConfigError error = expect_error(load_config(file.path()));
            CHECK(error.file == file.path());
            CHECK(error.key == "xmpp.secret");
            CHECK(error.what == "world-readable file holds a secret (chmod o-r)");
        }
    }
    SUBCASE("S1 group-readable with a secret: a warning") {
        const TempFile file(minimal, 0640);
        const Config config = expect_config(load_config(file.path()));
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0].find(file.path() + ": xmpp.secret: ") == 0);
        CHECK(config.warnings[0].find("group-readable") != std::string::npos);
    }
    SUBCASE("world-readable without a secret of its own") {
        const TempFile secret(MARK, 0600);
        const TempFile file(with_secret_file(secret.path()), 0644);
        const Config config = expect_config(load_config(file.path()));
        CHECK(config.xmpp.secret == marker);
        CHECK(config.warnings.empty());
    }
    SUBCASE("errors inside the file name the file") {
        const TempFile file(minimal + "[log]\nlevel = \"loud\"\n", 0600);
        const ConfigError error = expect_error(load_config(file.path()));
        CHECK(error.to_string().find(file.path() + ": log.level: \"loud\" is not one of") == 0);
    }
    SUBCASE("syntax error") {
        const TempFile file("[xmpp\n", 0600);
        const ConfigError error = expect_error(load_config(file.path()));
        CHECK(error.what.find("syntax error at line 1") == 0);
    }
}

TEST_CASE("config: etc/xsgw.toml is the local demo and documents every default") {
    const std::string file = std::string(XSGW_SOURCE_DIR) + "/etc/xsgw.toml";
    const std::string text = read_text(file);
    REQUIRE_MESSAGE(!text.empty(), "cannot read " << file);
    const ConfigResult result = parse_config(text, file);
    if (result.error) {
        FAIL("etc/xsgw.toml refused: " << result.error->to_string());
    }
    const Config& config = *result.config;
    const xsgw::core::XmppConfig xmpp_defaults;
    const xsgw::core::SipConfig sip_defaults;
    const xsgw::core::LogConfig log_defaults;

    // The demo's values.
    CHECK(config.xmpp.component == "sip.test");
    CHECK(config.xmpp.host == "127.0.0.11");
    CHECK(config.xmpp.secret == "sipsecret");
    CHECK(config.xmpp.secret_source == "secret");
    CHECK(config.sip.domain == "xmpp.test");
    // The documented defaults, which must also be the code's.
    CHECK(config.xmpp.port == 5347);
    CHECK(config.xmpp.port == xmpp_defaults.port);
    CHECK(config.xmpp.keepalive_interval == std::chrono::seconds{30});
    CHECK(config.xmpp.keepalive_interval == xmpp_defaults.keepalive_interval);
    CHECK(config.xmpp.keepalive_timeout == std::chrono::seconds{10});
    CHECK(config.xmpp.keepalive_timeout == xmpp_defaults.keepalive_timeout);
    CHECK(config.xmpp.reconnect_min == std::chrono::milliseconds{500});
    CHECK(config.xmpp.reconnect_min == xmpp_defaults.reconnect_min);
    CHECK(config.xmpp.reconnect_max == std::chrono::milliseconds{30000});
    CHECK(config.xmpp.reconnect_max == xmpp_defaults.reconnect_max);
    CHECK(config.xmpp.version_show_os == true);
    CHECK(config.xmpp.version_show_os == xmpp_defaults.version_show_os);
    CHECK(config.sip.listen == "sip:127.0.0.1:5080");
    CHECK(config.sip.listen == sip_defaults.listen);
    CHECK(config.xmpp.max_stanzas_per_sender == 20);
    CHECK(config.xmpp.max_stanzas_per_sender == xmpp_defaults.max_stanzas_per_sender);
    CHECK(config.xmpp.burst_per_sender == 40);
    CHECK(config.xmpp.burst_per_sender == xmpp_defaults.burst_per_sender);
    CHECK(config.sip.tls_listen.empty()); // commented out: no TLS
    CHECK(config.sip.tls_ca_file == sip_defaults.tls_ca_file);
    CHECK_FALSE(config.sip.verify_from_domain);
    CHECK(config.sip.verify_from_domain == sip_defaults.verify_from_domain);
    CHECK(config.sip.max_requests_per_source == 200);
    CHECK(config.sip.max_requests_per_source == sip_defaults.max_requests_per_source);
    CHECK(config.sip.burst_per_source == 400);
    CHECK(config.sip.burst_per_source == sip_defaults.burst_per_source);
    CHECK(config.dns.servers.empty());
    CHECK(config.log.level == "info");
    CHECK(config.log.level == log_defaults.level);
    const xsgw::core::PresenceConfig presence_defaults;
    CHECK(config.presence.subscribe_expires == presence_defaults.subscribe_expires);
    CHECK(config.presence.min_expires == presence_defaults.min_expires);
    CHECK(config.presence.max_expires == presence_defaults.max_expires);
    CHECK(config.presence.max_per_user == presence_defaults.max_per_user);
    CHECK(config.presence.max_total == presence_defaults.max_total);
    CHECK(config.presence.publish_to.empty());
    CHECK(config.presence.publish_expires == presence_defaults.publish_expires);
    const xsgw::core::CallsConfig calls_defaults;
    CHECK(config.calls.enabled == calls_defaults.enabled);
    CHECK(config.calls.max_calls == calls_defaults.max_calls);
    CHECK(config.calls.answer_timeout == calls_defaults.answer_timeout);
    CHECK(config.warnings.empty());

    // The commented-out keys are spelled right and their examples are valid.
    std::string uncommented = text;
    CHECK(config.xmpp.allowed_domains.empty());
    CHECK(config.xmpp.allowed_domains == xmpp_defaults.allowed_domains);
    for (const std::string key : {"secret_file", "servers", "allowed_domains"}) {
        const std::string line = "# " + key + " = ";
        const std::size_t at = uncommented.find(line);
        REQUIRE_MESSAGE(at != std::string::npos, line);
        uncommented.erase(at, 2);
    }
    const ConfigError both = expect_error(parse_config(uncommented, file));
    CHECK(both.key == "xmpp.secret_file");
    CHECK(both.what.find("conflicts") != std::string::npos);
    const std::size_t secret_line = uncommented.find("\nsecret = ");
    REQUIRE(secret_line != std::string::npos);
    uncommented.insert(secret_line + 1, "# ");
    const TempFile secret(MARK "\n", 0600);
    const std::size_t example = uncommented.find("\"/etc/xsgw/secret\"");
    REQUIRE(example != std::string::npos);
    uncommented.replace(example, 18, "\"" + secret.path() + "\"");
    const Config with_file = expect_config(parse_config(uncommented, file));
    CHECK(with_file.xmpp.secret == marker);
    CHECK(with_file.xmpp.secret_source == secret.path());
    CHECK(with_file.dns.servers == std::vector<std::string>{"127.0.0.53:53"});
    CHECK(with_file.xmpp.allowed_domains == std::vector<std::string>{"xmpp.test"});
}

TEST_CASE("config: S4 tls_listen takes its PEM files, relative ones next to the config file") {
    const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const TempFile cert(pem, 0644);
    const TempFile key("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", 0600);
    const TempFile ca(pem, 0644);
    const auto with_tls = [&](const std::string& cert_path, const std::string& key_path,
                              const std::string& ca_line) {
        return minimal + "tls_listen = \"sips:127.0.0.1:5061\"\ntls_certificate = \"" + cert_path +
               "\"\ntls_key = \"" + key_path + "\"\n" + ca_line;
    };
    const Config config = expect_config(
        parse_config(with_tls(cert.path(), key.name(), "tls_ca_file = \"" + ca.path() + "\"\n"),
                     "/tmp/xsgw.toml"));
    CHECK(config.sip.tls_listen == "sips:127.0.0.1:5061");
    CHECK(config.sip.tls_certificate == cert.path());
    CHECK(config.sip.tls_key == key.path());
    CHECK(config.sip.tls_ca_file == ca.path());

    struct Bad {
        std::string name;
        std::string toml;
        std::string key;
        std::string what;
    };
    const TempFile open_key("-----BEGIN PRIVATE KEY-----\n", 0644);
    const TempFile not_pem("hello\n", 0600);
    const std::vector<Bad> bad = {
        {"missing key file", with_tls(cert.path(), "/nonexistent/key.pem", ""), "sip.tls_key",
         "cannot open"},
        {"world-readable key", with_tls(cert.path(), open_key.path(), ""), "sip.tls_key",
         "world-readable"},
        {"certificate not PEM", with_tls(not_pem.path(), key.path(), ""), "sip.tls_certificate",
         "not a PEM file"},
        {"CA a folder", with_tls(cert.path(), key.path(), "tls_ca_file = \"/tmp\"\n"),
         "sip.tls_ca_file", "not a regular file"},
        {"CA empty", with_tls(cert.path(), key.path(), "tls_ca_file = \"\"\n"), "sip.tls_ca_file",
         "must not be empty"},
        {"no key",
         minimal + "tls_listen = \"sips:127.0.0.1\"\ntls_certificate = \"" + cert.path() + "\"\n",
         "sip.tls_key", "required key missing"},
    };
    for (const auto& b : bad) {
        INFO("case: " << b.name);
        const ConfigError error = expect_error(parse_config(b.toml, "/tmp/xsgw.toml"));
        CHECK(error.key == b.key);
        CHECK(error.what.find(b.what) != std::string::npos);
    }
}
