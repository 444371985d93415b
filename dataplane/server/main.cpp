// sluice-server: one model over the Open Inference Protocol (V2): the REST API, and the gRPC API
// when --grpc-port is set.
//
// Start-up: listen first (liveness answers while the model loads), load, warm up, then report
// ready. SIGTERM or SIGINT: report not ready, keep serving for --drain-grace-ms while the endpoint
// is taken out of rotation, stop accepting, let in-flight requests finish within
// --drain-timeout-ms, exit 0. A second signal skips what is left of the grace period.

#include <fmt/format.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "dataplane/grpc/grpc_address.h"
#include "dataplane/grpc/grpc_frontend.h"
#include "dataplane/runtime/mlflow_model.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/model_source.h"
#include "dataplane/runtime/model_store.h"
#include "dataplane/server/inference_service.h"
#include "dataplane/server/rest_frontend.h"
#include "dataplane/server/server_flags.h"
#include "lib/api/metric_names.h"
#include "lib/base/logging.h"
#include "lib/base/port_file.h"
#include "lib/base/signals.h"
#include "lib/base/version.h"
#include "lib/http/http_server.h"
#include "lib/http/metrics_exposition.h"
#include "lib/http/tls.h"

namespace sluice::dataplane {
namespace {

int Run(const ServerFlags& flags, StopSignalWatch& signals) {
  auto registry = std::make_shared<prometheus::Registry>();
  InferenceServiceOptions service_options;
  service_options.server_version = std::string(ProjectVersion());
  service_options.faults = flags.ToFaultOptions();
  if (service_options.faults.enabled()) {
    spdlog::warn(
        "FAULT INJECTION IS ON: {} on every inference request (--fault-error-percent, "
        "--fault-delay-ms, ${}, ${}); this server is for tests only",
        service_options.faults.ToString(), kFaultErrorPercentEnv, kFaultDelayMsEnv);
  }
  auto service_or = InferenceService::Create(service_options, registry, Clock::Real());
  if (!service_or.ok()) {
    spdlog::error("cannot create the inference service: {}", service_or.status().ToString());
    return 1;
  }
  std::unique_ptr<InferenceService> service = std::move(service_or).value();

  ModelOptions model_options = flags.ToModelOptions();
  if (model_options.name.empty()) model_options.name = UriStem(flags.model_uri);
  auto model_or = service->AddModel(model_options);
  if (!model_or.ok()) {
    spdlog::error("{}", model_or.status().ToString());
    return 1;
  }
  Model& model = **model_or;
  auto log = IdentityLogger("model=" + model.name() + " version=" + model.version());

  auto router = std::make_shared<HttpRouter>();
  RegisterV2Routes(*router, *service);
  AddMetricsRoute(*router, registry);
  HttpServerOptions http_options = flags.ToHttpOptions();
  std::shared_ptr<ReloadingTlsContext> tls;
  if (flags.tls()) {
    auto tls_or = StartServingTls(
        {flags.tls_cert_file, flags.tls_key_file, flags.tls_client_ca_file},
        std::chrono::seconds(2), *registry, api::kServerTlsReloadsTotal,
        "model=" + model.name() + " version=" + model.version());
    if (!tls_or.ok()) {
      spdlog::error("{}", tls_or.status().ToString());
      return 1;
    }
    tls = std::move(tls_or).value();
    http_options.tls = tls;
  }
  auto server_or = HttpServer::Create(http_options, router);
  if (!server_or.ok()) {
    spdlog::error("{}", server_or.status().ToString());
    return 1;
  }
  std::unique_ptr<HttpServer> server = std::move(server_or).value();
  spdlog::info("listening on {}:{} ({}, {} io threads)", flags.http_address, server->port(),
               flags.tls() ? "HTTPS" : "HTTP",
               flags.io_threads > 0 ? flags.io_threads
                                    : static_cast<int>(std::thread::hardware_concurrency()));
  // Metrics and health in plain HTTP for scrapers that speak no TLS; one io thread is plenty.
  std::unique_ptr<HttpServer> admin;
  if (flags.admin_port != 0) {
    auto admin_router = std::make_shared<HttpRouter>();
    RegisterHealthRoutes(*admin_router, *service);
    AddMetricsRoute(*admin_router, registry);
    HttpServerOptions admin_options = flags.ToHttpOptions();
    admin_options.port = static_cast<uint16_t>(flags.admin_port);
    admin_options.io_threads = 1;
    auto admin_or = HttpServer::Create(admin_options, admin_router);
    if (!admin_or.ok()) {
      spdlog::error("admin port: {}", admin_or.status().ToString());
      return 1;
    }
    admin = std::move(admin_or).value();
    spdlog::info("listening on {}:{} (HTTP: /metrics and health only)", flags.http_address,
                 admin->port());
  }
  std::unique_ptr<GrpcFrontend> grpc;
  if (flags.grpc_port != 0) {
    GrpcFrontendOptions grpc_options;
    grpc_options.address = flags.http_address;
    grpc_options.port = flags.grpc_port;
    grpc_options.max_message_bytes = std::min<int64_t>(flags.max_body_bytes, INT32_MAX);
    // As long as an idle HTTP connection may still send one last request while draining.
    grpc_options.refuse_period = std::chrono::milliseconds(flags.drain_idle_timeout_ms);
    if (flags.tls()) {
      auto creds = MakeGrpcServerCredentials(
          {flags.tls_cert_file, flags.tls_key_file, flags.tls_client_ca_file, 2});
      if (!creds.ok()) {
        spdlog::error("{}", creds.status().ToString());
        return 1;
      }
      grpc_options.credentials = std::move(creds).value();
    }
    auto grpc_or = GrpcFrontend::Create(grpc_options, *service);
    if (!grpc_or.ok()) {
      spdlog::error("{}", grpc_or.status().ToString());
      return 1;
    }
    grpc = std::move(grpc_or).value();
    spdlog::info("listening on {}:{} (gRPC{})", flags.http_address, grpc->port(),
                 flags.tls() ? " over TLS" : "");
  }
  if (!flags.port_file.empty()) {
    if (Status s = WritePortFile(flags.port_file, server->port()); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
  }

  const prometheus::Labels model_labels = {{"model", model.name()}, {"version", model.version()}};
  auto gauge = [&](const char* name, const char* help) -> prometheus::Gauge& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry).Add(model_labels);
  };
  prometheus::Gauge& fetch_seconds = gauge(
      api::kServerModelFetchSeconds,
      "Time the model (and its reference) took to fetch at start-up; 0 when --model-dir already "
      "held it.");
  prometheus::Gauge& load_seconds =
      gauge(api::kServerModelLoadSeconds, "Time the model took to parse, build and warm up.");
  prometheus::Gauge& model_bytes = gauge(api::kServerModelBytes, "Size of the model file.");

  const auto load_start = std::chrono::steady_clock::now();
  log->info("loading {} (format {})", RedactUri(flags.model_uri), flags.model_format);
  LoadOptions load;
  load.name = model.name();
  load.version = model.version();
  load.fetch.s3.endpoint = flags.s3_endpoint;
  load.fetch.s3.region = flags.s3_region;
  load.fetch.s3.addressing_style = flags.s3_addressing_style;
  ModelSource source{flags.model_uri, flags.model_format, flags.model_sha256, ""};
  // A registry model: fetches under its tracking server (MLflow's artifact proxy) carry the
  // pod's token.
  if (const char* token = std::getenv("MLFLOW_TRACKING_TOKEN");
      token != nullptr && *token != '\0' && !flags.mlflow_tracking_uri.empty() &&
      UnderTrackingUri(flags.model_uri, flags.mlflow_tracking_uri)) {
    load.fetch.http_headers.push_back(std::string("Authorization: Bearer ") + token);
  }
  if (flags.model_format == "mlflow") {
    // An MLflow model folder: its MLmodel names the file to load and its format.
    // With --model-dir the MLmodel is kept there too: a restart fetches nothing.
    bool mlmodel_reused = false;
    auto resolved = flags.model_dir.empty()
                        ? ResolveMlflowModel(flags.model_uri, load.fetch)
                        : ResolveMlflowModelInDir(flags.model_uri, flags.model_dir, load.fetch,
                                                  &mlmodel_reused);
    if (!resolved.ok()) {
      log->error("cannot read the MLflow model at {}: {}", RedactUri(flags.model_uri),
                 resolved.status().ToString());
      return 1;
    }
    log->info("MLflow model {}: loading {} (format {}){}", RedactUri(flags.model_uri),
              resolved->data, resolved->format,
              mlmodel_reused ? "; MLmodel from an earlier start" : "");
    source.uri = MlflowModelFileUri(flags.model_uri, resolved->data);
    source.format = resolved->format;
  }
  std::string fetch_note = "fetched into memory";
  if (!flags.model_dir.empty()) {
    FetchOptions fetch = load.fetch;
    fetch.timeout = std::chrono::hours(1);  // large models; a stall still fails within a minute
    auto local = FetchModelToDir(source, flags.model_dir, fetch);
    if (!local.ok()) {
      log->error("cannot fetch the model: {}", local.status().ToString());
      return 1;
    }
    fetch_seconds.Set(local->fetch_seconds);
    model_bytes.Set(static_cast<double>(local->bytes));
    if (local->reused) {
      fetch_note = fmt::format("reused {} ({} bytes) from an earlier start, nothing fetched",
                               local->path, local->bytes);
    } else {
      fetch_note = fmt::format(
          "fetched {} bytes in {:.3f} s ({:.1f} MB/s, {} attempt(s)) into {}", local->fetched_bytes,
          local->fetch_seconds,
          local->fetch_seconds > 0 ? local->fetched_bytes / 1e6 / local->fetch_seconds : 0.0,
          local->attempts, local->path);
    }
    // The local copy is verified already; the reference beside it is found by name.
    // The format is the resolved one: for --model-format=mlflow, the MLmodel's (xgboost-json...).
    source = ModelSource{local->path, source.format, "", local->reference_path};
  }
  const auto parse_start = std::chrono::steady_clock::now();
  auto runtime = LoadModel(source, load);
  if (!runtime.ok()) {
    log->error("cannot load the model: {}", runtime.status().ToString());
    return 1;
  }
  const size_t features = (*runtime)->num_features();
  const size_t outputs = (*runtime)->num_outputs();
  if (Status s = service->SetRuntime(model, std::move(runtime).value()); !s.ok()) {
    log->error("{}", s.ToString());
    return 1;
  }
  if (Status s = service->WarmUpAndMarkReady(model); !s.ok()) {
    log->error("{}", s.ToString());
    return 1;
  }
  const auto ready_at = std::chrono::steady_clock::now();
  const std::chrono::duration<double> load_time = ready_at - load_start;
  const std::chrono::duration<double> parse_time = ready_at - parse_start;
  service->RecordLoadTime(model, load_time);
  load_seconds.Set(parse_time.count());
  log->info("model: {}; loaded and warmed up in {:.1f} ms; ready {:.1f} ms after start of load",
            fetch_note, parse_time.count() * 1e3, load_time.count() * 1e3);
  log->info(
      "ready: {} features, {} outputs, loaded and warmed up in {:.1f} ms; batching {} "
      "(max {} rows, delay {} us), cache {}",
      features, outputs, load_time.count() * 1e3, flags.batching ? "on" : "off",
      flags.max_batch_size, flags.max_queue_delay_us, flags.cache ? "on" : "off");
  for (const auto& v : flags.feature_views) {
    auto redis = v.ResolveRedis();
    log->info("online features: view {} ({} features, ttl {} ms) from redis {}, budget {} us",
              v.name, v.features.size(), v.ttl.count(),
              redis.ok() ? redis->Describe() : "?", flags.feature_budget_us);
  }

  signals.WaitFor(1, std::chrono::steady_clock::time_point::max());
  spdlog::info("signal {}: not ready; draining after {} ms", signals.last(), flags.drain_grace_ms);
  service->SetDraining();
  signals.WaitFor(
      2, std::chrono::steady_clock::now() + std::chrono::milliseconds(flags.drain_grace_ms));
  const auto drain_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(flags.drain_timeout_ms);
  if (grpc) grpc->BeginShutdown(drain_deadline);  // both protocols drain at the same time
  bool clean = server->Drain(drain_deadline);
  if (grpc && !grpc->WaitShutdown()) clean = false;
  service->Stop();
  server.reset();
  if (admin) admin->Shutdown();
  if (clean) {
    spdlog::info("drained; every in-flight request answered");
  } else {
    spdlog::warn("drain timed out after {} ms; open connections were closed",
                 flags.drain_timeout_ms);
  }
  return 0;
}

}  // namespace
}  // namespace sluice::dataplane

int main(int argc, char** argv) {
  using namespace sluice::dataplane;
  // Before any thread starts, so only the watcher's sigwait sees the stop signals.
  sluice::BlockStopSignals();

  auto flags = ParseServerFlags(std::vector<std::string>(argv + 1, argv + argc),
                                [](const char* name) -> const char* { return std::getenv(name); });
  if (!flags.ok()) {
    std::cerr << "sluice-server: " << flags.status().message() << "\n\n" << ServerUsage();
    return 2;
  }
  if (flags->help) {
    std::cout << ServerUsage();
    return 0;
  }
  if (flags->version) {
    std::cout << sluice::VersionLine("sluice-server") << "\n";
    return 0;
  }
  if (auto s = ConfigureLogging(flags->log_format, flags->log_level); !s.ok()) {
    std::cerr << "sluice-server: " << s.message() << "\n";
    return 2;
  }
  sluice::StopSignalWatch& signals = sluice::StopSignalWatch::Start();
  const int rc = Run(*flags, signals);
  spdlog::default_logger()->flush();
  return rc;
}
