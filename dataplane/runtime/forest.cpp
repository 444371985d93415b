#include "dataplane/runtime/forest.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <utility>

namespace sluice::dataplane {
namespace {

// Walks advanced together. Eight independent chains of dependent loads keep two load ports busy
// on current x86 cores without spilling the indices out of registers.
constexpr int kLanes = 8;
// Node bytes per tile of trees in batch prediction: about half of a 32 KiB L1 data cache.
constexpr size_t kTreeBlockBytes = 16 * 1024;
// Padding every tree to the deepest one must not grow the node storage by more than this.
constexpr size_t kMaxPaddingFactor = 4;
constexpr int kMaxPerfectDepth = 12;
// Extended rows (features, then their negations) built on the stack per call: 16 KiB.
constexpr size_t kStackFloats = 4096;

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
  if (model.num_feature == 0 || 2 * static_cast<size_t>(model.num_feature) > kIndexMask) {
    return InvalidArgument("forest: feature count out of range");
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

Forest::Encoded Forest::Encode(const XGBoostTree& tree, int32_t node) {
  const auto feature = static_cast<uint32_t>(tree.feature[node]);
  const bool default_left = tree.default_left[node] != 0;
  const uint32_t dl_bit = default_left ? kDefaultLeftBit : 0;
  if (tree.categorical[node]) {
    has_slow_nodes_ = true;
    const uint32_t set = AddCategorySet(tree, node);
    return {kSlowBit | kCategoricalBit | dl_bit | feature, std::bit_cast<float>(set), false};
  }
  const float t = tree.value[node];
  if (!default_left) return {feature, t, false};
  if (std::isnan(t) || t == -std::numeric_limits<float>::infinity()) {
    // No threshold on the negated feature reproduces these; rare enough for the slow path.
    has_slow_nodes_ = true;
    return {kSlowBit | dl_bit | feature, t, false};
  }
  uses_negated_ = true;
  const auto negated = static_cast<uint32_t>(num_features_ + feature);
  return {negated, std::nextafter(-t, std::numeric_limits<float>::infinity()), true};
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
      const Encoded e = Encode(tree, it.node);
      nodes[it.heap] = PNode{e.key, e.threshold};
      const int32_t lo = e.swap_children ? tree.right[it.node] : tree.left[it.node];
      const int32_t hi = e.swap_children ? tree.left[it.node] : tree.right[it.node];
      queue.push_back(Item{lo, 2 * it.heap, it.level + 1});
      queue.push_back(Item{hi, 2 * it.heap + 1, it.level + 1});
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
      const Encoded e = Encode(tree, node);
      snodes_[slot] = SNode{e.key, e.threshold, child};
      queue.emplace_back(e.swap_children ? tree.right[node] : tree.left[node], child);
      queue.emplace_back(e.swap_children ? tree.left[node] : tree.right[node], child + 1);
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

// xgboost's rules, taken literally. A missing value follows the node's default. Numeric: x < t
// goes left. Categorical: a value that is negative or not below 2^24 is not a category and goes
// left; otherwise its integer part goes right exactly when it is in the node's set.
bool Forest::SlowGoesRight(const float* row, uint32_t key, float threshold) const {
  const float x = row[key & kIndexMask];
  if (x != x) return (key & kDefaultLeftBit) == 0;
  if ((key & kCategoricalBit) == 0) return !(x < threshold);
  if (!(x >= 0.0f && x < 16777216.0f)) return false;
  const auto c = static_cast<uint32_t>(x);
  const CatSet& set = cat_sets_[std::bit_cast<uint32_t>(threshold)];
  const uint32_t word = c >> 5;
  if (word >= set.words) return false;
  return ((cat_words_[set.offset + word] >> (c & 31)) & 1u) != 0;
}

// One decision. On fast nodes NaN fails `x < t` and so goes right, which Encode arranged to be
// the node's default direction.
template <bool kSlow>
inline uint32_t Forest::Right(const float* row, uint32_t key, float threshold) const {
  if (kSlow && (key & kSlowBit) != 0) return SlowGoesRight(row, key, threshold) ? 1u : 0u;
  return static_cast<uint32_t>(!(row[key] < threshold));
}

template <bool kSlow>
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
        const PNode n = base[k * stride + idx[k]];
        idx[k] = 2 * idx[k] + Right<kSlow>(row, n.key, n.threshold);
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
    for (int d = 0; d < depth; ++d) {
      const PNode n = base[idx];
      idx = 2 * idx + Right<kSlow>(row, n.key, n.threshold);
    }
    const float leaf = pleaves_[t * stride + idx - stride];
    if (single_group_) {
      acc += leaf;
    } else {
      out[tree_group_[t]] += leaf;
    }
  }
  if (single_group_) out[0] = acc;
}

template <bool kSlow>
void Forest::PerfectRows(const float* rows, size_t width, size_t n_rows, float* out) const {
  const size_t stride = size_t{1} << depth_;
  const int depth = depth_;
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
      for (int k = 0; k < kLanes; ++k) row[k] = rows + (r0 + k) * width;
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
          for (int k = 0; k < kLanes; ++k) {
            const PNode n = nodes[idx[k]];
            idx[k] = 2 * idx[k] + Right<kSlow>(row[k], n.key, n.threshold);
          }
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
  for (size_t r = full; r < n_rows; ++r) PerfectOneRow<kSlow>(rows + r * width, out + r * ng);
}

template <bool kSlow>
inline float Forest::SparseWalk(uint32_t root, const float* row) const {
  const SNode* nodes = snodes_.data();
  uint32_t i = root;
  while ((nodes[i].key & kLeafBit) == 0) {
    const SNode& n = nodes[i];
    i = n.left + Right<kSlow>(row, n.key, n.value);
  }
  return nodes[i].value;
}

template <bool kSlow>
void Forest::SparseRows(const float* rows, size_t width, size_t n_rows, float* out) const {
  const size_t ng = num_groups_;
  for (size_t r = 0; r < n_rows; ++r) {
    for (size_t g = 0; g < ng; ++g) out[r * ng + g] = base_margin_[g];
  }
  for (size_t tb = 0; tb < num_trees_; tb += trees_per_block_) {
    const size_t te = std::min(num_trees_, tb + trees_per_block_);
    for (size_t r = 0; r < n_rows; ++r) {
      const float* row = rows + r * width;
      float* o = out + r * ng;
      for (size_t t = tb; t < te; ++t) o[tree_group_[t]] += SparseWalk<kSlow>(sroots_[t], row);
    }
  }
}

void Forest::Dispatch(const float* rows, size_t width, size_t n_rows, float* out) const {
  if (layout_ == ForestOptions::Layout::kSparse) {
    if (has_slow_nodes_) {
      SparseRows<true>(rows, width, n_rows, out);
    } else {
      SparseRows<false>(rows, width, n_rows, out);
    }
    return;
  }
  if (n_rows < static_cast<size_t>(kLanes)) {
    for (size_t r = 0; r < n_rows; ++r) {
      if (has_slow_nodes_) {
        PerfectOneRow<true>(rows + r * width, out + r * num_groups_);
      } else {
        PerfectOneRow<false>(rows + r * width, out + r * num_groups_);
      }
    }
    return;
  }
  if (has_slow_nodes_) {
    PerfectRows<true>(rows, width, n_rows, out);
  } else {
    PerfectRows<false>(rows, width, n_rows, out);
  }
}

void Forest::PredictMargin(const float* rows, size_t n_rows, float* out) const {
  const size_t nf = num_features_;
  if (!uses_negated_) {
    Dispatch(rows, nf, n_rows, out);
    return;
  }
  // Extended rows: the features, then their negations, in chunks that fit on the stack.
  const size_t width = 2 * nf;
  float stack[kStackFloats];
  std::vector<float> heap;
  float* ext = stack;
  size_t chunk = kStackFloats / width;
  if (chunk == 0) {
    chunk = kLanes;
    heap.resize(chunk * width);
    ext = heap.data();
  }
  for (size_t r0 = 0; r0 < n_rows; r0 += chunk) {
    const size_t m = std::min(chunk, n_rows - r0);
    for (size_t r = 0; r < m; ++r) {
      const float* src = rows + (r0 + r) * nf;
      float* dst = ext + r * width;
      for (size_t f = 0; f < nf; ++f) {
        dst[f] = src[f];
        dst[nf + f] = -src[f];
      }
    }
    Dispatch(ext, width, m, out + r0 * num_groups_);
  }
}

}  // namespace sluice::dataplane
