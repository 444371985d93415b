#include "controllers/autoscaler/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "lib/api/duration.h"

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;

// Mean over one-second buckets, each the mean of its own samples, so a scraper that briefly
// reports twice as often does not weigh twice as much.
std::optional<double> WindowAverage(const std::vector<ConcurrencySample>& samples, SteadyTime now,
                                    milliseconds window) {
  const SteadyTime start = now - window;
  std::map<int64_t, std::pair<double, int>> buckets;
  for (const ConcurrencySample& s : samples) {
    if (s.at <= start || s.at > now) continue;
    const int64_t second =
        std::chrono::duration_cast<std::chrono::seconds>(s.at.time_since_epoch()).count();
    auto& [sum, count] = buckets[second];
    sum += std::max(0.0, s.concurrency);
    ++count;
  }
  if (buckets.empty()) return std::nullopt;
  double total = 0;
  for (const auto& [second, bucket] : buckets) total += bucket.first / bucket.second;
  return total / static_cast<double>(buckets.size());
}

int32_t PodsFor(double concurrency, double target) {
  if (target <= 0) target = 1;
  // A tiny epsilon keeps 20.0000001 / 10 from becoming 3 pods through float noise.
  const double pods = std::ceil(concurrency / target - 1e-9);
  return static_cast<int32_t>(std::clamp(pods, 0.0, 1e6));
}

// "6s average 94.00 wants 12 pods"
std::string Explain(milliseconds window, double average, int32_t pods) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), " average %.2f wants %d pods", average, pods);
  return FormatDuration(window) + buf;
}

}  // namespace

AutoscalerDecision Autoscale(const AutoscalerInput& in) {
  const AutoscalerPolicy& p = in.policy;
  const int32_t lo = std::max<int32_t>(0, p.min_replicas);
  const int32_t hi = std::max(lo, p.max_replicas);
  AutoscalerDecision d;
  d.state = in.state;

  d.stable_concurrency = WindowAverage(in.samples, in.now, p.stable_window);
  d.panic_concurrency = WindowAverage(in.samples, in.now, p.panic_window);
  if (!d.stable_concurrency) {
    d.no_data = true;
    d.desired_replicas = std::clamp(in.current_replicas, lo, hi);
    d.panicking = d.state.panic_since.has_value();
    d.reason = "no concurrency sample in the stable window; keeping " +
               std::to_string(d.desired_replicas) + " replicas";
    return d;
  }
  d.stable_desired = PodsFor(*d.stable_concurrency, p.target_concurrency);
  d.panic_desired =
      d.panic_concurrency ? PodsFor(*d.panic_concurrency, p.target_concurrency) : d.stable_desired;

  const int32_t ready = std::max<int32_t>(1, in.ready_replicas);
  const bool over_threshold =
      static_cast<double>(d.panic_desired) >= p.panic_threshold * static_cast<double>(ready);
  AutoscalerState& st = d.state;
  if (over_threshold) {
    if (!st.panic_since) {
      st.panic_since = in.now;
      st.panic_floor = in.current_replicas;
    }
    st.last_panic_trigger = in.now;
  } else if (st.panic_since && st.last_panic_trigger &&
             in.now - *st.last_panic_trigger >= p.stable_window) {
    st.panic_since.reset();
    st.last_panic_trigger.reset();
    st.panic_floor = 0;
  }
  d.panicking = st.panic_since.has_value();

  int32_t want;
  if (d.panicking) {
    want = std::max(d.panic_desired, st.panic_floor);
    st.panic_floor = want;
    d.reason =
        "panic: " + Explain(p.panic_window, d.panic_concurrency.value_or(0), d.panic_desired) +
        " with " + std::to_string(in.ready_replicas) + " ready; not scaling down";
  } else {
    want = d.stable_desired;
    d.reason = "stable: " + Explain(p.stable_window, *d.stable_concurrency, d.stable_desired);
  }

  // Scale-down delay: hold the highest recommendation of the recent past.
  while (!st.recent.empty() && in.now - st.recent.front().at >= p.scale_down_delay) {
    st.recent.pop_front();
  }
  int32_t held = want;
  for (const Recommendation& r : st.recent) held = std::max(held, r.replicas);
  if (p.scale_down_delay.count() > 0) st.recent.push_back({in.now, want});
  if (held > want) {
    d.reason += "; held at " + std::to_string(held) + " by scaleDownDelay";
  }

  d.desired_replicas = std::clamp(held, lo, hi);
  if (d.desired_replicas != held) {
    d.reason += "; clamped to [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  if (d.desired_replicas > in.current_replicas) st.last_scale_up = in.now;

  std::optional<milliseconds> recheck;
  auto sooner = [&](SteadyTime at) {
    const milliseconds left =
        std::max(milliseconds(0), std::chrono::ceil<milliseconds>(at - in.now));
    if (!recheck || left < *recheck) recheck = left;
  };
  if (st.panic_since && st.last_panic_trigger) sooner(*st.last_panic_trigger + p.stable_window);
  for (const Recommendation& r : st.recent) {
    if (r.replicas > want) {
      sooner(r.at + p.scale_down_delay);
      break;
    }
  }
  d.recheck_after = recheck;
  return d;
}

Result<AutoscalerPolicy> ResolveAutoscalerPolicy(const AutoscalingSpec& spec) {
  AutoscalerPolicy p;
  p.min_replicas = spec.min_replicas.value_or(1);
  p.max_replicas = spec.max_replicas;
  if (p.min_replicas < 0 || p.max_replicas < p.min_replicas) {
    return InvalidArgument("spec.autoscaling: minReplicas must be within 0..maxReplicas");
  }
  p.target_concurrency = spec.target_concurrency.value_or(8);
  if (p.target_concurrency <= 0) {
    return InvalidArgument("spec.autoscaling.targetConcurrency: must be positive");
  }
  auto duration = [](const std::optional<std::string>& text, const char* fallback,
                     const char* field) -> Result<milliseconds> {
    Result<milliseconds> d = ParseDuration(text.value_or(fallback));
    if (!d.ok()) return d.status().Annotate(field);
    return d;
  };
  ASSIGN_OR_RETURN(p.stable_window,
                   duration(spec.stable_window, "60s", "spec.autoscaling.stableWindow"));
  ASSIGN_OR_RETURN(p.panic_window,
                   duration(spec.panic_window, "6s", "spec.autoscaling.panicWindow"));
  ASSIGN_OR_RETURN(p.scale_down_delay,
                   duration(spec.scale_down_delay, "0s", "spec.autoscaling.scaleDownDelay"));
  if (p.panic_window.count() <= 0 || p.panic_window > p.stable_window) {
    return InvalidArgument(
        "spec.autoscaling.panicWindow: must be positive and at most stableWindow");
  }
  return p;
}

}  // namespace sluice::controllers
