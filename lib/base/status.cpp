#include "lib/base/status.h"

namespace sluice {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kConflict: return "Conflict";
    case StatusCode::kInvalid: return "Invalid";
    case StatusCode::kBadRequest: return "BadRequest";
    case StatusCode::kUnauthorized: return "Unauthorized";
    case StatusCode::kForbidden: return "Forbidden";
    case StatusCode::kGone: return "Gone";
    case StatusCode::kTooManyRequests: return "TooManyRequests";
    case StatusCode::kTimeout: return "Timeout";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kResourceExhausted: return "ResourceExhausted";
    case StatusCode::kFailedPrecondition: return "FailedPrecondition";
    case StatusCode::kCancelled: return "Cancelled";
    case StatusCode::kUnimplemented: return "Unimplemented";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

Status::Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

const std::vector<FieldCause>& Status::causes() const {
  static const std::vector<FieldCause> kNone;
  return details_ ? details_->causes : kNone;
}

const std::string& Status::reason() const {
  static const std::string kNone;
  return details_ ? details_->reason : kNone;
}

Status::Details& Status::MutableDetails() {
  if (!details_) {
    details_ = std::make_shared<Details>();
  } else if (details_.use_count() > 1) {
    details_ = std::make_shared<Details>(*details_);  // copy on write
  }
  return *details_;
}

Status& Status::WithHttpStatus(int code) {
  MutableDetails().http_status = code;
  return *this;
}
Status& Status::WithRetryAfter(std::chrono::seconds after) {
  MutableDetails().retry_after = after;
  return *this;
}
Status& Status::WithCauses(std::vector<FieldCause> causes) {
  MutableDetails().causes = std::move(causes);
  return *this;
}
Status& Status::WithReason(std::string reason) {
  MutableDetails().reason = std::move(reason);
  return *this;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = std::string(context) + ": " + message_;
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  for (const auto& c : causes()) {
    out += "; ";
    out += c.field;
    out += ": ";
    out += c.message;
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

}  // namespace sluice
