#pragma once

// The REST encoding of the Open Inference Protocol (V2): JSON request and response bodies and the
// binary tensor data extension (Inference-Header-Content-Length; per-tensor binary_data_size).
//
// Parsing takes input from outside: it never throws, never crashes and bounds its memory by the
// body size; every malformed body is an InvalidArgument that says what is wrong. Tensor `data`
// may be flat or nested; nesting is checked against the shape. Integers are range-checked for
// their datatype, FP16/FP32 values for their range. In floating-point data, null is NaN (a
// missing value, which JSON cannot spell otherwise); encoding writes NaN and infinities as null.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"
#include "dataplane/runtime/runtime.h"
#include "dataplane/server/inference.h"

namespace sluice::dataplane {

inline constexpr char kInferenceHeaderContentLength[] = "Inference-Header-Content-Length";

// The value of the Inference-Header-Content-Length header: nullopt when the header is absent
// (empty value); InvalidArgument when it is not a decimal number no larger than the body.
Result<std::optional<size_t>> ParseInferenceHeaderLength(std::string_view value, size_t body_size);

// The fast path ParseInferRequest tries first on JSON-only bodies: FP32 tensors with flat data,
// plain string names and id, nothing else (the common online request). nullopt for any other
// body, which the general parser then reads (and reports errors for); where both accept a body
// they produce the same request. Exposed so the fuzzer can check that equivalence.
std::optional<InferRequest> ParseCommonInferRequest(std::string_view json);

// Parses a request body. `json_length` (from Inference-Header-Content-Length) splits the body into
// the JSON header and the binary tensor section; nullopt means the whole body is JSON. Binary input
// tensors view `body`, which must outlive the returned request. model_name/model_version are left
// empty (they come from the URL).
Result<InferRequest> ParseInferRequest(std::string_view body, std::optional<size_t> json_length);

// Which outputs a response carries as raw bytes after the JSON.
struct OutputEncoding {
  bool binary_all = false;
  std::vector<std::string> binary_names;

  static OutputEncoding ForRequest(const InferRequest& request);
  bool IsBinary(std::string_view name) const;
};

struct EncodedBody {
  std::string body;
  // Length of the JSON part; equals body.size() when nothing binary follows.
  size_t json_length = 0;
  bool has_binary() const { return json_length != body.size(); }
};

EncodedBody EncodeInferResponse(const InferResponse& response, const OutputEncoding& encoding);

// Client side of the same encoding (load generators, tests, the fuzzers' round trips): inputs are
// written as flat JSON data, or as binary data when `binary_inputs`.
EncodedBody EncodeInferRequest(const InferRequest& request, bool binary_inputs);

// Parses a response body (client side); output tensors own their bytes.
Result<InferResponse> ParseInferResponse(std::string_view body, std::optional<size_t> json_length);

std::string EncodeServerMetadata(std::string_view name, std::string_view version,
                                 const std::vector<std::string>& extensions);
std::string EncodeModelMetadata(const ModelMetadata& metadata,
                                const std::vector<std::string>& versions);

}  // namespace sluice::dataplane
