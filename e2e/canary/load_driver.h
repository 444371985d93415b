#pragma once

// A steady-rate HTTP load for the canary scenarios, recording every request: when it was due,
// when its answer came, the status (0: no answer), and which model version answered (the V2
// response's "model_version", so the revision that served it is known without router help).
//
// Open loop: request i is due at start + i / rate whatever the server does; a pool of workers
// with keep-alive connections sends them. A request that waits for a free worker is still
// charged from its due time.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::canary {

using SteadyTime = std::chrono::steady_clock::time_point;

struct LoadOptions {
  std::string url;    // http://10.244.1.3:8080/v2/models/fraud/infer
  std::string body;   // JSON request body
  double rate = 100;  // requests per second
  int workers = 16;
  std::chrono::milliseconds timeout{5000};
};

struct RequestRecord {
  SteadyTime due;
  SteadyTime done;
  int status = 0;             // HTTP status; 0 when no answer (connect error, reset, timeout)
  std::string model_version;  // from the answer body; empty when absent
  bool ok() const { return status >= 200 && status < 300; }
};

// Counts over the records completed in a time range.
struct LoadSummary {
  int64_t total = 0;
  int64_t failed = 0;                         // non-2xx or no answer
  std::map<std::string, int64_t> by_version;  // successful answers per model version
  std::optional<SteadyTime> first_failure;
  std::optional<SteadyTime> last_failure;
  // The latest successful answer of each model version: when a version stopped serving.
  std::map<std::string, SteadyTime> last_ok_by_version;
};

// Thread-safe: Start/Stop from the owning thread; Records/Summarize from any.
class LoadDriver {
 public:
  explicit LoadDriver(LoadOptions options);
  ~LoadDriver();
  LoadDriver(const LoadDriver&) = delete;
  LoadDriver& operator=(const LoadDriver&) = delete;

  void Start();
  // Stops issuing, waits for requests in flight, joins all threads. Idempotent.
  void Stop();

  std::vector<RequestRecord> Records() const;
  // Requests whose answer arrived in [from, to).
  LoadSummary Summarize(SteadyTime from, SteadyTime to) const;
  // One line per second since Start: "t=12s ok=98 fail=2 versions=1:88,2:10".
  std::vector<std::string> Timeline() const;
  SteadyTime started() const { return start_; }

 private:
  void Pace();
  void Work();

  const LoadOptions options_;
  SteadyTime start_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SteadyTime> due_;          // guarded by mu_
  std::vector<RequestRecord> records_;  // guarded by mu_

  std::thread pacer_;
  std::vector<std::thread> workers_;
};

}  // namespace sluice::canary
