#include "lib/api/time.h"

#include <gtest/gtest.h>

namespace sluice::controllers {
namespace {

using std::chrono::seconds;

TEST(TimeTest, FormatsUtcWholeSeconds) {
  EXPECT_EQ(FormatTime(WallTime(seconds(0))), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(WallTime(seconds(1704067200))), "2024-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(WallTime(seconds(1709210096)) + std::chrono::milliseconds(999)),
            "2024-02-29T12:34:56Z");
}

TEST(TimeTest, ParsesOffsetsAndFractions) {
  EXPECT_EQ(ParseTime("2024-01-01T00:00:00Z").value(), WallTime(seconds(1704067200)));
  EXPECT_EQ(ParseTime("2024-01-01T02:00:00+02:00").value(), WallTime(seconds(1704067200)));
  EXPECT_EQ(ParseTime("2023-12-31T23:00:00-01:00").value(), WallTime(seconds(1704067200)));
  EXPECT_EQ(ParseTime("2024-01-01T00:00:00.250Z").value(),
            WallTime(seconds(1704067200)) + std::chrono::milliseconds(250));
  EXPECT_EQ(ParseTime("2024-02-29T12:34:56z").value(), WallTime(seconds(1709210096)));
}

TEST(TimeTest, RefusesMalformed) {
  for (const char* bad : {"", "2024-01-01", "2024-01-01T00:00:00", "2024-13-01T00:00:00Z",
                          "2024-01-01T25:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00.Z",
                          "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00Zjunk"}) {
    EXPECT_FALSE(ParseTime(bad).ok()) << bad;
  }
}

TEST(TimeTest, FormatParseRoundTripDropsSubSeconds) {
  const WallTime t = WallTime(seconds(1'800'000'123)) + std::chrono::milliseconds(640);
  EXPECT_EQ(ParseTime(FormatTime(t)).value(), TruncateToSeconds(t));
  EXPECT_EQ(TruncateToSeconds(t), WallTime(seconds(1'800'000'123)));
}

}  // namespace
}  // namespace sluice::controllers
