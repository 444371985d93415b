#pragma once

// Where a model comes from, and fetching its bytes.
//
// Supported URIs: `file:///abs/path`, a plain path, and `http://` / `https://` (libcurl, redirects
// followed, TLS verified against the system store or `ca_file`). Other schemes (s3://, models:/)
// are Unimplemented.
//
// Contract: FetchUri is a single attempt, never retried here: the caller decides whether and when
// to retry (the server fails its start-up and Kubernetes restarts it with backoff). It is
// idempotent and thread-safe. Errors: a missing file or an HTTP 404 is NotFound; connection
// failures and HTTP 5xx are Unavailable; a body over `max_bytes` is ResourceExhausted; a checksum
// mismatch is InvalidArgument naming both digests.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace sluice::dataplane {

struct ModelSource {
  std::string uri;
  // "xgboost-json", "xgboost-ubj", or "" / "auto" to decide by extension, then by content.
  std::string format;
  // Optional "sha256:<64 hex digits>" the model bytes must match.
  std::string sha256;
  // Optional reference predictions (see reference.h). Empty: look beside the model for
  // `<model without extension>.reference.json` and use it when it exists.
  std::string reference_uri;
};

struct FetchOptions {
  size_t max_bytes = size_t{1} << 30;
  std::chrono::milliseconds connect_timeout{10'000};
  // Whole-transfer limit for http(s).
  std::chrono::milliseconds timeout{120'000};
  // PEM bundle for https; empty uses the system store.
  std::string ca_file;
};

// Reads the whole resource. See the contract above.
Result<std::string> FetchUri(const std::string& uri, const FetchOptions& options);

// Lower-case hex SHA-256 of `bytes` (OpenSSL EVP).
std::string Sha256Hex(std::string_view bytes);

// Checks `bytes` against "sha256:<hex>" (the prefix is required, hex in either case).
// An empty `expected` passes. A malformed `expected` or a mismatch is InvalidArgument.
Status VerifySha256(std::string_view bytes, std::string_view expected);

// The URI of the reference file that belongs beside `model_uri`: the extension (.json, .ubj) is
// replaced by ".reference.json". Query strings are kept.
std::string ReferenceUriFor(const std::string& model_uri);

// The file name of the URI's path without its extension ("fraud" for ".../fraud.json?x=1").
std::string UriStem(const std::string& uri);

// The lower-case file extension of the URI's path ("json", "ubj"), ignoring query and fragment.
std::string UriExtension(const std::string& uri);

}  // namespace sluice::dataplane
