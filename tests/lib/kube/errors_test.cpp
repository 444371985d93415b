#include "lib/kube/errors.h"

#include <gtest/gtest.h>

#include "tests/lib/kube/fake_transport.h"

namespace sluice::kube {
namespace {

using testing::JsonResponse;
using testing::StatusObject;

Status Map(int http, const std::string& reason, const std::string& message = "boom") {
  return StatusFromResponse(JsonResponse(http, StatusObject(http, reason, message)));
}

TEST(StatusFromResponseTest, SuccessIsOk) {
  EXPECT_TRUE(StatusFromResponse(Response{200, {}, "{}"}).ok());
  EXPECT_TRUE(StatusFromResponse(Response{201, {}, "{}"}).ok());
  EXPECT_TRUE(StatusFromResponse(Response{202, {}, ""}).ok());
}

struct Case {
  int http;
  const char* reason;
  StatusCode want;
};

class MappingTest : public ::testing::TestWithParam<Case> {};

TEST_P(MappingTest, MapsReasonAndCode) {
  const Case& c = GetParam();
  Status s = Map(c.http, c.reason, "the message");
  EXPECT_EQ(s.code(), c.want) << c.http << " " << c.reason << " -> " << s;
  EXPECT_EQ(s.http_status(), c.http);
  EXPECT_EQ(s.reason(), c.reason);
  EXPECT_EQ(s.message(), "the message");
}

INSTANTIATE_TEST_SUITE_P(
    ServerStatuses, MappingTest,
    ::testing::Values(Case{400, "BadRequest", StatusCode::kBadRequest},
                      Case{401, "Unauthorized", StatusCode::kUnauthorized},
                      Case{403, "Forbidden", StatusCode::kForbidden},
                      Case{404, "NotFound", StatusCode::kNotFound},
                      Case{405, "MethodNotAllowed", StatusCode::kUnimplemented},
                      Case{409, "AlreadyExists", StatusCode::kAlreadyExists},
                      Case{409, "Conflict", StatusCode::kConflict},
                      Case{410, "Expired", StatusCode::kGone}, Case{410, "Gone", StatusCode::kGone},
                      Case{413, "RequestEntityTooLarge", StatusCode::kResourceExhausted},
                      Case{415, "UnsupportedMediaType", StatusCode::kBadRequest},
                      Case{422, "Invalid", StatusCode::kInvalid},
                      Case{429, "TooManyRequests", StatusCode::kTooManyRequests},
                      Case{500, "InternalError", StatusCode::kInternal},
                      Case{500, "ServerTimeout", StatusCode::kTimeout},
                      Case{503, "ServiceUnavailable", StatusCode::kUnavailable},
                      Case{504, "Timeout", StatusCode::kTimeout}));

TEST(StatusFromResponseTest, CodeDecidesWhenReasonIsUnknownOrMissing) {
  EXPECT_EQ(Map(404, "").code(), StatusCode::kNotFound);
  EXPECT_EQ(Map(409, "").code(), StatusCode::kConflict);
  EXPECT_EQ(Map(410, "SomethingNew").code(), StatusCode::kGone);
  EXPECT_EQ(Map(422, "").code(), StatusCode::kInvalid);
  EXPECT_EQ(Map(418, "").code(), StatusCode::kBadRequest);
  EXPECT_EQ(Map(502, "").code(), StatusCode::kUnavailable);
  EXPECT_EQ(Map(504, "").code(), StatusCode::kTimeout);
  EXPECT_EQ(Map(507, "").code(), StatusCode::kInternal);
}

TEST(StatusFromResponseTest, InvalidKeepsFieldCauses) {
  nlohmann::json body = StatusObject(422, "Invalid", "ModelDeployment.sluice.dev \"m\" is invalid");
  body["details"] = {{"name", "m"},
                     {"kind", "ModelDeployment"},
                     {"causes",
                      {{{"reason", "FieldValueInvalid"},
                        {"message", "Invalid value: 150: must be <= 100"},
                        {"field", "spec.rollout.steps[1].weight"}},
                       {{"reason", "FieldValueRequired"},
                        {"message", "Required value"},
                        {"field", "spec.model.uri"}}}}};
  Status s = StatusFromResponse(JsonResponse(422, body));
  ASSERT_EQ(s.code(), StatusCode::kInvalid);
  ASSERT_EQ(s.causes().size(), 2u);
  EXPECT_EQ(s.causes()[0].field, "spec.rollout.steps[1].weight");
  EXPECT_EQ(s.causes()[0].reason, "FieldValueInvalid");
  EXPECT_EQ(s.causes()[0].message, "Invalid value: 150: must be <= 100");
  EXPECT_EQ(s.causes()[1].field, "spec.model.uri");
  EXPECT_NE(s.ToString().find("spec.model.uri"), std::string::npos);
}

TEST(StatusFromResponseTest, RetryAfterFromDetailsAndHeader) {
  nlohmann::json body = StatusObject(429, "TooManyRequests", "slow down");
  body["details"] = {{"retryAfterSeconds", 7}};
  Status from_details = StatusFromResponse(JsonResponse(429, body));
  EXPECT_EQ(from_details.code(), StatusCode::kTooManyRequests);
  ASSERT_TRUE(from_details.retry_after().has_value());
  EXPECT_EQ(*from_details.retry_after(), std::chrono::seconds(7));

  // The header wins over the body: it is what the server's filters set last.
  Status from_header = StatusFromResponse(
      JsonResponse(429, StatusObject(429, "TooManyRequests", "slow"), {{"retry-after", "3"}}));
  ASSERT_TRUE(from_header.retry_after().has_value());
  EXPECT_EQ(*from_header.retry_after(), std::chrono::seconds(3));

  Status none = Map(429, "TooManyRequests");
  EXPECT_FALSE(none.retry_after().has_value());
}

TEST(StatusFromResponseTest, NonJsonBodies) {
  Status s = StatusFromResponse(Response{503, {{"retry-after", "2"}}, "upstream connect error\n"});
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.http_status(), 503);
  EXPECT_EQ(s.message(), "HTTP 503: upstream connect error");
  EXPECT_EQ(s.retry_after(), std::chrono::seconds(2));
  EXPECT_TRUE(s.reason().empty());

  Status forbidden = StatusFromResponse(Response{403, {}, ""});
  EXPECT_EQ(forbidden.code(), StatusCode::kForbidden);
  EXPECT_EQ(forbidden.message(), "HTTP 403");

  Status long_body = StatusFromResponse(Response{500, {}, std::string(5000, 'x')});
  EXPECT_EQ(long_body.code(), StatusCode::kInternal);
  EXPECT_LT(long_body.message().size(), 300u);

  // JSON that is not a Status object is treated as an opaque body.
  Status json_other = StatusFromResponse(Response{404, {}, "[1,2]"});
  EXPECT_EQ(json_other.code(), StatusCode::kNotFound);
}

TEST(StatusFromStatusObjectTest, WatchErrorEventCarriesItsOwnCode) {
  nlohmann::json obj = StatusObject(410, "Expired", "too old resource version: 5 (10)");
  Status s = StatusFromStatusObject(obj, 0);
  EXPECT_EQ(s.code(), StatusCode::kGone);
  EXPECT_EQ(s.http_status(), 410);
  EXPECT_EQ(s.reason(), "Expired");

  nlohmann::json no_reason = {{"kind", "Status"}, {"code", 410}, {"message", "gone"}};
  EXPECT_EQ(StatusFromStatusObject(no_reason, 200).code(), StatusCode::kGone);

  // An empty object is still a failure, never OK.
  EXPECT_EQ(StatusFromStatusObject(nlohmann::json::object(), 200).code(), StatusCode::kInternal);
}

TEST(ParseRetryAfterTest, SecondsAndDates) {
  EXPECT_EQ(ParseRetryAfter("0"), std::chrono::seconds(0));
  EXPECT_EQ(ParseRetryAfter("120"), std::chrono::seconds(120));
  EXPECT_FALSE(ParseRetryAfter("").has_value());
  EXPECT_FALSE(ParseRetryAfter("soon").has_value());
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), std::chrono::seconds(0));  // past
  auto future = ParseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT");
  ASSERT_TRUE(future.has_value());
  EXPECT_GT(future->count(), 365LL * 24 * 3600);
}

TEST(IsRetryableReadTest, OnlyTransientFailures) {
  EXPECT_TRUE(IsRetryableRead(Unavailable("connection refused")));
  EXPECT_TRUE(IsRetryableRead(Timeout("deadline")));
  EXPECT_TRUE(IsRetryableRead(Map(429, "TooManyRequests")));
  EXPECT_TRUE(IsRetryableRead(Map(503, "ServiceUnavailable")));
  EXPECT_TRUE(IsRetryableRead(Map(500, "InternalError")));
  EXPECT_TRUE(IsRetryableRead(Map(504, "Timeout")));
  EXPECT_FALSE(IsRetryableRead(Map(501, "")));
  EXPECT_FALSE(IsRetryableRead(Map(404, "NotFound")));
  EXPECT_FALSE(IsRetryableRead(Map(403, "Forbidden")));
  EXPECT_FALSE(IsRetryableRead(Map(409, "Conflict")));
  EXPECT_FALSE(IsRetryableRead(Map(410, "Expired")));
  EXPECT_FALSE(IsRetryableRead(Internal("cannot happen")));  // no HTTP status: not the server
  EXPECT_FALSE(IsRetryableRead(FailedPrecondition("TLS: certificate verify failed")));
}

}  // namespace
}  // namespace sluice::kube
