// The selection of materialization without Redis: the newest row per entity in the ttl window,
// the tie-breaks, nulls, the Redis key and value bytes (against the codec), and Feast's rule for
// not overwriting a newer record.
#include "dataplane/materializer/latest_rows.h"

#include <gtest/gtest.h>

#include <limits>

#include "dataplane/materializer/feast_writer.h"
#include "tests/dataplane/materializer/fake_source.h"

namespace sluice::materializer {
namespace {

using api::FeastType;
using features::FeastValue;
using namespace testing;

api::FeatureViewConfig View() {
  api::FeatureViewConfig v;
  v.name = "driver_stats";
  v.project = "shop";
  v.entities = {{"driver", "driver_id", FeastType::kInt64}};
  v.features = {{"conv_rate", FeastType::kFloat, std::nullopt},
                {"acc_rate", FeastType::kDouble, std::nullopt},
                {"trips", FeastType::kInt64, std::nullopt},
                {"name", FeastType::kString, std::nullopt}};
  v.redis_address = "127.0.0.1:6379";
  v.source = api::FeatureSource{"csv", "/data/driver_stats.csv", "event_ts", "created"};
  return v;
}

struct Row {
  std::optional<int64_t> driver;
  std::optional<double> conv;
  std::optional<double> acc;
  std::optional<int64_t> trips;
  std::optional<std::string> name;
  std::optional<int64_t> ts_s;  // event time, seconds
  std::optional<int64_t> created_s;
};

// The columns in the plan's order: join key, features, event and created timestamps.
Chunk Rows(const std::vector<Row>& rows) {
  std::vector<std::optional<int64_t>> driver, trips, ts, created;
  std::vector<std::optional<double>> conv, acc;
  std::vector<std::optional<std::string>> name;
  auto ns = [](std::optional<int64_t> s) {
    return s ? std::optional<int64_t>(*s * kSecond) : std::nullopt;
  };
  for (const auto& r : rows) {
    driver.push_back(r.driver);
    conv.push_back(r.conv);
    acc.push_back(r.acc);
    trips.push_back(r.trips);
    name.push_back(r.name);
    ts.push_back(ns(r.ts_s));
    created.push_back(ns(r.created_s));
  }
  return MakeChunk(
      {Ints("driver_id", ColumnType::kInt64, driver),
       Doubles("conv_rate", ColumnType::kFloat, conv),
       Doubles("acc_rate", ColumnType::kDouble, acc), Ints("trips", ColumnType::kInt64, trips),
       Strings("name", ColumnType::kString, name), Ints("event_ts", ColumnType::kTimestamp, ts),
       Ints("created", ColumnType::kTimestamp, created)});
}

std::string KeyOf(int64_t driver) {
  const FeastValue v = FeastValue::Int64(driver);
  const features::EntityKeyPart parts[] = {{"driver_id", &v}};
  return *features::RedisKey(parts, "shop");
}

const EntityRecord* Find(const LatestRows& latest, int64_t driver) {
  const std::string key = KeyOf(driver);
  for (const auto& e : latest.entities()) {
    if (e.redis_key() == key) return &e;
  }
  return nullptr;
}

// The trips value of an entity's winning row, decoded.
int64_t Trips(const EntityRecord& e) {
  std::vector<std::string_view> values;
  FeatureValues(e, values);
  auto v = features::DecodeValue(values.at(2));
  EXPECT_TRUE(v.ok());
  return v->i;
}

class LatestRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto plan = SourcePlan::Build(View());
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    plan_ = std::move(plan).value();
  }
  SourcePlan plan_;
};

TEST_F(LatestRowsTest, PlanReadsKeysFeaturesAndTimestampsOnce) {
  std::vector<std::string> names;
  for (const auto& c : plan_.columns) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"driver_id", "conv_rate", "acc_rate", "trips", "name",
                                             "event_ts", "created"}));
  EXPECT_EQ(plan_.columns[1].type, ColumnType::kFloat);
  EXPECT_EQ(plan_.columns[5].type, ColumnType::kTimestamp);
  EXPECT_EQ(plan_.features[0].field, features::FeatureField("driver_stats", "conv_rate"));
  EXPECT_EQ(plan_.timestamp_field, "_ts:driver_stats");
}

TEST_F(LatestRowsTest, KeepsTheNewestRowOfEachEntityAcrossChunks) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  ASSERT_TRUE(latest
                  .Add(Rows({{1, 0.5, 1, 10, "a", 100, 1},
                             {2, 0.5, 1, 20, "b", 100, 1},
                             {1, 0.5, 1, 11, "a", 300, 1}}))
                  .ok());
  ASSERT_TRUE(latest.Add(Rows({{1, 0.5, 1, 12, "a", 200, 1}, {2, 0.5, 1, 21, "b", 400, 1}})).ok());
  ASSERT_EQ(latest.entities().size(), 2u);
  EXPECT_EQ(Trips(*Find(latest, 1)), 11);
  EXPECT_EQ(Find(latest, 1)->event_nanos, 300 * kSecond);
  EXPECT_EQ(Trips(*Find(latest, 2)), 21);
  EXPECT_EQ(latest.stats().rows, 5u);
  EXPECT_EQ(latest.stats().entities_fresh, 2u);
  EXPECT_EQ(*latest.stats().watermark_nanos, 400 * kSecond);
}

TEST_F(LatestRowsTest, TtlWindowExcludesItsStartAndTheFuture) {
  // run time 1000 s, ttl 100 s: the window is (900 s, 1000 s].
  LatestRows latest(plan_, 1000 * kSecond, 100 * kSecond);
  ASSERT_TRUE(latest
                  .Add(Rows({{1, 0.1, 1, 1, "a", 900, 0},     // at the start: stale
                             {2, 0.1, 1, 2, "b", 901, 0},     // inside
                             {3, 0.1, 1, 3, "c", 1000, 0},    // at the run time: inside
                             {4, 0.1, 1, 4, "d", 1001, 0},    // future: skipped
                             {5, 0.1, 1, 5, "e", 10, 0},      // stale only
                             {2, 0.1, 1, 6, "b", 1500, 0}}))  // future row of a fresh entity
                  .ok());
  const auto& s = latest.stats();
  EXPECT_EQ(s.rows_stale, 2u);
  EXPECT_EQ(s.rows_after_run_time, 2u);
  EXPECT_EQ(s.entities_fresh, 2u);
  EXPECT_EQ(s.entities_stale, 2u);  // drivers 1 and 5
  EXPECT_FALSE(Find(latest, 1)->fresh);
  EXPECT_EQ(Trips(*Find(latest, 2)), 2);
  EXPECT_EQ(Trips(*Find(latest, 3)), 3);
  EXPECT_EQ(Find(latest, 4), nullptr);
  EXPECT_FALSE(Find(latest, 5)->fresh);
  // The watermark is the newest timestamp read, future rows included.
  EXPECT_EQ(*s.watermark_nanos, 1500 * kSecond);
}

TEST_F(LatestRowsTest, AStaleEntityThatLaterGetsAFreshRowCountsOnceAsFresh) {
  LatestRows latest(plan_, 1000 * kSecond, 100 * kSecond);
  ASSERT_TRUE(latest
                  .Add(Rows({{1, 0.1, 1, 1, "a", 10, 0},
                             {1, 0.1, 1, 2, "a", 950, 0},
                             {1, 0.1, 1, 3, "a", 20, 0}}))
                  .ok());
  EXPECT_EQ(latest.stats().entities_fresh, 1u);
  EXPECT_EQ(latest.stats().entities_stale, 0u);
  EXPECT_EQ(Trips(*Find(latest, 1)), 2);
}

TEST_F(LatestRowsTest, NoTtlMeansNoLowerBound) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  ASSERT_TRUE(latest.Add(Rows({{1, 0.1, 1, 1, "a", -5, 0}})).ok());
  EXPECT_EQ(latest.stats().entities_fresh, 1u);
}

TEST_F(LatestRowsTest, TiesGoToTheLaterCreatedThenTheLaterRow) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  ASSERT_TRUE(latest
                  .Add(Rows({{1, 0.1, 1, 1, "a", 100, 5},
                             {1, 0.1, 1, 2, "a", 100, 7},  // later created: wins
                             {1, 0.1, 1, 3, "a", 100, 6},  // earlier created: loses
                             {2, 0.1, 1, 4, "b", 100, 5},
                             {2, 0.1, 1, 5, "b", 100, 5},  // all equal: later row wins
                             {3, 0.1, 1, 6, "c", 100, 5},
                             {3, 0.1, 1, 7, "c", 100, std::nullopt}}))  // null created loses
                  .ok());
  EXPECT_EQ(Trips(*Find(latest, 1)), 2);
  EXPECT_EQ(Trips(*Find(latest, 2)), 5);
  EXPECT_EQ(Trips(*Find(latest, 3)), 6);
}

TEST_F(LatestRowsTest, NullsAreMissingValuesAndRowsWithoutKeyOrTimeAreSkipped) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  ASSERT_TRUE(latest
                  .Add(Rows({{1, std::nullopt, std::nullopt, std::nullopt, std::nullopt, 100, 0},
                             {std::nullopt, 0.1, 1, 1, "x", 100, 0},
                             {2, 0.1, 1, 1, "x", std::nullopt, 0}}))
                  .ok());
  EXPECT_EQ(latest.stats().rows_without_key, 1u);
  EXPECT_EQ(latest.stats().rows_without_timestamp, 1u);
  ASSERT_EQ(latest.entities().size(), 1u);
  std::vector<std::string_view> values;
  FeatureValues(*Find(latest, 1), values);
  ASSERT_EQ(values.size(), 4u);
  for (auto v : values) EXPECT_EQ(v, "");  // Feast writes None as an empty Value
}

TEST_F(LatestRowsTest, ValuesAreTheCodecsBytes) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  const std::string long_name(300, 'n');  // past any small-string buffer
  ASSERT_TRUE(latest.Add(Rows({{7, 0.25, -1.5, 1LL << 40, long_name, 100, 0}})).ok());
  std::vector<std::string_view> values;
  FeatureValues(*Find(latest, 7), values);
  ASSERT_EQ(values.size(), 4u);
  EXPECT_EQ(values[0], features::EncodeValue(FeastValue::Float(0.25f)));
  EXPECT_EQ(values[1], features::EncodeValue(FeastValue::Double(-1.5)));
  EXPECT_EQ(values[2], features::EncodeValue(FeastValue::Int64(1LL << 40)));
  EXPECT_EQ(values[3], features::EncodeValue(FeastValue::String(long_name)));
}

TEST_F(LatestRowsTest, ANewerRowWithLongerValuesReplacesTheOldBytesWhole) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  ASSERT_TRUE(latest.Add(Rows({{1, 0.1, 1, 1, "short", 100, 0}})).ok());
  ASSERT_TRUE(latest.Add(Rows({{1, 0.1, 1, 2, std::string(100, 'L'), 200, 0}})).ok());
  ASSERT_TRUE(latest.Add(Rows({{1, 0.1, 1, 3, "s", 300, 0}})).ok());
  std::vector<std::string_view> values;
  FeatureValues(*Find(latest, 1), values);
  EXPECT_EQ(values[3], features::EncodeValue(FeastValue::String("s")));
  EXPECT_EQ(Trips(*Find(latest, 1)), 3);
}

TEST_F(LatestRowsTest, ManyEntitiesSurviveTheTableGrowing) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  std::vector<Row> rows;
  for (int64_t d = 0; d < 5000; ++d) rows.push_back({d, 0.1, 1, d, "x", 100, 0});
  ASSERT_TRUE(latest.Add(Rows(rows)).ok());
  rows.clear();
  for (int64_t d = 0; d < 5000; ++d) rows.push_back({d, 0.1, 1, d + 1, "x", 200, 0});
  ASSERT_TRUE(latest.Add(Rows(rows)).ok());
  ASSERT_EQ(latest.entities().size(), 5000u);
  for (int64_t d = 0; d < 5000; d += 499) EXPECT_EQ(Trips(*Find(latest, d)), d + 1);
}

TEST_F(LatestRowsTest, AChunkOfTheWrongTypeIsRefusedNamingTheColumn) {
  LatestRows latest(plan_, 1000 * kSecond, 0);
  Chunk c = Rows({{1, 0.1, 1, 1, "a", 100, 0}});
  c.columns[3] = Doubles("trips", ColumnType::kDouble, {1.0});
  Status s = latest.Add(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("\"trips\""), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("DOUBLE"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("INT64"), std::string::npos) << s.message();
}

TEST_F(LatestRowsTest, EventTimesKeepMicrosecondsAsFeastDoes) {
  EXPECT_EQ(FeastEventNanos(1'700'000'000'123'456'789), 1'700'000'000'123'456'000);
  EXPECT_EQ(FeastEventNanos(-1), -1000);
  EXPECT_EQ(EncodeEventTimestamp(1'700'000'000'123'456'000),
            features::EncodeTimestamp(1'700'000'000, 123'456'000));
  EXPECT_EQ(EncodeEventTimestamp(-500'000'000), features::EncodeTimestamp(-1, 500'000'000));
}

// The Redis key of every key type, and of two join keys declared out of order, is the codec's.
TEST(RedisKeyTest, KeysAreTheCodecsForEveryKeyType) {
  api::FeatureViewConfig v = View();
  v.entities = {{"zone", "zone", FeastType::kString},
                {"rider", "rider_id", FeastType::kInt32},
                {"blob", "blob", FeastType::kBytes},
                {"day", "day", FeastType::kUnixTimestamp},
                {"driver", "driver_id", FeastType::kInt64}};
  v.features = {{"trips", FeastType::kInt64, std::nullopt}};
  v.source->created_timestamp_field.clear();
  auto plan = SourcePlan::Build(v);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  // Request order: join keys sorted (blob, day, driver_id, rider_id, zone), trips, event_ts.
  Chunk c = MakeChunk(
      {Strings("blob", ColumnType::kBytes, {std::string("\x00\xff", 2)}),
       Ints("day", ColumnType::kTimestamp, {1'700'000'000 * kSecond + 7}),
       Ints("driver_id", ColumnType::kInt64, {-42}), Ints("rider_id", ColumnType::kInt32, {-7}),
       Strings("zone", ColumnType::kString, {"north"}), Ints("trips", ColumnType::kInt64, {1}),
       Ints("event_ts", ColumnType::kTimestamp, {100 * kSecond})});
  LatestRows latest(*plan, 1000 * kSecond, 0);
  ASSERT_TRUE(latest.Add(c).ok());
  const FeastValue zone = FeastValue::String("north"), rider = FeastValue::Int32(-7),
                   blob = FeastValue::Bytes(std::string("\x00\xff", 2)),
                   day = FeastValue::UnixTimestamp(1'700'000'000), driver = FeastValue::Int64(-42);
  const features::EntityKeyPart parts[] = {{"zone", &zone},
                                           {"rider_id", &rider},
                                           {"blob", &blob},
                                           {"day", &day},
                                           {"driver_id", &driver}};
  ASSERT_EQ(latest.entities().size(), 1u);
  EXPECT_EQ(latest.entities()[0].redis_key(), *features::RedisKey(parts, "shop"));
}

TEST(SourcePlanTest, RefusesWhatFeastCannotKeyByAndColumnsOfTwoTypes) {
  api::FeatureViewConfig v = View();
  v.entities[0].value_type = FeastType::kDouble;
  auto p = SourcePlan::Build(v);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("cannot key by"), std::string::npos);

  v = View();
  v.features.push_back({"driver_id", FeastType::kString, std::nullopt});
  p = SourcePlan::Build(v);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("\"driver_id\""), std::string::npos) << p.status().message();

  v = View();
  v.features.push_back({"driver_id", FeastType::kInt64, std::nullopt});  // same type: read once
  p = SourcePlan::Build(v);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->columns.size(), 7u);
  EXPECT_EQ(p->features.back().column, 0u);

  v = View();
  v.source.reset();
  EXPECT_FALSE(SourcePlan::Build(v).ok());
}

// Feast's online_write_batch: skip when the stored timestamp is set and not older.
TEST(ShouldOverwriteTest, OnlyAStrictlyNewerRowReplacesAStoredRecord) {
  EXPECT_TRUE(ShouldOverwrite(std::nullopt, 5));
  EXPECT_TRUE(ShouldOverwrite(0, 5));  // an unset Timestamp is no record
  EXPECT_TRUE(ShouldOverwrite(4, 5));
  EXPECT_FALSE(ShouldOverwrite(5, 5));  // a re-run writes nothing
  EXPECT_FALSE(ShouldOverwrite(6, 5));  // an older source does not roll back
}

}  // namespace
}  // namespace sluice::materializer
