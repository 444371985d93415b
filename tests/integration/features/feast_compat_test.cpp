// Feast compatibility, both ways, with the real Feast SDK (PyPI feast, Redis online store) and a
// real redis-server, for every value type a FeatureView allows and missing values:
//  - what Feast writes (write_to_online_store) is decoded by Sluice's reader to the same values;
//  - what sluice-materialize writes from a Parquet or CSV source is returned by Feast's
//    get_online_features as the same values.
// The Python side is tests/integration/features/feast_compat.py; the Feast venv comes from
// e2e/scripts/feast-venv.sh (cached by version, installed on first use).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dataplane/features/feast_codec.h"
#include "dataplane/features/redis_client.h"
#include "lib/api/feature_view.h"
#include "lib/api/materialize_command.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace sluice::features {
namespace {

using namespace std::literals;
using nlohmann::json;

const std::string kSourceDir = SLUICE_SOURCE_DIR;

std::string FeastPython() {
  auto r = testing::RunCommand({"bash", kSourceDir + "/e2e/scripts/feast-venv.sh"}, 15min);
  if (!r.ok() || !r->status.success()) return "";
  std::string out = r->output;
  // The last line is the path; installation chatter comes before it.
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
}

class FeastCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    python_ = FeastPython();
    ASSERT_FALSE(python_.empty()) << "e2e/scripts/feast-venv.sh could not provide the Feast SDK";
    auto server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    redis_ = std::move(*server);
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-feast-compat-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  testing::CommandResult Compat(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {python_, kSourceDir + "/tests/integration/features/feast_compat.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = testing::RunCommand(argv, 5min);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : testing::CommandResult{};
  }

  static json ReadJson(const std::filesystem::path& p) {
    std::ifstream in(p);
    return json::parse(in);
  }

  std::string python_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::filesystem::path dir_;
};

// A decoded value as feast_compat.py writes expectations: null, or {"TYPE": value}.
json Typed(const FeastValue& v) {
  if (!v.present) return nullptr;
  const std::string type(api::FeastTypeName(v.type));
  switch (v.type) {
    case api::FeastType::kFloat:
    case api::FeastType::kDouble:
      return {{type, v.d}};
    case api::FeastType::kString:
      return {{type, v.s}};
    case api::FeastType::kBytes: {
      static const char* kAlphabet =
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      std::string out;
      size_t i = 0;
      const auto* p = reinterpret_cast<const unsigned char*>(v.s.data());
      for (; i + 2 < v.s.size(); i += 3) {
        const uint32_t n = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
        for (int k = 18; k >= 0; k -= 6) out.push_back(kAlphabet[(n >> k) & 63]);
      }
      if (v.s.size() - i == 1) {
        const uint32_t n = p[i] << 16;
        out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], '=', '='};
      } else if (v.s.size() - i == 2) {
        const uint32_t n = (p[i] << 16) | (p[i + 1] << 8);
        out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63],
                '='};
      }
      return {{type, out}};
    }
    case api::FeastType::kBool:
      return {{type, v.i != 0}};
    default:
      return {{type, v.i}};
  }
}

bool SameValue(const json& have, const json& want) {
  if (have.is_object() && want.is_object() && have.contains("FLOAT") && want.contains("FLOAT")) {
    const double a = have["FLOAT"].get<double>();
    const double b = want["FLOAT"].get<double>();
    return static_cast<float>(a) == static_cast<float>(b);
  }
  return have == want;
}

TEST_F(FeastCompatTest, SluiceReadsWhatFeastWrites) {
  const auto expected_path = dir_ / "expected.json";
  auto written = Compat({"write", "--redis", redis_->address(), "--expected", expected_path});
  ASSERT_TRUE(written.status.success()) << written.output;
  const json expected = ReadJson(expected_path);

  api::RedisConnection conn;
  conn.host = "127.0.0.1";
  conn.port = redis_->port();
  RedisClient client(conn);
  const std::string view = expected["view"];
  const std::string project = expected["project"];
  size_t compared = 0;
  for (const auto& row : expected["rows"]) {
    const FeastValue card = FeastValue::String(row["card_id"].get<std::string>());
    const EntityKeyPart parts[] = {{"card_id", &card}};
    auto key = RedisKey(parts, project);
    ASSERT_TRUE(key.ok());
    std::vector<std::string> fields;
    for (const auto& f : expected["features"]) {
      fields.push_back(FeatureField(view, f["name"].get<std::string>()));
    }
    fields.push_back(TimestampField(view));
    RedisCommand cmd = {"HMGET", *key};
    for (const auto& f : fields) cmd.push_back(f);
    const RedisCommand cmds[] = {cmd};
    auto replies = client.Pipeline(cmds, 2s);
    ASSERT_TRUE(replies.ok()) << replies.status().message();
    const auto& values = (*replies)[0].elements;
    ASSERT_EQ(values.size(), fields.size()) << row["card_id"];
    for (size_t i = 0; i + 1 < values.size(); ++i) {
      const std::string name = expected["features"][i]["name"];
      ASSERT_EQ(values[i].kind, RedisReply::Kind::kString)
          << row["card_id"] << " " << name << ": Feast wrote no field for it";
      auto decoded = DecodeValue(values[i].str);
      ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status().message();
      EXPECT_TRUE(SameValue(Typed(*decoded), row["values"][name]))
          << row["card_id"] << " " << name << ": Sluice decoded " << Typed(*decoded).dump()
          << ", Feast wrote " << row["values"][name].dump();
      ++compared;
    }
    auto ts = DecodeTimestampNanos(values.back().str);
    ASSERT_TRUE(ts.ok()) << ts.status().message();
    EXPECT_EQ(*ts / 1'000'000'000, row["event_timestamp"].get<int64_t>()) << row["card_id"];
  }
  EXPECT_EQ(compared, expected["rows"].size() * expected["features"].size());
}

// The view as the operator would hand it to the materializer, from the same definitions.
api::FeatureViewConfig CompatView(const json& expected, const std::string& redis_address,
                                  const std::string& source) {
  api::FeatureViewConfig c;
  c.name = expected["view"];
  c.project = expected["project"];
  c.entities = {{"card", "card_id", api::FeastType::kString}};
  for (const auto& f : expected["features"]) {
    const std::string t = f["type"];
    const auto type = t == "Float32"         ? api::FeastType::kFloat
                      : t == "Float64"       ? api::FeastType::kDouble
                      : t == "UnixTimestamp" ? api::FeastType::kUnixTimestamp
                                             : *api::ParseFeastType([&] {
                                                 std::string up = t;
                                                 for (auto& ch : up) ch = static_cast<char>(std::toupper(ch));
                                                 return up;
                                               }());
    c.features.push_back({f["name"].get<std::string>(), type, std::nullopt});
  }
  c.redis_address = redis_address;
  c.source = api::FeatureSource{"file", source, "event_timestamp", ""};
  return c;
}

TEST_F(FeastCompatTest, FeastReadsWhatSluiceMaterializesFromParquetAndCsv) {
  for (const std::string ext : {".parquet", ".csv"}) {
    SCOPED_TRACE(ext);
    ASSERT_TRUE(redis_->Cli({"FLUSHALL"}).ok());
    const auto source = dir_ / ("source" + ext);
    const auto expected_path = dir_ / "expected.json";
    auto made = Compat({"source", "--out", source, "--expected", expected_path});
    ASSERT_TRUE(made.status.success()) << made.output;
    const json expected = ReadJson(expected_path);

    api::MaterializeCommand cmd;
    cmd.view = CompatView(expected, redis_->address(), source).ToJson().dump();
    cmd.run_time = "2026-12-06T12:00:00Z";
    cmd.result_file = (dir_ / "result.json").string();
    std::vector<std::string> argv = {SLUICE_MATERIALIZE_BIN};
    for (auto& a : cmd.ToArgs()) argv.push_back(a);
    auto run = testing::RunCommand(argv, 2min);
    ASSERT_TRUE(run.ok());
    ASSERT_TRUE(run->status.success()) << run->output;
    auto result = api::MaterializeResult::FromJson(ReadJson(dir_ / "result.json"));
    ASSERT_TRUE(result.ok());
    EXPECT_TRUE(result->ok);
    EXPECT_EQ(result->rows_read, 4);
    EXPECT_EQ(result->entities_written, 4);

    auto read = Compat({"read", "--redis", redis_->address(), "--expected", expected_path});
    EXPECT_TRUE(read.status.success()) << read.output;
    EXPECT_NE(read.output.find("0 differ"), std::string::npos) << read.output;
  }
}
}  // namespace
}  // namespace sluice::features
