// Online feature enrichment without I/O: the plan made at start (what the server refuses), how a
// request binds to it (row assembly, the 400s it names), and how HMGET replies in Feast's layout
// become row values (hit, missing, stale, malformed).
#include "dataplane/server/feature_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "dataplane/features/feast_codec.h"

namespace sluice::dataplane {
namespace {

using api::FeastType;
using features::FeastValue;
using features::RedisReply;
using namespace std::chrono_literals;

const std::vector<std::string> kModel = {"amount", "velocity", "category", "age"};

api::FeatureViewConfig CardView() {
  api::FeatureViewConfig v;
  v.name = "card-features";
  v.project = "fraud";
  v.entities = {{"card", "card_id", FeastType::kString}};
  v.features = {{"velocity", FeastType::kInt32, "0"},
                {"avg_amount_30d", FeastType::kDouble, std::nullopt},  // not a model feature
                {"age", FeastType::kInt32, std::nullopt}};
  v.ttl = 1h;
  v.redis_address = "127.0.0.1:6379";
  return v;
}

api::FeatureViewConfig MerchantView() {
  api::FeatureViewConfig v;
  v.name = "merchant-features";
  v.project = "fraud";
  v.entities = {{"merchant", "merchant_id", FeastType::kInt64}};
  v.features = {{"category", FeastType::kInt32, "7"}, {"velocity", FeastType::kInt32, "99"}};
  v.redis_address = "127.0.0.1:6379";
  return v;
}

FeaturePlan Plan() {
  auto p = FeaturePlan::Create(kModel, {CardView(), MerchantView()});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return std::move(p).value();
}

template <typename T>
Tensor Column(const std::string& name, DataType type, std::vector<T> values, bool two_d = false) {
  std::vector<int64_t> shape{static_cast<int64_t>(values.size())};
  if (two_d) shape.push_back(1);
  Tensor t(name, type, shape);
  t.mutable_bytes().assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  return t;
}

Tensor Strings(const std::string& name, const std::vector<std::string>& values) {
  Tensor t(name, DataType::kBytes, {static_cast<int64_t>(values.size())});
  for (const auto& v : values) AppendByteElement(t.mutable_bytes(), v);
  return t;
}

std::string Key(const std::string& join_key, const FeastValue& v) {
  const features::EntityKeyPart parts[] = {{join_key, &v}};
  return *features::RedisKey(parts, "fraud");
}

std::string ErrorOf(const FeaturePlan& plan, const InferRequest& r) {
  auto b = plan.Bind(r);
  EXPECT_FALSE(b.ok());
  if (b.ok()) return "";
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  return b.status().message();
}

InferRequest Request() {
  InferRequest r;
  r.inputs.push_back(Column<float>("amount", DataType::kFp32, {12.5f, 80.0f}));
  r.inputs.push_back(Strings("card_id", {"c-1", "c-2"}));
  r.inputs.push_back(Column<int32_t>("merchant_id", DataType::kInt32, {42, 43}, true));
  return r;
}

TEST(FeaturePlanTest, TakesEachFeatureFromTheFirstViewThatHasIt) {
  const FeaturePlan plan = Plan();
  ASSERT_EQ(plan.views().size(), 2u);
  const auto& card = plan.views()[0];
  ASSERT_EQ(card.fields.size(), 2u);  // velocity, age; avg_amount_30d is not a model input
  EXPECT_EQ(card.fields[0].column, 1u);
  EXPECT_EQ(card.fields[0].hash_field, features::FeatureField("card-features", "velocity"));
  EXPECT_EQ(card.fields[0].fallback, 0.0f);
  EXPECT_EQ(card.fields[1].column, 3u);
  EXPECT_TRUE(std::isnan(card.fields[1].fallback));  // no default: missing for the model
  const auto& merchant = plan.views()[1];
  ASSERT_EQ(merchant.fields.size(), 1u);  // velocity already comes from the card view
  EXPECT_EQ(merchant.fields[0].column, 2u);
  EXPECT_EQ(merchant.fields[0].fallback, 7.0f);
  EXPECT_EQ(merchant.ts_field, "_ts:merchant-features");

  features::RedisCommand cmd;
  plan.AppendHmget(0, "k", cmd);
  ASSERT_EQ(cmd.size(), 5u);
  EXPECT_EQ(cmd[0], "HMGET");
  EXPECT_EQ(cmd[1], "k");
  EXPECT_EQ(cmd[4], "_ts:card-features");
}

TEST(FeaturePlanTest, RefusesWhatCannotWorkAtStart) {
  auto no_names = FeaturePlan::Create({}, {CardView()});
  ASSERT_FALSE(no_names.ok());
  EXPECT_NE(no_names.status().message().find("feature_names"), std::string::npos);

  auto string_feature = CardView();
  string_feature.features[0].type = FeastType::kString;
  auto s = FeaturePlan::Create(kModel, {string_feature});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("feature velocity of feature view card-features is STRING"),
            std::string::npos)
      << s.status().message();

  // A STRING feature the model does not take is fine.
  auto unused_string = CardView();
  unused_string.features[1].type = FeastType::kString;
  EXPECT_TRUE(FeaturePlan::Create(kModel, {unused_string}).ok());

  auto bad_default = CardView();
  bad_default.features[0].default_value = "many";
  auto d = FeaturePlan::Create(kModel, {bad_default});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("\"many\""), std::string::npos) << d.status().message();

  auto float_entity = MerchantView();
  float_entity.entities[0].value_type = FeastType::kFloat;
  EXPECT_FALSE(FeaturePlan::Create(kModel, {float_entity}).ok());
  auto no_entity = MerchantView();
  no_entity.entities.clear();
  EXPECT_FALSE(FeaturePlan::Create(kModel, {no_entity}).ok());
}

TEST(FeaturePlanTest, AssemblesRowsInModelOrder) {
  const FeaturePlan plan = Plan();
  auto b = plan.Bind(Request());
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_FALSE(b->plain);
  ASSERT_EQ(b->rows, 2u);
  ASSERT_EQ(b->values.size(), 8u);
  // amount from the request; velocity 0 and category 7 are defaults until fetched; age NaN.
  EXPECT_EQ(b->values[0], 12.5f);
  EXPECT_EQ(b->values[1], 0.0f);
  EXPECT_EQ(b->values[2], 7.0f);
  EXPECT_TRUE(std::isnan(b->values[3]));
  EXPECT_EQ(b->values[4], 80.0f);
  EXPECT_EQ(b->provided, (std::vector<uint8_t>{1, 0, 0, 0}));
  ASSERT_EQ(b->fetch, (std::vector<size_t>{0, 1}));
  // Keys in Feast's layout, typed by the entity: an INT32 input of an INT64 entity is keyed as
  // INT64, as Feast writes it.
  EXPECT_EQ(b->keys[0], (std::vector<std::string>{Key("card_id", FeastValue::String("c-1")),
                                                  Key("card_id", FeastValue::String("c-2"))}));
  EXPECT_EQ(b->keys[1], (std::vector<std::string>{Key("merchant_id", FeastValue::Int64(42)),
                                                  Key("merchant_id", FeastValue::Int64(43))}));
}

TEST(FeaturePlanTest, TheRequestWinsOverViewsAndViewsItFullyCoversAreNotFetched) {
  const FeaturePlan plan = Plan();
  InferRequest r = Request();
  r.inputs.erase(r.inputs.begin() + 2);  // no merchant_id
  r.inputs.push_back(Column<double>("category", DataType::kFp64, {3.0, 4.0}));
  r.inputs.push_back(Column<uint8_t>("velocity", DataType::kBool, {1, 0}));
  auto b = plan.Bind(r);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->fetch, (std::vector<size_t>{0}));  // merchant view: nothing left to fill
  EXPECT_EQ(b->values[1], 1.0f);
  EXPECT_EQ(b->values[2], 3.0f);
  EXPECT_EQ(b->values[5], 0.0f);
  EXPECT_EQ(b->values[6], 4.0f);

  // A fetched view leaves the request's columns alone.
  const auto& card = plan.views()[0];
  RedisReply reply{RedisReply::Kind::kArray, "", 0, {}};
  reply.elements.push_back(
      {RedisReply::Kind::kString, features::EncodeValue(FeastValue::Int32(9)), 0, {}});
  reply.elements.push_back(
      {RedisReply::Kind::kString, features::EncodeValue(FeastValue::Int32(50)), 0, {}});
  reply.elements.push_back({RedisReply::Kind::kString, features::EncodeTimestamp(1000, 0), 0, {}});
  ASSERT_EQ(card.fields.size() + 1, reply.elements.size());
  FeatureCounts counts{};
  plan.Fill(0, reply, std::chrono::system_clock::from_time_t(1000), b->provided,
            std::span<float>(b->values.data(), 4), counts);
  EXPECT_EQ(b->values[1], 1.0f);   // velocity: the request's
  EXPECT_EQ(b->values[3], 50.0f);  // age: the view's
  EXPECT_EQ(counts, (FeatureCounts{1, 0, 0, 0, 0}));
}

TEST(FeaturePlanTest, EntityKeysFromParametersAndTheInputWins) {
  const FeaturePlan plan = Plan();
  InferRequest r;
  r.inputs.push_back(Column<float>("amount", DataType::kFp32, {5.0f}));
  r.parameters = {{"card_id", "c-9"}, {"merchant_id", 42}};
  auto b = plan.Bind(r);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->rows, 1u);
  EXPECT_EQ(b->keys[0][0], Key("card_id", FeastValue::String("c-9")));
  EXPECT_EQ(b->keys[1][0], Key("merchant_id", FeastValue::Int64(42)));

  r.inputs.push_back(Strings("card_id", {"from-input"}));
  b = plan.Bind(r);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->keys[0][0], Key("card_id", FeastValue::String("from-input")));

  // No inputs at all: one row, every feature from views... but amount is only in the request.
  InferRequest only_params;
  only_params.parameters = r.parameters;
  EXPECT_EQ(ErrorOf(plan, only_params),
            "model feature 'amount' is not in the request and no feature view has it");

  InferRequest wrong_type;
  wrong_type.inputs.push_back(Column<float>("amount", DataType::kFp32, {5.0f}));
  wrong_type.parameters = {{"card_id", 7}, {"merchant_id", 42}};
  EXPECT_NE(ErrorOf(plan, wrong_type).find("parameter 'card_id' must be a string"),
            std::string::npos);
}

TEST(FeaturePlanTest, RefusesRequestsThatDoNotFitNamingTheInput) {
  const FeaturePlan plan = Plan();
  InferRequest r = Request();
  r.inputs.erase(r.inputs.begin() + 1);
  EXPECT_EQ(ErrorOf(plan, r), "input 'card_id' is required by feature view card-features");

  r = Request();
  r.inputs[0] = Column<float>("amount", DataType::kFp32, {1.0f, 2.0f, 3.0f, 4.0f});
  r.inputs[0].set_shape({2, 2});
  EXPECT_EQ(ErrorOf(plan, r), "input 'amount' has shape [2,2]; a column takes [n] or [n,1]");

  r = Request();
  r.inputs[0] = Strings("amount", {"a", "b"});
  EXPECT_NE(ErrorOf(plan, r).find("input 'amount' has datatype BYTES"), std::string::npos);

  r = Request();
  r.inputs[1] = Column<int64_t>("card_id", DataType::kInt64, {1, 2});
  EXPECT_NE(ErrorOf(plan, r).find("input 'card_id' has datatype INT64; entity 'card_id'"),
            std::string::npos);

  r = Request();
  r.inputs[2] = Column<float>("merchant_id", DataType::kFp32, {1.0f, 2.0f});
  EXPECT_NE(ErrorOf(plan, r).find("input 'merchant_id' has datatype FP32"), std::string::npos);

  r = Request();
  r.inputs[0] = Column<float>("amount", DataType::kFp32, {1.0f, 2.0f, 3.0f});
  EXPECT_NE(ErrorOf(plan, r).find("input 'card_id' has 2 rows; the inputs before it have 3"),
            std::string::npos);

  r = Request();
  r.inputs.push_back(Column<float>("amuont", DataType::kFp32, {1.0f, 2.0f}));
  EXPECT_NE(ErrorOf(plan, r).find("unknown input 'amuont'"), std::string::npos);

  r = Request();
  r.inputs.push_back(Column<float>("amount", DataType::kFp32, {1.0f, 2.0f}));
  EXPECT_EQ(ErrorOf(plan, r), "input 'amount' appears twice");

  // The model's own input alone is taken as it is.
  InferRequest plain;
  plain.inputs.push_back(Tensor("input-0", DataType::kFp32, {1, 4}));
  auto b = plan.Bind(plain);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->plain);
}

RedisReply Str(std::string s) {
  return {RedisReply::Kind::kString, std::move(s), 0, {}};
}
RedisReply Nil() {
  return {};
}

TEST(FeaturePlanTest, FillsHitsAndCountsMissingStaleAndMalformed) {
  const FeaturePlan plan = Plan();
  const std::vector<uint8_t> none(4, 0);
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  const int64_t now_s = 1'700'000'000;
  auto reply = [](RedisReply velocity, RedisReply age, RedisReply ts) {
    RedisReply r{RedisReply::Kind::kArray, "", 0, {}};
    r.elements = {std::move(velocity), std::move(age), std::move(ts)};
    return r;
  };
  auto fill = [&](const RedisReply& r, FeatureCounts& counts) {
    std::vector<float> row = {1.0f, 0.0f, 7.0f, std::nanf("")};  // fallbacks as Bind sets them
    plan.Fill(0, r, now, none, row, counts);
    return row;
  };
  const std::string v12 = features::EncodeValue(FeastValue::Int32(12));
  const std::string v33 = features::EncodeValue(FeastValue::Int32(33));

  FeatureCounts c{};
  auto row = fill(reply(Str(v12), Str(v33), Str(features::EncodeTimestamp(now_s - 60, 5))), c);
  EXPECT_EQ(row[1], 12.0f);
  EXPECT_EQ(row[3], 33.0f);
  EXPECT_EQ(c, (FeatureCounts{2, 0, 0, 0, 0}));

  // Older than the view's ttl (1h): stale, the defaults stay.
  c = {};
  row = fill(reply(Str(v12), Str(v33), Str(features::EncodeTimestamp(now_s - 3601, 0))), c);
  EXPECT_EQ(row[1], 0.0f);
  EXPECT_TRUE(std::isnan(row[3]));
  EXPECT_EQ(c, (FeatureCounts{0, 0, 2, 0, 0}));

  // No key (every field nil), and an empty Value (Feast's None).
  c = {};
  row = fill(reply(Nil(), Nil(), Nil()), c);
  EXPECT_EQ(row[1], 0.0f);
  row = fill(reply(Str(""), Str(v33), Str(features::EncodeTimestamp(now_s, 0))), c);
  EXPECT_EQ(row[1], 0.0f);
  EXPECT_EQ(row[3], 33.0f);
  EXPECT_EQ(c, (FeatureCounts{1, 3, 0, 0, 0}));

  // Garbage, a value of another type, a bad timestamp, an error reply.
  c = {};
  row = fill(reply(Str("\xff\xff\xff"), Str(features::EncodeValue(FeastValue::Double(1.5))),
                   Str(features::EncodeTimestamp(now_s, 0))),
             c);
  EXPECT_EQ(row[1], 0.0f);
  EXPECT_TRUE(std::isnan(row[3]));
  fill(reply(Str(v12), Str(v33), Str("\xff")), c);
  fill(RedisReply{RedisReply::Kind::kError, "WRONGTYPE", 0, {}}, c);
  EXPECT_EQ(c, (FeatureCounts{0, 0, 0, 6, 0}));

  c = {};
  plan.Unfetched(0, none, c);
  EXPECT_EQ(c, (FeatureCounts{0, 0, 0, 0, 2}));
  EXPECT_EQ(FeatureResultLabel(FeatureResult::kUnfetched), "default");
}

}  // namespace
}  // namespace sluice::dataplane
