#pragma once

// Wall-clock timestamps as status fields carry them (metav1.Time: RFC 3339, UTC, whole seconds).
// Decisions that must survive an operator restart are made on these, never on a steady clock.

#include <chrono>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace sluice::controllers {

using WallTime = std::chrono::system_clock::time_point;

// "2024-05-01T12:00:00Z". Sub-second parts are dropped, as the API server would drop them.
std::string FormatTime(WallTime t);

// Accepts "Z" or a numeric offset and an optional fraction; InvalidArgument otherwise.
Result<WallTime> ParseTime(std::string_view text);

// `t` rounded down to a whole second: what a timestamp becomes after a round trip through status.
WallTime TruncateToSeconds(WallTime t);

}  // namespace sluice::controllers
