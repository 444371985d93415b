// A materialization run against a real redis-server, with the source faked: Feast's layout byte
// for byte, the result, idempotence, no roll-back, key TTL, batching, and each failure's reason.
#include "dataplane/materializer/materializer.h"

#include <gtest/gtest.h>

#include <map>

#include "dataplane/features/feast_codec.h"
#include "tests/dataplane/materializer/fake_source.h"
#include "tests/support/redis_server.h"

namespace sluice::materializer {
namespace {

using api::FeastType;
using features::FeastValue;
using features::RedisClient;
using features::RedisCommand;
using features::RedisReply;
using namespace testing;
using namespace std::literals;

constexpr int64_t kRunTime = 1'700'000'000;  // seconds

api::FeatureViewConfig View(const std::string& redis) {
  api::FeatureViewConfig v;
  v.name = "driver_stats";
  v.project = "shop";
  v.entities = {{"driver", "driver_id", FeastType::kInt64}};
  v.features = {{"conv_rate", FeastType::kFloat, std::nullopt},
                {"trips", FeastType::kInt64, std::nullopt}};
  v.ttl = 3600s;
  v.redis_address = redis;
  v.source = api::FeatureSource{"parquet", "/data/driver_stats.parquet", "event_ts", ""};
  return v;
}

// driver_id, conv_rate, trips, event_ts (seconds before the run time).
Chunk Rows(const std::vector<std::tuple<int64_t, double, int64_t, int64_t>>& rows) {
  std::vector<std::optional<int64_t>> driver, trips, ts;
  std::vector<std::optional<double>> conv;
  for (const auto& [d, c, t, ago] : rows) {
    driver.push_back(d);
    conv.push_back(c);
    trips.push_back(t);
    ts.push_back((kRunTime - ago) * kSecond);
  }
  return MakeChunk({Ints("driver_id", ColumnType::kInt64, driver),
                    Doubles("conv_rate", ColumnType::kFloat, conv),
                    Ints("trips", ColumnType::kInt64, trips),
                    Ints("event_ts", ColumnType::kTimestamp, ts)});
}

std::string KeyOf(int64_t driver) {
  const FeastValue v = FeastValue::Int64(driver);
  const features::EntityKeyPart parts[] = {{"driver_id", &v}};
  return *features::RedisKey(parts, "shop");
}

class MaterializerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = sluice::testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    redis_ = std::move(server).value();
    api::RedisConnection c;
    c.host = "127.0.0.1";
    c.port = redis_->port();
    client_ = std::make_unique<RedisClient>(c);
  }

  api::MaterializeResult Run(std::vector<Chunk> chunks, api::FeatureViewConfig view,
                             MaterializeOptions options = {}) {
    if (options.run_time == std::chrono::system_clock::time_point{}) {
      options.run_time = std::chrono::system_clock::time_point(std::chrono::seconds(kRunTime));
    }
    return Materialize(view, options, [&](const features::SourceOptions& o) {
      ++opened_;
      last_columns_ = o.columns;
      return Result<std::unique_ptr<features::TableReader>>(
          std::make_unique<FakeReader>(std::move(chunks)));
    });
  }
  api::MaterializeResult Run(std::vector<Chunk> chunks) {
    return Run(std::move(chunks), View(redis_->address()));
  }

  std::map<std::string, std::string> HGetAll(const std::string& key) {
    const RedisCommand cmd[] = {{"HGETALL", key}};
    auto r = client_->Pipeline(cmd, 2s);
    EXPECT_TRUE(r.ok()) << r.status().message();
    std::map<std::string, std::string> out;
    if (!r.ok()) return out;
    const auto& e = (*r)[0].elements;
    for (size_t i = 0; i + 1 < e.size(); i += 2) out[e[i].str] = e[i + 1].str;
    return out;
  }
  int64_t Command(RedisCommand cmd) {
    const RedisCommand cmds[] = {std::move(cmd)};
    auto r = client_->Pipeline(cmds, 2s);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)[0].integer : -1;
  }

  std::unique_ptr<sluice::testing::RedisServer> redis_;
  std::unique_ptr<RedisClient> client_;
  int opened_ = 0;
  std::vector<features::ColumnRequest> last_columns_;
};

TEST_F(MaterializerTest, WritesFeastsLayoutAndSaysWhatItDid) {
  auto r = Run({Rows({{1, 0.5, 10, 100}, {2, 0.25, 20, 50}, {1, 0.75, 11, 10}}),
                Rows({{3, 0.125, 30, 7200} /* older than the ttl */})});
  ASSERT_TRUE(r.ok) << r.reason << ": " << r.message;
  EXPECT_EQ(r.rows_read, 4);
  EXPECT_EQ(r.entities_written, 2);
  EXPECT_EQ(r.entities_skipped_stale, 1);
  EXPECT_EQ(r.run_time, "2023-11-14T22:13:20Z");
  EXPECT_EQ(r.source_watermark, "2023-11-14T22:13:10Z");
  EXPECT_GT(r.duration_seconds, 0);

  const auto one = HGetAll(KeyOf(1));
  const std::map<std::string, std::string> want = {
      {features::FeatureField("driver_stats", "conv_rate"),
       features::EncodeValue(FeastValue::Float(0.75f))},
      {features::FeatureField("driver_stats", "trips"),
       features::EncodeValue(FeastValue::Int64(11))},
      {"_ts:driver_stats", features::EncodeTimestamp(kRunTime - 10, 0)}};
  EXPECT_EQ(one, want);
  EXPECT_EQ(HGetAll(KeyOf(2)).size(), 3u);
  EXPECT_TRUE(HGetAll(KeyOf(3)).empty());
  EXPECT_EQ(Command({"DBSIZE"}), 2);
  EXPECT_EQ(Command({"TTL", KeyOf(1)}), -1);  // no key ttl: no EXPIRE
}

TEST_F(MaterializerTest, ARerunWritesNothingAndAnOlderSourceDoesNotRollBack) {
  ASSERT_TRUE(Run({Rows({{1, 0.5, 10, 100}, {2, 0.5, 20, 100}})}).ok);
  const auto before = HGetAll(KeyOf(1));

  auto again = Run({Rows({{1, 0.5, 10, 100}, {2, 0.5, 20, 100}})});
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_EQ(again.entities_written, 0);

  auto older = Run({Rows({{1, 0.9, 99, 200}, {2, 0.9, 98, 300}, {4, 0.9, 97, 300}})});
  ASSERT_TRUE(older.ok) << older.message;
  EXPECT_EQ(older.entities_written, 1);  // only the new driver 4
  EXPECT_EQ(HGetAll(KeyOf(1)), before);

  auto newer = Run({Rows({{1, 0.9, 12, 50}})});
  ASSERT_TRUE(newer.ok) << newer.message;
  EXPECT_EQ(newer.entities_written, 1);
  EXPECT_EQ(HGetAll(KeyOf(1))[features::FeatureField("driver_stats", "trips")],
            features::EncodeValue(FeastValue::Int64(12)));
}

TEST_F(MaterializerTest, SetsTheKeyTtl) {
  auto view = View(redis_->address());
  view.key_ttl = 86400s;
  ASSERT_TRUE(Run({Rows({{1, 0.5, 10, 100}})}, view).ok);
  const int64_t ttl = Command({"TTL", KeyOf(1)});
  EXPECT_GT(ttl, 86000);
  EXPECT_LE(ttl, 86400);
}

TEST_F(MaterializerTest, WritesEveryEntityWhateverTheBatchSize) {
  std::vector<std::tuple<int64_t, double, int64_t, int64_t>> rows;
  for (int64_t d = 0; d < 10; ++d) rows.emplace_back(d, 0.5, d, 100);
  for (size_t batch : {size_t{1}, size_t{3}, size_t{10}, size_t{1000}}) {
    ASSERT_EQ(Command({"FLUSHALL"}), 0);
    MaterializeOptions options;
    options.batch_size = batch;
    auto r = Run({Rows(rows)}, View(redis_->address()), options);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.entities_written, 10) << "batch " << batch;
    EXPECT_EQ(Command({"DBSIZE"}), 10) << "batch " << batch;
  }
}

TEST_F(MaterializerTest, AsksTheSourceForKeysFeaturesAndTimestamp) {
  ASSERT_TRUE(Run({Rows({{1, 0.5, 10, 100}})}).ok);
  ASSERT_EQ(last_columns_.size(), 4u);
  EXPECT_EQ(last_columns_[0].name, "driver_id");
  EXPECT_EQ(last_columns_[0].type, ColumnType::kInt64);
  EXPECT_EQ(last_columns_[1].type, ColumnType::kFloat);
  EXPECT_EQ(last_columns_[3].name, "event_ts");
  EXPECT_EQ(last_columns_[3].type, ColumnType::kTimestamp);
}

TEST_F(MaterializerTest, ADeadRedisFailsAtOnceBeforeTheSourceIsRead) {
  ASSERT_TRUE(redis_->Stop().ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = Run({Rows({{1, 0.5, 10, 100}})});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, kRedisUnavailable);
  EXPECT_NE(r.message.find(redis_->address() + "/0"), std::string::npos) << r.message;
  EXPECT_EQ(opened_, 0);
}

TEST_F(MaterializerTest, TheSourcesErrorsHaveTheirReasons) {
  auto view = View(redis_->address());
  auto run = [&](Status open_error) {
    MaterializeOptions options;
    options.run_time = std::chrono::system_clock::time_point(std::chrono::seconds(kRunTime));
    return Materialize(view, options, [&](const features::SourceOptions&) {
      return Result<std::unique_ptr<features::TableReader>>(open_error);
    });
  };
  auto missing = run(NotFound("opening /data/driver_stats.parquet: No such file or directory"));
  EXPECT_EQ(missing.reason, kSourceNotFound);
  EXPECT_NE(missing.message.find("/data/driver_stats.parquet"), std::string::npos);
  auto typed = run(InvalidArgument(
      "/data/x.parquet: column \"trips\" is string (BYTE_ARRAY); the FeatureView declares INT64"));
  EXPECT_EQ(typed.reason, kSchemaMismatch);
  auto absent = run(
      InvalidArgument("/data/x.parquet: column \"trips\" is not in the file; its columns are: a"));
  EXPECT_EQ(absent.reason, kSchemaMismatch);
  auto corrupt = run(InvalidArgument("/data/x.parquet: not a Parquet file (no PAR1 magic)"));
  EXPECT_EQ(corrupt.reason, kSourceUnreadable);
  auto http = run(Unavailable("https://example.com/x.parquet: connection refused"));
  EXPECT_EQ(http.reason, kSourceUnreadable);
  auto named = run(Status(InvalidArgument("whatever")).WithReason("SchemaMismatch"));
  EXPECT_EQ(named.reason, kSchemaMismatch);
}

TEST_F(MaterializerTest, AFailureWhileReadingWritesNothing) {
  auto r = Materialize(
      View(redis_->address()),
      MaterializeOptions{std::chrono::system_clock::time_point(std::chrono::seconds(kRunTime))},
      [&](const features::SourceOptions&) {
        return Result<std::unique_ptr<features::TableReader>>(std::make_unique<FakeReader>(
            std::vector<Chunk>{Rows({{1, 0.5, 10, 100}})},
            InvalidArgument("/data/x.csv line 3: column \"trips\": \"abc\" is not an integer")));
      });
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, kSchemaMismatch);
  EXPECT_NE(r.message.find("\"trips\""), std::string::npos);
  EXPECT_EQ(r.rows_read, 1);
  EXPECT_EQ(Command({"DBSIZE"}), 0);
}

TEST_F(MaterializerTest, AnInvalidViewIsRefusedBeforeAnythingElse) {
  auto view = View(redis_->address());
  view.entities[0].value_type = FeastType::kDouble;
  auto r = Run({}, view);
  EXPECT_EQ(r.reason, kInvalidView);
  EXPECT_EQ(opened_, 0);

  view = View("");
  view.redis_connection_env = "SLUICE_TEST_UNSET_REDIS_VARIABLE";
  r = Run({}, view);
  EXPECT_EQ(r.reason, kInvalidView);
  EXPECT_NE(r.message.find("SLUICE_TEST_UNSET_REDIS_VARIABLE"), std::string::npos) << r.message;
}

TEST_F(MaterializerTest, AKeyThatIsNotAHashIsARedisError) {
  ASSERT_EQ(Command({"RPUSH", KeyOf(1), "x"}), 1);
  auto r = Run({Rows({{1, 0.5, 10, 100}})});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, kRedisError);
  EXPECT_NE(r.message.find("WRONGTYPE"), std::string::npos) << r.message;
}

TEST(FormatNanosTest, KeepsTheFractionThatIsThere) {
  EXPECT_EQ(FormatNanos(1'700'000'000 * kSecond), "2023-11-14T22:13:20Z");
  EXPECT_EQ(FormatNanos(1'700'000'000 * kSecond + 500'000'000), "2023-11-14T22:13:20.5Z");
  EXPECT_EQ(FormatNanos(1'700'000'000 * kSecond + 123), "2023-11-14T22:13:20.000000123Z");
  EXPECT_EQ(FormatNanos(-1), "1969-12-31T23:59:59.999999999Z");
}

}  // namespace
}  // namespace sluice::materializer
