// The encoder: inference responses (JSON or binary tensors), server and model metadata, and the
// JSON and tensor writers the client side shares.

#include <charconv>
#include <cmath>
#include <cstring>

#include "dataplane/server/v2_codec.h"
#include "dataplane/server/v2_codec_internal.h"
#include "lib/base/json_escape.h"

namespace sluice::dataplane {

using json = nlohmann::json;
using namespace v2_internal;

namespace {

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendFloating(std::string& out, double v, bool single) {
  if (!std::isfinite(v)) {
    out += "null";  // JSON has no NaN or infinity; null reads back as NaN (a missing value)
    return;
  }
  if (v == 0 && std::signbit(v)) {
    out += "-0.0";  // "-0" would read back as the integer 0 and lose the sign
    return;
  }
  if (single) {
    AppendNumber(out, static_cast<float>(v));
  } else {
    AppendNumber(out, v);
  }
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

namespace v2_internal {

void AppendString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

}  // namespace v2_internal

namespace {

void AppendFlatData(std::string& out, const Tensor& t) {
  const auto bytes = t.bytes();
  const uint8_t* p = bytes.data();
  out += '[';
  if (t.datatype() == DataType::kBytes) {
    size_t pos = 0;
    bool first = true;
    while (pos + 4 <= bytes.size()) {
      const uint32_t len = Load<uint32_t>(p + pos);
      pos += 4;
      if (len > bytes.size() - pos) break;
      if (!first) out += ',';
      first = false;
      AppendString(out, std::string_view(reinterpret_cast<const char*>(p + pos), len));
      pos += len;
    }
    out += ']';
    return;
  }
  const size_t size = DataTypeSize(t.datatype());
  const size_t n = size ? bytes.size() / size : 0;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    const uint8_t* e = p + i * size;
    switch (t.datatype()) {
      case DataType::kBool:
        out += (*e ? "true" : "false");
        break;
      case DataType::kUint8:
        AppendNumber(out, Load<uint8_t>(e));
        break;
      case DataType::kUint16:
        AppendNumber(out, Load<uint16_t>(e));
        break;
      case DataType::kUint32:
        AppendNumber(out, Load<uint32_t>(e));
        break;
      case DataType::kUint64:
        AppendNumber(out, Load<uint64_t>(e));
        break;
      case DataType::kInt8:
        AppendNumber(out, Load<int8_t>(e));
        break;
      case DataType::kInt16:
        AppendNumber(out, Load<int16_t>(e));
        break;
      case DataType::kInt32:
        AppendNumber(out, Load<int32_t>(e));
        break;
      case DataType::kInt64:
        AppendNumber(out, Load<int64_t>(e));
        break;
      case DataType::kFp16:
        AppendFloating(out, HalfToFloat(Load<uint16_t>(e)), true);
        break;
      case DataType::kFp32:
        AppendFloating(out, Load<float>(e), true);
        break;
      case DataType::kFp64:
        AppendFloating(out, Load<double>(e), false);
        break;
      default:
        break;
    }
  }
  out += ']';
}

}  // namespace

namespace v2_internal {

void AppendParameters(std::string& out, const json& params) {
  out += params.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Writes one tensor object; raw bytes go to `binary` when `as_binary`.
void AppendTensor(std::string& out, std::string& binary, const Tensor& t, bool as_binary,
                  const json* extra_params) {
  out += "{\"name\":";
  AppendString(out, t.name());
  out += ",\"datatype\":\"";
  out += DataTypeName(t.datatype());
  out += "\",\"shape\":[";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) out += ',';
    AppendNumber(out, t.shape()[i]);
  }
  out += ']';
  if (as_binary) {
    const auto bytes = t.bytes();
    out += ",\"parameters\":{\"binary_data_size\":";
    AppendNumber(out, bytes.size());
    out += '}';
    binary.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    if (extra_params && extra_params->is_object() && !extra_params->empty()) {
      out += ",\"parameters\":";
      AppendParameters(out, *extra_params);
    }
    out += ",\"data\":";
    AppendFlatData(out, t);
  }
  out += '}';
}

EncodedBody Finish(std::string&& json_part, std::string&& binary) {
  EncodedBody e;
  e.json_length = json_part.size();
  e.body = std::move(json_part);
  e.body += binary;
  return e;
}

}  // namespace v2_internal

OutputEncoding OutputEncoding::ForRequest(const InferRequest& request) {
  OutputEncoding e;
  e.binary_all = request.binary_data_output;
  for (const auto& o : request.outputs) {
    if (o.binary_data) e.binary_names.push_back(o.name);
  }
  return e;
}

bool OutputEncoding::IsBinary(std::string_view name) const {
  if (binary_all) return true;
  for (const auto& n : binary_names) {
    if (n == name) return true;
  }
  return false;
}

EncodedBody EncodeInferResponse(const InferResponse& response, const OutputEncoding& encoding) {
  std::string out;
  std::string binary;
  out.reserve(128 + response.outputs.size() * 64);
  out += "{\"model_name\":";
  AppendString(out, response.model_name);
  if (!response.model_version.empty()) {
    out += ",\"model_version\":";
    AppendString(out, response.model_version);
  }
  if (!response.id.empty()) {
    out += ",\"id\":";
    AppendString(out, response.id);
  }
  if (response.parameters.is_object() && !response.parameters.empty()) {
    out += ",\"parameters\":";
    AppendParameters(out, response.parameters);
  }
  out += ",\"outputs\":[";
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    if (i) out += ',';
    const Tensor& t = response.outputs[i];
    AppendTensor(out, binary, t, encoding.IsBinary(t.name()), nullptr);
  }
  out += "]}";
  return Finish(std::move(out), std::move(binary));
}

namespace {

json TensorMetadataJson(const TensorMetadata& t) {
  return json{{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}};
}

}  // namespace

std::string EncodeServerMetadata(std::string_view name, std::string_view version,
                                 const std::vector<std::string>& extensions) {
  json j{{"name", name}, {"version", version}, {"extensions", extensions}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeModelMetadata(const ModelMetadata& metadata,
                                const std::vector<std::string>& versions) {
  json inputs = json::array();
  for (const auto& t : metadata.inputs) inputs.push_back(TensorMetadataJson(t));
  json outputs = json::array();
  for (const auto& t : metadata.outputs) outputs.push_back(TensorMetadataJson(t));
  json j{{"name", metadata.name},
         {"versions", versions},
         {"platform", metadata.platform},
         {"inputs", std::move(inputs)},
         {"outputs", std::move(outputs)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice::dataplane
