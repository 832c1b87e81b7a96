// Table-driven tests of message translation (STANDARDS.md M1, M3, M4, M6, M7,
// M8, M9, M11, M12, E4, S3, S5). CPIM, isComposing and HTML details have their
// own files.
#include "xsgw/translate/errors.hpp"
#include "xsgw/translate/message.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::translate {
// Internal linkage: each test file prints values its own way without ODR clashes.
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, Condition condition) {
    return out << to_string(condition);
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, MessageType type) {
    return out << to_string(type);
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, ChatState state) {
    return out << to_string(state);
}
} // namespace xsgw::translate

using namespace xsgw::translate;

namespace {

XmppMessage chat(std::string body) {
    XmppMessage message;
    message.id = "m1";
    message.from = "bob@jabber.example/phone";
    message.to = "alice*sip.example.org@sip.test";
    message.type = MessageType::chat;
    message.body = std::move(body);
    return message;
}

// The MESSAGE xmpp_to_sip must produce; fails the test otherwise.
SipMessageOut sent(const XmppMessage& message, const Limits& limits = {}) {
    const auto result = xmpp_to_sip(message, limits);
    INFO((result ? std::string() : result.error().text));
    REQUIRE(result.has_value());
    REQUIRE(std::holds_alternative<SipMessageOut>(*result));
    return std::get<SipMessageOut>(*result);
}

SipMessageIn incoming(std::string content_type, std::string body) {
    SipMessageIn message;
    message.content_type = std::move(content_type);
    message.body = std::move(body);
    message.call_id = "a84b4c76e66710@pc33.example.org";
    return message;
}

// The stanza sip_to_xmpp must produce; fails the test otherwise.
XmppMessage received(const SipMessageIn& message, const SipToXmppOptions& options = {},
                     const Limits& limits = {}) {
    const auto result = sip_to_xmpp(message, options, limits);
    INFO((result ? std::string() : result.error().reason));
    REQUIRE(result.has_value());
    return *result;
}

// The response sip_to_xmpp must refuse with.
SipStatus refused(const SipMessageIn& message, const Limits& limits = {}) {
    const auto result = sip_to_xmpp(message, {}, limits);
    REQUIRE(!result.has_value());
    return result.error();
}

bool is_word(std::string_view text) {
    // RFC 3261 §25.1 word.
    constexpr std::string_view extra = "-.!%*_+`'~()<>:\\\"/[]?{}";
    for (const char c : text) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && extra.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return !text.empty();
}

bool is_safe_header(std::string_view text) {
    if (!is_valid_utf8(text)) {
        return false;
    }
    std::size_t pos = 0;
    while (pos < text.size()) {
        const char32_t c = *next_code_point(text, pos);
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == 0x2028 || c == 0x2029) {
            return false;
        }
    }
    return text.empty() || (text.front() != ' ' && text.back() != ' ');
}

// Fit for an XMPP stanza: valid UTF-8, only XML 1.0 characters, no CR.
bool is_stanza_text(std::string_view text) {
    if (!is_valid_utf8(text)) {
        return false;
    }
    std::size_t pos = 0;
    while (pos < text.size()) {
        const char32_t c = *next_code_point(text, pos);
        const bool ok = c == 0x9 || c == 0xA || (c >= 0x20 && c <= 0xD7FF) ||
                        (c >= 0xE000 && c <= 0xFFFD) || c >= 0x10000;
        if (!ok) {
            return false;
        }
    }
    return true;
}

// A small deterministic generator for property tests.
class Random {
public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint32_t next() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        return static_cast<std::uint32_t>(state_);
    }
    std::string bytes(std::size_t max_length) {
        std::string out(next() % (max_length + 1), '\0');
        for (auto& c : out) {
            c = static_cast<char>(next() & 0xFF);
        }
        return out;
    }

private:
    std::uint64_t state_;
};

} // namespace

// ---------------------------------------------------------------------------
// XMPP -> SIP

TEST_CASE("M1 chat message with a body -> MESSAGE text/plain;charset=UTF-8") {
    const auto out = sent(chat("Hello, Alice! \xE2\x98\xBA"));
    CHECK(out.content_type == "text/plain;charset=UTF-8");
    CHECK(out.body == "Hello, Alice! \xE2\x98\xBA");
    CHECK(out.subject.empty());
    CHECK(out.content_language.empty());
    CHECK(out.call_id_hint.empty());
    CHECK_FALSE(out.notification);
}

TEST_CASE("M1 normal and headline messages with a body are sent as well") {
    for (const auto type : {MessageType::normal, MessageType::chat, MessageType::headline}) {
        CAPTURE(type);
        auto message = chat("hi");
        message.type = type;
        CHECK(sent(message).body == "hi");
    }
}

TEST_CASE("M1 subject -> Subject, thread -> Call-ID, xml:lang -> Content-Language") {
    auto message = chat("Wherefore art thou?");
    message.subject = "Balcony";
    message.thread = "e0ffe42b28561960c6b12b944a092794b9683a38";
    message.lang = "en-GB";
    const auto out = sent(message);
    CHECK(out.subject == "Balcony");
    CHECK(out.call_id_hint == "e0ffe42b28561960c6b12b944a092794b9683a38");
    CHECK(out.content_language == "en-GB");
}

TEST_CASE("M1 the Call-ID from a thread is SIP word syntax") {
    struct Row {
        std::string_view thread;
        std::string_view call_id;
    };
    const std::vector<Row> rows = {
        {"abc-123_x.y", "abc-123_x.y"},
        {"with space", "with%20space"},
        {"a@b", "a%40b"},
        {"100%", "100%25"},
        {"semi;colon", "semi%3Bcolon"},
        {"crlf\r\nX: y", "crlf%0D%0AX%3A%20y"},
        {"caf\xC3\xA9", "caf%C3%A9"},
        {std::string_view("nul\0!", 5), "nul%00!"},
        {"", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.thread);
        const auto call_id = call_id_from_thread(row.thread);
        CHECK(call_id == row.call_id);
        CHECK((call_id.empty() || is_word(call_id)));
    }
}

TEST_CASE("M1 a long thread becomes a bounded Call-ID that still tells threads apart") {
    const std::string long_a(300, 'a');
    const std::string long_b = std::string(299, 'a') + "b";
    const auto a = call_id_from_thread(long_a);
    const auto b = call_id_from_thread(long_b);
    CHECK(a.size() <= 128);
    CHECK(is_word(a));
    CHECK(a != b);
    CHECK(a == call_id_from_thread(long_a));
    // An escape is never split by the cut.
    const auto spaces = call_id_from_thread(std::string(200, ' '));
    CHECK(spaces.size() <= 128);
    CHECK(spaces.find("%2-") == std::string::npos);
    CHECK(spaces.find("%-") == std::string::npos);
}

TEST_CASE("M1 language tags: valid ones pass, anything else is left out") {
    struct Row {
        std::string_view lang;
        std::string_view content_language;
    };
    const std::vector<Row> rows = {
        {"en", "en"},
        {"en-US", "en-US"},
        {"es-419", "es-419"},
        {"zh-Hant-TW", "zh-Hant-TW"},
        {"x-klingon", "x-klingon"},
        {" de ", "de"},
        {"", ""},
        {"en_US", ""},
        {"en\r\nX: 1", ""},
        {"toolongprimary", ""},
        {"1en", ""},
        {"en-", ""},
        {"-en", ""},
        {"en--us", ""},
        {"fr, de", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.lang);
        CHECK(content_language_from_lang(row.lang) == row.content_language);
    }
}

TEST_CASE("M3 body-less stanzas never become text MESSAGEs") {
    auto receipt = chat("");
    receipt.receipt_for = "m0";
    auto subject_only = chat("");
    subject_only.subject = "topic";
    auto empty = chat("");
    auto receipt_request_without_body = chat("");
    receipt_request_without_body.receipt_request = true;
    for (const auto& message : {receipt, subject_only, empty, receipt_request_without_body}) {
        const auto result = xmpp_to_sip(message);
        REQUIRE(result.has_value());
        REQUIRE(std::holds_alternative<NoMessage>(*result));
        CHECK(std::get<NoMessage>(*result) == NoMessage::no_content);
    }
}

TEST_CASE("M3 a chat state alone becomes an isComposing MESSAGE, never a text one") {
    auto message = chat("");
    message.chat_state = ChatState::composing;
    message.thread = "t1";
    const auto out = sent(message);
    CHECK(out.content_type == "application/im-iscomposing+xml");
    CHECK(out.notification);
    CHECK(out.call_id_hint == "t1");
    const auto parsed = parse_iscomposing(out.body);
    REQUIRE(parsed.has_value());
    CHECK(parsed->state == ComposingState::active);
    CHECK(parsed->refresh == default_composing_refresh);
    CHECK(parsed->content_type == "text/plain");
}

TEST_CASE("M8 XMPP chat states -> isComposing states") {
    struct Row {
        ChatState chat_state;
        ComposingState state;
    };
    const std::vector<Row> rows = {
        {ChatState::composing, ComposingState::active}, {ChatState::active, ComposingState::idle},
        {ChatState::paused, ComposingState::idle},      {ChatState::inactive, ComposingState::idle},
        {ChatState::gone, ComposingState::idle},
    };
    for (const auto& row : rows) {
        CAPTURE(row.chat_state);
        auto message = chat("");
        message.chat_state = row.chat_state;
        const auto parsed = parse_iscomposing(sent(message).body);
        REQUIRE(parsed.has_value());
        CHECK(parsed->state == row.state);
        CHECK(parsed->refresh.has_value() == (row.state == ComposingState::active));
    }
}

TEST_CASE("M8 a message with a body sends the text only, never its chat state") {
    auto message = chat("typed it");
    message.chat_state = ChatState::active;
    const auto out = sent(message);
    CHECK(out.content_type == "text/plain;charset=UTF-8");
    CHECK(out.body == "typed it");
}

TEST_CASE("M11 groupchat -> feature-not-implemented") {
    auto message = chat("hello room");
    message.type = MessageType::groupchat;
    const auto result = xmpp_to_sip(message);
    REQUIRE(!result.has_value());
    CHECK(result.error().condition == Condition::feature_not_implemented);
    CHECK(!result.error().text.empty());
    message.body.clear();
    message.chat_state = ChatState::composing;
    CHECK(!xmpp_to_sip(message).has_value());
}

TEST_CASE("E4 type=error is never forwarded and never answered with an error") {
    auto message = chat("bounced text");
    message.type = MessageType::error;
    const auto result = xmpp_to_sip(message);
    REQUIRE(result.has_value()); // no error to send back
    REQUIRE(std::holds_alternative<NoMessage>(*result));
    CHECK(std::get<NoMessage>(*result) == NoMessage::error_stanza);
}

TEST_CASE("M4 a body over the configured limit -> policy-violation (S5)") {
    Limits limits;
    limits.max_body_bytes = 10;
    CHECK(sent(chat("0123456789"), limits).body == "0123456789");
    const auto result = xmpp_to_sip(chat("0123456789a"), limits);
    REQUIRE(!result.has_value());
    CHECK(result.error().condition == Condition::policy_violation);
}

TEST_CASE("M4 a subject over the limit -> policy-violation") {
    Limits limits;
    limits.max_subject_bytes = 5;
    auto message = chat("x");
    message.subject = "12345";
    CHECK(sent(message, limits).subject == "12345");
    message.subject = "123456";
    const auto result = xmpp_to_sip(message, limits);
    REQUIRE(!result.has_value());
    CHECK(result.error().condition == Condition::policy_violation);
}

TEST_CASE("S3 Subject from XMPP carries no CR, LF, NUL or other controls") {
    struct Row {
        std::string subject;
        std::string header;
    };
    const std::vector<Row> rows = {
        {"Plain", "Plain"},
        {"Two\r\nVia: SIP/2.0/UDP evil", "Two Via: SIP/2.0/UDP evil"},
        {"lf\nonly", "lf only"},
        {std::string("nul\0byte", 8), "nulbyte"},
        {"tab\there", "tab here"},
        {"esc\x1b[2J", "esc[2J"},
        {"c1\xC2\x85next", "c1 next"},
        {"ls\xE2\x80\xA8ps\xE2\x80\xA9", "ls ps"},
        {"  trimmed  ", "trimmed"},
        {"\r\n", ""},
        {"bad \xC3\x28 utf8", "bad \xEF\xBF\xBD( utf8"},
        {"caf\xC3\xA9", "caf\xC3\xA9"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.subject);
        auto message = chat("x");
        message.subject = row.subject;
        const auto out = sent(message);
        CHECK(out.subject == row.header);
        CHECK(is_safe_header(out.subject));
    }
}

TEST_CASE("S3 a body that is not valid UTF-8 is never forwarded to SIP") {
    const auto result = xmpp_to_sip(chat("bad \xC0\xAF overlong"));
    REQUIRE(!result.has_value());
    CHECK(result.error().condition == Condition::bad_request);
}

TEST_CASE("S3 property: every SIP header value from any stanza is safe") {
    Random random(0x5eed);
    for (int i = 0; i < 2000; ++i) {
        XmppMessage message = chat("body");
        message.subject = random.bytes(40);
        message.thread = random.bytes(200);
        message.lang = random.bytes(12);
        if (i % 3 == 0) {
            message.body.clear();
            message.chat_state = ChatState::composing;
        }
        const auto result = xmpp_to_sip(message);
        REQUIRE(result.has_value());
        const auto& out = std::get<SipMessageOut>(*result);
        CHECK(is_safe_header(out.subject));
        CHECK(is_safe_header(out.content_language));
        CHECK((out.call_id_hint.empty() || is_word(out.call_id_hint)));
        CHECK(out.call_id_hint.size() <= 128);
    }
}

// ---------------------------------------------------------------------------
// SIP -> XMPP

TEST_CASE("M1 SIP MESSAGE text/plain -> XMPP chat body") {
    auto in = incoming("text/plain;charset=UTF-8", "Hello from SIP");
    in.subject = "Greeting";
    in.content_language = "fr-CA, en";
    const auto out = received(in);
    CHECK(out.type == MessageType::chat);
    CHECK(out.body == "Hello from SIP");
    CHECK(out.subject == "Greeting");
    CHECK(out.lang == "fr-CA");
    CHECK(out.thread == "a84b4c76e66710@pc33.example.org");
    CHECK(out.xhtml.empty());
    CHECK_FALSE(out.chat_state.has_value());
    CHECK(out.id.empty());
    CHECK(out.from.empty());
    CHECK(out.to.empty());
}

TEST_CASE("M1 Content-Language -> xml:lang takes the first valid tag") {
    struct Row {
        std::string_view header;
        std::string_view lang;
    };
    const std::vector<Row> rows = {
        {"en", "en"}, {"da, en-GB", "da"}, {" , de", "de"}, {"bad_tag, it", "it"},
        {"", ""},     {"\r\n", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.header);
        CHECK(lang_from_content_language(row.header) == row.lang);
    }
}

TEST_CASE("M1 Call-ID -> thread only when it is clean") {
    CHECK(thread_from_call_id("abc@host") == "abc@host");
    CHECK(thread_from_call_id(" abc ") == "abc");
    CHECK(thread_from_call_id("a\x01"
                              "b")
              .empty());
    CHECK(thread_from_call_id("a\xFF").empty());
    CHECK(thread_from_call_id(std::string(300, 'x')).empty());
}

TEST_CASE("M7 SIP messages are type chat by default, normal when configured") {
    const auto in = incoming("text/plain", "hi");
    CHECK(received(in).type == MessageType::chat);
    SipToXmppOptions options;
    options.type = MessageType::normal;
    CHECK(received(in, options).type == MessageType::normal);
}

TEST_CASE("M7 chat-state notifications are type chat even when normal is configured") {
    SipToXmppOptions options;
    options.type = MessageType::normal;
    const auto in = incoming("application/im-iscomposing+xml",
                             "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'>"
                             "<state>active</state></isComposing>");
    const auto out = received(in, options);
    CHECK(out.type == MessageType::chat);
    CHECK(out.chat_state == ChatState::composing);
    CHECK(out.body.empty());
}

TEST_CASE("M8 SIP isComposing -> chat states: active -> composing, idle -> paused") {
    const auto active = received(
        incoming("application/im-iscomposing+xml",
                 "<?xml version='1.0' encoding='UTF-8'?>\n"
                 "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'>"
                 "<state>active</state><contenttype>text/plain</contenttype><refresh>60</refresh>"
                 "</isComposing>"));
    CHECK(active.chat_state == ChatState::composing);
    const auto idle = received(
        incoming("Application/IM-IsComposing+XML",
                 "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>idle</state>"
                 "<lastactive>2003-01-27T10:43:00Z</lastactive></isComposing>"));
    CHECK(idle.chat_state == ChatState::paused);
    CHECK(idle.body.empty());
}

TEST_CASE("M8 a malformed isComposing body -> 400") {
    const auto status = refused(incoming("application/im-iscomposing+xml", "<isComposing><state>"));
    CHECK(status.code == 400);
}

TEST_CASE("M6 text/plain charsets: UTF-8 or none, ASCII, Latin-1 and windows-1252 transcoded") {
    struct Row {
        std::string_view content_type;
        std::string body;
        std::string expected;
    };
    const std::vector<Row> rows = {
        {"text/plain;charset=UTF-8", "caf\xC3\xA9", "caf\xC3\xA9"},
        {"text/plain; charset=\"utf-8\"", "caf\xC3\xA9", "caf\xC3\xA9"},
        {"text/plain", "caf\xC3\xA9", "caf\xC3\xA9"},
        {"TEXT/PLAIN; CHARSET=US-ASCII", "plain", "plain"},
        {"text/plain;charset=ISO-8859-1", "caf\xE9", "caf\xC3\xA9"},
        {"text/plain;charset=latin1",
         "\xA3"
         "5",
         "\xC2\xA3"
         "5"},
        {"text/plain;charset=windows-1252", "\x80 \x93q\x94",
         "\xE2\x82\xAC \xE2\x80\x9Cq\xE2\x80\x9D"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.content_type);
        CHECK(received(incoming(std::string(row.content_type), row.body)).body == row.expected);
    }
}

TEST_CASE("M6 other charsets -> 415 with Accept; bytes invalid in the charset -> 400") {
    const auto unsupported = refused(incoming("text/plain;charset=Shift_JIS", "\x82\xa0"));
    CHECK(unsupported.code == 415);
    CHECK(unsupported.accept == accepted_content_types);
    CHECK(refused(incoming("text/plain;charset=utf-8", "bad \xC3\x28")).code == 400);
    CHECK(refused(incoming("text/plain", "\xED\xA0\x80 surrogate")).code == 400);
    CHECK(refused(incoming("text/plain;charset=us-ascii", "caf\xE9")).code == 400);
    CHECK(refused(incoming("text/plain;charset=windows-1252", "undefined \x81")).code == 400);
}

TEST_CASE("M6 anything but text/plain, text/html, message/cpim, isComposing -> 415 + Accept") {
    for (const std::string_view type :
         {"application/octet-stream", "image/png", "message/imdn+xml", "multipart/mixed;boundary=x",
          "text/enriched", "application/vnd.gsma.rcs-ft-http+xml"}) {
        CAPTURE(type);
        const auto status = refused(incoming(std::string(type), "data"));
        CHECK(status.code == 415);
        CHECK(status.accept ==
              "text/plain, text/html, message/cpim, application/im-iscomposing+xml");
        CHECK(!status.reason.empty());
    }
}

TEST_CASE("M6 a malformed Content-Type -> 400; a missing one is taken as text/plain") {
    CHECK(refused(incoming("text", "x")).code == 400);
    CHECK(refused(incoming("text/plain; charset", "x")).code == 400);
    CHECK(refused(incoming("text/plain; charset=\"utf-8", "x")).code == 400);
    CHECK(refused(incoming("/plain", "x")).code == 400);
    CHECK(received(incoming("", "no type")).body == "no type");
}

TEST_CASE("M6 a MESSAGE without content -> 400") {
    CHECK(refused(incoming("text/plain", "")).code == 400);
    CHECK(refused(incoming("text/html", "<p> </p>")).code == 400);
}

TEST_CASE("M6 text bodies become stanza text: CRLF -> LF, XML-illegal controls dropped") {
    const auto out = received(incoming("text/plain", "a\r\nb\rc\x01\x0b\x7f"
                                                     "d\xEF\xBF\xBF"));
    CHECK(out.body == "a\nb\nc\x7f"
                      "d");
    CHECK(is_stanza_text(out.body));
}

TEST_CASE("M6 text/html -> XHTML-IM plus a plain body") {
    const auto out = received(incoming("text/html;charset=UTF-8",
                                       "<html><body><p>Hi <b>Bob</b>!<br>Bye</p></body></html>"));
    CHECK(out.body == "Hi Bob!\nBye");
    CHECK(out.xhtml == "<p>Hi <strong>Bob</strong>!<br/>Bye</p>");
}

TEST_CASE("M6 text/html in Latin-1 is transcoded before conversion") {
    const auto out = received(incoming("text/html; charset=iso-8859-1", "<i>caf\xE9</i>"));
    CHECK(out.body == "caf\xC3\xA9");
    CHECK(out.xhtml == "<em>caf\xC3\xA9</em>");
}

TEST_CASE("M6 message/cpim is unwrapped: text/plain inside") {
    const std::string cpim = "From: MR SANDERS <im:piglet@100akerwood.com>\r\n"
                             "To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n"
                             "DateTime: 2000-12-13T13:40:00-08:00\r\n"
                             "Subject: the weather will be fine today\r\n"
                             "\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "\r\n"
                             "Here is the text of my message.";
    const auto out = received(incoming("message/cpim", cpim));
    CHECK(out.body == "Here is the text of my message.");
    CHECK(out.subject == "the weather will be fine today");
}

TEST_CASE("M6 message/cpim: the SIP Subject wins over the CPIM one") {
    auto in = incoming("Message/CPIM", "Subject: inner\r\n\r\nContent-Type: text/plain\r\n\r\nx");
    in.subject = "outer";
    CHECK(received(in).subject == "outer");
}

TEST_CASE("M6 message/cpim with text/html inside -> XHTML-IM") {
    const auto out = received(incoming(
        "message/cpim", "From: <sip:a@b>\r\n\r\nContent-Type: text/html\r\n\r\n<em>hey</em> you"));
    CHECK(out.body == "hey you");
    CHECK(out.xhtml == "<em>hey</em> you");
}

TEST_CASE("M8 message/cpim with isComposing inside -> chat state") {
    const auto out = received(
        incoming("message/cpim",
                 "From: <sip:a@b>\r\n\r\nContent-Type: application/im-iscomposing+xml\r\n\r\n"
                 "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>active</state>"
                 "</isComposing>"));
    CHECK(out.chat_state == ChatState::composing);
    CHECK(out.body.empty());
}

TEST_CASE("M6 message/cpim: nested CPIM, other inner types and encodings -> 415") {
    CHECK(refused(incoming("message/cpim",
                           "From: <sip:a@b>\r\n\r\nContent-Type: message/cpim\r\n\r\n"
                           "From: <sip:c@d>\r\n\r\nContent-Type: text/plain\r\n\r\nx"))
              .code == 415);
    CHECK(refused(incoming("message/cpim",
                           "From: <sip:a@b>\r\n\r\nContent-Type: message/imdn+xml\r\n\r\n<imdn/>"))
              .code == 415);
    CHECK(refused(incoming("message/cpim", "From: <sip:a@b>\r\n\r\nContent-Type: text/plain\r\n"
                                           "Content-Transfer-Encoding: base64\r\n\r\naGk="))
              .code == 415);
}

TEST_CASE("M6 malformed message/cpim -> 400") {
    CHECK(refused(incoming("message/cpim", "From: <sip:a@b>")).code == 400);
    CHECK(refused(incoming("message/cpim", "no colon here\r\n\r\n\r\nx")).code == 400);
    CHECK(refused(incoming("message/cpim",
                           "Require: imdn.Disposition-Notification\r\n\r\nContent-Type: "
                           "text/plain\r\n\r\nx"))
              .code == 400);
}

TEST_CASE("M4 a SIP body over the configured limit -> 413 (S5)") {
    Limits limits;
    limits.max_body_bytes = 8;
    CHECK(received(incoming("text/plain", "12345678"), {}, limits).body == "12345678");
    CHECK(refused(incoming("text/plain", "123456789"), limits).code == 413);
    // Latin-1 grows when transcoded: the stanza limit still holds.
    CHECK(refused(incoming("text/plain;charset=latin1", "\xE9\xE9\xE9\xE9\xE9"), limits).code ==
          413);
    limits.max_body_bytes = 1 << 20;
    limits.max_subject_bytes = 3;
    auto in = incoming("text/plain", "x");
    in.subject = "long";
    CHECK(refused(in, limits).code == 413);
}

TEST_CASE("S3 SIP Subject becomes a clean XMPP subject") {
    auto in = incoming("text/plain", "x");
    in.subject = "Re:\x01 lunch\xFF";
    CHECK(received(in).subject == "Re: lunch\xEF\xBF\xBD");
}

TEST_CASE("S3 every error status from sip_to_xmpp has a safe reason phrase") {
    Random random(42);
    const std::vector<std::string> types = {
        "text/plain",
        "text/plain;charset=utf-8",
        "text/html",
        "message/cpim",
        "application/im-iscomposing+xml",
        "text/plain;charset=koi8-r",
        "x/y",
        "garbage",
        "text/plain;charset=\"\xFF\r\n\"",
    };
    for (int i = 0; i < 3000; ++i) {
        auto in = incoming(types[random.next() % types.size()], random.bytes(64));
        in.subject = random.bytes(16);
        in.content_language = random.bytes(8);
        in.call_id = random.bytes(16);
        const auto result = sip_to_xmpp(in);
        if (result) {
            CHECK(is_stanza_text(result->body));
            CHECK(is_safe_header(result->subject));
            CHECK((result->lang.empty() || is_language_tag(result->lang)));
            CHECK(is_stanza_text(result->thread));
            CHECK((result->xhtml.empty() || is_well_formed_xhtml_body(result->xhtml)));
        } else {
            CHECK(result.error().code >= 400);
            CHECK(result.error().code <= 499);
            CHECK(is_safe_header(result.error().reason));
            CHECK(!result.error().reason.empty());
        }
    }
}

// ---------------------------------------------------------------------------
// Receipts and bounces

TEST_CASE("M9 a receipt is owed only for SIP 200, never 202") {
    auto message = chat("please confirm");
    message.receipt_request = true;
    const auto receipt = receipt_for_sip_response(message, 200);
    REQUIRE(receipt.has_value());
    CHECK(receipt->receipt_for == "m1");
    CHECK(receipt->from == message.to);
    CHECK(receipt->to == message.from);
    CHECK(receipt->body.empty());
    CHECK(receipt->id.empty());
    CHECK(receipt->type == MessageType::chat);
    for (const int status : {202, 180, 204, 404, 408, 480, 500, 603}) {
        CAPTURE(status);
        CHECK_FALSE(receipt_for_sip_response(message, status).has_value());
    }
}

TEST_CASE("M9 no receipt without a request, an id or a body") {
    auto message = chat("text");
    CHECK_FALSE(receipt_for_sip_response(message, 200).has_value());
    message.receipt_request = true;
    message.id.clear();
    CHECK_FALSE(receipt_for_sip_response(message, 200).has_value());
    message.id = "x";
    message.body.clear();
    CHECK_FALSE(receipt_for_sip_response(message, 200).has_value());
}

TEST_CASE("M12 an XMPP bounce becomes a short MESSAGE notice marked as a notification") {
    const auto notice =
        sip_notice_for_xmpp_error({Condition::recipient_unavailable, "Offline\r\nX: y", {}});
    CHECK(notice.content_type == "text/plain;charset=UTF-8");
    CHECK(notice.body ==
          "Your message could not be delivered: recipient unavailable (Offline X: y).");
    CHECK(notice.notification);
    const auto plain = sip_notice_for_xmpp_error({Condition::item_not_found, "", {}});
    CHECK(plain.body == "Your message could not be delivered: item not found.");
}

// ---------------------------------------------------------------------------
// Enumerations and text primitives

TEST_CASE("M1 message types and chat states round-trip through their names") {
    for (const auto type : {MessageType::normal, MessageType::chat, MessageType::headline,
                            MessageType::groupchat, MessageType::error}) {
        CHECK(parse_message_type(to_string(type)) == type);
    }
    CHECK(parse_message_type("") == MessageType::normal);
    CHECK_FALSE(parse_message_type("Chat").has_value());
    for (const auto state : {ChatState::active, ChatState::composing, ChatState::paused,
                             ChatState::inactive, ChatState::gone}) {
        CHECK(parse_chat_state(to_string(state)) == state);
    }
    CHECK_FALSE(parse_chat_state("typing").has_value());
}

TEST_CASE("S3 UTF-8 validation refuses overlongs, surrogates, truncation and > U+10FFFF") {
    CHECK(is_valid_utf8(""));
    CHECK(is_valid_utf8("ascii"));
    CHECK(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
    CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));
    for (const std::string_view bad :
         {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC3", "\xE2\x82",
          "\x80", "\xFE", "\xF8\x88\x80\x80\x80"}) {
        CAPTURE(bad);
        CHECK_FALSE(is_valid_utf8(bad));
    }
}

TEST_CASE("S3 header_safe_text keeps within max_bytes on a character boundary") {
    CHECK(header_safe_text("abc def", 5) == "abc d");
    CHECK(header_safe_text("abc def", 4) == "abc");
    CHECK(header_safe_text("\xC3\xA9\xC3\xA9", 3) == "\xC3\xA9");
}

TEST_CASE("M6 Content-Type parsing") {
    const auto media = parse_media_type(" Text/Plain ; Charset = \"UTF-8\" ; format=flowed ");
    REQUIRE(media.has_value());
    CHECK(media->type == "text");
    CHECK(media->subtype == "plain");
    CHECK(media->is("text/plain"));
    CHECK(media->param("charset") == "UTF-8");
    CHECK(media->param("FORMAT") == "flowed");
    CHECK(media->param("missing").empty());
    const auto quoted = parse_media_type("text/plain;x=\"a\\\"b;c\"");
    REQUIRE(quoted.has_value());
    CHECK(quoted->param("x") == "a\"b;c");
    for (const std::string_view bad :
         {"", "text", "text/", "/plain", "text/plain x", "text/plain;=x",
          "text/plain;a=", "text/plain;a=\"open", "te xt/plain", "text/plain;a=\"\r\n\""}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_media_type(bad).has_value());
    }
}

TEST_CASE("M6 decode_charset reports unsupported charsets apart from invalid bytes") {
    bool supported = false;
    CHECK_FALSE(decode_charset("x", "ebcdic", &supported).has_value());
    CHECK_FALSE(supported);
    CHECK_FALSE(decode_charset("\xFF", "utf-8", &supported).has_value());
    CHECK(supported);
    CHECK(decode_charset("\xFF", "latin1") == "\xC3\xBF");
}

TEST_CASE("M4 the subject limit holds even when the limit falls inside a character") {
    Limits limits;
    limits.max_subject_bytes = 5;
    auto message = chat("x");
    message.subject = "12345\xC3\xA9"; // 7 bytes: must not be cut to 5 and accepted
    CHECK_FALSE(xmpp_to_sip(message, limits).has_value());
    auto in = incoming("text/plain", "x");
    in.subject = "12345\xC3\xA9";
    CHECK(refused(in, limits).code == 413);
    CHECK(refused(incoming("message/cpim", "Subject: 12345\xC3\xA9\r\n\r\n\r\nx"), limits).code ==
          413);
}

TEST_CASE("M1 Call-ID -> thread can be switched off") {
    SipToXmppOptions options;
    options.call_id_as_thread = false;
    CHECK(received(incoming("text/plain", "x"), options).thread.empty());
}
