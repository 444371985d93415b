#include "e2e/canary/load_driver.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace sluice::canary {

namespace {

size_t Collect(char* data, size_t size, size_t nmemb, void* out) {
  static_cast<std::string*>(out)->append(data, size * nmemb);
  return size * nmemb;
}

}  // namespace

LoadDriver::LoadDriver(LoadOptions options) : options_(std::move(options)) {}

LoadDriver::~LoadDriver() {
  Stop();
}

void LoadDriver::Start() {
  start_ = std::chrono::steady_clock::now();
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { Work(); });
  pacer_ = std::thread([this] { Pace(); });
}

void LoadDriver::Stop() {
  if (stop_.exchange(true)) return;
  cv_.notify_all();
  if (pacer_.joinable()) pacer_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

void LoadDriver::Pace() {
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / options_.rate));
  for (int64_t i = 0; !stop_.load(); ++i) {
    const SteadyTime due = start_ + period * i;
    std::this_thread::sleep_until(due);
    std::lock_guard<std::mutex> lock(mu_);
    due_.push_back(due);
    cv_.notify_one();
  }
}

void LoadDriver::Work() {
  CURL* curl = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, options_.body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(options_.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  while (true) {
    SteadyTime due;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_.load() || !due_.empty(); });
      if (due_.empty()) break;  // stopping and nothing left
      if (stop_.load()) {
        due_.clear();
        break;
      }
      due = due_.front();
      due_.pop_front();
    }
    answer.clear();
    RequestRecord r;
    r.due = due;
    const CURLcode rc = curl_easy_perform(curl);
    r.done = std::chrono::steady_clock::now();
    if (rc == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
      r.status = static_cast<int>(code);
      auto j = nlohmann::json::parse(answer, nullptr, false);
      if (j.is_object() && j.contains("model_version") && j["model_version"].is_string()) {
        r.model_version = j["model_version"].get<std::string>();
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(r));
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
}

std::vector<RequestRecord> LoadDriver::Records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

LoadSummary LoadDriver::Summarize(SteadyTime from, SteadyTime to) const {
  LoadSummary s;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : records_) {
    if (r.done < from || r.done >= to) continue;
    ++s.total;
    if (r.ok()) {
      ++s.by_version[r.model_version];
      auto [last, added] = s.last_ok_by_version.emplace(r.model_version, r.done);
      if (!added && r.done > last->second) last->second = r.done;
      continue;
    }
    ++s.failed;
    if (!s.first_failure || r.done < *s.first_failure) s.first_failure = r.done;
    if (!s.last_failure || r.done > *s.last_failure) s.last_failure = r.done;
  }
  return s;
}

std::vector<std::string> LoadDriver::Timeline() const {
  std::map<int64_t, LoadSummary> seconds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& r : records_) {
      auto& s = seconds[std::chrono::duration_cast<std::chrono::seconds>(r.done - start_).count()];
      ++s.total;
      if (r.ok()) {
        ++s.by_version[r.model_version];
      } else {
        ++s.failed;
      }
    }
  }
  std::vector<std::string> lines;
  for (const auto& [t, s] : seconds) {
    std::string versions;
    for (const auto& [v, n] : s.by_version) {
      versions += fmt::format("{}{}:{}", versions.empty() ? "" : ",", v.empty() ? "?" : v, n);
    }
    lines.push_back(fmt::format("t={}s ok={} fail={} versions={}", t, s.total - s.failed, s.failed,
                                versions.empty() ? "-" : versions));
  }
  return lines;
}

}  // namespace sluice::canary
