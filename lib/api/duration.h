#pragma once

// Durations as the API writes them: Go's time.Duration text ("5s", "1m30s", "250ms", "1.5h"),
// the form Kubernetes users already know from other CRDs.

#include <chrono>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace sluice::controllers {

// Parses a non-negative Go-style duration. Units: ns, us, µs, ms, s, m, h; fractions allowed
// ("1.5h"); a bare "0" is zero. Sub-millisecond parts are truncated. Negative or unit-less
// values are InvalidArgument.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The shortest Go-style text for `d` ("0s", "250ms", "1m30s", "2h"), for messages and defaults.
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace sluice::controllers
