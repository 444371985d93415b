#pragma once

// The operator's periodic scrape of pods' /metrics pages, shared by the router metrics scraper
// (canary analysis) and the concurrency scraper (the autoscaler): a background thread that runs
// one round every period, and the steps of a round — find the pods, GET each one's /metrics,
// parse the page. What a round keeps from the pages (snapshots of counters, sums per revision)
// and for how long belongs to its owner.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/scrape/http_fetcher.h"
#include "controllers/scrape/pod_finder.h"
#include "controllers/scrape/prom_text.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::controllers {

struct ScrapeLoopOptions {
  int32_t default_port = 8080;  // when a pod declares no container port named `port_name`
  std::chrono::milliseconds period{1000};
  std::chrono::milliseconds timeout{500};  // per GET
  Clock* clock = nullptr;                  // nullptr: Clock::Real(); must outlive the loop
  // The container port serving /metrics: "http" on sluice-server, "admin" on sluice-router.
  std::string port_name = "http";
};

// One pod's /metrics page. `page` is the parsed exposition, or why there is none: the pod did
// not answer (the fetcher's error), answered with another status than 200, or sent a page that
// does not parse (annotated with "GET <url>").
struct PodPage {
  std::string url;
  Result<PromExposition> page;
};

class ScrapeLoop {
 public:
  // `round` runs on the loop's thread: at once on Start(), then every period (a round that
  // overruns is followed by the next at once, never by a burst of catch-up rounds). `pods` and
  // `fetcher` must outlive the loop.
  ScrapeLoop(PodFinder& pods, HttpFetcher& fetcher, ScrapeLoopOptions options,
             std::function<void()> round);
  ~ScrapeLoop();

  ScrapeLoop(const ScrapeLoop&) = delete;
  ScrapeLoop& operator=(const ScrapeLoop&) = delete;

  // Starts / stops the background thread; both idempotent, and a stopped loop stays stopped.
  // Stop() joins: when it returns no round is running. The owner of `round` stops the loop
  // before it destroys what the round uses.
  void Start();
  void Stop();

  // The pods of `ns` carrying every label of `match` that can answer a scrape (PodFinder).
  Result<std::vector<PodTarget>> Pods(const std::string& ns,
                                      const std::map<std::string, std::string>& match);
  // One GET of `pod`'s /metrics on its container port named "admin" (plain HTTP even when the
  // pod serves TLS), else the one named port_name (else the default port), parsed.
  PodPage Fetch(const PodTarget& pod);

  Clock& clock() const { return clock_; }

 private:
  void Loop();

  PodFinder& pods_;
  HttpFetcher& fetcher_;
  const ScrapeLoopOptions options_;
  Clock& clock_;
  const std::function<void()> round_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;     // started under mu_
};

}  // namespace sluice::controllers
