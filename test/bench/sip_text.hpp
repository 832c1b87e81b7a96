// Just enough SIP text handling for the benchmarks' fake SIP peers (UAS, load
// generator, presence notifier): split a datagram into start line, headers and
// body; answer a request by echoing Via / From / To / Call-ID / CSeq (RFC 3261
// §8.2.6), with extra headers if asked. Views point into the datagram.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xsgw::bench {

/// One SIP request or response as read off the wire.
struct SipMessage {
    std::string_view start_line;
    /// Headers in their order: name as written, value with surrounding blanks trimmed.
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::string_view body; ///< Content-Length bytes after the blank line (what there is of them)

    /// True for a request ("MESSAGE sip:... SIP/2.0"), false for a response.
    bool is_request() const;
    /// The method of a request; empty for a response.
    std::string_view method() const;
    /// The Request-URI of a request; empty for a response.
    std::string_view request_uri() const;
    /// The status code of a response; 0 for a request.
    int status() const;
    /// The first header with this name (case-insensitive, compact forms accepted).
    std::optional<std::string_view> header(std::string_view name) const;
};

/// Parses a datagram; nullopt when it has no start line or no end of headers.
std::optional<SipMessage> parse_sip(std::string_view datagram);

/// The branch parameter of a Via header value; empty when there is none.
std::string_view via_branch(std::string_view via);

/// A response to `request` without body; a To tag is added if the To has none.
/// `extra_headers` (whole lines, each ending in CRLF) go in before Content-Length.
std::string sip_response(const SipMessage& request, int status, std::string_view phrase,
                         std::string_view to_tag, std::string_view extra_headers = {});

} // namespace xsgw::bench
