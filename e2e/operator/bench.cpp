// sluice-operator-bench: how the operator does at scale on a cluster.
//
//   sluice-operator-bench --kubeconfig K --operator-bin B --crd-dir D [--count 1000]
//       [--replicas 1] [--router-replicas 1] [--workers 4] [--rest 60s] [--fake-kubelet]
//       [--timeout 30m] [--json out.json] [--log operator.log] [--operator-log-level warn]
//       [--operator-flag --kube-idle-connections=8 ...] [--baseline | --baseline-apply]
//
// Installs the CRDs, starts the operator binary (leader election on), creates `count`
// ModelDeployments from several threads and watches them:
//   apply -> Healthy latency per ModelDeployment (p50, p90, p99, max),
//   time from the first create to the last Healthy,
//   operator RSS and CPU (from /proc) over `rest` with everything at rest,
//   reconcile p99 from the operator's own histogram (sluice_operator_reconcile_duration_seconds).
// --fake-kubelet reports Deployments Ready itself (for a bare kube-apiserver without
// kube-controller-manager and kubelet); on a kwok cluster leave it off.
// --baseline runs no operator: for each ModelDeployment it creates, the bench itself creates the
// seven objects the operator's first reconcile applies (built by the operator's own code, owned
// by the ModelDeployment) and times until both Deployments are Available. That is the cluster's
// floor for the same objects: what the controller manager, scheduler and kwok (or the fake
// kubelet) take with no status writes, no Events and no reconciles. --baseline-apply writes
// them with server-side apply, as the operator does, instead of creates.
// Everything it creates is in one fresh namespace, deleted at the end.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controllers/modeldeployment/resources.h"
#include "controllers/rollout/revision.h"
#include "lib/api/duration.h"
#include "lib/api/object_labels.h"
#include "lib/controller/object_io.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "lib/kube/informer.h"
#include "tests/integration/controllers/operator_env.h"
#include "tests/support/process.h"

namespace {

using sluice::controllers::it::json;
using Clock = std::chrono::steady_clock;
namespace it = sluice::controllers::it;

struct Flags {
  std::string kubeconfig;
  std::string operator_bin;
  std::string crd_dir;
  int count = 1000;
  int replicas = 1;
  int router_replicas = 1;
  int workers = 4;
  int create_threads = 8;
  std::chrono::milliseconds rest{60'000};
  std::chrono::milliseconds timeout{30 * 60'000};
  bool fake_kubelet = false;
  bool baseline = false;
  bool baseline_apply = false;  // --baseline-apply: the baseline with server-side apply
  std::string json_out;
  std::string log_path = "/tmp/sluice-operator-bench.log";
  std::string operator_log_level = "warn";
  std::vector<std::string> operator_flags;  // passed to the operator as they are
};

bool ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    auto key = a.substr(0, a.find('='));
    std::string v;
    if (key == "--fake-kubelet") {
      f.fake_kubelet = true;
      continue;
    }
    if (key == "--baseline" || key == "--baseline-apply") {
      f.baseline = true;
      f.baseline_apply = key == "--baseline-apply";
      continue;
    }
    if (!value(v)) {
      std::cerr << key << " needs a value\n";
      return false;
    }
    if (key == "--kubeconfig") f.kubeconfig = v;
    else if (key == "--operator-bin") f.operator_bin = v;
    else if (key == "--crd-dir") f.crd_dir = v;
    else if (key == "--count") f.count = std::stoi(v);
    else if (key == "--replicas") f.replicas = std::stoi(v);
    else if (key == "--router-replicas") f.router_replicas = std::stoi(v);
    else if (key == "--workers") f.workers = std::stoi(v);
    else if (key == "--create-threads") f.create_threads = std::stoi(v);
    else if (key == "--json") f.json_out = v;
    else if (key == "--log") f.log_path = v;
    else if (key == "--operator-log-level") f.operator_log_level = v;
    else if (key == "--operator-flag") f.operator_flags.push_back(v);
    else if (key == "--rest" || key == "--timeout") {
      auto d = sluice::controllers::ParseDuration(v);
      if (!d.ok()) {
        std::cerr << key << ": " << d.status() << "\n";
        return false;
      }
      (key == "--rest" ? f.rest : f.timeout) = *d;
    } else {
      std::cerr << "unknown flag " << key << "\n";
      return false;
    }
  }
  if (f.kubeconfig.empty() || f.operator_bin.empty() || f.crd_dir.empty()) {
    std::cerr << "--kubeconfig, --operator-bin and --crd-dir are required\n";
    return false;
  }
  return true;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

struct ProcSample {
  double rss_mib = 0;
  double cpu_seconds = 0;
};

ProcSample ReadProc(pid_t pid) {
  ProcSample s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_mib = std::stod(line.substr(6)) / 1024.0;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::getline(stat, line);
  auto close = line.rfind(')');
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return s;
}

// The p-th percentile of a Prometheus histogram from its cumulative buckets (linear within a
// bucket, as histogram_quantile does).
double HistogramQuantile(const std::string& text, const std::string& metric,
                         const std::string& label, double q, double* count_out) {
  std::vector<std::pair<double, double>> buckets;  // le, cumulative count
  std::istringstream in(text);
  std::string line;
  const std::string prefix = metric + "_bucket{";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0 || line.find(label) == std::string::npos) continue;
    auto le = line.find("le=\"");
    if (le == std::string::npos) continue;
    auto end = line.find('"', le + 4);
    const std::string bound = line.substr(le + 4, end - le - 4);
    const double value = std::stod(line.substr(line.rfind(' ') + 1));
    buckets.emplace_back(bound == "+Inf" ? INFINITY : std::stod(bound), value);
  }
  std::sort(buckets.begin(), buckets.end());
  if (buckets.empty() || buckets.back().second == 0) return NAN;
  const double total = buckets.back().second;
  if (count_out) *count_out = total;
  const double target = q * total;
  double prev_le = 0, prev_count = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= target) {
      if (std::isinf(le)) return prev_le;
      const double in_bucket = count - prev_count;
      return in_bucket <= 0 ? le : prev_le + (le - prev_le) * (target - prev_count) / in_bucket;
    }
    prev_le = le;
    prev_count = count;
  }
  return buckets.back().first;
}

json ModelDeployment(const std::string& ns, const std::string& name, int replicas) {
  return {{"apiVersion", "sluice.dev/v1alpha1"},
          {"kind", "ModelDeployment"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"model", {{"uri", "file:///models/fraud/fraud.json"}, {"format", "xgboost-json"}, {"version", "1"}}},
            {"replicas", replicas},
            {"rollout", {{"canary", {{"analysis", {{"noDataPolicy", "Pass"}}}}}}}}}};
}

// --baseline: the seven objects of a ModelDeployment's first reconcile, built by the operator's
// code from the ModelDeployment as the API server returned it (defaults in, uid to own them by)
// and created at once, as the reconciler applies them.
// With `apply`, server-side apply (force, as the operator's field manager) instead of a create.
sluice::Status CreateFirstReconcileObjects(sluice::kube::Client& client, const std::string& ns,
                                           const json& created, int router_replicas, bool apply) {
  namespace sc = sluice::controllers;
  namespace res = sluice::kube::resources;
  auto parsed = sc::ParseModelDeployment(created);
  if (!parsed.ok()) return parsed.status();
  const sc::ModelDeploymentObject owner{*parsed, created["metadata"].value("uid", "")};
  sc::WorkloadOptions workload;
  workload.router_replicas = router_replicas;
  const std::string revision = sc::RevisionName(parsed->Name(), parsed->spec);
  auto deployment = sc::RevisionDeployment(owner, revision, parsed->spec,
                                           parsed->spec.replicas.value_or(1), workload);
  if (!deployment.ok()) return deployment.status();
  const std::vector<std::pair<const sluice::kube::GroupVersionResource*, json>> objects = {
      {&res::kServiceAccounts, sc::RouterServiceAccount(owner)},
      {&sc::kRolesGvr, sc::RouterRole(owner)},
      {&sc::kRoleBindingsGvr, sc::RouterRoleBinding(owner)},
      {&res::kDeployments, sc::RouterDeployment(owner, workload)},
      {&res::kServices, sc::RouterService(owner, workload)},
      {&res::kDeployments, *deployment},
      {&res::kServices, sc::RevisionService(owner, revision, workload)},
  };
  std::vector<std::future<sluice::Status>> results;
  for (const auto& [gvr, object] : objects) {
    results.push_back(std::async(std::launch::async, [&client, &ns, gvr, &object, apply] {
      auto r = apply ? client.Apply(*gvr, ns, object, sluice::controllers::kFieldManager,
                                    /*force=*/true)
                     : client.Create(*gvr, ns, object);
      return r.ok() ? sluice::Status::Ok() : r.status();
    }));
  }
  sluice::Status first;
  for (auto& r : results) {
    sluice::Status s = r.get();
    if (first.ok() && !s.ok()) first = std::move(s);
  }
  return first;
}

// The ModelDeployments "model-NNNN" of a run, created from f.create_threads threads; `then`
// (optional) runs after each create with the object the API server returned. A failure is printed
// and counted; `at` holds when each of the others was sent.
struct Created {
  std::map<std::string, Clock::time_point> at;
  int failures = 0;
};
Created CreateModelDeployments(const Flags& f, sluice::kube::Client& client, const std::string& ns,
                               const std::function<sluice::Status(const json&)>& then = nullptr) {
  std::mutex mu;
  Created out;  // guarded by mu
  std::atomic<int> next{0};
  std::vector<std::thread> creators;
  for (int t = 0; t < f.create_threads; ++t) {
    creators.emplace_back([&] {
      for (int i = next++; i < f.count; i = next++) {
        char name[32];
        std::snprintf(name, sizeof(name), "model-%04d", i);
        const auto at = Clock::now();
        auto md = client.Create(it::kMdGvr, ns, ModelDeployment(ns, name, f.replicas));
        sluice::Status s = !md.ok() ? md.status() : then ? then(*md) : sluice::Status::Ok();
        std::lock_guard<std::mutex> lock(mu);
        if (!s.ok()) {
          ++out.failures;
          std::cerr << name << ": " << s << "\n";
          continue;
        }
        out.at[name] = at;
      }
    });
  }
  for (auto& t : creators) t.join();
  return out;
}

// Milliseconds from each create to its `reached` time, for those that reached it.
std::vector<double> Latencies(const Created& created,
                              const std::map<std::string, Clock::time_point>& reached) {
  std::vector<double> out;
  for (const auto& [name, at] : created.at) {
    if (auto r = reached.find(name); r != reached.end()) {
      out.push_back(std::chrono::duration<double, std::milli>(r->second - at).count());
    }
  }
  return out;
}

// --baseline: no operator. Each ModelDeployment is created as in a normal run, then the bench
// creates what its first reconcile would; done when both of its Deployments are Available.
int Baseline(const Flags& f, sluice::kube::Client& client, const std::string& ns) {
  std::mutex mu;
  std::map<std::string, std::set<std::string>> available;  // model -> Deployments; guarded by mu
  std::map<std::string, Clock::time_point> done_at;        // guarded by mu
  auto informer =
      sluice::kube::Informer::ForResource(client, sluice::kube::resources::kDeployments, ns);
  auto handler = std::make_shared<sluice::kube::ResourceEventHandlerFuncs>();
  auto seen = [&](const sluice::kube::ObjectPtr& o) {
    const json& d = *o;
    const json& meta = d["metadata"];
    const json status = d.value("status", json::object());
    const int replicas = d["spec"].value("replicas", 1);
    if (status.value("observedGeneration", int64_t{0}) != meta.value("generation", int64_t{0}) ||
        status.value("availableReplicas", 0) < replicas) {
      return;
    }
    const std::string model =
        meta.value("labels", json::object()).value(sluice::api::kLabelModelDeployment, "");
    std::lock_guard<std::mutex> lock(mu);
    auto& ready = available[model];
    ready.insert(meta.value("name", ""));
    if (ready.size() == 2) done_at.emplace(model, Clock::now());  // the router and the revision
  };
  handler->on_add = seen;
  handler->on_update = [&](const sluice::kube::ObjectPtr&, const sluice::kube::ObjectPtr& o) {
    seen(o);
  };
  informer->AddEventHandler(handler);
  informer->Start();
  informer->WaitForSync(Clock::now() + std::chrono::seconds(30));

  std::cerr << "baseline: creating " << f.count
            << " ModelDeployments and their first reconcile's objects in " << ns << " ...\n";
  const auto start = Clock::now();
  const Created created = CreateModelDeployments(f, client, ns, [&](const json& md) {
    return CreateFirstReconcileObjects(client, ns, md, f.router_replicas, f.baseline_apply);
  });
  const auto created_all = Clock::now();
  const bool all = it::Eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return static_cast<int>(done_at.size()) >= f.count - created.failures;
      },
      f.timeout, std::chrono::milliseconds(200));
  const auto done = Clock::now();
  std::vector<double> latencies;
  {
    std::lock_guard<std::mutex> lock(mu);
    latencies = Latencies(created, done_at);
  }
  json report = {
      {"baseline", f.baseline_apply ? "server-side apply" : "create"},
      {"count", f.count},
      {"create_failures", created.failures},
      {"available", latencies.size()},
      {"all_available", all},
      {"replicas_per_model", f.replicas},
      {"router_replicas", f.router_replicas},
      {"fake_kubelet", f.fake_kubelet},
      {"create_seconds", std::chrono::duration<double>(created_all - start).count()},
      {"first_create_to_last_available_seconds",
       std::chrono::duration<double>(done - start).count()},
      {"create_to_available_ms",
       {{"p50", Percentile(latencies, 50)},
        {"p90", Percentile(latencies, 90)},
        {"p99", Percentile(latencies, 99)},
        {"max", Percentile(latencies, 100)}}},
  };
  std::cout << report.dump(2) << "\n";
  if (!f.json_out.empty()) std::ofstream(f.json_out) << report.dump(2) << "\n";
  informer->Stop();
  (void)client.Delete(sluice::kube::resources::kNamespaces, "", ns);
  return all ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, f)) return 2;
  auto config = sluice::kube::Config::FromKubeconfig(f.kubeconfig);
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  auto client_or = sluice::kube::Client::Create(*config);
  if (!client_or.ok()) {
    std::cerr << client_or.status() << "\n";
    return 1;
  }
  auto& client = **client_or;
  if (auto s = it::InstallCrds(client, f.crd_dir); !s.ok()) {
    std::cerr << "installing CRDs: " << s << "\n";
    return 1;
  }
  const std::string ns = "bench-" + std::to_string(::getpid());
  if (auto s = it::CreateNamespace(client, ns); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::unique_ptr<it::FakeKubelet> kubelet;
  if (f.fake_kubelet) {
    kubelet = std::make_unique<it::FakeKubelet>(client, ns);
    kubelet->set_enabled(true);
  }

  if (f.baseline) return Baseline(f, client, ns);

  const std::string ports = "/tmp/sluice-operator-bench-" + std::to_string(::getpid()) + ".ports";
  sluice::testing::SpawnOptions so;
  so.argv = {f.operator_bin, "--kubeconfig=" + f.kubeconfig, "--namespaces=" + ns,
             "--leader-elect=on", "--leader-election-namespace=" + ns,
             "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--ports-file=" + ports,
             "--workers=" + std::to_string(f.workers),
             "--router-replicas=" + std::to_string(f.router_replicas), "--log-level=" + f.operator_log_level};
  so.argv.insert(so.argv.end(), f.operator_flags.begin(), f.operator_flags.end());
  so.log_path = f.log_path;
  auto op = sluice::testing::Subprocess::Spawn(so);
  if (!op.ok()) {
    std::cerr << op.status() << "\n";
    return 1;
  }
  int metrics_port = 0;
  if (!it::Eventually([&] {
        std::ifstream in(ports);
        json p = json::parse(in, nullptr, false);
        if (p.is_discarded() || !p.contains("metrics")) return false;
        metrics_port = p["metrics"];
        return it::HttpGet(p["health"].get<int>(), "/readyz").first == 200;
      }, std::chrono::seconds(60))) {
    std::cerr << "operator not ready:\n" << sluice::testing::TailFile(f.log_path) << "\n";
    return 1;
  }
  const ProcSample idle = ReadProc((*op)->pid());

  // Healthy times, from a watch on every ModelDeployment of the namespace.
  std::mutex mu;
  std::map<std::string, Clock::time_point> healthy;   // guarded by mu
  auto informer = sluice::kube::Informer::ForResource(client, it::kMdGvr, ns);
  auto handler = std::make_shared<sluice::kube::ResourceEventHandlerFuncs>();
  auto seen = [&](const sluice::kube::ObjectPtr& o) {
    const json& md = *o;
    if (it::Phase(md) != "Healthy") return;
    if (md["status"].value("observedGeneration", int64_t{0}) != md["metadata"].value("generation", int64_t{0})) return;
    std::lock_guard<std::mutex> lock(mu);
    healthy.emplace(md["metadata"]["name"].get<std::string>(), Clock::now());
  };
  handler->on_add = seen;
  handler->on_update = [&](const sluice::kube::ObjectPtr&, const sluice::kube::ObjectPtr& o) { seen(o); };
  informer->AddEventHandler(handler);
  informer->Start();
  informer->WaitForSync(Clock::now() + std::chrono::seconds(30));

  std::cerr << "creating " << f.count << " ModelDeployments in " << ns << " ...\n";
  const auto start = Clock::now();
  const Created created = CreateModelDeployments(f, client, ns);
  const auto created_all = Clock::now();
  const bool all = it::Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<int>(healthy.size()) >= f.count - created.failures;
  }, f.timeout, std::chrono::milliseconds(200));
  const auto done = Clock::now();

  std::vector<double> latencies;
  {
    std::lock_guard<std::mutex> lock(mu);
    latencies = Latencies(created, healthy);
  }
  const double total_s = std::chrono::duration<double>(done - start).count();
  const double create_s = std::chrono::duration<double>(created_all - start).count();

  std::cerr << "at rest for " << f.rest.count() / 1000 << " s ...\n";
  const ProcSample rest_start = ReadProc((*op)->pid());
  std::this_thread::sleep_for(f.rest);  // the measurement window itself
  const ProcSample rest_end = ReadProc((*op)->pid());
  // A run on an overloaded API server can cost the operator its Lease (it then exits, as it
  // should): the figures below would be of a dead process, so the report says so.
  const bool operator_running = (*op)->Running();
  if (!operator_running) {
    std::cerr << "the operator exited during the run:\n"
              << sluice::testing::TailFile(f.log_path, 5) << "\n";
  }
  const std::string metrics = it::HttpGet(metrics_port, "/metrics").second;
  double cached_objects = NAN;
  double kube_connections = NAN;
  {
    std::istringstream in(metrics);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("sluice_operator_cache_objects ", 0) == 0) {
        cached_objects = std::stod(line.substr(line.rfind(' ') + 1));
      }
      if (line.rfind("sluice_operator_kube_connections_opened_total ", 0) == 0) {
        kube_connections = std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
  }
  double reconciles = 0;
  const double p99 = HistogramQuantile(metrics, "sluice_operator_reconcile_duration_seconds",
                                       "controller=\"modeldeployment\"", 0.99, &reconciles);
  const double p50r = HistogramQuantile(metrics, "sluice_operator_reconcile_duration_seconds",
                                        "controller=\"modeldeployment\"", 0.50, nullptr);
  const double rest_cpu =
      (rest_end.cpu_seconds - rest_start.cpu_seconds) / (static_cast<double>(f.rest.count()) / 1000.0);

  json report = {
      {"count", f.count},
      {"create_failures", created.failures},
      {"healthy", latencies.size()},
      {"all_healthy", all},
      {"replicas_per_model", f.replicas},
      {"router_replicas", f.router_replicas},
      {"workers", f.workers},
      {"operator_flags", f.operator_flags},
      {"fake_kubelet", f.fake_kubelet},
      {"create_seconds", create_s},
      {"first_create_to_last_healthy_seconds", total_s},
      {"apply_to_healthy_ms",
       {{"p50", Percentile(latencies, 50)},
        {"p90", Percentile(latencies, 90)},
        {"p99", Percentile(latencies, 99)},
        {"max", Percentile(latencies, 100)}}},
      {"operator_running_at_end", operator_running},
      {"operator_rss_mib", {{"idle_before", idle.rss_mib}, {"at_rest", rest_end.rss_mib}}},
      {"operator_cache_objects", cached_objects},
      {"operator_kube_connections_opened", kube_connections},
      {"operator_cpu_at_rest_percent_of_one_core", rest_cpu * 100.0},
      {"operator_cpu_seconds_total", rest_end.cpu_seconds},
      {"reconciles", reconciles},
      {"reconcile_p50_ms", p50r * 1000.0},
      {"reconcile_p99_ms", p99 * 1000.0},
  };
  std::cout << report.dump(2) << "\n";
  if (!f.json_out.empty()) std::ofstream(f.json_out) << report.dump(2) << "\n";

  informer->Stop();
  kubelet.reset();
  (void)(*op)->Stop(std::chrono::seconds(30));
  (void)client.Delete(sluice::kube::resources::kNamespaces, "", ns);
  std::remove(ports.c_str());
  return all && operator_running ? 0 : 1;
}
