#include "lib/kube/errors.h"

#include <curl/curl.h>

#include <ctime>
#include <string>

namespace sluice::kube {
namespace {

std::optional<StatusCode> CodeForReason(std::string_view reason) {
  struct Entry {
    std::string_view reason;
    StatusCode code;
  };
  static constexpr Entry kReasons[] = {
      {"NotFound", StatusCode::kNotFound},
      {"AlreadyExists", StatusCode::kAlreadyExists},
      {"Conflict", StatusCode::kConflict},
      {"Invalid", StatusCode::kInvalid},
      {"BadRequest", StatusCode::kBadRequest},
      {"NotAcceptable", StatusCode::kBadRequest},
      {"UnsupportedMediaType", StatusCode::kBadRequest},
      {"Unauthorized", StatusCode::kUnauthorized},
      {"Forbidden", StatusCode::kForbidden},
      {"Gone", StatusCode::kGone},
      {"Expired", StatusCode::kGone},
      {"TooManyRequests", StatusCode::kTooManyRequests},
      {"Timeout", StatusCode::kTimeout},
      {"ServerTimeout", StatusCode::kTimeout},
      {"ServiceUnavailable", StatusCode::kUnavailable},
      {"InternalError", StatusCode::kInternal},
      {"MethodNotAllowed", StatusCode::kUnimplemented},
      {"RequestEntityTooLarge", StatusCode::kResourceExhausted},
  };
  for (const auto& e : kReasons) {
    if (e.reason == reason) return e.code;
  }
  return std::nullopt;
}

std::string Truncate(std::string_view s, size_t n) {
  std::string out(s.substr(0, n));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) {
    out.pop_back();
  }
  if (s.size() > n) out += "...";
  return out;
}

}  // namespace

StatusCode CodeFor(int http_status, std::string_view reason) {
  if (auto c = CodeForReason(reason)) return *c;
  if (http_status >= 200 && http_status < 300) return StatusCode::kOk;
  switch (http_status) {
    case 400:
      return StatusCode::kBadRequest;
    case 401:
      return StatusCode::kUnauthorized;
    case 403:
      return StatusCode::kForbidden;
    case 404:
      return StatusCode::kNotFound;
    case 405:
      return StatusCode::kUnimplemented;
    case 409:
      return StatusCode::kConflict;
    case 410:
      return StatusCode::kGone;
    case 413:
      return StatusCode::kResourceExhausted;
    case 422:
      return StatusCode::kInvalid;
    case 429:
      return StatusCode::kTooManyRequests;
    case 501:
      return StatusCode::kUnimplemented;
    case 502:
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kTimeout;
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) return StatusCode::kBadRequest;
  return StatusCode::kInternal;
}

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value) {
  std::string v(value);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string::npos) {
    if (v.size() > 9) return std::chrono::seconds(999'999'999);
    return std::chrono::seconds(std::stol(v));
  }
  time_t when = curl_getdate(v.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  time_t now = std::time(nullptr);
  return std::chrono::seconds(when > now ? when - now : 0);
}

Status StatusFromStatusObject(const Json& status, int http_status) {
  int code = http_status;
  std::string reason;
  std::string message;
  std::vector<FieldCause> causes;
  std::optional<std::chrono::seconds> retry_after;
  if (status.is_object()) {
    if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
      code = it->get<int>();
    }
    if (auto it = status.find("reason"); it != status.end() && it->is_string()) {
      reason = it->get<std::string>();
    }
    if (auto it = status.find("message"); it != status.end() && it->is_string()) {
      message = it->get<std::string>();
    }
    if (auto d = status.find("details"); d != status.end() && d->is_object()) {
      if (auto c = d->find("causes"); c != d->end() && c->is_array()) {
        for (const auto& cause : *c) {
          if (!cause.is_object()) continue;
          causes.push_back(
              {cause.value("field", ""), cause.value("reason", ""), cause.value("message", "")});
        }
      }
      if (auto r = d->find("retryAfterSeconds"); r != d->end() && r->is_number_integer()) {
        retry_after = std::chrono::seconds(r->get<int64_t>());
      }
    }
  }
  if (code == 0) code = http_status;
  StatusCode sc = CodeFor(code, reason);
  if (sc == StatusCode::kOk) sc = StatusCode::kInternal;  // a Status object that reports failure
  if (message.empty()) {
    message = "HTTP " + std::to_string(code) + (reason.empty() ? "" : " " + reason);
  }
  Status s(sc, std::move(message));
  s.WithHttpStatus(code);
  if (!reason.empty()) s.WithReason(std::move(reason));
  if (!causes.empty()) s.WithCauses(std::move(causes));
  if (retry_after) s.WithRetryAfter(*retry_after);
  return s;
}

Status StatusFromResponse(const Response& response) {
  if (response.status >= 200 && response.status < 300) return Status::Ok();
  Status s;
  Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_discarded() && body.is_object() &&
      (body.value("kind", "") == "Status" || body.contains("reason"))) {
    s = StatusFromStatusObject(body, response.status);
    s.WithHttpStatus(response.status);
  } else {
    StatusCode code = CodeFor(response.status, "");
    if (code == StatusCode::kOk) code = StatusCode::kInternal;
    std::string message = "HTTP " + std::to_string(response.status);
    if (!response.body.empty()) message += ": " + Truncate(response.body, 256);
    s = Status(code, std::move(message));
    s.WithHttpStatus(response.status);
  }
  if (auto after = ParseRetryAfter(response.Header("retry-after"))) s.WithRetryAfter(*after);
  return s;
}

bool IsRetryableRead(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kTooManyRequests:
    case StatusCode::kTimeout:
      return true;
    case StatusCode::kInternal:
      return status.http_status() >= 500 && status.http_status() != 501;
    default:
      return false;
  }
}

}  // namespace sluice::kube
