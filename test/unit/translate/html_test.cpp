// text/html bodies -> plain text and XEP-0071 XHTML-IM (M6), and the
// robustness of the HTML reader (S2).
#include "xsgw/translate/message.hpp"

#include <cstdint>
#include <doctest/doctest.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace xsgw::translate;

namespace {

// The element names used in an XHTML-IM fragment, in order.
std::vector<std::string> element_names(std::string_view xml) {
    std::vector<std::string> names;
    for (std::size_t at = xml.find('<'); at != std::string_view::npos; at = xml.find('<', at + 1)) {
        std::size_t end = at + 1;
        if (end < xml.size() && xml[end] == '/') {
            continue;
        }
        while (end < xml.size() && xml[end] != ' ' && xml[end] != '>' && xml[end] != '/') {
            ++end;
        }
        names.emplace_back(xml.substr(at + 1, end - at - 1));
    }
    return names;
}

bool within_profile(std::string_view xml) {
    for (const auto& name : element_names(xml)) {
        bool known = false;
        for (const std::string_view allowed :
             {"a", "blockquote", "br", "cite", "em", "li", "ol", "p", "span", "strong", "ul"}) {
            known = known || name == allowed;
        }
        if (!known) {
            return false;
        }
    }
    return true;
}

class Random {
public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint32_t next() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        return static_cast<std::uint32_t>(state_);
    }

private:
    std::uint64_t state_;
};

} // namespace

TEST_CASE("M6 HTML -> plain text: tags stripped, entities decoded, <br>/<p> -> newlines") {
    struct Row {
        std::string_view html;
        std::string_view text;
    };
    const std::vector<Row> rows = {
        {"Hello <b>world</b>!", "Hello world!"},
        {"line1<br>line2<BR/>line3</br>line4", "line1\nline2\nline3\nline4"},
        {"<p>one</p><p>two</p>", "one\ntwo"},
        {"<div>a</div>b<div>c</div>", "a\nb\nc"},
        {"  lots   of \n\t space  ", "lots of space"},
        {"&lt;tag&gt; &amp; &quot;q&quot; &apos;a&apos;", "<tag> & \"q\" 'a'"},
        {"caf&eacute; &euro;5 &#233;&#xE9;&#X263a;", "caf\xC3\xA9 \xE2\x82\xAC"
                                                     "5 \xC3\xA9\xC3\xA9\xE2\x98\xBA"},
        {"a&nbsp;&nbsp;b", "a  b"},
        {"&bogus; &amp &#; & x", "&bogus; &amp &#; & x"},
        {"&#0;&#xD800;&#x110000;", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"&#1;x&#x7;", "x"},
        {"5 < 6 and 7 > 3", "5 < 6 and 7 > 3"},
        {"<html><head><title>T</title><style>b{}</style></head><body>text</body></html>", "text"},
        {"<head><title>T</title><body>after unclosed head", "after unclosed head"},
        {"<script>document.write('<b>x</b>')</script>safe", "safe"},
        {"<SCRIPT type='x'>a</b></ScRiPt>safe", "safe"},
        {"<!-- comment <b>x</b> -->shown<!DOCTYPE html><?php x ?>", "shown"},
        {"<ul><li>a</li><li>b</li></ul>", "- a\n- b"},
        {"<ol><li>a<li>b</ol>", "1. a\n2. b"},
        {"<a href='http://x.org/'>site</a>", "site (http://x.org/)"},
        {"<a href='http://x.org/'>http://x.org/</a>", "http://x.org/"},
        {"<a href='mailto:a@b.c'>a@b.c</a>", "a@b.c"},
        {"<a href='javascript:alert(1)'>click</a>", "click"},
        {"<a href='http://x.org/'></a>", "http://x.org/"},
        {"pic: <img src='http://x/y.png' alt='a cat'>", "pic: a cat"},
        {"<pre>a  b\n  c</pre>", "a  b\n  c"},
        {"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
        {"\r\nwin\r\nlines\r\n", "win lines"},
        {"<b>unterminated <i", "unterminated"},
        {"", ""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.html);
        CHECK(html_to_text(row.html) == row.text);
    }
}

TEST_CASE("M6 HTML -> XHTML-IM within XEP-0071's recommended profile") {
    struct Row {
        std::string_view html;
        std::optional<std::string_view> xhtml;
    };
    const std::vector<Row> rows = {
        {"Hello <b>world</b>!", "Hello <strong>world</strong>!"},
        {"a <b>x </b>y", "a <strong>x</strong> y"},
        {"<i>it</i> <em>em</em> <cite>c</cite>", "<em>it</em> <em>em</em> <cite>c</cite>"},
        {"<u>u</u><s>s</s>", "<span style=\"text-decoration: underline\">u</span>"
                             "<span style=\"text-decoration: line-through\">s</span>"},
        {"<font color='red' face='Arial'>f</font>",
         "<span style=\"color: red; font-family: Arial\">f</span>"},
        {"<font color='url(x)'>f</font> <b>b</b>", "f <strong>b</strong>"},
        {"<span style='color: #f00; position: absolute; font-weight: bold'>s</span>",
         "<span style=\"color: #f00; font-weight: bold\">s</span>"},
        {"<span style='background-color: expression(alert(1))'>s</span> <em>x</em>",
         "s <em>x</em>"},
        {"<span>plain span</span> <b>b</b>", "plain span <strong>b</strong>"},
        {"<p style='margin-left: 5%'>quote</p>", "<p style=\"margin-left: 5%\">quote</p>"},
        {"<h1>Title</h1>", "<p style=\"font-weight: bold\">Title</p>"},
        {"<code>x = 1</code>", "<span style=\"font-family: monospace\">x = 1</span>"},
        {"<a href='https://example.org/?a=1&amp;b=2'>link</a>",
         "<a href=\"https://example.org/?a=1&amp;b=2\">link</a>"},
        {"<a href='javascript:alert(1)'>x</a> <b>b</b>", "x <strong>b</strong>"},
        {"<a href='/relative'>x</a> <b>b</b>", "x <strong>b</strong>"},
        {"<a href='xmpp:juliet@example.com'>j</a>", "<a href=\"xmpp:juliet@example.com\">j</a>"},
        {"<ol><li>one<li>two<ul><li>a</li></ul></li></ol>",
         "<ol><li>one</li><li>two<ul><li>a</li></ul></li></ol>"},
        {"<blockquote><p>q</p></blockquote>", "<blockquote><p>q</p></blockquote>"},
        {"<b>bold<p>para</p></b>", "<strong>bold<br/>para</strong>"},
        {"<li>loose item</li> <b>x</b>", "loose item<br/><strong>x</strong>"},
        {"<b>a</i>b</b>", "<strong>ab</strong>"},
        {"<b><i>a</b>b</i>", "<strong><em>a</em></strong>b"},
        {"<b>open", "<strong>open</strong>"},
        {"<b>x</b><img src='http://x/y.png' alt='pic'>", "<strong>x</strong>pic"},
        {"<pre><b>a  b\nc</b></pre>",
         "<p style=\"font-family: monospace\"><strong>a\xC2\xA0\xC2\xA0"
         "b<br/>c</strong></p>"},
        {"<b>5 &lt; 6 &amp; &nbsp;</b>", "<strong>5 &lt; 6 &amp; \xC2\xA0</strong>"},
        {"<b>\"q\" 'a'</b>", "<strong>&quot;q&quot; &apos;a&apos;</strong>"},
        // Nothing beyond plain text, paragraphs and breaks: no XHTML-IM.
        {"plain text", std::nullopt},
        {"line<br>break", std::nullopt},
        {"<p>a</p><p>b</p>", std::nullopt},
        {"<html><body>just text</body></html>", std::nullopt},
        {"<span>x</span>", std::nullopt},
        // Cut off markup: no XHTML-IM.
        {"<b>bold</b> <i", std::nullopt},
        {"<b>bold</b> <!-- open comment", std::nullopt},
        {"<b>x</b><script>never closed", std::nullopt},
        {"<b>x</b><a href='http://x", std::nullopt},
    };
    for (const auto& row : rows) {
        CAPTURE(row.html);
        const auto xhtml = html_to_xhtml_im(row.html);
        CHECK(xhtml.has_value() == row.xhtml.has_value());
        if (xhtml && row.xhtml) {
            CHECK(*xhtml == *row.xhtml);
            CHECK(is_well_formed_xhtml_body(*xhtml));
            CHECK(within_profile(*xhtml));
        }
    }
}

TEST_CASE("M6 XHTML-IM is omitted when nesting is too deep or it exceeds the limit") {
    std::string deep;
    for (int i = 0; i < 40; ++i) {
        deep += "<b>";
    }
    deep += "x";
    CHECK_FALSE(html_to_xhtml_im(deep).has_value());
    CHECK(html_to_text(deep) == "x");
    CHECK(html_to_xhtml_im("<b>0123456789</b>", 100).has_value());
    CHECK_FALSE(html_to_xhtml_im("<b>0123456789</b>", 20).has_value());
}

TEST_CASE("M6 well-formedness check of XHTML bodies") {
    CHECK(is_well_formed_xhtml_body(""));
    CHECK(is_well_formed_xhtml_body("<p>a<br/>&amp;&#233;</p>"));
    CHECK_FALSE(is_well_formed_xhtml_body("<p>"));
    CHECK_FALSE(is_well_formed_xhtml_body("a &nbsp; b"));
    CHECK_FALSE(is_well_formed_xhtml_body("</body><body>"));
    CHECK_FALSE(is_well_formed_xhtml_body("<!DOCTYPE x>"));
}

TEST_CASE("S2 HTML conversion of random tag soup: XHTML-IM, when made, is well-formed") {
    const std::vector<std::string_view> pieces = {
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<ul>",
        "<li>",
        "</ul>",
        "<ol>",
        "</ol>",
        "<br>",
        "<a href='http://x/?a&amp;b'>",
        "</a>",
        "<a href=javascript:x>",
        "<span style='color:red'>",
        "</span>",
        "<font color=blue>",
        "</font>",
        "<pre>",
        "</pre>",
        "<script>",
        "</script>",
        "<!--",
        "-->",
        "<head>",
        "</head>",
        "<body>",
        "text",
        " ",
        "\n",
        "&amp;",
        "&nbsp;",
        "&#x1F600;",
        "&#0;",
        "<",
        ">",
        "\"",
        "'",
        "=",
        "\xFF",
        "\xC3\xA9",
        "<img alt='i'>",
        "<table><tr><td>",
        "</td>",
        "</tr>",
        "<blockquote>",
        "</blockquote>",
        "<h2>",
        "</h2>",
        "<u>",
        "<s>",
        "</u>",
        "<code>",
        "</code>",
        "&lt;",
        "<b",
        "<!DOCTYPE html>",
    };
    Random random(7);
    int produced = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string html;
        const int count = static_cast<int>(random.next() % 40);
        for (int j = 0; j < count; ++j) {
            html += pieces[random.next() % pieces.size()];
        }
        CAPTURE(html);
        const auto text = html_to_text(html);
        CHECK(is_valid_utf8(text));
        const auto xhtml = html_to_xhtml_im(html);
        if (xhtml) {
            ++produced;
            CHECK(is_well_formed_xhtml_body(*xhtml));
            CHECK(within_profile(*xhtml));
            CHECK(xhtml->find("javascript") == std::string::npos);
            CHECK(xhtml->find("script") == std::string::npos);
        }
    }
    CHECK(produced > 100);
}

TEST_CASE("S2 HTML reader survives every prefix of a message") {
    const std::string html =
        "<html><head><title>t</title><style>x{}</style></head><body><p style='color:red'>Hi "
        "<b>there</b> &amp; <a href=\"http://example.org/\">link</a><br/><!-- c --></p>"
        "<script>var a = '</b>';</script><ul><li>x</li></ul></body></html>";
    for (std::size_t length = 0; length <= html.size(); ++length) {
        const auto prefix = std::string_view(html).substr(0, length);
        CHECK(is_valid_utf8(html_to_text(prefix)));
        if (const auto xhtml = html_to_xhtml_im(prefix)) {
            CHECK(is_well_formed_xhtml_body(*xhtml));
        }
    }
}
