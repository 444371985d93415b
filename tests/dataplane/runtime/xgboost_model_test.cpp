// Loading XGBoost model files: the forms base_score takes, objectives and their transforms,
// hand-built edge cases, malformed and truncated files, and small models written by xgboost 3.x.

#include "dataplane/runtime/xgboost_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/dataplane/runtime/test_util.h"
#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {
namespace {

using nlohmann::json;
using testing::ReadAll;
using testing::Source;
using testing::TestData;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

json Tree(int id, int feature, float threshold, bool default_left, float left_leaf,
          float right_leaf) {
  return json{
      {"id", id},
      {"tree_param",
       {{"num_deleted", "0"}, {"num_feature", "2"}, {"num_nodes", "3"}, {"size_leaf_vector", "1"}}},
      {"left_children", {1, -1, -1}},
      {"right_children", {2, -1, -1}},
      {"parents", {2147483647, 0, 0}},
      {"split_indices", {feature, 0, 0}},
      {"split_conditions", {threshold, left_leaf, right_leaf}},
      {"split_type", {0, 0, 0}},
      {"default_left", {default_left ? 1 : 0, 0, 0}},
      {"base_weights", {0.0, left_leaf, right_leaf}},
      {"loss_changes", {1.0, 0.0, 0.0}},
      {"sum_hessian", {10.0, 5.0, 5.0}},
      {"categories", json::array()},
      {"categories_nodes", json::array()},
      {"categories_segments", json::array()},
      {"categories_sizes", json::array()},
  };
}

// Two stumps in the layout xgboost 3.1 writes: tree 0 splits "amount" at 0.5 (missing goes
// left), tree 1 splits "age" at 30 (missing goes right).
json TinyModel(const std::string& base_score = "[3E-1]",
               const std::string& objective = "binary:logistic") {
  return json{
      {"version", {3, 1, 0}},
      {"learner",
       {{"attributes", json::object()},
        {"feature_names", {"amount", "age"}},
        {"feature_types", {"float", "float"}},
        {"gradient_booster",
         {{"name", "gbtree"},
          {"model",
           {{"gbtree_model_param", {{"num_parallel_tree", "1"}, {"num_trees", "2"}}},
            {"iteration_indptr", {0, 1, 2}},
            {"tree_info", {0, 0}},
            {"trees", {Tree(0, 0, 0.5f, true, -0.2f, 0.4f), Tree(1, 1, 30.0f, false, 0.1f, -0.3f)}},
            {"cats",
             {{"enc", json::array()},
              {"feature_segments", json::array()},
              {"sorted_idx", json::array()}}}}}}},
        {"learner_model_param",
         {{"base_score", base_score},
          {"boost_from_average", "1"},
          {"num_class", "0"},
          {"num_feature", "2"},
          {"num_target", "1"}}},
        {"objective", {{"name", objective}, {"reg_loss_param", {{"scale_pos_weight", "1"}}}}}}},
  };
}

Result<std::unique_ptr<XGBoostRuntime>> FromJson(const json& model, LoadOptions opts = {}) {
  return XGBoostRuntime::FromBytes(model.dump(), ModelFormat::kJson, opts);
}

float Sigmoid(double x) {
  return static_cast<float>(1.0 / (1.0 + std::exp(-x)));
}
double Logit(double p) {
  return std::log(p / (1.0 - p));
}

std::vector<float> PredictAll(const Runtime& rt, const std::vector<float>& rows) {
  const size_t n = rows.size() / rt.num_features();
  std::vector<float> out(n * rt.num_outputs());
  Status s = rt.Predict(rows, n, out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(XGBoostModel, BaseScoreInEveryFormIsAProbabilityForLogistic) {
  // A value equal to the threshold goes right, in a node whose missing values go left (tree 0)
  // and in one whose missing values go right (tree 1).
  const std::vector<float> rows = {0.2f,  40.0f,  kNaN, kNaN,  0.5f,        29.9f,
                                   1e30f, -1e30f, 0.5f, 30.0f, 0.49999997f, 30.0f};
  const double base = Logit(0.3);
  const std::vector<float> want = {Sigmoid(base - 0.2 - 0.3), Sigmoid(base - 0.2 - 0.3),
                                   Sigmoid(base + 0.4 + 0.1), Sigmoid(base + 0.4 + 0.1),
                                   Sigmoid(base + 0.4 - 0.3), Sigmoid(base - 0.2 - 0.3)};
  for (const char* form : {"[0.3]", "[3E-1]", "3E-1", "0.3", " [ 0.3 ] ", "[3.0000001E-1]"}) {
    auto rt = FromJson(TinyModel(form));
    ASSERT_TRUE(rt.ok()) << form << ": " << rt.status();
    std::vector<float> got = PredictAll(**rt, rows);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << form << i;
  }
}

TEST(XGBoostModel, ObjectivesTransformTheMargin) {
  const std::vector<float> row = {0.2f, 40.0f};  // leaves -0.2 and -0.3
  struct Expect {
    const char* objective;
    const char* base;
    double value;
  } cases[] = {
      {"reg:squarederror", "[3E-1]", 0.3 - 0.5},
      {"reg:logistic", "[3E-1]", Sigmoid(Logit(0.3) - 0.5)},
      {"binary:logitraw", "[3E-1]", 0.3 - 0.5},  // base_score is already a margin here
      {"binary:hinge", "[3E-1]", 0.0},           // margin -0.2 is not positive
      {"binary:hinge", "[9E-1]", 1.0},
      {"count:poisson", "[3E-1]", std::exp(std::log(0.3) - 0.5)},
      {"reg:gamma", "[2E0]", std::exp(std::log(2.0) - 0.5)},
      {"reg:tweedie", "[2E0]", std::exp(std::log(2.0) - 0.5)},
      {"reg:absoluteerror", "[1E0]", 0.5},
      {"rank:ndcg", "[5E-1]", 0.0},
  };
  for (const Expect& c : cases) {
    auto rt = FromJson(TinyModel(c.base, c.objective));
    ASSERT_TRUE(rt.ok()) << c.objective << ": " << rt.status();
    EXPECT_EQ((*rt)->objective(), c.objective);
    EXPECT_NEAR(PredictAll(**rt, row)[0], c.value, 1e-6) << c.objective;
  }
  LoadOptions margin;
  margin.output_margin = true;
  auto rt = FromJson(TinyModel("[3E-1]", "binary:logistic"), margin);
  ASSERT_TRUE(rt.ok());
  EXPECT_NEAR(PredictAll(**rt, row)[0], Logit(0.3) - 0.5, 1e-6);
}

json MulticlassModel(const std::string& base_score, const std::string& objective) {
  json m = TinyModel(base_score, objective);
  auto& model = m["learner"]["gradient_booster"]["model"];
  model["trees"] = {Tree(0, 0, 0.5f, true, -0.2f, 0.4f), Tree(1, 1, 30.0f, false, 0.1f, -0.3f),
                    Tree(2, 0, 0.0f, false, 0.7f, 0.05f)};
  model["tree_info"] = {0, 1, 2};
  model["iteration_indptr"] = {0, 3};
  model["gbtree_model_param"]["num_trees"] = "3";
  m["learner"]["learner_model_param"]["num_class"] = "3";
  return m;
}

TEST(XGBoostModel, MulticlassWithAPerClassIntercept) {
  // xgboost 3.1+ writes one intercept per class, already in margin space.
  auto rt = FromJson(MulticlassModel("[1E-1,-2E-1,3E-1]", "multi:softprob"));
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ((*rt)->num_outputs(), 3u);
  EXPECT_EQ((*rt)->metadata().outputs[0].shape, (std::vector<int64_t>{-1, 3}));
  const std::vector<float> row = {0.2f, 40.0f};
  const double m[3] = {0.1 - 0.2, -0.2 - 0.3, 0.3 + 0.05};
  const double z = std::exp(m[0]) + std::exp(m[1]) + std::exp(m[2]);
  std::vector<float> got = PredictAll(**rt, row);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(got[k], std::exp(m[k]) / z, 1e-6) << k;

  auto softmax = FromJson(MulticlassModel("[1E-1,-2E-1,3E-1]", "multi:softmax"));
  ASSERT_TRUE(softmax.ok()) << softmax.status();
  EXPECT_EQ((*softmax)->num_outputs(), 1u);
  EXPECT_EQ((*softmax)->metadata().outputs[0].shape, (std::vector<int64_t>{-1}));
  EXPECT_EQ(PredictAll(**softmax, row)[0], 2.0f);

  // The scalar form (xgboost < 3.1) applies to every class.
  auto scalar = FromJson(MulticlassModel("5E-1", "multi:softprob"));
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(FromJson(MulticlassModel("[1E-1,2E-1]", "multi:softprob")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(XGBoostModel, MetadataAndFeatureNames) {
  LoadOptions opts;
  opts.name = "fraud";
  opts.version = "7";
  auto rt = FromJson(TinyModel(), opts);
  ASSERT_TRUE(rt.ok());
  const ModelMetadata& md = (*rt)->metadata();
  EXPECT_EQ(md.name, "fraud");
  EXPECT_EQ(md.version, "7");
  EXPECT_EQ(md.platform, "xgboost");
  ASSERT_EQ(md.inputs.size(), 1u);
  EXPECT_EQ(md.inputs[0].name, "input-0");
  EXPECT_EQ(md.inputs[0].datatype, "FP32");
  EXPECT_EQ(md.inputs[0].shape, (std::vector<int64_t>{-1, 2}));
  ASSERT_EQ(md.outputs.size(), 1u);
  EXPECT_EQ(md.outputs[0].name, "predict");
  EXPECT_EQ(md.outputs[0].shape, (std::vector<int64_t>{-1}));
  EXPECT_EQ((*rt)->feature_names(), (std::vector<std::string>{"amount", "age"}));
}

TEST(XGBoostModel, WrongShapesAreInvalidArgument) {
  auto rt = FromJson(TinyModel());
  ASSERT_TRUE(rt.ok());
  std::vector<float> rows(6, 0.0f);
  std::vector<float> out(3);
  // Three features per row for a two-feature model.
  Status s = (*rt)->Predict(rows, 2, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2 features"), std::string::npos) << s;
  EXPECT_EQ((*rt)
                ->Predict(std::span<const float>(rows).first(4), 2, std::span<float>(out).first(1))
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE((*rt)->Predict(std::span<const float>(rows).first(4), 2, out).ok());
  EXPECT_TRUE((*rt)->Predict({}, 0, {}).ok());
  EXPECT_EQ((*rt)->Predict(rows, std::numeric_limits<size_t>::max() / 2 + 1, out).code(),
            StatusCode::kInvalidArgument);
}

TEST(XGBoostModel, NonFiniteLiteralsThatXgboostWrites) {
  // xgboost's JSON writer emits bare NaN / Infinity; inside strings they are just text.
  json m = TinyModel();
  m["learner"]["feature_names"] = {"NaN", "-Infinity"};
  std::string text = m.dump();
  const std::string threshold = "0.5,-0.2";
  text.replace(text.find(threshold), 3, "Infinity");
  auto rt = XGBoostRuntime::FromBytes(text, ModelFormat::kJson, {});
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ((*rt)->feature_names()[0], "NaN");
  // x < +inf goes left for every finite x; +inf itself goes right.
  std::vector<float> got = PredictAll(**rt, {1e30f, 40.0f, INFINITY, 40.0f});
  EXPECT_NEAR(got[0], Sigmoid(Logit(0.3) - 0.2 - 0.3), 1e-6);
  EXPECT_NEAR(got[1], Sigmoid(Logit(0.3) + 0.4 - 0.3), 1e-6);

  std::string neg = m.dump();
  neg.replace(neg.find(threshold), 3, "-Infinity");
  rt = XGBoostRuntime::FromBytes(neg, ModelFormat::kJson, {});
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_NEAR(PredictAll(**rt, {-1e30f, 40.0f})[0], Sigmoid(Logit(0.3) + 0.4 - 0.3), 1e-6);

  std::string nan = m.dump();
  nan.replace(nan.find("0.5,-0.2"), 8, "NaN,-0.2");
  EXPECT_TRUE(XGBoostRuntime::FromBytes(nan, ModelFormat::kJson, {}).ok());
}

TEST(XGBoostModel, CategoricalSplitsFollowXgboostRules) {
  json m = TinyModel();
  json& t = m["learner"]["gradient_booster"]["model"]["trees"][0];
  t["split_type"] = {1, 0, 0};
  t["categories"] = {3, 1, 40};
  t["categories_nodes"] = {0};
  t["categories_segments"] = {0};
  t["categories_sizes"] = {3};
  LoadOptions margin;
  margin.output_margin = true;
  for (auto layout : {ForestOptions::Layout::kPerfect, ForestOptions::Layout::kSparse}) {
    margin.layout = layout;
    auto rt = FromJson(m, margin);
    ASSERT_TRUE(rt.ok()) << rt.status();
    const float base = static_cast<float>(Logit(0.3)) + 0.1f;  // tree 1 goes left at age 0
    // In the set: right (0.4). Not in the set, negative, fractional parts of non-members,
    // beyond 2^24: left (-0.2). Missing: the default (left). 3.7 truncates to 3: right.
    const std::vector<std::pair<float, float>> cases = {
        {1.0f, 0.4f},   {3.0f, 0.4f},   {40.0f, 0.4f},    {3.7f, 0.4f},       {0.0f, -0.2f},
        {2.0f, -0.2f},  {41.0f, -0.2f}, {-1.0f, -0.2f},   {-0.5f, -0.2f},     {16777216.0f, -0.2f},
        {1e30f, -0.2f}, {kNaN, -0.2f},  {1000.0f, -0.2f}, {-INFINITY, -0.2f}, {INFINITY, -0.2f}};
    for (auto [x, leaf] : cases) {
      EXPECT_NEAR(PredictAll(**rt, {x, 0.0f})[0], base + leaf, 1e-6) << "category " << x;
    }
  }
  t["categories_nodes"] = json::array();
  t["categories_segments"] = json::array();
  t["categories_sizes"] = json::array();
  Result<std::unique_ptr<XGBoostRuntime>> bad = FromJson(m);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no category set"), std::string::npos) << bad.status();
}

TEST(XGBoostModel, MalformedModelsAreClearErrors) {
  struct Case {
    const char* what;
    std::function<void(json&)> mutate;
    StatusCode code;
    const char* message;
  };
  auto tree0 = [](json& m) -> json& {
    return m["learner"]["gradient_booster"]["model"]["trees"][0];
  };
  const Case cases[] = {
      {"no learner", [](json& m) { m.erase("learner"); }, StatusCode::kInvalidArgument,
       "missing field \"learner\""},
      {"num_feature not a number",
       [](json& m) { m["learner"]["learner_model_param"]["num_feature"] = "abc"; },
       StatusCode::kInvalidArgument, "num_feature"},
      {"child out of range", [&](json& m) { tree0(m)["left_children"][0] = 7; },
       StatusCode::kInvalidArgument, "children out of range"},
      {"one child", [&](json& m) { tree0(m)["right_children"][0] = -1; },
       StatusCode::kInvalidArgument, "one child"},
      {"cycle",
       [&](json& m) {
         json& t = tree0(m);
         t["tree_param"]["num_nodes"] = "5";
         t["left_children"] = {1, 3, -1, 1, -1};
         t["right_children"] = {2, 4, -1, 4, -1};
         for (const char* k : {"split_indices", "split_conditions", "split_type", "default_left",
                               "parents", "base_weights", "loss_changes", "sum_hessian"}) {
           t[k] = {0, 0, 0, 0, 0};
         }
       },
       StatusCode::kInvalidArgument, "reached twice"},
      {"feature beyond num_feature", [&](json& m) { tree0(m)["split_indices"][0] = 5; },
       StatusCode::kInvalidArgument, "splits on feature 5 but the model has 2 features"},
      {"short array",
       [&](json& m) {
         tree0(m)["split_conditions"] = {0.5, 0.1};
       },
       StatusCode::kInvalidArgument, "split_conditions has 2 entries"},
      {"unknown objective", [](json& m) { m["learner"]["objective"]["name"] = "reg:mystery"; },
       StatusCode::kUnimplemented, "reg:mystery"},
      {"gblinear", [](json& m) { m["learner"]["gradient_booster"]["name"] = "gblinear"; },
       StatusCode::kUnimplemented, "gblinear"},
      {"vector leaves", [&](json& m) { tree0(m)["tree_param"]["size_leaf_vector"] = "3"; },
       StatusCode::kUnimplemented, "vector-leaf"},
      {"base_score out of range",
       [](json& m) { m["learner"]["learner_model_param"]["base_score"] = "[1.5E0]"; },
       StatusCode::kInvalidArgument, "must be in (0, 1)"},
      {"base_score garbage",
       [](json& m) { m["learner"]["learner_model_param"]["base_score"] = "[0.3"; },
       StatusCode::kInvalidArgument, "base_score"},
      {"tree_info group",
       [](json& m) {
         m["learner"]["gradient_booster"]["model"]["tree_info"] = {0, 3};
       },
       StatusCode::kInvalidArgument, "group 3"},
      {"num_trees mismatch",
       [](json& m) {
         m["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] = "5";
       },
       StatusCode::kInvalidArgument, "num_trees is 5"},
      {"trees not an array",
       [](json& m) { m["learner"]["gradient_booster"]["model"]["trees"] = "x"; },
       StatusCode::kInvalidArgument, "expected an array"},
      {"feature names count", [](json& m) { m["learner"]["feature_names"] = {"a"}; },
       StatusCode::kInvalidArgument, "feature_names"},
  };
  for (const Case& c : cases) {
    json m = TinyModel();
    c.mutate(m);
    auto rt = FromJson(m);
    ASSERT_FALSE(rt.ok()) << c.what;
    EXPECT_EQ(rt.status().code(), c.code) << c.what << ": " << rt.status();
    EXPECT_NE(rt.status().message().find(c.message), std::string::npos)
        << c.what << ": " << rt.status();
  }
  for (const char* text : {"", "hello", "[]", "{}", "{\"learner\": 3}", "null", "{\"learner\":"}) {
    auto rt = XGBoostRuntime::FromBytes(text, ModelFormat::kJson, {});
    EXPECT_EQ(rt.status().code(), StatusCode::kInvalidArgument) << text;
  }
}

TEST(XGBoostModel, EveryTruncationOfAModelFileIsAnError) {
  for (const char* name : {"tiny.json", "tiny.ubj"}) {
    std::string bytes = ReadAll(TestData(name));
    while (!bytes.empty() && std::isspace(static_cast<unsigned char>(bytes.back()))) {
      bytes.pop_back();
    }
    const ModelFormat format =
        std::string(name).ends_with(".ubj") ? ModelFormat::kUbjson : ModelFormat::kJson;
    ASSERT_TRUE(ParseXGBoostModelBytes(bytes, format).ok()) << name;
    for (size_t k = 0; k < bytes.size(); ++k) {
      Result<XGBoostModel> m = ParseXGBoostModelBytes(std::string_view(bytes).substr(0, k), format);
      ASSERT_FALSE(m.ok()) << name << " truncated to " << k << " bytes parsed";
      EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << m.status();
    }
  }
}

TEST(XGBoostModel, CorruptedBytesNeverCrash) {
  // Random byte edits: whatever still parses must also evaluate safely.
  std::mt19937 rng(11);
  const std::vector<float> rows = {0.1f, kNaN, -3.0f, 1.0f,  2.0f, 1e30f,
                                   kNaN, 0.0f, 5.0f,  -1.0f, 0.5f, 0.25f};
  size_t loaded = 0;
  for (const char* name : {"tiny.json", "tiny.ubj"}) {
    const std::string original = ReadAll(TestData(name));
    for (int i = 0; i < 3000; ++i) {
      std::string bytes = original;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits; ++e) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng() % 256);
      }
      auto rt = XGBoostRuntime::FromBytes(bytes, ModelFormat::kAuto, {});
      if (!rt.ok()) continue;
      ++loaded;
      std::vector<float> out(4 * (*rt)->num_outputs());
      if ((*rt)->num_features() == 3) {
        EXPECT_TRUE((*rt)->Predict(rows, 4, out).ok());
      }
    }
  }
  // Edits inside float payloads and names leave a valid model, so some must load.
  EXPECT_GT(loaded, 0u);
}

TEST(XGBoostModel, FormatDetection) {
  EXPECT_EQ(DetectModelFormat("{\"learner\": {}}"), ModelFormat::kJson);
  EXPECT_EQ(DetectModelFormat("  \n{ }"), ModelFormat::kJson);
  EXPECT_EQ(DetectModelFormat(ReadAll(TestData("tiny.ubj"))), ModelFormat::kUbjson);
  EXPECT_EQ(DetectModelFormat(ReadAll(TestData("tiny.json"))), ModelFormat::kJson);
  EXPECT_EQ(*ParseModelFormat("xgboost-json"), ModelFormat::kJson);
  EXPECT_EQ(*ParseModelFormat("xgboost-ubj"), ModelFormat::kUbjson);
  EXPECT_EQ(*ParseModelFormat(""), ModelFormat::kAuto);
  EXPECT_EQ(ParseModelFormat("onnx").status().code(), StatusCode::kInvalidArgument);
}

// Models written by xgboost 3.2 from PyPI (testdata/make_fixtures.py), with the predictions
// xgboost made for them: per-class intercepts, native categorical splits with invalid category
// values, dart with parallel trees.
class Xgboost3Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Xgboost3Fixture, ReproducesXgboostPredictions) {
  for (const char* ext : {".json", ".ubj"}) {
    for (auto layout : {ForestOptions::Layout::kPerfect, ForestOptions::Layout::kSparse}) {
      LoadOptions opts;
      opts.layout = layout;
      auto rt = XGBoostRuntime::Load(Source("file://" + TestData(GetParam() + ext)), opts);
      ASSERT_TRUE(rt.ok()) << GetParam() << ext << ": " << rt.status();
      // The reference beside the model was found and checked at load.
      ASSERT_NE((*rt)->reference(), nullptr) << GetParam() << ext;
      EXPECT_GE((*rt)->reference()->num_rows, 20u);
      EXPECT_TRUE(CheckReference(**rt, *(*rt)->reference()).ok());
      EXPECT_TRUE((*rt)->WarmUp().ok());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Xgboost3Fixture,
                         ::testing::Values("tiny", "multiclass", "categorical", "dart_regression",
                                           "multi_target"));

TEST(XGBoostReference, MismatchRefusesToLoadNamingTheRow) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("sluice-ref-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(TestData("multiclass.ubj"), dir / "m.ubj",
                             std::filesystem::copy_options::overwrite_existing);
  json ref = json::parse(ReadAll(TestData("multiclass.reference.json")));
  const float original = ref["outputs"][17][1].get<float>();
  ref["outputs"][17][1] = original + 0.01f;
  testing::WriteAll((dir / "m.reference.json").string(), ref.dump());

  auto rt = XGBoostRuntime::Load(Source((dir / "m.ubj").string()), LoadOptions{});
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(rt.status().message().find("row 17 output 1"), std::string::npos) << rt.status();
  EXPECT_NE(rt.status().message().find("expected"), std::string::npos) << rt.status();

  // Checking can be switched off; an explicit reference URI takes precedence.
  LoadOptions no_check;
  no_check.verify_reference = false;
  EXPECT_TRUE(XGBoostRuntime::Load(Source((dir / "m.ubj").string()), no_check).ok());
  ModelSource explicit_ref = Source((dir / "m.ubj").string());
  explicit_ref.reference_uri = "file://" + TestData("multiclass.reference.json");
  EXPECT_TRUE(XGBoostRuntime::Load(explicit_ref, LoadOptions{}).ok());
  explicit_ref.reference_uri = (dir / "missing.json").string();
  EXPECT_EQ(XGBoostRuntime::Load(explicit_ref, LoadOptions{}).status().code(),
            StatusCode::kNotFound);

  // A reference with the wrong width, and one that is not valid.
  ref["inputs"][0].push_back(1.0);
  testing::WriteAll((dir / "m.reference.json").string(), ref.dump());
  EXPECT_EQ(XGBoostRuntime::Load(Source((dir / "m.ubj").string()), LoadOptions{}).status().code(),
            StatusCode::kInvalidArgument);
  testing::WriteAll((dir / "m.reference.json").string(), "{\"inputs\": [[1,2,3,4,5,6]]}");
  EXPECT_EQ(XGBoostRuntime::Load(Source((dir / "m.ubj").string()), LoadOptions{}).status().code(),
            StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::dataplane
