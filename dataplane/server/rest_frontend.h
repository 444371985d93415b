#pragma once

// The REST frontend of the Open Inference Protocol (V2) over InferenceService:
//   GET  /v2                                       server metadata
//   GET  /v2/health/live, /v2/health/ready         200, or 503 {"error": ...} when not ready
//   GET  /v2/models/{m}[/versions/{v}]             model metadata
//   GET  /v2/models/{m}[/versions/{v}]/ready       200, or 503 / 404
//   POST /v2/models/{m}[/versions/{v}]/infer       inference (JSON and binary tensor data)
// Errors are {"error": "..."}: 400 bad input, 404 unknown model or version, 503 not ready, queue
// full, timed out or shutting down, 500 otherwise (413/431/408 come from the HTTP server).

#include "lib/http/http_server.h"
#include "dataplane/server/inference_service.h"

namespace sluice::dataplane {

// Registers the routes on `router`. The service must outlive every request the router handles.
void RegisterV2Routes(HttpRouter& router, InferenceService& service);
// Only /v2/health/live and /v2/health/ready (part of RegisterV2Routes): for the plain admin port.
void RegisterHealthRoutes(HttpRouter& router, InferenceService& service);

// Splits "/v2/models/{m}[/versions/{v}][/ready|/infer]" (segments percent-decoded). Returns
// false when the path has another form.
struct ModelPath {
  std::string name;
  std::string version;
  std::string action;  // "", "ready" or "infer"
};
bool ParseModelPath(std::string_view path, ModelPath& out);

}  // namespace sluice::dataplane
