#include "lib/base/base64.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using namespace std::literals;

TEST(Base64Test, DecodesTheStandardAlphabetWithPadding) {
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64("AQI="), "\x01\x02"s);
  EXPECT_EQ(DecodeBase64("AA=="), "\x00"s);
  EXPECT_EQ(DecodeBase64("+/+/"), "\xfb\xff\xbf"s);
  EXPECT_EQ(DecodeBase64("cmVkaXM6NjM3OQ=="), "redis:6379");
}

TEST(Base64Test, RefusesWhatIsNotStrictBase64) {
  EXPECT_FALSE(DecodeBase64("A"));         // not a multiple of 4
  EXPECT_FALSE(DecodeBase64("AQI"));       // padding missing
  EXPECT_FALSE(DecodeBase64("A==="));      // three padding characters
  EXPECT_FALSE(DecodeBase64("AQ=I"));      // padding inside
  EXPECT_FALSE(DecodeBase64("-_-_"));      // URL-safe alphabet
  EXPECT_FALSE(DecodeBase64("AQ I"));      // whitespace
}

}  // namespace
}  // namespace sluice
