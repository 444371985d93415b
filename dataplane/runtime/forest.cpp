#include "runtime/forest.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

namespace sluice::dataplane {
namespace {

// Walks advanced together. Eight independent chains of dependent loads are enough to keep two
// load ports busy on current x86 cores without spilling the indices out of registers.
constexpr int kLanes = 8;
// Node bytes per tile of trees in batch prediction: about half of a 32 KiB L1 data cache.
constexpr size_t kTreeBlockBytes = 16 * 1024;
// Padding every tree to the deepest one must not grow the node storage by more than this.
constexpr size_t kMaxPaddingFactor = 4;
constexpr int kMaxPerfectDepth = 12;

}  // namespace

Result<Forest> Forest::Compile(const XGBoostModel& model, const ForestOptions& options) {
  Forest f;
  f.num_features_ = model.num_feature;
  f.num_groups_ = model.num_groups;
  f.single_group_ = model.num_groups == 1;
  f.base_margin_ = model.base_margin;
  if (f.base_margin_.size() != f.num_groups_) {
    return InvalidArgument("forest: base margin size does not match the output groups");
  }
  if (model.num_feature > kFeatureMask) {
    return InvalidArgument("forest: too many features");
  }
  f.num_trees_ = model.trees.size();
  if (options.num_trees != 0) {
    if (options.num_trees > model.trees.size()) {
      return InvalidArgument("forest: asked for " + std::to_string(options.num_trees) +
                             " trees, the model has " + std::to_string(model.trees.size()));
    }
    f.num_trees_ = options.num_trees;
  }
  if (model.tree_group.size() < f.num_trees_) {
    return InvalidArgument("forest: tree_info is shorter than the tree list");
  }
  f.tree_group_.assign(model.tree_group.begin(), model.tree_group.begin() + f.num_trees_);
  for (uint32_t g : f.tree_group_) {
    if (g >= f.num_groups_) return InvalidArgument("forest: tree group out of range");
  }
  std::vector<float> weights(f.num_trees_, 1.0f);
  if (!model.tree_weight.empty()) {
    if (model.tree_weight.size() < f.num_trees_) {
      return InvalidArgument("forest: fewer tree weights than trees");
    }
    std::copy_n(model.tree_weight.begin(), f.num_trees_, weights.begin());
  }

  size_t real_nodes = 0;
  for (size_t t = 0; t < f.num_trees_; ++t) {
    const XGBoostTree& tree = model.trees[t];
    f.depth_ = std::max(f.depth_, tree.max_depth);
    f.has_categorical_ |= tree.has_categorical;
    real_nodes += static_cast<size_t>(tree.num_nodes());
  }

  ForestOptions::Layout layout = options.layout;
  if (layout == ForestOptions::Layout::kAuto) {
    const bool shallow = f.depth_ <= kMaxPerfectDepth;
    const size_t padded = f.num_trees_ << std::min(f.depth_, kMaxPerfectDepth);
    layout = shallow && padded <= kMaxPaddingFactor * real_nodes + 1024
                 ? ForestOptions::Layout::kPerfect
                 : ForestOptions::Layout::kSparse;
  }
  if (layout == ForestOptions::Layout::kPerfect && f.depth_ > kMaxPerfectDepth) {
    return InvalidArgument("forest: trees " + std::to_string(f.depth_) +
                           " levels deep are too deep for the perfect layout");
  }
  f.layout_ = layout;
  if (layout == ForestOptions::Layout::kPerfect) {
    f.CompilePerfect(model, weights);
  } else {
    f.CompileSparse(model, weights);
  }
  return f;
}

uint32_t Forest::AddCategorySet(const XGBoostTree& tree, int32_t node) {
  const uint32_t begin = tree.cat_begin[node];
  const uint32_t size = tree.cat_size[node];
  uint32_t max_cat = 0;
  for (uint32_t i = 0; i < size; ++i) max_cat = std::max(max_cat, tree.categories[begin + i]);
  const uint32_t words = size == 0 ? 0 : max_cat / 32 + 1;
  CatSet set{static_cast<uint32_t>(cat_words_.size()), words};
  cat_words_.resize(cat_words_.size() + words, 0);
  for (uint32_t i = 0; i < size; ++i) {
    const uint32_t c = tree.categories[begin + i];
    cat_words_[set.offset + c / 32] |= 1u << (c % 32);
  }
  cat_sets_.push_back(set);
  return static_cast<uint32_t>(cat_sets_.size() - 1);
}

void Forest::CompilePerfect(const XGBoostModel& model, const std::vector<float>& weights) {
  const size_t stride = size_t{1} << depth_;
  pnodes_.assign(num_trees_ * stride, PNode{0, 0.0f});
  pleaves_.assign(num_trees_ * stride, 0.0f);
  struct Item {
    int32_t node;
    uint32_t heap;  // 1-based position in the complete tree
    int level;
  };
  std::vector<Item> queue;
  for (size_t t = 0; t < num_trees_; ++t) {
    const XGBoostTree& tree = model.trees[t];
    PNode* nodes = pnodes_.data() + t * stride;
    float* leaves = pleaves_.data() + t * stride;
    queue.assign(1, Item{0, 1, 0});
    while (!queue.empty()) {
      Item it = queue.back();
      queue.pop_back();
      const bool leaf = tree.left[it.node] < 0;
      if (it.level == depth_) {
        // Compile chose depth_ as the deepest leaf, so only leaves arrive here.
        leaves[it.heap - stride] = tree.value[it.node] * weights[t];
        continue;
      }
      if (leaf) {
        // Padding above a shallow leaf: both ways lead to copies of the same leaf.
        nodes[it.heap] = PNode{0, 0.0f};
        queue.push_back(Item{it.node, 2 * it.heap, it.level + 1});
        queue.push_back(Item{it.node, 2 * it.heap + 1, it.level + 1});
        continue;
      }
      uint32_t key = tree.feature[it.node];
      if (tree.default_left[it.node]) key |= kDefaultLeftBit;
      float threshold = tree.value[it.node];
      if (tree.categorical[it.node]) {
        key |= kCategoricalBit;
        threshold = std::bit_cast<float>(AddCategorySet(tree, it.node));
      }
      nodes[it.heap] = PNode{key, threshold};
      queue.push_back(Item{tree.left[it.node], 2 * it.heap, it.level + 1});
      queue.push_back(Item{tree.right[it.node], 2 * it.heap + 1, it.level + 1});
    }
  }
  const size_t tree_bytes = stride * (sizeof(PNode) + sizeof(float));
  trees_per_block_ = std::max<size_t>(1, kTreeBlockBytes / tree_bytes);
}

void Forest::CompileSparse(const XGBoostModel& model, const std::vector<float>& weights) {
  sroots_.resize(num_trees_);
  std::vector<std::pair<int32_t, uint32_t>> queue;  // (node id, slot)
  for (size_t t = 0; t < num_trees_; ++t) {
    const XGBoostTree& tree = model.trees[t];
    const auto root = static_cast<uint32_t>(snodes_.size());
    sroots_[t] = root;
    snodes_.push_back(SNode{kLeafBit, 0.0f, 0});
    // Breadth first, so siblings are adjacent and the top levels share cache lines.
    queue.assign(1, {0, root});
    for (size_t q = 0; q < queue.size(); ++q) {
      auto [node, slot] = queue[q];
      if (tree.left[node] < 0) {
        snodes_[slot] = SNode{kLeafBit, tree.value[node] * weights[t], 0};
        continue;
      }
      const auto child = static_cast<uint32_t>(snodes_.size());
      snodes_.push_back(SNode{kLeafBit, 0.0f, 0});
      snodes_.push_back(SNode{kLeafBit, 0.0f, 0});
      uint32_t key = tree.feature[node];
      if (tree.default_left[node]) key |= kDefaultLeftBit;
      float threshold = tree.value[node];
      if (tree.categorical[node]) {
        key |= kCategoricalBit;
        threshold = std::bit_cast<float>(AddCategorySet(tree, node));
      }
      snodes_[slot] = SNode{key, threshold, child};
      queue.emplace_back(tree.left[node], child);
      queue.emplace_back(tree.right[node], child + 1);
    }
  }
  const size_t avg_bytes = num_trees_ == 0 ? 1 : snodes_.size() * sizeof(SNode) / num_trees_;
  trees_per_block_ = std::max<size_t>(1, kTreeBlockBytes / std::max<size_t>(1, avg_bytes));
}

size_t Forest::memory_bytes() const {
  return pnodes_.size() * sizeof(PNode) + pleaves_.size() * sizeof(float) +
         snodes_.size() * sizeof(SNode) + sroots_.size() * sizeof(uint32_t) +
         cat_sets_.size() * sizeof(CatSet) + cat_words_.size() * sizeof(uint32_t);
}

uint32_t Forest::Touch() const {
  uint32_t h = 0;
  for (const PNode& n : pnodes_) h ^= n.key ^ std::bit_cast<uint32_t>(n.threshold);
  for (float v : pleaves_) h ^= std::bit_cast<uint32_t>(v);
  for (const SNode& n : snodes_) h ^= n.key ^ n.left ^ std::bit_cast<uint32_t>(n.value);
  for (uint32_t w : cat_words_) h ^= w;
  return h;
}

// xgboost's rule for a categorical split: a missing value follows the default; a value that is
// negative or not below 2^24 is not a category and goes left; otherwise the integer part goes
// right exactly when it is in the node's set.
inline bool Forest::CategoryGoesRight(float x, uint32_t key, uint32_t set_index) const {
  if (x != x) return (key & kDefaultLeftBit) == 0;
  if (!(x >= 0.0f && x < 16777216.0f)) return false;
  const auto c = static_cast<uint32_t>(x);
  const CatSet& set = cat_sets_[set_index];
  const uint32_t word = c >> 5;
  if (word >= set.words) return false;
  return ((cat_words_[set.offset + word] >> (c & 31)) & 1u) != 0;
}

// One step down a complete tree: child 2i goes left, 2i+1 right. x < threshold goes left, so
// x >= threshold goes right; NaN fails both comparisons and goes right only when the node's
// default is right. No branch depends on the data.
template <bool kCat>
inline uint32_t Forest::PerfectStep(PNode n, const float* row, uint32_t idx) const {
  const float x = row[n.key & kFeatureMask];
  uint32_t right;
  if (kCat && (n.key & kCategoricalBit) != 0) {
    right = CategoryGoesRight(x, n.key, std::bit_cast<uint32_t>(n.threshold));
  } else {
    right = static_cast<uint32_t>(x >= n.threshold) |
            (static_cast<uint32_t>(x != x) & ((~n.key) >> 31));
  }
  return 2 * idx + right;
}

template <bool kCat>
void Forest::PerfectOneRow(const float* row, float* out) const {
  const size_t stride = size_t{1} << depth_;
  const int depth = depth_;
  for (size_t g = 0; g < num_groups_; ++g) out[g] = base_margin_[g];
  float acc = out[0];
  size_t t = 0;
  for (; t + kLanes <= num_trees_; t += kLanes) {
    const PNode* base = pnodes_.data() + t * stride;
    uint32_t idx[kLanes];
    for (int k = 0; k < kLanes; ++k) idx[k] = 1;
    for (int d = 0; d < depth; ++d) {
#pragma GCC unroll 8
      for (int k = 0; k < kLanes; ++k) {
        idx[k] = PerfectStep<kCat>(base[k * stride + idx[k]], row, idx[k]);
      }
    }
    // Leaf heap positions run from stride to 2 * stride - 1.
    const float* leaves = pleaves_.data() + t * stride;
    if (single_group_) {
      for (int k = 0; k < kLanes; ++k) acc += leaves[k * stride + idx[k] - stride];
    } else {
      for (int k = 0; k < kLanes; ++k) {
        out[tree_group_[t + k]] += leaves[k * stride + idx[k] - stride];
      }
    }
  }
  for (; t < num_trees_; ++t) {
    const PNode* base = pnodes_.data() + t * stride;
    uint32_t idx = 1;
    for (int d = 0; d < depth; ++d) idx = PerfectStep<kCat>(base[idx], row, idx);
    const float leaf = pleaves_[t * stride + idx - stride];
    if (single_group_) {
      acc += leaf;
    } else {
      out[tree_group_[t]] += leaf;
    }
  }
  if (single_group_) out[0] = acc;
}

template <bool kCat>
void Forest::PerfectRows(const float* rows, size_t n_rows, float* out) const {
  const size_t stride = size_t{1} << depth_;
  const int depth = depth_;
  const size_t nf = num_features_;
  const size_t ng = num_groups_;
  const size_t full = n_rows - n_rows % kLanes;
  for (size_t r = 0; r < full; ++r) {
    for (size_t g = 0; g < ng; ++g) out[r * ng + g] = base_margin_[g];
  }
  // Tiles of trees × tiles of rows: a tile of trees is read from L1 once per tile of rows, and
  // each row still sees the trees in model order.
  for (size_t tb = 0; tb < num_trees_; tb += trees_per_block_) {
    const size_t te = std::min(num_trees_, tb + trees_per_block_);
    for (size_t r0 = 0; r0 < full; r0 += kLanes) {
      const float* row[kLanes];
      for (int k = 0; k < kLanes; ++k) row[k] = rows + (r0 + k) * nf;
      float acc[kLanes];
      if (single_group_) {
        for (int k = 0; k < kLanes; ++k) acc[k] = out[r0 + k];
      }
      for (size_t t = tb; t < te; ++t) {
        const PNode* nodes = pnodes_.data() + t * stride;
        uint32_t idx[kLanes];
        for (int k = 0; k < kLanes; ++k) idx[k] = 1;
        for (int d = 0; d < depth; ++d) {
#pragma GCC unroll 8
          for (int k = 0; k < kLanes; ++k) idx[k] = PerfectStep<kCat>(nodes[idx[k]], row[k], idx[k]);
        }
        const float* leaves = pleaves_.data() + t * stride;
        if (single_group_) {
          for (int k = 0; k < kLanes; ++k) acc[k] += leaves[idx[k] - stride];
        } else {
          const uint32_t g = tree_group_[t];
          for (int k = 0; k < kLanes; ++k) out[(r0 + k) * ng + g] += leaves[idx[k] - stride];
        }
      }
      if (single_group_) {
        for (int k = 0; k < kLanes; ++k) out[r0 + k] = acc[k];
      }
    }
  }
  for (size_t r = full; r < n_rows; ++r) PerfectOneRow<kCat>(rows + r * nf, out + r * ng);
}

template <bool kCat>
inline float Forest::SparseWalk(uint32_t root, const float* row) const {
  const SNode* nodes = snodes_.data();
  uint32_t i = root;
  while ((nodes[i].key & kLeafBit) == 0) {
    const SNode& n = nodes[i];
    const float x = row[n.key & kFeatureMask];
    uint32_t right;
    if (kCat && (n.key & kCategoricalBit) != 0) {
      right = CategoryGoesRight(x, n.key, std::bit_cast<uint32_t>(n.value));
    } else {
      right = static_cast<uint32_t>(x >= n.value) |
              (static_cast<uint32_t>(x != x) & ((~n.key) >> 31));
    }
    i = n.left + right;
  }
  return nodes[i].value;
}

template <bool kCat>
void Forest::SparseRows(const float* rows, size_t n_rows, float* out) const {
  const size_t nf = num_features_;
  const size_t ng = num_groups_;
  for (size_t r = 0; r < n_rows; ++r) {
    for (size_t g = 0; g < ng; ++g) out[r * ng + g] = base_margin_[g];
  }
  for (size_t tb = 0; tb < num_trees_; tb += trees_per_block_) {
    const size_t te = std::min(num_trees_, tb + trees_per_block_);
    for (size_t r = 0; r < n_rows; ++r) {
      const float* row = rows + r * nf;
      float* o = out + r * ng;
      for (size_t t = tb; t < te; ++t) o[tree_group_[t]] += SparseWalk<kCat>(sroots_[t], row);
    }
  }
}

void Forest::PredictMargin(const float* rows, size_t n_rows, float* out) const {
  if (layout_ == ForestOptions::Layout::kSparse) {
    if (has_categorical_) {
      SparseRows<true>(rows, n_rows, out);
    } else {
      SparseRows<false>(rows, n_rows, out);
    }
    return;
  }
  if (n_rows < static_cast<size_t>(kLanes)) {
    for (size_t r = 0; r < n_rows; ++r) {
      if (has_categorical_) {
        PerfectOneRow<true>(rows + r * num_features_, out + r * num_groups_);
      } else {
        PerfectOneRow<false>(rows + r * num_features_, out + r * num_groups_);
      }
    }
    return;
  }
  if (has_categorical_) {
    PerfectRows<true>(rows, n_rows, out);
  } else {
    PerfectRows<false>(rows, n_rows, out);
  }
}

}  // namespace sluice::dataplane
