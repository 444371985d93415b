#pragma once

// The gRPC encoding of the Open Inference Protocol (grpc_predict_v2.proto) to and from the
// transport-independent InferRequest / InferResponse, and the core's Status as a gRPC status.
//
// Decoding takes input from outside: it never throws and never crashes, and every malformed
// message is an InvalidArgument that names the tensor and says what is wrong.

#include <grpcpp/support/status.h>

#include <nlohmann/json.hpp>

#include "lib/base/status.h"
#include "dataplane/grpc/grpc_predict_v2.pb.h"
#include "dataplane/runtime/runtime.h"
#include "dataplane/server/inference.h"

namespace sluice::dataplane {

using GrpcParameters = google::protobuf::Map<std::string, inference::InferParameter>;

// Builds the core request from `message`. Input tensors view the message's memory wherever its
// layout already is the core's (every raw_input_contents entry; typed BOOL, INT32, INT64, UINT32,
// UINT64, FP32 and FP64 contents), so `message` must outlive the request and anything that reads
// its tensors. INT8, INT16, UINT8, UINT16 (carried widened) and BYTES are converted into owned
// bytes, with a range check. Every input is checked against its datatype and shape.
// model_name and model_version are copied; the caller resolves them.
Result<InferRequest> FromGrpcRequest(const inference::ModelInferRequest& message);

// Whether a response to `request` carries raw_output_contents: when the request used
// raw_input_contents, or when an output has a datatype with no typed field (FP16).
bool AnswerRaw(const inference::ModelInferRequest& request, const InferResponse& response);

// Fills `out` from the core's answer to `request`: the request's id; the request's parameters
// echoed, overlaid by the response's; the requested outputs in the order asked (all outputs, in
// the model's order, when none were named); raw or typed contents as AnswerRaw says. Output
// bytes are moved into raw_output_contents without a copy. Internal when the response lacks a
// requested output or holds a malformed tensor.
Status ToGrpcResponse(InferResponse&& response, const inference::ModelInferRequest& request,
                      inference::ModelInferResponse& out);

// Model metadata as ModelMetadataResponse; `name` is the name the model is served under.
void ToGrpcMetadata(const ModelMetadata& metadata, const std::string& name,
                    const std::vector<std::string>& versions,
                    inference::ModelMetadataResponse& out);

// Parameters as JSON (the core's form): bool, int64, uint64, double and string values; a
// parameter with no value set becomes null. An empty map is null, as an absent REST field is.
nlohmann::json ParametersToJson(const GrpcParameters& parameters);
// JSON object members as parameters, replacing same-named entries in `out`. Scalars map to their
// typed field; arrays, objects and null are carried as their JSON text in string_param.
void JsonToParameters(const nlohmann::json& object, GrpcParameters& out);

// INVALID_ARGUMENT (bad input), NOT_FOUND (unknown model or version), UNAVAILABLE (model not
// ready, shutting down), RESOURCE_EXHAUSTED (queue full), DEADLINE_EXCEEDED (queued too long),
// UNIMPLEMENTED, INTERNAL for the rest.
grpc::StatusCode GrpcCodeFor(StatusCode code);
grpc::Status ToGrpcStatus(const Status& status);

}  // namespace sluice::dataplane
