// Property checks: random sequences of spec changes, readiness changes, faults, controls and
// time steps, with a fixed seed per run. RolloutSim checks after every decision that weights sum
// to 100 (or are empty only when nothing is Ready), that no Ready-less revision gets traffic,
// that the canary never outweighs its Ready share, that the stable is never scaled below what it
// serves, and that deciding again on the written status is a fixed point. After the chaos, every
// run must settle Healthy on the spec's revision.

#include <gtest/gtest.h>

#include <random>

#include "tests/controllers/rollout/rollout_sim.h"

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::Rev;
using testing::RolloutSim;

class RolloutPropertyTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RolloutPropertyTest, InvariantsHoldUnderRandomEvents) {
  std::mt19937 rng(GetParam());
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  RolloutPolicy policy = testing::CanaryPolicy();
  if (chance(0.3))
    policy.steps = {{5, seconds(10)}, {20, std::nullopt}, {60, seconds(5)}, {100, {}}};
  policy.scale_down_delay = seconds(pick(0, 20));
  policy.progress_deadline = seconds(pick(30, 120));
  policy.mirror_percent = chance(0.5) ? 10 : 0;
  if (chance(0.3)) {
    policy.strategy = Strategy::kRolling;
    policy.max_surge = {pick(0, 2), false};
    policy.max_unavailable = {pick(policy.max_surge.value == 0 ? 1 : 0, 2), false};
  }
  RolloutSim sim(policy, pick(1, 6));
  sim.SetReadyDelay(seconds(pick(0, 4)));
  std::string desired = sim.Deploy("v1");
  SCOPED_TRACE("seed " + std::to_string(GetParam()));

  for (int i = 0; i < 500 && !HasFailure(); ++i) {
    if (chance(0.03)) desired = sim.Deploy("v" + std::to_string(pick(1, 4)));
    if (chance(0.02)) sim.SetReplicas(pick(0, 6));
    if (chance(0.03)) sim.controls().pause = !sim.controls().pause;
    if (chance(0.01)) sim.controls().promote_step = true;
    if (chance(0.01)) sim.controls().promote_full = true;
    if (chance(0.01)) sim.controls().abort = true;
    if (chance(0.02)) sim.controls().retry = true;
    if (chance(0.03)) {
      const std::string rev = Rev("v" + std::to_string(pick(1, 4)));
      sim.metrics().model(rev).fault_at = sim.now();
      sim.metrics().model(rev).fault_error_fraction = chance(0.5) ? 0.0 : 0.3;
    }
    if (chance(0.03)) {
      const std::string rev = Rev("v" + std::to_string(pick(1, 4)));
      sim.SetMaxReady(rev, chance(0.5) ? std::optional<int32_t>() : pick(0, 3));
    }
    if (chance(0.02)) sim.SetRequestRate(chance(0.3) ? 0 : 100);
    if (chance(0.02)) sim.policy().strategy = chance(0.5) ? Strategy::kCanary : Strategy::kRolling;
    sim.Reconcile();
    sim.Advance(milliseconds(pick(200, 3000)));
  }
  if (HasFailure()) return;

  // Calm: no faults, pods start, nothing held. It must settle on the spec's revision.
  for (int v = 1; v <= 4; ++v) {
    const std::string rev = Rev("v" + std::to_string(v));
    sim.metrics().model(rev).fault_error_fraction = 0;
    sim.SetMaxReady(rev, std::nullopt);
  }
  sim.SetRequestRate(100);
  sim.SetReplicas(3);
  sim.controls() = Controls{};
  sim.controls().retry = true;
  const bool settled = sim.RunUntil(
      [&] {
        // An indefinite step waits for a person; be that person.
        const Condition* progressing = sim.status().FindCondition("Progressing");
        if (progressing && progressing->reason == "WaitingForPromotion") {
          sim.controls().promote_step = true;
        }
        return sim.status().phase == Phase::kHealthy && sim.status().stable_revision == desired &&
               sim.Weight(desired) == 100 && sim.Ready(desired) == 3;
      },
      minutes(10));
  EXPECT_TRUE(settled) << "phase " << PhaseName(sim.status().phase.value_or(Phase::kProgressing))
                       << " stable " << sim.status().stable_revision.value_or("-") << " canary "
                       << sim.status().canary_revision.value_or("-") << " desired " << desired
                       << "\n"
                       << nlohmann::json(sim.status()).dump(1);
  // And once settled, nothing else keeps pods.
  EXPECT_TRUE(sim.RunUntil(
      [&] {
        for (int v = 1; v <= 4; ++v) {
          const std::string rev = Rev("v" + std::to_string(v));
          if (rev != desired && sim.Exists(rev)) return false;
        }
        return true;
      },
      minutes(1)));
}

INSTANTIATE_TEST_SUITE_P(Seeds, RolloutPropertyTest, ::testing::Range<uint32_t>(1, 41));

}  // namespace
}  // namespace sluice::controllers
