#include "operator/options.h"

#include <charconv>
#include <functional>
#include <map>

#include "lib/api/duration.h"

namespace sluice::app {

namespace {

Result<bool> ParseBool(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "on" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "off" || v == "0" || v == "no") return false;
  return InvalidArgument("--" + flag + ": \"" + v + "\" is not on/off (true/false)");
}

Result<int64_t> ParseInt(const std::string& flag, const std::string& v, int64_t min, int64_t max) {
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < min || out > max) {
    return InvalidArgument("--" + flag + ": \"" + v + "\" is not a number from " +
                           std::to_string(min) + " to " + std::to_string(max));
  }
  return out;
}

Result<std::chrono::seconds> ParseSeconds(const std::string& flag, const std::string& v) {
  auto d = controllers::ParseDuration(v);
  if (!d.ok()) return InvalidArgument("--" + flag + ": " + d.status().message());
  return std::chrono::duration_cast<std::chrono::seconds>(*d);
}

std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<Address> ParseAddress(const std::string& text) {
  Address a;
  std::string port = text;
  if (auto colon = text.rfind(':'); colon != std::string::npos) {
    a.host = text.substr(0, colon);
    if (a.host.empty()) a.host = "0.0.0.0";
    if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
      a.host = a.host.substr(1, a.host.size() - 2);
    }
    port = text.substr(colon + 1);
  }
  int p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535) {
    return InvalidArgument("\"" + text + "\" is not host:port with a port from 0 to 65535");
  }
  a.port = static_cast<uint16_t>(p);
  return a;
}

std::string Usage() {
  return R"(sluice-operator: reconciles ModelDeployments and FeatureViews.

Flags (--flag=value or --flag value):
  --kubeconfig PATH            kubeconfig file; default $KUBECONFIG, then in-cluster, then ~/.kube/config
  --context NAME               kubeconfig context; default its current-context
  --namespaces all|a,b,...     namespaces to watch (default all)
  --leader-elect on|off        elect one active replica through a Lease (default on)
  --leader-election-namespace  namespace of the Lease (default: the operator's own namespace)
  --leader-election-id NAME    name of the Lease (default sluice-operator)
  --identity NAME              this replica's identity in the Lease (default hostname_random)
  --lease-duration D           (default 15s)   --renew-deadline D (10s)   --retry-period D (2s)
  --metrics-addr HOST:PORT     Prometheus /metrics (default 0.0.0.0:8080; port 0 picks one)
  --health-addr HOST:PORT      /healthz and /readyz (default 0.0.0.0:8081; port 0 picks one)
  --ports-file PATH            write {"metrics": port, "health": port} once listening
  --workers N                  reconcile workers per controller (default 4)
  --resync-period D            revisit every cached object this often (default 10m; 0s: never)
  --shutdown-timeout D         wait this long for in-flight reconciles on SIGTERM (default 30s)
  --secret-recheck-period D    recheck a FeatureView's missing or bad Redis Secret (default 30s)
  --server-image IMAGE         sluice-server image when spec.runtime.image is unset
  --router-image IMAGE         sluice-router image (default: the server image)
  --image-pull-policy POLICY   Always | IfNotPresent | Never (default IfNotPresent)
  --router-replicas N          router pods per ModelDeployment (default 1)
  --analysis-provider P        router | prometheus | none: canary metrics when the spec names no
                               Prometheus (default router: scrape the router pods)
  --prometheus-url URL         Prometheus for --analysis-provider=prometheus and for custom
                               queries of specs without analysis.prometheus
  --autoscaler-scrape-period D sample serving pods' in-flight requests this often (default 1s)
  --log-format json|text       (default json)
  --log-level LEVEL            trace | debug | info | warn | error (default info)
  --help
)";
}

Result<OperatorOptions> ParseFlags(int argc, const char* const* argv) {
  OperatorOptions o;
  using Setter = std::function<Status(const std::string&)>;
  auto str = [](std::string& field) -> Setter {
    return [&field](const std::string& v) {
      field = v;
      return Status::Ok();
    };
  };
  auto secs = [](const char* flag, std::chrono::seconds& field) -> Setter {
    return [flag, &field](const std::string& v) -> Status {
      ASSIGN_OR_RETURN(field, ParseSeconds(flag, v));
      return Status::Ok();
    };
  };
  auto addr = [](const char* flag, Address& field) -> Setter {
    return [flag, &field](const std::string& v) -> Status {
      auto a = ParseAddress(v);
      if (!a.ok()) return InvalidArgument(std::string("--") + flag + ": " + a.status().message());
      field = *a;
      return Status::Ok();
    };
  };
  const std::map<std::string, Setter> flags = {
      {"kubeconfig", str(o.kubeconfig)},
      {"context", str(o.context)},
      {"namespaces",
       [&](const std::string& v) {
         o.namespaces = v == "all" || v == "*" ? std::vector<std::string>{} : SplitList(v);
         return Status::Ok();
       }},
      {"leader-elect",
       [&](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(o.leader_elect, ParseBool("leader-elect", v));
         return Status::Ok();
       }},
      {"leader-election-namespace", str(o.leader_election_namespace)},
      {"leader-election-id", str(o.leader_election_id)},
      {"identity", str(o.identity)},
      {"lease-duration", secs("lease-duration", o.lease_duration)},
      {"renew-deadline", secs("renew-deadline", o.renew_deadline)},
      {"retry-period", secs("retry-period", o.retry_period)},
      {"metrics-addr", addr("metrics-addr", o.metrics_addr)},
      {"health-addr", addr("health-addr", o.health_addr)},
      {"ports-file", str(o.ports_file)},
      {"workers",
       [&](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(int64_t n, ParseInt("workers", v, 1, 256));
         o.workers = static_cast<int>(n);
         return Status::Ok();
       }},
      {"resync-period", secs("resync-period", o.resync_period)},
      {"shutdown-timeout", secs("shutdown-timeout", o.shutdown_timeout)},
      {"secret-recheck-period", secs("secret-recheck-period", o.secret_recheck_period)},
      {"server-image", str(o.workload.server_image)},
      {"router-image", str(o.workload.router_image)},
      {"image-pull-policy",
       [&](const std::string& v) -> Status {
         if (v != "Always" && v != "IfNotPresent" && v != "Never") {
           return InvalidArgument("--image-pull-policy: \"" + v +
                                  "\" is not Always, IfNotPresent or Never");
         }
         o.workload.image_pull_policy = v;
         return Status::Ok();
       }},
      {"router-replicas",
       [&](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(int64_t n, ParseInt("router-replicas", v, 0, 100));
         o.workload.router_replicas = static_cast<int32_t>(n);
         return Status::Ok();
       }},
      {"analysis-provider",
       [&](const std::string& v) -> Status {
         if (v == "router") {
           o.analysis_provider = OperatorOptions::AnalysisProvider::kRouter;
         } else if (v == "prometheus") {
           o.analysis_provider = OperatorOptions::AnalysisProvider::kPrometheus;
         } else if (v == "none") {
           o.analysis_provider = OperatorOptions::AnalysisProvider::kNone;
         } else {
           return InvalidArgument("--analysis-provider: \"" + v +
                                  "\" is not router, prometheus or none");
         }
         return Status::Ok();
       }},
      {"prometheus-url",
       [&](const std::string& v) -> Status {
         if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
           return InvalidArgument("--prometheus-url: \"" + v + "\" is not an http(s) URL");
         }
         o.prometheus_url = v;
         return Status::Ok();
       }},
      {"autoscaler-scrape-period",
       [&](const std::string& v) -> Status {
         auto d = controllers::ParseDuration(v);
         if (!d.ok()) return InvalidArgument("--autoscaler-scrape-period: " + d.status().message());
         if (d->count() < 100) {
           return InvalidArgument("--autoscaler-scrape-period: at least 100ms");
         }
         o.autoscaler_scrape_period = *d;
         return Status::Ok();
       }},
      {"log-format",
       [&](const std::string& v) -> Status {
         if (v != "json" && v != "text") {
           return InvalidArgument("--log-format: \"" + v + "\" is not json or text");
         }
         o.log_format = v;
         return Status::Ok();
       }},
      {"log-level",
       [&](const std::string& v) -> Status {
         if (v != "trace" && v != "debug" && v != "info" && v != "warn" && v != "error") {
           return InvalidArgument("--log-level: \"" + v +
                                  "\" is not trace, debug, info, warn or error");
         }
         o.log_level = v;
         return Status::Ok();
       }},
  };

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return InvalidArgument("unexpected argument \"" + arg + "\" (flags start with --)");
    }
    arg = arg.substr(2);
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto it = flags.find(name);
    if (it == flags.end()) return InvalidArgument("unknown flag --" + name);
    if (!has_value) {
      if (name == "leader-elect") {
        // A bare --leader-elect turns it on, as in other operators.
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return InvalidArgument("--" + name + " needs a value");
      }
    }
    RETURN_IF_ERROR(it->second(value));
  }
  if (o.analysis_provider == OperatorOptions::AnalysisProvider::kPrometheus &&
      o.prometheus_url.empty()) {
    return InvalidArgument("--analysis-provider=prometheus needs --prometheus-url");
  }
  if (!(o.lease_duration > o.renew_deadline && o.renew_deadline > o.retry_period &&
        o.retry_period.count() > 0)) {
    return InvalidArgument(
        "--lease-duration must exceed --renew-deadline, which must exceed --retry-period (> 0)");
  }
  return o;
}

}  // namespace sluice::app
