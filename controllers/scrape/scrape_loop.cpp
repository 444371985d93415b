#include "controllers/scrape/scrape_loop.h"

#include <utility>

namespace sluice::controllers {

ScrapeLoop::ScrapeLoop(PodFinder& pods, HttpFetcher& fetcher, ScrapeLoopOptions options,
                       std::function<void()> round)
    : pods_(pods),
      fetcher_(fetcher),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()),
      round_(std::move(round)) {}

ScrapeLoop::~ScrapeLoop() {
  Stop();
}

void ScrapeLoop::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void ScrapeLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ScrapeLoop::Loop() {
  auto next = clock_.Now();
  while (true) {
    round_();
    next += options_.period;
    const auto now = clock_.Now();
    if (next < now) next = now;  // fell behind: no burst of catch-up rounds
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_ && clock_.Now() < next) clock_.WaitUntil(cv_, lock, next);
    if (stopping_) return;
  }
}

Result<std::vector<PodTarget>> ScrapeLoop::Pods(const std::string& ns,
                                                const std::map<std::string, std::string>& match) {
  return pods_.Find(ns, match);
}

PodPage ScrapeLoop::Fetch(const PodTarget& pod) {
  // A pod that serves TLS keeps /metrics on a plain port named admin.
  auto port = pod.ports.find("admin");
  if (port == pod.ports.end()) port = pod.ports.find(options_.port_name);
  const int32_t p = port != pod.ports.end() ? port->second : options_.default_port;
  PodPage out{"http://" + pod.ip + ":" + std::to_string(p) + "/metrics",
              Unavailable("not fetched")};
  auto got = fetcher_.Get(out.url, options_.timeout);
  if (!got.ok()) {
    out.page = got.status();
  } else if (got->status != 200) {
    out.page = Unavailable("GET " + out.url + ": HTTP " + std::to_string(got->status));
  } else if (auto parsed = ParsePrometheusText(got->body); !parsed.ok()) {
    out.page = parsed.status().Annotate("GET " + out.url);
  } else {
    out.page = std::move(*parsed);
  }
  return out;
}

}  // namespace sluice::controllers
