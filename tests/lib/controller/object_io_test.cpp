// The tolerant JSON readers of object_io.
#include "lib/controller/object_io.h"

#include <gtest/gtest.h>

namespace sluice::controllers {
namespace {

using nlohmann::json;

TEST(ObjectIoTest, JsonAtAndStringAtTolerateMissingAndMistypedSteps) {
  const json fv = {{"metadata", {{"name", "card-features"}}},
                   {"spec", {{"online", {{"redis", {{"address", "redis:6379"}, {"db", 1}}}}}}}};
  ASSERT_NE(JsonAt(fv, {"spec", "online", "redis"}), nullptr);
  EXPECT_EQ(*JsonAt(fv, {"spec", "online", "redis", "db"}), 1);
  EXPECT_EQ(StringAt(fv, {"spec", "online", "redis", "address"}), "redis:6379");
  EXPECT_EQ(JsonAt(fv, {"spec", "source"}), nullptr);
  EXPECT_EQ(JsonAt(fv, {"metadata", "name", "deeper"}), nullptr);  // a string is not an object
  EXPECT_EQ(StringAt(fv, {"spec", "online", "redis", "db"}), "");   // not a string
  EXPECT_EQ(StringAt(fv, {"status", "phase"}), "");
}

}  // namespace
}  // namespace sluice::controllers
