#include "dataplane/server/rest_frontend.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "dataplane/server/v2_codec.h"

namespace sluice::dataplane {

namespace {

constexpr std::string_view kModelsPrefix = "/v2/models/";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return !out.empty();
}

std::string_view PathOf(const HttpRequest& req) {
  std::string_view target = req.target();
  return target.substr(0, target.find('?'));
}

void SendStatus(Responder& responder, const Status& status) {
  responder.SendError(static_cast<HttpStatus>(HttpStatusFor(status)), status.message());
}

// Everything an inference needs after the service answers.
struct InferCall {
  Responder responder;
  OutputEncoding encoding;
  ServerMetrics::Model* metrics;
  std::chrono::steady_clock::time_point start;

  void Answer(Result<InferResponse>&& result) {
    HttpResponse res;
    if (!result.ok()) {
      res.result(static_cast<HttpStatus>(HttpStatusFor(result.status())));
      res.set(boost::beast::http::field::content_type, "application/json");
      res.body() = JsonErrorBody(result.status().message());
    } else {
      EncodedBody encoded = EncodeInferResponse(*result, encoding);
      res.result(HttpStatus::ok);
      if (encoded.has_binary()) {
        res.set(boost::beast::http::field::content_type, "application/octet-stream");
        res.set(kInferenceHeaderContentLength, std::to_string(encoded.json_length));
      } else {
        res.set(boost::beast::http::field::content_type, "application/json");
      }
      res.body() = std::move(encoded.body);
    }
    // Count before answering: a client that reads /metrics right after its answer sees itself.
    metrics->Requests(res.result_int()).Increment();
    metrics->request_duration->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    metrics->inflight->Decrement();
    responder.Send(std::move(res));
  }
};

void HandleInfer(InferenceService& service, const ModelPath& path, const HttpRequest& req,
                 Responder responder) {
  auto found = service.FindModel(path.name, path.version);
  if (!found.ok()) {
    service.metrics().Unknown().Requests(404).Increment();
    SendStatus(responder, found.status());
    return;
  }
  Model& model = **found;
  auto call = std::make_shared<InferCall>(
      InferCall{std::move(responder), {}, &model.metrics(), std::chrono::steady_clock::now()});
  call->metrics->inflight->Increment();

  const std::string_view body = req.body();
  auto json_length = ParseInferenceHeaderLength(req[kInferenceHeaderContentLength], body.size());
  if (!json_length.ok()) {
    call->Answer(json_length.status());
    return;
  }
  auto request = ParseInferRequest(body, *json_length);
  if (!request.ok()) {
    SPDLOG_LOGGER_DEBUG(spdlog::default_logger_raw(), "model={} version={} bad request: {}",
                        model.name(), model.version(), request.status().message());
    call->Answer(request.status());
    return;
  }
  request->model_name = model.name();
  request->model_version = model.version();
  call->encoding = OutputEncoding::ForRequest(*request);
  service.Infer(model, std::move(request).value(),
                [call](Result<InferResponse> result) { call->Answer(std::move(result)); });
}

void HandleModelGet(InferenceService& service, const ModelPath& path, Responder responder) {
  auto found = service.FindModel(path.name, path.version);
  if (!found.ok()) {
    SendStatus(responder, found.status());
    return;
  }
  Model& model = **found;
  if (path.action == "ready") {
    if (model.ready() && !service.draining()) {
      responder.SendBody(HttpStatus::ok, "application/json", "");
    } else {
      responder.SendError(HttpStatus::service_unavailable,
                          "model '" + model.name() + "' version " + model.version() +
                              (service.draining() ? " is draining" : " is not ready"));
    }
    return;
  }
  const ModelMetadata* md = model.metadata();
  if (md == nullptr) {
    responder.SendError(HttpStatus::service_unavailable,
                        "model '" + model.name() + "' version " + model.version() +
                            " is still loading");
    return;
  }
  ModelMetadata shown = *md;
  shown.name = model.name();
  responder.SendJson(HttpStatus::ok, EncodeModelMetadata(shown, service.Versions(model.name())));
}

}  // namespace

bool ParseModelPath(std::string_view path, ModelPath& out) {
  if (path.substr(0, kModelsPrefix.size()) != kModelsPrefix) return false;
  path.remove_prefix(kModelsPrefix.size());
  std::vector<std::string_view> seg;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    seg.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) return false;  // trailing slash
  }
  out = ModelPath{};
  if (seg.empty() || !PercentDecode(seg[0], out.name)) return false;
  size_t i = 1;
  if (seg.size() >= 3 && seg[1] == "versions") {
    if (!PercentDecode(seg[2], out.version)) return false;
    i = 3;
  }
  if (i == seg.size()) return true;
  if (i + 1 == seg.size() && (seg[i] == "ready" || seg[i] == "infer")) {
    out.action = std::string(seg[i]);
    return true;
  }
  return false;
}

void RegisterHealthRoutes(HttpRouter& router, InferenceService& service) {
  router.Handle(HttpVerb::get, "/v2/health/live", [](const HttpRequest&, Responder r) {
    r.SendBody(HttpStatus::ok, "application/json", "");
  });
  router.Handle(HttpVerb::get, "/v2/health/ready", [&service](const HttpRequest&, Responder r) {
    if (service.ready()) {
      r.SendBody(HttpStatus::ok, "application/json", "");
    } else {
      r.SendError(HttpStatus::service_unavailable,
                  service.draining() ? "server is draining" : "models are not ready");
    }
  });
}

void RegisterV2Routes(HttpRouter& router, InferenceService& service) {
  RegisterHealthRoutes(router, service);
  router.Handle(HttpVerb::get, "/v2", [&service](const HttpRequest&, Responder r) {
    r.SendJson(HttpStatus::ok,
               EncodeServerMetadata(service.options().server_name,
                                    service.options().server_version, {"binary_tensor_data"}));
  });
  router.HandlePrefix(HttpVerb::get, std::string(kModelsPrefix),
                      [&service](const HttpRequest& req, Responder r) {
                        ModelPath p;
                        if (!ParseModelPath(PathOf(req), p) || p.action == "infer") {
                          r.SendError(HttpStatus::not_found,
                                      "no route for GET " + std::string(PathOf(req)));
                          return;
                        }
                        HandleModelGet(service, p, std::move(r));
                      });
  router.HandlePrefix(HttpVerb::post, std::string(kModelsPrefix),
                      [&service](const HttpRequest& req, Responder r) {
                        ModelPath p;
                        if (!ParseModelPath(PathOf(req), p) || p.action != "infer") {
                          r.SendError(HttpStatus::not_found,
                                      "no route for POST " + std::string(PathOf(req)));
                          return;
                        }
                        HandleInfer(service, p, req, std::move(r));
                      });
}

}  // namespace sluice::dataplane
