// Character-level encodings the address mapping is built from: XEP-0106 JID
// escaping, RFC 3261 percent-encoding of SIP user parts and URI parameters,
// and the UTF-8 / control-character checks every piece of outside input
// passes (S2, S3). Pure functions; no allocation beyond the returned strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xsgw::address {

/// XEP-0106-escapes a raw local part: space " & ' / : < > @ become \20 \22 \26
/// \27 \2f \3a \3c \3e \40, and a backslash becomes \5c only where it would
/// otherwise read as one of those ten escapes (hex matched case-insensitively,
/// because the escaped result is later ASCII-lowercased). Other bytes pass as
/// they are. Always succeeds; xep0106_unescape undoes it exactly.
std::string xep0106_escape(std::string_view raw);

/// Undoes XEP-0106 escaping: each of the ten escape sequences (hex in either
/// case) becomes its character; a backslash that starts no escape stays. Empty
/// when the text holds a raw character a JID local part cannot carry (space
/// " & ' / : < > @), i.e. when it is not an escaped local part at all.
std::optional<std::string> xep0106_unescape(std::string_view escaped);

/// True for the ASCII characters RFC 3261 lets stand unescaped in a SIP user
/// part (alphanumerics, - _ . ! ~ * ' ( ) & = + $ , ; ? /).
bool sip_user_allows_literal(char c);

/// True for the ASCII characters RFC 3261 lets stand unescaped in a SIP URI
/// parameter name or value (alphanumerics, - _ . ! ~ * ' ( ) [ ] / : & + $).
bool sip_param_allows_literal(char c);

/// Percent-encodes (upper-case hex) every byte a SIP user part may not carry
/// literally, including # % [ \ ] ^ ` { | } space " < > : @ and every
/// non-ASCII byte (A3); what sip_user_allows_literal accepts is left alone (A5).
std::string percent_encode_user(std::string_view raw);

/// Percent-encodes every byte a SIP URI parameter may not carry literally
/// (used for ;gr= and other parameter names and values).
std::string percent_encode_param(std::string_view raw);

/// Decodes %xx escapes (hex in either case). Empty on a '%' not followed by
/// two hex digits, or when the decoded bytes are not valid UTF-8 (A4).
std::optional<std::string> percent_decode(std::string_view encoded);

/// True when the bytes are well-formed UTF-8: no overlong forms, no
/// surrogates, nothing above U+10FFFF, no truncated sequences.
bool is_valid_utf8(std::string_view text);

/// True when the text holds a C0 control (including CR, LF, NUL), DEL, or a
/// UTF-8-encoded C1 control (U+0080..U+009F): none of these may reach a SIP
/// header or an XMPP address (S3).
bool contains_control(std::string_view text);

/// The text with ASCII A-Z mapped to a-z and every other byte unchanged; the
/// only case folding the gateway does (A10: no Unicode case mapping).
std::string ascii_lowercase(std::string_view text);

} // namespace xsgw::address
