#include "xsgw/translate/errors.hpp"

#include "xsgw/translate/message.hpp"

#include <fmt/format.h>

namespace xsgw::translate {
namespace {

struct ConditionName {
    Condition condition;
    std::string_view name;
};

constexpr std::array<ConditionName, 22> condition_names = {{
    {Condition::bad_request, "bad-request"},
    {Condition::conflict, "conflict"},
    {Condition::feature_not_implemented, "feature-not-implemented"},
    {Condition::forbidden, "forbidden"},
    {Condition::gone, "gone"},
    {Condition::internal_server_error, "internal-server-error"},
    {Condition::item_not_found, "item-not-found"},
    {Condition::jid_malformed, "jid-malformed"},
    {Condition::not_acceptable, "not-acceptable"},
    {Condition::not_allowed, "not-allowed"},
    {Condition::not_authorized, "not-authorized"},
    {Condition::policy_violation, "policy-violation"},
    {Condition::recipient_unavailable, "recipient-unavailable"},
    {Condition::redirect, "redirect"},
    {Condition::registration_required, "registration-required"},
    {Condition::remote_server_not_found, "remote-server-not-found"},
    {Condition::remote_server_timeout, "remote-server-timeout"},
    {Condition::resource_constraint, "resource-constraint"},
    {Condition::service_unavailable, "service-unavailable"},
    {Condition::subscription_required, "subscription-required"},
    {Condition::undefined_condition, "undefined-condition"},
    {Condition::unexpected_request, "unexpected-request"},
}};

struct StatusCondition {
    int status;
    Condition condition;
};

// E2, row by row as STANDARDS.md lists it.
constexpr StatusCondition sip_to_xmpp_table[] = {
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

struct StatusPhrase {
    int status;
    std::string_view phrase;
};

// RFC 3261 §21 and the codes later RFCs registered with IANA.
constexpr StatusPhrase reason_phrases[] = {
    {100, "Trying"},
    {180, "Ringing"},
    {181, "Call Is Being Forwarded"},
    {182, "Queued"},
    {183, "Session Progress"},
    {199, "Early Dialog Terminated"},
    {200, "OK"},
    {202, "Accepted"},
    {204, "No Notification"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Moved Temporarily"},
    {305, "Use Proxy"},
    {380, "Alternative Service"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {410, "Gone"},
    {412, "Conditional Request Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request-URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Unsupported URI Scheme"},
    {417, "Unknown Resource-Priority"},
    {420, "Bad Extension"},
    {421, "Extension Required"},
    {422, "Session Interval Too Small"},
    {423, "Interval Too Brief"},
    {424, "Bad Location Information"},
    {428, "Use Identity Header"},
    {429, "Provide Referrer Identity"},
    {430, "Flow Failed"},
    {433, "Anonymity Disallowed"},
    {436, "Bad Identity-Info"},
    {437, "Unsupported Certificate"},
    {438, "Invalid Identity Header"},
    {439, "First Hop Lacks Outbound Support"},
    {440, "Max-Breadth Exceeded"},
    {469, "Bad Info Package"},
    {470, "Consent Needed"},
    {480, "Temporarily Unavailable"},
    {481, "Call/Transaction Does Not Exist"},
    {482, "Loop Detected"},
    {483, "Too Many Hops"},
    {484, "Address Incomplete"},
    {485, "Ambiguous"},
    {486, "Busy Here"},
    {487, "Request Terminated"},
    {488, "Not Acceptable Here"},
    {489, "Bad Event"},
    {491, "Request Pending"},
    {493, "Undecipherable"},
    {494, "Security Agreement Required"},
    {500, "Server Internal Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Server Time-out"},
    {505, "Version Not Supported"},
    {513, "Message Too Large"},
    {580, "Precondition Failure"},
    {600, "Busy Everywhere"},
    {603, "Decline"},
    {604, "Does Not Exist Anywhere"},
    {606, "Not Acceptable"},
    {607, "Unwanted"},
    {608, "Rejected"},
};

// E1 before the context is applied: the 4xx (or only) code of each condition.
int base_sip_code(Condition condition) {
    switch (condition) {
    case Condition::bad_request:
    case Condition::conflict:
    case Condition::jid_malformed:
    case Condition::subscription_required:
    case Condition::undefined_condition:
        return 400;
    case Condition::feature_not_implemented:
        return 501;
    case Condition::forbidden:
    case Condition::not_allowed:
    case Condition::policy_violation:
        return 403;
    case Condition::gone:
        return 410;
    case Condition::internal_server_error:
    case Condition::resource_constraint:
        return 500;
    case Condition::item_not_found:
    case Condition::remote_server_not_found:
        return 404;
    case Condition::not_acceptable:
        return 406;
    case Condition::not_authorized:
        return 401;
    case Condition::recipient_unavailable:
        return 480;
    case Condition::redirect:
        return 302;
    case Condition::registration_required:
        return 407;
    case Condition::remote_server_timeout:
        return 408;
    case Condition::service_unavailable:
        // Never 503: a SIP client takes 503 as "try another server" (D5).
        return 403;
    case Condition::unexpected_request:
        return 491;
    }
    return 500;
}

int sip_code_in_context(Condition condition, const XmppErrorContext& context) {
    switch (condition) {
    case Condition::feature_not_implemented:
    case Condition::service_unavailable:
        if (context.full_jid) {
            return 405;
        }
        break;
    case Condition::forbidden:
        if (context.global) {
            return 603;
        }
        break;
    case Condition::item_not_found:
        if (context.global) {
            return 604;
        }
        break;
    case Condition::not_acceptable:
        if (context.global) {
            return 606;
        }
        break;
    case Condition::recipient_unavailable:
        if (context.global) {
            return 600;
        }
        break;
    case Condition::remote_server_not_found:
        if (context.unresolvable) {
            return 408;
        }
        break;
    case Condition::gone:
        if (!context.sip_contact.empty()) {
            return 301;
        }
        break;
    default:
        break;
    }
    return base_sip_code(condition);
}

} // namespace

std::string_view to_string(Condition condition) {
    for (const auto& entry : condition_names) {
        if (entry.condition == condition) {
            return entry.name;
        }
    }
    return "undefined-condition";
}

Condition condition_from_name(std::string_view name) {
    for (const auto& entry : condition_names) {
        if (entry.name == name) {
            return entry.condition;
        }
    }
    return Condition::undefined_condition;
}

std::string_view to_string(ErrorType type) {
    switch (type) {
    case ErrorType::auth:
        return "auth";
    case ErrorType::cancel:
        return "cancel";
    case ErrorType::continue_:
        return "continue";
    case ErrorType::modify:
        return "modify";
    case ErrorType::wait:
        return "wait";
    }
    return "cancel";
}

ErrorType error_type(Condition condition) {
    switch (condition) {
    case Condition::bad_request:
    case Condition::jid_malformed:
    case Condition::not_acceptable:
    case Condition::policy_violation:
    case Condition::redirect:
        return ErrorType::modify;
    case Condition::forbidden:
    case Condition::not_authorized:
    case Condition::registration_required:
    case Condition::subscription_required:
        return ErrorType::auth;
    case Condition::recipient_unavailable:
    case Condition::remote_server_timeout:
    case Condition::resource_constraint:
    case Condition::unexpected_request:
        return ErrorType::wait;
    case Condition::conflict:
    case Condition::feature_not_implemented:
    case Condition::gone:
    case Condition::internal_server_error:
    case Condition::item_not_found:
    case Condition::not_allowed:
    case Condition::remote_server_not_found:
    case Condition::service_unavailable:
    case Condition::undefined_condition:
        return ErrorType::cancel;
    }
    return ErrorType::cancel;
}

SipStatus to_sip_status(Condition condition, std::string_view text,
                        const XmppErrorContext& context) {
    SipStatus status;
    status.code = sip_code_in_context(condition, context);
    status.reason = safe_reason(text);
    if (status.reason.empty()) {
        status.reason = std::string(default_reason_phrase(status.code));
    }
    if (status.code == 301 || status.code == 302) {
        status.contact = header_safe_text(context.sip_contact, 1024);
    }
    return status;
}

Condition to_xmpp_condition(int status) {
    for (const auto& row : sip_to_xmpp_table) {
        if (row.status == status) {
            return row.condition;
        }
    }
    if (status >= 300 && status <= 399) {
        return Condition::redirect;
    }
    if (status >= 400 && status <= 499) {
        return Condition::bad_request;
    }
    if (status >= 500 && status <= 599) {
        return Condition::internal_server_error;
    }
    if (status >= 600 && status <= 699) {
        return Condition::recipient_unavailable;
    }
    return Condition::undefined_condition;
}

XmppError to_xmpp_error(int status, std::string_view reason_phrase) {
    std::string reason = safe_reason(reason_phrase);
    if (reason.empty()) {
        reason = std::string(default_reason_phrase(status));
    }
    return XmppError{to_xmpp_condition(status), fmt::format("SIP {} {}", status, reason), {}};
}

XmppError to_xmpp_error(DeliveryFailure failure) {
    switch (failure) {
    case DeliveryFailure::timeout:
        return {Condition::remote_server_timeout, "No answer from the SIP side in time", {}};
    case DeliveryFailure::unresolvable:
        return {Condition::remote_server_not_found, "The SIP domain could not be resolved", {}};
    case DeliveryFailure::unreachable:
        return {
            Condition::remote_server_timeout, "No SIP server of the domain could be reached", {}};
    case DeliveryFailure::too_large_for_udp:
        return {Condition::policy_violation,
                "Message too large for the only transport the SIP side offers (UDP)",
                {}};
    }
    return {Condition::undefined_condition, {}, {}};
}

std::string_view default_reason_phrase(int status) {
    for (const auto& row : reason_phrases) {
        if (row.status == status) {
            return row.phrase;
        }
    }
    if (status >= 100 && status <= 199) {
        return "Provisional";
    }
    if (status >= 200 && status <= 299) {
        return "Success";
    }
    if (status >= 300 && status <= 399) {
        return "Redirection";
    }
    if (status >= 400 && status <= 499) {
        return "Client Error";
    }
    if (status >= 500 && status <= 599) {
        return "Server Error";
    }
    if (status >= 600 && status <= 699) {
        return "Global Failure";
    }
    return "Unknown";
}

std::string safe_reason(std::string_view text, std::size_t max_bytes) {
    return header_safe_text(text, max_bytes);
}

} // namespace xsgw::translate
