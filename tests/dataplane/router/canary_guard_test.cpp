// The retry budget's bound and the canary guard's window, with explicit times; and how the routing
// table applies them (Route diverts a tripped canary, RetryTarget names the stable revision, a
// guard survives a table rebuilt with the same weights and not a weight change).

#include "dataplane/router/canary_guard.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <thread>
#include <vector>

#include "dataplane/router/routing_table.h"
#include "dataplane/router/traffic_source.h"

namespace sluice::dataplane {
namespace {

using namespace std::chrono_literals;
using Clock = CanaryGuard::Clock;

TEST(RetryBudgetTest, StartsWithItsBurstThenAllowsThePercentOfRequests) {
  RetryBudget budget(10, 20);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(budget.TryWithdraw()) << i;
  EXPECT_FALSE(budget.TryWithdraw());
  // 10 % of 100 requests: 10 retries, not 11.
  for (int i = 0; i < 100; ++i) budget.Deposit();
  int allowed = 0;
  while (budget.TryWithdraw()) ++allowed;
  EXPECT_EQ(allowed, 10);
  // Deposits beyond the burst are not saved up.
  for (int i = 0; i < 1000; ++i) budget.Deposit();
  allowed = 0;
  while (budget.TryWithdraw()) ++allowed;
  EXPECT_EQ(allowed, 20);
}

TEST(RetryBudgetTest, RetriesNeverExceedThePercentPlusTheBurstWhenEveryRequestFails) {
  RetryBudget budget(10, 20);
  int retries = 0;
  for (int i = 0; i < 10'000; ++i) {
    budget.Deposit();
    if (budget.TryWithdraw()) ++retries;
  }
  EXPECT_LE(retries, 1'000 + 20);
  EXPECT_GE(retries, 1'000);
}

TEST(RetryBudgetTest, ZeroPercentAllowsNothing) {
  RetryBudget budget(0, 20);
  for (int i = 0; i < 100; ++i) budget.Deposit();
  EXPECT_FALSE(budget.TryWithdraw());
}

TEST(RetryBudgetTest, ConcurrentWithdrawalsTakeEachTokenOnce) {
  RetryBudget budget(100, 1000);  // starts with 1000 tokens
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (budget.TryWithdraw()) taken.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken.load(), 1000);
}

GuardOptions Options(double max_error_rate, int64_t min_samples = 20) {
  GuardOptions o;
  o.max_error_rate = max_error_rate;
  o.min_samples = min_samples;
  o.window = 1000ms;
  return o;
}

TEST(CanaryGuardTest, NeedsTheMinimumSampleBeforeItTrips) {
  prometheus::Registry registry;
  auto& gauge = prometheus::BuildGauge().Name("g").Register(registry).Add({});
  gauge.Set(7);
  CanaryGuard guard(Options(0.1), &gauge);
  EXPECT_EQ(gauge.Value(), 0);
  const auto t0 = Clock::time_point(100s);
  // 19 errors out of 19: not enough requests to judge.
  for (int i = 0; i < 19; ++i) EXPECT_FALSE(guard.Record(true, t0 + i * 1ms));
  EXPECT_FALSE(guard.tripped());
  EXPECT_EQ(gauge.Value(), 0);
  // The 20th trips it, once.
  EXPECT_TRUE(guard.Record(true, t0 + 20ms));
  EXPECT_TRUE(guard.tripped());
  EXPECT_EQ(gauge.Value(), 1);
  EXPECT_FALSE(guard.Record(true, t0 + 21ms));
  // Tripped stays tripped, whatever comes next.
  for (int i = 0; i < 100; ++i) guard.Record(false, t0 + 5s + i * 1ms);
  EXPECT_TRUE(guard.tripped());
}

TEST(CanaryGuardTest, TripsOnlyAboveTheLimit) {
  CanaryGuard guard(Options(0.1), nullptr);
  const auto t0 = Clock::time_point(100s);
  // Exactly 10 % over 100 requests is at the limit, not above it (the analysis fails on > max).
  for (int i = 0; i < 100; ++i) guard.Record(i % 10 == 9, t0 + i * 5ms);
  EXPECT_FALSE(guard.tripped());
  EXPECT_EQ(guard.Counts(t0 + 500ms), std::make_pair(int64_t{100}, int64_t{10}));
  // One more error in the same window: 11 of 101.
  EXPECT_TRUE(guard.Record(true, t0 + 500ms));
}

TEST(CanaryGuardTest, OutcomesLeaveTheWindowAfterOneWindow) {
  CanaryGuard guard(Options(0.5), nullptr);
  const auto t0 = Clock::time_point(100s);
  // 15 errors, then nothing for over a second: they are forgotten.
  for (int i = 0; i < 15; ++i) guard.Record(true, t0 + i * 1ms);
  EXPECT_EQ(guard.Counts(t0 + 50ms).first, 15);
  EXPECT_EQ(guard.Counts(t0 + 1100ms), std::make_pair(int64_t{0}, int64_t{0}));
  // 15 successes now and 5 errors: 5 of 20 is 25 %, under 50 %: the old errors do not count.
  for (int i = 0; i < 15; ++i) guard.Record(false, t0 + 1100ms + i * 1ms);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(guard.Record(true, t0 + 1200ms + i * 1ms));
  EXPECT_FALSE(guard.tripped());
  // Within one window they still count: 11 more errors make 16 of 31.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(guard.Record(true, t0 + 1300ms + i * 1ms));
  EXPECT_TRUE(guard.Record(true, t0 + 1400ms));
}

TEST(CanaryGuardTest, NeedsAFewErrorsNotJustARateAboveTheLimit) {
  // At a 1 % limit one error among 50 requests is 2 %: a lone transient error, not a broken
  // revision. The guard waits for kGuardMinErrors errors in its window.
  CanaryGuard guard(Options(0.01), nullptr);
  const auto t0 = Clock::time_point(100s);
  for (int i = 0; i < 49; ++i) EXPECT_FALSE(guard.Record(false, t0 + i * 1ms));
  EXPECT_FALSE(guard.Record(true, t0 + 50ms));
  EXPECT_FALSE(guard.Record(true, t0 + 51ms));
  EXPECT_FALSE(guard.tripped());
  EXPECT_EQ(guard.Counts(t0 + 60ms), std::make_pair(int64_t{51}, int64_t{2}));
  EXPECT_TRUE(guard.Record(true, t0 + 52ms));
}

TEST(CanaryGuardTest, ALimitOfOneNeverTrips) {
  CanaryGuard guard(Options(1.0), nullptr);
  const auto t0 = Clock::time_point(100s);
  for (int i = 0; i < 1000; ++i) guard.Record(true, t0 + i * 1ms);
  EXPECT_FALSE(guard.tripped());
}

// --- the routing table ---

std::vector<std::pair<std::string, std::vector<Endpoint>>> Endpoints() {
  return {{"stable", {MakeEndpoint("127.0.0.1", 8081)}},
          {"canary", {MakeEndpoint("127.0.0.1", 8082)}}};
}

TrafficConfig Config(int32_t canary_weight, std::string stable = "stable") {
  TrafficConfig c;
  c.targets = {{"stable", 100 - canary_weight, std::nullopt},
               {"canary", canary_weight, std::nullopt}};
  c.stable_revision = std::move(stable);
  c.guard = Options(0.1);
  return c;
}

void Trip(const RoutingTable& table, int revision) {
  const auto t0 = Clock::now();
  for (int i = 0; i < 20; ++i) table.revision(revision).guard->Record(true, t0);
  ASSERT_TRUE(table.revision(revision).guard->tripped());
}

TEST(RoutingTableGuardTest, ACanaryHasAGuardAndRetriesGoToTheStable) {
  auto registry = std::make_shared<prometheus::Registry>();
  RouterMetrics metrics(registry);
  auto table = RoutingTable::Build(Config(10), Endpoints(), &metrics, nullptr);
  EXPECT_EQ(table->stable(), 0);
  EXPECT_EQ(table->revision(0).guard, nullptr);
  ASSERT_NE(table->revision(1).guard, nullptr);
  EXPECT_EQ(table->RetryTarget(1), 0);
  EXPECT_EQ(table->RetryTarget(0), -1);  // the stable's failures are never retried

  TrafficConfig off = Config(10);
  off.retry_on_stable = false;
  EXPECT_EQ(RoutingTable::Build(off, Endpoints(), nullptr, nullptr)->RetryTarget(1), -1);
  // No stable revision named (or one without endpoints): no retries, no guard.
  auto none = RoutingTable::Build(Config(10, ""), Endpoints(), nullptr, nullptr);
  EXPECT_EQ(none->RetryTarget(1), -1);
  EXPECT_EQ(none->revision(1).guard, nullptr);
  auto eps = Endpoints();
  eps[0].second.clear();
  EXPECT_EQ(RoutingTable::Build(Config(10), eps, nullptr, nullptr)->RetryTarget(1), -1);
}

TEST(RoutingTableGuardTest, ATrippedCanaryGivesItsRequestsToTheStable) {
  auto registry = std::make_shared<prometheus::Registry>();
  RouterMetrics metrics(registry);
  auto table = RoutingTable::Build(Config(50), Endpoints(), &metrics, nullptr);
  int canary = 0;
  for (int i = 0; i < 100; ++i) canary += table->Route("") == 1 ? 1 : 0;
  EXPECT_EQ(canary, 50);
  Trip(*table, 1);
  EXPECT_EQ(metrics.ForRevision("canary").guard_tripped->Value(), 1);
  // Half of these would have been the canary's (the schedule goes on): all go to the stable.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(table->Route(""), 0);
  EXPECT_EQ(metrics.ForRevision("canary").guard_diverted->Value(), 50);
  // Sticky callers pinned to the canary too.
  int pinned = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string user = "user-" + std::to_string(i);
    pinned += table->PickRevision(user) == 1 ? 1 : 0;
    EXPECT_EQ(table->Route(user), 0);
  }
  EXPECT_GT(pinned, 0);
  EXPECT_EQ(metrics.ForRevision("canary").guard_diverted->Value(), 50 + pinned);
}

TEST(RoutingTableGuardTest, TheGuardStaysUntilTheWeightsChange) {
  auto registry = std::make_shared<prometheus::Registry>();
  RouterMetrics metrics(registry);
  auto first = RoutingTable::Build(Config(10), Endpoints(), &metrics, nullptr);
  Trip(*first, 1);
  // An endpoint change keeps the weights: the same (tripped) guard.
  auto eps = Endpoints();
  eps[1].second.push_back(MakeEndpoint("127.0.0.1", 8083));
  auto second = RoutingTable::Build(Config(10), eps, &metrics, first.get());
  EXPECT_EQ(second->revision(1).guard, first->revision(1).guard);
  EXPECT_TRUE(second->revision(1).guard->tripped());
  EXPECT_EQ(metrics.ForRevision("canary").guard_tripped->Value(), 1);
  // The operator moved the weights (here: rolled back to 0): a fresh guard, gauge back to 0.
  auto rolled_back = RoutingTable::Build(Config(0), eps, &metrics, second.get());
  EXPECT_EQ(rolled_back->revision(1).guard, nullptr);
  EXPECT_EQ(metrics.ForRevision("canary").guard_tripped->Value(), 0);
  auto again = RoutingTable::Build(Config(10), eps, &metrics, rolled_back.get());
  ASSERT_NE(again->revision(1).guard, nullptr);
  EXPECT_FALSE(again->revision(1).guard->tripped());
}

// --- what the router reads from the ModelDeployment ---

TEST(TrafficConfigTest, TheStableRevisionRetriesAndTheGuardComeFromTheModelDeployment) {
  nlohmann::json md = {
      {"apiVersion", "sluice.dev/v1alpha1"},
      {"kind", "ModelDeployment"},
      {"metadata", {{"name", "fraud"}, {"namespace", "ml"}}},
      {"spec", {{"model", {{"uri", "file:///m.json"}}}}},
      {"status",
       {{"stableRevision", "fraud-1"},
        {"traffic",
         {{{"revision", "fraud-1"}, {"weight", 90}}, {{"revision", "fraud-2"}, {"weight", 10}}}}}}};
  auto c = TrafficConfigFromModelDeployment(md);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->stable_revision, "fraud-1");
  EXPECT_TRUE(c->retry_on_stable);
  EXPECT_EQ(c->guard.max_error_rate, api::kDefaultMaxErrorRate);
  EXPECT_EQ(c->guard.window, 5000ms);
  EXPECT_EQ(c->guard.min_samples, 20);

  md["spec"]["traffic"]["retryOnStable"] = false;
  md["spec"]["rollout"]["canary"]["analysis"] = {
      {"interval", "10s"},
      {"metrics",
       {{{"name", "errors"}, {"builtin", "errorRate"}, {"thresholdRange", {{"max", 0.05}}}},
        {{"name", "strict"}, {"builtin", "errorRate"}, {"thresholdRange", {{"max", 0.02}}}},
        {{"name", "p99"}, {"builtin", "latencyP99"}, {"thresholdRange", {{"max", 0.3}}}}}}};
  c = TrafficConfigFromModelDeployment(md);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->retry_on_stable);
  EXPECT_EQ(c->guard.max_error_rate, 0.02);  // the strictest errorRate limit
  EXPECT_EQ(c->guard.window, 10000ms);

  // Metrics without an errorRate limit: the guard still stops a canary failing half its requests.
  md["spec"]["rollout"]["canary"]["analysis"] = {
      {"interval", "200ms"},
      {"metrics",
       {{{"name", "p99"}, {"builtin", "latencyP99"}, {"thresholdRange", {{"max", 0.3}}}}}}};
  c = TrafficConfigFromModelDeployment(md);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->guard.max_error_rate, api::kGuardFallbackMaxErrorRate);
  EXPECT_EQ(c->guard.window, 1000ms);  // kept within [1 s, 60 s]
}

}  // namespace
}  // namespace sluice::dataplane
