// Test helper: a stanza parsed the way the component link parses the stream.
#pragma once

#include <doctest/doctest.h>
#include <gloox/parser.h>
#include <gloox/tag.h>
#include <gloox/taghandler.h>
#include <memory>
#include <string>

namespace xsgw::test {

// A stanza as the component link gets it: parsed by gloox from the stream's bytes.
class Parsed final : public gloox::TagHandler {
public:
    explicit Parsed(std::string xml) {
        gloox::Parser parser(this);
        REQUIRE(parser.feed(xml) < 0);
        REQUIRE(tag_ != nullptr);
    }
    void handleTag(gloox::Tag* tag) override { tag_.reset(tag->clone()); }
    const gloox::Tag& tag() const { return *tag_; }

private:
    std::unique_ptr<gloox::Tag> tag_;
};

} // namespace xsgw::test
