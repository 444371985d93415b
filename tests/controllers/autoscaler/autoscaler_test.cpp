#include "controllers/autoscaler/autoscaler.h"

#include <gtest/gtest.h>

#include <functional>

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const SteadyTime kT0 = SteadyTime(std::chrono::hours(100));

AutoscalerPolicy Policy() {
  AutoscalerPolicy p;
  p.target_concurrency = 10;
  p.min_replicas = 1;
  p.max_replicas = 50;
  p.stable_window = seconds(60);
  p.panic_window = seconds(6);
  p.panic_threshold = 2.0;
  p.scale_down_delay = seconds(0);
  return p;
}

// One sample a second over [from, to), of concurrency load(t).
std::vector<ConcurrencySample> Samples(SteadyTime from, SteadyTime to,
                                       const std::function<double(SteadyTime)>& load) {
  std::vector<ConcurrencySample> out;
  for (SteadyTime t = from; t < to; t += seconds(1)) out.push_back({t, load(t)});
  return out;
}

TEST(AutoscaleTest, SteadyLoadGivesCeilOfAverageOverTarget) {
  AutoscalerInput in;
  in.policy = Policy();
  in.now = kT0;
  in.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 45.0; });
  in.current_replicas = 5;
  in.ready_replicas = 5;
  AutoscalerDecision d = Autoscale(in);
  EXPECT_EQ(d.desired_replicas, 5);  // ceil(45 / 10)
  EXPECT_FALSE(d.panicking);
  EXPECT_DOUBLE_EQ(*d.stable_concurrency, 45.0);
  EXPECT_EQ(d.stable_desired, 5);
  EXPECT_NE(d.reason.find("stable: 1m average 45.00 wants 5 pods"), std::string::npos) << d.reason;

  in.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 40.0; });
  EXPECT_EQ(Autoscale(in).desired_replicas, 4);  // exactly 4 pods' worth is 4, not 5
}

TEST(AutoscaleTest, AveragesPerSecondBucketsAndIgnoresSamplesOutsideTheWindow) {
  AutoscalerInput in;
  in.policy = Policy();
  in.now = kT0;
  in.current_replicas = in.ready_replicas = 3;
  // Two seconds of data: one bucket with two samples (10 and 30 → 20), one with 40.
  in.samples = {{kT0 - milliseconds(1500), 10},
                {kT0 - milliseconds(1200), 30},
                {kT0 - milliseconds(200), 40},
                {kT0 - seconds(61), 1000},  // outside the stable window
                {kT0 + seconds(1), 1000}};  // from the future
  AutoscalerDecision d = Autoscale(in);
  EXPECT_DOUBLE_EQ(*d.stable_concurrency, 30.0);
  EXPECT_EQ(d.desired_replicas, 3);
}

TEST(AutoscaleTest, NoDataKeepsTheCurrentSize) {
  AutoscalerInput in;
  in.policy = Policy();
  in.now = kT0;
  in.current_replicas = 7;
  in.ready_replicas = 7;
  AutoscalerDecision d = Autoscale(in);
  EXPECT_TRUE(d.no_data);
  EXPECT_EQ(d.desired_replicas, 7);
  in.current_replicas = 70;  // but still within bounds
  EXPECT_EQ(Autoscale(in).desired_replicas, 50);
}

TEST(AutoscaleTest, ClampsToMinAndMax) {
  AutoscalerInput in;
  in.policy = Policy();
  in.policy.min_replicas = 2;
  in.policy.max_replicas = 6;
  in.now = kT0;
  in.current_replicas = in.ready_replicas = 4;
  in.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 0.0; });
  EXPECT_EQ(Autoscale(in).desired_replicas, 2);
  in.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 75.0; });
  AutoscalerDecision d = Autoscale(in);
  EXPECT_EQ(d.desired_replicas, 6);
  EXPECT_NE(d.reason.find("clamped to [2, 6]"), std::string::npos) << d.reason;
}

TEST(AutoscaleTest, PanicStartsAtTwiceTheReadyPodsAndScalesOnThePanicWindow) {
  AutoscalerInput in;
  in.policy = Policy();
  in.now = kT0;
  in.current_replicas = in.ready_replicas = 2;
  // 54 s at 20 then 6 s at 100: the stable window averages 28 (3 pods), the panic window 100.
  in.samples = Samples(kT0 - seconds(59), kT0 + seconds(1),
                       [](SteadyTime t) { return t > kT0 - seconds(6) ? 100.0 : 20.0; });
  AutoscalerDecision d = Autoscale(in);
  EXPECT_TRUE(d.panicking);
  EXPECT_EQ(d.panic_desired, 10);
  EXPECT_EQ(d.stable_desired, 3);
  EXPECT_EQ(d.desired_replicas, 10);
  EXPECT_EQ(d.state.panic_since, kT0);
  EXPECT_EQ(d.state.last_scale_up, kT0);

  // Just under the threshold: 3 pods wanted with 2 ready is 1.5×, no panic.
  in.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 30.0; });
  d = Autoscale(in);
  EXPECT_FALSE(d.panicking);
  EXPECT_EQ(d.desired_replicas, 3);
}

TEST(AutoscaleTest, NeverScalesDownWhilePanickingAndLeavesAfterAQuietStableWindow) {
  AutoscalerPolicy p = Policy();
  AutoscalerState state;
  int32_t replicas = 2;
  // A 10 s burst of 100 over a base of 10.
  auto load = [](SteadyTime t) { return t >= kT0 && t < kT0 + seconds(10) ? 100.0 : 10.0; };
  std::vector<ConcurrencySample> all = Samples(kT0 - seconds(120), kT0 + seconds(200), load);
  std::optional<SteadyTime> panic_end;
  int32_t peak = 0;
  for (SteadyTime now = kT0; now < kT0 + seconds(150); now += seconds(1)) {
    AutoscalerInput in;
    in.policy = p;
    in.state = state;
    in.now = now;
    in.current_replicas = replicas;
    in.ready_replicas = replicas;
    for (const auto& s : all) {
      if (s.at <= now) in.samples.push_back(s);
    }
    AutoscalerDecision d = Autoscale(in);
    if (state.panic_since && d.panicking) {
      EXPECT_GE(d.desired_replicas, replicas)
          << "scaled down in panic at +" << (now - kT0) / seconds(1) << "s";
    }
    if (state.panic_since && !d.panicking && !panic_end) panic_end = now;
    peak = std::max(peak, d.desired_replicas);
    replicas = d.desired_replicas;
    state = d.state;
  }
  EXPECT_EQ(peak, 10);
  ASSERT_TRUE(panic_end.has_value());
  // The panic window crosses 2× the ready pods only while pods lag the burst (at +1 s: 4 wanted,
  // 2 ready); panic ends one stable window after the last crossing.
  EXPECT_GE(*panic_end, kT0 + seconds(61));
  EXPECT_LE(*panic_end, kT0 + seconds(70));
  EXPECT_EQ(replicas, 1);  // back on the stable window once the burst has left it
}

TEST(AutoscaleTest, ScaleDownWaitsForTheHighestRecommendationOfTheDelay) {
  AutoscalerPolicy p = Policy();
  p.scale_down_delay = seconds(30);
  p.stable_window = seconds(6);
  p.panic_window = seconds(6);
  p.panic_threshold = 1000;  // keep panic out of this test
  AutoscalerState state;
  int32_t replicas = 8;
  auto load = [](SteadyTime t) { return t < kT0 ? 80.0 : 20.0; };
  std::vector<ConcurrencySample> all = Samples(kT0 - seconds(60), kT0 + seconds(120), load);
  std::map<int, int32_t> by_second;
  for (SteadyTime now = kT0 - seconds(10); now < kT0 + seconds(60); now += seconds(1)) {
    AutoscalerInput in;
    in.policy = p;
    in.state = state;
    in.now = now;
    in.current_replicas = in.ready_replicas = replicas;
    for (const auto& s : all) {
      if (s.at <= now) in.samples.push_back(s);
    }
    AutoscalerDecision d = Autoscale(in);
    by_second[static_cast<int>((now - kT0) / seconds(1))] = d.desired_replicas;
    if (d.desired_replicas > 2 && now >= kT0 + seconds(6)) {
      ASSERT_TRUE(d.recheck_after.has_value());
    }
    replicas = d.desired_replicas;
    state = d.state;
  }
  // Recommendations fall from 8 (last at -1 s) through 7, 6, 5, 4, 3 (at 0..+4 s) to 2 (+5 s
  // on); each holds the size until it is 30 s old, so the size steps down from +29 s.
  EXPECT_EQ(by_second[5], 8);
  EXPECT_EQ(by_second[28], 8);
  EXPECT_EQ(by_second[29], 7);
  EXPECT_EQ(by_second[30], 6);
  EXPECT_EQ(by_second[33], 3);
  EXPECT_EQ(by_second[34], 2);
  EXPECT_EQ(by_second[59], 2);
}

TEST(AutoscaleTest, StepLoadReachesTheNeededReplicasWithinTenSeconds) {
  // Load steps from 10 to 120 in-flight requests at T0; target 10 per pod → 12 pods needed.
  // Pods take 2 s to become Ready; the autoscaler runs every second.
  AutoscalerPolicy p = Policy();
  AutoscalerState state;
  int32_t replicas = 1;
  std::vector<std::pair<SteadyTime, int32_t>> starts;  // pods being started
  auto load = [](SteadyTime t) { return t >= kT0 ? 120.0 : 10.0; };
  std::vector<ConcurrencySample> all = Samples(kT0 - seconds(120), kT0 + seconds(30), load);
  std::optional<SteadyTime> reached;
  for (SteadyTime now = kT0 - seconds(60); now <= kT0 + seconds(20); now += seconds(1)) {
    int32_t ready = 0;
    for (const auto& [at, n] : starts) {
      if (now - at >= seconds(2)) ready += n;
    }
    ready = std::min(ready + 1, replicas);  // the first pod was always there
    AutoscalerInput in;
    in.policy = p;
    in.state = state;
    in.now = now;
    in.current_replicas = replicas;
    in.ready_replicas = ready;
    for (const auto& s : all) {
      if (s.at <= now) in.samples.push_back(s);
    }
    AutoscalerDecision d = Autoscale(in);
    if (d.desired_replicas > replicas) starts.push_back({now, d.desired_replicas - replicas});
    replicas = d.desired_replicas;
    state = d.state;
    if (!reached && replicas >= 12) reached = now;
    if (now < kT0) {
      EXPECT_EQ(replicas, 1);
    }
  }
  ASSERT_TRUE(reached.has_value());
  EXPECT_LE(*reached - kT0, seconds(10));
  RecordProperty("seconds_to_needed_replicas", std::to_string((*reached - kT0) / seconds(1)));
  EXPECT_EQ(replicas, 12);  // and it does not overshoot
}

TEST(AutoscaleTest, RevisionsAreDecidedApart) {
  // The same function called for two revisions with their own samples and states: the canary's
  // light load gives it its own small size, whatever the stable carries.
  AutoscalerInput stable;
  stable.policy = Policy();
  stable.now = kT0;
  stable.current_replicas = stable.ready_replicas = 9;
  stable.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 90.0; });
  AutoscalerInput canary = stable;
  canary.current_replicas = canary.ready_replicas = 1;
  canary.samples = Samples(kT0 - seconds(59), kT0 + seconds(1), [](SteadyTime) { return 9.0; });
  EXPECT_EQ(Autoscale(stable).desired_replicas, 9);
  EXPECT_EQ(Autoscale(canary).desired_replicas, 1);
}

TEST(ResolveAutoscalerPolicyTest, DefaultsAndErrors) {
  AutoscalingSpec spec;
  spec.max_replicas = 10;
  Result<AutoscalerPolicy> p = ResolveAutoscalerPolicy(spec);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->min_replicas, 1);
  EXPECT_EQ(p->max_replicas, 10);
  EXPECT_EQ(p->target_concurrency, 8);
  EXPECT_EQ(p->stable_window, seconds(60));
  EXPECT_EQ(p->panic_window, seconds(6));
  EXPECT_EQ(p->scale_down_delay, seconds(0));
  EXPECT_EQ(p->panic_threshold, 2.0);

  spec.min_replicas = 11;
  EXPECT_FALSE(ResolveAutoscalerPolicy(spec).ok());
  spec.min_replicas = 1;
  spec.panic_window = "2m";
  EXPECT_FALSE(ResolveAutoscalerPolicy(spec).ok());
  spec.panic_window = "6 seconds";
  Result<AutoscalerPolicy> bad = ResolveAutoscalerPolicy(spec);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("spec.autoscaling.panicWindow"), std::string::npos);
}

}  // namespace
}  // namespace sluice::controllers
