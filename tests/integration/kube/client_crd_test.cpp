// A custom resource through the client: CRD installed by the test, Established, found by
// discovery; CRUD, the status and scale subresources, schema validation.

#include <set>

#include "tests/integration/kube/client_it_util.h"

namespace sluice::kube::it {
namespace {

Json WidgetCrd() {
  Json replicas = {{"type", "integer"}, {"minimum", 0}, {"maximum", 10}};
  Json spec = {{"type", "object"},
               {"properties",
                {{"replicas", replicas},
                 {"color", {{"type", "string"}, {"enum", {"red", "green", "blue"}}}}}}};
  Json status = {{"type", "object"},
                 {"properties",
                  {{"replicas", {{"type", "integer"}}},
                   {"selector", {{"type", "string"}}},
                   {"phase", {{"type", "string"}}}}}};
  return {{"apiVersion", "apiextensions.k8s.io/v1"},
          {"kind", "CustomResourceDefinition"},
          {"metadata", {{"name", "widgets.it.sluice.dev"}}},
          {"spec",
           {{"group", "it.sluice.dev"},
            {"scope", "Namespaced"},
            {"names",
             {{"plural", "widgets"},
              {"singular", "widget"},
              {"kind", "Widget"},
              {"listKind", "WidgetList"}}},
            {"versions",
             {{{"name", "v1"},
               {"served", true},
               {"storage", true},
               {"schema",
                {{"openAPIV3Schema",
                  {{"type", "object"}, {"properties", {{"spec", spec}, {"status", status}}}}}}},
               {"subresources",
                {{"status", Json::object()},
                 {"scale",
                  {{"specReplicasPath", ".spec.replicas"},
                   {"statusReplicasPath", ".status.replicas"},
                   {"labelSelectorPath", ".status.selector"}}}}}}}}}}};
}

class ClientCrdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto client = AdminClient();
    auto created = client->Create(resources::kCustomResourceDefinitions, "", WidgetCrd());
    ASSERT_TRUE(created.ok() || created.status().code() == StatusCode::kAlreadyExists)
        << created.status();
    bool established = WaitFor([&] {
      auto crd = client->Get(resources::kCustomResourceDefinitions, "", "widgets.it.sluice.dev");
      if (!crd.ok()) return false;
      for (const auto& c : (*crd)["status"].value("conditions", Json::array())) {
        if (c.value("type", "") == "Established" && c.value("status", "") == "True") return true;
      }
      return false;
    });
    ASSERT_TRUE(established) << "CRD widgets.it.sluice.dev never became Established";
  }

  void SetUp() override {
    client_ = AdminClient();
    ns_ = FreshNamespace(*client_, "crd");
    // Discovery can lag Established by a moment; a miss refetches, so poll Resolve itself.
    Result<GroupVersionResource> gvr = NotFound("not resolved yet");
    ASSERT_TRUE(WaitFor([&] {
      gvr = client_->Resolve("it.sluice.dev/v1", "Widget");
      return gvr.ok();
    })) << gvr.status();
    widgets_ = *gvr;
  }

  Json Widget(const std::string& name, int replicas, const std::string& color = "red") {
    return {{"apiVersion", "it.sluice.dev/v1"},
            {"kind", "Widget"},
            {"metadata", {{"name", name}, {"namespace", ns_}}},
            {"spec", {{"replicas", replicas}, {"color", color}}}};
  }

  std::unique_ptr<Client> client_;
  std::string ns_;
  GroupVersionResource widgets_;
};

TEST_F(ClientCrdTest, DiscoveryResolvesTheCustomResource) {
  EXPECT_EQ(widgets_.group, "it.sluice.dev");
  EXPECT_EQ(widgets_.version, "v1");
  EXPECT_EQ(widgets_.resource, "widgets");
  EXPECT_EQ(widgets_.kind, "Widget");
  EXPECT_TRUE(widgets_.namespaced);
  EXPECT_EQ(client_->Resolve("it.sluice.dev/v1", "Gadget").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Resolve("nothing.sluice.dev/v1", "Widget").status().code(),
            StatusCode::kNotFound);
}

TEST_F(ClientCrdTest, Crud) {
  auto created = client_->Create(widgets_, ns_, Widget("w", 1));
  ASSERT_TRUE(created.ok()) << created.status();
  Json edited = *created;
  edited["spec"]["color"] = "green";
  auto updated = client_->Update(widgets_, ns_, edited);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)["spec"]["color"], "green");
  auto patched =
      client_->Patch(widgets_, ns_, "w", PatchType::kMerge, R"({"spec":{"color":"blue"}})");
  ASSERT_TRUE(patched.ok()) << patched.status();
  // Strategic merge is for built-in types only; the server says so.
  auto strategic = client_->Patch(widgets_, ns_, "w", PatchType::kStrategicMerge, R"({"spec":{}})");
  EXPECT_FALSE(strategic.ok());
  auto applied = client_->Apply(widgets_, ns_, Widget("w", 2, "blue"), "it-test");
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*applied)["spec"]["replicas"], 2);
  auto listed = client_->ListAll(widgets_, ns_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ((*listed)["items"].size(), 1u);
  EXPECT_EQ((*listed)["kind"], "WidgetList");
  ASSERT_TRUE(client_->Delete(widgets_, ns_, "w").ok());
  EXPECT_EQ(client_->Get(widgets_, ns_, "w").status().code(), StatusCode::kNotFound);
}

TEST_F(ClientCrdTest, StatusIsWrittenOnlyThroughTheStatusSubresource) {
  Json with_status = Widget("s", 1);
  with_status["status"] = {{"phase", "Ignored"}};
  auto created = client_->Create(widgets_, ns_, with_status);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->contains("status") && (*created)["status"].contains("phase"));

  Json main_write = *created;
  main_write["status"] = {{"phase", "StillIgnored"}};
  auto through_main = client_->Update(widgets_, ns_, main_write);
  ASSERT_TRUE(through_main.ok()) << through_main.status();
  EXPECT_FALSE(through_main->contains("status") && (*through_main)["status"].contains("phase"));

  Json status_write = *through_main;
  status_write["status"] = {{"phase", "Ready"}, {"replicas", 1}, {"selector", "app=s"}};
  status_write["spec"]["color"] = "blue";  // ignored by the status endpoint
  WriteOptions to_status;
  to_status.subresource = "status";
  auto through_status = client_->Update(widgets_, ns_, status_write, to_status);
  ASSERT_TRUE(through_status.ok()) << through_status.status();
  auto now = client_->Get(widgets_, ns_, "s");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ((*now)["status"]["phase"], "Ready");
  EXPECT_EQ((*now)["spec"]["color"], "red");
  auto status_only = client_->Get(widgets_, ns_, "s", "status");
  ASSERT_TRUE(status_only.ok());
  EXPECT_EQ((*status_only)["status"]["phase"], "Ready");

  PatchOptions patch_status;
  patch_status.subresource = "status";
  ASSERT_TRUE(client_
                  ->Patch(widgets_, ns_, "s", PatchType::kMerge,
                          R"({"status":{"phase":"Degraded"}})", patch_status)
                  .ok());
  EXPECT_EQ((*client_->Get(widgets_, ns_, "s"))["status"]["phase"], "Degraded");

  Json status_intent = {{"apiVersion", "it.sluice.dev/v1"},
                        {"kind", "Widget"},
                        {"metadata", {{"name", "s"}, {"namespace", ns_}}},
                        {"status", {{"phase", "Applied"}}}};
  auto applied = client_->Apply(widgets_, ns_, status_intent, "status-writer", true, "status");
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*applied)["status"]["phase"], "Applied");
}

TEST_F(ClientCrdTest, ScaleSubresource) {
  Json w = Widget("sc", 2);
  ASSERT_TRUE(client_->Create(widgets_, ns_, w).ok());
  auto scale = client_->Get(widgets_, ns_, "sc", "scale");
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ((*scale)["kind"], "Scale");
  EXPECT_EQ((*scale)["spec"]["replicas"], 2);
  PatchOptions to_scale;
  to_scale.subresource = "scale";
  auto patched = client_->Patch(widgets_, ns_, "sc", PatchType::kMerge,
                                R"({"spec":{"replicas":5}})", to_scale);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*client_->Get(widgets_, ns_, "sc"))["spec"]["replicas"], 5);
}

TEST_F(ClientCrdTest, SchemaViolationIsInvalidWithTheFieldInCauses) {
  auto r = client_->Create(widgets_, ns_, Widget("bad", 50, "purple"));
  ASSERT_EQ(r.status().code(), StatusCode::kInvalid) << r.status();
  EXPECT_EQ(r.status().http_status(), 422);
  std::set<std::string> fields;
  for (const auto& c : r.status().causes()) fields.insert(c.field);
  EXPECT_TRUE(fields.count("spec.replicas")) << r.status();
  EXPECT_TRUE(fields.count("spec.color")) << r.status();
}

}  // namespace
}  // namespace sluice::kube::it
