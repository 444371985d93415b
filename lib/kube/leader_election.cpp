#include "lib/kube/leader_election.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <utility>

namespace sluice::kube {

std::string FormatMicroTime(Clock::Wall::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  const std::time_t tt = Clock::Wall::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

Result<Clock::Wall::time_point> ParseMicroTime(const std::string& text) {
  auto bad = [&] { return InvalidArgument("not an RFC 3339 time: \"" + text + "\""); };
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return bad();
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return bad();
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int hh = 0;
    int mm = 0;
    if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d", &hh, &mm) != 2) return bad();
    offset_seconds = (hh * 3600 + mm * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  const std::time_t utc = timegm(&tm);
  return Clock::Wall::time_point(std::chrono::seconds(utc - offset_seconds)) +
         std::chrono::duration_cast<Clock::Wall::duration>(std::chrono::nanoseconds(nanos));
}

Json KubeLeaseLock::SpecFromRecord(const LeaderElectionRecord& record) {
  return Json{{"holderIdentity", record.holder_identity},
              {"leaseDurationSeconds", record.lease_duration_seconds},
              {"acquireTime", FormatMicroTime(record.acquire_time)},
              {"renewTime", FormatMicroTime(record.renew_time)},
              {"leaseTransitions", record.lease_transitions}};
}

Result<LeaderElectionRecord> KubeLeaseLock::RecordFromLease(const Json& lease) {
  LeaderElectionRecord record;
  auto spec = lease.find("spec");
  if (spec == lease.end() || !spec->is_object()) return record;
  if (auto v = spec->find("holderIdentity"); v != spec->end() && v->is_string()) {
    record.holder_identity = v->get<std::string>();
  }
  if (auto v = spec->find("leaseDurationSeconds"); v != spec->end() && v->is_number_integer()) {
    record.lease_duration_seconds = v->get<int>();
  }
  if (auto v = spec->find("leaseTransitions"); v != spec->end() && v->is_number_integer()) {
    record.lease_transitions = v->get<int>();
  }
  if (auto v = spec->find("acquireTime"); v != spec->end() && v->is_string()) {
    ASSIGN_OR_RETURN(record.acquire_time, ParseMicroTime(v->get<std::string>()));
  }
  if (auto v = spec->find("renewTime"); v != spec->end() && v->is_string()) {
    ASSIGN_OR_RETURN(record.renew_time, ParseMicroTime(v->get<std::string>()));
  }
  return record;
}

Result<LeaderElectionRecord> KubeLeaseLock::Get() {
  ASSIGN_OR_RETURN(Json lease, client_.Get(resources::kLeases, ns_, name_));
  ASSIGN_OR_RETURN(LeaderElectionRecord record, RecordFromLease(lease));
  last_ = std::move(lease);
  return record;
}

Status KubeLeaseLock::Create(const LeaderElectionRecord& record) {
  Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", name_}, {"namespace", ns_}}},
                {"spec", SpecFromRecord(record)}};
  ASSIGN_OR_RETURN(Json created, client_.Create(resources::kLeases, ns_, lease));
  last_ = std::move(created);
  return Status::Ok();
}

Status KubeLeaseLock::Update(const LeaderElectionRecord& record) {
  if (!last_) return FailedPrecondition("lease " + Describe() + " updated before it was read");
  Json lease = *last_;
  Json& spec = lease["spec"];
  if (!spec.is_object()) spec = Json::object();
  // The update carries last_'s metadata.resourceVersion, which makes it conditional.
  const Json owned = SpecFromRecord(record);
  for (const auto& [key, value] : owned.items()) spec[key] = value;
  ASSIGN_OR_RETURN(Json updated, client_.Update(resources::kLeases, ns_, lease));
  last_ = std::move(updated);
  return Status::Ok();
}

Result<std::unique_ptr<LeaderElector>> LeaderElector::Create(std::unique_ptr<LeaseLock> lock,
                                                             LeaderElectionOptions options) {
  if (lock == nullptr) return InvalidArgument("leader election needs a lock");
  if (options.identity.empty()) return InvalidArgument("leader election needs an identity");
  if (options.retry_jitter < 0) return InvalidArgument("retry_jitter must not be negative");
  if (options.retry_period.count() <= 0) return InvalidArgument("retry_period must be positive");
  if (options.lease_duration < std::chrono::seconds(1)) {
    return InvalidArgument("lease_duration must be at least 1s (the Lease counts in seconds)");
  }
  if (options.lease_duration <= options.renew_deadline) {
    return InvalidArgument("lease_duration must be greater than renew_deadline");
  }
  if (static_cast<double>(options.renew_deadline.count()) <=
      static_cast<double>(options.retry_period.count()) * (1.0 + options.retry_jitter)) {
    return InvalidArgument("renew_deadline must be greater than retry_period * (1 + retry_jitter)");
  }
  return std::unique_ptr<LeaderElector>(new LeaderElector(std::move(lock), std::move(options)));
}

LeaderElector::LeaderElector(std::unique_ptr<LeaseLock> lock, LeaderElectionOptions options)
    : lock_(std::move(lock)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()),
      rng_(options_.seed != 0 ? options_.seed : std::random_device{}()) {}

bool LeaderElector::IsLeader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

std::string LeaderElector::GetLeader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observed_holder_;
}

void LeaderElector::Stop() {
  stopping_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  wake_.notify_all();
}

bool LeaderElector::SleepUntil(Clock::Steady::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_.load() && clock_.Now() < deadline) clock_.WaitUntil(wake_, lock, deadline);
  return !stopping_.load();
}

void LeaderElector::Observe(const LeaderElectionRecord& record) {
  const auto now = clock_.Now();
  if (!observed_record_ || !(*observed_record_ == record)) {
    observed_time_ = now;
    if (observed_record_ && last_read_time_ && record.holder_identity != options_.identity) {
      const auto age = clock_.WallNow() - record.renew_time;
      const auto renewed = now - std::chrono::duration_cast<Clock::Steady::duration>(age);
      observed_time_ = std::clamp(renewed, *last_read_time_, now);
    }
    observed_record_ = record;
  }
  last_read_time_ = now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    observed_holder_ = record.holder_identity;
  }
  if (record.holder_identity != reported_leader_) {
    reported_leader_ = record.holder_identity;
    if (!reported_leader_.empty()) {
      spdlog::info("leader election {}: leader is now \"{}\"", lock_->Describe(), reported_leader_);
      if (options_.callbacks.on_new_leader) options_.callbacks.on_new_leader(reported_leader_);
    }
  }
}

Clock::Steady::time_point LeaderElector::ObservedExpiry() const {
  const int seconds = observed_record_ ? observed_record_->lease_duration_seconds : 0;
  return observed_time_ + std::chrono::seconds(seconds);
}

LeaderElector::Attempt LeaderElector::TryAcquireOrRenew() {
  const auto now_wall = clock_.WallNow();
  LeaderElectionRecord desired;
  desired.holder_identity = options_.identity;
  desired.lease_duration_seconds = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration).count());
  desired.acquire_time = now_wall;
  desired.renew_time = now_wall;

  Result<LeaderElectionRecord> current = lock_->Get();
  if (!current.ok()) {
    if (current.status().code() != StatusCode::kNotFound) {
      spdlog::warn("leader election {}: reading the lease: {}", lock_->Describe(),
                   current.status().ToString());
      return Attempt::kFailed;
    }
    Status created = lock_->Create(desired);
    if (!created.ok()) {
      spdlog::info("leader election {}: creating the lease: {}", lock_->Describe(),
                   created.ToString());
      return Attempt::kFailed;
    }
    Observe(desired);
    return Attempt::kAcquired;
  }

  Observe(*current);
  const LeaderElectionRecord& old = *current;
  const bool mine = old.holder_identity == options_.identity;
  if (!old.holder_identity.empty() && !mine && ObservedExpiry() > clock_.Now()) {
    return Attempt::kHeldByOther;
  }
  if (mine) {
    desired.acquire_time = old.acquire_time;
    desired.lease_transitions = old.lease_transitions;
  } else {
    desired.lease_transitions = old.lease_transitions + 1;
  }
  Status updated = lock_->Update(desired);
  if (!updated.ok()) {
    spdlog::info("leader election {}: writing the lease: {}", lock_->Describe(),
                 updated.ToString());
    return Attempt::kFailed;
  }
  Observe(desired);
  return Attempt::kAcquired;
}

void LeaderElector::Release() {
  if (!observed_record_ || observed_record_->holder_identity != options_.identity) return;
  const auto now_wall = clock_.WallNow();
  LeaderElectionRecord released;
  released.lease_duration_seconds = 1;
  released.acquire_time = now_wall;
  released.renew_time = now_wall;
  released.lease_transitions = observed_record_->lease_transitions;
  Status status = lock_->Update(released);
  if (!status.ok()) {
    spdlog::warn("leader election {}: releasing the lease: {}", lock_->Describe(),
                 status.ToString());
    return;
  }
  Observe(released);
  spdlog::info("leader election {}: \"{}\" released the lease", lock_->Describe(),
               options_.identity);
}

void LeaderElector::Run() {
  const auto retry = std::chrono::duration_cast<Clock::Steady::duration>(options_.retry_period);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  spdlog::info("leader election {}: \"{}\" campaigning", lock_->Describe(), options_.identity);
  while (true) {
    if (stopping_.load()) return;
    const Attempt attempt = TryAcquireOrRenew();
    if (attempt == Attempt::kAcquired) break;
    const auto wait = std::chrono::duration_cast<Clock::Steady::duration>(
        retry * (1.0 + options_.retry_jitter * unit(rng_)));
    auto next = clock_.Now() + wait;
    // Held by another: try again the moment it expires rather than on the next retry tick.
    if (attempt == Attempt::kHeldByOther) {
      const auto expiry = ObservedExpiry() + std::chrono::milliseconds(1);
      if (expiry > clock_.Now() && expiry < next) next = expiry;
    }
    if (!SleepUntil(next)) return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = true;
  }
  spdlog::info("leader election {}: \"{}\" started leading", lock_->Describe(), options_.identity);
  if (options_.callbacks.on_started_leading) options_.callbacks.on_started_leading();

  auto last_renew = clock_.Now();
  bool lost = false;
  while (SleepUntil(clock_.Now() + retry)) {
    const Attempt attempt = TryAcquireOrRenew();
    if (attempt == Attempt::kAcquired) {
      last_renew = clock_.Now();
      continue;
    }
    if (attempt == Attempt::kHeldByOther) {
      spdlog::warn("leader election {}: \"{}\" lost the lease to \"{}\"", lock_->Describe(),
                   options_.identity, reported_leader_);
      lost = true;
      break;
    }
    if (clock_.Now() - last_renew >= options_.renew_deadline) {
      spdlog::warn(
          "leader election {}: \"{}\" could not renew within {} ms", lock_->Describe(),
          options_.identity,
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.renew_deadline).count());
      lost = true;
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = false;
  }
  if (!lost && options_.release_on_stop) Release();
  spdlog::info("leader election {}: \"{}\" stopped leading", lock_->Describe(), options_.identity);
  if (options_.callbacks.on_stopped_leading) options_.callbacks.on_stopped_leading();
}

}  // namespace sluice::kube
