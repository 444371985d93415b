#include "dataplane/runtime/xgboost_model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "dataplane/runtime/ubjson.h"

namespace sluice::dataplane {
namespace {

using nlohmann::json;

// xgboost treats category values at or above 2^24 as invalid (floats lose integer precision
// there), so no split can name one.
constexpr int64_t kMaxCategory = int64_t{1} << 24;
constexpr int kMaxTreeDepth = 1024;
constexpr uint32_t kMaxFeatures = uint32_t{1} << 26;

Status FieldError(const std::string& path, std::string_view what) {
  return InvalidArgument("xgboost model: " + path + ": " + std::string(what));
}

Result<const json*> Member(const json& obj, std::string_view key, const std::string& path) {
  if (!obj.is_object()) return FieldError(path, "expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) return FieldError(path, "missing field \"" + std::string(key) + "\"");
  return &*it;
}

const json* OptionalMember(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Result<double> ParseDoubleText(std::string_view s, const std::string& path) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return FieldError(path, "not a number: \"" + std::string(s) + "\"");
  }
  return v;
}

// xgboost writes parameters as strings ("100") and arrays as numbers; accept both everywhere.
Result<double> AsDouble(const json& v, const std::string& path) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_string()) return ParseDoubleText(v.get_ref<const std::string&>(), path);
  return FieldError(path, "expected a number");
}

Result<int64_t> AsInt(const json& v, const std::string& path) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(path, "integer out of range");
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  ASSIGN_OR_RETURN(double d, AsDouble(v, path));
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) {
    return FieldError(path, "expected an integer");
  }
  return static_cast<int64_t>(d);
}

Result<std::string> AsString(const json& v, const std::string& path) {
  if (!v.is_string()) return FieldError(path, "expected a string");
  return v.get<std::string>();
}

Result<int64_t> IntMember(const json& obj, std::string_view key, const std::string& path) {
  ASSIGN_OR_RETURN(const json* v, Member(obj, key, path));
  return AsInt(*v, path + "." + std::string(key));
}

const json::array_t* AsArray(const json& v) {
  return v.is_array() ? &v.get_ref<const json::array_t&>() : nullptr;
}

Result<std::vector<int64_t>> IntArray(const json& obj, std::string_view key,
                                      const std::string& path) {
  std::string p = path + "." + std::string(key);
  ASSIGN_OR_RETURN(const json* v, Member(obj, key, path));
  const json::array_t* arr = AsArray(*v);
  if (arr == nullptr) return FieldError(p, "expected an array");
  std::vector<int64_t> out;
  out.reserve(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    const json& e = (*arr)[i];
    if (e.is_number_integer()) {
      out.push_back(e.get<int64_t>());
    } else {
      ASSIGN_OR_RETURN(int64_t x, AsInt(e, p + "[" + std::to_string(i) + "]"));
      out.push_back(x);
    }
  }
  return out;
}

// Doubles beyond the float range become infinities (xgboost's "Infinity" arrives as the largest
// double, see ReplaceNonFiniteLiterals).
float ToFloat(double d) {
  if (d > std::numeric_limits<float>::max()) return std::numeric_limits<float>::infinity();
  if (d < -std::numeric_limits<float>::max()) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

Result<std::vector<float>> FloatArray(const json& obj, std::string_view key,
                                      const std::string& path) {
  std::string p = path + "." + std::string(key);
  ASSIGN_OR_RETURN(const json* v, Member(obj, key, path));
  const json::array_t* arr = AsArray(*v);
  if (arr == nullptr) return FieldError(p, "expected an array");
  std::vector<float> out;
  out.reserve(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    const json& e = (*arr)[i];
    if (e.is_number()) {
      out.push_back(ToFloat(e.get<double>()));
    } else if (e.is_null()) {
      out.push_back(std::numeric_limits<float>::quiet_NaN());
    } else {
      ASSIGN_OR_RETURN(double x, AsDouble(e, p + "[" + std::to_string(i) + "]"));
      out.push_back(ToFloat(x));
    }
  }
  return out;
}

Result<std::vector<std::string>> StringArray(const json& v, const std::string& path) {
  const json::array_t* arr = AsArray(v);
  if (arr == nullptr) return FieldError(path, "expected an array");
  std::vector<std::string> out;
  out.reserve(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    ASSIGN_OR_RETURN(std::string s, AsString((*arr)[i], path + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(s));
  }
  return out;
}

// base_score: "5E-1" (xgboost < 3.1), "[5E-1]" or "[a,b,c]" (3.1+, one value per output group),
// or a plain number.
Result<std::vector<double>> ParseBaseScore(const json& v, const std::string& path) {
  if (v.is_number()) return std::vector<double>{v.get<double>()};
  if (!v.is_string()) return FieldError(path, "expected a number or a string");
  std::string_view s = v.get_ref<const std::string&>();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::vector<double> out;
  if (!s.empty() && s.front() == '[') {
    if (s.back() != ']') return FieldError(path, "unterminated vector \"" + std::string(s) + "\"");
    s = s.substr(1, s.size() - 2);
    while (true) {
      size_t comma = s.find(',');
      ASSIGN_OR_RETURN(double x, ParseDoubleText(s.substr(0, comma), path));
      out.push_back(x);
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma + 1);
    }
  } else {
    ASSIGN_OR_RETURN(double x, ParseDoubleText(s, path));
    out.push_back(x);
  }
  return out;
}

enum class Link { kIdentity, kLogit, kLog };

struct ObjectiveInfo {
  OutputTransform transform;
  Link link;  // how base_score (stored in output space) becomes a margin
};

Result<ObjectiveInfo> LookupObjective(const std::string& name) {
  static const std::pair<std::string_view, ObjectiveInfo> kTable[] = {
      {"reg:squarederror", {OutputTransform::kIdentity, Link::kIdentity}},
      {"reg:linear", {OutputTransform::kIdentity, Link::kIdentity}},
      {"reg:squaredlogerror", {OutputTransform::kIdentity, Link::kIdentity}},
      {"reg:pseudohubererror", {OutputTransform::kIdentity, Link::kIdentity}},
      {"reg:absoluteerror", {OutputTransform::kIdentity, Link::kIdentity}},
      {"reg:quantileerror", {OutputTransform::kIdentity, Link::kIdentity}},
      {"reg:logistic", {OutputTransform::kSigmoid, Link::kLogit}},
      {"binary:logistic", {OutputTransform::kSigmoid, Link::kLogit}},
      {"binary:logitraw", {OutputTransform::kIdentity, Link::kIdentity}},
      {"binary:hinge", {OutputTransform::kHinge, Link::kIdentity}},
      {"count:poisson", {OutputTransform::kExp, Link::kLog}},
      {"reg:gamma", {OutputTransform::kExp, Link::kLog}},
      {"reg:tweedie", {OutputTransform::kExp, Link::kLog}},
      {"rank:pairwise", {OutputTransform::kIdentity, Link::kIdentity}},
      {"rank:ndcg", {OutputTransform::kIdentity, Link::kIdentity}},
      {"rank:map", {OutputTransform::kIdentity, Link::kIdentity}},
      {"multi:softprob", {OutputTransform::kSoftmax, Link::kIdentity}},
      {"multi:softmax", {OutputTransform::kArgmax, Link::kIdentity}},
  };
  for (const auto& [n, info] : kTable) {
    if (n == name) return info;
  }
  return Unimplemented("xgboost model: objective \"" + name + "\" is not supported");
}

Result<float> BaseToMargin(double base, Link link, const std::string& objective) {
  switch (link) {
    case Link::kIdentity:
      return static_cast<float>(base);
    case Link::kLogit:
      if (!(base > 0.0 && base < 1.0)) {
        return InvalidArgument("xgboost model: base_score " + std::to_string(base) +
                               " must be in (0, 1) for " + objective);
      }
      return static_cast<float>(-std::log(1.0 / base - 1.0));
    case Link::kLog:
      if (!(base > 0.0)) {
        return InvalidArgument("xgboost model: base_score " + std::to_string(base) +
                               " must be positive for " + objective);
      }
      return static_cast<float>(std::log(base));
  }
  return Internal("unknown link");
}

// Walks the tree from the root: every reachable node is reached exactly once (no cycles, no
// shared children), and records the depth.
Status CheckTreeShape(XGBoostTree& t, const std::string& path) {
  const int32_t n = t.num_nodes();
  std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
  std::vector<std::pair<int32_t, int>> stack = {{0, 0}};
  seen[0] = 1;
  int max_depth = 0;
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    max_depth = std::max(max_depth, depth);
    if (t.left[node] < 0) continue;
    if (depth + 1 > kMaxTreeDepth) {
      return FieldError(path, "deeper than " + std::to_string(kMaxTreeDepth) + " levels");
    }
    for (int32_t child : {t.left[node], t.right[node]}) {
      if (seen[child]) {
        return FieldError(path, "node " + std::to_string(child) +
                                    " is reached twice (a cycle or a shared child)");
      }
      seen[child] = 1;
      stack.emplace_back(child, depth + 1);
    }
  }
  t.max_depth = max_depth;
  return Status::Ok();
}

Result<XGBoostTree> ParseTree(const json& jt, uint32_t num_feature, const std::string& path) {
  XGBoostTree t;
  ASSIGN_OR_RETURN(const json* param, Member(jt, "tree_param", path));
  ASSIGN_OR_RETURN(int64_t num_nodes, IntMember(*param, "num_nodes", path + ".tree_param"));
  if (const json* slv = OptionalMember(*param, "size_leaf_vector")) {
    ASSIGN_OR_RETURN(int64_t size_leaf_vector, AsInt(*slv, path + ".tree_param.size_leaf_vector"));
    if (size_leaf_vector > 1) {
      return Unimplemented("xgboost model: " + path +
                           ": vector-leaf trees (multi_strategy=multi_output_tree) are not "
                           "supported");
    }
  }
  if (num_nodes < 1 || num_nodes > std::numeric_limits<int32_t>::max()) {
    return FieldError(path, "num_nodes " + std::to_string(num_nodes) + " out of range");
  }
  const auto n = static_cast<size_t>(num_nodes);

  ASSIGN_OR_RETURN(std::vector<int64_t> left, IntArray(jt, "left_children", path));
  ASSIGN_OR_RETURN(std::vector<int64_t> right, IntArray(jt, "right_children", path));
  ASSIGN_OR_RETURN(std::vector<int64_t> split_indices, IntArray(jt, "split_indices", path));
  ASSIGN_OR_RETURN(t.value, FloatArray(jt, "split_conditions", path));
  ASSIGN_OR_RETURN(std::vector<int64_t> default_left, IntArray(jt, "default_left", path));
  std::vector<int64_t> split_type(n, 0);
  if (OptionalMember(jt, "split_type") != nullptr) {
    ASSIGN_OR_RETURN(split_type, IntArray(jt, "split_type", path));
  }
  const std::pair<const char*, size_t> sizes[] = {
      {"left_children", left.size()},          {"right_children", right.size()},
      {"split_indices", split_indices.size()}, {"split_conditions", t.value.size()},
      {"default_left", default_left.size()},   {"split_type", split_type.size()},
  };
  for (const auto& [name, size] : sizes) {
    if (size != n) {
      return FieldError(path, std::string(name) + " has " + std::to_string(size) +
                                  " entries, num_nodes is " + std::to_string(n));
    }
  }

  t.left.resize(n);
  t.right.resize(n);
  t.feature.assign(n, 0);
  t.default_left.resize(n);
  t.categorical.assign(n, 0);
  t.cat_begin.assign(n, 0);
  t.cat_size.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const bool leaf_l = left[i] == -1;
    const bool leaf_r = right[i] == -1;
    if (leaf_l != leaf_r) {
      return FieldError(path, "node " + std::to_string(i) + " has one child");
    }
    if (!leaf_l) {
      if (left[i] < 1 || left[i] >= num_nodes || right[i] < 1 || right[i] >= num_nodes ||
          left[i] == right[i]) {
        return FieldError(path, "node " + std::to_string(i) + " has children out of range");
      }
      if (split_indices[i] < 0 || split_indices[i] >= static_cast<int64_t>(num_feature)) {
        return FieldError(path, "node " + std::to_string(i) + " splits on feature " +
                                    std::to_string(split_indices[i]) + " but the model has " +
                                    std::to_string(num_feature) + " features");
      }
      if (split_type[i] != 0 && split_type[i] != 1) {
        return FieldError(path, "node " + std::to_string(i) + " has unknown split_type " +
                                    std::to_string(split_type[i]));
      }
      t.feature[i] = static_cast<uint32_t>(split_indices[i]);
      t.categorical[i] = split_type[i] == 1;
      t.has_categorical |= t.categorical[i] != 0;
    }
    t.left[i] = static_cast<int32_t>(left[i]);
    t.right[i] = static_cast<int32_t>(right[i]);
    t.default_left[i] = default_left[i] != 0;
  }

  if (t.has_categorical) {
    ASSIGN_OR_RETURN(std::vector<int64_t> cats, IntArray(jt, "categories", path));
    ASSIGN_OR_RETURN(std::vector<int64_t> nodes, IntArray(jt, "categories_nodes", path));
    ASSIGN_OR_RETURN(std::vector<int64_t> segs, IntArray(jt, "categories_segments", path));
    ASSIGN_OR_RETURN(std::vector<int64_t> csizes, IntArray(jt, "categories_sizes", path));
    if (nodes.size() != segs.size() || nodes.size() != csizes.size()) {
      return FieldError(path,
                        "categories_nodes, categories_segments and categories_sizes "
                        "differ in length");
    }
    std::vector<uint8_t> has_set(n, 0);
    for (size_t k = 0; k < nodes.size(); ++k) {
      const int64_t node = nodes[k];
      if (node < 0 || node >= num_nodes || !t.categorical[static_cast<size_t>(node)]) {
        return FieldError(path, "categories_nodes names node " + std::to_string(node) +
                                    ", which is not a categorical split");
      }
      if (has_set[static_cast<size_t>(node)]) {
        return FieldError(path, "node " + std::to_string(node) + " has two category sets");
      }
      if (segs[k] < 0 || csizes[k] < 0 || segs[k] > static_cast<int64_t>(cats.size()) ||
          csizes[k] > static_cast<int64_t>(cats.size()) - segs[k]) {
        return FieldError(path,
                          "category segment of node " + std::to_string(node) + " out of range");
      }
      has_set[static_cast<size_t>(node)] = 1;
      t.cat_begin[static_cast<size_t>(node)] = static_cast<uint32_t>(t.categories.size());
      t.cat_size[static_cast<size_t>(node)] = static_cast<uint32_t>(csizes[k]);
      for (int64_t j = segs[k]; j < segs[k] + csizes[k]; ++j) {
        const int64_t c = cats[static_cast<size_t>(j)];
        if (c < 0 || c >= kMaxCategory) {
          return FieldError(path, "category " + std::to_string(c) + " of node " +
                                      std::to_string(node) + " out of range");
        }
        t.categories.push_back(static_cast<uint32_t>(c));
      }
      auto first = t.categories.end() - csizes[k];
      std::sort(first, t.categories.end());
    }
    for (size_t i = 0; i < n; ++i) {
      if (t.categorical[i] && !has_set[i]) {
        return FieldError(path, "categorical node " + std::to_string(i) + " has no category set");
      }
    }
  }
  RETURN_IF_ERROR(CheckTreeShape(t, path));
  return t;
}

// xgboost's JSON writer emits NaN, Infinity and -Infinity as bare literals (categorical split
// conditions are NaN in 1.x), which strict JSON parsers reject. Outside strings, NaN becomes null
// and the infinities the largest double, which ToFloat turns back into infinities. Returns
// nothing when the text has no such literal, so the common case makes no copy.
std::optional<std::string> ReplaceNonFiniteLiterals(std::string_view in) {
  constexpr std::string_view kMax = "1.7976931348623157e308";
  std::optional<std::string> out;
  bool in_string = false;
  size_t copied = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    std::string_view replacement;
    size_t len = 0;
    if (c == 'N' && in.substr(i, 3) == "NaN") {
      replacement = "null";
      len = 3;
    } else if (c == 'I' && in.substr(i, 8) == "Infinity") {
      replacement = kMax;
      len = 8;
    } else if (c == '-' && in.substr(i, 9) == "-Infinity") {
      len = 9;
    } else {
      continue;
    }
    if (!out) {
      out.emplace();
      out->reserve(in.size() + 64);
    }
    out->append(in.substr(copied, i - copied));
    if (len == 9) {
      out->push_back('-');
      out->append(kMax);
    } else {
      out->append(replacement);
    }
    copied = i + len;
    i += len - 1;
  }
  if (out) out->append(in.substr(copied));
  return out;
}

Result<XGBoostModel> ParseModelImpl(const json& doc) {
  XGBoostModel m;
  if (!doc.is_object()) return InvalidArgument("xgboost model: the document is not an object");
  if (const json* version = OptionalMember(doc, "version"); version && version->is_array()) {
    for (const json& v : *version) {
      if (v.is_number_integer() || v.is_number_unsigned()) m.version.push_back(v.get<int>());
    }
  }
  ASSIGN_OR_RETURN(const json* learner, Member(doc, "learner", "<root>"));

  // Objective and output shape.
  ASSIGN_OR_RETURN(const json* objective, Member(*learner, "objective", "learner"));
  ASSIGN_OR_RETURN(const json* objective_name, Member(*objective, "name", "learner.objective"));
  ASSIGN_OR_RETURN(m.objective, AsString(*objective_name, "learner.objective.name"));
  ASSIGN_OR_RETURN(ObjectiveInfo info, LookupObjective(m.objective));
  m.transform = info.transform;

  const std::string mp_path = "learner.learner_model_param";
  ASSIGN_OR_RETURN(const json* mp, Member(*learner, "learner_model_param", "learner"));
  ASSIGN_OR_RETURN(int64_t num_feature, IntMember(*mp, "num_feature", mp_path));
  if (num_feature < 1 || num_feature > kMaxFeatures) {
    return FieldError(mp_path + ".num_feature", "out of range: " + std::to_string(num_feature));
  }
  m.num_feature = static_cast<uint32_t>(num_feature);
  int64_t num_class = 0;
  if (const json* nc = OptionalMember(*mp, "num_class")) {
    ASSIGN_OR_RETURN(num_class, AsInt(*nc, mp_path + ".num_class"));
  }
  int64_t num_target = 1;
  if (const json* nt = OptionalMember(*mp, "num_target")) {
    ASSIGN_OR_RETURN(num_target, AsInt(*nt, mp_path + ".num_target"));
  }
  if (num_class < 0 || num_class > 1'000'000 || num_target < 1 || num_target > 1'000'000) {
    return FieldError(mp_path, "num_class or num_target out of range");
  }
  const bool multiclass =
      info.transform == OutputTransform::kSoftmax || info.transform == OutputTransform::kArgmax;
  if (multiclass && num_class < 1) {
    return FieldError(mp_path + ".num_class", m.objective + " needs num_class >= 1");
  }
  if (num_class > 1 && num_target > 1) {
    return FieldError(mp_path, "both num_class and num_target are above 1");
  }
  m.num_class = multiclass ? static_cast<uint32_t>(num_class) : 0;
  m.num_groups = static_cast<uint32_t>(std::max<int64_t>({num_class, num_target, 1}));

  ASSIGN_OR_RETURN(const json* bs, Member(*mp, "base_score", mp_path));
  ASSIGN_OR_RETURN(std::vector<double> base, ParseBaseScore(*bs, mp_path + ".base_score"));
  if (base.size() != 1 && base.size() != m.num_groups) {
    return FieldError(mp_path + ".base_score", "has " + std::to_string(base.size()) +
                                                   " values for " + std::to_string(m.num_groups) +
                                                   " output groups");
  }
  m.base_margin.resize(m.num_groups);
  for (uint32_t g = 0; g < m.num_groups; ++g) {
    ASSIGN_OR_RETURN(m.base_margin[g],
                     BaseToMargin(base.size() == 1 ? base[0] : base[g], info.link, m.objective));
  }

  // Booster.
  ASSIGN_OR_RETURN(const json* booster, Member(*learner, "gradient_booster", "learner"));
  ASSIGN_OR_RETURN(const json* booster_name, Member(*booster, "name", "learner.gradient_booster"));
  ASSIGN_OR_RETURN(std::string bname, AsString(*booster_name, "learner.gradient_booster.name"));
  const json* gbtree = nullptr;
  std::string gb_path;
  if (bname == "gbtree") {
    gbtree = booster;
    gb_path = "learner.gradient_booster";
  } else if (bname == "dart") {
    ASSIGN_OR_RETURN(gbtree, Member(*booster, "gbtree", "learner.gradient_booster"));
    gb_path = "learner.gradient_booster.gbtree";
    ASSIGN_OR_RETURN(m.tree_weight,
                     FloatArray(*booster, "weight_drop", "learner.gradient_booster"));
  } else {
    return Unimplemented("xgboost model: booster \"" + bname + "\" is not supported");
  }
  ASSIGN_OR_RETURN(const json* model, Member(*gbtree, "model", gb_path));
  const std::string model_path = gb_path + ".model";
  ASSIGN_OR_RETURN(const json* gparam, Member(*model, "gbtree_model_param", model_path));
  ASSIGN_OR_RETURN(int64_t num_trees,
                   IntMember(*gparam, "num_trees", model_path + ".gbtree_model_param"));
  int64_t num_parallel_tree = 1;
  if (const json* npt = OptionalMember(*gparam, "num_parallel_tree")) {
    ASSIGN_OR_RETURN(num_parallel_tree,
                     AsInt(*npt, model_path + ".gbtree_model_param.num_parallel_tree"));
  }
  if (num_parallel_tree < 1) num_parallel_tree = 1;

  ASSIGN_OR_RETURN(const json* trees, Member(*model, "trees", model_path));
  const json::array_t* tree_arr = AsArray(*trees);
  if (tree_arr == nullptr) return FieldError(model_path + ".trees", "expected an array");
  if (static_cast<int64_t>(tree_arr->size()) != num_trees) {
    return FieldError(model_path, "num_trees is " + std::to_string(num_trees) + " but " +
                                      std::to_string(tree_arr->size()) + " trees are stored");
  }
  m.trees.reserve(tree_arr->size());
  for (size_t i = 0; i < tree_arr->size(); ++i) {
    ASSIGN_OR_RETURN(XGBoostTree t, ParseTree((*tree_arr)[i], m.num_feature,
                                              model_path + ".trees[" + std::to_string(i) + "]"));
    m.trees.push_back(std::move(t));
  }

  ASSIGN_OR_RETURN(std::vector<int64_t> tree_info, IntArray(*model, "tree_info", model_path));
  if (tree_info.size() != m.trees.size()) {
    return FieldError(model_path + ".tree_info", "has " + std::to_string(tree_info.size()) +
                                                     " entries for " +
                                                     std::to_string(m.trees.size()) + " trees");
  }
  m.tree_group.resize(tree_info.size());
  for (size_t i = 0; i < tree_info.size(); ++i) {
    if (tree_info[i] < 0 || tree_info[i] >= m.num_groups) {
      return FieldError(model_path + ".tree_info",
                        "tree " + std::to_string(i) + " adds into group " +
                            std::to_string(tree_info[i]) + " of " + std::to_string(m.num_groups));
    }
    m.tree_group[i] = static_cast<uint32_t>(tree_info[i]);
  }
  if (!m.tree_weight.empty() && m.tree_weight.size() != m.trees.size()) {
    return FieldError("learner.gradient_booster.weight_drop",
                      "has " + std::to_string(m.tree_weight.size()) + " weights for " +
                          std::to_string(m.trees.size()) + " trees");
  }

  // Round boundaries, for cutting the model at best_iteration.
  if (OptionalMember(*model, "iteration_indptr") != nullptr) {
    ASSIGN_OR_RETURN(std::vector<int64_t> indptr, IntArray(*model, "iteration_indptr", model_path));
    if (indptr.empty() || indptr.front() != 0 ||
        indptr.back() != static_cast<int64_t>(m.trees.size()) ||
        !std::is_sorted(indptr.begin(), indptr.end())) {
      return FieldError(model_path + ".iteration_indptr", "is not a partition of the trees");
    }
    for (size_t i = 1; i < indptr.size(); ++i) {
      m.iteration_end.push_back(static_cast<size_t>(indptr[i]));
    }
  } else {
    const size_t per_round = static_cast<size_t>(num_parallel_tree) * m.num_groups;
    if (m.trees.size() % per_round == 0) {
      for (size_t end = per_round; end <= m.trees.size(); end += per_round) {
        m.iteration_end.push_back(end);
      }
    }
  }

  if (const json* attrs = OptionalMember(*learner, "attributes")) {
    if (const json* best = OptionalMember(*attrs, "best_iteration")) {
      ASSIGN_OR_RETURN(m.best_iteration, AsInt(*best, "learner.attributes.best_iteration"));
    }
  }
  if (const json* names = OptionalMember(*learner, "feature_names")) {
    ASSIGN_OR_RETURN(m.feature_names, StringArray(*names, "learner.feature_names"));
  }
  if (const json* types = OptionalMember(*learner, "feature_types")) {
    ASSIGN_OR_RETURN(m.feature_types, StringArray(*types, "learner.feature_types"));
  }
  if (!m.feature_names.empty() && m.feature_names.size() != m.num_feature) {
    return FieldError("learner.feature_names", "has " + std::to_string(m.feature_names.size()) +
                                                   " names for " + std::to_string(m.num_feature) +
                                                   " features");
  }
  return m;
}

}  // namespace

Result<ModelFormat> ParseModelFormat(std::string_view name) {
  if (name.empty() || name == "auto" || name == "xgboost") return ModelFormat::kAuto;
  if (name == "xgboost-json" || name == "json") return ModelFormat::kJson;
  if (name == "xgboost-ubj" || name == "ubj" || name == "ubjson" || name == "xgboost-ubjson") {
    return ModelFormat::kUbjson;
  }
  return InvalidArgument("unknown model format \"" + std::string(name) +
                         "\" (expected xgboost-json, xgboost-ubj or auto)");
}

ModelFormat DetectModelFormat(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size() && std::isspace(static_cast<unsigned char>(bytes[i]))) ++i;
  if (i < bytes.size() && bytes[i] == '{') {
    // JSON: '{' then whitespace, '"' or '}'. UBJSON: '{' then a length marker or '$' / '#'.
    size_t j = i + 1;
    while (j < bytes.size() && std::isspace(static_cast<unsigned char>(bytes[j]))) ++j;
    if (j >= bytes.size() || bytes[j] == '"' || bytes[j] == '}') return ModelFormat::kJson;
    return ModelFormat::kUbjson;
  }
  return i == 0 ? ModelFormat::kUbjson : ModelFormat::kJson;
}

Result<XGBoostModel> ParseXGBoostModel(const nlohmann::json& doc) {
  try {
    return ParseModelImpl(doc);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("xgboost model: out of memory while reading the model");
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("xgboost model: ") + e.what());
  }
}

Result<XGBoostModel> ParseXGBoostModelBytes(std::string_view bytes, ModelFormat format) {
  if (format == ModelFormat::kAuto) format = DetectModelFormat(bytes);
  json doc;
  try {
    if (format == ModelFormat::kUbjson) {
      ASSIGN_OR_RETURN(doc, ParseUbjson(bytes));
    } else {
      std::optional<std::string> replaced = ReplaceNonFiniteLiterals(bytes);
      std::string_view text = replaced ? std::string_view(*replaced) : bytes;
      doc = json::parse(text.begin(), text.end());
    }
  } catch (const json::parse_error& e) {
    return InvalidArgument(std::string("xgboost model: invalid JSON: ") + e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("xgboost model: out of memory while reading the model");
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("xgboost model: ") + e.what());
  }
  return ParseXGBoostModel(doc);
}

}  // namespace sluice::dataplane
