#pragma once

// The built-in analysis provider: each ModelDeployment's router pods count requests, errors and
// latency per revision (sluice_router_requests_total{revision,code} and
// sluice_router_request_duration_seconds{revision}); the operator scrapes them and answers
// Traffic(revision, window) from the difference between two scrapes that bound the window.
//
// RouterMetricsScraper keeps, per ModelDeployment, a history of snapshots (every router pod's
// counters at one time). A background thread takes one every scrape_period for each ModelDeployment
// whose canary is being rolled out (status.canaryRevision set, phase Progressing or Paused) and
// for any whose metrics were asked for within the retention; Traffic() also scrapes at once when
// no snapshot covers the end of the window yet, so a window ending now is measured up to now.
//
// Measuring a window [start, end):
// - the snapshot taken last at or before `start` (or, when history begins later, the first one
//   within start_slack after it) and the first one at or after `end` bound the window;
// - a counter's increase is summed over the router pods, walking every snapshot in between so a
//   counter reset (a restarted router) counts what the new process served instead of a negative
//   number; a pod first seen inside the window starts from zero;
// - errors are code 5xx plus code "error" (no answer from the backend); p99 comes from the
//   increase of each latency bucket, interpolated like PromQL's histogram_quantile;
// - a failed scrape at either bound (no pod list, a pod that did not answer, a page that does
//   not parse) makes the answer an error, never a zero: noDataPolicy judges it;
// - the revision's guard is tripped when any router pod reports sluice_router_guard_tripped 1 in
//   the snapshot that ends the window.

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "controllers/analysis/metric_source.h"
#include "controllers/scrape/http_fetcher.h"
#include "controllers/scrape/pod_finder.h"
#include "controllers/scrape/prom_text.h"
#include "controllers/scrape/scrape_loop.h"
#include "lib/base/clock.h"
#include "lib/controller/object_io.h"

namespace sluice::controllers {

// ModelDeployments with a canary under analysis (a canary and a stable revision, Progressing or
// Paused) are filed under "true": the ones the scraper follows. Register it with the cache's
// ModelDeployments so a scrape does not read every one.
const ObjectIndex& UnderAnalysisIndex();

struct RouterMetricsScraperOptions {
  // The router's admin port (/metrics), used when a router pod declares no container port named
  // "admin" (api::kAdminPortName).
  int32_t default_port = 9090;
  std::chrono::milliseconds scrape_period{1000};
  std::chrono::milliseconds scrape_timeout{500};
  // How long snapshots are kept; a window reaches back at most two analysis intervals.
  std::chrono::milliseconds retention{std::chrono::minutes(5)};
  // How far inside the window the first snapshot may lie when none precedes it (history that
  // began just after the window did, e.g. right after an operator restart).
  std::chrono::milliseconds start_slack{1500};
  Clock* clock = nullptr;  // nullptr: Clock::Real(); must outlive this
};

class RouterMetricsScraper {
 public:
  // `reader` (ModelDeployments, for which ones to follow), `pods` and `fetcher` must outlive it.
  RouterMetricsScraper(const ObjectReader& reader, PodFinder& pods, HttpFetcher& fetcher,
                       RouterMetricsScraperOptions options);
  ~RouterMetricsScraper();

  RouterMetricsScraper(const RouterMetricsScraper&) = delete;
  RouterMetricsScraper& operator=(const RouterMetricsScraper&) = delete;

  // Starts / stops the background scraper; both idempotent; Stop() joins it.
  void Start();
  void Stop();

  // One round of the background scraper: a snapshot of every ModelDeployment followed, and
  // pruning of what is past the retention. Exposed so tests drive it with a fake clock.
  void ScrapeOnce();

  // The traffic of `revision` of ModelDeployment ns/md over `window` (see the file comment).
  Result<TrafficSample> Traffic(const std::string& ns, const std::string& md,
                                const std::string& revision, const Window& window);

  // A MetricSource for one ModelDeployment, answering Traffic from here. Query() has no PromQL
  // to run and reports Unimplemented (missing data) unless `queries` is given; then custom
  // queries go there. The source must not outlive this.
  std::shared_ptr<MetricSource> SourceFor(const std::string& ns, const std::string& md,
                                          std::shared_ptr<MetricSource> queries = nullptr);

  // Snapshots held for ns/md (for tests and logs).
  size_t SnapshotCount(const std::string& ns, const std::string& md) const;

  struct RevisionCounters {
    std::map<std::string, double> requests_by_code;
    std::map<double, double> buckets;  // le -> cumulative count
    double guard_tripped = 0;          // sluice_router_guard_tripped: 1 while tripped
  };
  struct PodScrape {
    Status status;  // not OK: the pod did not answer or its page did not parse
    std::map<std::string, RevisionCounters> revisions;
  };
  struct Snapshot {
    WallTime at;
    Status listing;                         // not OK: the router pods could not be listed
    std::map<std::string, PodScrape> pods;  // by pod name
  };

 private:
  struct History {
    std::deque<Snapshot> snapshots;  // by time, oldest first
    Clock::Steady::time_point last_asked{};
  };

  Snapshot Take(const std::string& ns, const std::string& md);
  void Insert(const std::string& key, Snapshot snapshot);

  const ObjectReader& reader_;
  const RouterMetricsScraperOptions options_;
  Clock& clock_;

  mutable std::mutex mu_;
  std::map<std::string, History> histories_;  // by "ns/md"; guarded by mu_
  ScrapeLoop loop_;                           // runs ScrapeOnce; stopped before the rest goes
};

// The increase of every router counter of `revision` between snapshots.front() and .back() (the
// bounds), summed over pods, with counter resets handled; an error when either bound failed.
// Pure; exposed for tests.
Result<TrafficSample> TrafficBetween(
    const std::vector<const RouterMetricsScraper::Snapshot*>& snapshots,
    const std::string& revision);

// Reads the router's counters out of a /metrics page. Pure; exposed for tests.
Result<std::map<std::string, RouterMetricsScraper::RevisionCounters>> ParseRouterCounters(
    std::string_view page);
// The same, from a page already parsed.
Result<std::map<std::string, RouterMetricsScraper::RevisionCounters>> RouterCounters(
    const PromExposition& page);

}  // namespace sluice::controllers
