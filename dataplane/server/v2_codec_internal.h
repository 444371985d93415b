#pragma once

// Internals of the V2 codec shared by its translation units; not part of its interface (include
// "dataplane/server/v2_codec.h"):
//   v2_data_decoder.h  a tensor's `data` straight into tensor bytes (DataDecoder)
//   v2_parser.cpp      the streaming (SAX) parser of whole documents, and ParseInferRequest
//   v2_fast_path.cpp   the allocation-light parser of the common request shape
//   v2_encoder.cpp     responses and metadata, and the JSON/tensor writers below
//   v2_client.cpp      the client side: request encoding and response decoding

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/server/v2_codec.h"
#include "lib/base/status.h"

namespace sluice::dataplane::v2_internal {

inline constexpr size_t kMaxParameterDepth = 32;
inline constexpr size_t kMaxTensors = 4096;

// One JSON scalar as the SAX parser reports it.
struct Scalar {
  enum Kind { kNull, kBool, kInt, kUint, kFloat, kString };
  explicit Scalar(Kind k) : kind(k) {}
  Kind kind;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string s;
};

// "a boolean", "an integer", ...: what a message says was found instead.
std::string ScalarKindName(Scalar::Kind k);
nlohmann::json ScalarToJson(Scalar&& v);

template <typename T>
void AppendPod(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

// Which document the parser reads: a request (inputs + requested outputs) or a response (outputs).
enum class DocKind { kRequest, kResponse };

// Splits the body, runs the SAX parser, then attaches binary tensors in order.
Status ParseDocument(DocKind kind, std::string_view body, std::optional<size_t> json_length,
                     std::string& id, nlohmann::json& parameters, std::vector<Tensor>& tensors,
                     std::vector<RequestedOutput>* requested, std::string* model_name,
                     std::string* model_version, bool copy_binary);

// --- encoding ---

void AppendString(std::string& out, std::string_view s);
void AppendParameters(std::string& out, const nlohmann::json& params);
// Writes one tensor object; raw bytes go to `binary` when `as_binary`.
void AppendTensor(std::string& out, std::string& binary, const Tensor& t, bool as_binary,
                  const nlohmann::json* extra_params);
EncodedBody Finish(std::string&& json_part, std::string&& binary);

}  // namespace sluice::dataplane::v2_internal
