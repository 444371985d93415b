#include "dataplane/runtime/reference.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace sluice::dataplane {
namespace {

using nlohmann::json;

std::string FormatFloat(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

Status ReadMatrix(const json& doc, const char* key, bool allow_null, bool allow_flat,
                  std::vector<float>* out, size_t* rows, size_t* cols) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_array()) {
    return InvalidArgument(std::string("reference: \"") + key + "\" must be an array");
  }
  *rows = it->size();
  *cols = 0;
  out->clear();
  for (size_t r = 0; r < it->size(); ++r) {
    const json& row = (*it)[r];
    const bool flat = !row.is_array();
    if (flat && !allow_flat) {
      return InvalidArgument(std::string("reference: ") + key + "[" + std::to_string(r) +
                             "] must be an array");
    }
    const size_t n = flat ? 1 : row.size();
    if (r == 0) {
      *cols = n;
    } else if (n != *cols) {
      return InvalidArgument(std::string("reference: ") + key + "[" + std::to_string(r) + "] has " +
                             std::to_string(n) + " values, row 0 has " + std::to_string(*cols));
    }
    for (size_t c = 0; c < n; ++c) {
      const json& v = flat ? row : row[c];
      if (v.is_number()) {
        out->push_back(static_cast<float>(v.get<double>()));
      } else if (v.is_null() && allow_null) {
        out->push_back(std::numeric_limits<float>::quiet_NaN());
      } else {
        return InvalidArgument(std::string("reference: ") + key + "[" + std::to_string(r) + "][" +
                               std::to_string(c) + "] is not a number");
      }
    }
  }
  return Status::Ok();
}

Result<ReferenceSet> ParseImpl(std::string_view bytes) {
  json doc;
  try {
    doc = json::parse(bytes.begin(), bytes.end());
  } catch (const json::parse_error& e) {
    return InvalidArgument(std::string("reference: invalid JSON: ") + e.what());
  }
  if (!doc.is_object()) return InvalidArgument("reference: expected a JSON object");
  ReferenceSet ref;
  size_t in_rows = 0;
  size_t out_rows = 0;
  RETURN_IF_ERROR(ReadMatrix(doc, "inputs", /*allow_null=*/true, /*allow_flat=*/false, &ref.inputs,
                             &in_rows, &ref.num_features));
  RETURN_IF_ERROR(ReadMatrix(doc, "outputs", /*allow_null=*/false, /*allow_flat=*/true,
                             &ref.outputs, &out_rows, &ref.num_outputs));
  if (in_rows == 0) return InvalidArgument("reference: no rows");
  if (in_rows != out_rows) {
    return InvalidArgument("reference: " + std::to_string(in_rows) + " input rows but " +
                           std::to_string(out_rows) + " output rows");
  }
  ref.num_rows = in_rows;
  for (const char* key : {"tolerance", "relative_tolerance"}) {
    auto it = doc.find(key);
    if (it == doc.end()) continue;
    if (!it->is_number() || !(it->get<double>() >= 0.0)) {
      return InvalidArgument(std::string("reference: \"") + key +
                             "\" must be a non-negative number");
    }
    (std::string_view(key) == "tolerance" ? ref.tolerance : ref.relative_tolerance) =
        it->get<double>();
  }
  return ref;
}

}  // namespace

Result<ReferenceSet> ParseReference(std::string_view bytes) {
  try {
    return ParseImpl(bytes);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("reference: ") + e.what());
  }
}

Status CheckReference(const Runtime& runtime, const ReferenceSet& ref) {
  if (ref.num_features != runtime.num_features()) {
    return FailedPrecondition("reference inputs have " + std::to_string(ref.num_features) +
                              " features, the model has " + std::to_string(runtime.num_features()));
  }
  if (ref.num_outputs != runtime.num_outputs()) {
    return FailedPrecondition("reference outputs have " + std::to_string(ref.num_outputs) +
                              " values per row, the model gives " +
                              std::to_string(runtime.num_outputs()));
  }
  std::vector<float> got(ref.num_rows * ref.num_outputs);
  RETURN_IF_ERROR(runtime.Predict(ref.inputs, ref.num_rows, got).Annotate("reference check"));
  for (size_t r = 0; r < ref.num_rows; ++r) {
    for (size_t o = 0; o < ref.num_outputs; ++o) {
      const double want = ref.outputs[r * ref.num_outputs + o];
      const double have = got[r * ref.num_outputs + o];
      const double limit = ref.tolerance + ref.relative_tolerance * std::fabs(want);
      const double diff = std::fabs(want - have);
      if (!(diff <= limit)) {
        return FailedPrecondition("model does not reproduce its reference predictions: row " +
                                  std::to_string(r) + " output " + std::to_string(o) +
                                  ": expected " + FormatFloat(want) + ", got " + FormatFloat(have) +
                                  " (|diff| " + FormatFloat(diff) + " > tolerance " +
                                  FormatFloat(limit) + ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace sluice::dataplane
