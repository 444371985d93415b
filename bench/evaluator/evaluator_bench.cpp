// ns per row on the fraud model, one process, one core: sluice's evaluator, the same trees
// compiled to C by tl2cgen (treelite's code generator, `gcc -O3 -march=native`, called through
// the `predict` entry point it generates), and libxgboost's XGBoosterPredictFromDense (Debian
// 1.7, nthread=1). Batches of 1, 8, 64 and 1,024 rows from one pool of 4,096 rows: the model's
// reference rows, then perturbed copies with extra missing values.
//
// Before timing, every evaluator predicts the whole pool and the run stops unless each output
// (probabilities) agrees with sluice's within 1e-6; the largest difference is printed. tl2cgen
// adds base_score after the trees rather than before, so its sums may differ in the last bits.
//
// tl2cgen's rows are converted to its `union Entry` form (NaN = missing) once, before timing.
// Each predict call gets a copy of its row (12 entries; code generated with quantize=1 rewrites
// its input in place) and a zeroed output, as tl2cgen's own runtime gives it.
//
// Two builds of tl2cgen's code: its defaults (BM_Tl2cgen) and quantize=1 (BM_Tl2cgenQuantized:
// thresholds become integer bin indices, the row is binned once per call).
//
// Environment: $SLUICE_FRAUD_MODEL_DIR (default the committed bench/fraud/model);
// $SLUICE_TL2CGEN_LIB and $SLUICE_TL2CGEN_QUANTIZED_LIB, the shared objects built from tl2cgen's
// C for this model (bench/evaluator.sh builds them); a benchmark whose library is not given is
// skipped.

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
constexpr size_t kMaxBatch = 1024;
constexpr double kTolerance = 1e-6;

// tl2cgen's generated header, as it writes it.
union Tl2cgenEntry {
  int missing;  // -1 when the feature is missing
  float fvalue;
  int qvalue;
};
using Tl2cgenPredict = void (*)(Tl2cgenEntry* data, int pred_margin, float* result);
using Tl2cgenNumFeature = int32_t (*)();

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

  const XGBoostRuntime& sluice() const { return *sluice_; }
  size_t features() const { return nf_; }
  enum Tl2cgenBuild { kDefault = 0, kQuantized = 1 };
  bool has_tl2cgen(Tl2cgenBuild b) const { return tl_predict_[b] != nullptr; }
  // Start of the next batch of `n` rows in the pool, cycling.
  size_t Next(size_t& cursor, size_t n) const {
    if (cursor + n > kPoolRows) cursor = 0;
    const size_t at = cursor;
    cursor += n;
    return at;
  }
  const float* Row(size_t i) const { return &pool_[i * nf_]; }
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

  // tl2cgen's predict over `n` rows starting at pool row `first`.
  void Tl2cgen(Tl2cgenBuild b, size_t first, size_t n, float* result) {
    const Tl2cgenPredict predict = tl_predict_[b];
    const Tl2cgenEntry* row = &entries_[first * nf_];
    Tl2cgenEntry* scratch = scratch_.data();
    for (size_t r = 0; r < n; ++r, row += nf_) {
      std::memcpy(scratch, row, nf_ * sizeof(Tl2cgenEntry));
      result[r] = 0.0f;
      predict(scratch, 0, &result[r]);
    }
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
    sluice_ = std::move(*rt);
    if (!sluice_->WarmUp().ok()) Die("warm-up failed");
    nf_ = sluice_->num_features();

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

    const ReferenceSet& ref = *sluice_->reference();
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
    entries_.resize(pool_.size());
    for (size_t i = 0; i < pool_.size(); ++i) {
      if (std::isnan(pool_[i])) {
        entries_[i].missing = -1;
      } else {
        entries_[i].fvalue = pool_[i];
      }
    }
    scratch_.resize(nf_);
    LoadTl2cgen(kDefault, "SLUICE_TL2CGEN_LIB");
    LoadTl2cgen(kQuantized, "SLUICE_TL2CGEN_QUANTIZED_LIB");
    out.resize(kMaxBatch);
    CheckIdentical();
  }

  void LoadTl2cgen(Tl2cgenBuild b, const char* env) {
    const char* path = std::getenv(env);
    if (path == nullptr || *path == '\0') return;
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) Die(std::string("dlopen: ") + dlerror());
    tl_predict_[b] = reinterpret_cast<Tl2cgenPredict>(dlsym(lib, "predict"));
    auto num_feature = reinterpret_cast<Tl2cgenNumFeature>(dlsym(lib, "get_num_feature"));
    if (tl_predict_[b] == nullptr || num_feature == nullptr) {
      Die(std::string(path) + " has no tl2cgen predict/get_num_feature");
    }
    if (static_cast<size_t>(num_feature()) != nf_) {
      Die(std::string(path) + " was generated for " + std::to_string(num_feature()) +
          " features, the model has " + std::to_string(nf_));
    }
  }

  void CheckIdentical() {
    std::vector<float> mine(kPoolRows);
    if (!sluice_->Predict(pool_, kPoolRows, mine).ok()) Die("sluice predict failed");
    auto compare = [&](const char* who, const float* theirs) {
      double max_diff = 0.0;
      size_t same_bits = 0;
      for (size_t i = 0; i < kPoolRows; ++i) {
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(mine[i] - theirs[i])));
        same_bits += mine[i] == theirs[i] ? 1 : 0;
      }
      if (!(max_diff <= kTolerance)) {
        Die(std::string("outputs differ from ") + who + " by " + std::to_string(max_diff));
      }
      std::fprintf(stderr, "max |sluice - %s| over %zu rows = %.3g (%zu identical floats)\n", who,
                   kPoolRows, max_diff, same_bits);
    };
    compare("libxgboost", XgbPredict(pool_.data(), kPoolRows));
    for (Tl2cgenBuild b : {kDefault, kQuantized}) {
      if (!has_tl2cgen(b)) continue;
      std::vector<float> theirs(kPoolRows);
      Tl2cgen(b, 0, kPoolRows, theirs.data());
      compare(b == kDefault ? "tl2cgen" : "tl2cgen quantized", theirs.data());
    }
    std::fprintf(
        stderr, "fraud model: %zu trees, depth %d, %zu features, %s layout, %zu KiB of nodes\n",
        sluice_->forest().num_trees(), sluice_->forest().depth(), nf_,
        sluice_->forest().layout() == ForestOptions::Layout::kPerfect ? "perfect" : "sparse",
        sluice_->forest().memory_bytes() / 1024);
  }

  std::unique_ptr<XGBoostRuntime> sluice_;
  BoosterHandle booster_ = nullptr;
  size_t nf_ = 0;
  std::vector<float> pool_;
  std::vector<Tl2cgenEntry> entries_;
  std::vector<Tl2cgenEntry> scratch_;
  Tl2cgenPredict tl_predict_[2] = {nullptr, nullptr};
};

void RowsCounter(benchmark::State& state, size_t rows_per_iter) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows_per_iter));
  // A rate of (rows × 1e-9) per second, inverted: nanoseconds per row.
  state.counters["ns_per_row"] =
      benchmark::Counter(static_cast<double>(state.iterations() * rows_per_iter) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Sluice(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  const auto n = static_cast<size_t>(state.range(0));
  const size_t nf = f.features();
  size_t cursor = 0;
  for (auto _ : state) {
    const size_t at = f.Next(cursor, n);
    Status s = f.sluice().Predict(std::span<const float>(f.Row(at), n * nf), n,
                                  std::span<float>(f.out).first(n));
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(f.out.data());
  }
  RowsCounter(state, n);
}

void Tl2cgenBenchmark(benchmark::State& state, Fixture::Tl2cgenBuild b) {
  Fixture& f = Fixture::Get();
  if (!f.has_tl2cgen(b)) {
    state.SkipWithError("no shared object for this tl2cgen build (bench/evaluator.sh)");
    return;
  }
  const auto n = static_cast<size_t>(state.range(0));
  size_t cursor = 0;
  for (auto _ : state) {
    f.Tl2cgen(b, f.Next(cursor, n), n, f.out.data());
    benchmark::DoNotOptimize(f.out.data());
  }
  RowsCounter(state, n);
}

void BM_Tl2cgen(benchmark::State& state) {
  Tl2cgenBenchmark(state, Fixture::kDefault);
}
void BM_Tl2cgenQuantized(benchmark::State& state) {
  Tl2cgenBenchmark(state, Fixture::kQuantized);
}

void BM_Libxgboost(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  const auto n = static_cast<size_t>(state.range(0));
  size_t cursor = 0;
  for (auto _ : state) benchmark::DoNotOptimize(f.XgbPredict(f.Row(f.Next(cursor, n)), n));
  RowsCounter(state, n);
}

BENCHMARK(BM_Sluice)->Arg(1)->Arg(8)->Arg(64)->Arg(1024);
BENCHMARK(BM_Tl2cgen)->Arg(1)->Arg(8)->Arg(64)->Arg(1024);
BENCHMARK(BM_Tl2cgenQuantized)->Arg(1)->Arg(8)->Arg(64)->Arg(1024);
BENCHMARK(BM_Libxgboost)->Arg(1)->Arg(8)->Arg(64)->Arg(1024);

}  // namespace
}  // namespace sluice::dataplane

BENCHMARK_MAIN();
