#pragma once

// The compiled evaluator for a tree ensemble: trees flattened into compact node arrays and walked
// without data-dependent branches.
//
// Two layouts. kPerfect pads every tree to a complete binary tree of the model's depth, so a node's
// children are at 2i and 2i+1 and every walk takes exactly `depth` steps: 8-byte nodes (feature,
// threshold), leaves in their own array, and several walks (trees for one row, or rows for one
// tree) advanced in lockstep so their memory latencies overlap. kSparse keeps each tree's own
// shape (12-byte nodes, siblings adjacent) for deep or lopsided trees where padding would not pay.
// kAuto picks kPerfect unless the padding would grow the model too much.
//
// Missing values cost nothing per step: a node whose missing values go right tests
// !(x < t), which NaN passes; a node whose missing values go left has its children swapped and
// tests the negated feature against the next float above -t (!(-x < nextafter(-t, inf)) is
// x < t for numbers and true for NaN). Each row is extended with its negation once per call.
// Categorical splits (and the odd numeric node with an infinite or NaN threshold and missing going
// left) take a flagged slow path; models without them never test the flag.
//
// Sums follow xgboost's order exactly: start from the base margin, add tree 0, tree 1, ... in
// float, so margins are bit-identical to xgboost's CPU predictor (dart leaves are pre-multiplied by
// their weight, which xgboost also does in float).
//
// Thread safety: immutable after Compile; PredictMargin is const and lock-free. It allocates only
// for models with more than 2048 features (the extended rows no longer fit on the stack).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lib/base/status.h"
#include "dataplane/runtime/xgboost_model.h"

namespace sluice::dataplane {

struct ForestOptions {
  enum class Layout { kAuto, kPerfect, kSparse };
  Layout layout = Layout::kAuto;
  // Evaluate only the first `num_trees` trees; 0 means all.
  size_t num_trees = 0;
};

class Forest {
 public:
  static Result<Forest> Compile(const XGBoostModel& model, const ForestOptions& options);

  // rows: n_rows × num_features() floats, row-major, NaN = missing. Writes n_rows × num_groups()
  // margins to `out`. Preconditions (checked by the caller): sizes as stated.
  void PredictMargin(const float* rows, size_t n_rows, float* out) const;

  size_t num_features() const { return num_features_; }
  size_t num_groups() const { return num_groups_; }
  size_t num_trees() const { return num_trees_; }
  int depth() const { return depth_; }
  ForestOptions::Layout layout() const { return layout_; }
  // Bytes of node, leaf and category storage.
  size_t memory_bytes() const;

  // Reads every node once (so the pages are resident and cached before the first request) and
  // returns a value that depends on all of them, so the compiler cannot drop the reads.
  uint32_t Touch() const;

 private:
  // Perfect layout node. Fast nodes: `key` indexes the extended row, `threshold` is the split
  // (go right when !(x < threshold)). Slow nodes (kSlowBit): see SlowGoesRight.
  struct PNode {
    uint32_t key;
    float threshold;
  };
  // Sparse layout node: `left` is the absolute index of the left child; the right is left + 1.
  struct SNode {
    uint32_t key;
    float value;  // as PNode::threshold, or the leaf value when kLeafBit is set
    uint32_t left;
  };
  struct CatSet {
    uint32_t offset;  // into cat_words_
    uint32_t words;
  };
  // What an internal node compiles to.
  struct Encoded {
    uint32_t key;
    float threshold;
    bool swap_children;
  };

  static constexpr uint32_t kSlowBit = 1u << 31;
  static constexpr uint32_t kCategoricalBit = 1u << 30;  // slow nodes only
  static constexpr uint32_t kDefaultLeftBit = 1u << 29;  // slow nodes only
  static constexpr uint32_t kLeafBit = 1u << 28;         // sparse layout only
  static constexpr uint32_t kIndexMask = kLeafBit - 1;

  Forest() = default;

  void CompilePerfect(const XGBoostModel& model, const std::vector<float>& weights);
  void CompileSparse(const XGBoostModel& model, const std::vector<float>& weights);
  Encoded Encode(const XGBoostTree& tree, int32_t node);
  uint32_t AddCategorySet(const XGBoostTree& tree, int32_t node);

  bool SlowGoesRight(const float* row, uint32_t key, float threshold) const;
  template <bool kSlow>
  uint32_t Right(const float* row, uint32_t key, float threshold) const;

  // Kernels over extended rows (`width` floats apart).
  void Dispatch(const float* rows, size_t width, size_t n_rows, float* out) const;
  template <bool kSlow>
  void PerfectOneRow(const float* row, float* out) const;
  template <bool kSlow>
  void PerfectRows(const float* rows, size_t width, size_t n_rows, float* out) const;
  template <bool kSlow>
  void SparseRows(const float* rows, size_t width, size_t n_rows, float* out) const;
  template <bool kSlow>
  float SparseWalk(uint32_t root, const float* row) const;

  ForestOptions::Layout layout_ = ForestOptions::Layout::kPerfect;
  size_t num_features_ = 0;
  size_t num_groups_ = 1;
  size_t num_trees_ = 0;
  int depth_ = 0;
  bool single_group_ = true;
  bool has_slow_nodes_ = false;
  // Whether any node reads a negated feature; if not, rows are used as given.
  bool uses_negated_ = false;
  std::vector<float> base_margin_;
  std::vector<uint32_t> tree_group_;
  // Trees per tile in batch prediction, so one tile of trees stays in L1 while rows pass over it.
  size_t trees_per_block_ = 1;

  // kPerfect: tree t's nodes at [t << depth_, (t + 1) << depth_), root at offset 1; its leaves at
  // the same offsets in pleaves_.
  std::vector<PNode> pnodes_;
  std::vector<float> pleaves_;
  // kSparse
  std::vector<SNode> snodes_;
  std::vector<uint32_t> sroots_;

  std::vector<CatSet> cat_sets_;
  std::vector<uint32_t> cat_words_;
};

}  // namespace sluice::dataplane
