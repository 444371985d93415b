// The HPA intent of HPA mode against a real kube-apiserver: accepted by server-side apply as the
// operator sends it, and, read back with the server's defaults, still a subset of the live object
// (so a reconcile at rest does not write it again).

#include <gtest/gtest.h>

#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "controllers/modeldeployment/hpa.h"
#include "lib/controller/object_io.h"
#include "tests/support/api_server.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;

TEST(HpaIntegrationTest, TheApiServerAcceptsTheHpaAndTheIntentStaysASubset) {
  auto config = kube::Config::FromKubeconfig(sluice::testing::SharedApiServer().kubeconfig_path());
  ASSERT_TRUE(config.ok()) << config.status();
  auto client = kube::Client::Create(*config);
  ASSERT_TRUE(client.ok()) << client.status();
  kube::Client& c = **client;
  const std::string ns = "hpa-it";
  auto created =
      c.Create(kube::resources::kNamespaces, "",
               {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  ASSERT_TRUE(created.ok() || created.status().code() == StatusCode::kAlreadyExists)
      << created.status();

  ModelDeploymentObject owner;
  owner.md.metadata = {
      {"name", "fraud"}, {"namespace", ns}, {"uid", "6d1f1c8e-0000-4000-8000-000000000001"}};
  owner.uid = "6d1f1c8e-0000-4000-8000-000000000001";
  const json intent = RevisionHpa(owner, "fraud-7c9d", SplitByWeight(2, 20, 10), 8);

  auto applied = c.Apply(kube::resources::kHorizontalPodAutoscalers, ns, intent, kFieldManager);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*applied)["spec"]["minReplicas"], 1);
  EXPECT_EQ((*applied)["spec"]["maxReplicas"], 2);
  EXPECT_EQ((*applied)["spec"]["metrics"][0]["pods"]["metric"]["name"],
            "sluice_server_inflight_requests");
  EXPECT_EQ((*applied)["spec"]["metrics"][0]["pods"]["target"]["averageValue"], "8");
  EXPECT_TRUE(IsSubset(intent, *applied)) << applied->dump(2);

  // Applying the same intent again changes nothing.
  auto again = c.Apply(kube::resources::kHorizontalPodAutoscalers, ns, intent, kFieldManager);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(MetaString(*again, "resourceVersion"), MetaString(*applied, "resourceVersion"));

  // A range the API refuses is refused, not stored.
  json bad = intent;
  bad["spec"]["maxReplicas"] = 0;
  EXPECT_FALSE(c.Apply(kube::resources::kHorizontalPodAutoscalers, ns, bad, kFieldManager).ok());
}

}  // namespace
}  // namespace sluice::controllers
