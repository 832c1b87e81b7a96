// Table-driven tests of the address area, one TEST_CASE per checkpoint rule
// (STANDARDS.md A1-A10, plus the S2/S3/X9 rules the parsers serve).
#include "xsgw/address/address.hpp"
#include "xsgw/address/escape.hpp"

#include <doctest/doctest.h>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::address {
// Internal linkage: each test file prints values its own way without ODR clashes.
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, const Jid& jid) {
    return out << "Jid{" << to_string(jid) << "}";
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, const SipUri& uri) {
    return out << "SipUri{" << to_string(uri) << "}";
}
} // namespace xsgw::address

using namespace xsgw::address;

namespace {

const AddressConfig config{"sip.test", "xmpp.test", '*'};

// What a failed result says, for the failure message of a test.
template <class T> std::string why(const Result<T>& result) {
    return result ? std::string("ok") : result.error().reason;
}

Jid jid_of(std::string_view text) {
    auto jid = parse_jid(text);
    INFO("parse_jid(", text, "): ", why(jid));
    REQUIRE(jid.has_value());
    return *jid;
}

SipUri uri_of(std::string_view text) {
    auto uri = parse_sip_uri(text);
    INFO("parse_sip_uri(", text, "): ", why(uri));
    REQUIRE(uri.has_value());
    return *uri;
}

// Reason text may reach a SIP reason phrase: no controls, valid UTF-8, short.
bool clean_reason(const std::string& reason) {
    return !reason.empty() && is_valid_utf8(reason) && !contains_control(reason) &&
           reason.size() < 400;
}

struct MapRow {
    std::string_view from;
    std::string_view to;
};

struct ErrorRow {
    std::string_view input;
    Condition condition;
};

void check_contact_to_sip(const std::vector<MapRow>& rows) {
    for (const auto& row : rows) {
        CAPTURE(row.from);
        const auto uri = contact_jid_to_sip(jid_of(row.from), config);
        INFO(why(uri));
        REQUIRE(uri.has_value());
        CHECK(to_string(*uri) == row.to);
    }
}

void check_sip_to_contact(const std::vector<MapRow>& rows) {
    for (const auto& row : rows) {
        CAPTURE(row.from);
        const auto jid = sip_to_contact_jid(uri_of(row.from), config);
        INFO(why(jid));
        REQUIRE(jid.has_value());
        CHECK(to_string(*jid) == row.to);
    }
}

void check_user_to_sip(const std::vector<MapRow>& rows) {
    for (const auto& row : rows) {
        CAPTURE(row.from);
        const auto uri = xmpp_user_to_sip(jid_of(row.from), config);
        INFO(why(uri));
        REQUIRE(uri.has_value());
        CHECK(to_string(*uri) == row.to);
    }
}

void check_request_uri_to_user(const std::vector<MapRow>& rows) {
    for (const auto& row : rows) {
        CAPTURE(row.from);
        const auto jid = sip_request_uri_to_xmpp_user(uri_of(row.from), config);
        INFO(why(jid));
        REQUIRE(jid.has_value());
        CHECK(to_string(*jid) == row.to);
    }
}

} // namespace

// ---------------------------------------------------------------- A1

TEST_CASE("A1 split the contact local part at the last separator") {
    check_contact_to_sip({
        {"alice*sip.example.org@sip.test", "sip:alice@sip.example.org"},
        {"*67*example.org@sip.test", "sip:*67@example.org"},
        {"a*b*c*example.org@sip.test", "sip:a*b*c@example.org"},
        {"**example.org@sip.test", "sip:*@example.org"},
        {"alice*sip.example.org@sip.test/res", "sip:alice@sip.example.org;gr=res"},
        // The host side may carry a port (':' escaped) or an IP literal.
        {"1001*192.0.2.10\\3a5062@sip.test", "sip:1001@192.0.2.10:5062"},
        {"bob*[2001\\3adb8\\3a\\3a1]@sip.test", "sip:bob@[2001:db8::1]"},
        {"bob*[2001\\3adb8\\3a\\3a1]\\3a5070@sip.test", "sip:bob@[2001:db8::1]:5070"},
    });
}

TEST_CASE("A1 separators in user parts survive both directions") {
    check_sip_to_contact({
        {"sip:*67@example.org", "*67*example.org@sip.test"},
        {"sip:a*b*c@example.org", "a*b*c*example.org@sip.test"},
        {"sip:1001@192.0.2.10:5062", "1001*192.0.2.10\\3a5062@sip.test"},
        {"sip:bob@[2001:db8::1]", "bob*[2001\\3adb8\\3a\\3a1]@sip.test"},
    });
    check_request_uri_to_user({
        {"sip:bob*jabber.example@xmpp.test", "bob@jabber.example"},
        {"sip:a*b*jabber.example@xmpp.test", "a*b@jabber.example"},
    });
    check_user_to_sip({
        {"a*b@jabber.example", "sip:a*b*jabber.example@xmpp.test"},
    });
}

TEST_CASE("A1 another separator from the configuration") {
    const AddressConfig plus{"sip.test", "xmpp.test", '+'};
    const auto uri = contact_jid_to_sip(jid_of("alice*x+sip.example.org@sip.test"), plus);
    REQUIRE(uri.has_value());
    CHECK(to_string(*uri) == "sip:alice*x@sip.example.org");
    const auto jid = sip_request_uri_to_xmpp_user(uri_of("sip:bob+jabber.example@xmpp.test"), plus);
    REQUIRE(jid.has_value());
    CHECK(to_string(*jid) == "bob@jabber.example");
}

// ---------------------------------------------------------------- A2

TEST_CASE("A2 contact JIDs that name no SIP address are refused") {
    const std::vector<ErrorRow> rows = {
        {"alice@sip.test", Condition::item_not_found},
        {"alice*sip.example.org@other.test", Condition::item_not_found},
        {"sip.test", Condition::jid_malformed},
        {"*example.org@sip.test", Condition::jid_malformed},
        {"alice*@sip.test", Condition::jid_malformed},
        {"*@sip.test", Condition::jid_malformed},
        {"alice*exa_mple.org@sip.test", Condition::jid_malformed},
        {"alice*example..org@sip.test", Condition::jid_malformed},
        {"alice*exam\\40ple.org@sip.test", Condition::jid_malformed},
        {"alice*example.org\\3a99999@sip.test", Condition::jid_malformed},
        {"alice*example.org\\3a@sip.test", Condition::jid_malformed},
        {"alice*[2001\\3adb8@sip.test", Condition::jid_malformed},
        {"alice*j\xc3\xa4ger.example@sip.test", Condition::jid_malformed},
        {"\\20alice*example.org@sip.test", Condition::jid_malformed},
        {"alice*xmpp.test@sip.test", Condition::forbidden},
    };
    for (const auto& row : rows) {
        CAPTURE(row.input);
        const auto uri = contact_jid_to_sip(jid_of(row.input), config);
        REQUIRE_FALSE(uri.has_value());
        CHECK(uri.error().condition == row.condition);
        CHECK(clean_reason(uri.error().reason));
    }
}

TEST_CASE("A2 the reason names what is missing") {
    const auto uri = contact_jid_to_sip(jid_of("alice@sip.test"), config);
    REQUIRE_FALSE(uri.has_value());
    CHECK(uri.error().reason == "no '*' separator in local part 'alice'");
    CHECK(to_string(uri.error().condition) == "item-not-found");
}

TEST_CASE("A2 hand-built JIDs get the same checks as parsed ones") {
    const std::vector<Jid> rows = {
        {"al ice*example.org", "sip.test", ""},
        {"al@ice*example.org", "sip.test", ""},
        {"alice*example.org", "sip.test", "res\r\nVia: evil"},
        {"alice*example.org", "", ""},
        {"alice\x01*example.org", "sip.test", ""},
        {"alice\xff*example.org", "sip.test", ""},
        {std::string(1020, 'a') + "*b.c", "sip.test", ""},
        {"alice*example.org", "sip.test", std::string(1024, 'r')},
    };
    for (const auto& jid : rows) {
        CAPTURE(jid.local.substr(0, 40));
        const auto uri = contact_jid_to_sip(jid, config);
        REQUIRE_FALSE(uri.has_value());
        CHECK(uri.error().condition == Condition::jid_malformed);
        CHECK(clean_reason(uri.error().reason));
    }
}

TEST_CASE("A2 Request-URIs that name no XMPP user are refused") {
    const std::vector<ErrorRow> rows = {
        {"sip:bob@xmpp.test", Condition::item_not_found},
        {"sip:xmpp.test", Condition::item_not_found},
        {"sip:*jabber.example@xmpp.test", Condition::jid_malformed},
        {"sip:bob*@xmpp.test", Condition::jid_malformed},
        {"sip:bob*jab%20ber.example@xmpp.test", Condition::jid_malformed},
        {"sip:bob*jabber..example@xmpp.test", Condition::jid_malformed},
        {"sip:%20bob*jabber.example@xmpp.test", Condition::jid_malformed},
        {"sip:bob*sip.test@xmpp.test", Condition::forbidden},
    };
    for (const auto& row : rows) {
        CAPTURE(row.input);
        const auto jid = sip_request_uri_to_xmpp_user(uri_of(row.input), config);
        REQUIRE_FALSE(jid.has_value());
        CHECK(jid.error().condition == row.condition);
        CHECK(clean_reason(jid.error().reason));
    }
}

TEST_CASE("A2 XMPP senders that cannot become a SIP address are refused") {
    const std::vector<std::pair<Jid, Condition>> rows = {
        {{"", "jabber.example", ""}, Condition::jid_malformed},
        {{"bob", "jab*ber.example", ""}, Condition::jid_malformed},
        {{"bob", "jabber example", ""}, Condition::jid_malformed},
        {{"\\20bob", "jabber.example", ""}, Condition::jid_malformed},
        {{"bob", "jabber.example", "a\nb"}, Condition::jid_malformed},
        {{"bob", "sip.test", ""}, Condition::forbidden},
    };
    for (const auto& row : rows) {
        CAPTURE(to_string(row.first));
        const auto uri = xmpp_user_to_sip(row.first, config);
        REQUIRE_FALSE(uri.has_value());
        CHECK(uri.error().condition == row.second);
        CHECK(clean_reason(uri.error().reason));
    }
    const auto separator = xmpp_user_to_sip({"bob", "jab*ber.example", ""}, config);
    REQUIRE_FALSE(separator.has_value());
    CHECK(separator.error().reason == "domain 'jab*ber.example' contains the separator '*'");
}

TEST_CASE("A2 conditions carry their RFC 6120 names and types") {
    CHECK(to_string(Condition::jid_malformed) == "jid-malformed");
    CHECK(to_string(Condition::item_not_found) == "item-not-found");
    CHECK(to_string(Condition::forbidden) == "forbidden");
    CHECK(to_string(Condition::not_acceptable) == "not-acceptable");
    CHECK(error_type(Condition::jid_malformed) == "modify");
    CHECK(error_type(Condition::item_not_found) == "cancel");
    CHECK(error_type(Condition::forbidden) == "auth");
    CHECK(error_type(Condition::not_acceptable) == "modify");
}

TEST_CASE("A2 a configuration the mapping cannot use is reported") {
    CHECK_FALSE(validate_config(config).has_value());
    CHECK_FALSE(validate_config({"SIP.Test.", "XMPP.test", '+'}).has_value());
    const std::vector<AddressConfig> bad = {
        {"sip.test", "xmpp.test", '.'},  {"sip.test", "xmpp.test", '-'},
        {"sip.test", "xmpp.test", '@'},  {"sip.test", "xmpp.test", '%'},
        {"sip.test", "xmpp.test", '\0'}, {"sip.test", "xmpp.test", '\n'},
        {"", "xmpp.test", '*'},          {"sip test", "xmpp.test", '*'},
        {"sip.test", "", '*'},           {"sip.test", "xmpp_gw.test", '*'},
    };
    for (const auto& cfg : bad) {
        CAPTURE(cfg.component);
        CAPTURE(cfg.sip_domain);
        CAPTURE(static_cast<int>(cfg.separator));
        const auto problem = validate_config(cfg);
        REQUIRE(problem.has_value());
        CHECK(clean_reason(*problem));
        const auto uri = contact_jid_to_sip(jid_of("alice*example.org@sip.test"), cfg);
        REQUIRE_FALSE(uri.has_value());
        CHECK(uri.error().condition == Condition::not_acceptable);
    }
}

TEST_CASE("A2 Result holds a value or an error") {
    const Result<int> good = 7;
    REQUIRE(good.has_value());
    CHECK(static_cast<bool>(good));
    CHECK(good.value() == 7);
    CHECK(*good == 7);
    const Result<int> bad = AddressError{Condition::forbidden, "no"};
    CHECK_FALSE(bad.has_value());
    CHECK_FALSE(static_cast<bool>(bad));
    CHECK(bad.error() == AddressError{Condition::forbidden, "no"});
    Result<std::string> text = std::string("abc");
    CHECK(text->size() == 3);
    const std::string moved = std::move(text).value();
    CHECK(moved == "abc");
}

// ---------------------------------------------------------------- A3

TEST_CASE("A3 XEP-0106 unescape, hex in either case") {
    struct Row {
        std::string_view escaped;
        std::string_view raw;
    };
    const std::vector<Row> rows = {
        {"space\\20cadet", "space cadet"},
        {"\\22\\26\\27\\2f\\3a\\3c\\3e\\40\\5c", "\"&'/:<>@\\"},
        {"\\2F\\3A\\3C\\3E\\5C", "/:<>\\"},
        {"c\\3a\\net", "c:\\net"},
        {"a\\b", "a\\b"},
        {"\\", "\\"},
        {"\\4", "\\4"},
        {"\\41", "\\41"},
        {"\\5c20", "\\20"},
        {"", ""},
        {"j\xc3\xbcrgen", "j\xc3\xbcrgen"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.escaped);
        const auto raw = xep0106_unescape(row.escaped);
        REQUIRE(raw.has_value());
        CHECK(*raw == row.raw);
    }
    for (const std::string_view bad :
         {"a b", "a@b", "o'hara", "a/b", "a:b", "<a>", "\"a\"", "a&b"}) {
        CAPTURE(bad);
        CHECK_FALSE(xep0106_unescape(bad).has_value());
    }
}

TEST_CASE("A3 percent-encode what SIP reserves in a user part") {
    struct Row {
        std::string_view raw;
        std::string_view encoded;
    };
    const std::vector<Row> rows = {
        {"#", "%23"},
        {"%", "%25"},
        {"[", "%5B"},
        {"\\", "%5C"},
        {"]", "%5D"},
        {"^", "%5E"},
        {"`", "%60"},
        {"{", "%7B"},
        {"|", "%7C"},
        {"}", "%7D"},
        {" ", "%20"},
        {"\"", "%22"},
        {"<", "%3C"},
        {">", "%3E"},
        {":", "%3A"},
        {"@", "%40"},
        {"\x7f", "%7F"},
        {"\xc3\xa9", "%C3%A9"},
        {"\xf0\x9f\x98\x80", "%F0%9F%98%80"},
        {"john doe#1", "john%20doe%231"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.raw);
        CHECK(percent_encode_user(row.raw) == row.encoded);
    }
    CHECK(percent_encode_param("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6") ==
          "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
    CHECK(percent_encode_param("a b;c=d?e@f[g]") == "a%20b%3Bc%3Dd%3Fe%40f[g]");
}

TEST_CASE("A3 contact JIDs are unescaped, then percent-encoded into the SIP URI") {
    check_contact_to_sip({
        {"d\\27artagnan*example.com@sip.test", "sip:d'artagnan@example.com"},
        {"john\\20doe*example.com@sip.test", "sip:john%20doe@example.com"},
        {"user\\40host*example.com@sip.test", "sip:user%40host@example.com"},
        {"at\\26t\\2fsales*example.com@sip.test", "sip:at&t/sales@example.com"},
        {"\\22q\\22\\3cx\\3e*example.com@sip.test", "sip:%22q%22%3Cx%3E@example.com"},
        {"c\\3a\\net*example.com@sip.test", "sip:c%3A%5Cnet@example.com"},
        {"c\\3a\\5c5commas*example.com@sip.test", "sip:c%3A%5C5commas@example.com"},
        {"a#b*example.com@sip.test", "sip:a%23b@example.com"},
        {"x%y*example.com@sip.test", "sip:x%25y@example.com"},
        {"[a]\\^`{|}*example.com@sip.test", "sip:%5Ba%5D%5C%5E%60%7B%7C%7D@example.com"},
        {"j\xc3\xbcrgen*example.com@sip.test", "sip:j%C3%BCrgen@example.com"},
    });
    check_user_to_sip({
        {"d\\27artagnan@jabber.example/Phone", "sip:d'artagnan*jabber.example@xmpp.test;gr=Phone"},
        {"space\\20cadet@jabber.example", "sip:space%20cadet*jabber.example@xmpp.test"},
        {"j\xc3\xbcrgen@b\xc3\xbc\x63her.example", "sip:j%C3%BCrgen*b%C3%BCcher.example@xmpp.test"},
    });
}

// ---------------------------------------------------------------- A4

TEST_CASE("A4 XEP-0106 escape, per the XEP's own examples") {
    struct Row {
        std::string_view raw;
        std::string_view escaped;
    };
    const std::vector<Row> rows = {
        {"space cadet", "space\\20cadet"},
        {"call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"},
        {"at&t guy", "at\\26t\\20guy"},
        {"d'artagnan", "d\\27artagnan"},
        {"/.fanboy", "\\2f.fanboy"},
        {"::foo::", "\\3a\\3afoo\\3a\\3a"},
        {"<foo>", "\\3cfoo\\3e"},
        {"user@host", "user\\40host"},
        {"c:\\net", "c\\3a\\net"},
        {"c:\\\\net", "c\\3a\\\\net"},
        {"c:\\cool stuff", "c\\3a\\cool\\20stuff"},
        {"c:\\5commas", "c\\3a\\5c5commas"},
        // Upper-case hex would read as an escape once the local part is lowercased.
        {"c:\\5Cx", "c\\3a\\5c5Cx"},
        {"\\", "\\"},
        {"", ""},
        {"plain", "plain"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.raw);
        CHECK(xep0106_escape(row.raw) == row.escaped);
        const auto back = xep0106_unescape(row.escaped);
        REQUIRE(back.has_value());
        CHECK(*back == row.raw);
    }
}

TEST_CASE("A4 percent-decode as UTF-8") {
    struct Row {
        std::string_view encoded;
        std::optional<std::string_view> decoded;
    };
    const std::vector<Row> rows = {
        {"%41", "A"},
        {"%c3%a9", "\xc3\xa9"},
        {"%C3%A9", "\xc3\xa9"},
        {"plain", "plain"},
        {"", ""},
        {"100%25", "100%"},
        {"a%2", std::nullopt},
        {"a%", std::nullopt},
        {"%zz", std::nullopt},
        {"%C3", std::nullopt},          // truncated sequence
        {"%FF", std::nullopt},          // never valid
        {"%C0%AF", std::nullopt},       // overlong '/'
        {"%ED%A0%80", std::nullopt},    // UTF-16 surrogate
        {"%F4%90%80%80", std::nullopt}, // above U+10FFFF
    };
    for (const auto& row : rows) {
        CAPTURE(row.encoded);
        const auto decoded = percent_decode(row.encoded);
        REQUIRE(decoded.has_value() == row.decoded.has_value());
        if (decoded) {
            CHECK(*decoded == *row.decoded);
        }
    }
}

TEST_CASE("A4 SIP users are decoded, then XEP-0106-escaped into the JID") {
    check_sip_to_contact({
        {"sip:john%20doe@example.com", "john\\20doe*example.com@sip.test"},
        {"sip:d'artagnan@example.com", "d\\27artagnan*example.com@sip.test"},
        {"sip:at&t@example.com", "at\\26t*example.com@sip.test"},
        {"sip:a/b@example.com", "a\\2fb*example.com@sip.test"},
        {"sip:a%3Ab@example.com", "a\\3ab*example.com@sip.test"},
        {"sip:%3Cx%3E@example.com", "\\3cx\\3e*example.com@sip.test"},
        {"sip:%22q%22@example.com", "\\22q\\22*example.com@sip.test"},
        {"sip:user%40host@example.com", "user\\40host*example.com@sip.test"},
        {"sip:c%5C5cx@example.com", "c\\5c5cx*example.com@sip.test"},
        {"sip:c%5Cnet@example.com", "c\\net*example.com@sip.test"},
        {"sip:bob%20@example.com", "bob\\20*example.com@sip.test"},
        {"sip:j%C3%BCrgen@example.com", "j\xc3\xbcrgen*example.com@sip.test"},
    });
    check_request_uri_to_user({
        {"sip:d'artagnan*jabber.example@xmpp.test", "d\\27artagnan@jabber.example"},
        {"sip:user%40host*jabber.example@xmpp.test", "user\\40host@jabber.example"},
        {"sip:j%C3%BCrgen*b%C3%BCcher.example@xmpp.test", "j\xc3\xbcrgen@b\xc3\xbc\x63her.example"},
    });
}

TEST_CASE("A4 users a JID cannot carry are refused") {
    // XEP-0106 1.1 forbids \20 at the start of a local part.
    const auto leading_space = sip_to_contact_jid(uri_of("sip:%20bob@example.com"), config);
    REQUIRE_FALSE(leading_space.has_value());
    CHECK(leading_space.error().condition == Condition::jid_malformed);
    for (const std::string_view bad :
         {"sip:%FF@example.com", "sip:%C3@example.com", "sip:a%0D%0Ab@example.com",
          "sip:%00@example.com", "sip:%C2%85@example.com"}) {
        CAPTURE(bad);
        const auto uri = parse_sip_uri(bad);
        REQUIRE_FALSE(uri.has_value());
        CHECK(uri.error().condition == Condition::jid_malformed);
        CHECK(clean_reason(uri.error().reason));
    }
}

// ---------------------------------------------------------------- A5

TEST_CASE("A5 characters both sides allow pass untouched") {
    // Every SIP user character that needs no XEP-0106 escape: no '&', '\'' or '/'.
    const std::string shared = "abc019-_.!~*()=+$,;?";
    CHECK(percent_encode_user(shared) == shared);
    CHECK(xep0106_escape(shared) == shared);
    const auto uri = uri_of("sip:" + shared + "@example.com");
    const auto jid = sip_to_contact_jid(uri, config);
    REQUIRE(jid.has_value());
    CHECK(jid->local == shared + "*example.com");
    const auto back = contact_jid_to_sip(*jid, config);
    REQUIRE(back.has_value());
    CHECK(to_string(*back) == "sip:" + shared + "@example.com");
    // Non-ASCII letters are legal in a JID as they are; only SIP needs %xx.
    CHECK(xep0106_escape("\xc3\xa9t\xc3\xa9") == "\xc3\xa9t\xc3\xa9");
}

// ---------------------------------------------------------------- A6

TEST_CASE("A6 round trip of hand-picked canonical addresses") {
    for (const std::string_view text :
         {"sip:alice@example.org", "sip:*67@example.org", "sip:john%20doe@example.com",
          "sip:d'artagnan@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
          "sip:c%5C5cx@example.com", "sip:1001@192.0.2.10:5062", "sip:bob@[2001:db8::1]:5070",
          "sip:j%C3%BCrgen@example.com;gr=My%20Phone"}) {
        CAPTURE(text);
        const auto uri = uri_of(text);
        const auto jid = sip_to_contact_jid(uri, config);
        REQUIRE(jid.has_value());
        const auto back = contact_jid_to_sip(*jid, config);
        REQUIRE(back.has_value());
        CHECK(*back == uri);
        CHECK(to_string(*back) == text);
    }
    for (const std::string_view text :
         {"bob@jabber.example", "bob@jabber.example/phone", "d\\27artagnan@jabber.example/Res 1",
          "a*b@jabber.example", "c\\3a\\net@jabber.example", "bob@[2001:db8::1]"}) {
        CAPTURE(text);
        const auto jid = jid_of(text);
        const auto uri = xmpp_user_to_sip(jid, config);
        REQUIRE(uri.has_value());
        const auto back = sip_request_uri_to_xmpp_user(uri_of(to_string(*uri)), config);
        REQUIRE(back.has_value());
        CHECK(*back == jid);
        CHECK(to_string(*back) == text);
    }
}

// ---------------------------------------------------------------- A7

TEST_CASE("A7 ;gr= maps to the resource and back") {
    check_sip_to_contact({
        {"sip:alice@example.org;gr=X", "alice*example.org@sip.test/X"},
        {"sip:alice@example.org;gr=My%20Phone%2F2", "alice*example.org@sip.test/My Phone/2"},
        {"sip:alice@example.org;transport=tcp;gr=a%40b", "alice*example.org@sip.test/a@b"},
        // A bare ;gr carries no resource (and other parameters are not carried).
        {"sip:alice@example.org;gr;lr", "alice*example.org@sip.test"},
    });
    check_contact_to_sip({
        {"alice*example.org@sip.test/My Phone/2", "sip:alice@example.org;gr=My%20Phone/2"},
        {"alice*example.org@sip.test/a;b=c", "sip:alice@example.org;gr=a%3Bb%3Dc"},
    });
    check_user_to_sip({
        {"bob@jabber.example/phone", "sip:bob*jabber.example@xmpp.test;gr=phone"},
        {"bob@jabber.example", "sip:bob*jabber.example@xmpp.test"},
    });
    check_request_uri_to_user({
        {"sip:bob*jabber.example@xmpp.test;gr=phone", "bob@jabber.example/phone"},
        {"sip:bob*jabber.example@xmpp.test;user=phone", "bob@jabber.example"},
    });
}

TEST_CASE("A7 a resource that cannot be a ;gr= value is refused") {
    const auto crlf = contact_jid_to_sip({"alice*example.org", "sip.test", "x\r\nVia: y"}, config);
    REQUIRE_FALSE(crlf.has_value());
    CHECK(crlf.error().condition == Condition::jid_malformed);
    CHECK(clean_reason(crlf.error().reason));
    const auto gr = sip_to_contact_jid({false, "alice", "example.org", {}, "a\nb", {}}, config);
    REQUIRE_FALSE(gr.has_value());
    CHECK(gr.error().condition == Condition::jid_malformed);
    const auto twice = parse_sip_uri("sip:alice@example.org;gr=a;gr=b");
    REQUIRE_FALSE(twice.has_value());
    CHECK(twice.error().condition == Condition::jid_malformed);
}

// ---------------------------------------------------------------- A8

TEST_CASE("A8 sips: is translated only when the whole path is TLS") {
    const auto secure_from = uri_of("sips:alice@example.org");
    CHECK(secure_from.secure);
    const auto refused = sip_to_contact_jid(secure_from, config);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().condition == Condition::not_acceptable);
    const auto allowed = sip_to_contact_jid(secure_from, config, true);
    REQUIRE(allowed.has_value());
    CHECK(to_string(*allowed) == "alice*example.org@sip.test");

    const auto secure_target = uri_of("sips:bob*jabber.example@xmpp.test");
    const auto refused_target = sip_request_uri_to_xmpp_user(secure_target, config);
    REQUIRE_FALSE(refused_target.has_value());
    CHECK(refused_target.error().condition == Condition::not_acceptable);
    const auto allowed_target = sip_request_uri_to_xmpp_user(secure_target, config, true);
    REQUIRE(allowed_target.has_value());
    CHECK(to_string(*allowed_target) == "bob@jabber.example");

    // The JID side carries no scheme: what the gateway produces is always sip:.
    const auto produced = contact_jid_to_sip(*allowed, config);
    REQUIRE(produced.has_value());
    CHECK_FALSE(produced->secure);
}

// ---------------------------------------------------------------- A9

TEST_CASE("A9 Request-URIs for other hosts are forbidden") {
    for (const std::string_view text :
         {"sip:bob*jabber.example@other.test", "sip:bob*jabber.example@xmpp.test.evil",
          "sip:bob*jabber.example@192.0.2.1", "sip:bob@example.org"}) {
        CAPTURE(text);
        const auto jid = sip_request_uri_to_xmpp_user(uri_of(text), config);
        REQUIRE_FALSE(jid.has_value());
        CHECK(jid.error().condition == Condition::forbidden);
        CHECK(jid.error().reason.find("not an open relay") != std::string::npos);
    }
    // The gateway's domain in any case, with a root dot or a port, is still its own.
    check_request_uri_to_user({
        {"sip:bob*jabber.example@XMPP.Test", "bob@jabber.example"},
        {"sip:bob*jabber.example@xmpp.test.", "bob@jabber.example"},
        {"sip:bob*jabber.example@xmpp.test:5080", "bob@jabber.example"},
    });
}

TEST_CASE("A9 S6 addresses that would loop through the gateway are forbidden") {
    const auto from_self = sip_to_contact_jid(uri_of("sip:bob*jabber.example@xmpp.test"), config);
    REQUIRE_FALSE(from_self.has_value());
    CHECK(from_self.error().condition == Condition::forbidden);
    const auto to_self = contact_jid_to_sip(jid_of("bob*xmpp.test@sip.test"), config);
    REQUIRE_FALSE(to_self.has_value());
    CHECK(to_self.error().condition == Condition::forbidden);
}

// ---------------------------------------------------------------- A10

TEST_CASE("A10 XMPP local parts are case-folded, SIP user parts are not: the loss") {
    const auto uri = uri_of("sip:Alice@Example.org");
    CHECK(uri.user == "Alice");
    CHECK(uri.host == "example.org");
    const auto jid = sip_to_contact_jid(uri, config);
    REQUIRE(jid.has_value());
    CHECK(to_string(*jid) == "alice*example.org@sip.test");
    const auto back = contact_jid_to_sip(*jid, config);
    REQUIRE(back.has_value());
    CHECK(to_string(*back) == "sip:alice@example.org");
    CHECK_FALSE(*back == uri); // documented loss: Alice came back as alice
}

TEST_CASE("A10 case handling in every direction") {
    check_contact_to_sip({
        {"ALICE*Example.ORG@SIP.Test/Res", "sip:alice@example.org;gr=Res"},
    });
    check_request_uri_to_user({
        {"sip:Bob*Jabber.Example@xmpp.test;gr=Phone", "bob@jabber.example/Phone"},
    });
    check_sip_to_contact({
        // An upper-case escape in a SIP user folds like any other letter.
        {"sip:c%5C2Fx@example.com", "c\\5c2fx*example.com@sip.test"},
        // Only ASCII is folded; no Unicode case mapping is attempted.
        {"sip:%C3%84rger@example.org", "\xc3\x84rger*example.org@sip.test"},
    });
    const auto jid = jid_of("Alice@Example.COM./Res");
    CHECK(jid == Jid{"alice", "example.com", "Res"});
    const auto folded = xmpp_user_to_sip({"Bob", "Jabber.Example", "Phone"}, config);
    REQUIRE(folded.has_value());
    CHECK(folded->user == "bob*jabber.example");
    CHECK(folded->gr == "Phone");
}

// ---------------------------------------------------------------- RFC 7247 §6

// RFC 7247 maps addresses one to one (sip:user@host <-> user@host); in this
// gateway the far domain moves into the local/user part. These are the RFC's
// §6 cases in that form: GRUU <-> resource, escaping, and untouched characters.
TEST_CASE("A7 RFC 7247 section 6 examples in gateway form") {
    check_sip_to_contact({
        {"sip:juliet@example.com", "juliet*example.com@sip.test"},
        {"sip:juliet@example.com;gr=yn0cl4bnw0yr3vym",
         "juliet*example.com@sip.test/yn0cl4bnw0yr3vym"},
    });
    check_user_to_sip({
        {"romeo@example.net", "sip:romeo*example.net@xmpp.test"},
        {"romeo@example.net/dr4hcr0st3lup4c", "sip:romeo*example.net@xmpp.test;gr=dr4hcr0st3lup4c"},
    });
    check_request_uri_to_user({
        {"sip:romeo*example.net@xmpp.test;gr=dr4hcr0st3lup4c", "romeo@example.net/dr4hcr0st3lup4c"},
    });
    check_contact_to_sip({
        {"juliet*example.com@sip.test/yn0cl4bnw0yr3vym",
         "sip:juliet@example.com;gr=yn0cl4bnw0yr3vym"},
    });
}

TEST_CASE("A4 RFC 7247 section 6.4: characters a localpart forbids are escaped") {
    check_sip_to_contact({
        {"sip:o'hara@example.com", "o\\27hara*example.com@sip.test"},
        {"sip:juliet%20capulet@example.com", "juliet\\20capulet*example.com@sip.test"},
        {"sip:romeo%40home@example.net", "romeo\\40home*example.net@sip.test"},
        {"sip:%E7%BD%97%E5%AF%86%E6%AC%A7@example.net",
         "\xe7\xbd\x97\xe5\xaf\x86\xe6\xac\xa7*example.net@sip.test"},
    });
}

// ---------------------------------------------------------------- parsers (S2, S3)

TEST_CASE("S2 parse_jid accepts RFC 7622 forms and normalises them") {
    struct Row {
        std::string_view text;
        Jid jid;
    };
    const std::vector<Row> rows = {
        {"example.com", {"", "example.com", ""}},
        {"a@b", {"a", "b", ""}},
        {"a@b/c", {"a", "b", "c"}},
        {"a@b/c/d@e", {"a", "b", "c/d@e"}},
        {"example.com/r", {"", "example.com", "r"}},
        {"Alice@Example.COM./Res", {"alice", "example.com", "Res"}},
        {"a@[2001:DB8::1]", {"a", "[2001:db8::1]", ""}},
        {"\xc3\xa9@b\xc3\xbc\x63her.example", {"\xc3\xa9", "b\xc3\xbc\x63her.example", ""}},
        {"c\\3a\\net@example.com", {"c\\3a\\net", "example.com", ""}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        CHECK(jid_of(row.text) == row.jid);
    }
    CHECK(to_string(Jid{"a", "b", "c"}) == "a@b/c");
    CHECK(bare_string(Jid{"a", "b", "c"}) == "a@b");
    CHECK(to_string(Jid{"", "b", ""}) == "b");
}

TEST_CASE("S2 parse_jid refuses malformed JIDs") {
    const std::vector<std::string> rows = {
        "",
        "@example.com",
        "a@",
        "a@b/",
        "/r",
        "a b@example.com",
        "o'hara@example.com",
        "a@b@c",
        "a@exa mple.com",
        "a@exa..mple.com",
        "a@.",
        "a\r\n@example.com",
        "a@example.com/r\n",
        "a@example.com\x7f",
        "a\xff@example.com",
        "a@[2001:db8::1",
        "a@[zz]",
        std::string(1024, 'a') + "@example.com",
        "a@example.com/" + std::string(1024, 'r'),
        "a@" + std::string(1024, 'd'),
        std::string("a\0b@example.com", 15),
    };
    for (const auto& text : rows) {
        CAPTURE(text.substr(0, 40));
        const auto jid = parse_jid(text);
        REQUIRE_FALSE(jid.has_value());
        CHECK(jid.error().condition == Condition::jid_malformed);
        CHECK(clean_reason(jid.error().reason));
    }
    // The limit is inclusive.
    CHECK(parse_jid(std::string(1023, 'a') + "@example.com").has_value());
}

TEST_CASE("S2 parse_sip_uri decodes and normalises") {
    struct Row {
        std::string_view text;
        SipUri uri;
        std::string_view canonical;
    };
    const std::vector<Row> rows = {
        {"sip:alice@example.org",
         {false, "alice", "example.org", {}, "", {}},
         "sip:alice@example.org"},
        {"SIPS:Alice@Example.ORG:5061;Transport=TCP;gr=urn:uuid:f81d4fae-7dec",
         {true, "Alice", "example.org", 5061, "urn:uuid:f81d4fae-7dec", {{"transport", "TCP"}}},
         "sips:Alice@example.org:5061;transport=TCP;gr=urn:uuid:f81d4fae-7dec"},
        {"sip:%61lice@example.org",
         {false, "alice", "example.org", {}, "", {}},
         "sip:alice@example.org"},
        {"sip:example.org", {false, "", "example.org", {}, "", {}}, "sip:example.org"},
        {"sip:+1-212-555-1212@gateway.com;user=phone",
         {false, "+1-212-555-1212", "gateway.com", {}, "", {{"user", "phone"}}},
         "sip:+1-212-555-1212@gateway.com;user=phone"},
        {"sip:alice@[2001:DB8::1]:5070",
         {false, "alice", "[2001:db8::1]", 5070, "", {}},
         "sip:alice@[2001:db8::1]:5070"},
        {"sip:alice@192.0.2.4", {false, "alice", "192.0.2.4", {}, "", {}}, "sip:alice@192.0.2.4"},
        {"sip:a;b=c?d@example.org",
         {false, "a;b=c?d", "example.org", {}, "", {}},
         "sip:a;b=c?d@example.org"},
        {"sip:alice@example.org;lr",
         {false, "alice", "example.org", {}, "", {{"lr", ""}}},
         "sip:alice@example.org;lr"},
        {"sip:alice@example.org;gr",
         {false, "alice", "example.org", {}, "", {{"gr", ""}}},
         "sip:alice@example.org;gr"},
        {"sip:alice@example.org.",
         {false, "alice", "example.org", {}, "", {}},
         "sip:alice@example.org"},
        {"sip:alice@example.org:65535",
         {false, "alice", "example.org", 65535, "", {}},
         "sip:alice@example.org:65535"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        const auto uri = uri_of(row.text);
        CHECK(uri == row.uri);
        CHECK(to_string(uri) == row.canonical);
    }
}

TEST_CASE("S2 parse_sip_uri refuses malformed URIs") {
    const std::vector<std::string> rows = {
        "",
        "alice@example.org",
        "tel:+1234",
        "sip:",
        "sip:@example.org",
        "sip:alice@",
        "sip:alice:secret@example.org",
        "sip:al ice@example.org",
        "sip:al#ice@example.org",
        "sip:al\xc3\xa9@example.org",
        "sip:alice%2@example.org",
        "sip:alice@example.org?subject=hi",
        "sip:alice@exa_mple.org",
        "sip:alice@-bad.org",
        "sip:alice@example.org:0",
        "sip:alice@example.org:65536",
        "sip:alice@example.org:50a",
        "sip:alice@example.org:",
        "sip:alice@[::1",
        "sip:alice@example.org;;lr",
        "sip:alice@example.org;x=",
        "sip:alice@example.org;=x",
        "sip:alice@example.org;a=b=c",
        "sip:alice@example.org;lr;lr",
        "sip:alice@example.org;gr;gr=x",
        "sip:alice@example.org;gr=%0D%0A",
        "sip:alice@example.org\r\nVia: x",
    };
    for (const auto& text : rows) {
        CAPTURE(text);
        const auto uri = parse_sip_uri(text);
        REQUIRE_FALSE(uri.has_value());
        CHECK(uri.error().condition == Condition::jid_malformed);
        CHECK(clean_reason(uri.error().reason));
    }
}

TEST_CASE("S3 error reasons never carry CR, LF or raw bytes") {
    const auto crlf = parse_sip_uri("sip:alice\r\nVia: evil@example.org");
    REQUIRE_FALSE(crlf.has_value());
    CHECK(crlf.error().reason.find("\\x0d\\x0a") != std::string::npos);
    CHECK(clean_reason(crlf.error().reason));
    const auto binary = parse_jid("a\xff\xfe@example.com");
    REQUIRE_FALSE(binary.has_value());
    CHECK(clean_reason(binary.error().reason));
    const auto long_input = parse_jid(std::string(5000, 'x') + " @example.com");
    REQUIRE_FALSE(long_input.has_value());
    CHECK(clean_reason(long_input.error().reason));
    // A SIP user with CR/LF percent-encoded never reaches a JID or a header.
    const auto encoded = parse_sip_uri("sip:alice%0D%0AVia:%20x@example.org");
    REQUIRE_FALSE(encoded.has_value());
    CHECK(clean_reason(encoded.error().reason));
}

TEST_CASE("S2 UTF-8 and control-character checks") {
    for (const std::string_view good : {"", "abc", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"}) {
        CAPTURE(good);
        CHECK(is_valid_utf8(good));
    }
    for (const std::string_view bad :
         {"\x80", "\xc3", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
          "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "a\xc3(", "\xe2\x82"}) {
        CAPTURE(bad);
        CHECK_FALSE(is_valid_utf8(bad));
    }
    for (const std::string_view control : std::initializer_list<std::string_view>{
             "\r", "\n", "a\tb", "\x7f", "\xc2\x80", "\xc2\x9f", std::string_view("a\0b", 3)}) {
        CAPTURE(control);
        CHECK(contains_control(control));
    }
    for (const std::string_view plain : {"", "abc", "\xc2\xa0", "\xc3\xa9", " "}) {
        CAPTURE(plain);
        CHECK_FALSE(contains_control(plain));
    }
    CHECK(ascii_lowercase("AbC\xc3\x84") == "abc\xc3\x84");
}

// ---------------------------------------------------------------- X9 prompt

TEST_CASE("X9 a typed SIP address becomes a contact JID") {
    const std::vector<MapRow> rows = {
        {"alice@example.org", "alice*example.org@sip.test"},
        {"  <sip:alice@example.org>  ", "alice*example.org@sip.test"},
        {"sip:Alice@Example.org", "alice*example.org@sip.test"},
        {"john doe@example.org", "john\\20doe*example.org@sip.test"},
        {"a@b@example.org", "a\\40b*example.org@sip.test"},
        {"1001@192.0.2.10:5062", "1001*192.0.2.10\\3a5062@sip.test"},
        {"sips:bob@example.org", ""}, // refused below: sips without TLS
    };
    for (const auto& row : rows) {
        CAPTURE(row.from);
        const auto uri = parse_sip_address_prompt(row.from);
        REQUIRE(uri.has_value());
        const auto jid = sip_to_contact_jid(*uri, config);
        if (row.to.empty()) {
            CHECK_FALSE(jid.has_value());
            continue;
        }
        REQUIRE(jid.has_value());
        CHECK(to_string(*jid) == row.to);
    }
    for (const std::string_view bad : {"", "   ", "bob", "tel:+123", "@example.org",
                                       "a@exa mple.org", "a\nb@example.org", "<sip:a@b"}) {
        CAPTURE(bad);
        const auto uri = parse_sip_address_prompt(bad);
        REQUIRE_FALSE(uri.has_value());
        CHECK(clean_reason(uri.error().reason));
    }
}
