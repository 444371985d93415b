#include "controllers/rollout/revision.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

namespace sluice::controllers {
namespace {

using nlohmann::json;

ModelDeploymentSpec Base() {
  ModelDeploymentSpec s;
  s.model.uri = "file:///models/fraud/fraud.json";
  s.model.format = "xgboost-json";
  s.model.version = "1";
  RuntimeSpec rt;
  rt.image = "sluice/server:0.1";
  rt.resources = json{{"requests", {{"cpu", "500m"}}}};
  rt.batching = BatchingSpec{32, "1ms", 1024};
  rt.cache = CacheSpec{true, 10000, "60s"};
  rt.env = json::array({{{"name", "LOG"}, {"value", "info"}}});
  rt.args = std::vector<std::string>{"--threads=2"};
  s.runtime = rt;
  s.replicas = 2;
  return s;
}

TEST(RevisionHashTest, ShapeAndStability) {
  const std::string h = RevisionHash(Base());
  EXPECT_EQ(h.size(), 10u);
  for (char c : h) EXPECT_NE(std::string("bcdfghjklmnpqrstvwxz2456789").find(c), std::string::npos);
  EXPECT_EQ(RevisionHash(Base()), h);
  EXPECT_EQ(RevisionName("fraud", Base()), "fraud-" + h);
}

TEST(RevisionHashTest, EveryPodAffectingFieldChangesIt) {
  const std::string base = RevisionHash(Base());
  const std::vector<std::pair<const char*, std::function<void(ModelDeploymentSpec&)>>> changes = {
      {"uri", [](auto& s) { s.model.uri = "file:///models/fraud/v2.json"; }},
      {"format", [](auto& s) { s.model.format = "xgboost-ubj"; }},
      {"version", [](auto& s) { s.model.version = "2"; }},
      {"sha256", [](auto& s) { s.model.sha256 = std::string(64, 'a'); }},
      {"image", [](auto& s) { s.runtime->image = "sluice/server:0.2"; }},
      {"resources", [](auto& s) { (*s.runtime->resources)["requests"]["cpu"] = "1"; }},
      {"maxBatchSize", [](auto& s) { s.runtime->batching->max_batch_size = 64; }},
      {"maxQueueDelay", [](auto& s) { s.runtime->batching->max_queue_delay = "2ms"; }},
      {"maxQueueSize", [](auto& s) { s.runtime->batching->max_queue_size = 10; }},
      {"no batching", [](auto& s) { s.runtime->batching.reset(); }},
      {"cache enabled", [](auto& s) { s.runtime->cache->enabled = false; }},
      {"cache capacity", [](auto& s) { s.runtime->cache->capacity = 5; }},
      {"cache ttl", [](auto& s) { s.runtime->cache->ttl = "5m"; }},
      {"env", [](auto& s) { (*s.runtime->env)[0]["value"] = "debug"; }},
      {"args", [](auto& s) { s.runtime->args->push_back("--x"); }},
  };
  std::set<std::string> seen{base};
  for (const auto& [what, change] : changes) {
    ModelDeploymentSpec s = Base();
    change(s);
    const std::string h = RevisionHash(s);
    EXPECT_NE(h, base) << what << " did not change the revision";
    EXPECT_TRUE(seen.insert(h).second) << what << " collides with another change";
  }
}

TEST(RevisionHashTest, ScalingRolloutAndTrafficSettingsDoNotChangeIt) {
  const std::string base = RevisionHash(Base());
  ModelDeploymentSpec s = Base();
  s.replicas = 7;
  EXPECT_EQ(RevisionHash(s), base);
  s.replicas.reset();
  s.autoscaling = AutoscalingSpec{1, 10, 8, "Concurrency", "60s", "6s", "0s"};
  EXPECT_EQ(RevisionHash(s), base);
  RolloutSpec r;
  r.strategy = "Rolling";
  r.progress_deadline = "5m";
  s.rollout = r;
  EXPECT_EQ(RevisionHash(s), base);
  s.traffic = TrafficSpec{"Builtin", MirrorSpec{5}, StickySpec{"x-user"}, std::nullopt};
  EXPECT_EQ(RevisionHash(s), base);
  s.features = std::vector<FeatureRef>{{"card-features", std::nullopt}};
  EXPECT_EQ(RevisionHash(s), base);
}

TEST(RevisionHashTest, DefaultingByTheApiServerDoesNotCreateARevision) {
  ModelDeploymentSpec bare;
  bare.model.uri = "file:///m.json";
  RuntimeSpec rt;
  rt.batching = BatchingSpec{};
  rt.cache = CacheSpec{};
  bare.runtime = rt;
  ModelDeploymentSpec defaulted = bare;
  defaulted.model.format = "auto";
  defaulted.runtime->batching = BatchingSpec{32, "1ms", 1024};
  defaulted.runtime->cache = CacheSpec{true, 10000, "60s"};
  EXPECT_EQ(RevisionHash(bare), RevisionHash(defaulted));
  // Spelling a duration differently is the same revision too.
  defaulted.runtime->cache->ttl = "1m";
  defaulted.runtime->batching->max_queue_delay = "1000us";
  EXPECT_EQ(RevisionHash(bare), RevisionHash(defaulted));
  // An empty runtime is no runtime.
  ModelDeploymentSpec none;
  none.model.uri = "file:///m.json";
  ModelDeploymentSpec empty = none;
  empty.runtime = RuntimeSpec{};
  EXPECT_EQ(RevisionHash(none), RevisionHash(empty));
}

}  // namespace
}  // namespace sluice::controllers
