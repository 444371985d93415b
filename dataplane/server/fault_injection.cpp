#include "dataplane/server/fault_injection.h"

#include <charconv>
#include <string_view>
#include <vector>

namespace sluice::dataplane {

namespace {

Status ParseEnvInt(const char* name, const char* raw, int64_t max, int64_t& out) {
  if (raw == nullptr || *raw == '\0') return Status::Ok();
  const std::string_view v(raw);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0 || n > max) {
    return InvalidArgument(std::string(name) + "='" + std::string(v) +
                           "' is not an integer in [0, " + std::to_string(max) + "]");
  }
  out = n;
  return Status::Ok();
}

}  // namespace

std::string FaultOptions::ToString() const {
  return "error " + std::to_string(error_percent) + "%, delay " + std::to_string(delay.count()) +
         " ms";
}

Result<FaultOptions> FaultOptionsFromEnv(const std::function<const char*(const char*)>& getenv) {
  FaultOptions o;
  int64_t percent = 0, delay_ms = 0;
  RETURN_IF_ERROR(ParseEnvInt(kFaultErrorPercentEnv, getenv(kFaultErrorPercentEnv), 100, percent));
  RETURN_IF_ERROR(ParseEnvInt(kFaultDelayMsEnv, getenv(kFaultDelayMsEnv), 600'000, delay_ms));
  o.error_percent = static_cast<int>(percent);
  o.delay = std::chrono::milliseconds(delay_ms);
  if (const char* v = getenv(kFaultOnlyVersionEnv); v != nullptr) o.only_version = v;
  return o;
}

Result<std::unique_ptr<FaultInjector>> FaultInjector::Create(const FaultOptions& options,
                                                             Clock& clock) {
  if (options.error_percent < 0 || options.error_percent > 100) {
    return InvalidArgument("fault error percent " + std::to_string(options.error_percent) +
                           " is outside [0, 100]");
  }
  if (options.delay.count() < 0) return InvalidArgument("fault delay is negative");
  return std::unique_ptr<FaultInjector>(new FaultInjector(options, clock));
}

FaultInjector::FaultInjector(const FaultOptions& options, Clock& clock)
    : options_(options), clock_(clock) {
  if (options_.delay.count() > 0) thread_ = std::thread([this] { Loop(); });
}

FaultInjector::~FaultInjector() { Stop(); }

bool FaultInjector::NextFails() {
  if (options_.error_percent == 0) return false;
  const uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t p = static_cast<uint64_t>(options_.error_percent);
  return (n + 1) * p / 100 > n * p / 100;
}

void FaultInjector::AfterDelay(std::function<void()> fn) {
  if (options_.delay.count() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      waiting_.emplace(clock_.Now() + options_.delay, std::move(fn));
      cv_.notify_one();
      return;
    }
  }
  fn();
}

void FaultInjector::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (waiting_.empty()) {
      if (stopping_) return;
      cv_.wait(lock);
      continue;
    }
    auto first = waiting_.begin();
    if (!stopping_ && clock_.Now() < first->first) {
      clock_.WaitUntil(cv_, lock, first->first);
      continue;
    }
    std::function<void()> fn = std::move(first->second);
    waiting_.erase(first);
    // Work runs without the lock: it answers requests, and AfterDelay may be called meanwhile.
    lock.unlock();
    fn();
    lock.lock();
  }
}

void FaultInjector::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice::dataplane
