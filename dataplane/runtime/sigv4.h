#pragma once

// AWS Signature Version 4 (header form) for one HTTP request. Pure: no I/O, no clock, no
// environment; the caller passes the time. Checked against AWS's published test suite.
//
// The caller lists every header it will send that should be signed (host included is optional:
// Host is always signed, from `host`); SignV4 returns the headers to add (Authorization,
// X-Amz-Date, X-Amz-Security-Token when there is a session token). Header names are compared
// case-insensitively, values are trimmed and inner runs of spaces collapsed as the spec says.

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::dataplane {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: long-term keys
};

struct SigV4Request {
  std::string method = "GET";
  std::string host;  // the Host header as sent (with ":port" when not the scheme's default)
  // The path as it goes on the wire, already URI-encoded (S3: each segment encoded once).
  std::string path = "/";
  // Decoded query parameters, in any order; encoded and sorted here.
  std::vector<std::pair<std::string, std::string>> query;
  // Further headers to sign (e.g. x-amz-content-sha256, range).
  HeaderList headers;
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
  std::string payload_sha256;
};

struct SigV4Scope {
  std::string region;
  std::string service;  // "s3", "sts"
};

// Everything the signature is computed from, exposed for tests and debugging (never logged: it
// names the access key id, though never the secret).
struct SigV4Result {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  HeaderList headers_to_add;  // Authorization, X-Amz-Date[, X-Amz-Security-Token]
};

SigV4Result SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                   const SigV4Scope& scope, std::chrono::system_clock::time_point now);

// RFC 3986 unreserved characters kept, everything else %XX (upper-case hex). With
// `keep_slash`, '/' is kept too (S3 object keys in a path).
std::string AwsUriEncode(std::string_view s, bool keep_slash);

// "20150830T123600Z"
std::string AmzDate(std::chrono::system_clock::time_point t);

// Lower-case hex of SHA-256 and of HMAC-SHA256 (OpenSSL).
std::string Sha256HexOf(std::string_view bytes);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string HexOf(std::string_view raw);

}  // namespace sluice::dataplane
