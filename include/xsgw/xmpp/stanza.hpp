// Small builders for the replies every request needs (RFC 6120 §8).
#pragma once

#include <string>
#include <string_view>

namespace gloox {
class Tag;
}

namespace xsgw::xmpp {

/// A stanza error as RFC 6120 §8.3 defines it: type, defined condition, optional text.
struct StanzaError {
    std::string type;      ///< cancel, modify, auth, wait or continue
    std::string condition; ///< e.g. service-unavailable
    std::string text;      ///< human-readable reason; may be empty
};

/// The address we answer from: the request's `to` when it is in our domain, else the domain (X4).
std::string reply_from(const gloox::Tag& request, std::string_view domain);

/// An empty iq result for the request: same id, from/to swapped (caller owns it).
gloox::Tag* make_iq_result(const gloox::Tag& request, std::string_view domain);

/// The error reply to any stanza: same name and id, from/to swapped, type='error' (E3).
/// Returns nullptr for a stanza that is itself an error: never an error to an error (E4).
gloox::Tag* make_error_reply(const gloox::Tag& request, std::string_view domain,
                             const StanzaError& error);

/// The element's xml:lang, however it was made: gloox's parser keeps it as attribute
/// "lang" with prefix "xml", a Tag we build as "xml:lang". Empty: none.
std::string xml_lang(const gloox::Tag& element);

/// True when the domain part of the JID string equals domain.
bool jid_in_domain(std::string_view jid, std::string_view domain);

} // namespace xsgw::xmpp
