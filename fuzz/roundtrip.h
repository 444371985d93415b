#pragma once

// The property both V2 fuzzers check: a body the parser accepts must re-encode (as JSON data and
// as binary data) into a body that parses back to the same request. A crash, a sanitizer report
// or a broken round trip aborts the run.

#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <span>
#include <cstring>
#include <string_view>

#include "lib/base/json_escape.h"
#include "dataplane/server/v2_codec.h"

namespace sluice::fuzz {

inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "round trip broken: %s\n", what);
    std::abort();
  }
}

inline bool SameTensor(const dataplane::Tensor& a, const dataplane::Tensor& b) {
  const auto x = a.bytes();
  const auto y = b.bytes();
  return a.name() == b.name() && a.datatype() == b.datatype() && a.shape() == b.shape() &&
         std::equal(x.begin(), x.end(), y.begin(), y.end());
}

template <typename T>
bool AllFinite(std::span<const uint8_t> b) {
  for (size_t i = 0; i + sizeof(T) <= b.size(); i += sizeof(T)) {
    T v;
    std::memcpy(&v, b.data() + i, sizeof(T));
    if (!std::isfinite(static_cast<double>(v))) return false;
  }
  return true;
}

// JSON carries BYTES elements exactly only when they are UTF-8 (binary inputs need not be), and
// floats only when finite (NaN and infinities are written as null and read back as a plain NaN);
// for other tensors only the binary encoding must round-trip the bytes.
inline bool JsonLossless(const std::vector<dataplane::Tensor>& tensors) {
  for (const auto& t : tensors) {
    if (t.datatype() == dataplane::DataType::kFp32 && !AllFinite<float>(t.bytes())) return false;
    if (t.datatype() == dataplane::DataType::kFp64 && !AllFinite<double>(t.bytes())) return false;
    if (t.datatype() == dataplane::DataType::kFp16) {
      const auto b = t.bytes();
      for (size_t i = 0; i + 2 <= b.size(); i += 2) {
        if ((b[i + 1] & 0x7c) == 0x7c) return false;  // exponent all ones: inf or NaN
      }
    }
    if (t.datatype() != dataplane::DataType::kBytes) continue;
    const auto b = t.bytes();
    for (size_t pos = 0; pos + 4 <= b.size();) {
      uint32_t len;
      std::memcpy(&len, b.data() + pos, 4);
      pos += 4;
      if (!IsValidUtf8(std::string_view(reinterpret_cast<const char*>(b.data()) + pos, len))) {
        return false;
      }
      pos += len;
    }
  }
  return true;
}

inline void CheckSameRequest(const dataplane::InferRequest& a, const dataplane::InferRequest& b) {
  Check(a.id == b.id, "id differs");
  Check(a.parameters == b.parameters, "parameters differ");
  Check(a.inputs.size() == b.inputs.size(), "input count differs");
  for (size_t i = 0; i < a.inputs.size(); ++i) Check(SameTensor(a.inputs[i], b.inputs[i]), "input differs");
  Check(a.outputs.size() == b.outputs.size(), "output count differs");
}

inline void CheckRequestRoundTrip(const dataplane::InferRequest& req) {
  for (const auto& t : req.inputs) Check(t.Validate().ok(), "accepted tensor does not validate");
  const bool lossless = JsonLossless(req.inputs);
  for (bool binary : {false, true}) {
    const auto enc = dataplane::EncodeInferRequest(req, binary);
    auto again = dataplane::ParseInferRequest(enc.body, enc.json_length);
    if (!again.ok()) {
      std::fprintf(stderr, "re-parse failed: %s\nbody: %s\n", again.status().ToString().c_str(),
                   enc.body.substr(0, enc.json_length).c_str());
      std::abort();
    }
    Check(again->id == req.id, "id");
    Check(again->parameters == req.parameters, "parameters");
    Check(again->binary_data_output == req.binary_data_output, "binary_data_output");
    Check(again->inputs.size() == req.inputs.size(), "input count");
    for (size_t i = 0; i < req.inputs.size(); ++i) {
      if (binary || lossless) Check(SameTensor(again->inputs[i], req.inputs[i]), "input tensor");
    }
    Check(again->outputs.size() == req.outputs.size(), "output count");
    for (size_t i = 0; i < req.outputs.size(); ++i) {
      Check(again->outputs[i].name == req.outputs[i].name, "output name");
      Check(again->outputs[i].binary_data == req.outputs[i].binary_data, "output binary flag");
    }
  }
}

// Responses share the tensor code with requests: encode the inputs as response outputs and parse
// them back through the client-side parser.
inline void CheckResponseRoundTrip(const dataplane::InferRequest& req) {
  dataplane::InferResponse res;
  res.model_name = "m";
  res.id = req.id;
  res.outputs = req.inputs;
  const bool lossless = JsonLossless(res.outputs);
  for (bool binary : {false, true}) {
    dataplane::OutputEncoding enc;
    enc.binary_all = binary;
    const auto body = dataplane::EncodeInferResponse(res, enc);
    auto again = dataplane::ParseInferResponse(body.body, body.json_length);
    Check(again.ok(), "response re-parse");
    Check(again->outputs.size() == res.outputs.size(), "response output count");
    for (size_t i = 0; i < res.outputs.size(); ++i) {
      if (binary || lossless) Check(SameTensor(again->outputs[i], res.outputs[i]), "response tensor");
    }
  }
}

}  // namespace sluice::fuzz
