// Who may speak for a domain (issue 5 part 7), the pure half: the verdict on a source address
// given the RFC 3263 resolution of the From domain.
#include "xsgw/bridge/routing.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using xsgw::bridge::from_domain_destination;
using xsgw::bridge::from_domain_verdict;
using xsgw::dns::Failure;
using xsgw::dns::Resolution;
using xsgw::dns::Target;
using xsgw::dns::Transport;

namespace {

Resolution targets(std::vector<std::string> addresses) {
    Resolution r;
    for (auto& a : addresses)
        r.targets.push_back(Target{a, 5060, Transport::udp, "pbx.example.test", "example.test"});
    r.reason = "NAPTR of example.test";
    return r;
}

Resolution failed(Failure failure, std::string reason) {
    Resolution r;
    r.failure = failure;
    r.reason = std::move(reason);
    return r;
}

} // namespace

TEST_CASE("from-domain verdict: taken only from an RFC 3263 target of the From domain") {
    struct Row {
        std::string name;
        std::string source;
        Resolution resolution;
        int status;
        std::string phrase; // expected substring; empty: none expected
        std::string retry_after;
    };
    const std::vector<Row> rows = {
        {"the only target", "192.0.2.1", targets({"192.0.2.1"}), 0, "", ""},
        {"a later target", "192.0.2.2", targets({"192.0.2.1", "192.0.2.2"}), 0, "", ""},
        {"IPv6 target", "2001:db8::5", targets({"192.0.2.1", "2001:db8::5"}), 0, "", ""},
        {"not among them", "198.51.100.7", targets({"192.0.2.1", "192.0.2.2", "192.0.2.1"}), 403,
         "Source 198.51.100.7 is not a SIP server of the From domain example.test (192.0.2.1, "
         "192.0.2.2)",
         ""},
        {"a prefix is not the address", "192.0.2.1", targets({"192.0.2.10"}), 403, "not a SIP", ""},
        {"no SIP servers", "192.0.2.1", failed(Failure::not_found, "NXDOMAIN example.test"), 403,
         "From domain example.test has no SIP servers (NXDOMAIN example.test)", ""},
        {"DNS down", "192.0.2.1", failed(Failure::unreachable, "NAPTR example.test: timeout"), 503,
         "Cannot verify the From domain example.test now (NAPTR example.test: timeout)", "30"},
    };
    for (const auto& row : rows) {
        INFO("case: " << row.name);
        const auto v = from_domain_verdict("example.test", row.source, row.resolution);
        CHECK(v.status == row.status);
        if (row.phrase.empty())
            CHECK(v.phrase.empty());
        else
            CHECK(v.phrase.find(row.phrase) != std::string::npos);
        CHECK(v.retry_after == row.retry_after);
    }
}

TEST_CASE("from-domain destination: the From URI's host alone, sips: kept") {
    xsgw::address::SipUri from;
    from.host = "Example.TEST";
    from.port = 5070;
    from.params.emplace_back("transport", "tcp");
    auto d = from_domain_destination(from);
    CHECK(d.host == "Example.TEST");
    CHECK_FALSE(d.port.has_value());
    CHECK_FALSE(d.transport.has_value());
    CHECK_FALSE(d.secure);
    from.secure = true;
    CHECK(from_domain_destination(from).secure);
}
