#include "xsgw/translate/presence.hpp"

#include <doctest/doctest.h>
