// XMPP presence <-> PIDF/RPID (P10, P11) and the robustness of the PIDF
// reader (S2). The peers' documents are written after their source code,
// not captured from a running peer: Kamailio presence_xml's dummy body and
// what its agregate_xmls() makes of several PUBLISHes (every top-level child
// of the older documents appended to the newest, pretty-printed), baresip's
// PUBLISH / NOTIFY body as the format string in its presence module's
// publisher.c and notifier.c prints it, RPID after the RFC 4480 examples,
// and our own output.
#include "xsgw/translate/presence.hpp"

#include <algorithm>
#include <cstdint>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace xsgw::translate {
// Internal linkage: each test file prints values its own way without ODR clashes.
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, Show show) {
    return out << (show == Show::none ? std::string_view("none") : to_string(show));
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& out, const ResourcePresence& p) {
    out << "{resource='" << p.resource << "' " << (p.available ? "available" : "unavailable")
        << " show=" << p.show << " status='" << p.status << "' lang='" << p.status_lang
        << "' priority=";
    if (p.priority) {
        out << *p.priority;
    } else {
        out << "none";
    }
    return out << "}";
}
} // namespace xsgw::translate

using namespace xsgw::translate;

TEST_SUITE_BEGIN("translate/presence");

namespace {

constexpr std::string_view entity = "sip:alice*xmpp.test@sip.test";

std::vector<ResourcePresence> parsed(std::string_view pidf) {
    const auto result = pidf_to_presence(pidf);
    INFO(pidf);
    INFO((result ? std::string() : result.error().what));
    REQUIRE(result.has_value());
    return *result;
}

ResourcePresence single(std::string_view pidf) {
    const auto resources = parsed(pidf);
    REQUIRE(resources.size() == 1);
    return resources.front();
}

ResourcePresence available(std::string resource, Show show = Show::none) {
    ResourcePresence p;
    p.resource = std::move(resource);
    p.available = true;
    p.show = show;
    return p;
}

// A PIDF document around some tuples and other top-level content.
std::string document(std::string_view inner) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\n"
           "    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\"\n"
           "    xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\"\n"
           "    entity=\"sip:bob@simple.test\">\n" +
           std::string(inner) + "</presence>\n";
}

std::string open_tuple(std::string_view id, std::string_view extra = {}) {
    return "<tuple id=\"" + std::string(id) + "\"><status><basic>open</basic></status>" +
           std::string(extra) + "</tuple>\n";
}

std::string person_with(std::string_view activities) {
    return "<dm:person id=\"p1\"><rpid:activities>" + std::string(activities) +
           "</rpid:activities></dm:person>\n";
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

std::size_t count(std::string_view text, std::string_view part) {
    std::size_t n = 0;
    for (auto pos = text.find(part); pos != std::string_view::npos;
         pos = text.find(part, pos + part.size())) {
        ++n;
    }
    return n;
}

// True when every tuple id of the document is an NCName made of the
// characters every XML edition allows in one.
bool tuple_ids_are_ncnames(std::string_view pidf) {
    constexpr std::string_view marker = "<tuple id=\"";
    for (auto pos = pidf.find(marker); pos != std::string_view::npos;
         pos = pidf.find(marker, pos + 1)) {
        const auto start = pos + marker.size();
        const auto end = pidf.find('"', start);
        const auto id = pidf.substr(start, end - start);
        if (id.substr(0, 3) != "ID-") {
            return false;
        }
        for (const char c : id) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
            if (!ok) {
                return false;
            }
        }
    }
    return true;
}

} // namespace

// ---------------------------------------------------------------------------
// P10: XMPP -> PIDF

TEST_CASE("P10 basic open/closed, one tuple per resource, ID- tuple ids") {
    ResourcePresence pc = available("pc");
    ResourcePresence phone;
    phone.resource = "phone";
    const auto pidf = presence_to_pidf(entity, {pc, phone});
    CHECK(pidf.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 0) == 0);
    CHECK(contains(pidf, "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
                         "entity=\"sip:alice*xmpp.test@sip.test\">"));
    CHECK(contains(pidf, "<tuple id=\"ID-pc\"><status><basic>open</basic></status>"));
    CHECK(contains(pidf, "<tuple id=\"ID-phone\"><status><basic>closed</basic></status>"));
    CHECK(count(pidf, "<tuple ") == 2);
    CHECK(tuple_ids_are_ncnames(pidf));
}

TEST_CASE("P10 show maps to embedded jabber:client show and to an RPID activity") {
    struct Row {
        Show show;
        std::string_view embedded; // empty: no <show/>
        std::string_view activity; // empty: no <dm:person>
    };
    const Row rows[] = {
        {Show::none, "", ""},       {Show::away, "away", "away"}, {Show::chat, "chat", ""},
        {Show::dnd, "dnd", "busy"}, {Show::xa, "xa", "away"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.show);
        CHECK(rpid_activity_for(row.show) == row.activity);
        const auto pidf = presence_to_pidf(entity, {available("pc", row.show)});
        if (row.embedded.empty()) {
            CHECK_FALSE(contains(pidf, "<show"));
        } else {
            CHECK(contains(pidf, "<status><basic>open</basic><show xmlns=\"jabber:client\">" +
                                     std::string(row.embedded) + "</show></status>"));
        }
        if (row.activity.empty()) {
            CHECK_FALSE(contains(pidf, "person"));
            CHECK_FALSE(contains(pidf, "rpid"));
        } else {
            CHECK(contains(pidf, "<dm:person xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
                                 "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" id=\"person\">"
                                 "<rpid:activities><rpid:" +
                                     std::string(row.activity) +
                                     "/></rpid:activities></dm:person>"));
            // RFC 4479: one person element for the presentity.
            CHECK(count(pidf, "<dm:person") == 1);
        }
        CHECK(single(pidf).show == row.show);
    }
}

TEST_CASE("P10 show is not written for an unavailable resource") {
    for (const Show show : {Show::away, Show::chat, Show::dnd, Show::xa}) {
        ResourcePresence gone = available("pc", show);
        gone.available = false;
        gone.priority = 5;
        const auto pidf = presence_to_pidf(entity, {gone});
        CHECK(contains(pidf, "<basic>closed</basic>"));
        CHECK_FALSE(contains(pidf, "<show"));
        CHECK_FALSE(contains(pidf, "person"));
        CHECK_FALSE(contains(pidf, "<contact"));
    }
}

TEST_CASE("P10 the person carries the most available resource's activity") {
    struct Row {
        std::vector<std::pair<Show, std::optional<int>>> resources;
        std::string_view activity; // empty: no person
    };
    const Row rows[] = {
        {{{Show::dnd, 1}, {Show::away, 0}}, "away"}, // away beats dnd
        {{{Show::xa, 5}, {Show::away, 0}}, "away"},  // away beats xa
        {{{Show::dnd, 5}, {Show::xa, 0}}, "away"},   // xa beats dnd
        {{{Show::dnd, 9}, {Show::none, -1}}, ""},    // plain available beats all
        {{{Show::away, 9}, {Show::chat, 0}}, ""},    // chat is the most available
        {{{Show::dnd, 0}, {Show::dnd, 3}}, "busy"},  // same show
        {{{Show::dnd, std::nullopt}, {Show::dnd, 1}}, "busy"},
    };
    for (const auto& row : rows) {
        std::vector<ResourcePresence> list;
        for (const auto& [show, priority] : row.resources) {
            auto p = available("r" + std::to_string(list.size()), show);
            p.priority = priority;
            list.push_back(p);
        }
        const auto pidf = presence_to_pidf(entity, list);
        INFO(pidf);
        if (row.activity.empty()) {
            CHECK_FALSE(contains(pidf, "person"));
        } else {
            CHECK(contains(pidf, "<rpid:activities><rpid:" + std::string(row.activity) + "/>"));
            CHECK(count(pidf, "<dm:person") == 1);
        }
        // Every tuple keeps its own show.
        const auto back = parsed(pidf);
        REQUIRE(back.size() == list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            CHECK(back[i].show == list[i].show);
        }
    }
    // Unavailable resources do not count.
    ResourcePresence gone = available("gone", Show::chat);
    gone.available = false;
    const auto pidf = presence_to_pidf(entity, {gone, available("pc", Show::dnd)});
    CHECK(contains(pidf, "<rpid:busy/>"));
}

TEST_CASE("P10 priority 0..127 -> contact priority 0..1, negative not mapped") {
    struct Row {
        int priority;
        std::optional<std::string> contact;
    };
    const Row rows[] = {
        {-128, std::nullopt}, {-1, std::nullopt},  {0, "0.000"},
        {1, "0.008"},         {64, "0.504"},       {126, "0.992"},
        {127, "1.000"},       {128, std::nullopt}, {INT32_MIN, std::nullopt},
    };
    for (const auto& row : rows) {
        CAPTURE(row.priority);
        CHECK(contact_priority_for(row.priority) == row.contact);
        if (row.priority < -128 || row.priority > 127) {
            continue;
        }
        auto p = available("pc");
        p.priority = row.priority;
        const auto pidf = presence_to_pidf(entity, {p});
        if (row.contact) {
            CHECK(contains(pidf, "<contact priority=\"" + *row.contact + "\">" +
                                     std::string(entity) + "</contact>"));
            CHECK(single(pidf).priority == row.priority);
        } else {
            CHECK_FALSE(contains(pidf, "<contact"));
            CHECK_FALSE(single(pidf).priority.has_value());
        }
    }
    // No priority, no contact: the entity already says where the presentity is.
    CHECK_FALSE(contains(presence_to_pidf(entity, {available("pc")}), "<contact"));
}

TEST_CASE("P10 P11 every priority 0..127 survives the 0..1 scale exactly") {
    for (int p = 0; p <= 127; ++p) {
        CAPTURE(p);
        const auto q = contact_priority_for(p);
        REQUIRE(q.has_value());
        CHECK(q->size() == 5); // d.ddd, within RFC 3863's qvalue pattern
        CHECK(((q->front() == '0') || *q == "1.000"));
        CHECK(priority_for_contact_priority(*q) == p);
    }
}

TEST_CASE("P11 contact priority values: decimals in 0..1, anything else ignored") {
    struct Row {
        std::string_view text;
        std::optional<int> priority;
    };
    const Row rows[] = {
        {"0", 0},
        {"1", 127},
        {"1.0", 127},
        {"1.000", 127},
        {"0.5", 64}, // 63.5 rounds up
        {".5", 64},
        {"+0.5", 64},
        {" 0.25 ", 32},
        {"0.8", 102},
        {"0.0000001", 0},
        {"0.99999999999", 127},
        {"00.1", 13},
        {"0.", 0},
        {"1.001", std::nullopt},
        {"2", std::nullopt},
        {"10", std::nullopt},
        {"-0.1", std::nullopt},
        {"-0", std::nullopt},
        {"", std::nullopt},
        {".", std::nullopt},
        {"abc", std::nullopt},
        {"0.5x", std::nullopt},
        {"0,5", std::nullopt},
        {"1e-1", std::nullopt},
        {"99999999999999999999999", std::nullopt},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        CHECK(priority_for_contact_priority(row.text) == row.priority);
    }
}

TEST_CASE("P10 status -> note with xml:lang kept") {
    auto p = available("pc", Show::away);
    p.status = "Out to lunch";
    p.status_lang = "en";
    auto pidf = presence_to_pidf(entity, {p});
    CHECK(contains(pidf, "<note xml:lang=\"en\">Out to lunch</note></tuple>"));
    CHECK(single(pidf) == p);

    p.status_lang.clear();
    pidf = presence_to_pidf(entity, {p});
    CHECK(contains(pidf, "<note>Out to lunch</note>"));
    CHECK(single(pidf) == p);

    // An unavailable resource keeps its status ("gone home").
    ResourcePresence gone;
    gone.resource = "pc";
    gone.status = "Gone home";
    gone.status_lang = "en-GB";
    pidf = presence_to_pidf(entity, {gone});
    CHECK(contains(pidf, "<note xml:lang=\"en-GB\">Gone home</note>"));
    CHECK(single(pidf) == gone);

    // A language without text has nothing to describe: no note, nothing back.
    p.status.clear();
    p.status_lang = "fr";
    pidf = presence_to_pidf(entity, {p});
    CHECK_FALSE(contains(pidf, "<note"));
    CHECK(single(pidf).status_lang.empty());
}

TEST_CASE("P10 markup characters in notes, resources, languages and entity are escaped") {
    auto p = available("<a&b>'\"/c", Show::dnd);
    p.status = "1 < 2 && 3 > 2 \"quoted\" 'single' ]]> <!-- -->";
    p.status_lang = "x-\"<&>'";
    p.priority = 3;
    const std::string odd_entity = "sip:a&b<c>\"'@example.com";
    const auto pidf = presence_to_pidf(odd_entity, {p});
    CHECK(contains(pidf, "entity=\"sip:a&amp;b&lt;c&gt;&quot;&apos;@example.com\""));
    CHECK(contains(pidf, "<note xml:lang=\"x-&quot;&lt;&amp;&gt;&apos;\">1 &lt; 2 &amp;&amp; 3 "
                         "&gt; 2 &quot;quoted&quot; &apos;single&apos; ]]&gt; &lt;!-- --&gt;"
                         "</note>"));
    CHECK(contains(pidf, "<tuple id=\"ID-_3Ca_26b_3E_27_22_2Fc\">"));
    CHECK(tuple_ids_are_ncnames(pidf));
    CHECK(single(pidf) == p);
}

TEST_CASE("P10 text XML cannot carry is dropped, invalid UTF-8 becomes U+FFFD, CR survives") {
    auto p = available("pc");
    p.status = "a\x01"
               "b\x7f"
               "c\xff"
               "d\r\ne\tf";
    const auto pidf = presence_to_pidf(entity, {p});
    CHECK(contains(pidf, "<note>ab\x7f"
                         "c\xef\xbf\xbd"
                         "d&#13;\ne\tf</note>"));
    CHECK(single(pidf).status == "ab\x7f"
                                 "c\xef\xbf\xbd"
                                 "d\r\ne\tf");
}

TEST_CASE("P10 an empty list is one closed tuple: the presentity is offline") {
    const auto pidf = presence_to_pidf(entity, {});
    CHECK(count(pidf, "<tuple ") == 1);
    CHECK(contains(pidf, "<tuple id=\"ID-\"><status><basic>closed</basic></status></tuple>"));
    CHECK_FALSE(contains(pidf, "person"));
    const auto back = single(pidf);
    CHECK(back == ResourcePresence{});
}

TEST_CASE("P10 a resource named twice gives one tuple: the first one") {
    auto first = available("pc", Show::away);
    auto second = available("pc", Show::dnd);
    const auto pidf = presence_to_pidf(entity, {first, second, available("phone")});
    CHECK(count(pidf, "<tuple id=\"ID-pc\"") == 1);
    const auto back = parsed(pidf);
    REQUIRE(back.size() == 2);
    CHECK(back[0] == first);
    CHECK(back[1] == available("phone"));
}

// ---------------------------------------------------------------------------
// Tuple ids

TEST_CASE("P10 P11 tuple ids: ID- + resource with non-NCName bytes as _HH, reversibly") {
    struct Row {
        std::string_view resource;
        std::string_view id;
    };
    const Row rows[] = {
        {"", "ID-"},
        {"pc", "ID-pc"},
        {"Conversations.x1Y2", "ID-Conversations.x1Y2"},
        {"home laptop", "ID-home_20laptop"},
        {"a_b", "ID-a_5Fb"},
        {"_20", "ID-_5F20"},
        {"ID-x", "ID-ID-x"},
        {"gajim:1/2", "ID-gajim_3A1_2F2"},
        {"caf\xc3\xa9", "ID-caf_C3_A9"},
        {"\xe6\x97\xa5", "ID-_E6_97_A5"},
        {"psi+", "ID-psi_2B"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.resource);
        CHECK(tuple_id_for_resource(row.resource) == row.id);
        CHECK(resource_for_tuple_id(row.id) == row.resource);
    }
}

TEST_CASE("P11 foreign tuple ids are the resource as they are") {
    struct Row {
        std::string_view id;
        std::string_view resource;
    };
    const Row rows[] = {
        {"t4109", "t4109"},                                                       // baresip
        {"615293b33c62dec073e05d9421e9f48b", "615293b33c62dec073e05d9421e9f48b"}, // Kamailio
        {"0x81475a0", "0x81475a0"},
        {"id-lower", "id-lower"}, // prefix is case-sensitive
        {"ID-_zz", "_zz"},        // not an escape: kept
        {"ID-_4", "_4"},          // cut short: kept
        {"ID-a_2", "a_2"},
        {"ID-_00x", "ID-_00x"}, // would decode to a control
        {"ID-_FF", "ID-_FF"},   // would decode to bad UTF-8
        {"ID-_C3", "ID-_C3"},
        {"a\tb\x7f", "ab"}, // controls never reach a JID
        {"ID-\t_00", "ID-_00"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.id);
        CHECK(resource_for_tuple_id(row.id) == row.resource);
    }
}

TEST_CASE("P11 resources stay within RFC 7622: at most 1023 bytes, cut between characters") {
    CHECK(resource_for_tuple_id(std::string(1023, 'a')) == std::string(1023, 'a'));
    CHECK(resource_for_tuple_id(std::string(5000, 'a')) == std::string(1023, 'a'));
    // 1022 ASCII bytes and a two-byte character: the character does not fit.
    const std::string split = std::string(1022, 'a') + "\xc3\xa9" + "tail";
    CHECK(resource_for_tuple_id(split) == std::string(1022, 'a'));
    CHECK(resource_for_tuple_id(tuple_id_for_resource(split)) == std::string(1022, 'a'));
    // Bytes that are not UTF-8 in a foreign id (only a caller can pass them:
    // the reader sees UTF-8 only) become U+FFFD.
    CHECK(resource_for_tuple_id("a\xff"
                                "b") == "a\xef\xbf\xbd"
                                        "b");
    // A document with a very long foreign id.
    const auto p = single(document(open_tuple(std::string(3000, 'x'))));
    CHECK(p.resource == std::string(1023, 'x'));
}

// ---------------------------------------------------------------------------
// P11: PIDF -> XMPP

TEST_CASE("P11 basic open/closed -> available/unavailable; anything else is not open") {
    struct Row {
        std::string_view status; // inner XML of <tuple>
        bool available;
    };
    const Row rows[] = {
        {"<status><basic>open</basic></status>", true},
        {"<status><basic>\n   open\r\n </basic></status>", true},
        {"<status><basic>OPEN</basic></status>", true},
        {"<status><basic>closed</basic></status>", false},
        {"<status><basic>unknown</basic></status>", false}, // baresip 1.x
        {"<status><basic>unkown</basic></status>", false},  // baresip 0.x
        {"<status><basic></basic></status>", false},
        {"<status><basic>open-ish</basic></status>", false},
        {"<status/>", false}, // RFC 3863: basic is optional
        {"<status><rpid:activities><rpid:away/></rpid:activities></status>", false},
        {"", false},                                                         // no status at all
        {"<status><basic>open</basic><basic>closed</basic></status>", true}, // first counts
        {"<status><basic xmlns=\"urn:example\">open</basic></status>", false},
    };
    for (const auto& row : rows) {
        CAPTURE(row.status);
        const auto p =
            single(document("<tuple id=\"t1\">" + std::string(row.status) + "</tuple>\n"));
        CHECK(p.resource == "t1");
        CHECK(p.available == row.available);
    }
}

TEST_CASE("P11 RPID activities map to show (RFC 4480 list and unknown ones)") {
    struct Row {
        std::string_view activity;
        Show show;
    };
    const Row rows[] = {
        {"away", Show::away},
        {"vacation", Show::xa},
        {"holiday", Show::xa},
        {"busy", Show::dnd},
        {"on-the-phone", Show::dnd},
        {"meeting", Show::dnd},
        // The rest of RFC 4480 §3.2 and anything else: no show.
        {"appointment", Show::none},
        {"breakfast", Show::none},
        {"dinner", Show::none},
        {"in-transit", Show::none},
        {"looking-for-work", Show::none},
        {"meal", Show::none},
        {"performance", Show::none},
        {"permanent-absence", Show::none},
        {"playing", Show::none},
        {"presentation", Show::none},
        {"shopping", Show::none},
        {"sleeping", Show::none},
        {"spectator", Show::none},
        {"steering", Show::none},
        {"travel", Show::none},
        {"tv", Show::none},
        {"unknown", Show::none},
        {"working", Show::none},
        {"worship", Show::none},
        {"other", Show::none},
        {"x-napping", Show::none},
        {"Away", Show::none}, // element names are case-sensitive
    };
    for (const auto& row : rows) {
        CAPTURE(row.activity);
        CHECK(show_for_rpid_activity(row.activity).value_or(Show::none) == row.show);
        const std::string element = "<rpid:" + std::string(row.activity) + "/>";
        // In the person (RFC 4479), in the tuple, in the tuple's status (pre-RFC 4479).
        CHECK(single(document(open_tuple("t1") + person_with(element))).show == row.show);
        CHECK(
            single(document(open_tuple("t1", "<rpid:activities>" + element + "</rpid:activities>")))
                .show == row.show);
        CHECK(single(document("<tuple id=\"t1\"><status><basic>open</basic><rpid:activities>" +
                              element + "</rpid:activities></status></tuple>"))
                  .show == row.show);
    }
    // An activity in another namespace is not RPID.
    CHECK(single(document(open_tuple("t1") +
                          "<dm:person id=\"p\"><rpid:activities><x:away xmlns:x=\"urn:x\"/>"
                          "</rpid:activities></dm:person>"))
              .show == Show::none);
}

TEST_CASE("P11 several activities: dnd beats xa beats away") {
    struct Row {
        std::string_view activities;
        Show show;
    };
    const Row rows[] = {
        {"<rpid:away/><rpid:busy/>", Show::dnd},
        {"<rpid:busy/><rpid:away/>", Show::dnd},
        {"<rpid:away/><rpid:vacation/>", Show::xa},
        {"<rpid:holiday/><rpid:meeting/><rpid:away/>", Show::dnd},
        {"<rpid:note>out</rpid:note><rpid:sleeping/><rpid:away/>", Show::away},
        {"<rpid:unknown/>", Show::none},
        {"", Show::none},
    };
    for (const auto& row : rows) {
        CAPTURE(row.activities);
        CHECK(single(document(open_tuple("t1") + person_with(row.activities))).show == row.show);
    }
}

TEST_CASE("P11 embedded show first, then the tuple's RPID, then the person's") {
    struct Row {
        std::string_view tuple_extra;
        std::string_view person;
        Show show;
    };
    const Row rows[] = {
        // embedded show wins over everything, in the tuple or in its status
        {"<show xmlns=\"jabber:client\">xa</show>", "<rpid:busy/>", Show::xa},
        {"<show xmlns=\"jabber:client\">chat</show>", "<rpid:busy/>", Show::chat},
        {"<show xmlns=\"jabber:client\"> dnd </show>", "<rpid:away/>", Show::dnd},
        {"<show xmlns=\"jabber:server\">away</show>", "", Show::away},
        // a show that is not one of the four values, or not jabber:client, is no show
        {"<show xmlns=\"jabber:client\">online</show>", "<rpid:busy/>", Show::dnd},
        {"<show xmlns=\"jabber:client\"></show>", "<rpid:away/>", Show::away},
        {"<show>dnd</show>", "<rpid:away/>", Show::away},
        // the tuple's own activities beat the person's, even when they map to nothing
        {"<rpid:activities><rpid:meeting/></rpid:activities>", "<rpid:away/>", Show::dnd},
        {"<rpid:activities><rpid:sleeping/></rpid:activities>", "<rpid:away/>", Show::none},
        {"<rpid:activities/>", "<rpid:away/>", Show::none},
        // nothing in the tuple: the person's
        {"", "<rpid:vacation/>", Show::xa},
    };
    for (const auto& row : rows) {
        CAPTURE(row.tuple_extra);
        const std::string person = row.person.empty() ? "" : person_with(row.person);
        CHECK(single(document(open_tuple("t1", row.tuple_extra) + person)).show == row.show);
        // The same show inside <status>.
        CHECK(single(document("<tuple id=\"t1\"><status><basic>open</basic>" +
                              std::string(row.tuple_extra) + "</status></tuple>" + person))
                  .show == row.show);
    }
}

TEST_CASE("P11 every person's activities count, the strongest wins; an empty one hides none") {
    const auto two_persons = [](std::string_view first, std::string_view second) {
        return document(open_tuple("t1") + std::string(first) + std::string(second));
    };
    CHECK(single(two_persons(person_with("<rpid:busy/>"), person_with("<rpid:away/>"))).show ==
          Show::dnd);
    CHECK(single(two_persons(person_with("<rpid:away/>"), person_with("<rpid:busy/>"))).show ==
          Show::dnd);
    // Kamailio: an older device's empty activities come first, the newer one's away later.
    CHECK(single(two_persons("<dm:person id=\"a\"><rpid:activities/></dm:person>",
                             person_with("<rpid:away/>")))
              .show == Show::away);
    CHECK(single(two_persons("<dm:person id=\"a\"><rpid:activities/></dm:person>",
                             "<dm:person id=\"b\"><rpid:activities/></dm:person>"))
              .show == Show::none);
    CHECK(single(two_persons("<dm:person id=\"a\"><dm:note>x</dm:note></dm:person>",
                             person_with("<rpid:away/>")))
              .show == Show::away);
}

TEST_CASE("P11 show and priority are read only for open tuples") {
    const auto p = single(document(
        "<tuple id=\"t1\"><status><basic>closed</basic><show xmlns=\"jabber:client\">dnd</show>"
        "</status><contact priority=\"0.5\">sip:x@y</contact></tuple>" +
        person_with("<rpid:busy/>")));
    CHECK_FALSE(p.available);
    CHECK(p.show == Show::none);
    CHECK_FALSE(p.priority.has_value());
}

TEST_CASE("P11 note -> status: tuple note, then person note, then presence note") {
    struct Row {
        std::string_view tuple_notes;
        std::string_view person_notes;
        std::string_view presence_notes;
        std::string_view status;
        std::string_view lang;
    };
    const Row rows[] = {
        {"<note xml:lang=\"en\">In a call</note>", "<dm:note>Phoning</dm:note>",
         "<note>Available</note>", "In a call", "en"},
        {"", "<dm:note xml:lang=\"de\">Telefoniert</dm:note>", "<note>Available</note>",
         "Telefoniert", "de"},
        {"", "", "<note xml:lang=\"fr\">Disponible</note>", "Disponible", "fr"},
        {"", "<note>pidf note in person</note>", "", "pidf note in person", ""},
        {"<note xml:lang=\"en\">first</note><note xml:lang=\"fr\">second</note>", "", "", "first",
         "en"},
        {"<note></note><note xml:lang=\"it\">second</note>", "", "", "second", "it"},
        {"<note>  spaced \n text  </note>", "", "", "  spaced \n text  ", ""},
        {"<note>a<x:b xmlns:x=\"urn:x\">ignored</x:b>c</note>", "", "", "ac", ""},
        {"<note xmlns=\"urn:other\">not pidf</note>", "", "", "", ""},
        {"", "", "", "", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.tuple_notes);
        const std::string person =
            row.person_notes.empty()
                ? ""
                : "<dm:person id=\"p\">" + std::string(row.person_notes) + "</dm:person>";
        const auto p = single(
            document(open_tuple("t1", row.tuple_notes) + std::string(row.presence_notes) + person));
        CHECK(p.status == row.status);
        CHECK(p.status_lang == row.lang);
    }
}

TEST_CASE("P11 xml:lang is inherited from the tuple or the presence element") {
    auto p = single("<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xml:lang=\"sv\" "
                    "entity=\"pres:a@b\"><tuple id=\"t\"><status><basic>open</basic></status>"
                    "<note>Hej</note></tuple></presence>");
    CHECK(p.status == "Hej");
    CHECK(p.status_lang == "sv");
    p = single("<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xml:lang=\"sv\" "
               "entity=\"pres:a@b\"><tuple id=\"t\" xml:lang=\"nb\"><status><basic>open</basic>"
               "</status><note>Hei</note><note xml:lang=\"\">x</note></tuple></presence>");
    CHECK(p.status_lang == "nb");
    p = single("<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xml:lang=\"sv\" "
               "entity=\"pres:a@b\"><tuple id=\"t\"><status><basic>open</basic></status>"
               "<note xml:lang=\"\">no language</note></tuple></presence>");
    CHECK(p.status_lang.empty());
}

TEST_CASE("P11 contact priority is read from the tuple's contact") {
    const auto p = single(document(
        open_tuple("t1", "<contact priority=\"0.8\">sip:bob@192.0.2.10</contact><note>n</note>")));
    CHECK(p.priority == 102);
    CHECK_FALSE(single(document(open_tuple("t1", "<contact>sip:bob@192.0.2.10</contact>")))
                    .priority.has_value());
    CHECK_FALSE(single(document(open_tuple("t1", "<contact priority=\"high\">sip:b@c</contact>")))
                    .priority.has_value());
    // Only the first contact counts (PIDF allows one).
    CHECK(single(document(open_tuple("t1", "<contact priority=\"1\">sip:a@b</contact>"
                                           "<contact priority=\"0\">sip:c@d</contact>")))
              .priority == 127);
}

TEST_CASE("P11 one resource per tuple, in document order; repeated resources: the first") {
    const auto resources =
        parsed(document(open_tuple("a") +
                        "<tuple id=\"b\"><status><basic>closed</basic>"
                        "</status></tuple>" +
                        open_tuple("a", "<note>again</note>") + open_tuple("c")));
    REQUIRE(resources.size() == 3);
    CHECK(resources[0].resource == "a");
    CHECK(resources[0].status.empty());
    CHECK(resources[1].resource == "b");
    CHECK_FALSE(resources[1].available);
    CHECK(resources[2].resource == "c");
    // A tuple without id is the bare resource.
    const auto bare = single(document("<tuple><status><basic>open</basic></status></tuple>"));
    CHECK(bare.resource.empty());
    CHECK(bare.available);
}

TEST_CASE("P11 a document without tuples describes no resource") {
    CHECK(parsed(document("")).empty());
    CHECK(parsed(document(person_with("<rpid:away/>") + "<note>Away</note>")).empty());
    CHECK(parsed("<presence xmlns='urn:ietf:params:xml:ns:pidf'/>").empty());
}

TEST_CASE("P11 unknown elements, attributes and namespaces are ignored") {
    const auto p = single(
        document("<tuple id=\"t1\" x:extra=\"1\" xmlns:x=\"urn:x\">"
                 "<status><basic>open</basic><x:geopriv><x:location-info><x:civicAddress>"
                 "<x:A1>US</x:A1></x:civicAddress></x:location-info></x:geopriv></status>"
                 "<dm:deviceID>mac:8asd7d7d70</dm:deviceID>"
                 "<caps:servcaps xmlns:caps=\"urn:ietf:params:xml:ns:pidf:caps\"><caps:audio>true"
                 "</caps:audio></caps:servcaps>"
                 "<rpid:user-input>idle</rpid:user-input><rpid:class>work</rpid:class>"
                 "<contact priority=\"0.5\">sip:a@b</contact><note>hi</note>"
                 "<timestamp>2005-10-27T16:49:29Z</timestamp></tuple>"
                 "<dm:device id=\"d1\"><rpid:user-input>idle</rpid:user-input>"
                 "<dm:deviceID>mac:8asd7d7d70</dm:deviceID></dm:device>"
                 "<x:tuple xmlns:x=\"urn:x\" id=\"not-pidf\"/><?pi data?><!-- comment -->"));
    CHECK(p.resource == "t1");
    CHECK(p.available);
    CHECK(p.show == Show::none);
    CHECK(p.priority == 64);
    CHECK(p.status == "hi");
}

TEST_CASE("P11 the pidf namespace may be bound to a prefix") {
    const auto p = single("<p:presence xmlns:p='urn:ietf:params:xml:ns:pidf' "
                          "xmlns:r='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:e@example.org'>"
                          "<p:tuple id='mobile'><p:status><p:basic>open</p:basic><r:activities>"
                          "<r:meeting/></r:activities></p:status><p:note>brb</p:note></p:tuple>"
                          "</p:presence>");
    CHECK(p.resource == "mobile");
    CHECK(p.available);
    CHECK(p.show == Show::dnd);
    CHECK(p.status == "brb");
}

// ---------------------------------------------------------------------------
// Real peers

TEST_CASE("P11 Kamailio presence_xml aggregated body: several tuples and persons") {
    const std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid" entity="sip:bob@simple.test">
  <tuple id="0x7f3a2c001">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="0.8">sip:bob@192.0.2.10:5060</contact>
    <note xml:lang="en">On the road</note>
  </tuple>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:on-the-phone/>
    </rpid:activities>
    <dm:note>Phoning</dm:note>
  </dm:person>
  <note>Available</note>
  <tuple id="t4109">
    <status>
      <basic>closed</basic>
    </status>
    <contact>sip:bob@simple.test</contact>
  </tuple>
  <dm:person id="p4159">
    <rpid:activities/>
  </dm:person>
</presence>
)";
    const auto resources = parsed(body);
    REQUIRE(resources.size() == 2);
    CHECK(resources[0].resource == "0x7f3a2c001");
    CHECK(resources[0].available);
    CHECK(resources[0].show == Show::dnd);
    CHECK(resources[0].status == "On the road");
    CHECK(resources[0].status_lang == "en");
    CHECK(resources[0].priority == 102);
    CHECK(resources[1].resource == "t4109");
    CHECK_FALSE(resources[1].available);
    CHECK(resources[1].show == Show::none);
    CHECK(resources[1].status == "Phoning"); // the person's note: the tuple has none
}

TEST_CASE("P11 Kamailio dummy body (force_dummy_presence)") {
    const std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid" entity="sip:dave@simple.test">
<tuple xmlns="urn:ietf:params:xml:ns:pidf" id="615293b33c62dec073e05d9421e9f48b">
<status>
<basic>open</basic>
</status>
</tuple>
<note xmlns="urn:ietf:params:xml:ns:pidf">Available</note>
<dm:person xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" id="1">
<rpid:activities/>
<dm:note>Available</dm:note>
</dm:person>
</presence>)";
    const auto p = single(body);
    CHECK(p.resource == "615293b33c62dec073e05d9421e9f48b");
    CHECK(p.available);
    CHECK(p.show == Show::none);
    CHECK(p.status == "Available");
}

TEST_CASE("P11 baresip presence module bodies (publisher.c / notifier.c)") {
    // As baresip prints it: CRLF line ends, the person before the tuple, an
    // empty <rpid:activities/>, basic open / closed / "unknown".
    const auto baresip = [](std::string_view basic) {
        return "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\r\n"
               "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\r\n"
               "    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\"\r\n"
               "    xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\"\r\n"
               "    entity=\"sip:carol@simple.test\">\r\n"
               "  <dm:person id=\"p4159\"><rpid:activities/></dm:person>\r\n"
               "  <tuple id=\"t4109\">\r\n"
               "    <status>\r\n"
               "      <basic>" +
               std::string(basic) +
               "</basic>\r\n"
               "    </status>\r\n"
               "    <contact>sip:carol@simple.test</contact>\r\n"
               "  </tuple>\r\n"
               "</presence>\r\n";
    };
    auto p = single(baresip("open"));
    CHECK(p.resource == "t4109");
    CHECK(p.available);
    CHECK(p.show == Show::none);
    CHECK(p.status.empty());
    CHECK_FALSE(p.priority.has_value());
    CHECK_FALSE(single(baresip("closed")).available);
    CHECK_FALSE(single(baresip("unknown")).available);
}

TEST_CASE("P11 RPID as RFC 4480 shows it: notes in two languages, activities with a note") {
    const std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status><basic>open</basic></status>
    <rpid:user-input idle-threshold="600" last-input="2004-10-21T13:20:00.000-05:00">idle</rpid:user-input>
    <contact priority="0.8">im:someone@mobile.example.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <note xml:lang="fr">Ne d&#233;rangez pas, s'il vous plait</note>
    <timestamp>2005-10-27T16:49:29Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <rpid:activities from="2005-05-30T12:00:00+05:00" until="2005-05-30T17:00:00+05:00">
      <rpid:note>Far away</rpid:note>
      <rpid:vacation/>
    </rpid:activities>
    <rpid:mood><rpid:angry/><rpid:other>brooding</rpid:other></rpid:mood>
  </dm:person>
</presence>
)";
    const auto p = single(body);
    CHECK(p.resource == "bs35r9");
    CHECK(p.show == Show::xa);
    CHECK(p.status == "Don't Disturb Please!");
    CHECK(p.status_lang == "en");
    CHECK(p.priority == 102);
}

// ---------------------------------------------------------------------------
// S2: malformed input is an error, never a crash

TEST_CASE("P11 malformed documents are PidfError") {
    const std::string good = presence_to_pidf(entity, {available("pc", Show::away)});
    REQUIRE(pidf_to_presence(good).has_value());
    std::vector<std::pair<std::string_view, std::string>> rows = {
        {"empty", ""},
        {"white space only", "  \n"},
        {"not XML", "open"},
        {"truncated", good.substr(0, good.size() / 2)},
        {"truncated before the end tag", good.substr(0, good.size() - 12)},
        {"wrong root name", "<presences xmlns='urn:ietf:params:xml:ns:pidf'/>"},
        {"root without namespace", "<presence entity='pres:a@b'><tuple id='t'/></presence>"},
        {"root in another namespace",
         "<presence xmlns='urn:ietf:params:xml:ns:xpidf'><tuple id='t'/></presence>"},
        {"xpidf", "<?xml version='1.0'?><presence><presentity uri='sip:a@b'/>"
                  "<atom id='1'><address uri='sip:a@b'><status status='open'/></address>"
                  "</atom></presence>"},
        {"DOCTYPE", "<!DOCTYPE presence><presence xmlns='urn:ietf:params:xml:ns:pidf'/>"},
        {"internal subset",
         "<!DOCTYPE presence [<!ENTITY n 'x'>]><presence "
         "xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='t'><note>&n;</note></tuple></presence>"},
        {"billion laughs",
         "<?xml version='1.0'?><!DOCTYPE p [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b "
         "'&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
         "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>]><presence "
         "xmlns='urn:ietf:params:xml:ns:pidf'><note>&d;&d;&d;&d;</note></presence>"},
        {"external entity", "<!DOCTYPE p [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><presence "
                            "xmlns='urn:ietf:params:xml:ns:pidf'><note>&x;</note></presence>"},
        {"undefined entity", "<presence xmlns='urn:ietf:params:xml:ns:pidf'>&nbsp;</presence>"},
        {"unbound prefix", "<presence xmlns='urn:ietf:params:xml:ns:pidf'><x:a/></presence>"},
        {"mismatched tags", "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple></status>"
                            "</presence>"},
        {"two roots", "<presence xmlns='urn:ietf:params:xml:ns:pidf'/><presence "
                      "xmlns='urn:ietf:params:xml:ns:pidf'/>"},
        {"text after the root", good + "trailing"},
        {"duplicate attribute",
         "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='a' id='b'/></presence>"},
        {"Latin-1 byte", "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='t'><note>"
                         "Caf\xe9</note></tuple></presence>"},
        {"Latin-1 even when declared",
         "<?xml version='1.0' encoding='ISO-8859-1'?><presence "
         "xmlns='urn:ietf:params:xml:ns:pidf'><note>Caf\xe9</note></presence>"},
        {"overlong UTF-8", "<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>\xc0\xaf</note>"
                           "</presence>"},
        {"UTF-8 surrogate", "<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>\xed\xa0\x80"
                            "</note></presence>"},
        {"NUL byte",
         std::string("<presence xmlns='urn:ietf:params:xml:ns:pidf'>") + '\0' + "</presence>"},
        {"control character reference",
         "<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>&#1;</note></presence>"},
        {"UTF-16", std::string("\xff\xfe<\0p\0/\0>\0", 10)},
    };
    for (const auto& row : rows) {
        CAPTURE(row.first);
        const auto result = pidf_to_presence(row.second);
        CHECK_FALSE(result.has_value());
        if (!result) {
            CHECK_FALSE(result.error().what.empty());
        }
    }
}

TEST_CASE("P11 size bound: more than max_bytes is PidfError before any parsing") {
    const std::string good = presence_to_pidf(entity, {available("pc")});
    CHECK(pidf_to_presence(good, good.size()).has_value());
    const auto small = pidf_to_presence(good, good.size() - 1);
    REQUIRE_FALSE(small.has_value());
    CHECK(small.error().what.find("exceeds") != std::string::npos);

    // Over the default 64 KiB: a long note.
    auto p = available("pc");
    p.status = std::string(std::size_t{64} * 1024, 'x');
    const auto huge = presence_to_pidf(entity, {p});
    CHECK_FALSE(pidf_to_presence(huge).has_value());
    CHECK(pidf_to_presence(huge, huge.size()).has_value());
}

TEST_CASE("P11 depth bound: nesting deeper than 32 is PidfError") {
    const auto nested = [](int levels) {
        std::string body = "<presence xmlns='urn:ietf:params:xml:ns:pidf'>";
        for (int i = 0; i < levels; ++i) {
            body += "<x:e xmlns:x='urn:x'>";
        }
        for (int i = 0; i < levels; ++i) {
            body += "</x:e>";
        }
        return body + "</presence>";
    };
    CHECK(pidf_to_presence(nested(31)).has_value()); // 32 levels with the root
    CHECK_FALSE(pidf_to_presence(nested(32)).has_value());
    const auto deep = pidf_to_presence(nested(2000));
    REQUIRE_FALSE(deep.has_value());
    CHECK(deep.error().what == "nesting too deep");
}

TEST_CASE("P11 S2 every seed of the PIDF fuzz corpus is read or refused, never more") {
    const std::filesystem::path dir =
        std::filesystem::path(XSGW_SOURCE_DIR) / "test" / "fuzz" / "corpus" / "pidf";
    REQUIRE(std::filesystem::is_directory(dir));
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string body((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
        const auto name = entry.path().filename().string();
        CAPTURE(name);
        const auto result = pidf_to_presence(body);
        // The seeds say what they are in their names.
        CHECK(result.has_value() == (name.rfind("malformed_", 0) != 0));
        ++files;
    }
    CHECK(files >= 12);
}

// ---------------------------------------------------------------------------
// Property: XMPP values -> PIDF -> the same values

namespace {

class Generator {
public:
    explicit Generator(std::uint32_t seed) : rng_(seed) {}

    std::size_t below(std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
    }
    bool chance(unsigned percent) { return below(100) < percent; }
    template <class T> const T& pick(const std::vector<T>& pool) {
        return pool[below(pool.size())];
    }

    std::string resource() {
        static const std::vector<std::string> pool = {
            "pc",
            "phone",
            "Conversations.x1Y2",
            "home laptop",
            "a_b",
            "_20",
            "ID-",
            "ID-x",
            "caf\xc3\xa9",
            "\xe6\x97\xa5",
            "<&>'\"",
            "a/b@c:d",
            "psi+",
            "gajim.ABC",
            "-",
            ".",
            "1",
            "\xf0\x9f\x98\x80",
        };
        std::string out;
        const auto parts = below(3);
        for (std::size_t i = 0; i < parts; ++i) {
            out += pick(pool);
        }
        return out;
    }

    std::string status() {
        static const std::vector<std::string> pool = {
            "Lunch",
            "back at 4 <b>&amp;</b>",
            "  spaced  ",
            "line\nbreak",
            "cr\r\nlf",
            "tab\t",
            "\xc3\xbcn\xc3\xaf\x63\xc3\xb6\x64\xc3\xa9", // "ünïcödé"
            "'\"",
            "]]>",
            "\xf0\x9f\x98\x80",
            " ",
            "&lt;",
            "<!-- x -->",
        };
        if (chance(30)) {
            return {};
        }
        std::string out;
        const auto parts = 1 + below(3);
        for (std::size_t i = 0; i < parts; ++i) {
            out += pick(pool);
        }
        return out;
    }

    std::string lang() {
        static const std::vector<std::string> pool = {"", "en", "fr-CA", "x-klingon", "de\t"};
        return pick(pool);
    }

    std::optional<int> priority() {
        static const std::vector<int> edges = {-128, -1, 0, 1, 126, 127};
        if (chance(25)) {
            return std::nullopt;
        }
        if (chance(40)) {
            return pick(edges);
        }
        return static_cast<int>(below(256)) - 128;
    }

    ResourcePresence presence() {
        static const std::vector<Show> shows = {Show::none, Show::away, Show::chat, Show::dnd,
                                                Show::xa};
        ResourcePresence p;
        p.resource = resource();
        p.available = chance(75);
        p.show = pick(shows);
        p.status = status();
        p.status_lang = lang();
        p.priority = priority();
        return p;
    }

private:
    std::mt19937 rng_;
};

// What the round trip promises to give back (see presence.hpp): show and
// priority only for available resources, no negative priority, a language
// only with a status.
ResourcePresence expected_after_round_trip(ResourcePresence p) {
    if (!p.available) {
        p.show = Show::none;
        p.priority.reset();
    }
    if (p.priority && *p.priority < 0) {
        p.priority.reset();
    }
    if (p.status.empty()) {
        p.status_lang.clear();
    }
    return p;
}

} // namespace

TEST_CASE("P10 P11 property: presence_to_pidf then pidf_to_presence gives the values back") {
    Generator gen(20240611);
    for (int round = 0; round < 3000; ++round) {
        std::vector<ResourcePresence> list;
        const auto n = 1 + gen.below(5);
        for (std::size_t i = 0; i < n; ++i) {
            auto p = gen.presence();
            if (std::any_of(list.begin(), list.end(),
                            [&](const ResourcePresence& q) { return q.resource == p.resource; })) {
                continue; // resources are distinct in a JID
            }
            list.push_back(std::move(p));
        }
        const auto pidf = presence_to_pidf(entity, list);
        CAPTURE(pidf);
        REQUIRE(tuple_ids_are_ncnames(pidf));
        const auto back = pidf_to_presence(pidf);
        REQUIRE(back.has_value());
        REQUIRE(back->size() == list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            CHECK((*back)[i] == expected_after_round_trip(list[i]));
        }
    }
}

TEST_CASE("P11 property: what is read from any document is written and read back the same") {
    // Reading other peers' documents, writing them as ours and reading again
    // must not change anything: the gateway may relay presence twice.
    const std::vector<std::string> bodies = {
        document(open_tuple("a b", "<note xml:lang='x'>n</note>") + person_with("<rpid:busy/>")),
        document(open_tuple("ID-_00", "<contact priority='0.8'>sip:a@b</contact>") +
                 open_tuple("a&#9;b") + "<note>top</note>"),
        document("<tuple id='x'><status><basic>closed</basic></status></tuple>" +
                 std::string("<dm:person id='p'><dm:note>gone</dm:note></dm:person>")),
        document(open_tuple("t", "<show xmlns='jabber:client'>chat</show>") + open_tuple("u") +
                 person_with("<rpid:away/>")),
    };
    for (const auto& body : bodies) {
        const auto first = parsed(body);
        const auto again = parsed(presence_to_pidf(entity, first));
        CHECK(again == first);
    }
}

TEST_SUITE_END();
