// The real sluice-materialize binary with the command line the operator writes
// (api::MaterializeCommand), a CSV source written here and a real redis-server: the exact Redis
// bytes, the result file, exit codes, idempotence, no roll-back, key TTL, and the failures the
// operator reports (Redis down, a missing file, a column of the wrong type).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "dataplane/features/feast_codec.h"
#include "dataplane/features/redis_client.h"
#include "lib/api/feature_view.h"
#include "lib/api/materialize_command.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace sluice::materializer {
namespace {

using api::FeastType;
using features::FeastValue;
using features::RedisCommand;
using namespace std::literals;

constexpr char kRunTime[] = "2026-12-06T12:00:00Z";
constexpr int64_t kRunSeconds = 1'796'558'400;  // kRunTime

class MaterializeBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = sluice::testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    redis_ = std::move(server).value();
    api::RedisConnection c;
    c.host = "127.0.0.1";
    c.port = redis_->port();
    client_ = std::make_unique<features::RedisClient>(c);
    std::string tmpl = ::testing::TempDir() + "/materialize-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteCsv(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  api::FeatureViewConfig View(const std::string& path) {
    api::FeatureViewConfig v;
    v.name = "driver_stats";
    v.project = "shop";
    v.entities = {{"driver", "driver_id", FeastType::kInt64}};
    v.features = {{"conv_rate", FeastType::kFloat, std::nullopt},
                  {"trips", FeastType::kInt64, std::nullopt},
                  {"city", FeastType::kString, std::nullopt}};
    v.ttl = 86400s;
    v.redis_address = redis_->address();
    v.key_ttl = 7200s;
    v.source = api::FeatureSource{"csv", path, "event_ts", ""};
    return v;
  }

  struct Run {
    sluice::testing::ExitStatus status;
    std::string output;
    api::MaterializeResult result;
    std::chrono::steady_clock::duration took;
  };
  Run Materialize(const api::FeatureViewConfig& view, std::vector<std::string> extra = {},
                  const std::vector<std::string>& env = {}) {
    api::MaterializeCommand cmd;
    cmd.view = view.ToJson().dump();
    cmd.run_time = kRunTime;
    cmd.result_file = dir_ + "/result.json";
    cmd.batch_size = 2;
    std::filesystem::remove(*cmd.result_file);
    std::vector<std::string> argv = {SLUICE_MATERIALIZE_BIN};
    for (auto& a : cmd.ToArgs()) argv.push_back(a);
    for (auto& a : extra) argv.push_back(a);
    const auto start = std::chrono::steady_clock::now();
    auto r = sluice::testing::RunCommand(argv, 60s, env);
    Run run;
    run.took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return run;
    run.status = r->status;
    run.output = r->output;
    std::ifstream in(*cmd.result_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = api::MaterializeResult::FromJson(nlohmann::json::parse(text, nullptr, false));
    EXPECT_TRUE(parsed.ok()) << "result file: " << text << "\noutput:\n" << run.output;
    if (parsed.ok()) run.result = *parsed;
    return run;
  }

  std::map<std::string, std::string> HGetAll(int64_t driver) {
    const FeastValue v = FeastValue::Int64(driver);
    const features::EntityKeyPart parts[] = {{"driver_id", &v}};
    const std::string key = *features::RedisKey(parts, "shop");
    const RedisCommand cmd[] = {{"HGETALL", key}};
    auto r = client_->Pipeline(cmd, 2s);
    EXPECT_TRUE(r.ok()) << r.status().message();
    std::map<std::string, std::string> out;
    if (!r.ok()) return out;
    const auto& e = (*r)[0].elements;
    for (size_t i = 0; i + 1 < e.size(); i += 2) out[e[i].str] = e[i + 1].str;
    return out;
  }
  int64_t Integer(RedisCommand cmd) {
    const RedisCommand cmds[] = {std::move(cmd)};
    auto r = client_->Pipeline(cmds, 2s);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)[0].integer : -1;
  }
  std::string Field(const std::string& feature) {
    return features::FeatureField("driver_stats", feature);
  }

  std::unique_ptr<sluice::testing::RedisServer> redis_;
  std::unique_ptr<features::RedisClient> client_;
  std::string dir_;
};

const char kSource[] =
    "driver_id,conv_rate,trips,city,event_ts\n"
    "1001,0.5,10,Paris,2026-12-06T10:00:00Z\n"
    "1002,0.25,20,Lyon,2026-12-06T09:00:00.250000Z\n"
    "1001,0.75,11,Nice,2026-12-06T11:00:00Z\n"
    "1003,0.125,,,2026-12-06T11:30:00Z\n"
    "1004,0.5,40,Old,2026-12-01T00:00:00Z\n"      // older than the ttl
    "1005,0.5,50,Future,2026-12-07T00:00:00Z\n";  // after the run time

TEST_F(MaterializeBinaryTest, WritesTheSourceInFeastsLayoutAndReportsTheRun) {
  auto run = Materialize(View(WriteCsv("drivers.csv", kSource)), {"--log-format=json"});
  ASSERT_TRUE(run.status.success()) << run.status.ToString() << "\n" << run.output;
  EXPECT_TRUE(run.result.ok);
  EXPECT_EQ(run.result.rows_read, 6);
  EXPECT_EQ(run.result.entities_written, 3);
  EXPECT_EQ(run.result.entities_skipped_stale, 1);
  EXPECT_EQ(run.result.run_time, kRunTime);
  EXPECT_EQ(run.result.source_watermark, "2026-12-07T00:00:00Z");
  // Every log line names the view.
  EXPECT_NE(run.output.find("\"view\":\"driver_stats\""), std::string::npos) << run.output;

  const std::map<std::string, std::string> want = {
      {Field("conv_rate"), features::EncodeValue(FeastValue::Float(0.75f))},
      {Field("trips"), features::EncodeValue(FeastValue::Int64(11))},
      {Field("city"), features::EncodeValue(FeastValue::String("Nice"))},
      {"_ts:driver_stats", features::EncodeTimestamp(kRunSeconds - 3600, 0)}};
  EXPECT_EQ(HGetAll(1001), want);
  EXPECT_EQ(HGetAll(1002)["_ts:driver_stats"],
            features::EncodeTimestamp(kRunSeconds - 3 * 3600, 250'000'000));
  const auto nulls = HGetAll(1003);
  EXPECT_EQ(nulls.at(Field("trips")), "");  // a missing value is an empty Value, as in Feast
  EXPECT_EQ(nulls.at(Field("city")), "");
  EXPECT_TRUE(HGetAll(1004).empty());
  EXPECT_TRUE(HGetAll(1005).empty());
  EXPECT_EQ(Integer({"DBSIZE"}), 3);

  const FeastValue v = FeastValue::Int64(1001);
  const features::EntityKeyPart parts[] = {{"driver_id", &v}};
  const int64_t ttl = Integer({"TTL", *features::RedisKey(parts, "shop")});
  EXPECT_GT(ttl, 7000);
  EXPECT_LE(ttl, 7200);
}

TEST_F(MaterializeBinaryTest, ARerunWritesNothingAndAnOlderSourceDoesNotRollBack) {
  const auto view = View(WriteCsv("drivers.csv", kSource));
  ASSERT_TRUE(Materialize(view).status.success());
  const auto first = HGetAll(1001);

  auto again = Materialize(view);
  ASSERT_TRUE(again.status.success()) << again.output;
  EXPECT_EQ(again.result.entities_written, 0);
  EXPECT_EQ(HGetAll(1001), first);

  auto older = Materialize(View(WriteCsv("older.csv",
                                         "driver_id,conv_rate,trips,city,event_ts\n"
                                         "1001,0.9,99,Old,2026-12-06T08:00:00Z\n"
                                         "1006,0.9,60,New,2026-12-06T08:00:00Z\n")));
  ASSERT_TRUE(older.status.success()) << older.output;
  EXPECT_EQ(older.result.entities_written, 1);
  EXPECT_EQ(HGetAll(1001), first);
  EXPECT_EQ(HGetAll(1006)[Field("trips")], features::EncodeValue(FeastValue::Int64(60)));
}

TEST_F(MaterializeBinaryTest, ADeadRedisIsRedisUnavailableAtOnce) {
  const auto view = View(WriteCsv("drivers.csv", kSource));
  ASSERT_TRUE(redis_->Stop().ok());
  auto run = Materialize(view);
  EXPECT_TRUE(run.status.exited);
  EXPECT_NE(run.status.code, 0);
  EXPECT_FALSE(run.result.ok);
  EXPECT_EQ(run.result.reason, "RedisUnavailable");
  EXPECT_NE(run.result.message.find(redis_->address() + "/0"), std::string::npos)
      << run.result.message;
  EXPECT_LT(run.took, 5s);
}

// As the Job runs it: the connection string (with a password) from a Secret in an environment
// variable, and a database of its own.
TEST_F(MaterializeBinaryTest, ConnectsWithTheSecretsPasswordAndNeverPrintsIt) {
  auto secured = sluice::testing::RedisServer::Start({"s3cret-pw", ""});
  ASSERT_TRUE(secured.ok()) << secured.status().message();
  auto view = View(WriteCsv("drivers.csv", kSource));
  view.redis_address.clear();
  view.redis_connection_env = "SLUICE_TEST_REDIS";
  view.redis_db = 2;
  const std::string address = (*secured)->address();
  auto run = Materialize(view, {}, {"SLUICE_TEST_REDIS=" + address + ",password=s3cret-pw"});
  ASSERT_TRUE(run.status.success()) << run.output;
  EXPECT_EQ(run.result.entities_written, 3);
  auto in_db2 = (*secured)->Cli({"-n", "2", "DBSIZE"});
  ASSERT_TRUE(in_db2.ok());
  EXPECT_EQ(*in_db2, "3\n");

  auto wrong = Materialize(view, {}, {"SLUICE_TEST_REDIS=" + address + ",password=not-it"});
  EXPECT_EQ(wrong.status.code, 1);
  EXPECT_EQ(wrong.result.reason, "RedisUnavailable");
  EXPECT_NE(wrong.result.message.find(address + "/2"), std::string::npos) << wrong.result.message;
  for (const std::string& text : {wrong.result.message, wrong.output, run.output}) {
    EXPECT_EQ(text.find("not-it"), std::string::npos) << text;
    EXPECT_EQ(text.find("s3cret-pw"), std::string::npos) << text;
  }
}

TEST_F(MaterializeBinaryTest, AMissingFileIsSourceNotFoundNamingThePath) {
  const std::string path = dir_ + "/absent.csv";
  auto run = Materialize(View(path));
  EXPECT_EQ(run.status.code, 1);
  EXPECT_EQ(run.result.reason, "SourceNotFound");
  EXPECT_NE(run.result.message.find(path), std::string::npos) << run.result.message;
  EXPECT_EQ(Integer({"DBSIZE"}), 0);
}

TEST_F(MaterializeBinaryTest, AColumnOfTheWrongTypeIsSchemaMismatchNamingIt) {
  auto run = Materialize(View(WriteCsv("bad.csv",
                                       "driver_id,conv_rate,trips,city,event_ts\n"
                                       "1001,0.5,10,Paris,2026-12-06T10:00:00Z\n"
                                       "1002,0.5,many,Lyon,2026-12-06T10:00:00Z\n")));
  EXPECT_EQ(run.status.code, 1);
  EXPECT_EQ(run.result.reason, "SchemaMismatch");
  EXPECT_NE(run.result.message.find("\"trips\""), std::string::npos) << run.result.message;
  EXPECT_EQ(Integer({"DBSIZE"}), 0);

  auto absent = Materialize(View(WriteCsv("short.csv", "driver_id,conv_rate,event_ts\n")));
  EXPECT_EQ(absent.result.reason, "SchemaMismatch");
  EXPECT_NE(absent.result.message.find("\"trips\""), std::string::npos) << absent.result.message;
}

TEST_F(MaterializeBinaryTest, AMalformedViewOrCommandLine) {
  auto run = Materialize(View(WriteCsv("drivers.csv", kSource)), {"--view={not json"});
  EXPECT_EQ(run.status.code, 1);
  EXPECT_EQ(run.result.reason, "InvalidView");

  auto usage = sluice::testing::RunCommand({SLUICE_MATERIALIZE_BIN, "--no-such-flag"}, 30s);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->status.code, 2);
  EXPECT_NE(usage->output.find("--view"), std::string::npos) << usage->output;
  auto help = sluice::testing::RunCommand({SLUICE_MATERIALIZE_BIN, "--help"}, 30s);
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->status.success());
  EXPECT_NE(help->output.find("--result-file"), std::string::npos) << help->output;
}

}  // namespace
}  // namespace sluice::materializer
