// ns per row: the native evaluator against libxgboost's XGBoosterPredictFromDense (Debian 1.7,
// nthread=1, the same single core), single rows and batches of 32, on the fraud model.
//
// Before timing, both predict the same 4,096 rows and the run stops unless every output agrees
// within 1e-6, so the figures compare identical work.
//
// Model directory: $SLUICE_FRAUD_MODEL_DIR, else the committed bench/fraud/model.

#include <benchmark/benchmark.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {
namespace {

constexpr size_t kPoolRows = 4096;
constexpr size_t kBatch = 32;

std::string ModelDir() {
  const char* env = std::getenv("SLUICE_FRAUD_MODEL_DIR");
  return env != nullptr ? env : SLUICE_FRAUD_MODEL_DIR;
}

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "sluice-bench-evaluator: %s\n", msg.c_str());
  std::exit(1);
}

class Fixture {
 public:
  static Fixture& Get() {
    static Fixture f;
    return f;
  }

  const XGBoostRuntime& native() const { return *native_; }
  BoosterHandle booster() const { return booster_; }
  size_t features() const { return nf_; }
  // Row i of the pool, cycling.
  const float* Row(size_t i) const { return &pool_[(i % kPoolRows) * nf_]; }
  std::vector<float> out;

  // One XGBoosterPredictFromDense call over `n` rows starting at `rows`.
  const float* XgbPredict(const float* rows, size_t n) const {
    char values[256];
    std::snprintf(values, sizeof(values),
                  R"({"data": [%zu, true], "shape": [%zu, %zu], "typestr": "<f4", "version": 3})",
                  reinterpret_cast<size_t>(rows), n, nf_);
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(booster_, values, kConfig, nullptr, &shape, &dim, &result) != 0) {
      Die(std::string("XGBoosterPredictFromDense: ") + XGBGetLastError());
    }
    return result;
  }

 private:
  static constexpr const char* kConfig =
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0,)"
      R"( "strict_shape": false, "cache_id": 0, "missing": NaN})";

  Fixture() {
    const std::string dir = ModelDir();
    LoadOptions opts;
    auto rt = XGBoostRuntime::Load(
        dataplane::ModelSource{"file://" + dir + "/fraud.ubj", "", "", ""}, opts);
    if (!rt.ok()) Die(rt.status().ToString());
    native_ = std::move(*rt);
    if (!native_->WarmUp().ok()) Die("warm-up failed");
    nf_ = native_->num_features();

    // libxgboost 1.7 misreads the 3.1+ "[x]" base_score form, so it gets the scalar form it
    // writes itself; the trees are the same bytes.
    std::ifstream in(dir + "/fraud.json");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = std::regex_replace(
        ss.str(), std::regex(R"("base_score":"\[([^\]]*)\]")"), R"("base_score":"$1")");
    if (XGBoosterCreate(nullptr, 0, &booster_) != 0 ||
        XGBoosterLoadModelFromBuffer(booster_, text.data(), text.size()) != 0 ||
        XGBoosterSetParam(booster_, "nthread", "1") != 0) {
      Die(std::string("libxgboost: ") + XGBGetLastError());
    }

    // Rows: the reference inputs, then perturbed copies with extra missing values.
    const ReferenceSet& ref = *native_->reference();
    std::mt19937 rng(1);
    std::normal_distribution<float> noise(0.0f, 0.25f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    pool_.resize(kPoolRows * nf_);
    for (size_t r = 0; r < kPoolRows; ++r) {
      for (size_t f = 0; f < nf_; ++f) {
        float v = ref.inputs[(r % ref.num_rows) * nf_ + f];
        if (r >= ref.num_rows && !std::isnan(v)) v *= 1.0f + noise(rng);
        if (unit(rng) < 0.02f) v = NAN;
        pool_[r * nf_ + f] = v;
      }
    }
    out.resize(kBatch);
    CheckIdentical();
  }

  void CheckIdentical() {
    std::vector<float> mine(kPoolRows);
    if (!native_->Predict(pool_, kPoolRows, mine).ok()) Die("native predict failed");
    const float* theirs = XgbPredict(pool_.data(), kPoolRows);
    double max_diff = 0.0;
    for (size_t i = 0; i < kPoolRows; ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(mine[i] - theirs[i])));
    }
    if (!(max_diff <= 1e-6)) Die("outputs differ from libxgboost by " + std::to_string(max_diff));
    std::fprintf(
        stderr,
        "fraud model: %zu trees, depth %d, %zu features, %s layout, %zu KiB of nodes; "
        "max |native - libxgboost| over %zu rows = %.3g\n",
        native_->forest().num_trees(), native_->forest().depth(), nf_,
        native_->forest().layout() == ForestOptions::Layout::kPerfect ? "perfect" : "sparse",
        native_->forest().memory_bytes() / 1024, kPoolRows, max_diff);
  }

  std::unique_ptr<XGBoostRuntime> native_;
  BoosterHandle booster_ = nullptr;
  size_t nf_ = 0;
  std::vector<float> pool_;
};

void RowsCounter(benchmark::State& state, size_t rows_per_iter) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows_per_iter));
  // A rate of (rows × 1e-9) per second, inverted: nanoseconds per row.
  state.counters["ns_per_row"] =
      benchmark::Counter(static_cast<double>(state.iterations() * rows_per_iter) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_NativeSingleRow(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  const size_t nf = f.features();
  size_t i = 0;
  for (auto _ : state) {
    Status s = f.native().Predict(std::span<const float>(f.Row(i++), nf), 1,
                                  std::span<float>(f.out).first(1));
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(f.out.data());
  }
  RowsCounter(state, 1);
}

void BM_NativeBatch32(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  const size_t nf = f.features();
  size_t i = 0;
  for (auto _ : state) {
    Status s = f.native().Predict(std::span<const float>(f.Row(i), kBatch * nf), kBatch, f.out);
    i = (i + kBatch) % (kPoolRows - kBatch);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(f.out.data());
  }
  RowsCounter(state, kBatch);
}

void BM_LibxgboostSingleRow(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(f.XgbPredict(f.Row(i++), 1));
  RowsCounter(state, 1);
}

void BM_LibxgboostBatch32(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.XgbPredict(f.Row(i), kBatch));
    i = (i + kBatch) % (kPoolRows - kBatch);
  }
  RowsCounter(state, kBatch);
}

BENCHMARK(BM_NativeSingleRow);
BENCHMARK(BM_LibxgboostSingleRow);
BENCHMARK(BM_NativeBatch32);
BENCHMARK(BM_LibxgboostBatch32);

}  // namespace
}  // namespace sluice::dataplane

BENCHMARK_MAIN();
