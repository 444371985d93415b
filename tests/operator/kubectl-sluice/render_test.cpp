// The views of kubectl-sluice on fixtures shaped as the API server returns objects.

#include "operator/kubectl-sluice/render.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "lib/api/time.h"

namespace sluice::kubectl_sluice {
namespace {

using nlohmann::json;

WallClock At(const char* text) {
  return *controllers::ParseTime(text);
}

const WallClock kNow = At("2026-01-01T12:00:00Z");

json Fixture(const std::string& name) {
  std::ifstream in(std::string(SLUICE_PLUGIN_FIXTURES) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in);
}

StatusInputs Inputs(const json& f) {
  StatusInputs in;
  in.model_deployment = f["modelDeployment"];
  in.deployments = f["deployments"].get<std::vector<json>>();
  in.replica_sets = f["replicaSets"].get<std::vector<json>>();
  in.pods = f["pods"].get<std::vector<json>>();
  in.events = f["events"].get<std::vector<json>>();
  return in;
}

json Healthy() {
  return {{"metadata",
           {{"name", "churn"},
            {"namespace", "team-b"},
            {"generation", 2},
            {"creationTimestamp", "2025-12-29T12:00:00Z"}}},
          {"status",
           {{"observedGeneration", 2},
            {"phase", "Healthy"},
            {"stableRevision", "churn-111"},
            {"revisions", {{{"name", "churn-111"}, {"modelVersion", "7"}}}},
            {"traffic", {{{"revision", "churn-111"}, {"weight", 100}}}}}}};
}

// Created, not yet seen by the operator.
json Fresh() {
  return {{"metadata",
           {{"name", "new"},
            {"namespace", "ml"},
            {"generation", 1},
            {"creationTimestamp", "2026-01-01T11:59:50Z"}}},
          {"spec", {{"model", {{"uri", "file:///m.json"}}}}}};
}

TEST(GetTableTest, OneRowPerModelDeploymentWithItsRolloutState) {
  const json canary = Fixture("canary.json")["modelDeployment"];
  EXPECT_EQ(
      RenderGetTable({canary, Fresh()}, false, kNow),
      "NAME    PHASE         STABLE          CANARY          TRAFFIC   STEP   ANALYSIS   AGE\n"
      "fraud   Progressing   fraud-aaa (1)   fraud-bbb (2)   50/50     2/3    Fail       3h\n"
      "new     -             -               -               -         -      -          10s\n");
}

TEST(GetTableTest, AllNamespacesAddsTheNamespaceColumn) {
  const std::string out = RenderGetTable({Healthy()}, true, kNow);
  EXPECT_EQ(
      out,
      "NAMESPACE   NAME    PHASE     STABLE          CANARY   TRAFFIC   STEP   ANALYSIS   AGE\n"
      "team-b      churn   Healthy   churn-111 (7)   -        100       -      -          3d\n");
}

TEST(GetTableTest, EmptyListSaysSo) {
  EXPECT_EQ(RenderGetTable({}, false, kNow), "No resources found.\n");
}

TEST(StatusTreeTest, ShowsStepTrafficAnalysisAgainstThresholdsAndTheOwnedTree) {
  const std::string out = RenderStatus(Inputs(Fixture("canary.json")), kNow);
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("Phase:       Progressing  (canary fraud-bbb step 2/3 at 50% of 50%)\n"),
            std::string::npos);
  EXPECT_NE(out.find("Strategy:    Canary  10% 1m → 50% 2m → 100%\n"), std::string::npos);
  EXPECT_NE(out.find("Step:        2/3  weight 50%  pause 2m  (started 30s ago)\n"),
            std::string::npos);
  EXPECT_NE(out.find("Traffic:     fraud-aaa 50%  fraud-bbb 50%\n"), std::string::npos);
  EXPECT_NE(out.find("Analysis:    Fail  5s ago  requests 120  failures in a row 1/3\n"),
            std::string::npos);
  EXPECT_NE(out.find("error-rate    0.034   max 0.01    FAIL\n"), std::string::npos);
  EXPECT_NE(out.find("latency-p99   0.02    max 0.1     ok\n"), std::string::npos);
  // The tree: revision → Deployment → ReplicaSet → Pods; the empty old ReplicaSet is left out.
  EXPECT_NE(out.find("  ├─ fraud-aaa  stable  model 1  weight 50%  ready 2/2\n"
                     "  │  └─ Deployment fraud-aaa  ready 2/2\n"
                     "  │     └─ ReplicaSet fraud-aaa-5f7  ready 2/2\n"
                     "  │        ├─ Pod fraud-aaa-5f7-x1  Running  ready 1/1\n"
                     "  │        └─ Pod fraud-aaa-5f7-x2  Running  ready 1/1  restarts 2\n"
                     "  └─ fraud-bbb  canary  model 2  weight 50%  ready 1/1\n"),
            std::string::npos);
  EXPECT_EQ(out.find("fraud-aaa-old"), std::string::npos);
  EXPECT_NE(out.find("Pod fraud-bbb-9c1-y1  CrashLoopBackOff  ready 0/1  restarts 4"),
            std::string::npos);
  EXPECT_NE(out.find("Router:\n  └─ Deployment fraud-router  ready 1/1\n"), std::string::npos);
  EXPECT_NE(out.find("Progressing   True     RolloutInProgress   2m"), std::string::npos);
  // Events oldest first, with their repeat count.
  const size_t started = out.find("RolloutStarted");
  const size_t nodata = out.find("no requests yet (x3)");
  const size_t advanced = out.find("StepAdvanced");
  ASSERT_NE(started, std::string::npos);
  ASSERT_NE(nodata, std::string::npos);
  ASSERT_NE(advanced, std::string::npos);
  EXPECT_LT(started, nodata);
  EXPECT_LT(nodata, advanced);
}

TEST(StatusTreeTest, WorksWithoutPodsOrStatus) {
  StatusInputs in;
  in.model_deployment = Fresh();
  const std::string out = RenderStatus(in, kNow);
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("Phase:       -\n"), std::string::npos);
  EXPECT_NE(out.find("the operator has not reported a status yet"), std::string::npos);
  EXPECT_NE(out.find("Traffic:     - (no revision has Ready pods)"), std::string::npos);
  EXPECT_NE(out.find("Revisions:\n  -\n"), std::string::npos);
  EXPECT_NE(out.find("Events:\n  -\n"), std::string::npos);
}

TEST(StatusTreeTest, SaysWhenTheStatusIsOlderThanTheSpec) {
  json md = Healthy();
  md["metadata"]["generation"] = 3;
  StatusInputs in;
  in.model_deployment = md;
  const std::string out = RenderStatus(in, kNow);
  EXPECT_NE(out.find("status describes generation 2 of 3"), std::string::npos) << out;
}

TEST(StatusTreeTest, AStepWithoutPauseWaitsForPromote) {
  json md = Fixture("canary.json")["modelDeployment"];
  md["status"]["currentStep"] = 2;
  md["spec"]["rollout"]["canary"]["steps"][2] = {{"weight", 100}};
  md["spec"]["rollout"]["canary"]["steps"][1] = {{"weight", 50}};
  md["status"]["currentStep"] = 1;
  StatusInputs in;
  in.model_deployment = md;
  EXPECT_NE(RenderStatus(in, kNow).find("pause: until sluice.dev/promote"), std::string::npos);
}

TEST(HistoryTest, ListsEntriesOldestFirst) {
  json md = Healthy();
  md["status"]["history"] = {{{"revision", "churn-000"},
                              {"modelVersion", "6"},
                              {"result", "Deployed"},
                              {"reason", "RolloutComplete"},
                              {"time", "2026-01-01T10:00:00Z"},
                              {"message", "first revision churn-000 is Ready"}},
                             {{"revision", "churn-0ab"},
                              {"result", "Aborted"},
                              {"reason", "Aborted"},
                              {"time", "2026-01-01T11:00:00Z"}},
                             {{"revision", "churn-111"},
                              {"modelVersion", "7"},
                              {"result", "Promoted"},
                              {"reason", "RolloutComplete"},
                              {"time", "2026-01-01T11:59:00Z"}}};
  EXPECT_EQ(RenderHistory(md, kNow),
            "#   REVISION    MODEL   RESULT     REASON            FINISHED   MESSAGE\n"
            "1   churn-000   6       Deployed   RolloutComplete   2h ago     first revision "
            "churn-000 is Ready\n"
            "2   churn-0ab   -       Aborted    Aborted           60m ago\n"
            "3   churn-111   7       Promoted   RolloutComplete   60s ago\n");
  EXPECT_EQ(RenderHistory(Fresh(), kNow), "No finished rollouts recorded for new.\n");
}

TEST(WaitTest, APhaseCountsOnlyForTheLatestGeneration) {
  json md = Healthy();
  EXPECT_EQ(EvaluateWait(md), WaitState::kHealthy);
  md["metadata"]["generation"] = 3;
  EXPECT_EQ(EvaluateWait(md), WaitState::kPending);
  md["status"]["observedGeneration"] = 3;
  md["status"]["phase"] = "Degraded";
  EXPECT_EQ(EvaluateWait(md), WaitState::kDegraded);
  md["status"]["phase"] = "RolledBack";
  EXPECT_EQ(EvaluateWait(md), WaitState::kRolledBack);
  md["status"]["phase"] = "Paused";
  EXPECT_EQ(EvaluateWait(md), WaitState::kPending);
  EXPECT_EQ(EvaluateWait(Fresh()), WaitState::kPending);
}

TEST(WaitTest, ProgressLineNamesThePhaseAndWhy) {
  const json md = Fixture("canary.json")["modelDeployment"];
  EXPECT_EQ(ProgressLine(md), "fraud: Progressing - canary fraud-bbb step 2/3 at 50% of 50%");
  json stale = Healthy();
  stale["metadata"]["generation"] = 3;
  EXPECT_EQ(ProgressLine(stale), "churn: Healthy (status of generation 2 of 3)");
}

TEST(ShortAgeTest, LikeKubectl) {
  EXPECT_EQ(ShortAge(std::chrono::seconds(5)), "5s");
  EXPECT_EQ(ShortAge(std::chrono::seconds(119)), "119s");
  EXPECT_EQ(ShortAge(std::chrono::minutes(3)), "3m");
  EXPECT_EQ(ShortAge(std::chrono::hours(5)), "5h");
  EXPECT_EQ(ShortAge(std::chrono::hours(72)), "3d");
  EXPECT_EQ(ShortAge(std::chrono::seconds(-4)), "0s");
}

}  // namespace
}  // namespace sluice::kubectl_sluice
