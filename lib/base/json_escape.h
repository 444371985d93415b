#pragma once

// JSON string escaping shared by error bodies, the V2 codec and JSON logs. Kept apart from the
// HTTP server so code that only writes JSON does not depend on Beast.

#include <string>
#include <string_view>

namespace sluice {

// Appends `s` to `out` as the inside of a JSON string (quotes not included): ", \ and control
// characters are escaped, valid UTF-8 is copied, and each byte that is not part of a valid UTF-8
// sequence becomes U+FFFD, so the output is always valid JSON.
void AppendJsonEscaped(std::string& out, std::string_view s);

// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view s);

// {"error":"<message>"}, the body of every error answer.
std::string JsonErrorBody(std::string_view message);

}  // namespace sluice
