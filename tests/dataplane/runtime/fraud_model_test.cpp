// The committed fraud model (bench/fraud/model/, trained by xgboost 3.2 from PyPI): it loads from
// both formats, reproduces the trainer's reference predictions, and agrees with Debian's
// libxgboost 1.7 on many more rows.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "tests/dataplane/runtime/libxgboost.h"
#include "tests/dataplane/runtime/test_util.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {
namespace {

using nlohmann::json;
using testing::ReadAll;
using testing::RepoPath;
using testing::Source;

const std::string kModelDir = "bench/fraud/model/";

std::unique_ptr<XGBoostRuntime> LoadFraud(const std::string& file, LoadOptions opts = {}) {
  auto rt = XGBoostRuntime::Load(Source("file://" + RepoPath(kModelDir + file)), opts);
  EXPECT_TRUE(rt.ok()) << file << ": " << rt.status();
  return rt.ok() ? std::move(*rt) : nullptr;
}

TEST(FraudModel, LoadsFromJsonAndUbjsonAndPassesItsReference) {
  for (const char* file : {"fraud.json", "fraud.ubj"}) {
    auto rt = LoadFraud(file);
    ASSERT_NE(rt, nullptr);
    ASSERT_NE(rt->reference(), nullptr) << file;
    EXPECT_EQ(rt->reference()->num_rows, 300u);
    EXPECT_EQ(rt->num_features(), 12u);
    EXPECT_EQ(rt->num_outputs(), 1u);
    EXPECT_EQ(rt->objective(), "binary:logistic");
    EXPECT_EQ(rt->forest().num_trees(), 150u);
    EXPECT_EQ(rt->metadata().name, "fraud");
    EXPECT_TRUE(rt->WarmUp().ok());
  }
}

TEST(FraudModel, FeatureNamesMatchTheDocumentedOrder) {
  auto rt = LoadFraud("fraud.json");
  ASSERT_NE(rt, nullptr);
  json features = json::parse(ReadAll(RepoPath(kModelDir + "features.json")));
  ASSERT_EQ(features.size(), rt->feature_names().size());
  for (size_t i = 0; i < features.size(); ++i) {
    EXPECT_EQ(features[i]["name"], rt->feature_names()[i]);
  }
  EXPECT_EQ(rt->feature_names()[0], "amount");
}

TEST(FraudModel, JsonAndUbjsonGiveBitIdenticalOutputs) {
  auto a = LoadFraud("fraud.json");
  auto b = LoadFraud("fraud.ubj");
  ASSERT_TRUE(a && b);
  const ReferenceSet& ref = *a->reference();
  std::vector<float> pa(ref.num_rows), pb(ref.num_rows);
  ASSERT_TRUE(a->Predict(ref.inputs, ref.num_rows, pa).ok());
  ASSERT_TRUE(b->Predict(ref.inputs, ref.num_rows, pb).ok());
  EXPECT_EQ(pa, pb);
}

TEST(FraudModel, SampleRequestPredicts) {
  auto rt = LoadFraud("fraud.json");
  ASSERT_NE(rt, nullptr);
  json req = json::parse(ReadAll(RepoPath(kModelDir + "sample_request.json")));
  const json& input = req["inputs"][0];
  EXPECT_EQ(input["name"], "input-0");
  EXPECT_EQ(input["datatype"], "FP32");
  const size_t n = input["shape"][0].get<size_t>();
  ASSERT_EQ(input["shape"][1].get<size_t>(), rt->num_features());
  std::vector<float> rows = input["data"].get<std::vector<float>>();
  std::vector<float> out(n);
  ASSERT_TRUE(rt->Predict(rows, n, out).ok());
  for (float p : out) {
    EXPECT_GT(p, 0.0f);
    EXPECT_LT(p, 1.0f);
  }
}

// Debian's libxgboost 1.7 reads the 3.1+ "[x]" base_score form wrongly (silently), so it gets the
// model with the scalar form, which is what 1.7 itself writes; trees are unchanged.
TEST(FraudModel, AgreesWithLibxgboostOnTenThousandRows) {
  std::string text = ReadAll(RepoPath(kModelDir + "fraud.json"));
  text = std::regex_replace(text, std::regex(R"("base_score":"\[([^\]]*)\]")"),
                            R"("base_score":"$1")");
  const std::string path = "/tmp/sluice-fraud17-" + std::to_string(::getpid()) + ".json";
  testing::WriteAll(path, text);
  testing::XgbBooster booster;
  booster.Load(path);
  std::remove(path.c_str());

  auto rt = LoadFraud("fraud.json");
  ASSERT_NE(rt, nullptr);
  const ReferenceSet& ref = *rt->reference();
  // Reference rows with noise and extra missing values.
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const size_t n = 10000, nf = rt->num_features();
  std::vector<float> rows(n * nf);
  for (size_t r = 0; r < n; ++r) {
    const float* src = &ref.inputs[(r % ref.num_rows) * nf];
    for (size_t f = 0; f < nf; ++f) {
      float v = src[f];
      if (r >= ref.num_rows && !std::isnan(v)) v *= 1.0f + noise(rng);
      if (unit(rng) < 0.03f) v = NAN;
      rows[r * nf + f] = v;
    }
  }
  const std::vector<float> want = booster.Predict(rows, n, nf);
  std::vector<float> got(n);
  ASSERT_TRUE(rt->Predict(rows, n, got).ok());
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!(std::fabs(want[i] - got[i]) <= 1e-6) && ++bad <= 5) {
      ADD_FAILURE() << "row " << i << ": libxgboost " << want[i] << ", native " << got[i];
    }
  }
  EXPECT_EQ(bad, 0u);
}

TEST(FraudModel, LoadModelWithChecksum) {
  const std::string path = RepoPath(kModelDir + "fraud.ubj");
  ModelSource src = Source("file://" + path);
  src.format = "xgboost-ubj";
  src.sha256 = "sha256:" + Sha256Hex(ReadAll(path));
  auto rt = LoadModel(src, LoadOptions{});
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ((*rt)->metadata().inputs[0].shape, (std::vector<int64_t>{-1, 12}));
}

}  // namespace
}  // namespace sluice::dataplane
