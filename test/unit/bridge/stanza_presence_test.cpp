#include "xsgw/bridge/stanza_presence.hpp"

#include <doctest/doctest.h>
