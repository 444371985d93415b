#pragma once

// The ConcurrencySource of the built-in autoscaler: every scrape_period it reads
// sluice_server_inflight_requests from the Ready serving pods of each ModelDeployment that is
// autoscaled in Concurrency mode, sums it per revision (pods by their sluice.dev/revision label)
// and keeps the samples for the longest window the autoscaler looks at. Sampling in the
// background, about a second apart, is what gives the 6 s panic window enough points to react
// to a burst within seconds.
//
// A revision's sample is the sum over its pods that answered, scaled up by ready / answered
// when some did not (so one slow pod does not read as a drop in load); no pod answering gives
// no sample at all, never a zero.

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "controllers/autoscaler/concurrency_source.h"
#include "controllers/scrape/http_fetcher.h"
#include "controllers/scrape/pod_finder.h"
#include "controllers/scrape/prom_text.h"
#include "controllers/scrape/scrape_loop.h"
#include "lib/base/clock.h"
#include "lib/controller/object_io.h"

namespace sluice::controllers {

// ModelDeployments autoscaled in Concurrency mode are filed under "true": the ones ScrapeOnce
// reads. Register it with the cache's ModelDeployments so a scrape does not read every one.
const ObjectIndex& ConcurrencyAutoscaledIndex();

struct ConcurrencyScraperOptions {
  int32_t default_port = 8080;  // when a server pod declares no container port named "http"
  std::chrono::milliseconds scrape_period{1000};
  std::chrono::milliseconds scrape_timeout{500};
  // Samples older than this are dropped; at least the longest stableWindow in use.
  std::chrono::milliseconds retention{std::chrono::minutes(2)};
  Clock* clock = nullptr;  // nullptr: Clock::Real(); must outlive the scraper
};

class ConcurrencyScraper final : public ConcurrencySource {
 public:
  // `reader` (ModelDeployments), `pods` and `fetcher` must outlive the scraper.
  ConcurrencyScraper(const ObjectReader& reader, PodFinder& pods, HttpFetcher& fetcher,
                     ConcurrencyScraperOptions options);
  ~ConcurrencyScraper() override;

  ConcurrencyScraper(const ConcurrencyScraper&) = delete;
  ConcurrencyScraper& operator=(const ConcurrencyScraper&) = delete;

  // Starts / stops the background sampling; both idempotent; Stop() joins.
  void Start();
  void Stop();

  // One round: a sample per revision of every autoscaled ModelDeployment, and pruning. Exposed
  // so tests drive it with a fake clock.
  void ScrapeOnce();

  Result<std::vector<ConcurrencySample>> Samples(const std::string& ns, const std::string& name,
                                                 const std::string& revision,
                                                 Clock::Steady::time_point since) override;

 private:
  void SampleModelDeployment(const std::string& ns, const std::string& name,
                             Clock::Steady::time_point at);

  const ObjectReader& reader_;
  const ConcurrencyScraperOptions options_;
  Clock& clock_;

  std::mutex mu_;
  // By "ns/name/revision", oldest first.
  std::map<std::string, std::deque<ConcurrencySample>> samples_;  // guarded by mu_
  ScrapeLoop loop_;  // runs ScrapeOnce; stopped before the rest goes
};

// The sum of sluice_server_inflight_requests in a /metrics page (every series of that name);
// an error when the page does not parse or has none. Pure; exposed for tests.
Result<double> InflightFromPage(std::string_view page);
// The same, from a page already parsed.
Result<double> Inflight(const PromExposition& page);

}  // namespace sluice::controllers
