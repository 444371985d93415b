#pragma once

// The one error model of Sluice: a Status (code + message + optional details) and Result<T>
// (a value or a non-OK Status). Used by the Kubernetes client, the controllers and the data plane.
// No exceptions cross module boundaries; an OK Status allocates nothing.

#include <cassert>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice {

// Codes follow the Kubernetes API's Status reasons where they exist, so the client can map a
// server answer one to one; the rest are the usual RPC codes used by the data plane.
enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed (data plane: 400)
  kNotFound,            // 404
  kAlreadyExists,       // 409 AlreadyExists
  kConflict,            // 409 Conflict (optimistic concurrency)
  kInvalid,             // 422 Invalid, with field causes
  kBadRequest,          // 400 from the API server
  kUnauthorized,        // 401
  kForbidden,           // 403
  kGone,                // 410 (expired resourceVersion)
  kTooManyRequests,     // 429, with Retry-After
  kTimeout,             // 504 / server-side timeout / client deadline
  kUnavailable,         // transport failure, 503
  kResourceExhausted,   // queue full, body too large (data plane: 503 / 413)
  kFailedPrecondition,  // state does not allow the call (e.g. model not ready)
  kCancelled,           // shut down while waiting
  kUnimplemented,
  kInternal,            // 500 and "cannot happen"
};

std::string_view StatusCodeName(StatusCode code);

// A field-level cause from an Invalid answer ("spec.rollout.steps[1].weight: must be ...").
struct FieldCause {
  std::string field;
  std::string reason;
  std::string message;
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Optional details; all empty on an OK status.
  int http_status() const { return details_ ? details_->http_status : 0; }
  std::optional<std::chrono::seconds> retry_after() const {
    return details_ ? details_->retry_after : std::nullopt;
  }
  const std::vector<FieldCause>& causes() const;
  // The Kubernetes Status.reason string as the server sent it ("NotFound", "Expired", ...).
  const std::string& reason() const;

  Status& WithHttpStatus(int code);
  Status& WithRetryAfter(std::chrono::seconds after);
  Status& WithCauses(std::vector<FieldCause> causes);
  Status& WithReason(std::string reason);

  // Prepends context: "reading model: <original message>".
  Status Annotate(std::string_view context) const;

  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  struct Details {
    int http_status = 0;
    std::optional<std::chrono::seconds> retry_after;
    std::vector<FieldCause> causes;
    std::string reason;
  };
  Details& MutableDetails();

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::shared_ptr<Details> details_;
};

std::ostream& operator<<(std::ostream& os, const Status& s);

inline Status InvalidArgument(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
inline Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
inline Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
inline Status FailedPrecondition(std::string msg) {
  return {StatusCode::kFailedPrecondition, std::move(msg)};
}
inline Status ResourceExhausted(std::string msg) {
  return {StatusCode::kResourceExhausted, std::move(msg)};
}
inline Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
inline Status Timeout(std::string msg) { return {StatusCode::kTimeout, std::move(msg)}; }
inline Status Unimplemented(std::string msg) {
  return {StatusCode::kUnimplemented, std::move(msg)};
}

// A value or a non-OK Status. Constructing a Result from an OK Status is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T value_or(T fallback) const& { return ok() ? std::get<0>(v_) : std::move(fallback); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice

// Early return on error. RETURN_IF_ERROR(expr) for Status; ASSIGN_OR_RETURN(lhs, expr) for Result.
#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::sluice::Status sluice_status_ = (expr);    \
    if (!sluice_status_.ok()) return sluice_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(sluice_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
