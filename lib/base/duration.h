#pragma once

// Durations as people and Kubernetes write them: Go's time.Duration text ("5s", "1m30s", "250ms",
// "500us", "1.5h"). The parser behind every duration flag and every duration field of the API.

#include <chrono>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace sluice {

// Parses a non-negative Go-style duration. Units: ns, us, µs, ms, s, m, h; fractions allowed
// ("1.5h"); a bare "0" is zero. Negative or unit-less values, and values beyond ~146 years, are
// InvalidArgument.
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

// The shortest Go-style text for `d`: "0s", "250ns", "1.5us", "250ms", "1m30s", "2h",
// "1.0005s". ParseGoDuration(FormatGoDuration(d)) == d.
std::string FormatGoDuration(std::chrono::nanoseconds d);

}  // namespace sluice
