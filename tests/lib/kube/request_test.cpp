#include "lib/kube/request.h"

#include <gtest/gtest.h>

namespace sluice::kube {
namespace {

using resources::kConfigMaps;
using resources::kDeployments;
using resources::kNamespaces;

const GroupVersionResource kModels{"sluice.dev", "v1alpha1", "modeldeployments", true,
                                   "ModelDeployment"};

std::string HeaderOf(const Request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<none>";
}

TEST(QueryEscapeTest, EscapesEverythingButUnreserved) {
  EXPECT_EQ(QueryEscape("app=web,tier!=db"), "app%3Dweb%2Ctier%21%3Ddb");
  EXPECT_EQ(QueryEscape("env in (prod, qa)"), "env%20in%20%28prod%2C%20qa%29");
  EXPECT_EQ(QueryEscape("metadata.name=a&b"), "metadata.name%3Da%26b");
  EXPECT_EQ(QueryEscape("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(QueryEscape("k/v+x"), "k%2Fv%2Bx");
  EXPECT_EQ(QueryEscape("\xc3\xa9"), "%C3%A9");
}

TEST(ResourcePathTest, CoreAndGroupsNamespacedAndClusterScoped) {
  EXPECT_EQ(*ResourcePath(kConfigMaps, "ns"), "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(*ResourcePath(kConfigMaps, ""), "/api/v1/configmaps");  // all namespaces
  EXPECT_EQ(*ResourcePath(kConfigMaps, "ns", "cm"), "/api/v1/namespaces/ns/configmaps/cm");
  EXPECT_EQ(*ResourcePath(kDeployments, "ns", "d", "scale"),
            "/apis/apps/v1/namespaces/ns/deployments/d/scale");
  EXPECT_EQ(*ResourcePath(kModels, "team-a", "fraud", "status"),
            "/apis/sluice.dev/v1alpha1/namespaces/team-a/modeldeployments/fraud/status");
  EXPECT_EQ(*ResourcePath(kNamespaces, "ignored", "kube-system"), "/api/v1/namespaces/kube-system");
  EXPECT_EQ(*ResourcePath(resources::kCustomResourceDefinitions, "", "x.sluice.dev"),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.sluice.dev");
  // A name cannot smuggle in another path.
  EXPECT_EQ(*ResourcePath(kConfigMaps, "ns", "a/../b"),
            "/api/v1/namespaces/ns/configmaps/a%2F..%2Fb");
}

TEST(ResourcePathTest, Errors) {
  EXPECT_EQ(ResourcePath(kConfigMaps, "", "cm").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResourcePath(kConfigMaps, "ns", "", "status").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ResourcePath(GroupVersionResource{"g", "", "x"}, "ns").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(BuildGetTest, PathAndAccept) {
  auto r = BuildGet(kDeployments, "ns", "web");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/apis/apps/v1/namespaces/ns/deployments/web");
  EXPECT_EQ(HeaderOf(*r, "Accept"), "application/json");
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(BuildGet(kDeployments, "ns", "web", "status")->path,
            "/apis/apps/v1/namespaces/ns/deployments/web/status");
  EXPECT_FALSE(BuildGet(kDeployments, "ns", "").ok());
}

TEST(BuildListTest, AllOptionsEscaped) {
  ListOptions o;
  o.label_selector = "app=web,tier in (a,b)";
  o.field_selector = "metadata.name!=x";
  o.limit = 50;
  o.continue_token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ==";
  o.resource_version = "0";
  o.resource_version_match = "NotOlderThan";
  auto r = BuildList(kConfigMaps, "ns", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path,
            "/api/v1/namespaces/ns/configmaps?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29"
            "&fieldSelector=metadata.name%21%3Dx&limit=50"
            "&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ%3D%3D&resourceVersion=0"
            "&resourceVersionMatch=NotOlderThan");
  EXPECT_EQ(BuildList(kConfigMaps, "", {})->path, "/api/v1/configmaps");
}

TEST(BuildWatchTest, Query) {
  WatchOptions o;
  o.resource_version = "123";
  o.label_selector = "a=b";
  o.timeout = std::chrono::seconds(290);
  auto r = BuildWatch(kModels, "ns", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path,
            "/apis/sluice.dev/v1alpha1/namespaces/ns/modeldeployments?watch=1&labelSelector=a%3Db"
            "&resourceVersion=123&allowWatchBookmarks=true&timeoutSeconds=290");

  WatchOptions plain;
  plain.allow_bookmarks = false;
  EXPECT_EQ(BuildWatch(kConfigMaps, "", plain)->path, "/api/v1/configmaps?watch=1");

  WatchOptions initial;
  initial.send_initial_events = true;
  initial.allow_bookmarks = false;  // required by the server for initial events; forced on
  EXPECT_EQ(BuildWatch(kConfigMaps, "ns", initial)->path,
            "/api/v1/namespaces/ns/configmaps?watch=1&allowWatchBookmarks=true"
            "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan");
}

TEST(BuildCreateTest, BodyHeadersNamespaceFromObject) {
  Json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "c"}, {"namespace", "from-object"}}},
             {"data", {{"k", "v"}}}};
  auto r = BuildCreate(kConfigMaps, "", cm, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/api/v1/namespaces/from-object/configmaps");
  EXPECT_EQ(HeaderOf(*r, "Content-Type"), "application/json");
  EXPECT_EQ(Json::parse(r->body), cm);

  WriteOptions w;
  w.field_manager = "sluice";
  w.dry_run = true;
  EXPECT_EQ(BuildCreate(kConfigMaps, "explicit", cm, w)->path,
            "/api/v1/namespaces/explicit/configmaps?fieldManager=sluice&dryRun=All");

  Json no_ns = {{"metadata", {{"name", "c"}}}};
  EXPECT_EQ(BuildCreate(kConfigMaps, "", no_ns, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildCreate(kNamespaces, "", Json{{"metadata", {{"name", "n"}}}}, {})->path,
            "/api/v1/namespaces");
  EXPECT_FALSE(BuildCreate(kConfigMaps, "ns", Json::array(), {}).ok());
}

TEST(BuildCreateTest, SubresourceOfNamedObject) {
  Json token_request = {{"apiVersion", "authentication.k8s.io/v1"},
                        {"kind", "TokenRequest"},
                        {"metadata", {{"name", "robot"}}},
                        {"spec", {{"expirationSeconds", 600}}}};
  WriteOptions w;
  w.subresource = "token";
  auto r = BuildCreate(resources::kServiceAccounts, "ns", token_request, w);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path, "/api/v1/namespaces/ns/serviceaccounts/robot/token");
  Json unnamed = {{"spec", Json::object()}};
  EXPECT_FALSE(BuildCreate(resources::kServiceAccounts, "ns", unnamed, w).ok());
}

TEST(BuildUpdateTest, PutToNameAndSubresource) {
  Json obj = {{"apiVersion", "sluice.dev/v1alpha1"},
              {"kind", "ModelDeployment"},
              {"metadata", {{"name", "m"}, {"namespace", "ns"}, {"resourceVersion", "42"}}},
              {"status", {{"phase", "Healthy"}}}};
  WriteOptions w;
  w.subresource = "status";
  w.field_manager = "sluice-operator";
  auto r = BuildUpdate(kModels, "", obj, w);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "PUT");
  EXPECT_EQ(r->path,
            "/apis/sluice.dev/v1alpha1/namespaces/ns/modeldeployments/m/status?fieldManager="
            "sluice-operator");
  EXPECT_EQ(HeaderOf(*r, "Content-Type"), "application/json");
  EXPECT_EQ(Json::parse(r->body)["metadata"]["resourceVersion"], "42");
  EXPECT_FALSE(BuildUpdate(kModels, "ns", Json{{"metadata", Json::object()}}, {}).ok());
}

TEST(BuildPatchTest, ContentTypePerPatchType) {
  struct {
    PatchType type;
    const char* content_type;
  } cases[] = {{PatchType::kMerge, "application/merge-patch+json"},
               {PatchType::kJsonPatch, "application/json-patch+json"},
               {PatchType::kStrategicMerge, "application/strategic-merge-patch+json"},
               {PatchType::kApply, "application/apply-patch+yaml"}};
  for (const auto& c : cases) {
    PatchOptions o;
    o.field_manager = "mgr";
    auto r = BuildPatch(kDeployments, "ns", "web", c.type, "{\"x\":1}", o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->method, "PATCH");
    EXPECT_EQ(r->path, "/apis/apps/v1/namespaces/ns/deployments/web?fieldManager=mgr");
    EXPECT_EQ(HeaderOf(*r, "Content-Type"), c.content_type);
    EXPECT_EQ(r->body, "{\"x\":1}");
  }
}

TEST(BuildPatchTest, SubresourceForceAndValidation) {
  PatchOptions o;
  o.field_manager = "mgr";
  o.force = true;
  o.subresource = "status";
  auto r = BuildPatch(kModels, "ns", "m", PatchType::kApply, "{}", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path,
            "/apis/sluice.dev/v1alpha1/namespaces/ns/modeldeployments/m/status?fieldManager=mgr"
            "&force=true");
  EXPECT_EQ(BuildPatch(kModels, "ns", "m", PatchType::kApply, "{}", {}).status().code(),
            StatusCode::kInvalidArgument);  // apply without a field manager
  EXPECT_EQ(BuildPatch(kModels, "ns", "m", PatchType::kMerge, "{}", o).status().code(),
            StatusCode::kInvalidArgument);  // force on a merge patch
  EXPECT_EQ(BuildPatch(kModels, "ns", "", PatchType::kMerge, "{}", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildPatch(kModels, "ns", "m", PatchType::kMerge, "{}", {})->path,
            "/apis/sluice.dev/v1alpha1/namespaces/ns/modeldeployments/m");
}

TEST(BuildApplyTest, SerializesIntentAsApplyPatch) {
  Json intent = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "c"}, {"namespace", "ns"}}},
                 {"data", {{"a", "1"}}}};
  auto r = BuildApply(kConfigMaps, "", intent, "sluice", true, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "PATCH");
  EXPECT_EQ(r->path, "/api/v1/namespaces/ns/configmaps/c?fieldManager=sluice&force=true");
  EXPECT_EQ(HeaderOf(*r, "Content-Type"), "application/apply-patch+yaml");
  EXPECT_EQ(Json::parse(r->body), intent);
  EXPECT_EQ(BuildApply(kConfigMaps, "ns", intent, "sluice", false, "")->path,
            "/api/v1/namespaces/ns/configmaps/c?fieldManager=sluice");
  Json no_kind = intent;
  no_kind.erase("kind");
  EXPECT_FALSE(BuildApply(kConfigMaps, "ns", no_kind, "sluice", true, "").ok());
  EXPECT_FALSE(BuildApply(kConfigMaps, "ns", intent, "", true, "").ok());
}

TEST(BuildDeleteTest, BodyOnlyWhenOptionsSet) {
  auto plain = BuildDelete(kConfigMaps, "ns", "c", {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->method, "DELETE");
  EXPECT_EQ(plain->path, "/api/v1/namespaces/ns/configmaps/c");
  EXPECT_TRUE(plain->body.empty());
  EXPECT_EQ(HeaderOf(*plain, "Content-Type"), "<none>");

  DeleteOptions o;
  o.propagation = PropagationPolicy::kForeground;
  o.precondition_uid = "uid-1";
  o.precondition_resource_version = "77";
  o.grace_period_seconds = 0;
  auto r = BuildDelete(kDeployments, "ns", "web", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(HeaderOf(*r, "Content-Type"), "application/json");
  Json body = Json::parse(r->body);
  EXPECT_EQ(body["kind"], "DeleteOptions");
  EXPECT_EQ(body["apiVersion"], "v1");
  EXPECT_EQ(body["propagationPolicy"], "Foreground");
  EXPECT_EQ(body["gracePeriodSeconds"], 0);
  EXPECT_EQ(body["preconditions"]["uid"], "uid-1");
  EXPECT_EQ(body["preconditions"]["resourceVersion"], "77");

  for (auto [policy, name] : {std::pair{PropagationPolicy::kBackground, "Background"},
                              std::pair{PropagationPolicy::kOrphan, "Orphan"}}) {
    DeleteOptions p;
    p.propagation = policy;
    EXPECT_EQ(Json::parse(BuildDelete(kDeployments, "ns", "web", p)->body)["propagationPolicy"],
              name);
  }
}

TEST(BuildDiscoveryTest, CoreAndGroups) {
  EXPECT_EQ(BuildDiscovery("v1").path, "/api/v1");
  EXPECT_EQ(BuildDiscovery("apps/v1").path, "/apis/apps/v1");
  EXPECT_EQ(BuildDiscovery("sluice.dev/v1alpha1").path, "/apis/sluice.dev/v1alpha1");
}

// --- watch stream decoding ---

std::string Line(const std::string& type, const Json& object) {
  return Json{{"type", type}, {"object", object}}.dump() + "\n";
}

Json Cm(const std::string& name, const std::string& rv) {
  return {{"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"resourceVersion", rv}}},
          {"data", {{"text", "h\u00e9llo \u2603 {not json}\\n"}}}};
}

TEST(ParseWatchEventTest, AllTypes) {
  EXPECT_EQ(ParseWatchEvent(R"({"type":"ADDED","object":{}})")->type, WatchEventType::kAdded);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"MODIFIED","object":{}})")->type, WatchEventType::kModified);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"DELETED","object":{}})")->type, WatchEventType::kDeleted);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"BOOKMARK","object":{}})")->type, WatchEventType::kBookmark);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"ERROR","object":{}})")->type, WatchEventType::kError);
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"RENAMED","object":{}})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"object":{}})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"ADDED"})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"ADDED",)").ok());
}

TEST(WatchDecoderTest, EverySplitPointGivesTheSameEvents) {
  const std::string stream =
      Line("ADDED", Cm("a", "1")) + Line("MODIFIED", Cm("a", "2")) +
      Line("BOOKMARK", {{"kind", "ConfigMap"}, {"metadata", {{"resourceVersion", "3"}}}}) +
      Line("DELETED", Cm("a", "4"));
  for (size_t cut1 = 0; cut1 <= stream.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= stream.size(); cut2 += 7) {
      WatchDecoder d;
      std::vector<WatchEvent> got;
      auto sink = [&](WatchEvent&& e) {
        got.push_back(std::move(e));
        return true;
      };
      ASSERT_TRUE(d.Feed(std::string_view(stream).substr(0, cut1), sink).ok());
      ASSERT_TRUE(d.Feed(std::string_view(stream).substr(cut1, cut2 - cut1), sink).ok());
      ASSERT_TRUE(d.Feed(std::string_view(stream).substr(cut2), sink).ok());
      ASSERT_TRUE(d.Finish(sink).ok());
      ASSERT_EQ(got.size(), 4u) << "cuts " << cut1 << "," << cut2;
      EXPECT_EQ(got[0].type, WatchEventType::kAdded);
      EXPECT_EQ(got[0].object, Cm("a", "1"));
      EXPECT_EQ(got[1].object["metadata"]["resourceVersion"], "2");
      EXPECT_EQ(got[2].type, WatchEventType::kBookmark);
      EXPECT_EQ(got[3].type, WatchEventType::kDeleted);
      EXPECT_EQ(d.buffered(), 0u);
    }
  }
}

TEST(WatchDecoderTest, ByteAtATime) {
  const std::string stream = Line("ADDED", Cm("a", "1")) + "\n" + Line("ADDED", Cm("b", "2"));
  WatchDecoder d;
  std::vector<std::string> names;
  auto sink = [&](WatchEvent&& e) {
    names.push_back(e.object["metadata"]["name"]);
    return true;
  };
  for (char c : stream) ASSERT_TRUE(d.Feed(std::string_view(&c, 1), sink).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
}

TEST(WatchDecoderTest, LastEventWithoutNewlineAndTruncation) {
  WatchDecoder d;
  int n = 0;
  auto sink = [&](WatchEvent&&) { return ++n, true; };
  std::string last = Line("ADDED", Cm("a", "1"));
  last.pop_back();
  ASSERT_TRUE(d.Feed(last, sink).ok());
  EXPECT_EQ(n, 0);
  ASSERT_TRUE(d.Finish(sink).ok());
  EXPECT_EQ(n, 1);

  WatchDecoder cut;
  ASSERT_TRUE(cut.Feed(Line("ADDED", Cm("a", "1")).substr(0, 20), sink).ok());
  EXPECT_FALSE(cut.Finish(sink).ok());
}

TEST(WatchDecoderTest, StopsWhenSinkSaysSo) {
  const std::string stream = Line("ADDED", Cm("a", "1")) + Line("ADDED", Cm("b", "2"));
  WatchDecoder d;
  int n = 0;
  ASSERT_TRUE(d.Feed(stream, [&](WatchEvent&&) { return ++n, false; }).ok());
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(d.stopped());
  ASSERT_TRUE(d.Feed(stream, [&](WatchEvent&&) { return ++n, true; }).ok());
  EXPECT_EQ(n, 1);
}

TEST(WatchDecoderTest, GarbageLineIsAnError) {
  WatchDecoder d;
  auto sink = [](WatchEvent&&) { return true; };
  Status s = d.Feed("<html>502 Bad Gateway</html>\n", sink);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace sluice::kube
