// Table-driven tests of the error mappings (STANDARDS.md E1-E4, M4, M5, S3):
// every row of E1 and E2, every SIP status 100..699, every condition's type.
#include "xsgw/translate/errors.hpp"
#include "xsgw/translate/message.hpp"

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
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, ErrorType type) {
    return out << to_string(type);
}
} // namespace xsgw::translate

using namespace xsgw::translate;

namespace {

// Safe for a SIP reason phrase or a stanza <text> (S3).
bool is_safe_line(std::string_view text) {
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
    return true;
}

struct E1Row {
    Condition condition;
    XmppErrorContext context;
    int code;
};

XmppErrorContext full_jid() {
    XmppErrorContext context;
    context.full_jid = true;
    return context;
}

XmppErrorContext global() {
    XmppErrorContext context;
    context.global = true;
    return context;
}

XmppErrorContext unresolvable() {
    XmppErrorContext context;
    context.unresolvable = true;
    return context;
}

XmppErrorContext contact(std::string uri) {
    XmppErrorContext context;
    context.sip_contact = std::move(uri);
    return context;
}

std::vector<XmppErrorContext> every_context() {
    std::vector<XmppErrorContext> contexts;
    for (int bits = 0; bits < 16; ++bits) {
        XmppErrorContext context;
        context.full_jid = (bits & 1) != 0;
        context.global = (bits & 2) != 0;
        context.unresolvable = (bits & 4) != 0;
        if ((bits & 8) != 0) {
            context.sip_contact = "sip:new@example.org";
        }
        contexts.push_back(context);
    }
    return contexts;
}

} // namespace

TEST_CASE("E1 XMPP condition -> SIP status, every row of the table") {
    const std::vector<E1Row> rows = {
        {Condition::bad_request, {}, 400},
        {Condition::conflict, {}, 400},
        {Condition::feature_not_implemented, full_jid(), 405},
        {Condition::feature_not_implemented, {}, 501},
        {Condition::forbidden, {}, 403},
        {Condition::forbidden, global(), 603},
        {Condition::gone, contact("sip:romeo@afterlife.example.net"), 301},
        {Condition::gone, {}, 410},
        {Condition::internal_server_error, {}, 500},
        {Condition::item_not_found, {}, 404},
        {Condition::item_not_found, global(), 604},
        {Condition::jid_malformed, {}, 400},
        {Condition::not_acceptable, {}, 406},
        {Condition::not_acceptable, global(), 606},
        {Condition::not_allowed, {}, 403},
        {Condition::not_authorized, {}, 401},
        {Condition::policy_violation, {}, 403},
        {Condition::recipient_unavailable, {}, 480},
        {Condition::recipient_unavailable, global(), 600},
        {Condition::redirect, {}, 302},
        {Condition::redirect, contact("sip:other@example.org"), 302},
        {Condition::registration_required, {}, 407},
        {Condition::remote_server_not_found, {}, 404},
        {Condition::remote_server_not_found, unresolvable(), 408},
        {Condition::remote_server_timeout, {}, 408},
        {Condition::resource_constraint, {}, 500},
        {Condition::service_unavailable, {}, 403},
        {Condition::service_unavailable, full_jid(), 405},
        {Condition::subscription_required, {}, 400},
        {Condition::undefined_condition, {}, 400},
        {Condition::unexpected_request, {}, 491},
    };
    for (const auto& row : rows) {
        CAPTURE(row.condition);
        CAPTURE(row.context.full_jid);
        CAPTURE(row.context.global);
        CAPTURE(row.context.unresolvable);
        CHECK(to_sip_status(row.condition, {}, row.context).code == row.code);
    }
}

TEST_CASE("E1 feature-not-implemented is 405 for a full JID and 501 for a bare JID") {
    CHECK(to_sip_status(Condition::feature_not_implemented, {}, full_jid()).code == 405);
    CHECK(to_sip_status(Condition::feature_not_implemented).code == 501);
}

TEST_CASE("E1 service-unavailable is never 503, whatever the context") {
    for (const auto& context : every_context()) {
        const int code = to_sip_status(Condition::service_unavailable, {}, context).code;
        CHECK((code == 403 || code == 405));
    }
}

TEST_CASE("E1 no condition in any context becomes 503, a 1xx/2xx, or leaves 300..699") {
    for (const auto condition : all_conditions) {
        for (const auto& context : every_context()) {
            CAPTURE(condition);
            const int code = to_sip_status(condition, {}, context).code;
            CHECK(code >= 300);
            CHECK(code <= 699);
            CHECK(code != 503);
        }
    }
}

TEST_CASE("E1 gone carries the new address as Contact of a 301, else 410") {
    const auto moved = to_sip_status(Condition::gone, {}, contact("sip:romeo@afterlife.example"));
    CHECK(moved.code == 301);
    CHECK(moved.contact == "sip:romeo@afterlife.example");
    const auto gone = to_sip_status(Condition::gone);
    CHECK(gone.code == 410);
    CHECK(gone.contact.empty());
}

TEST_CASE("E1 6xx only when the bridge says the answer holds for every device") {
    CHECK(to_sip_status(Condition::forbidden).code == 403);
    CHECK(to_sip_status(Condition::item_not_found).code == 404);
    CHECK(to_sip_status(Condition::not_acceptable).code == 406);
    CHECK(to_sip_status(Condition::recipient_unavailable).code == 480);
    CHECK(to_sip_status(Condition::forbidden, {}, global()).code == 603);
    CHECK(to_sip_status(Condition::item_not_found, {}, global()).code == 604);
    CHECK(to_sip_status(Condition::not_acceptable, {}, global()).code == 606);
    CHECK(to_sip_status(Condition::recipient_unavailable, {}, global()).code == 600);
}

TEST_CASE("E1 remote-server-not-found is 404 for no such domain, 408 when unresolvable") {
    CHECK(to_sip_status(Condition::remote_server_not_found).code == 404);
    CHECK(to_sip_status(Condition::remote_server_not_found, {}, unresolvable()).code == 408);
}

TEST_CASE("E1 the reason phrase is the XMPP text made safe, else the standard phrase") {
    CHECK(to_sip_status(Condition::item_not_found).reason == "Not Found");
    CHECK(to_sip_status(Condition::recipient_unavailable).reason == "Temporarily Unavailable");
    CHECK(to_sip_status(Condition::item_not_found, "No such user").reason == "No such user");
    const auto status = to_sip_status(Condition::forbidden, "Blocked\r\nX-Injected: 1");
    CHECK(status.reason == "Blocked X-Injected: 1");
    CHECK(to_sip_status(Condition::forbidden, " \r\n\t ").reason == "Forbidden");
}

TEST_CASE("E1 a Contact that would break the header is cleaned (S3)") {
    const auto status = to_sip_status(Condition::redirect, {}, contact("sip:a@b\r\nVia: x"));
    CHECK(status.contact.find('\r') == std::string::npos);
    CHECK(status.contact.find('\n') == std::string::npos);
}

TEST_CASE("E2 SIP status -> XMPP condition, every row of the table") {
    struct Row {
        int status;
        Condition condition;
    };
    const std::vector<Row> rows = {
        {300, Condition::redirect},
        {301, Condition::gone},
        {302, Condition::redirect},
        {305, Condition::redirect},
        {380, Condition::not_acceptable},
        {400, Condition::bad_request},
        {401, Condition::not_authorized},
        {402, Condition::bad_request},
        {403, Condition::forbidden},
        {404, Condition::item_not_found},
        {405, Condition::feature_not_implemented},
        {406, Condition::not_acceptable},
        {407, Condition::registration_required},
        {408, Condition::remote_server_timeout},
        {410, Condition::gone},
        {413, Condition::policy_violation},
        {414, Condition::policy_violation},
        {415, Condition::not_acceptable},
        {416, Condition::not_acceptable},
        {420, Condition::feature_not_implemented},
        {421, Condition::not_acceptable},
        {423, Condition::resource_constraint},
        {430, Condition::recipient_unavailable},
        {439, Condition::feature_not_implemented},
        {440, Condition::policy_violation},
        {480, Condition::recipient_unavailable},
        {481, Condition::item_not_found},
        {482, Condition::not_acceptable},
        {483, Condition::not_acceptable},
        {484, Condition::item_not_found},
        {485, Condition::item_not_found},
        {486, Condition::recipient_unavailable},
        {487, Condition::recipient_unavailable},
        {488, Condition::not_acceptable},
        {489, Condition::policy_violation},
        {491, Condition::unexpected_request},
        {493, Condition::bad_request},
        {500, Condition::internal_server_error},
        {501, Condition::feature_not_implemented},
        {502, Condition::remote_server_not_found},
        {503, Condition::internal_server_error},
        {504, Condition::remote_server_timeout},
        {505, Condition::not_acceptable},
        {513, Condition::policy_violation},
        {600, Condition::recipient_unavailable},
        {603, Condition::recipient_unavailable},
        {604, Condition::item_not_found},
        {606, Condition::not_acceptable},
    };
    for (const auto& row : rows) {
        CAPTURE(row.status);
        CHECK(to_xmpp_condition(row.status) == row.condition);
    }
}

TEST_CASE("E2 SIP 404 -> item-not-found") {
    const auto error = to_xmpp_error(404, "Not Found");
    CHECK(error.condition == Condition::item_not_found);
    CHECK(error_type(error.condition) == ErrorType::cancel);
    CHECK(error.text == "SIP 404 Not Found");
}

TEST_CASE("E2 SIP 503 -> internal-server-error, 502 -> remote-server-not-found") {
    CHECK(to_xmpp_condition(503) == Condition::internal_server_error);
    CHECK(to_xmpp_condition(502) == Condition::remote_server_not_found);
}

TEST_CASE("E2 codes outside the table fall back to their class") {
    struct Row {
        int status;
        Condition condition;
    };
    const std::vector<Row> rows = {
        {303, Condition::redirect},
        {399, Condition::redirect},
        {409, Condition::bad_request},
        {412, Condition::bad_request},
        {422, Condition::bad_request},
        {429, Condition::bad_request},
        {494, Condition::bad_request},
        {499, Condition::bad_request},
        {580, Condition::internal_server_error},
        {599, Condition::internal_server_error},
        {601, Condition::recipient_unavailable},
        {607, Condition::recipient_unavailable},
        {608, Condition::recipient_unavailable},
        {699, Condition::recipient_unavailable},
    };
    for (const auto& row : rows) {
        CAPTURE(row.status);
        CHECK(to_xmpp_condition(row.status) == row.condition);
    }
}

TEST_CASE("E2 every status 100..699 maps to a defined condition with a type and a safe text") {
    for (int status = 100; status <= 699; ++status) {
        CAPTURE(status);
        const auto condition = to_xmpp_condition(status);
        CHECK(condition_from_name(to_string(condition)) == condition);
        CHECK(!to_string(condition).empty());
        const auto error = to_xmpp_error(status, default_reason_phrase(status));
        CHECK(error.condition == condition);
        CHECK(is_safe_line(error.text));
        CHECK(error.text.rfind("SIP " + std::to_string(status) + " ", 0) == 0);
        if (status < 300) {
            CHECK(condition == Condition::undefined_condition);
        } else {
            CHECK(condition != Condition::undefined_condition);
        }
    }
}

TEST_CASE("E2 codes that are no SIP failure give undefined-condition, never garbage") {
    for (const int status : {-1, 0, 99, 100, 180, 200, 202, 700, 999, 100000}) {
        CAPTURE(status);
        CHECK(to_xmpp_condition(status) == Condition::undefined_condition);
        CHECK(!default_reason_phrase(status).empty());
    }
}

TEST_CASE("E2 the stanza text carries the code and the peer's reason made safe") {
    CHECK(to_xmpp_error(486, "Busy Here").text == "SIP 486 Busy Here");
    CHECK(to_xmpp_error(486, "").text == "SIP 486 Busy Here");
    CHECK(to_xmpp_error(480, "Gone \x01"
                             "fishing\r\n")
              .text == "SIP 480 Gone fishing");
    CHECK(to_xmpp_error(480, "caf\xe9").text == "SIP 480 caf\xEF\xBF\xBD");
}

TEST_CASE("E3 the RFC 6120 §8.3.3 error type of every condition") {
    struct Row {
        Condition condition;
        ErrorType type;
    };
    const std::vector<Row> rows = {
        {Condition::bad_request, ErrorType::modify},
        {Condition::conflict, ErrorType::cancel},
        {Condition::feature_not_implemented, ErrorType::cancel},
        {Condition::forbidden, ErrorType::auth},
        {Condition::gone, ErrorType::cancel},
        {Condition::internal_server_error, ErrorType::cancel},
        {Condition::item_not_found, ErrorType::cancel},
        {Condition::jid_malformed, ErrorType::modify},
        {Condition::not_acceptable, ErrorType::modify},
        {Condition::not_allowed, ErrorType::cancel},
        {Condition::not_authorized, ErrorType::auth},
        {Condition::policy_violation, ErrorType::modify},
        {Condition::recipient_unavailable, ErrorType::wait},
        {Condition::redirect, ErrorType::modify},
        {Condition::registration_required, ErrorType::auth},
        {Condition::remote_server_not_found, ErrorType::cancel},
        {Condition::remote_server_timeout, ErrorType::wait},
        {Condition::resource_constraint, ErrorType::wait},
        {Condition::service_unavailable, ErrorType::cancel},
        {Condition::subscription_required, ErrorType::auth},
        {Condition::undefined_condition, ErrorType::cancel},
        {Condition::unexpected_request, ErrorType::wait},
    };
    REQUIRE(rows.size() == all_conditions.size());
    for (const auto& row : rows) {
        CAPTURE(row.condition);
        CHECK(error_type(row.condition) == row.type);
    }
}

TEST_CASE("E3 condition and type names are the RFC 6120 element and attribute names") {
    CHECK(to_string(Condition::item_not_found) == "item-not-found");
    CHECK(to_string(Condition::remote_server_timeout) == "remote-server-timeout");
    CHECK(to_string(ErrorType::continue_) == "continue");
    CHECK(to_string(ErrorType::modify) == "modify");
    for (const auto condition : all_conditions) {
        CAPTURE(condition);
        CHECK(condition_from_name(to_string(condition)) == condition);
    }
}

TEST_CASE("E3 an unknown condition name is undefined-condition (RFC 6120 §8.3.2)") {
    CHECK(condition_from_name("payment-required") == Condition::undefined_condition);
    CHECK(condition_from_name("") == Condition::undefined_condition);
    CHECK(condition_from_name("Item-Not-Found") == Condition::undefined_condition);
}

TEST_CASE("M5 delivery failures without a SIP response map to their conditions") {
    CHECK(to_xmpp_error(DeliveryFailure::timeout).condition == Condition::remote_server_timeout);
    CHECK(to_xmpp_error(DeliveryFailure::unresolvable).condition ==
          Condition::remote_server_not_found);
    CHECK(to_xmpp_error(DeliveryFailure::unreachable).condition ==
          Condition::remote_server_timeout);
    for (const auto failure : {DeliveryFailure::timeout, DeliveryFailure::unresolvable,
                               DeliveryFailure::unreachable, DeliveryFailure::too_large_for_udp}) {
        CHECK(is_safe_line(to_xmpp_error(failure).text));
        CHECK(!to_xmpp_error(failure).text.empty());
    }
}

TEST_CASE("M4 a request too large for UDP without TCP on offer -> policy-violation") {
    CHECK(to_xmpp_error(DeliveryFailure::too_large_for_udp).condition ==
          Condition::policy_violation);
    CHECK(congestion_safe_request_bytes == 1300);
}

TEST_CASE("S3 reason phrases carry no CR, LF, NUL or other controls and are valid UTF-8") {
    const std::vector<std::string> nasty = {
        std::string("a\0b", 3),
        "line\r\nInjected: yes",
        "\x1b[31mred\x1b[0m",
        "tab\there",
        "\xff\xfe broken",
        "c1 \xc2\x85 next line",
        "sep\xe2\x80\xa8para\xe2\x80\xa9",
        "del\x7f",
        std::string(1000, 'x'),
    };
    for (const auto& text : nasty) {
        CAPTURE(text);
        const auto reason = safe_reason(text);
        CHECK(is_safe_line(reason));
        CHECK(reason.size() <= 200);
        CHECK(is_safe_line(to_sip_status(Condition::forbidden, text).reason));
        CHECK(is_safe_line(to_xmpp_error(403, text).text));
    }
    CHECK(safe_reason(std::string("a\0b", 3)) == "ab");
    CHECK(safe_reason("  spaced \r\n out  ") == "spaced out");
}

TEST_CASE("S3 safe_reason cuts on a character boundary") {
    const std::string euros = "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"; // three euro signs
    CHECK(safe_reason(euros, 7) == "\xE2\x82\xAC\xE2\x82\xAC");
    CHECK(safe_reason(euros, 2).empty());
    CHECK(is_valid_utf8(safe_reason(euros, 5)));
}

TEST_CASE("E1 standard reason phrases for the codes the gateway sends") {
    CHECK(default_reason_phrase(202) == "Accepted");
    CHECK(default_reason_phrase(413) == "Request Entity Too Large");
    CHECK(default_reason_phrase(415) == "Unsupported Media Type");
    CHECK(default_reason_phrase(491) == "Request Pending");
    CHECK(default_reason_phrase(604) == "Does Not Exist Anywhere");
    CHECK(default_reason_phrase(499) == "Client Error");
    for (int status = 100; status <= 699; ++status) {
        CHECK(is_safe_line(default_reason_phrase(status)));
    }
}
