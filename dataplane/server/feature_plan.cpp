#include "dataplane/server/feature_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "dataplane/features/feast_codec.h"

namespace sluice::dataplane {

namespace {

using api::FeastType;
using features::FeastValue;
using features::RedisReply;

constexpr size_t kNone = static_cast<size_t>(-1);
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool IsIntegral(DataType t) {
  return t >= DataType::kUint8 && t <= DataType::kInt64;
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Element i of a numeric or BOOL tensor as a double.
double NumberAt(const Tensor& t, size_t i) {
  const uint8_t* p = t.bytes().data() + i * DataTypeSize(t.datatype());
  switch (t.datatype()) {
    case DataType::kBool:
    case DataType::kUint8:
      return Load<uint8_t>(p);
    case DataType::kUint16:
      return Load<uint16_t>(p);
    case DataType::kUint32:
      return Load<uint32_t>(p);
    case DataType::kUint64:
      return static_cast<double>(Load<uint64_t>(p));
    case DataType::kInt8:
      return Load<int8_t>(p);
    case DataType::kInt16:
      return Load<int16_t>(p);
    case DataType::kInt32:
      return Load<int32_t>(p);
    case DataType::kInt64:
      return static_cast<double>(Load<int64_t>(p));
    case DataType::kFp16:
      return HalfToFloat(Load<uint16_t>(p));
    case DataType::kFp32:
      return Load<float>(p);
    case DataType::kFp64:
      return Load<double>(p);
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

// Element i of an integral tensor; false when it does not fit an int64.
bool IntegerAt(const Tensor& t, size_t i, int64_t& out) {
  const uint8_t* p = t.bytes().data() + i * DataTypeSize(t.datatype());
  switch (t.datatype()) {
    case DataType::kUint8:
      out = Load<uint8_t>(p);
      return true;
    case DataType::kUint16:
      out = Load<uint16_t>(p);
      return true;
    case DataType::kUint32:
      out = Load<uint32_t>(p);
      return true;
    case DataType::kUint64: {
      const uint64_t v = Load<uint64_t>(p);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      out = static_cast<int64_t>(v);
      return true;
    }
    case DataType::kInt8:
      out = Load<int8_t>(p);
      return true;
    case DataType::kInt16:
      out = Load<int16_t>(p);
      return true;
    case DataType::kInt32:
      out = Load<int32_t>(p);
      return true;
    case DataType::kInt64:
      out = Load<int64_t>(p);
      return true;
    default:
      return false;
  }
}

// The BYTES elements of a tensor (already validated to tile its buffer).
std::vector<std::string_view> ByteElements(const Tensor& t) {
  std::vector<std::string_view> out;
  const auto b = t.bytes();
  size_t at = 0;
  while (at + 4 <= b.size()) {
    const uint32_t len = Load<uint32_t>(b.data() + at);
    at += 4;
    if (at + len > b.size()) break;
    out.emplace_back(reinterpret_cast<const char*>(b.data() + at), len);
    at += len;
  }
  return out;
}

// Rows of a columnar input: [n] or [n, 1].
std::optional<size_t> ColumnRows(const Tensor& t) {
  const auto& s = t.shape();
  if (s.size() == 1 && s[0] >= 0) return static_cast<size_t>(s[0]);
  if (s.size() == 2 && s[0] >= 0 && s[1] == 1) return static_cast<size_t>(s[0]);
  return std::nullopt;
}

// A typed entity value from an integer, checked against the entity's type.
Result<FeastValue> EntityFromInteger(const api::FeatureEntity& e, int64_t v,
                                     const std::string& what, const std::string& view) {
  switch (e.value_type) {
    case FeastType::kInt32:
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        return InvalidArgument(what + " holds " + std::to_string(v) +
                               ", out of range for entity '" + e.join_key +
                               "' (INT32) of feature "
                               "view " +
                               view);
      }
      return FeastValue::Int32(static_cast<int32_t>(v));
    case FeastType::kInt64:
      return FeastValue::Int64(v);
    case FeastType::kUnixTimestamp:
      return FeastValue::UnixTimestamp(v);
    default:
      return InvalidArgument(what + " is a number; entity '" + e.join_key + "' of feature view " +
                             view + " is " + std::string(api::FeastTypeName(e.value_type)));
  }
}

bool IsStringEntity(FeastType t) {
  return t == FeastType::kString || t == FeastType::kBytes;
}

FeastValue StringEntity(FeastType t, std::string_view s) {
  return t == FeastType::kString ? FeastValue::String(std::string(s))
                                 : FeastValue::Bytes(std::string(s));
}

// The entity's value in every row, from the input of its join key or else the request
// parameter of that name.
Result<std::vector<FeastValue>> EntityValues(const api::FeatureEntity& e, const std::string& view,
                                             const Tensor* input, const nlohmann::json& params,
                                             size_t rows) {
  std::vector<FeastValue> out;
  out.reserve(rows);
  const std::string type(api::FeastTypeName(e.value_type));
  if (input != nullptr) {
    const std::string what = "input '" + input->name() + "'";
    if (IsStringEntity(e.value_type)) {
      if (input->datatype() != DataType::kBytes) {
        return InvalidArgument(
            what + " has datatype " + std::string(DataTypeName(input->datatype())) + "; entity '" +
            e.join_key + "' of feature view " + view + " is " + type + " (send BYTES)");
      }
      for (std::string_view s : ByteElements(*input)) out.push_back(StringEntity(e.value_type, s));
      return out;
    }
    if (!IsIntegral(input->datatype())) {
      return InvalidArgument(
          what + " has datatype " + std::string(DataTypeName(input->datatype())) + "; entity '" +
          e.join_key + "' of feature view " + view + " is " + type + " (send an integer type)");
    }
    for (size_t i = 0; i < rows; ++i) {
      int64_t v = 0;
      if (!IntegerAt(*input, i, v)) {
        return InvalidArgument(what + " element " + std::to_string(i) + " is out of range");
      }
      ASSIGN_OR_RETURN(FeastValue fv, EntityFromInteger(e, v, what, view));
      out.push_back(std::move(fv));
    }
    return out;
  }
  const std::string what = "parameter '" + e.join_key + "'";
  const nlohmann::json& p = params.at(e.join_key);
  FeastValue v;
  if (IsStringEntity(e.value_type)) {
    if (!p.is_string()) {
      return InvalidArgument(what + " must be a string for entity '" + e.join_key +
                             "' of feature view " + view);
    }
    v = StringEntity(e.value_type, p.get_ref<const std::string&>());
  } else {
    if (!p.is_number_integer()) {
      return InvalidArgument(what + " must be an integer for entity '" + e.join_key +
                             "' of feature view " + view);
    }
    if (p.is_number_unsigned() &&
        p.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgument(what + " is out of range");
    }
    ASSIGN_OR_RETURN(v, EntityFromInteger(e, p.get<int64_t>(), what, view));
  }
  out.assign(rows, v);
  return out;
}

}  // namespace

std::string_view FeatureResultLabel(FeatureResult r) {
  switch (r) {
    case FeatureResult::kHit:
      return "hit";
    case FeatureResult::kMissing:
      return "missing";
    case FeatureResult::kStale:
      return "stale";
    case FeatureResult::kMalformed:
      return "malformed";
    case FeatureResult::kUnfetched:
      return "default";
  }
  return "unknown";
}

Result<FeaturePlan> FeaturePlan::Create(std::vector<std::string> model_features,
                                        std::vector<api::FeatureViewConfig> views,
                                        std::string model_input) {
  if (model_features.empty()) {
    return InvalidArgument(
        "feature views are configured but the model does not name its features (no "
        "feature_names in the model file); rows cannot be assembled by name");
  }
  FeaturePlan plan;
  plan.model_input_ = std::move(model_input);
  plan.column_view_.assign(model_features.size(), kNone);
  std::map<std::string, size_t, std::less<>> column_of;
  for (size_t j = 0; j < model_features.size(); ++j) {
    if (!column_of.emplace(model_features[j], j).second) {
      return InvalidArgument("the model names feature '" + model_features[j] + "' twice");
    }
  }
  for (size_t v = 0; v < views.size(); ++v) {
    View view;
    view.config = std::move(views[v]);
    const std::string& name = view.config.name;
    if (view.config.entities.empty()) {
      return InvalidArgument("feature view " + name + " has no entities");
    }
    for (const auto& e : view.config.entities) {
      switch (e.value_type) {
        case FeastType::kInt32:
        case FeastType::kInt64:
        case FeastType::kUnixTimestamp:
        case FeastType::kString:
        case FeastType::kBytes:
          break;
        default:
          return InvalidArgument("entity '" + e.join_key + "' of feature view " + name + " is " +
                                 std::string(api::FeastTypeName(e.value_type)) +
                                 ", which Feast cannot key by");
      }
    }
    for (const auto& f : view.config.features) {
      auto it = column_of.find(f.name);
      if (it == column_of.end() || plan.column_view_[it->second] != kNone) continue;
      if (f.type == FeastType::kString || f.type == FeastType::kBytes) {
        return InvalidArgument("feature " + f.name + " of feature view " + name + " is " +
                               std::string(api::FeastTypeName(f.type)) +
                               "; the model takes numbers, so it cannot be a model input");
      }
      auto def = features::ParseDefault(f);
      if (!def.ok()) return def.status().Annotate("feature view " + name);
      plan.column_view_[it->second] = v;
      view.fields.push_back(
          Field{it->second, features::FeatureField(name, f.name), f.type, def->AsFloat()});
    }
    view.ts_field = features::TimestampField(name);
    plan.views_.push_back(std::move(view));
  }
  plan.features_ = std::move(model_features);
  return plan;
}

Result<FeaturePlan::Bound> FeaturePlan::Bind(const InferRequest& request) const {
  Bound b;
  if (request.inputs.size() == 1 && request.inputs[0].name() == model_input_) {
    b.plain = true;
    return b;
  }
  const size_t columns = features_.size();
  // Which input is what: a model feature, an entity key, or both.
  std::map<std::string_view, const Tensor*> by_name;
  std::optional<size_t> rows;
  for (const Tensor& t : request.inputs) {
    if (!by_name.emplace(t.name(), &t).second) {
      return InvalidArgument("input '" + t.name() + "' appears twice");
    }
    bool known = std::find(features_.begin(), features_.end(), t.name()) != features_.end();
    for (const auto& v : views_) {
      for (const auto& e : v.config.entities) known = known || e.join_key == t.name();
    }
    if (!known) {
      return InvalidArgument("unknown input '" + t.name() +
                             "': with feature views a request carries entity keys and model "
                             "features by name, or '" +
                             model_input_ + "' alone");
    }
    const auto n = ColumnRows(t);
    if (!n) {
      return InvalidArgument("input '" + t.name() + "' has shape " + ShapeToString(t.shape()) +
                             "; a column takes [n] or [n,1]");
    }
    if (rows && *rows != *n) {
      return InvalidArgument("input '" + t.name() + "' has " + std::to_string(*n) +
                             " rows; the inputs before it have " + std::to_string(*rows));
    }
    rows = *n;
  }
  b.rows = rows.value_or(1);  // no inputs: one row from entity keys in the parameters
  b.values.assign(b.rows * columns, kNaN);

  // The request's own columns; the rest wait for a view.
  std::vector<uint8_t>& from_request = b.provided;
  from_request.assign(columns, 0);
  for (size_t j = 0; j < columns; ++j) {
    auto it = by_name.find(features_[j]);
    if (it == by_name.end()) {
      if (column_view_[j] == kNone) {
        return InvalidArgument("model feature '" + features_[j] +
                               "' is not in the request and no feature view has it");
      }
      continue;
    }
    const Tensor& t = *it->second;
    if (!IsNumeric(t.datatype()) && t.datatype() != DataType::kBool) {
      return InvalidArgument("input '" + t.name() + "' has datatype " +
                             std::string(DataTypeName(t.datatype())) + "; model feature '" +
                             features_[j] + "' takes numbers (FP32, FP64, INT*, UINT*, BOOL)");
    }
    from_request[j] = 1;
    for (size_t r = 0; r < b.rows; ++r) {
      b.values[r * columns + j] = static_cast<float>(NumberAt(t, r));
    }
  }

  const bool has_params = request.parameters.is_object();
  for (size_t v = 0; v < views_.size(); ++v) {
    const View& view = views_[v];
    bool needed = false;
    for (const Field& f : view.fields) {
      if (from_request[f.column]) continue;
      needed = true;
      for (size_t r = 0; r < b.rows; ++r) b.values[r * columns + f.column] = f.fallback;
    }
    if (!needed) continue;
    // The entity values of every row, then the Redis keys.
    std::vector<std::vector<FeastValue>> parts;
    for (const auto& e : view.config.entities) {
      auto it = by_name.find(e.join_key);
      const Tensor* input = it == by_name.end() ? nullptr : it->second;
      if (input == nullptr && !(has_params && request.parameters.contains(e.join_key))) {
        return InvalidArgument("input '" + e.join_key + "' is required by feature view " +
                               view.config.name);
      }
      if (input != nullptr && input->datatype() == DataType::kBytes) {
        // Element count against the shape (the codec checked the buffer tiles).
        if (ByteElements(*input).size() != b.rows) {
          return InvalidArgument("input '" + input->name() + "' does not hold " +
                                 std::to_string(b.rows) + " elements");
        }
      }
      ASSIGN_OR_RETURN(auto values,
                       EntityValues(e, view.config.name, input, request.parameters, b.rows));
      parts.push_back(std::move(values));
    }
    std::vector<std::string> keys;
    keys.reserve(b.rows);
    std::vector<features::EntityKeyPart> key_parts(parts.size());
    for (size_t r = 0; r < b.rows; ++r) {
      for (size_t e = 0; e < parts.size(); ++e) {
        key_parts[e] = {view.config.entities[e].join_key, &parts[e][r]};
      }
      auto key = features::RedisKey(key_parts, view.config.project);
      if (!key.ok()) return key.status().Annotate("feature view " + view.config.name);
      keys.push_back(std::move(key).value());
    }
    b.fetch.push_back(v);
    b.keys.push_back(std::move(keys));
  }
  return b;
}

void FeaturePlan::AppendHmget(size_t v, std::string_view key, features::RedisCommand& out) const {
  const View& view = views_[v];
  out.reserve(out.size() + view.fields.size() + 3);
  out.emplace_back("HMGET");
  out.push_back(key);
  for (const Field& f : view.fields) out.push_back(f.hash_field);
  out.push_back(view.ts_field);
}

void FeaturePlan::Unfetched(size_t v, std::span<const uint8_t> provided,
                            FeatureCounts& counts) const {
  for (const Field& f : views_[v].fields) {
    if (!provided[f.column]) ++counts[static_cast<size_t>(FeatureResult::kUnfetched)];
  }
}

void FeaturePlan::Fill(size_t v, const RedisReply& reply, std::chrono::system_clock::time_point now,
                       std::span<const uint8_t> provided, std::span<float> row,
                       FeatureCounts& counts) const {
  const View& view = views_[v];
  const size_t k = view.fields.size();
  auto count = [&](FeatureResult r) { ++counts[static_cast<size_t>(r)]; };
  if (reply.kind != RedisReply::Kind::kArray || reply.elements.size() != k + 1) {
    // An error reply, or not what HMGET answers.
    for (const Field& f : view.fields) {
      if (!provided[f.column]) count(FeatureResult::kMalformed);
    }
    return;
  }
  // The row's timestamp decides freshness for all its values. Feast writes it with every row, so
  // values without one cannot be trusted.
  const RedisReply& ts = reply.elements[k];
  bool stale = false;
  bool bad_ts = false;
  if (ts.kind == RedisReply::Kind::kString) {
    auto nanos = features::DecodeTimestampNanos(ts.str);
    if (!nanos.ok()) {
      bad_ts = true;
    } else if (view.config.ttl.count() > 0) {
      const auto written = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::nanoseconds(*nanos)));
      stale = now - written > view.config.ttl;
    }
  } else if (ts.kind != RedisReply::Kind::kNil) {
    bad_ts = true;
  }
  for (size_t i = 0; i < k; ++i) {
    const Field& f = view.fields[i];
    if (provided[f.column]) continue;
    const RedisReply& e = reply.elements[i];
    if (e.kind == RedisReply::Kind::kNil) {
      count(FeatureResult::kMissing);
      continue;
    }
    if (e.kind != RedisReply::Kind::kString) {
      count(FeatureResult::kMalformed);
      continue;
    }
    auto value = features::DecodeValue(e.str);
    if (!value.ok() || (value->present && value->type != f.type)) {
      count(FeatureResult::kMalformed);
      continue;
    }
    if (!value->present) {
      count(FeatureResult::kMissing);
      continue;
    }
    if (bad_ts || ts.kind == RedisReply::Kind::kNil) {
      count(FeatureResult::kMalformed);
      continue;
    }
    if (stale) {
      count(FeatureResult::kStale);
      continue;
    }
    row[f.column] = value->AsFloat();
    count(FeatureResult::kHit);
  }
}

}  // namespace sluice::dataplane
