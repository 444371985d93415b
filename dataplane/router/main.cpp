// sluice-router: the entry point of one ModelDeployment. Splits its requests between revisions by
// the weights in status.traffic, mirrors and pins callers as the ModelDeployment asks, and
// measures each revision (see router/router_metrics.h for the metrics the analysis reads).
//
// Ports: traffic (--http-port, and --grpc-port), and admin (--admin-port: /metrics, /healthz,
// /readyz; the traffic port answers the health paths too but forwards /metrics).
//
// Start-up: listen first (/healthz answers, /readyz is 503), list and watch the ModelDeployment
// and EndpointSlices, then report ready. SIGTERM or SIGINT: report not ready, keep routing for
// --drain-grace-ms while the router's endpoint is taken out of rotation, stop accepting, let
// in-flight requests finish within --drain-timeout-ms, exit 0. A second signal skips what is left
// of the grace period.

#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "dataplane/grpc/grpc_address.h"
#include "dataplane/router/grpc_proxy.h"
#include "dataplane/router/proxy.h"
#include "dataplane/router/router_flags.h"
#include "dataplane/router/router_metrics.h"
#include "dataplane/router/routing_table.h"
#include "dataplane/router/traffic_source.h"
#include "lib/api/metric_names.h"
#include "lib/base/logging.h"
#include "lib/base/port_file.h"
#include "lib/base/signals.h"
#include "lib/base/version.h"
#include "lib/http/http_server.h"
#include "lib/http/metrics_exposition.h"
#include "lib/http/tls.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"

namespace sluice::dataplane {
namespace {

int Run(const RouterFlags& flags, StopSignalWatch& signals) {
  const std::string md_key = flags.ns + "/" + flags.model_deployment;
  auto registry = std::make_shared<prometheus::Registry>();
  RouterMetrics metrics(registry);
  RoutingState state;
  std::unique_ptr<kube::Client> client;
  std::unique_ptr<TrafficSource> source;
  std::string api_server = "none (static traffic)";
  if (flags.static_traffic.empty()) {
    auto config = kube::Config::Load(flags.kubeconfig, flags.context);
    if (!config.ok()) {
      spdlog::error("md={} cannot load the Kubernetes configuration: {}", md_key,
                    config.status().ToString());
      return 1;
    }
    api_server = config->server;
    auto client_or = kube::Client::Create(*config);
    if (!client_or.ok()) {
      spdlog::error("md={} cannot create the Kubernetes client: {}", md_key,
                    client_or.status().ToString());
      return 1;
    }
    client = std::move(client_or).value();
    TrafficSourceOptions source_options;
    source_options.ns = flags.ns;
    source_options.model_deployment = flags.model_deployment;
    source_options.upstream_port = static_cast<uint16_t>(flags.upstream_port);
    source_options.upstream_grpc_port = static_cast<uint16_t>(flags.upstream_grpc_port);
    source = std::make_unique<TrafficSource>(*client, source_options, state, &metrics);
  } else {
    auto fixed = ParseStaticTraffic(flags.static_traffic);
    if (!fixed.ok()) {
      spdlog::error("{}", fixed.status().ToString());
      return 1;
    }
    fixed->config.sticky_header = flags.sticky_header;
    fixed->config.stable_revision = flags.stable_revision;
    fixed->config.retry_on_stable = flags.retry_on_stable;
    fixed->config.guard.max_error_rate = flags.guard_max_error_rate;
    auto table = RoutingTable::Build(fixed->config, fixed->endpoints, &metrics, nullptr);
    spdlog::info("md={} static routing: {}", md_key, table->Describe());
    state.Publish(std::move(table));
  }
  auto synced = [&source] { return source == nullptr || source->HasSynced(); };
  ProxyOptions proxy_options = flags.ToProxyOptions();
  GrpcProxyOptions grpc_options = flags.ToGrpcProxyOptions();
  grpc_options.retry_budget = proxy_options.retry_budget;  // one budget for the router
  // Ready for backends that serve TLS (all with --upstream-tls, else those whose EndpointSlice
  // says https); used by no plain connection.
  {
    const bool asked = flags.upstream_tls || !flags.upstream_ca_file.empty();
    auto ctx = MakeClientTlsContext(flags.upstream_ca_file);
    auto creds = MakeGrpcClientCredentials(flags.upstream_ca_file, flags.upstream_server_name);
    for (const Status& s : {ctx.status(), creds.status()}) {
      if (s.ok()) continue;
      if (asked) {
        spdlog::error("md={} upstream TLS: {}", md_key, s.ToString());
        return 1;
      }
      spdlog::warn("md={} upstream TLS with the system store is unavailable: {}", md_key,
                   s.ToString());
    }
    if (ctx.ok()) proxy_options.upstream.tls = std::move(ctx).value();
    proxy_options.upstream.tls_all = flags.upstream_tls;
    proxy_options.upstream.tls_server_name = flags.upstream_server_name;
    if (creds.ok()) grpc_options.upstream_credentials = std::move(creds).value();
    grpc_options.upstream_tls_all = flags.upstream_tls;
    grpc_options.upstream_server_name = flags.upstream_server_name;
  }
  std::shared_ptr<ReloadingTlsContext> tls;
  if (flags.tls()) {
    auto tls_or = StartServingTls({flags.tls_cert_file, flags.tls_key_file, flags.tls_client_ca_file},
                                  std::chrono::seconds(2), *registry, api::kRouterTlsReloadsTotal,
                                  "md=" + md_key);
    auto creds = MakeGrpcServerCredentials(
        {flags.tls_cert_file, flags.tls_key_file, flags.tls_client_ca_file, 2});
    if (!tls_or.ok() || !creds.ok()) {
      spdlog::error("md={} {}", md_key,
                    (!tls_or.ok() ? tls_or.status() : creds.status()).ToString());
      return 1;
    }
    tls = std::move(tls_or).value();
    grpc_options.credentials = std::move(creds).value();
  }
  Proxy proxy(proxy_options, state, metrics);
  std::atomic<bool> draining{false};

  // The health endpoints answer on both ports; /metrics only on the admin port, so scrapes and
  // probes never queue behind traffic and the traffic port forwards /metrics like any path.
  auto add_health = [&](HttpRouter& r) {
    r.Handle(HttpVerb::get, "/healthz", [](const HttpRequest&, Responder out) {
      out.SendJson(HttpStatus::ok, R"({"status":"ok"})");
    });
    r.Handle(HttpVerb::get, "/readyz", [&](const HttpRequest&, Responder out) {
      if (draining.load()) {
        out.SendError(HttpStatus::service_unavailable, "draining");
      } else if (!synced()) {
        out.SendError(HttpStatus::service_unavailable,
                      "the ModelDeployment and its EndpointSlices are not listed yet");
      } else {
        out.SendJson(HttpStatus::ok, R"({"status":"ready"})");
      }
    });
  };
  auto router = std::make_shared<HttpRouter>();
  add_health(*router);
  proxy.Register(*router);
  auto admin_router = std::make_shared<HttpRouter>();
  add_health(*admin_router);
  AddMetricsRoute(*admin_router, registry);
  auto admin_or = HttpServer::Create(flags.ToAdminHttpOptions(), admin_router);
  if (!admin_or.ok()) {
    spdlog::error("md={} admin port: {}", md_key, admin_or.status().ToString());
    return 1;
  }
  std::unique_ptr<HttpServer> admin = std::move(admin_or).value();

  HttpServerOptions http_options = flags.ToHttpOptions();
  http_options.on_io_thread_stop = [&proxy] { proxy.OnIoThreadStop(); };
  http_options.tls = tls;
  auto server_or = HttpServer::Create(http_options, router);
  if (!server_or.ok()) {
    spdlog::error("{}", server_or.status().ToString());
    return 1;
  }
  std::unique_ptr<HttpServer> server = std::move(server_or).value();
  spdlog::info("md={} listening on {}:{} ({} io threads), admin on {}:{}, API server {}", md_key,
               flags.http_address, server->port(),
               flags.io_threads > 0 ? flags.io_threads
                                    : static_cast<int>(std::thread::hardware_concurrency()),
               flags.http_address, admin->port(), api_server);
  std::unique_ptr<GrpcProxy> grpc;
  if (flags.grpc_port != 0) {
    auto grpc_or = GrpcProxy::Create(grpc_options, state, metrics);
    if (!grpc_or.ok()) {
      spdlog::error("md={} {}", md_key, grpc_or.status().ToString());
      return 1;
    }
    grpc = std::move(grpc_or).value();
    spdlog::info("md={} listening on {}:{} (gRPC)", md_key, flags.http_address, grpc->port());
  }
  if (!flags.admin_port_file.empty()) {
    if (Status s = WritePortFile(flags.admin_port_file, admin->port()); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
  }
  if (!flags.port_file.empty()) {
    if (Status s = WritePortFile(flags.port_file, server->port()); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
  }

  const auto sync_start = std::chrono::steady_clock::now();
  if (source) source->Start();
  const auto sync_deadline = flags.sync_timeout_ms > 0
                                 ? sync_start + std::chrono::milliseconds(flags.sync_timeout_ms)
                                 : std::chrono::steady_clock::time_point::max();
  // Wait for the first lists, a signal, or the sync deadline, whichever comes first.
  while (!synced()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= sync_deadline) {
      spdlog::error("md={} not synced after {} ms; exiting", md_key, flags.sync_timeout_ms);
      return 1;
    }
    if (signals.WaitFor(1, std::min(sync_deadline, now + std::chrono::milliseconds(20)))) break;
  }
  if (source && synced()) {
    const std::chrono::duration<double, std::milli> took =
        std::chrono::steady_clock::now() - sync_start;
    spdlog::info("md={} ready: ModelDeployment and EndpointSlices listed in {:.0f} ms", md_key,
                 took.count());
  }

  signals.WaitFor(1, std::chrono::steady_clock::time_point::max());
  spdlog::info("md={} signal {}: not ready; draining after {} ms", md_key, signals.last(),
               flags.drain_grace_ms);
  draining.store(true);
  signals.WaitFor(
      2, std::chrono::steady_clock::now() + std::chrono::milliseconds(flags.drain_grace_ms));
  const auto drain_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(flags.drain_timeout_ms);
  // Both protocols drain at the same time.
  bool grpc_clean = true;
  std::thread grpc_drain;
  if (grpc) grpc_drain = std::thread([&] { grpc_clean = grpc->Shutdown(drain_deadline); });
  bool clean = server->Drain(drain_deadline);
  if (grpc_drain.joinable()) grpc_drain.join();
  clean = clean && grpc_clean;
  grpc.reset();
  server.reset();
  admin.reset();  // last: /readyz said 503 and /metrics counted every request until here
  if (source) source->Stop();
  if (clean) {
    spdlog::info("md={} drained; every in-flight request answered", md_key);
  } else {
    spdlog::warn("md={} drain timed out after {} ms; open connections were closed", md_key,
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

  auto flags = ParseRouterFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::cerr << "sluice-router: " << flags.status().message() << "\n\n" << RouterUsage();
    return 2;
  }
  if (flags->help) {
    std::cout << RouterUsage();
    return 0;
  }
  if (flags->version) {
    std::cout << sluice::VersionLine("sluice-router") << "\n";
    return 0;
  }
  if (auto s = ConfigureLogging(flags->log_format, flags->log_level); !s.ok()) {
    std::cerr << "sluice-router: " << s.message() << "\n";
    return 2;
  }
  sluice::StopSignalWatch& signals = sluice::StopSignalWatch::Start();
  const int rc = Run(*flags, signals);
  spdlog::default_logger()->flush();
  return rc;
}
