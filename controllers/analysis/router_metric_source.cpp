#include "controllers/analysis/router_metric_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "controllers/modeldeployment/resources.h"
#include "controllers/scrape/prom_text.h"
#include "lib/api/metric_names.h"
#include "lib/api/object_labels.h"
#include "lib/api/time.h"

namespace sluice::controllers {

using nlohmann::json;
using Counters = RouterMetricsScraper::RevisionCounters;

namespace {

// "12:00:01.250Z"-style stamps for messages: the seconds matter when windows are 5 s long.
std::string Stamp(WallTime t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t - TruncateToSeconds(t)).count();
  std::string s = FormatTime(t);
  if (!s.empty() && s.back() == 'Z') s.pop_back();
  char frac[8];
  std::snprintf(frac, sizeof(frac), ".%03lldZ", static_cast<long long>(ms));
  return s + frac;
}

// The increase of one counter over consecutive observations, a drop read as a restart from 0.
double Increase(const std::vector<double>& values) {
  double total = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    total += values[i] >= values[i - 1] ? values[i] - values[i - 1] : values[i];
  }
  return total;
}

bool UnderAnalysis(const json& md) {
  const json& status = md.value("status", json::object());
  if (status.value("canaryRevision", "").empty()) return false;
  if (status.value("stableRevision", "").empty()) return false;
  const std::string phase = status.value("phase", "");
  return phase == "Progressing" || phase == "Paused";
}

class RouterSource final : public MetricSource {
 public:
  RouterSource(RouterMetricsScraper& metrics, std::string ns, std::string md,
               std::shared_ptr<MetricSource> queries)
      : metrics_(metrics), ns_(std::move(ns)), md_(std::move(md)), queries_(std::move(queries)) {}

  Result<TrafficSample> Traffic(const std::string& revision, const Window& window) override {
    return metrics_.Traffic(ns_, md_, revision, window);
  }

  Result<std::optional<double>> Query(const std::string& query, const std::string& revision,
                                      const Window& window) override {
    if (queries_) return queries_->Query(query, revision, window);
    return Unimplemented(
        "the router provider runs no queries; set spec.rollout.canary.analysis.prometheus or "
        "the operator's --prometheus-url");
  }

 private:
  RouterMetricsScraper& metrics_;
  const std::string ns_;
  const std::string md_;
  const std::shared_ptr<MetricSource> queries_;
};

}  // namespace

const ObjectIndex& UnderAnalysisIndex() {
  static const ObjectIndex kIndex = PredicateIndex("under-analysis", UnderAnalysis);
  return kIndex;
}

Result<std::map<std::string, Counters>> ParseRouterCounters(std::string_view page) {
  ASSIGN_OR_RETURN(PromExposition parsed, ParsePrometheusText(page));
  return RouterCounters(parsed);
}

Result<std::map<std::string, Counters>> RouterCounters(const PromExposition& page) {
  std::map<std::string, Counters> out;
  for (const PromSample& s : page.samples) {
    const bool requests = s.name == api::kRouterRequestsTotal;
    const bool bucket = s.name == api::kRouterRequestDurationBucket;
    const bool guard = s.name == api::kRouterGuardTripped;
    if (!requests && !bucket && !guard) continue;
    const std::string* revision = s.Label(api::kRevisionLabel);
    if (revision == nullptr) continue;
    if (std::isnan(s.value)) {
      return InvalidArgument(s.name + "{revision=\"" + *revision + "\"} is NaN");
    }
    Counters& c = out[*revision];
    if (guard) {
      c.guard_tripped = std::max(c.guard_tripped, s.value);
    } else if (requests) {
      const std::string* code = s.Label(api::kCodeLabel);
      if (code != nullptr) c.requests_by_code[*code] += s.value;
    } else {
      const std::string* le = s.Label(api::kBucketBoundLabel);
      if (le == nullptr) continue;
      char* end = nullptr;
      const double bound = std::strtod(le->c_str(), &end);
      if (le->empty() || end != le->c_str() + le->size()) {
        return InvalidArgument(std::string(api::kRouterRequestDurationBucket) + ": le=\"" + *le +
                               "\" is not a number");
      }
      c.buckets[bound] += s.value;
    }
  }
  return out;
}

Result<TrafficSample> TrafficBetween(
    const std::vector<const RouterMetricsScraper::Snapshot*>& snapshots,
    const std::string& revision) {
  if (snapshots.empty()) return FailedPrecondition("no router scrape to measure from");
  const RouterMetricsScraper::Snapshot& first = *snapshots.front();
  const RouterMetricsScraper::Snapshot& last = *snapshots.back();
  for (const RouterMetricsScraper::Snapshot* bound : {&first, &last}) {
    if (!bound->listing.ok()) {
      return Unavailable("router pods at " + Stamp(bound->at) + ": " + bound->listing.message());
    }
    for (const auto& [pod, scrape] : bound->pods) {
      if (!scrape.status.ok()) {
        return Unavailable("router pod " + pod + " at " + Stamp(bound->at) + ": " +
                           scrape.status.message());
      }
    }
  }
  if (first.pods.empty() && last.pods.empty()) {
    return Unavailable("no Ready router pod at " + Stamp(first.at) + " nor at " + Stamp(last.at));
  }

  static const Counters kZero;
  std::set<std::string> pod_names;
  for (const auto* s : snapshots) {
    for (const auto& [pod, scrape] : s->pods) pod_names.insert(pod);
  }
  std::map<std::string, double> by_code;
  std::map<double, double> buckets;
  for (const std::string& pod : pod_names) {
    // This pod's counters for the revision at each snapshot that reached it; a pod not in the
    // first snapshot started inside the window, from zero.
    std::vector<const Counters*> seen;
    if (!first.pods.count(pod)) seen.push_back(&kZero);
    for (const auto* s : snapshots) {
      auto it = s->pods.find(pod);
      if (it == s->pods.end() || !it->second.status.ok()) continue;
      auto rev = it->second.revisions.find(revision);
      seen.push_back(rev == it->second.revisions.end() ? &kZero : &rev->second);
    }
    std::set<std::string> codes;
    std::set<double> les;
    for (const Counters* c : seen) {
      for (const auto& [code, v] : c->requests_by_code) codes.insert(code);
      for (const auto& [le, v] : c->buckets) les.insert(le);
    }
    std::vector<double> values(seen.size());
    for (const std::string& code : codes) {
      for (size_t i = 0; i < seen.size(); ++i) {
        auto it = seen[i]->requests_by_code.find(code);
        values[i] = it == seen[i]->requests_by_code.end() ? 0 : it->second;
      }
      by_code[code] += Increase(values);
    }
    for (double le : les) {
      for (size_t i = 0; i < seen.size(); ++i) {
        auto it = seen[i]->buckets.find(le);
        values[i] = it == seen[i]->buckets.end() ? 0 : it->second;
      }
      buckets[le] += Increase(values);
    }
  }

  double requests = 0, errors = 0;
  for (const auto& [code, n] : by_code) {
    requests += n;
    if (code == api::kCode5xx || code == api::kCodeError) errors += n;
  }
  TrafficSample out;
  for (const auto& [pod, scrape] : last.pods) {
    auto rev = scrape.revisions.find(revision);
    if (rev != scrape.revisions.end() && rev->second.guard_tripped > 0) out.guard_tripped = true;
  }
  out.requests = std::llround(requests);
  out.errors = std::llround(errors);
  std::vector<HistogramBucket> hist;
  for (const auto& [le, n] : buckets) hist.push_back({le, n});
  out.latency_p99_seconds = HistogramQuantile(0.99, std::move(hist));
  return out;
}

RouterMetricsScraper::RouterMetricsScraper(const ObjectReader& reader, PodFinder& pods,
                                           HttpFetcher& fetcher,
                                           RouterMetricsScraperOptions options)
    : reader_(reader),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()),
      loop_(pods, fetcher,
            ScrapeLoopOptions{options.default_port, options.scrape_period, options.scrape_timeout,
                              &clock_, api::kAdminPortName},
            [this] { ScrapeOnce(); }) {}

RouterMetricsScraper::~RouterMetricsScraper() {
  Stop();
}

void RouterMetricsScraper::Start() {
  loop_.Start();
}

void RouterMetricsScraper::Stop() {
  loop_.Stop();
}

RouterMetricsScraper::Snapshot RouterMetricsScraper::Take(const std::string& ns,
                                                          const std::string& md) {
  Snapshot s;
  s.at = clock_.WallNow();
  auto pods = loop_.Pods(ns, {{api::kLabelComponent, "router"}, {api::kLabelModelDeployment, md}});
  if (!pods.ok()) {
    s.listing = pods.status();
    return s;
  }
  for (const PodTarget& pod : *pods) {
    PodScrape& scrape = s.pods[pod.name];
    PodPage page = loop_.Fetch(pod);
    if (!page.page.ok()) {
      scrape.status = page.page.status();
      continue;
    }
    auto counters = RouterCounters(*page.page);
    if (!counters.ok()) {
      scrape.status = counters.status().Annotate("GET " + page.url);
      continue;
    }
    scrape.revisions = std::move(*counters);
  }
  return s;
}

void RouterMetricsScraper::Insert(const std::string& key, Snapshot snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& snaps = histories_[key].snapshots;
  auto pos = snaps.end();
  while (pos != snaps.begin() && std::prev(pos)->at > snapshot.at) --pos;
  snaps.insert(pos, std::move(snapshot));
}

void RouterMetricsScraper::ScrapeOnce() {
  std::set<std::pair<std::string, std::string>> follow;
  for (const ObjectPtr& md :
       reader_.ListByIndex(api::kModelDeploymentsGvr, "", UnderAnalysisIndex(), "true")) {
    follow.emplace(MetaString(*md, "namespace"), MetaString(*md, "name"));
  }
  const auto now = clock_.Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, h] : histories_) {
      if (h.last_asked != Clock::Steady::time_point{} && now - h.last_asked < options_.retention) {
        const auto slash = key.find('/');
        follow.emplace(key.substr(0, slash), key.substr(slash + 1));
      }
    }
  }
  for (const auto& [ns, md] : follow) {
    Insert(ns + "/" + md, Take(ns, md));
  }
  const WallTime horizon = clock_.WallNow() - options_.retention;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = histories_.begin(); it != histories_.end();) {
    auto& snaps = it->second.snapshots;
    // One snapshot older than the horizon is kept as the start bound of a window reaching it.
    while (snaps.size() > 1 && snaps[1].at < horizon) snaps.pop_front();
    const auto slash = it->first.find('/');
    const bool followed =
        follow.count({it->first.substr(0, slash), it->first.substr(slash + 1)}) > 0;
    if (!followed && (snaps.empty() || snaps.back().at < horizon)) {
      it = histories_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<TrafficSample> RouterMetricsScraper::Traffic(const std::string& ns, const std::string& md,
                                                    const std::string& revision,
                                                    const Window& window) {
  const std::string key = ns + "/" + md;
  bool scrape_now = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    History& h = histories_[key];
    h.last_asked = clock_.Now();
    scrape_now = h.snapshots.empty() || h.snapshots.back().at < window.end;
  }
  if (scrape_now) Insert(key, Take(ns, md));

  std::lock_guard<std::mutex> lock(mu_);
  const auto& snaps = histories_[key].snapshots;
  std::optional<size_t> start;
  for (size_t i = 0; i < snaps.size() && snaps[i].at <= window.start; ++i) start = i;
  if (!start) {
    if (snaps.empty() || snaps.front().at > window.start + options_.start_slack) {
      return FailedPrecondition(
          "no scrape of the router pods at the window start " + Stamp(window.start) +
          (snaps.empty() ? std::string() : "; the first is from " + Stamp(snaps.front().at)));
    }
    start = 0;
  }
  std::optional<size_t> end;
  for (size_t i = *start; i < snaps.size(); ++i) {
    if (snaps[i].at >= window.end) {
      end = i;
      break;
    }
  }
  if (!end) {
    return FailedPrecondition("no scrape of the router pods at the window end " +
                              Stamp(window.end));
  }
  std::vector<const Snapshot*> bounded;
  for (size_t i = *start; i <= *end; ++i) bounded.push_back(&snaps[i]);
  return TrafficBetween(bounded, revision);
}

std::shared_ptr<MetricSource> RouterMetricsScraper::SourceFor(
    const std::string& ns, const std::string& md, std::shared_ptr<MetricSource> queries) {
  return std::make_shared<RouterSource>(*this, ns, md, std::move(queries));
}

size_t RouterMetricsScraper::SnapshotCount(const std::string& ns, const std::string& md) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = histories_.find(ns + "/" + md);
  return it == histories_.end() ? 0 : it->second.snapshots.size();
}

}  // namespace sluice::controllers
