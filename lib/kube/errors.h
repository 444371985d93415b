#pragma once

// Mapping of API server answers to sluice::Status. StatusFromResponse (declared in client.h) is
// implemented here with these helpers.
//
// The server's Status.reason decides first (it tells AlreadyExists from Conflict on a 409, and
// Timeout / ServerTimeout from other 5xx); the HTTP code decides when the reason is missing or
// unknown. The HTTP status, the reason, field causes and Retry-After (header or
// details.retryAfterSeconds) are kept on the Status.

#include <chrono>
#include <optional>
#include <string_view>

#include "lib/kube/client.h"

namespace sluice::kube {

// A metav1.Status object (from a response body or a watch ERROR event). `http_status` is used
// when the object carries no code.
Status StatusFromStatusObject(const Json& status, int http_status);

// The StatusCode for an HTTP status and a Status.reason ("" when unknown).
StatusCode CodeFor(int http_status, std::string_view reason);

// Retry-After as delta-seconds or an HTTP-date (relative to now).
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value);

// Whether an idempotent read that failed this way may be sent again: transport failures,
// 429 and 5xx other than 501.
bool IsRetryableRead(const Status& status);

}  // namespace sluice::kube
