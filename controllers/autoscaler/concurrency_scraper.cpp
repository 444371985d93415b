#include "controllers/autoscaler/concurrency_scraper.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <set>

#include "controllers/modeldeployment/resources.h"
#include "controllers/scrape/prom_text.h"
#include "lib/api/metric_names.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {

using nlohmann::json;

namespace {

bool ConcurrencyAutoscaled(const json& md) {
  const json& spec = md.value("spec", json::object());
  auto as = spec.find("autoscaling");
  if (as == spec.end() || !as->is_object()) return false;
  return as->value("mode", "Concurrency") == "Concurrency";
}

}  // namespace

const ObjectIndex& ConcurrencyAutoscaledIndex() {
  static const ObjectIndex kIndex = PredicateIndex("concurrency-autoscaled", ConcurrencyAutoscaled);
  return kIndex;
}

Result<double> InflightFromPage(std::string_view page) {
  ASSIGN_OR_RETURN(PromExposition parsed, ParsePrometheusText(page));
  return Inflight(parsed);
}

Result<double> Inflight(const PromExposition& page) {
  double sum = 0;
  bool found = false;
  for (const PromSample& s : page.samples) {
    if (s.name != api::kServerInflightRequests) continue;
    if (!std::isfinite(s.value))
      return InvalidArgument(std::string(api::kServerInflightRequests) + " is not finite");
    sum += s.value;
    found = true;
  }
  if (!found) return NotFound(std::string("no ") + api::kServerInflightRequests + " in the page");
  return sum;
}

ConcurrencyScraper::ConcurrencyScraper(const ObjectReader& reader, PodFinder& pods,
                                       HttpFetcher& fetcher, ConcurrencyScraperOptions options)
    : reader_(reader),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()),
      loop_(pods, fetcher,
            ScrapeLoopOptions{options.default_port, options.scrape_period, options.scrape_timeout,
                              &clock_},
            [this] { ScrapeOnce(); }) {}

ConcurrencyScraper::~ConcurrencyScraper() {
  Stop();
}

void ConcurrencyScraper::Start() {
  loop_.Start();
}

void ConcurrencyScraper::Stop() {
  loop_.Stop();
}

void ConcurrencyScraper::SampleModelDeployment(const std::string& ns, const std::string& name,
                                               Clock::Steady::time_point at) {
  auto pods =
      loop_.Pods(ns, {{api::kLabelModelDeployment, name}, {api::kLabelComponent, "server"}});
  if (!pods.ok()) {
    spdlog::debug("md={}/{} concurrency: {}", ns, name, pods.status().message());
    return;
  }
  struct Tally {
    double sum = 0;
    int answered = 0;
    int ready = 0;
  };
  std::map<std::string, Tally> by_revision;
  for (const PodTarget& pod : *pods) {
    auto rev = pod.labels.find(api::kLabelRevision);
    if (rev == pod.labels.end()) continue;
    Tally& t = by_revision[rev->second];
    ++t.ready;
    PodPage page = loop_.Fetch(pod);
    Result<double> inflight =
        page.page.ok() ? Inflight(*page.page) : Result<double>(page.page.status());
    if (!inflight.ok()) {
      spdlog::debug("md={}/{} rev={} pod={} concurrency: {}", ns, name, rev->second, pod.name,
                    inflight.status().message());
      continue;
    }
    t.sum += *inflight;
    ++t.answered;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [revision, t] : by_revision) {
    if (t.answered == 0) continue;
    const double total = t.sum * static_cast<double>(t.ready) / static_cast<double>(t.answered);
    samples_[ns + "/" + name + "/" + revision].push_back({at, total});
  }
}

void ConcurrencyScraper::ScrapeOnce() {
  const auto at = clock_.Now();
  for (const ObjectPtr& md :
       reader_.ListByIndex(api::kModelDeploymentsGvr, "", ConcurrencyAutoscaledIndex(), "true")) {
    SampleModelDeployment(MetaString(*md, "namespace"), MetaString(*md, "name"), at);
  }
  const auto horizon = at - options_.retention;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = samples_.begin(); it != samples_.end();) {
    auto& q = it->second;
    while (!q.empty() && q.front().at < horizon) q.pop_front();
    it = q.empty() ? samples_.erase(it) : std::next(it);
  }
}

Result<std::vector<ConcurrencySample>> ConcurrencyScraper::Samples(
    const std::string& ns, const std::string& name, const std::string& revision,
    Clock::Steady::time_point since) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ConcurrencySample> out;
  auto it = samples_.find(ns + "/" + name + "/" + revision);
  if (it == samples_.end()) return out;
  for (const ConcurrencySample& s : it->second) {
    if (s.at >= since) out.push_back(s);
  }
  return out;
}

}  // namespace sluice::controllers
