// The client side of the codec, for the router, tests, benchmarks and fuzzers: inference
// requests encoded (JSON or binary inputs) and responses decoded.

#include "dataplane/server/v2_codec.h"
#include "dataplane/server/v2_codec_internal.h"

namespace sluice::dataplane {

using json = nlohmann::json;
using namespace v2_internal;

Result<InferResponse> ParseInferResponse(std::string_view body, std::optional<size_t> json_length) {
  InferResponse res;
  RETURN_IF_ERROR(ParseDocument(DocKind::kResponse, body, json_length, res.id, res.parameters,
                                res.outputs, nullptr, &res.model_name, &res.model_version,
                                /*copy_binary=*/true));
  return res;
}

EncodedBody EncodeInferRequest(const InferRequest& request, bool binary_inputs) {
  std::string out;
  std::string binary;
  out += '{';
  if (!request.id.empty()) {
    out += "\"id\":";
    AppendString(out, request.id);
    out += ',';
  }
  // An empty `parameters` object is kept: a request re-encoded (mirrored, forwarded) must parse
  // back to the same request.
  json params = request.parameters.is_object() ? request.parameters : json::object();
  if (request.binary_data_output) params["binary_data_output"] = true;
  if (request.parameters.is_object() || !params.empty()) {
    out += "\"parameters\":";
    AppendParameters(out, params);
    out += ',';
  }
  out += "\"inputs\":[";
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    if (i) out += ',';
    AppendTensor(out, binary, request.inputs[i], binary_inputs, nullptr);
  }
  out += ']';
  if (!request.outputs.empty()) {
    out += ",\"outputs\":[";
    for (size_t i = 0; i < request.outputs.size(); ++i) {
      if (i) out += ',';
      const auto& o = request.outputs[i];
      json p = o.parameters.is_object() ? o.parameters : json::object();
      if (o.binary_data) p["binary_data"] = true;
      out += "{\"name\":";
      AppendString(out, o.name);
      if (!p.empty()) {
        out += ",\"parameters\":";
        AppendParameters(out, p);
      }
      out += '}';
    }
    out += ']';
  }
  out += '}';
  return Finish(std::move(out), std::move(binary));
}

}  // namespace sluice::dataplane
