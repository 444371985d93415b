#pragma once

// Text to values, for CSV fields: integers, decimals, booleans, base64 and timestamps.
// Each returns false when the text is not a value of that type; none allocates except Base64.

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::features {

bool ParseInt64(std::string_view s, int64_t& out);
// Also accepts a decimal with a zero fraction ("12.0"), as pandas writes an integer column that
// has missing values.
bool ParseIntegral(std::string_view s, int64_t& out);
// `null` is set for NaN (pandas' missing value).
bool ParseDouble(std::string_view s, double& out, bool& null);
// true/false in any case, 1/0.
bool ParseBool(std::string_view s, bool& out);
// Standard base64 with padding (or without).
bool DecodeBase64(std::string_view s, std::string& out);
// RFC 3339 / ISO 8601: "2026-12-06T10:00:00Z", "2026-12-06 10:00:00.123456+00:00",
// "2026-12-06T10:00:00" (naive: UTC), "2026-12-06"; or integer epoch seconds. Nanoseconds since
// the Unix epoch, UTC.
bool ParseTimestamp(std::string_view s, int64_t& nanos);

}  // namespace sluice::features
