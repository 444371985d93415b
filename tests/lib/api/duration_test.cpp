#include "lib/api/duration.h"

#include <gtest/gtest.h>

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;

TEST(ParseDurationTest, AcceptsGoSpellings) {
  EXPECT_EQ(ParseDuration("5s").value(), milliseconds(5000));
  EXPECT_EQ(ParseDuration("250ms").value(), milliseconds(250));
  EXPECT_EQ(ParseDuration("1m30s").value(), milliseconds(90'000));
  EXPECT_EQ(ParseDuration("1.5h").value(), milliseconds(5'400'000));
  EXPECT_EQ(ParseDuration("2h45m").value(), milliseconds(9'900'000));
  EXPECT_EQ(ParseDuration("0").value(), milliseconds(0));
  EXPECT_EQ(ParseDuration("0s").value(), milliseconds(0));
  EXPECT_EQ(ParseDuration("500us").value(), milliseconds(0));  // below a millisecond truncates
  EXPECT_EQ(ParseDuration("1500us").value(), milliseconds(1));
  EXPECT_EQ(ParseDuration("3000000ns").value(), milliseconds(3));
  EXPECT_EQ(ParseDuration("1m0.5s").value(), milliseconds(60'500));
}

TEST(ParseDurationTest, RefusesWhatGoRefusesAndNegatives) {
  for (const char* bad : {"", "5", "s", "5x", "-5s", "1..5s", "5s3", " 5s", "5 s", "1.s.", "m5"}) {
    Result<milliseconds> r = ParseDuration(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "' parsed as " << r.value_or(milliseconds(-1)).count();
    if (!r.ok()) EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(FormatDurationTest, ShortestSpelling) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(5000)), "5s");
  EXPECT_EQ(FormatDuration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(FormatDuration(milliseconds(7'200'000)), "2h");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(3'600'250)), "1h0.25s");
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
  for (int64_t ms : {1, 999, 1000, 1001, 59'999, 60'000, 3'599'999, 3'600'000, 86'400'000}) {
    EXPECT_EQ(ParseDuration(FormatDuration(milliseconds(ms))).value(), milliseconds(ms)) << ms;
  }
}

}  // namespace
}  // namespace sluice::controllers
