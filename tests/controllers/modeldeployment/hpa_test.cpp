#include "controllers/modeldeployment/hpa.h"
#include "lib/api/object_labels.h"

#include <gtest/gtest.h>

namespace sluice::controllers {
namespace {

using nlohmann::json;

ModelDeploymentObject Owner() {
  ModelDeploymentObject o;
  o.md.metadata = {{"name", "fraud"}, {"namespace", "ml"}, {"uid", "uid-1"}};
  o.uid = "uid-1";
  return o;
}

TEST(HpaTest, RangeIsSplitByTrafficWeightAndNeverBelowOne) {
  EXPECT_EQ(SplitByWeight(2, 20, 100).min_replicas, 2);
  EXPECT_EQ(SplitByWeight(2, 20, 100).max_replicas, 20);
  EXPECT_EQ(SplitByWeight(2, 20, 90).min_replicas, 2);  // ceil(1.8)
  EXPECT_EQ(SplitByWeight(2, 20, 90).max_replicas, 18);
  EXPECT_EQ(SplitByWeight(2, 20, 10).min_replicas, 1);  // ceil(0.2)
  EXPECT_EQ(SplitByWeight(2, 20, 10).max_replicas, 2);
  EXPECT_EQ(SplitByWeight(0, 3, 1).min_replicas, 1);
  EXPECT_EQ(SplitByWeight(0, 3, 1).max_replicas, 1);
  EXPECT_EQ(SplitByWeight(5, 5, 50).min_replicas, 3);
  EXPECT_EQ(SplitByWeight(5, 5, 50).max_replicas, 3);
}

TEST(HpaTest, TheObjectScalesTheRevisionOnInflightRequestsPerPod) {
  const json hpa = RevisionHpa(Owner(), "fraud-7c9", HpaRange{1, 4}, 6);
  EXPECT_EQ(hpa["apiVersion"], "autoscaling/v2");
  EXPECT_EQ(hpa["kind"], "HorizontalPodAutoscaler");
  EXPECT_EQ(hpa["metadata"]["name"], "fraud-7c9");
  EXPECT_EQ(hpa["metadata"]["namespace"], "ml");
  EXPECT_EQ(hpa["metadata"]["labels"][api::kLabelRevision], "fraud-7c9");
  EXPECT_EQ(hpa["metadata"]["labels"][api::kLabelManagedBy], api::kManagedByValue);
  const json& ref = hpa["metadata"]["ownerReferences"][0];
  EXPECT_EQ(ref["uid"], "uid-1");
  EXPECT_EQ(ref["controller"], true);
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"],
            json({{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "fraud-7c9"}}));
  EXPECT_EQ(hpa["spec"]["minReplicas"], 1);
  EXPECT_EQ(hpa["spec"]["maxReplicas"], 4);
  ASSERT_EQ(hpa["spec"]["metrics"].size(), 1u);
  const json& m = hpa["spec"]["metrics"][0];
  EXPECT_EQ(m["type"], "Pods");
  EXPECT_EQ(m["pods"]["metric"]["name"], "sluice_server_inflight_requests");
  EXPECT_EQ(m["pods"]["target"]["type"], "AverageValue");
  EXPECT_EQ(m["pods"]["target"]["averageValue"], "6");
}

}  // namespace
}  // namespace sluice::controllers
