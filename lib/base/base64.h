#pragma once

// Base64 (RFC 4648 section 4, the standard alphabet), as Kubernetes writes Secret data and the
// FeatureView CRD writes BYTES defaults.

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// Strict: a length that is a multiple of 4, '=' padding only at the end (at most two). nullopt
// for anything else.
std::optional<std::string> DecodeBase64(std::string_view in);

}  // namespace sluice
