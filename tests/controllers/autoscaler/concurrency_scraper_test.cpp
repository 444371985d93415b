#include "controllers/autoscaler/concurrency_scraper.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "tests/controllers/scrape/fake_fetcher.h"
#include "tests/lib/controller/fake_objects.h"
#include "controllers/modeldeployment/resources.h"
#include "tests/lib/base/fake_clock.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using testing::FakeFetcher;
using testing::FakeObjects;
using namespace std::chrono_literals;

// A revision's serving pods as the scraper sees them: `replicas` Ready pods sharing the
// revision's in-flight requests evenly, each answering on its own pod IP.
class Cluster {
 public:
  Cluster(FakeObjects& objects, FakeFetcher& fetcher) : objects_(objects), fetcher_(fetcher) {}

  void AddModelDeployment(const std::string& name, json autoscaling) {
    objects_.Put(
        api::kModelDeploymentsGvr,
        {{"apiVersion", "sluice.dev/v1alpha1"},
         {"kind", "ModelDeployment"},
         {"metadata", {{"name", name}, {"namespace", "ml"}}},
         {"spec", {{"model", {{"uri", "file:///m.json"}}}, {"autoscaling", autoscaling}}}});
  }

  // Sets the revision's Ready pods to `replicas` and their gauges to share `inflight`.
  void Set(const std::string& md, const std::string& revision, int replicas, double inflight) {
    auto& pods = pods_[revision];
    while (static_cast<int>(pods.size()) < replicas) {
      const std::string name = revision + "-" + std::to_string(pods.size());
      const std::string ip = "10.1." + std::to_string(revisions_index(revision)) + "." +
                             std::to_string(pods.size() + 1);
      objects_.Put(
          kube::resources::kPods,
          {{"apiVersion", "v1"},
           {"kind", "Pod"},
           {"metadata",
            {{"name", name},
             {"namespace", "ml"},
             {"labels",
              {{api::kLabelComponent, "server"},
               {api::kLabelModelDeployment, md},
               {api::kLabelRevision, revision}}}}},
           {"spec",
            {{"containers", json::array({{{"name", "server"},
                                          {"ports", json::array({{{"name", "http"},
                                                                  {"containerPort", 8080}}})}}})}}},
           {"status",
            {{"phase", "Running"},
             {"podIP", ip},
             {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}});
      pods.push_back(ip);
    }
    for (const std::string& ip : pods) {
      fetcher_.Serve(
          "http://" + ip + ":8080/metrics",
          "# TYPE sluice_server_inflight_requests gauge\nsluice_server_inflight_requests " +
              std::to_string(inflight / static_cast<double>(pods.size())) + "\n");
    }
  }

  const std::vector<std::string>& ips(const std::string& revision) { return pods_[revision]; }

 private:
  int revisions_index(const std::string& revision) {
    auto [it, added] = index_.emplace(revision, static_cast<int>(index_.size()) + 1);
    return it->second;
  }

  FakeObjects& objects_;
  FakeFetcher& fetcher_;
  std::map<std::string, std::vector<std::string>> pods_;
  std::map<std::string, int> index_;
};

class ConcurrencyScraperTest : public ::testing::Test {
 protected:
  ConcurrencyScraperTest() {
    ConcurrencyScraperOptions o;
    o.clock = &clock_;
    scraper_ = std::make_unique<ConcurrencyScraper>(objects_, finder_, fetcher_, o);
  }

  // One autoscaler decision for `revision`, as the reconciler makes it.
  AutoscalerDecision Decide(const std::string& md, const std::string& revision,
                            const AutoscalerPolicy& policy, int32_t replicas) {
    AutoscalerInput in;
    in.policy = policy;
    in.now = clock_.Now();
    in.current_replicas = replicas;
    in.ready_replicas = replicas;
    in.state = states_[revision];
    auto samples = scraper_->Samples("ml", md, revision, in.now - policy.stable_window);
    EXPECT_TRUE(samples.ok());
    in.samples = *samples;
    AutoscalerDecision d = Autoscale(in);
    states_[revision] = d.state;
    return d;
  }

  sluice::testing::FakeClock clock_;
  FakeObjects objects_;
  CachedPodFinder finder_{objects_};
  FakeFetcher fetcher_;
  Cluster cluster_{objects_, fetcher_};
  std::unique_ptr<ConcurrencyScraper> scraper_;
  std::map<std::string, AutoscalerState> states_;
};

TEST_F(ConcurrencyScraperTest, AStepIncreaseInLoadReachesTheNeededReplicasWithinTenSeconds) {
  cluster_.AddModelDeployment("fraud", {{"maxReplicas", 20}, {"targetConcurrency", 10}});
  AutoscalerPolicy policy;
  policy.target_concurrency = 10;
  policy.min_replicas = 1;
  policy.max_replicas = 20;
  int32_t replicas = 1;
  // A minute at 8 in flight: one pod is right.
  for (int s = 0; s < 60; ++s) {
    cluster_.Set("fraud", "fraud-a", replicas, 8);
    scraper_->ScrapeOnce();
    replicas = Decide("fraud", "fraud-a", policy, replicas).desired_replicas;
    clock_.Advance(1s);
  }
  ASSERT_EQ(replicas, 1);

  // Load steps to 95 in flight: 10 pods are needed. New pods take 2 s to become Ready, and until
  // then the Ready ones carry the load.
  std::optional<int> reached_after;
  std::map<int, int32_t> ready_at;  // second -> replicas ordered then
  int32_t ready = replicas;
  for (int s = 1; s <= 30 && !reached_after; ++s) {
    clock_.Advance(1s);
    if (auto it = ready_at.find(s); it != ready_at.end()) ready = std::max(ready, it->second);
    cluster_.Set("fraud", "fraud-a", ready, 95);
    scraper_->ScrapeOnce();
    const AutoscalerDecision d = Decide("fraud", "fraud-a", policy, replicas);
    if (d.desired_replicas > replicas) ready_at[s + 2] = d.desired_replicas;
    replicas = std::max(replicas, d.desired_replicas);
    if (replicas >= 10) reached_after = s;
  }
  ASSERT_TRUE(reached_after.has_value()) << "still at " << replicas << " replicas after 30 s";
  std::printf(
      "AUTOSCALER step 8 -> 95 in flight (target 10): 10 replicas decided %d s after the "
      "step\n",
      *reached_after);
  EXPECT_LE(*reached_after, 10);
}

TEST_F(ConcurrencyScraperTest, EachRevisionIsScaledOnItsOwnShareOfTheTraffic) {
  cluster_.AddModelDeployment("fraud", {{"maxReplicas", 20}, {"targetConcurrency", 10}});
  AutoscalerPolicy policy;
  policy.target_concurrency = 10;
  policy.max_replicas = 20;
  // 100 in flight split 90/10 between the stable and the canary.
  int32_t stable = 9, canary = 1;
  for (int s = 0; s < 70; ++s) {
    cluster_.Set("fraud", "fraud-a", stable, 90);
    cluster_.Set("fraud", "fraud-b", canary, 10);
    scraper_->ScrapeOnce();
    stable = Decide("fraud", "fraud-a", policy, stable).desired_replicas;
    canary = Decide("fraud", "fraud-b", policy, canary).desired_replicas;
    clock_.Advance(1s);
  }
  EXPECT_EQ(stable, 9);
  EXPECT_EQ(canary, 1);
  auto a = scraper_->Samples("ml", "fraud", "fraud-a", clock_.Now() - 2s);
  auto b = scraper_->Samples("ml", "fraud", "fraud-b", clock_.Now() - 2s);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_FALSE(a->empty());
  ASSERT_FALSE(b->empty());
  EXPECT_NEAR(a->back().concurrency, 90, 1e-6);
  EXPECT_NEAR(b->back().concurrency, 10, 1e-6);

  // The canary's load grows to 40 while the stable's stays: only the canary grows.
  for (int s = 0; s < 70; ++s) {
    cluster_.Set("fraud", "fraud-a", stable, 90);
    cluster_.Set("fraud", "fraud-b", canary, 40);
    scraper_->ScrapeOnce();
    stable = Decide("fraud", "fraud-a", policy, stable).desired_replicas;
    canary = Decide("fraud", "fraud-b", policy, canary).desired_replicas;
    clock_.Advance(1s);
  }
  EXPECT_EQ(stable, 9);
  EXPECT_EQ(canary, 4);
}

TEST_F(ConcurrencyScraperTest, PodsThatDoNotAnswerAreNotReadAsIdle) {
  cluster_.AddModelDeployment("fraud", {{"maxReplicas", 5}});
  cluster_.Set("fraud", "fraud-a", 4, 40);  // 10 each
  fetcher_.Fail("http://" + cluster_.ips("fraud-a")[0] + ":8080/metrics", Timeout("slow"));
  scraper_->ScrapeOnce();
  auto s = scraper_->Samples("ml", "fraud", "fraud-a", clock_.Now() - 1s);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 1u);
  EXPECT_NEAR(s->front().concurrency, 40, 1e-6) << "3 answering pods at 10 each, scaled to 4";

  // None answering: no sample at all rather than a zero.
  for (const std::string& ip : cluster_.ips("fraud-a")) {
    fetcher_.Fail("http://" + ip + ":8080/metrics", Unavailable("refused"));
  }
  clock_.Advance(1s);
  scraper_->ScrapeOnce();
  s = scraper_->Samples("ml", "fraud", "fraud-a", clock_.Now() - 500ms);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
}

TEST_F(ConcurrencyScraperTest, HpaModeAndFixedReplicasAreNotSampled) {
  cluster_.AddModelDeployment("hpa", {{"maxReplicas", 5}, {"mode", "HPA"}});
  cluster_.Set("hpa", "hpa-a", 1, 3);
  objects_.Put(api::kModelDeploymentsGvr,
               {{"apiVersion", "sluice.dev/v1alpha1"},
                {"kind", "ModelDeployment"},
                {"metadata", {{"name", "fixed"}, {"namespace", "ml"}}},
                {"spec", {{"model", {{"uri", "file:///m.json"}}}, {"replicas", 2}}}});
  cluster_.Set("fixed", "fixed-a", 2, 3);
  scraper_->ScrapeOnce();
  EXPECT_EQ(fetcher_.calls("http://" + cluster_.ips("hpa-a")[0] + ":8080/metrics"), 0);
  EXPECT_EQ(fetcher_.calls("http://" + cluster_.ips("fixed-a")[0] + ":8080/metrics"), 0);
}

TEST(InflightFromPageTest, SumsEverySeriesAndRefusesAPageWithout) {
  auto v = InflightFromPage(
      "sluice_server_inflight_requests{model=\"a\"} "
      "2\nsluice_server_inflight_requests{model=\"b\"} 3\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 5);
  EXPECT_FALSE(InflightFromPage("other 1\n").ok());
  EXPECT_FALSE(InflightFromPage("sluice_server_inflight_requests{ 1\n").ok());
}

}  // namespace
}  // namespace sluice::controllers
