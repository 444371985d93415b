#include "lib/base/status.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status Check(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(StatusTest, OkCarriesNothing) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.http_status(), 0);
  EXPECT_TRUE(s.causes().empty());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, DetailsAreCopyOnWrite) {
  Status a(StatusCode::kInvalid, "bad spec");
  a.WithCauses({{"spec.replicas", "FieldValueInvalid", "must be >= 0"}}).WithHttpStatus(422);
  Status b = a;
  b.WithHttpStatus(400);
  EXPECT_EQ(a.http_status(), 422);
  EXPECT_EQ(b.http_status(), 400);
  ASSERT_EQ(b.causes().size(), 1u);
  EXPECT_EQ(a.ToString(), "Invalid: bad spec; spec.replicas: must be >= 0");
}

TEST(StatusTest, AnnotatePrependsContext) {
  Status s = NotFound("no such file").Annotate("loading model");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "loading model: no such file");
  EXPECT_TRUE(Status().Annotate("x").ok());
}

TEST(ResultTest, PropagatesErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_TRUE(Check(4).ok());
  EXPECT_FALSE(Check(5).ok());
  EXPECT_EQ(Quarter(6).value_or(-1), -1);
}

TEST(ResultTest, MovesValuesOut) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace sluice
