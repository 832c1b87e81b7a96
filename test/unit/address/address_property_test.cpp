// Property tests: thousands of generated addresses from a fixed seed, so a
// failure reproduces exactly. Generators build only canonical addresses
// (lowercase ASCII in user parts, minimal XEP-0106 escaping, no leading
// space), the set A6 promises identity for.
#include "xsgw/address/address.hpp"
#include "xsgw/address/escape.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace xsgw::address;

namespace {

const AddressConfig config{"sip.test", "xmpp.test", '*'};
constexpr int rounds = 4000;

class Generator {
public:
    explicit Generator(std::uint32_t seed) : rng_(seed) {}

    std::size_t below(std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
    }
    bool chance(unsigned percent) { return below(100) < percent; }
    std::string_view pick(const std::vector<std::string_view>& pool) {
        return pool[below(pool.size())];
    }

    std::string join(const std::vector<std::string_view>& pool, std::size_t min, std::size_t max) {
        std::string out;
        const auto count = min + below(max - min + 1);
        for (std::size_t i = 0; i < count; ++i) {
            out += pick(pool);
        }
        return out;
    }

    // A decoded SIP user part: separators, everything SIP or XMPP reserves,
    // backslashes that look like escapes, multi-byte UTF-8. No ASCII upper case.
    std::string sip_user() {
        static const std::vector<std::string_view> pool = {"a",
                                                           "b",
                                                           "z",
                                                           "0",
                                                           "9",
                                                           "alice",
                                                           "bob",
                                                           "-",
                                                           "_",
                                                           ".",
                                                           "!",
                                                           "~",
                                                           "*",
                                                           "*67",
                                                           "**",
                                                           "'",
                                                           "(",
                                                           ")",
                                                           "&",
                                                           "=",
                                                           "+",
                                                           "$",
                                                           ",",
                                                           ";",
                                                           "?",
                                                           "/",
                                                           "#",
                                                           "%",
                                                           "[",
                                                           "\\",
                                                           "]",
                                                           "^",
                                                           "`",
                                                           "{",
                                                           "|",
                                                           "}",
                                                           " ",
                                                           "\"",
                                                           "<",
                                                           ">",
                                                           ":",
                                                           "@",
                                                           "\\20",
                                                           "\\5c",
                                                           "\\2f",
                                                           "\\3a",
                                                           "\\q",
                                                           "%41",
                                                           "%zz",
                                                           "\xc3\xa9",
                                                           "\xc3\xbc",
                                                           "\xc3\x84",
                                                           "\xc3\x9f",
                                                           "\xe6\x97\xa5\xe6\x9c\xac",
                                                           "\xf0\x9f\x98\x80"};
        std::string user;
        do {
            user = join(pool, 1, 10);
        } while (user.front() == ' ');
        return user;
    }

    // An escaped JID local part (user side) that is its own canonical form:
    // \5c only before something that reads as an escape, literal backslashes
    // only before something that does not.
    std::string escaped_local() {
        static const std::vector<std::string_view> pool = {"a",
                                                           "bob",
                                                           "0",
                                                           "-",
                                                           "_",
                                                           ".",
                                                           "!",
                                                           "~",
                                                           "(",
                                                           ")",
                                                           "=",
                                                           "+",
                                                           "$",
                                                           ",",
                                                           ";",
                                                           "?",
                                                           "#",
                                                           "%",
                                                           "[",
                                                           "]",
                                                           "^",
                                                           "`",
                                                           "{",
                                                           "|",
                                                           "}",
                                                           "*",
                                                           "\\20",
                                                           "\\22",
                                                           "\\26",
                                                           "\\27",
                                                           "\\2f",
                                                           "\\3a",
                                                           "\\3c",
                                                           "\\3e",
                                                           "\\40",
                                                           "\\5c20",
                                                           "\\5c3a",
                                                           "\\5c5c",
                                                           "\\q",
                                                           "\\zz",
                                                           "\xc3\xa9",
                                                           "\xc3\x84",
                                                           "\xe6\x97\xa5\xe6\x9c\xac",
                                                           "\xf0\x9f\x98\x80"};
        std::string local;
        do {
            local = join(pool, 1, 10);
        } while (local.rfind("\\20", 0) == 0);
        return local;
    }

    std::string host_name() {
        static const std::vector<std::string_view> chars = {"a", "b", "c", "x", "y",
                                                            "z", "0", "1", "9", "-"};
        std::string host;
        const auto labels = 1 + below(4);
        for (std::size_t i = 0; i < labels; ++i) {
            if (i > 0) {
                host += '.';
            }
            std::string label;
            do {
                label = join(chars, 1, 8);
            } while (label.front() == '-' || label.back() == '-');
            host += label;
        }
        return host;
    }

    std::string sip_host() {
        static const std::vector<std::string_view> literals = {
            "[2001:db8::1]", "[::1]", "[fe80::a:b:c]", "[2001:db8:0:0:0:0:2:1]",
            "[::ffff:192.0.2.1]"};
        switch (below(5)) {
        case 0:
            return fmt::format("{}.{}.{}.{}", below(256), below(256), below(256), below(256));
        case 1:
            return std::string(pick(literals));
        default:
            return host_name();
        }
    }

    std::string xmpp_domain() {
        return chance(15) ? "b\xc3\xbc\x63her." + host_name() : host_name();
    }

    std::optional<std::uint16_t> port() {
        if (!chance(25)) {
            return std::nullopt;
        }
        return static_cast<std::uint16_t>(1 + below(65535));
    }

    // Resources keep their case and may hold anything printable.
    std::string resource() {
        static const std::vector<std::string_view> pool = {
            "phone",    "Res",
            "My Phone", "a/b",
            "x@y",      "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "\xc3\xa9", "\xe6\x97\xa5",
            "%",        "\\20",
            ";",        "=",
            "?",        "&",
            "[",        "]",
            "\"",       "'"};
        return chance(40) ? join(pool, 1, 4) : std::string();
    }

    // Raw text for the escaping primitives: upper and lower case hex after
    // backslashes, reserved characters, and non-ASCII.
    std::string raw_text() {
        static const std::vector<std::string_view> pool = {
            "\\", "2", "0", "5", "c", "C",        "f",
            "F",  "3", "a", "A", "4", "q",        " ",
            "\"", "&", "'", "/", ":", "<",        ">",
            "@",  "%", "#", "*", "Z", "\xc3\xa9", "\xf0\x9f\x98\x80"};
        return join(pool, 0, 12);
    }

    // A valid address with a few random edits, or pure junk: both the
    // refusals and the success paths get exercised.
    std::string junk() {
        static const std::vector<std::string_view> pieces = {
            "sip:",     "sips:", "SIP:",        "<",
            ">",        "@",     "@",           ":",
            ";",        "=",     "%",           "%4",
            "%41",      "%0d",   "[",           "]",
            "?",        "/",     ".",           "*",
            "\\",       "\\20",  "gr",          ";gr=",
            "a",        "B",     "1",           "5060",
            " ",        "\r",    "\n",          std::string_view("\0", 1),
            "\x7f",     "\xff",  "\xc3",        "\xc3\xa9",
            "\xc2\x85", "-",     "example.org", "sip.test",
            "xmpp.test"};
        static const std::vector<std::string_view> seeds = {
            "sip:alice@example.org",
            "sips:bob*jabber.example@xmpp.test;gr=phone",
            "sip:john%20doe@[2001:db8::1]:5070;transport=tcp",
            "alice*example.org@sip.test/res",
            "bob@jabber.example/phone",
            "c\\3a\\net*example.org@sip.test",
            "alice@example.org",
            "<sip:a*b@192.0.2.1:5060>",
            "sip:xmpp.test;lr"};
        if (chance(20)) {
            return join(pieces, 0, 16);
        }
        std::string text(pick(seeds));
        const auto edits = below(4);
        for (std::size_t i = 0; i < edits; ++i) {
            const auto at = below(text.size() + 1);
            switch (below(3)) {
            case 0:
                text.insert(at, pick(pieces));
                break;
            case 1:
                if (at < text.size()) {
                    text.erase(at, 1);
                }
                break;
            default:
                if (at < text.size()) {
                    text.replace(at, 1, pick(pieces));
                }
                break;
            }
        }
        return text;
    }

private:
    std::mt19937 rng_;
};

// A result as text for a failure message: the address, or why there is none.
template <class T> std::string shown(const Result<T>& result) {
    return result ? to_string(*result) : "error: " + result.error().reason;
}

bool clean_reason(const std::string& reason) {
    return !reason.empty() && is_valid_utf8(reason) && !contains_control(reason);
}

} // namespace

TEST_CASE("A6 uri->jid->uri is identity for canonical SIP contacts") {
    Generator gen(0x5157u);
    for (int i = 0; i < rounds; ++i) {
        SipUri uri;
        uri.user = gen.sip_user();
        uri.host = gen.sip_host();
        uri.port = gen.port();
        uri.gr = gen.resource();
        const auto text = to_string(uri);
        CAPTURE(text);

        const auto jid = sip_to_contact_jid(uri, config);
        INFO(shown(jid));
        REQUIRE(jid.has_value());
        CHECK(jid->domain == "sip.test");
        const auto back = contact_jid_to_sip(*jid, config);
        INFO(shown(back));
        REQUIRE(back.has_value());
        CHECK(*back == uri);

        // The wire forms carry the same values.
        const auto reparsed = parse_sip_uri(text);
        REQUIRE(reparsed.has_value());
        CHECK(*reparsed == uri);
        const auto rejid = parse_jid(to_string(*jid));
        REQUIRE(rejid.has_value());
        CHECK(*rejid == *jid);
    }
}

TEST_CASE("A6 jid->uri->jid is identity for canonical contact JIDs") {
    Generator gen(0x7247u);
    for (int i = 0; i < rounds; ++i) {
        const auto user = gen.escaped_local();
        auto hostport = gen.sip_host();
        if (const auto port = gen.port()) {
            hostport += fmt::format(":{}", *port);
        }
        const Jid jid{user + "*" + xep0106_escape(hostport), "sip.test", gen.resource()};
        CAPTURE(to_string(jid));
        // The generator's promise: this local part is already canonical.
        const auto raw = xep0106_unescape(user);
        REQUIRE(raw.has_value());
        REQUIRE(xep0106_escape(*raw) == user);

        const auto uri = contact_jid_to_sip(jid, config);
        INFO(shown(uri));
        REQUIRE(uri.has_value());
        const auto back = sip_to_contact_jid(*uri, config);
        INFO(shown(back));
        REQUIRE(back.has_value());
        CHECK(*back == jid);

        const auto reparsed = parse_sip_uri(to_string(*uri));
        REQUIRE(reparsed.has_value());
        CHECK(*reparsed == *uri);
    }
}

TEST_CASE("A6 XMPP users round-trip through their SIP form both ways") {
    Generator gen(0x106u);
    for (int i = 0; i < rounds; ++i) {
        const Jid jid{gen.escaped_local(), gen.xmpp_domain(), gen.resource()};
        CAPTURE(to_string(jid));
        const auto uri = xmpp_user_to_sip(jid, config);
        INFO(shown(uri));
        REQUIRE(uri.has_value());
        CHECK(uri->host == "xmpp.test");
        // Through the wire form, as a SIP peer would send it back.
        const auto reparsed = parse_sip_uri(to_string(*uri));
        REQUIRE(reparsed.has_value());
        const auto back = sip_request_uri_to_xmpp_user(*reparsed, config);
        INFO(shown(back));
        REQUIRE(back.has_value());
        CHECK(*back == jid);
    }
    for (int i = 0; i < rounds; ++i) {
        SipUri uri;
        uri.user = gen.sip_user() + "*" + gen.xmpp_domain();
        uri.host = "xmpp.test";
        uri.gr = gen.resource();
        CAPTURE(to_string(uri));
        const auto jid = sip_request_uri_to_xmpp_user(uri, config);
        INFO(shown(jid));
        REQUIRE(jid.has_value());
        const auto back = xmpp_user_to_sip(*jid, config);
        INFO(shown(back));
        REQUIRE(back.has_value());
        CHECK(*back == uri);
    }
}

TEST_CASE("A3 A4 escaping primitives invert each other") {
    Generator gen(0x3986u);
    for (int i = 0; i < rounds; ++i) {
        const auto raw = gen.raw_text();
        CAPTURE(raw);
        const auto escaped = xep0106_escape(raw);
        // An escaped text is a legal local part: no reserved character raw.
        CHECK(escaped.find_first_of(" \"&'/:<>@") == std::string::npos);
        const auto unescaped = xep0106_unescape(escaped);
        REQUIRE(unescaped.has_value());
        CHECK(*unescaped == raw);
        // Lowercasing (A10) keeps escapes intact: only letters outside them fold.
        const auto folded = xep0106_unescape(ascii_lowercase(escaped));
        REQUIRE(folded.has_value());
        CHECK(*folded == ascii_lowercase(raw));

        const auto user = percent_encode_user(raw);
        for (const char c : user) {
            CHECK((c == '%' || sip_user_allows_literal(c)));
        }
        const auto decoded_user = percent_decode(user);
        REQUIRE(decoded_user.has_value());
        CHECK(*decoded_user == raw);
        const auto param = percent_encode_param(raw);
        for (const char c : param) {
            CHECK((c == '%' || sip_param_allows_literal(c)));
        }
        const auto decoded_param = percent_decode(param);
        REQUIRE(decoded_param.has_value());
        CHECK(*decoded_param == raw);
    }
}

TEST_CASE("S2 arbitrary input never breaks the parsers or the mapping") {
    Generator gen(0xf022u);
    int parsed = 0;
    for (int i = 0; i < rounds; ++i) {
        const auto text = gen.junk();
        CAPTURE(text);
        for (const auto& uri : {parse_sip_uri(text), parse_sip_address_prompt(text)}) {
            if (!uri) {
                CHECK(clean_reason(uri.error().reason));
                continue;
            }
            ++parsed;
            // What parses prints back to text that parses to the same value.
            const auto again = parse_sip_uri(to_string(*uri));
            REQUIRE(again.has_value());
            CHECK(*again == *uri);
            const auto contact = sip_to_contact_jid(*uri, config, true);
            if (contact) {
                const auto reparsed = parse_jid(to_string(*contact));
                REQUIRE(reparsed.has_value());
                CHECK(*reparsed == *contact);
            } else {
                CHECK(clean_reason(contact.error().reason));
            }
            const auto user = sip_request_uri_to_xmpp_user(*uri, config, true);
            if (!user) {
                CHECK(clean_reason(user.error().reason));
            }
        }
        const auto jid = parse_jid(text);
        if (!jid) {
            CHECK(clean_reason(jid.error().reason));
            continue;
        }
        ++parsed;
        const auto again = parse_jid(to_string(*jid));
        REQUIRE(again.has_value());
        CHECK(*again == *jid);
        for (const auto& uri : {contact_jid_to_sip(*jid, config), xmpp_user_to_sip(*jid, config)}) {
            if (uri) {
                const auto reparsed = parse_sip_uri(to_string(*uri));
                REQUIRE(reparsed.has_value());
                CHECK(*reparsed == *uri);
            } else {
                CHECK(clean_reason(uri.error().reason));
            }
        }
    }
    // The generator must reach the success paths, not only the refusals.
    CHECK(parsed > rounds / 20);
}
