#include "operator/operator.h"

#include <malloc.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>

#include "controllers/analysis/prometheus_metric_source.h"
#include "controllers/analysis/router_metric_source.h"
#include "controllers/autoscaler/concurrency_scraper.h"
#include "controllers/featureview/reconciler.h"
#include "controllers/modeldeployment/reconciler.h"
#include "controllers/modeldeployment/resources.h"
#include "controllers/modeldeployment/status_metrics.h"
#include "controllers/scrape/http_fetcher.h"
#include "controllers/scrape/pod_finder.h"
#include "lib/api/object_labels.h"
#include "lib/controller/cache.h"
#include "lib/controller/controller.h"
#include "lib/controller/events.h"
#include "lib/controller/metrics.h"
#include "lib/controller/object_io.h"
#include "lib/http/http_server.h"
#include "lib/http/metrics_exposition.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "lib/kube/curl_transport.h"
#include "lib/kube/leader_election.h"
#include "operator/cache_transforms.h"

namespace sluice::app {

using controllers::Controller;
using controllers::ControllerOptions;
using controllers::InformerCache;

namespace {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "sluice-operator";
  return buf;
}

std::string RandomSuffix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(rd()));
  return buf;
}

// Resident set size and CPU time of this process, read from /proc at scrape time.
struct ProcessStats {
  double rss_bytes = 0;
  double cpu_seconds = 0;
};

ProcessStats ReadProcessStats() {
  ProcessStats s;
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (statm >> pages_total >> pages_resident) {
    s.rss_bytes = static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  }
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name (which may contain spaces) start after the last ')'.
    auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      unsigned long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
      }
      s.cpu_seconds =
          static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  return s;
}

// The cache's objects are replaced many times while a fleet comes up (every status change of a
// Deployment or Pod is a new object), from many threads; glibc keeps what they freed in its
// arenas, where it stays resident after the burst. malloc_trim returns the free pages; it walks
// the heap, a few milliseconds for a large cache, so it runs once a while.
constexpr std::chrono::seconds kTrimPeriod{30};

}  // namespace

std::string OwnNamespace(const std::string& fallback) {
  if (const char* ns = std::getenv("POD_NAMESPACE"); ns != nullptr && *ns != '\0') return ns;
  std::ifstream f("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
  std::string ns;
  if (f && std::getline(f, ns) && !ns.empty()) return ns;
  return fallback.empty() ? "default" : fallback;
}

struct Operator::Parts {
  std::unique_ptr<kube::Client> client;
  kube::CurlTransport* transport = nullptr;  // the client's
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<controllers::PrometheusControllerMetrics> metrics;
  prometheus::Gauge* rss = nullptr;
  prometheus::Counter* kube_connections = nullptr;
  prometheus::Counter* cpu = nullptr;  // set from /proc at each scrape (one metrics io thread)
  prometheus::Gauge* cached = nullptr;
  // The ModelDeployments' own series, rendered as their statuses change; declared before the
  // cache, whose informers call it, so that it outlives them.
  controllers::ModelDeploymentMetrics md_metrics;
  std::unique_ptr<InformerCache> cache;
  std::unique_ptr<controllers::KubeObjectWriter> writer;
  std::unique_ptr<controllers::KubeEventRecorder> events;
  std::unique_ptr<controllers::KubeSecretReader> secrets;
  std::unique_ptr<controllers::HttpFetcher> fetcher;
  std::unique_ptr<controllers::CachedPodFinder> pod_finder;
  std::unique_ptr<controllers::RouterMetricsScraper>
      router_metrics;  // null unless the router provider
  std::shared_ptr<controllers::ConcurrencyScraper> concurrency;
  std::unique_ptr<controllers::ModelDeploymentReconciler> md_reconciler;
  std::unique_ptr<controllers::FeatureViewReconciler> fv_reconciler;
  std::unique_ptr<Controller> md_controller;
  std::unique_ptr<Controller> fv_controller;
  std::unique_ptr<HttpServer> metrics_server;
  std::unique_ptr<HttpServer> health_server;  // null when it shares metrics_server
  std::unique_ptr<kube::LeaderElector> elector;
  std::thread elector_thread;
  std::thread sync_thread;
  // Hands freed heap back to the system now and then; see TrimLoop.
  std::thread trim_thread;
  std::mutex trim_mu;
  std::condition_variable trim_cv;
  bool trim_stop = false;  // guarded by trim_mu
  // Stops the controllers at shutdown; see Run.
  std::thread stopper_thread;
  std::mutex stopper_mu;
  std::condition_variable stopper_cv;
  bool stopper_done = false;  // guarded by stopper_mu
  std::string lease_namespace;
};

Operator::Operator(OperatorOptions options)
    : options_(std::move(options)), p_(std::make_unique<Parts>()) {}

Operator::~Operator() {
  Stop();
  // A shutdown that timed out left the stopper waiting on a reconcile; it holds the controllers.
  if (p_->stopper_thread.joinable()) p_->stopper_thread.join();
  if (p_->md_controller) p_->md_controller->Stop();
  if (p_->fv_controller) p_->fv_controller->Stop();
  if (p_->elector) p_->elector->Stop();
  if (p_->elector_thread.joinable()) p_->elector_thread.join();
  if (p_->router_metrics) p_->router_metrics->Stop();
  if (p_->concurrency) p_->concurrency->Stop();
  if (p_->cache) p_->cache->Stop();
  if (p_->sync_thread.joinable()) p_->sync_thread.join();
  StopTrimLoop();
  if (p_->metrics_server) p_->metrics_server->Shutdown();
  if (p_->health_server) p_->health_server->Shutdown();
}

Result<std::unique_ptr<Operator>> Operator::Create(OperatorOptions options) {
  std::unique_ptr<Operator> op(new Operator(std::move(options)));
  RETURN_IF_ERROR(op->Build());
  return op;
}

Status Operator::Build() {
  auto config = kube::Config::Load(options_.kubeconfig, options_.context);
  if (!config.ok()) return config.status().Annotate("loading the Kubernetes configuration");
  config->user_agent = "sluice-operator/0.1";
  const std::string default_ns = config->default_namespace;
  kube::CurlTransportOptions transport_options;
  transport_options.max_idle_handles = KubeIdleConnections(options_);
  ASSIGN_OR_RETURN(std::unique_ptr<kube::CurlTransport> transport,
                   kube::CurlTransport::Create(*config, transport_options));
  p_->transport = transport.get();
  ASSIGN_OR_RETURN(p_->client, kube::Client::Create(std::move(*config), std::move(transport)));
  if (options_.identity.empty()) options_.identity = Hostname() + "_" + RandomSuffix();
  p_->lease_namespace = options_.leader_election_namespace.empty()
                            ? OwnNamespace(default_ns)
                            : options_.leader_election_namespace;

  // Metrics.
  p_->registry = std::make_shared<prometheus::Registry>();
  p_->metrics = std::make_unique<controllers::PrometheusControllerMetrics>(*p_->registry);
  p_->rss = &prometheus::BuildGauge()
                 .Name("process_resident_memory_bytes")
                 .Help("Resident memory size in bytes.")
                 .Register(*p_->registry)
                 .Add({});
  // A counter, as Prometheus' process collectors export it (rate() and promtool expect one).
  p_->cpu = &prometheus::BuildCounter()
                 .Name("process_cpu_seconds_total")
                 .Help("Total user and system CPU time spent in seconds.")
                 .Register(*p_->registry)
                 .Add({});
  p_->kube_connections = &prometheus::BuildCounter()
                              .Name("sluice_operator_kube_connections_opened_total")
                              .Help("Connections opened to the API server.")
                              .Register(*p_->registry)
                              .Add({});
  p_->cached = &prometheus::BuildGauge()
                    .Name("sluice_operator_cache_objects")
                    .Help("Objects held by the operator's informer cache.")
                    .Register(*p_->registry)
                    .Add({});

  // The cache: the primary resources, and what the ModelDeployment owns (only objects labelled
  // as managed by the operator, so the cache does not hold every Deployment of the cluster).
  controllers::CacheOptions co;
  co.namespaces = options_.namespaces;
  co.resync_period = options_.resync_period;
  co.metrics = p_->metrics.get();
  // The failing-pod check and the scrapers look pods up by these, materialization runs by the
  // last.
  co.indexed_labels = {api::kLabelModelDeployment, api::kLabelRevision, api::kLabelFeatureView};
  // Ten objects per ModelDeployment for as long as the operator runs, of which a reconcile reads
  // a dozen: packed, they take a fraction of the parsed trees' memory.
  co.holding = kube::Store::Holding::kPacked;
  p_->cache = std::make_unique<InformerCache>(p_->client.get(), co);
  const std::string owned = api::kManagedBySelector;
  // What the scrapers follow and which ModelDeployments read a FeatureView, indexed so that
  // finding them does not parse every ModelDeployment.
  RETURN_IF_ERROR(p_->cache->Register(
      api::kModelDeploymentsGvr, "", nullptr,
      {controllers::ConcurrencyAutoscaledIndex(), controllers::UnderAnalysisIndex(),
       controllers::FeatureViewsReadIndex()}));
  RETURN_IF_ERROR(p_->cache->AddEventHandler(api::kModelDeploymentsGvr, p_->md_metrics.Handler()));
  RETURN_IF_ERROR(p_->cache->Register(controllers::kFeatureViewsGvr));
  RETURN_IF_ERROR(p_->cache->Register(kube::resources::kDeployments, owned, TrimDeployment));
  RETURN_IF_ERROR(p_->cache->Register(kube::resources::kServices, owned));
  RETURN_IF_ERROR(p_->cache->Register(kube::resources::kServiceAccounts, owned));
  RETURN_IF_ERROR(p_->cache->Register(controllers::kRolesGvr, owned));
  RETURN_IF_ERROR(p_->cache->Register(controllers::kRoleBindingsGvr, owned));
  RETURN_IF_ERROR(p_->cache->Register(kube::resources::kHorizontalPodAutoscalers, owned));
  // The pods of what the operator deploys (the pod templates carry the managed-by label): where
  // the router's and the servers' metrics are scraped from.
  RETURN_IF_ERROR(p_->cache->Register(kube::resources::kPods, owned, TrimPod));
  // Materialization: the CronJob and Jobs of every FeatureView (their Pods are in the Pod cache
  // above, through the same label), read for the runs' results.
  RETURN_IF_ERROR(p_->cache->Register(controllers::kCronJobsGvr, owned));
  RETURN_IF_ERROR(p_->cache->Register(controllers::kJobsGvr, owned));

  p_->writer =
      std::make_unique<controllers::KubeObjectWriter>(*p_->client, controllers::kFieldManager);
  controllers::KubeEventRecorderOptions eo;
  eo.instance = options_.identity;
  p_->events = std::make_unique<controllers::KubeEventRecorder>(*p_->client, Clock::Real(), eo);
  p_->secrets = std::make_unique<controllers::KubeSecretReader>(*p_->client);

  controllers::ModelDeploymentReconcilerOptions mo;
  mo.workload = options_.workload;
  mo.registry = controllers::NewMlflowRegistry();
  mo.default_tracking_uri = options_.mlflow_tracking_uri;
  mo.secrets = p_->secrets.get();
  ASSIGN_OR_RETURN(p_->fetcher, controllers::NewCurlFetcher());
  p_->pod_finder = std::make_unique<controllers::CachedPodFinder>(*p_->cache);
  controllers::ConcurrencyScraperOptions cso;
  cso.default_port = options_.workload.server_http_port;
  cso.scrape_period = options_.autoscaler_scrape_period;
  p_->concurrency = std::make_shared<controllers::ConcurrencyScraper>(*p_->cache, *p_->pod_finder,
                                                                      *p_->fetcher, cso);
  mo.concurrency = p_->concurrency;
  mo.autoscale_period = options_.autoscaler_scrape_period;
  if (options_.analysis_provider == OperatorOptions::AnalysisProvider::kRouter) {
    controllers::RouterMetricsScraperOptions rmo;
    rmo.default_port = options_.workload.router_admin_port;
    rmo.scrape_period = options_.autoscaler_scrape_period;
    p_->router_metrics = std::make_unique<controllers::RouterMetricsScraper>(
        *p_->cache, *p_->pod_finder, *p_->fetcher, rmo);
  }
  {
    Parts* parts = p_.get();
    const OperatorOptions::AnalysisProvider provider = options_.analysis_provider;
    const std::string prometheus_url = options_.prometheus_url;
    mo.metric_source =
        [parts, provider, prometheus_url](
            const controllers::ModelDeployment& md) -> std::shared_ptr<controllers::MetricSource> {
      auto prometheus = [&](const std::string& address) {
        controllers::PrometheusSourceOptions po;
        po.address = address;
        po.ns = md.Namespace();
        po.name = md.Name();
        return std::make_shared<controllers::PrometheusMetricSource>(*parts->fetcher, po);
      };
      const auto& rollout = md.spec.rollout;
      if (rollout && rollout->canary && rollout->canary->analysis &&
          rollout->canary->analysis->prometheus) {
        return prometheus(rollout->canary->analysis->prometheus->address);
      }
      switch (provider) {
        case OperatorOptions::AnalysisProvider::kPrometheus:
          return prometheus(prometheus_url);
        case OperatorOptions::AnalysisProvider::kRouter:
          return parts->router_metrics->SourceFor(
              md.Namespace(), md.Name(),
              prometheus_url.empty() ? nullptr : prometheus(prometheus_url));
        case OperatorOptions::AnalysisProvider::kNone:
          break;
      }
      return nullptr;
    };
  }
  p_->md_reconciler = std::make_unique<controllers::ModelDeploymentReconciler>(
      *p_->cache, *p_->writer, *p_->events, mo);
  controllers::FeatureViewReconcilerOptions fo;
  fo.recheck_secret = options_.secret_recheck_period;
  fo.materialization.image = options_.workload.server_image;
  fo.materialization.image_pull_policy = options_.workload.image_pull_policy;
  fo.materialization.run_as_user = options_.workload.run_as_user;
  fo.materialization.log_format = options_.workload.log_format;
  p_->fv_reconciler = std::make_unique<controllers::FeatureViewReconciler>(
      *p_->cache, *p_->secrets, *p_->writer, *p_->events, fo);

  ControllerOptions md;
  md.name = "modeldeployment";
  md.log_key = "md";
  md.primary = api::kModelDeploymentsGvr;
  md.primary_kind = "ModelDeployment";
  md.owns = {kube::resources::kDeployments,     kube::resources::kServices,
             kube::resources::kServiceAccounts, controllers::kRolesGvr,
             controllers::kRoleBindingsGvr,     kube::resources::kHorizontalPodAutoscalers};
  // A FeatureView's change reaches the server pods of every ModelDeployment that reads it.
  {
    InformerCache* cache = p_->cache.get();
    md.watches.push_back({controllers::kFeatureViewsGvr, [cache](const nlohmann::json& fv) {
                            return controllers::ModelDeploymentsReading(
                                *cache, controllers::MetaString(fv, "namespace"),
                                controllers::MetaString(fv, "name"));
                          }});
  }
  // A serving pod that fails to start is reported in its ModelDeployment's status.
  md.watches.push_back(
      {kube::resources::kPods, [](const nlohmann::json& pod) {
         std::vector<controllers::ObjectKey> keys;
         const nlohmann::json* labels = controllers::JsonAt(pod, {"metadata", "labels"});
         if (labels == nullptr) return keys;
         if (labels->value(api::kLabelComponent, "") != "server") return keys;
         const std::string md_name = labels->value(api::kLabelModelDeployment, "");
         if (!md_name.empty()) {
           keys.push_back({controllers::MetaString(pod, "namespace"), md_name});
         }
         return keys;
       }});
  md.workers = options_.workers;
  md.metrics = p_->metrics.get();
  ASSIGN_OR_RETURN(p_->md_controller,
                   Controller::Create(*p_->cache, *p_->md_reconciler, std::move(md)));

  ControllerOptions fv;
  fv.name = "featureview";
  fv.log_key = "fv";
  fv.primary = controllers::kFeatureViewsGvr;
  fv.primary_kind = "FeatureView";
  fv.owns = {controllers::kCronJobsGvr};
  // Jobs the CronJob starts are owned by it, not by the view: Jobs and their Pods are matched to
  // the view by its annotation.
  fv.watches = {{controllers::kJobsGvr, controllers::FeatureViewOf},
                {kube::resources::kPods, controllers::FeatureViewOf}};
  fv.workers = std::max(1, options_.workers / 2);
  fv.metrics = p_->metrics.get();
  ASSIGN_OR_RETURN(p_->fv_controller,
                   Controller::Create(*p_->cache, *p_->fv_reconciler, std::move(fv)));

  if (options_.leader_elect) {
    kube::LeaderElectionOptions lo;
    lo.identity = options_.identity;
    lo.lease_duration = options_.lease_duration;
    lo.renew_deadline = options_.renew_deadline;
    lo.retry_period = options_.retry_period;
    lo.callbacks.on_started_leading = [this] {
      spdlog::info("leading: lease={}/{} identity={}", p_->lease_namespace,
                   options_.leader_election_id, options_.identity);
      {
        std::lock_guard<std::mutex> lock(mu_);
        leading_ = true;
      }
      cv_.notify_all();
    };
    lo.callbacks.on_stopped_leading = [this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        leading_ = false;
        if (!stop_requested_) lost_leadership_ = true;
      }
      cv_.notify_all();
    };
    lo.callbacks.on_new_leader = [this](const std::string& identity) {
      if (identity != options_.identity) spdlog::info("leader is now identity={}", identity);
    };
    ASSIGN_OR_RETURN(p_->elector, kube::LeaderElector::Create(std::make_unique<kube::KubeLeaseLock>(
                                                                  *p_->client, p_->lease_namespace,
                                                                  options_.leader_election_id),
                                                              std::move(lo)));
  }

  // Endpoints.
  auto metrics_router = std::make_shared<HttpRouter>();
  auto health_router = std::make_shared<HttpRouter>();
  {
    auto registry = p_->registry;
    Parts* parts = p_.get();
    metrics_router->Handle(
        HttpVerb::get, "/metrics",
        [this, registry, parts](const HttpRequest&, Responder responder) {
          const ProcessStats stats = ReadProcessStats();
          parts->rss->Set(stats.rss_bytes);
          if (stats.cpu_seconds > parts->cpu->Value()) {
            parts->cpu->Increment(stats.cpu_seconds - parts->cpu->Value());
          }
          parts->cached->Set(static_cast<double>(parts->cache->Size()));
          const double opened = static_cast<double>(parts->transport->connections_opened());
          if (opened > parts->kube_connections->Value()) {
            parts->kube_connections->Increment(opened - parts->kube_connections->Value());
          }
          std::string page = RenderPrometheusText(*registry);
          // The ModelDeployments' own series come from the leader only (it
          // writes their status), so replicas never export the same series
          // twice.
          bool leading = false;
          {
            std::lock_guard<std::mutex> lock(mu_);
            leading = leading_;
          }
          if (leading && synced_.load()) page += parts->md_metrics.Render();
          responder.SendBody(HttpStatus::ok, kPrometheusContentType, std::move(page));
        });
  }
  const bool shared = options_.metrics_addr.port != 0 &&
                      options_.metrics_addr.port == options_.health_addr.port &&
                      options_.metrics_addr.host == options_.health_addr.host;
  HttpRouter& health = shared ? *metrics_router : *health_router;
  health.Handle(HttpVerb::get, "/healthz", [](const HttpRequest&, Responder responder) {
    responder.SendBody(HttpStatus::ok, "text/plain", "ok\n");
  });
  health.Handle(HttpVerb::get, "/readyz", [this](const HttpRequest&, Responder responder) {
    if (synced_.load()) {
      responder.SendBody(HttpStatus::ok, "text/plain", "ok\n");
    } else {
      responder.SendBody(HttpStatus::service_unavailable, "text/plain",
                         "informers have not synced yet\n");
    }
  });
  HttpServerOptions mso;
  mso.address = options_.metrics_addr.host;
  mso.port = options_.metrics_addr.port;
  mso.io_threads = 1;
  mso.server_name = "sluice-operator";
  ASSIGN_OR_RETURN(p_->metrics_server, HttpServer::Create(mso, metrics_router));
  if (!shared) {
    HttpServerOptions hso = mso;
    hso.address = options_.health_addr.host;
    hso.port = options_.health_addr.port;
    ASSIGN_OR_RETURN(p_->health_server, HttpServer::Create(hso, health_router));
  }
  spdlog::info("serving /metrics on {}:{} and /healthz, /readyz on {}:{}",
               options_.metrics_addr.host, metrics_port(), options_.health_addr.host,
               health_port());
  WriteObservabilityPorts();
  return Status::Ok();
}

void Operator::TrimLoop() {
  std::unique_lock<std::mutex> lock(p_->trim_mu);
  while (!p_->trim_cv.wait_for(lock, kTrimPeriod, [&] { return p_->trim_stop; })) {
    lock.unlock();
    malloc_trim(0);
    lock.lock();
  }
}

void Operator::StopTrimLoop() {
  {
    std::lock_guard<std::mutex> lock(p_->trim_mu);
    p_->trim_stop = true;
  }
  p_->trim_cv.notify_all();
  if (p_->trim_thread.joinable()) p_->trim_thread.join();
}

void Operator::WriteObservabilityPorts() {
  if (options_.ports_file.empty()) return;
  const std::string tmp = options_.ports_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << "{\"metrics\": " << metrics_port() << ", \"health\": " << health_port() << "}\n";
  }
  // Renamed into place so a reader never sees half a file.
  std::rename(tmp.c_str(), options_.ports_file.c_str());
}

uint16_t Operator::metrics_port() const {
  return p_->metrics_server ? p_->metrics_server->port() : 0;
}

uint16_t Operator::health_port() const {
  if (p_->health_server) return p_->health_server->port();
  return metrics_port();
}

bool Operator::ready() const {
  return synced_.load();
}

bool Operator::leading() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

void Operator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
}

Status Operator::Run() {
  const std::string ns_text = options_.namespaces.empty() ? std::string("all") : [&] {
    std::string s;
    for (const auto& ns : options_.namespaces) s += (s.empty() ? "" : ",") + ns;
    return s;
  }();
  spdlog::info("sluice-operator starting: identity={} namespaces={} leader_elect={} workers={}",
               options_.identity, ns_text, options_.leader_elect ? "on" : "off", options_.workers);
  const auto started_at = std::chrono::steady_clock::now();
  p_->cache->Start();
  p_->trim_thread = std::thread([this] { TrimLoop(); });
  p_->sync_thread = std::thread([this, started_at] {
    if (!p_->cache->WaitForSync(Clock::Steady::time_point::max())) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      synced_ = true;
    }
    p_->metrics->SetInformersSynced(true);
    cv_.notify_all();
    // The first list's pages and JSON text are garbage now.
    malloc_trim(0);
    spdlog::info("informers synced in {} ms: {} objects cached",
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started_at)
                     .count(),
                 p_->cache->Size());
  });
  if (p_->elector) {
    p_->elector_thread = std::thread([this] { p_->elector->Run(); });
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = true;
  }

  Status result;
  bool workers_started = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] {
        return stop_requested_ || lost_leadership_ ||
               (!workers_started && leading_ && synced_.load());
      });
      if (stop_requested_) break;
      if (lost_leadership_) {
        result = Unavailable("lost the leader Lease " + p_->lease_namespace + "/" +
                             options_.leader_election_id);
        break;
      }
      lock.unlock();
      p_->metrics->SetLeader(true);
      // Metrics are sampled only where decisions are made: on the leader, once the cache that
      // says which pods to scrape is full.
      if (p_->router_metrics) p_->router_metrics->Start();
      p_->concurrency->Start();
      p_->md_controller->Start();
      p_->fv_controller->Start();
      workers_started = true;
      lock.lock();
    }
  }
  if (result.ok()) {
    spdlog::info("stopping: finishing in-flight reconciles");
  } else {
    spdlog::error("stopping: {}; finishing in-flight reconciles", result.message());
  }

  // Stop taking work and let reconciles in progress finish, within the shutdown timeout. The
  // stopper thread and what it signals belong to Parts, not to this frame: when the timeout passes
  // it is still running, and Run returns while it does (the destructor joins it).
  p_->stopper_thread = std::thread([p = p_.get()] {
    p->md_controller->Stop();
    p->fv_controller->Stop();
    std::lock_guard<std::mutex> lock(p->stopper_mu);
    p->stopper_done = true;
    p->stopper_cv.notify_all();
  });
  bool stopped_in_time = false;
  {
    std::unique_lock<std::mutex> lock(p_->stopper_mu);
    stopped_in_time =
        p_->stopper_cv.wait_for(lock, options_.shutdown_timeout, [&] { return p_->stopper_done; });
  }
  if (stopped_in_time) {
    p_->stopper_thread.join();
    // The last phase changes are worth writing before the process goes.
    p_->events->Flush();
  } else {
    spdlog::error("in-flight reconciles did not finish within {}s",
                  options_.shutdown_timeout.count());
    if (result.ok()) result = Timeout("in-flight reconciles did not finish in time");
  }
  p_->metrics->SetLeader(false);
  if (p_->router_metrics) p_->router_metrics->Stop();
  p_->concurrency->Stop();

  // Hand the Lease over at once instead of letting it expire.
  if (p_->elector) {
    p_->elector->Stop();
    if (p_->elector_thread.joinable()) p_->elector_thread.join();
  }
  p_->cache->Stop();
  if (p_->sync_thread.joinable()) p_->sync_thread.join();
  StopTrimLoop();
  const auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  p_->metrics_server->Drain(drain_deadline);
  if (p_->health_server) p_->health_server->Drain(drain_deadline);
  spdlog::info("sluice-operator stopped");
  return result;
}

}  // namespace sluice::app
