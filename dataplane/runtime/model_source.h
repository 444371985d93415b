#pragma once

// Where a model comes from, and fetching its bytes.
//
// Supported URIs: `file:///abs/path`, a plain path, `http://` / `https://` (libcurl, redirects
// followed, TLS verified against the system store or `ca_file`), and `s3://bucket/key` (SigV4
// signed GET, credentials from aws_credentials.h, any S3-compatible endpoint). Other schemes
// (models:/) are Unimplemented.
//
// Contract: FetchUri is a single attempt, never retried here: the caller decides whether and when
// to retry (the server fails its start-up and Kubernetes restarts it with backoff). FetchToFile
// retries transient failures itself (options.max_attempts). Both are idempotent and thread-safe.
// Errors: a missing file or an HTTP 404 is NotFound (S3: naming NoSuchKey or NoSuchBucket); 401
// is Unauthorized, 403 Forbidden (S3: naming SignatureDoesNotMatch, InvalidAccessKeyId,
// AccessDenied, ...); connection failures and HTTP 5xx are Unavailable; a body over `max_bytes` is
// ResourceExhausted; a checksum mismatch is InvalidArgument naming both digests. Errors name the
// bucket and key, or the URL without its query string (a presigned URL's query is a credential);
// credentials and extra header values never appear in them.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/runtime/aws_credentials.h"
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

// Where s3:// URIs go.
struct S3Options {
  // "" is AWS (https://s3.<region>.amazonaws.com); otherwise "http(s)://host[:port]" of an
  // S3-compatible server (MinIO, Ceph RGW, R2, GCS interoperability).
  std::string endpoint;
  // The signing region; "" is AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
  std::string region;
  // "auto": virtual-host style on AWS for DNS-compatible bucket names without dots, path style
  // otherwise and on a custom endpoint. "path" or "virtual" force one.
  std::string addressing_style = "auto";
};

struct FetchOptions {
  size_t max_bytes = size_t{1} << 30;
  std::chrono::milliseconds connect_timeout{10'000};
  // Whole-transfer limit for http(s) and s3, per attempt.
  std::chrono::milliseconds timeout{120'000};
  // An attempt that receives nothing for this long fails as a timeout (and is retried).
  std::chrono::seconds stall_timeout{60};
  // PEM bundle for https; empty uses the system store.
  std::string ca_file;
  S3Options s3;
  // "Name: value" headers added to http(s) requests (e.g. "Authorization: Bearer ..." for an
  // artifact proxy). Never logged.
  std::vector<std::string> http_headers;
  // FetchToFile only: attempts on connection errors, timeouts and HTTP 5xx (never on 4xx), with
  // exponential backoff and jitter starting at initial_backoff.
  int max_attempts = 4;
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{8'000};
  // libcurl CURLOPT_RESOLVE entries ("host:port:address"), like curl --resolve: pins a name to
  // an address (virtual-host S3 names on a private endpoint, tests).
  std::vector<std::string> resolve;
  // The environment for credentials and region; empty: the process environment.
  GetEnvFn getenv;
};

// Reads the whole resource. See the contract above.
Result<std::string> FetchUri(const std::string& uri, const FetchOptions& options);

struct FetchResult {
  uint64_t bytes = 0;
  std::string sha256;  // lower-case hex of what was written
  int attempts = 0;
};

// Streams the resource to `dest_path` with bounded memory: it is written to
// `dest_path + ".partial"`, hashed on the way, and renamed into place only when complete and
// (with a non-empty `expected_sha256`, "sha256:<hex>") verified; on any failure the partial file
// is removed and `dest_path` is left as it was. Retries as FetchOptions says, each attempt from
// the start.
Result<FetchResult> FetchToFile(const std::string& uri, const std::string& dest_path,
                                const FetchOptions& options,
                                const std::string& expected_sha256 = "");

// s3://bucket/key split up; InvalidArgument when it is not of that form.
struct S3Location {
  std::string bucket;
  std::string key;
};
Result<S3Location> ParseS3Uri(const std::string& uri);

// The request for an S3 object: the URL to fetch, the Host header and the (encoded) path that
// are signed. Pure.
struct S3Target {
  std::string url;
  std::string host;
  std::string path;
  bool virtual_host = false;
};
Result<S3Target> S3TargetFor(const S3Location& location, const S3Options& options,
                             const std::string& region);

// The URI as it may appear in logs and errors: user info and query string replaced by "...".
std::string RedactUri(const std::string& uri);

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
