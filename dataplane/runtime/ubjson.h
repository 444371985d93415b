#pragma once

// A reader for Universal Binary JSON (ubjson.org, draft 12), the format xgboost writes for `.ubj`
// model files. It produces the same nlohmann::json document a JSON file would, so one model parser
// serves both formats.
//
// Contract: the input comes from outside and is untrusted. Every malformed, truncated or
// implausible input (a count larger than the remaining bytes, nesting deeper than kMaxDepth, an
// unknown marker) is an InvalidArgument naming the byte offset; the reader never reads past the
// end, never recurses without bound and never allocates more than a small multiple of the input.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

#include "lib/base/status.h"

namespace sluice::dataplane {

inline constexpr int kUbjsonMaxDepth = 128;

// Parses exactly one UBJSON value that spans all of `bytes` (trailing no-op markers allowed).
Result<nlohmann::json> ParseUbjson(std::string_view bytes);

}  // namespace sluice::dataplane
