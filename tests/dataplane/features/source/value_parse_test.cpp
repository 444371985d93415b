#include "dataplane/features/source/value_parse.h"

#include <gtest/gtest.h>

namespace sluice::features {
namespace {

constexpr int64_t kBase = 1796551200LL * 1'000'000'000;  // 2026-12-06T10:00:00Z

TEST(ValueParse, TimestampSpellings) {
  int64_t ns = 0;
  ASSERT_TRUE(ParseTimestamp("2026-12-06T10:00:00Z", ns));
  EXPECT_EQ(ns, kBase);
  ASSERT_TRUE(ParseTimestamp("2026-12-06 10:00:00.123456+00:00", ns));
  EXPECT_EQ(ns, kBase + 123'456'000);
  ASSERT_TRUE(ParseTimestamp("2026-12-06T10:00:00", ns));  // naive is UTC
  EXPECT_EQ(ns, kBase);
  ASSERT_TRUE(ParseTimestamp("2026-12-06T11:30:00+01:30", ns));
  EXPECT_EQ(ns, kBase);
  ASSERT_TRUE(ParseTimestamp("2026-12-06T05:00:00-0500", ns));
  EXPECT_EQ(ns, kBase);
  ASSERT_TRUE(ParseTimestamp("2026-12-06T10:00:00.123456789Z", ns));
  EXPECT_EQ(ns, kBase + 123'456'789);
  ASSERT_TRUE(ParseTimestamp("2026-12-06T10:00Z", ns));
  EXPECT_EQ(ns, kBase);
  ASSERT_TRUE(ParseTimestamp("1796551200", ns));
  EXPECT_EQ(ns, kBase);
  ASSERT_TRUE(ParseTimestamp("1969-12-31T23:59:59Z", ns));
  EXPECT_EQ(ns, -1'000'000'000);
  ASSERT_TRUE(ParseTimestamp("2024-02-29", ns));
  for (const char* bad : {"2026-13-01", "2026-02-29", "2026-12-06T25:00:00", "2026-12-06X10:00",
                          "2026-12-06T10:00:00+", "2026-12-06T10:00:00.Z", "yesterday", "",
                          "2026-12-06T10:00:00Zjunk", "99999999999999"}) {
    EXPECT_FALSE(ParseTimestamp(bad, ns)) << bad;
  }
}

TEST(ValueParse, NumbersAndBooleans) {
  int64_t i;
  EXPECT_TRUE(ParseIntegral("12.0", i));
  EXPECT_EQ(i, 12);
  EXPECT_TRUE(ParseIntegral("-7", i));
  EXPECT_EQ(i, -7);
  EXPECT_FALSE(ParseIntegral("12.5", i));
  EXPECT_FALSE(ParseIntegral("1e3", i));
  EXPECT_FALSE(ParseIntegral("99999999999999999999", i));
  double d;
  bool null;
  EXPECT_TRUE(ParseDouble("NaN", d, null));
  EXPECT_TRUE(null);
  EXPECT_TRUE(ParseDouble("nan", d, null));
  EXPECT_TRUE(null);
  EXPECT_TRUE(ParseDouble("-1.5e3", d, null));
  EXPECT_FALSE(null);
  EXPECT_EQ(d, -1500);
  EXPECT_FALSE(ParseDouble("1.5x", d, null));
  bool b;
  for (const char* t : {"true", "True", "TRUE", "1"}) EXPECT_TRUE(ParseBool(t, b) && b) << t;
  for (const char* f : {"false", "False", "FALSE", "0"}) EXPECT_TRUE(ParseBool(f, b) && !b) << f;
  EXPECT_FALSE(ParseBool("yes", b));
}

TEST(ValueParse, Base64) {
  std::string out;
  ASSERT_TRUE(DecodeBase64("AAD/AA==", out));
  EXPECT_EQ(out, std::string("\0\0\xff\0", 4));
  ASSERT_TRUE(DecodeBase64("aGVsbG8", out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(DecodeBase64("a$==", out));
  EXPECT_FALSE(DecodeBase64("abcde", out));
}

}  // namespace
}  // namespace sluice::features
