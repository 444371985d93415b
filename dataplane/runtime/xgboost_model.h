#pragma once

// The XGBoost model as read from a JSON or UBJSON file, before it is compiled for evaluation.
// Format-independent and validated: every index in a tree is in range, every tree is acyclic and
// reachable from its root, every categorical split has its category set.
//
// Files written by xgboost 1.x, 2.x and 3.x load (`base_score` as "5E-1" or "[5E-1]" / "[a,b,c]").
// What is not supported is refused by name: gblinear, vector-leaf trees (multi_strategy=
// multi_output_tree), unknown objectives.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace sluice::dataplane {

enum class ModelFormat { kAuto, kJson, kUbjson };

// "xgboost-json" / "json", "xgboost-ubj" / "ubj" / "ubjson", "" / "auto" / "xgboost".
Result<ModelFormat> ParseModelFormat(std::string_view name);

// The format from the first byte: '{' (after whitespace) is JSON, anything else is UBJSON (whose
// top-level object starts with '{' too, followed by a length marker, never by whitespace or '"').
ModelFormat DetectModelFormat(std::string_view bytes);

// How the raw sum of leaf values (the margin) becomes the prediction.
enum class OutputTransform {
  kIdentity,  // regression, binary:logitraw, rank:*
  kSigmoid,   // binary:logistic, reg:logistic
  kExp,       // count:poisson, reg:gamma, reg:tweedie, survival:*
  kHinge,     // binary:hinge: 1 if margin > 0 else 0
  kSoftmax,   // multi:softprob: one probability per class
  kArgmax,    // multi:softmax: the class index
};

struct XGBoostTree {
  // One entry per node, indexed by node id; children are -1 on leaves.
  std::vector<int32_t> left;
  std::vector<int32_t> right;
  std::vector<uint32_t> feature;
  std::vector<float> value;  // split threshold on internal nodes, leaf value on leaves
  std::vector<uint8_t> default_left;
  std::vector<uint8_t> categorical;
  // For categorical nodes: the categories that go right, as a sorted list per node
  // (cat_begin[node], cat_size[node] index into `categories`).
  std::vector<uint32_t> cat_begin;
  std::vector<uint32_t> cat_size;
  std::vector<uint32_t> categories;
  int max_depth = 0;  // edges on the longest root-to-leaf path
  int32_t num_nodes() const { return static_cast<int32_t>(left.size()); }
  bool has_categorical = false;
};

struct XGBoostModel {
  std::vector<int> version;  // [major, minor, patch] as written, empty if absent
  std::string objective;
  OutputTransform transform = OutputTransform::kIdentity;
  uint32_t num_feature = 0;
  // Output groups the trees add into: 1 for binary and regression, the class count for multi:*,
  // the target count for multi-target regression.
  uint32_t num_groups = 1;
  uint32_t num_class = 0;  // 0 unless multi:*
  // The starting margin of each group: base_score after the objective's inverse link.
  std::vector<float> base_margin;
  std::vector<XGBoostTree> trees;
  std::vector<uint32_t> tree_group;  // tree_info: the group each tree adds into
  std::vector<float> tree_weight;    // dart weight_drop; empty for gbtree
  // Trees per boosting round (num_parallel_tree × groups); used to cut at best_iteration.
  std::vector<size_t> iteration_end;  // exclusive tree index where each round ends
  int64_t best_iteration = -1;        // from learner.attributes, -1 if absent
  std::vector<std::string> feature_names;
  std::vector<std::string> feature_types;
};

// Parses the JSON document of an xgboost model (from JSON text or UBJSON).
Result<XGBoostModel> ParseXGBoostModel(const nlohmann::json& doc);

// Parses model bytes in the given format (kAuto detects it).
Result<XGBoostModel> ParseXGBoostModelBytes(std::string_view bytes, ModelFormat format);

}  // namespace sluice::dataplane
