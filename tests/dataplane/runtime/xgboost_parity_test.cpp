// Parity with libxgboost: models trained by Debian's libxgboost (1.7) through its C API, saved as
// JSON and UBJSON, loaded by the native runtime, and compared on 10,000 rows with missing values,
// thresholds hit exactly, infinities and out-of-range categories. Every output must agree within
// 1e-6 in both evaluator layouts.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tests/dataplane/runtime/libxgboost.h"
#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {
namespace {

using testing::XgbBooster;
using testing::XgbMatrix;

constexpr size_t kFeatures = 10;
constexpr size_t kTrainRows = 4000;
constexpr size_t kTestRows = 10000;
constexpr double kTolerance = 1e-6;
// Features 7 and 8 hold category codes when a model is trained with categorical features.
constexpr size_t kCatA = 7;
constexpr size_t kCatB = 8;

ModelSource Source(std::string uri) {
  ModelSource s;
  s.uri = std::move(uri);
  return s;
}

enum class Label { kRegression, kBinary, kMulticlass, kCount, kPositive, kRank };

struct Case {
  std::string name;
  std::vector<std::pair<std::string, std::string>> params;
  Label label = Label::kRegression;
  int rounds = 12;
  bool categorical = false;
  // Trees too deep for the perfect layout: kAuto must choose kSparse.
  bool deep = false;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

// Feature values: gaussian, integer-valued (so split thresholds are hit exactly), a few
// infinities, and about 10% missing.
std::vector<float> MakeRows(size_t n, uint32_t seed, bool categorical, bool hostile) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_int_distribution<int> small_int(0, 9);
  std::vector<float> x(n * kFeatures);
  for (size_t r = 0; r < n; ++r) {
    for (size_t f = 0; f < kFeatures; ++f) {
      float v;
      if (categorical && (f == kCatA || f == kCatB)) {
        v = static_cast<float>(small_int(rng) % (f == kCatA ? 6 : 10));
        if (hostile) {
          const float u = unit(rng);
          if (u < 0.02f)
            v = -1.0f;
          else if (u < 0.04f)
            v = 37.0f;  // beyond every category seen in training
          else if (u < 0.05f)
            v = 2.5f;  // truncates to 2
          else if (u < 0.06f)
            v = 16777216.0f;  // 2^24: not a valid category
          else if (u < 0.07f)
            v = 1e30f;
        }
      } else if (f % 3 == 0) {
        v = static_cast<float>(small_int(rng));
      } else {
        v = normal(rng);
      }
      if (hostile && unit(rng) < 0.005f) v = (unit(rng) < 0.5f ? 1.0f : -1.0f) * INFINITY;
      if (unit(rng) < 0.1f) v = NAN;
      x[r * kFeatures + f] = v;
    }
  }
  return x;
}

float Signal(const float* row) {
  auto v = [&](size_t f) { return std::isnan(row[f]) ? 0.0f : row[f]; };
  return 0.8f * v(0) - 0.5f * v(1) + std::sin(v(2)) + 0.3f * v(3) * (v(4) > 0.0f) +
         (v(kCatA) == 2.0f ? 1.5f : 0.0f) - (v(kCatB) == 4.0f ? 1.0f : 0.0f) + 0.2f * v(9);
}

std::vector<float> MakeLabels(const std::vector<float>& x, size_t n, Label kind) {
  std::vector<float> y(n);
  for (size_t r = 0; r < n; ++r) {
    const float s = Signal(&x[r * kFeatures]);
    switch (kind) {
      case Label::kRegression:
        y[r] = 2.0f * s + 1.0f;
        break;
      case Label::kBinary:
        y[r] = s > 0.4f ? 1.0f : 0.0f;
        break;
      case Label::kMulticlass:
        y[r] = s < -0.5f ? 0.0f : (s < 1.0f ? 1.0f : 2.0f);
        break;
      case Label::kCount:
        y[r] = std::round(std::exp(0.4f * std::clamp(s, -3.0f, 3.0f)));
        break;
      case Label::kPositive:
        y[r] = std::exp(0.3f * std::clamp(s, -3.0f, 3.0f)) + 0.05f;
        break;
      case Label::kRank:
        y[r] = static_cast<float>(std::clamp(static_cast<int>(s + 1.5f), 0, 3));
    }
  }
  return y;
}

class ParityTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-parity-" + std::to_string(::getpid()) + "-" + GetParam().name);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

void ExpectClose(const std::vector<float>& want, const std::vector<float>& got,
                 const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool both_nan = std::isnan(want[i]) && std::isnan(got[i]);
    if (!both_nan && !(std::fabs(want[i] - got[i]) <= kTolerance)) {
      if (++bad <= 5) {
        ADD_FAILURE() << what << ": output " << i << ": libxgboost " << want[i] << ", native "
                      << got[i];
      }
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": outputs outside " << kTolerance;
}

TEST_P(ParityTest, MatchesLibxgboostOnJsonAndUbjson) {
  const Case& c = GetParam();
  std::vector<float> train_x = MakeRows(kTrainRows, 1, c.categorical, /*hostile=*/false);
  std::vector<float> train_y = MakeLabels(train_x, kTrainRows, c.label);
  XgbMatrix train(train_x, kTrainRows, kFeatures);
  train.SetLabels(train_y);
  if (c.label == Label::kRank) train.SetGroups(std::vector<unsigned>(kTrainRows / 20, 20));
  if (c.categorical) {
    std::vector<std::string> types(kFeatures, "q");
    types[kCatA] = "c";
    types[kCatB] = "c";
    train.SetFeatureTypes(types);
  }
  XgbBooster booster(train);
  booster.Set("nthread", "1");
  booster.Set("seed", "7");
  for (const auto& [k, v] : c.params) booster.Set(k, v);
  booster.Train(train, c.rounds);
  const std::string json_path = (dir_ / "model.json").string();
  const std::string ubj_path = (dir_ / "model.ubj").string();
  booster.Save(json_path);
  booster.Save(ubj_path);

  std::vector<float> test_x = MakeRows(kTestRows, 2, c.categorical, /*hostile=*/true);
  const std::vector<float> want = booster.Predict(test_x, kTestRows, kFeatures);
  const std::vector<float> want_margin = booster.Predict(test_x, kTestRows, kFeatures, 1);

  if (c.deep) {
    auto rt = XGBoostRuntime::Load(Source(json_path), LoadOptions{});
    ASSERT_TRUE(rt.ok()) << rt.status();
    EXPECT_EQ((*rt)->forest().layout(), ForestOptions::Layout::kSparse);
    EXPECT_GT((*rt)->forest().depth(), 12);
    LoadOptions perfect;
    perfect.layout = ForestOptions::Layout::kPerfect;
    EXPECT_EQ(XGBoostRuntime::Load(Source(json_path), perfect).status().code(),
              StatusCode::kInvalidArgument);
  }
  std::vector<ForestOptions::Layout> layouts = {ForestOptions::Layout::kSparse};
  if (!c.deep) layouts.push_back(ForestOptions::Layout::kPerfect);
  for (const std::string& path : {json_path, ubj_path}) {
    for (auto layout : layouts) {
      const std::string what = path.substr(path.rfind('.')) +
                               (layout == ForestOptions::Layout::kPerfect ? " perfect" : " sparse");
      LoadOptions opts;
      opts.layout = layout;
      auto rt = XGBoostRuntime::Load(Source("file://" + path), opts);
      ASSERT_TRUE(rt.ok()) << what << ": " << rt.status();
      EXPECT_EQ((*rt)->forest().layout(), layout);
      ASSERT_EQ((*rt)->num_outputs() * kTestRows, want.size()) << what;
      std::vector<float> got(want.size());
      ASSERT_TRUE((*rt)->Predict(test_x, kTestRows, got).ok());
      ExpectClose(want, got, what + " batch");

      // Row at a time goes through the single-row kernel; small batches through both.
      std::vector<float> one(want.size());
      const size_t no = (*rt)->num_outputs();
      for (size_t r = 0; r < kTestRows; r += 7) {
        const size_t n = std::min<size_t>(r % 3 == 0 ? 1 : 11, kTestRows - r);
        ASSERT_TRUE(
            (*rt)
                ->Predict(std::span<const float>(test_x).subspan(r * kFeatures, n * kFeatures), n,
                          std::span<float>(one).subspan(r * no, n * no))
                .ok());
        for (size_t i = r * no; i < (r + n) * no; ++i) {
          ASSERT_NEAR(want[i], one[i], kTolerance) << what << " rows from " << r;
        }
      }

      opts.output_margin = true;
      auto margin_rt = XGBoostRuntime::Load(Source("file://" + path), opts);
      ASSERT_TRUE(margin_rt.ok()) << margin_rt.status();
      std::vector<float> margin(want_margin.size());
      ASSERT_TRUE((*margin_rt)->Predict(test_x, kTestRows, margin).ok());
      ExpectClose(want_margin, margin, what + " margin");
    }
  }
}

std::vector<Case> Cases() {
  using P = std::vector<std::pair<std::string, std::string>>;
  const P depth6 = {{"max_depth", "6"}, {"eta", "0.3"}};
  std::vector<Case> cases = {
      {"squarederror", {{"objective", "reg:squarederror"}, {"max_depth", "6"}}, Label::kRegression},
      {"squarederror_exact",
       {{"objective", "reg:squarederror"}, {"tree_method", "exact"}},
       Label::kRegression},
      {"logistic_binary", {{"objective", "binary:logistic"}, {"max_depth", "5"}}, Label::kBinary},
      {"logistic_reg", {{"objective", "reg:logistic"}}, Label::kBinary},
      {"logitraw", {{"objective", "binary:logitraw"}}, Label::kBinary},
      {"hinge", {{"objective", "binary:hinge"}}, Label::kBinary},
      {"softprob", {{"objective", "multi:softprob"}, {"num_class", "3"}}, Label::kMulticlass},
      {"softmax", {{"objective", "multi:softmax"}, {"num_class", "3"}}, Label::kMulticlass},
      {"poisson", {{"objective", "count:poisson"}}, Label::kCount},
      {"gamma", {{"objective", "reg:gamma"}}, Label::kPositive},
      {"tweedie", {{"objective", "reg:tweedie"}}, Label::kPositive},
      {"absoluteerror", {{"objective", "reg:absoluteerror"}}, Label::kRegression},
      {"pseudohuber", {{"objective", "reg:pseudohubererror"}}, Label::kRegression},
      {"rank_pairwise", {{"objective", "rank:pairwise"}}, Label::kRank},
      {"dart",
       {{"objective", "binary:logistic"},
        {"booster", "dart"},
        {"rate_drop", "0.2"},
        {"skip_drop", "0.3"}},
       Label::kBinary},
      {"dart_softprob",
       {{"objective", "multi:softprob"},
        {"num_class", "3"},
        {"booster", "dart"},
        {"rate_drop", "0.3"}},
       Label::kMulticlass},
      {"random_forest",
       {{"objective", "binary:logistic"},
        {"num_parallel_tree", "4"},
        {"subsample", "0.7"},
        {"colsample_bynode", "0.6"},
        {"eta", "1"}},
       Label::kBinary,
       3},
      {"deep_lossguide",
       {{"objective", "reg:squarederror"},
        {"tree_method", "hist"},
        {"grow_policy", "lossguide"},
        {"max_depth", "0"},
        {"max_leaves", "255"},
        {"min_child_weight", "0"}},
       Label::kRegression,
       3,
       false,
       true},
      {"categorical_partition",
       {{"objective", "binary:logistic"},
        {"tree_method", "hist"},
        {"max_cat_to_onehot", "1"},
        {"max_depth", "5"}},
       Label::kBinary,
       12,
       true},
      {"categorical_onehot",
       {{"objective", "reg:squarederror"}, {"tree_method", "hist"}, {"max_cat_to_onehot", "64"}},
       Label::kRegression,
       12,
       true},
      {"categorical_softprob",
       {{"objective", "multi:softprob"},
        {"num_class", "3"},
        {"tree_method", "approx"},
        {"max_cat_to_onehot", "1"}},
       Label::kMulticlass,
       8,
       true},
  };
  for (Case& c : cases) {
    if (c.params.size() == 1) c.params.insert(c.params.end(), depth6.begin(), depth6.end());
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Objectives, ParityTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

// best_iteration is ignored unless asked for; when asked, the model is cut after that round.
TEST(ParityBestIteration, CutsAtBestIterationOnlyWhenAsked) {
  std::vector<float> x = MakeRows(kTrainRows, 3, false, false);
  XgbMatrix train(x, kTrainRows, kFeatures);
  train.SetLabels(MakeLabels(x, kTrainRows, Label::kMulticlass));
  XgbBooster booster(train);
  booster.Set("nthread", "1");
  booster.Set("objective", "multi:softprob");
  booster.Set("num_class", "3");
  booster.Set("max_depth", "4");
  booster.Train(train, 10);
  booster.SetAttr("best_iteration", "3");
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sluice-best-" + std::to_string(::getpid()) + ".json"))
                               .string();
  booster.Save(path);
  const std::vector<float> all = booster.Predict(x, 500, kFeatures);
  const std::vector<float> cut = booster.Predict(x, 500, kFeatures, 0, /*iteration_end=*/4);
  std::vector<float> x500(x.begin(), x.begin() + 500 * kFeatures);

  for (bool use_best : {false, true}) {
    LoadOptions opts;
    opts.use_best_iteration = use_best;
    auto rt = XGBoostRuntime::Load(Source(path), opts);
    ASSERT_TRUE(rt.ok()) << rt.status();
    EXPECT_EQ((*rt)->forest().num_trees(), use_best ? 12u : 30u);
    std::vector<float> got(all.size());
    ASSERT_TRUE((*rt)->Predict(x500, 500, got).ok());
    ExpectClose(use_best ? cut : all, got, use_best ? "best_iteration" : "all trees");
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sluice::dataplane
