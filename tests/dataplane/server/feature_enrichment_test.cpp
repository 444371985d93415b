// Online feature enrichment end to end: the real sluice-server binary on the committed fraud model
// with --feature-views, against a real redis-server holding values in Feast's layout (written with
// the codec whose tests prove it byte-exact with Feast). Every prediction is checked against a
// second server without views that is sent the explicitly assembled rows as plain input-0.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "dataplane/features/feast_codec.h"
#include "dataplane/features/redis_client.h"
#include "lib/api/feature_view.h"
#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/dataplane/server/server_process.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/redis_server.h"

namespace sluice::dataplane {
namespace {

using features::FeastValue;
using sluice::testing::GrpcTestClient;
using sluice::testing::HttpTestClient;
using sluice::testing::RedisServer;
using sluice::testing::ServerProcess;
using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// Defaults declared in the views below.
constexpr float kVelocityDefault = 0, kAgeDefault = 40, kAccountAgeDefault = 365,
                kChargebacksDefault = 0, kCategoryDefault = 5;

uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

api::FeatureViewConfig CardView(const std::string& redis) {
  api::FeatureViewConfig v;
  v.name = "card_features";
  v.project = "fraud";
  v.entities = {{"card", "card_id", api::FeastType::kString}};
  v.features = {{"velocity_last_24h", api::FeastType::kInt32, "0"},
                {"cardholder_age", api::FeastType::kInt32, "40"},
                {"avg_amount_30d", api::FeastType::kDouble, std::nullopt},  // not a model input
                {"account_age_days", api::FeastType::kInt32, "365"},
                {"previous_chargebacks", api::FeastType::kInt32, "0"}};
  v.ttl = 1h;
  v.redis_address = redis;
  return v;
}

api::FeatureViewConfig MerchantView(const std::string& redis) {
  api::FeatureViewConfig v;
  v.name = "merchant_features";
  v.project = "fraud";
  v.entities = {{"merchant", "merchant_id", api::FeastType::kInt64}};
  v.features = {{"merchant_category", api::FeastType::kInt32, "5"}};
  v.redis_address = redis;
  return v;
}

// What a request sends for one transaction, and what the views hold for its card and merchant.
struct Txn {
  std::string card = "c-1";
  int64_t merchant = 42;
  float amount = 204.79f, hour = 18, foreign = 0, mismatch = 0, trust = 0.73f, distance = 12.4f,
        present = 1;
};
struct Card {
  int32_t velocity = 3, age = 62, account_age = 290, chargebacks = 0;
};

// The model row, in the model's feature order (bench/fraud/model/features.json).
std::vector<float> Row(const Txn& t, std::optional<Card> card, std::optional<int32_t> category) {
  const Card c = card.value_or(
      Card{static_cast<int32_t>(kVelocityDefault), static_cast<int32_t>(kAgeDefault),
           static_cast<int32_t>(kAccountAgeDefault), static_cast<int32_t>(kChargebacksDefault)});
  return {t.amount,
          t.hour,
          static_cast<float>(category.value_or(static_cast<int32_t>(kCategoryDefault))),
          t.foreign,
          t.mismatch,
          t.trust,
          static_cast<float>(c.velocity),
          static_cast<float>(c.age),
          static_cast<float>(c.account_age),
          t.distance,
          t.present,
          static_cast<float>(c.chargebacks)};
}

json Column(const std::string& name, const std::string& type, json data) {
  const size_t n = data.size();
  return {{"name", name}, {"datatype", type}, {"shape", {n}}, {"data", std::move(data)}};
}

// The columnar request of the documented shape: entity keys and the features the caller has.
json EnrichedRequest(const std::vector<Txn>& txns) {
  json cards = json::array(), merchants = json::array(), amount = json::array(),
       hour = json::array(), foreign = json::array(), mismatch = json::array(),
       trust = json::array(), distance = json::array(), present = json::array();
  for (const Txn& t : txns) {
    cards.push_back(t.card);
    merchants.push_back(t.merchant);
    amount.push_back(t.amount);
    hour.push_back(static_cast<int32_t>(t.hour));
    foreign.push_back(t.foreign);
    mismatch.push_back(t.mismatch);
    trust.push_back(t.trust);
    distance.push_back(t.distance);
    present.push_back(t.present != 0);
  }
  json amount_col = Column("amount", "FP32", amount);
  amount_col["shape"] = {txns.size(), 1};  // [n,1] is accepted as well as [n]
  return {
      {"inputs",
       {Column("card_id", "BYTES", cards), Column("merchant_id", "INT64", merchants), amount_col,
        Column("transaction_hour", "INT32", hour), Column("foreign_transaction", "FP32", foreign),
        Column("location_mismatch", "FP64", mismatch), Column("device_trust_score", "FP32", trust),
        Column("distance_from_home_km", "FP32", distance),
        Column("card_present", "BOOL", present)}}};
}

json PlainRequest(const std::vector<std::vector<float>>& rows) {
  json data = json::array();
  for (const auto& r : rows) {
    for (float v : r) {
      if (std::isnan(v)) {
        data.push_back(nullptr);
      } else {
        data.push_back(v);
      }
    }
  }
  return {{"inputs",
           {{{"name", "input-0"},
             {"datatype", "FP32"},
             {"shape", {rows.size(), 12}},
             {"data", std::move(data)}}}}};
}

struct Reply {
  int status = 0;
  std::string error;
  std::vector<float> predictions;
  std::chrono::steady_clock::duration took{};
};

Reply Infer(uint16_t port, const json& body) {
  HttpTestClient c(port, 10s);
  const auto start = std::chrono::steady_clock::now();
  auto r = c.Post("/v2/models/fraud/infer", body.dump());
  Reply out;
  out.took = std::chrono::steady_clock::now() - start;
  if (!r) return out;
  out.status = r->status;
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return out;
  if (j.contains("error")) out.error = j["error"].get<std::string>();
  if (r->status == 200) {
    for (const auto& v : j["outputs"][0]["data"]) out.predictions.push_back(v.get<float>());
  }
  return out;
}

// The value of the series `name` whose labels include every pair of `labels`; -1 when absent.
double Metric(uint16_t port, const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& labels) {
  HttpTestClient c(port);
  auto r = c.Get("/metrics");
  if (!r) return -1;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0) continue;
    bool all = true;
    for (const auto& [k, v] : labels)
      all = all && line.find(k + "=\"" + v + "\"") != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

double Values(uint16_t port, const std::string& view, const std::string& result) {
  return Metric(port, "sluice_server_feature_values_total", {{"view", view}, {"result", result}});
}

// A server with no views, which is sent the assembled rows: the expected predictions.
class PlainServer {
 public:
  // Started on first use; stopped when the test program exits.
  static PlainServer& Get() {
    static PlainServer s;
    return s;
  }
  std::vector<float> Predict(const std::vector<std::vector<float>>& rows) {
    Reply r = Infer(p_.port(), PlainRequest(rows));
    EXPECT_EQ(r.status, 200) << r.error;
    return r.predictions;
  }

 private:
  PlainServer() {
    EXPECT_TRUE(p_.Start(SLUICE_SERVER_BIN, {"--model-uri", kModelDir + "/fraud.json",
                                             "--model-name", "fraud", "--io-threads", "1"}))
        << p_.Log();
    EXPECT_TRUE(p_.WaitReady()) << p_.Log();
  }
  ServerProcess p_;
};

class FeatureEnrichmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = RedisServer::Start();
    ASSERT_TRUE(r.ok()) << r.status().message();
    redis_ = std::move(r).value();
    api::RedisConnection c;
    c.host = "127.0.0.1";
    c.port = redis_->port();
    writer_ = std::make_unique<features::RedisClient>(c);
  }

  // Starts the enriched server (REST and gRPC) with `extra` flags; the views' budget is 1 s
  // unless `extra` says otherwise, so a loaded test machine never turns a hit into a default.
  void StartServer(std::vector<std::string> extra = {},
                   std::vector<api::FeatureViewConfig> views = {}) {
    if (views.empty()) views = {CardView(redis_->address()), MerchantView(redis_->address())};
    grpc_port_ = FreePort();
    std::vector<std::string> args = {"--model-uri",      kModelDir + "/fraud.json",
                                     "--model-name",     "fraud",
                                     "--io-threads",     "2",
                                     "--grpc-port",      std::to_string(grpc_port_),
                                     "--feature-views",  api::FormatFeatureViews(views),
                                     "--feature-budget", "1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_.Start(SLUICE_SERVER_BIN, args)) << server_.Log();
    ASSERT_TRUE(server_.WaitReady()) << server_.Log();
  }

  std::string CardKey(const std::string& card) {
    const FeastValue v = FeastValue::String(card);
    const features::EntityKeyPart parts[] = {{"card_id", &v}};
    return *features::RedisKey(parts, "fraud");
  }
  std::string MerchantKey(int64_t merchant) {
    const FeastValue v = FeastValue::Int64(merchant);
    const features::EntityKeyPart parts[] = {{"merchant_id", &v}};
    return *features::RedisKey(parts, "fraud");
  }

  // HSET as Feast's Redis online store writes a row: one field per feature, then _ts:<view>.
  void Write(const std::string& key, const std::string& view,
             const std::vector<std::pair<std::string, std::string>>& values,
             std::chrono::system_clock::time_point event_time = std::chrono::system_clock::now()) {
    const auto since = event_time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs);
    std::vector<std::string> args = {"HSET", key};
    for (const auto& [feature, value] : values) {
      args.push_back(features::FeatureField(view, feature));
      args.push_back(value);
    }
    args.push_back(features::TimestampField(view));
    args.push_back(features::EncodeTimestamp(secs.count(), static_cast<int32_t>(nanos.count())));
    const features::RedisCommand cmd(args.begin(), args.end());
    auto r = writer_->Pipeline(std::span<const features::RedisCommand>(&cmd, 1), 2s);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_NE((*r)[0].kind, features::RedisReply::Kind::kError) << (*r)[0].str;
  }

  void WriteCard(const std::string& card, const Card& c,
                 std::chrono::system_clock::time_point at = std::chrono::system_clock::now()) {
    Write(CardKey(card), "card_features",
          {{"velocity_last_24h", features::EncodeValue(FeastValue::Int32(c.velocity))},
           {"cardholder_age", features::EncodeValue(FeastValue::Int32(c.age))},
           {"avg_amount_30d", features::EncodeValue(FeastValue::Double(88.5))},
           {"account_age_days", features::EncodeValue(FeastValue::Int32(c.account_age))},
           {"previous_chargebacks", features::EncodeValue(FeastValue::Int32(c.chargebacks))}},
          at);
  }
  void WriteMerchant(int64_t merchant, int32_t category) {
    Write(MerchantKey(merchant), "merchant_features",
          {{"merchant_category", features::EncodeValue(FeastValue::Int32(category))}});
  }

  // Expects the enriched server's answer for `txns` to equal the plain server's for `rows`.
  void ExpectPredictions(const std::vector<Txn>& txns,
                         const std::vector<std::vector<float>>& rows) {
    Reply got = Infer(server_.port(), EnrichedRequest(txns));
    ASSERT_EQ(got.status, 200) << got.error;
    const std::vector<float> want = PlainServer::Get().Predict(rows);
    ASSERT_EQ(got.predictions.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_FLOAT_EQ(got.predictions[i], want[i]) << "row " << i;
  }

  // Polls until the server answers `txns` with `want` (it serves defaults while it cannot reach
  // Redis); false at the deadline.
  bool WaitForPredictions(const std::vector<Txn>& txns, const std::vector<float>& want) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Infer(server_.port(), EnrichedRequest(txns)).predictions == want) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<features::RedisClient> writer_;
  ServerProcess server_;
  uint16_t grpc_port_ = 0;
};

TEST_F(FeatureEnrichmentTest, AssemblesRowsFromTheRequestAndBothViews) {
  StartServer();
  const Card card{7, 23, 30, 2};
  WriteCard("c-1", card);
  WriteMerchant(42, 11);
  const Txn t;
  ExpectPredictions({t}, {Row(t, card, 11)});
  EXPECT_EQ(Values(server_.port(), "card_features", "hit"), 4);  // avg_amount_30d is not read
  EXPECT_EQ(Values(server_.port(), "merchant_features", "hit"), 1);
  EXPECT_EQ(Metric(server_.port(), "sluice_server_feature_fetch_duration_seconds_count", {}), 1);

  // The rows differ from what defaults would give, so the comparison above means something.
  EXPECT_NE(PlainServer::Get().Predict({Row(t, card, 11)}),
            PlainServer::Get().Predict({Row(t, std::nullopt, std::nullopt)}));
}

TEST_F(FeatureEnrichmentTest, AChangeInRedisChangesThePrediction) {
  StartServer({"--cache"});  // the response cache must not answer with the old value
  WriteMerchant(42, 11);
  const Txn t;
  WriteCard("c-1", Card{1, 45, 900, 0});
  const Reply before = Infer(server_.port(), EnrichedRequest({t}));
  ASSERT_EQ(before.status, 200) << before.error;
  const Card risky{25, 19, 3, 4};
  WriteCard("c-1", risky);
  const Reply after = Infer(server_.port(), EnrichedRequest({t}));
  ASSERT_EQ(after.status, 200) << after.error;
  EXPECT_NE(before.predictions, after.predictions);
  EXPECT_EQ(after.predictions, PlainServer::Get().Predict({Row(t, risky, 11)}));
}

TEST_F(FeatureEnrichmentTest, StaleMissingAndMalformedValuesServeTheDefaults) {
  StartServer();
  WriteMerchant(42, 11);
  // Older than the card view's ttl (1h).
  WriteCard("c-stale", Card{9, 30, 10, 3}, std::chrono::system_clock::now() - 2h);
  // A value Feast would never write: the other fields of the row are still good.
  WriteCard("c-bad", Card{9, 30, 10, 3});
  Write(CardKey("c-bad"), "card_features", {{"velocity_last_24h", std::string("\xff\xff\xff", 3)}});

  Txn stale, missing, bad;
  stale.card = "c-stale";
  missing.card = "c-nobody";
  bad.card = "c-bad";
  Card bad_row{static_cast<int32_t>(kVelocityDefault), 30, 10, 3};
  ExpectPredictions({stale, missing, bad}, {Row(stale, std::nullopt, 11),
                                            Row(missing, std::nullopt, 11), Row(bad, bad_row, 11)});
  EXPECT_EQ(Values(server_.port(), "card_features", "stale"), 4);
  EXPECT_EQ(Values(server_.port(), "card_features", "missing"), 4);
  EXPECT_EQ(Values(server_.port(), "card_features", "malformed"), 1);
  EXPECT_EQ(Values(server_.port(), "card_features", "hit"), 3);
}

TEST_F(FeatureEnrichmentTest, ABatchOfAHundredRowsInOneRequest) {
  StartServer();
  std::vector<Txn> txns(100);
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 100; ++i) {
    Txn& t = txns[i];
    t.card = "c-" + std::to_string(i);
    t.merchant = 1 + i % 3;
    t.amount = 10.0f + 7.5f * static_cast<float>(i);
    t.hour = static_cast<float>(i % 24);
    t.trust = static_cast<float>(i % 10) / 10;
    std::optional<Card> card;
    if (i % 4 != 0) {  // every fourth card is unknown: its defaults
      card = Card{i % 30, 18 + i % 60, 10 * i, i % 5};
      WriteCard(t.card, *card);
    }
    rows.push_back(
        Row(t, card, t.merchant == 3 ? std::nullopt : std::optional<int32_t>(t.merchant * 4)));
  }
  WriteMerchant(1, 4);
  WriteMerchant(2, 8);
  ExpectPredictions(txns, rows);
  EXPECT_EQ(Values(server_.port(), "card_features", "hit"), 75 * 4);
  EXPECT_EQ(Values(server_.port(), "card_features", "missing"), 25 * 4);
  EXPECT_EQ(Values(server_.port(), "merchant_features", "missing"), 33);
}

TEST_F(FeatureEnrichmentTest, EntityKeysAsRequestParameters) {
  StartServer();
  const Card card{12, 33, 100, 1};
  WriteCard("c-param", card);
  WriteMerchant(7, 2);
  Txn t;
  t.card = "c-param";
  t.merchant = 7;
  json body = EnrichedRequest({t});
  body["inputs"].erase(0);  // card_id
  body["inputs"].erase(0);  // merchant_id
  body["parameters"] = {{"card_id", "c-param"}, {"merchant_id", 7}};
  Reply got = Infer(server_.port(), body);
  ASSERT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(got.predictions, PlainServer::Get().Predict({Row(t, card, 2)}));

  // An input of the same name wins over the parameter.
  body["inputs"].push_back(Column("merchant_id", "INT64", {99}));
  got = Infer(server_.port(), body);
  ASSERT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(got.predictions, PlainServer::Get().Predict({Row(t, card, std::nullopt)}));
}

TEST_F(FeatureEnrichmentTest, RequestsThatDoNotFitAreRefusedNamingTheInput) {
  StartServer();
  json body = EnrichedRequest({Txn{}});
  body["inputs"].erase(1);  // merchant_id
  Reply r = Infer(server_.port(), body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error, "input 'merchant_id' is required by feature view merchant_features");

  body = EnrichedRequest({Txn{}});
  body["inputs"].erase(2);  // amount: no view has it
  r = Infer(server_.port(), body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error, "model feature 'amount' is not in the request and no feature view has it");

  body = EnrichedRequest({Txn{}});
  body["inputs"][0] = Column("card_id", "INT64", {5});
  r = Infer(server_.port(), body);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.error.find("input 'card_id' has datatype INT64"), std::string::npos) << r.error;

  body = EnrichedRequest({Txn{}, Txn{}});
  body["inputs"][2]["shape"] = {1, 2};
  r = Infer(server_.port(), body);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.error.find("input 'amount' has shape [1,2]"), std::string::npos) << r.error;

  // The model's own input is still served as it is.
  const Txn t;
  r = Infer(server_.port(), PlainRequest({Row(t, std::nullopt, std::nullopt)}));
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.predictions, PlainServer::Get().Predict({Row(t, std::nullopt, std::nullopt)}));
}

inference::ModelInferRequest GrpcRequest(const Txn& t, bool entity_parameters) {
  inference::ModelInferRequest req;
  req.set_model_name("fraud");
  auto fp32 = [&](const std::string& name, float v) {
    auto* in = req.add_inputs();
    in->set_name(name);
    in->set_datatype("FP32");
    in->add_shape(1);
    in->mutable_contents()->add_fp32_contents(v);
  };
  if (entity_parameters) {
    (*req.mutable_parameters())["card_id"].set_string_param(t.card);
    (*req.mutable_parameters())["merchant_id"].set_int64_param(t.merchant);
  } else {
    auto* card = req.add_inputs();
    card->set_name("card_id");
    card->set_datatype("BYTES");
    card->add_shape(1);
    card->mutable_contents()->add_bytes_contents(t.card);
    auto* merchant = req.add_inputs();
    merchant->set_name("merchant_id");
    merchant->set_datatype("INT64");
    merchant->add_shape(1);
    merchant->add_shape(1);
    merchant->mutable_contents()->add_int64_contents(t.merchant);
  }
  fp32("amount", t.amount);
  fp32("transaction_hour", t.hour);
  fp32("foreign_transaction", t.foreign);
  fp32("location_mismatch", t.mismatch);
  fp32("device_trust_score", t.trust);
  fp32("distance_from_home_km", t.distance);
  fp32("card_present", t.present);
  return req;
}

TEST_F(FeatureEnrichmentTest, GrpcGoesThroughTheSameEnrichment) {
  StartServer();
  const Card card{20, 27, 60, 1};
  WriteCard("c-grpc", card);
  WriteMerchant(42, 9);
  Txn t;
  t.card = "c-grpc";
  const std::vector<float> want = PlainServer::Get().Predict({Row(t, card, 9)});
  GrpcTestClient client(grpc_port_);
  for (bool params : {false, true}) {
    inference::ModelInferResponse res;
    const grpc::Status s = client.Infer(GrpcRequest(t, params), &res);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(sluice::testing::Fp32Output(res), want) << (params ? "parameters" : "inputs");
  }
  auto missing = GrpcRequest(t, false);
  missing.mutable_inputs()->DeleteSubrange(0, 1);  // card_id
  inference::ModelInferResponse res;
  const grpc::Status s = client.Infer(missing, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input 'card_id' is required by feature view card_features");
  EXPECT_EQ(Values(server_.port(), "card_features", "hit"), 8);
}

// SIGSTOP: connections stay open and nothing answers. Requests still succeed, with defaults,
// within the budget (plus slack for a loaded test machine), and the timeouts are counted.
TEST_F(FeatureEnrichmentTest, AHungRedisCostsTheBudgetAndServesDefaults) {
  StartServer({"--feature-budget", "20ms"});
  const Card card{7, 23, 30, 2};
  WriteCard("c-1", card);
  WriteMerchant(42, 11);
  const Txn t;
  // Connected and served from Redis first.
  ASSERT_TRUE(WaitForPredictions({t}, PlainServer::Get().Predict({Row(t, card, 11)})));
  const std::vector<float> defaults =
      PlainServer::Get().Predict({Row(t, std::nullopt, std::nullopt)});
  const double timeouts_before = Metric(server_.port(), "sluice_server_feature_redis_errors_total",
                                        {{"view", "card_features"}, {"kind", "timeout"}});
  const double card_defaults_before = Values(server_.port(), "card_features", "default");
  const double merchant_defaults_before = Values(server_.port(), "merchant_features", "default");
  ASSERT_TRUE(redis_->Pause().ok());
  for (int i = 0; i < 3; ++i) {
    Reply r = Infer(server_.port(), EnrichedRequest({t}));
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.predictions, defaults);
    EXPECT_LT(r.took, 20ms + 300ms);
  }
  ASSERT_TRUE(redis_->Resume().ok());
  EXPECT_EQ(Metric(server_.port(), "sluice_server_feature_redis_errors_total",
                   {{"view", "card_features"}, {"kind", "timeout"}}),
            timeouts_before + 3);
  EXPECT_EQ(Values(server_.port(), "card_features", "default"), card_defaults_before + 3 * 4);
  EXPECT_EQ(Values(server_.port(), "merchant_features", "default"), merchant_defaults_before + 3);
  EXPECT_NE(server_.Log().find("timed out"), std::string::npos) << server_.Log();
  // Back to values once Redis answers again.
  EXPECT_TRUE(WaitForPredictions({t}, PlainServer::Get().Predict({Row(t, card, 11)})));
}

// Redis gone (connection refused), then back: defaults meanwhile, values again once it returns.
TEST_F(FeatureEnrichmentTest, ADeadRedisServesDefaultsUntilItReturns) {
  StartServer({"--feature-budget", "20ms"});
  const Txn t;
  ASSERT_TRUE(redis_->Stop().ok());
  const std::vector<float> defaults =
      PlainServer::Get().Predict({Row(t, std::nullopt, std::nullopt)});
  for (int i = 0; i < 3; ++i) {
    Reply r = Infer(server_.port(), EnrichedRequest({t}));
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.predictions, defaults);
    EXPECT_LT(r.took, 20ms + 300ms);
  }
  EXPECT_GE(Metric(server_.port(), "sluice_server_feature_redis_errors_total",
                   {{"view", "card_features"}, {"kind", "error"}}),
            3);
  EXPECT_EQ(Values(server_.port(), "card_features", "default"), 3 * 4);

  ASSERT_TRUE(redis_->Restart().ok());
  const Card card{7, 23, 30, 2};
  WriteCard("c-1", card);
  WriteMerchant(42, 11);
  // The server reconnects after its backoff (500 ms).
  EXPECT_TRUE(WaitForPredictions({t}, PlainServer::Get().Predict({Row(t, card, 11)})));
}

TEST_F(FeatureEnrichmentTest, RefusesToStartWhenRowsCannotBeAssembled) {
  // A STRING feature the model would take.
  auto card = CardView(redis_->address());
  card.features[0].type = api::FeastType::kString;
  card.features[0].default_value.reset();
  ServerProcess s;
  ASSERT_TRUE(s.Start(SLUICE_SERVER_BIN, {"--model-uri", kModelDir + "/fraud.json",
                                          "--feature-views", api::FormatFeatureViews({card})}));
  EXPECT_EQ(s.Wait(60s), 1) << s.Log();
  EXPECT_NE(s.Log().find("feature velocity_last_24h of feature view card_features is STRING"),
            std::string::npos)
      << s.Log();

  // A model file without feature_names.
  json model = json::parse(std::ifstream(kModelDir + "/fraud.json"));
  model["learner"].erase("feature_names");
  model["learner"].erase("feature_types");
  const auto path = std::filesystem::temp_directory_path() /
                    ("sluice-unnamed-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << model.dump();
  ServerProcess unnamed;
  ASSERT_TRUE(
      unnamed.Start(SLUICE_SERVER_BIN, {"--model-uri", path.string(), "--feature-views",
                                        api::FormatFeatureViews({CardView(redis_->address())})}));
  EXPECT_EQ(unnamed.Wait(60s), 1) << unnamed.Log();
  EXPECT_NE(unnamed.Log().find("does not name its features"), std::string::npos) << unnamed.Log();
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sluice::dataplane
