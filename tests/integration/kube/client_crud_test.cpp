// The client against a real kube-apiserver: ConfigMap CRUD, optimistic concurrency, server-side
// apply, paging, delete propagation, watch.

#include <algorithm>
#include <set>

#include "tests/integration/kube/client_it_util.h"

namespace sluice::kube::it {
namespace {

using resources::kConfigMaps;

TEST(ClientCrudTest, ConfigMapLifecycle) {
  auto client = AdminClient();
  const std::string ns = FreshNamespace(*client, "crud");

  auto created = client->Create(kConfigMaps, ns, ConfigMap("c", {{"a", "1"}}, {{"app", "x"}}));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["metadata"]["namespace"], ns);
  EXPECT_FALSE((*created)["metadata"]["uid"].get<std::string>().empty());

  auto again = client->Create(kConfigMaps, ns, ConfigMap("c"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status();
  EXPECT_EQ(again.status().http_status(), 409);

  auto got = client->Get(kConfigMaps, ns, "c");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["data"]["a"], "1");

  Json edited = *got;
  edited["data"]["b"] = "2";
  auto updated = client->Update(kConfigMaps, ns, edited);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_NE((*updated)["metadata"]["resourceVersion"], (*got)["metadata"]["resourceVersion"]);

  auto merged =
      client->Patch(kConfigMaps, ns, "c", PatchType::kMerge, R"({"data":{"a":null,"m":"3"}})");
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ((*merged)["data"], (Json{{"b", "2"}, {"m", "3"}}));

  auto json_patched = client->Patch(kConfigMaps, ns, "c", PatchType::kJsonPatch,
                                    R"([{"op":"replace","path":"/data/b","value":"20"}])");
  ASSERT_TRUE(json_patched.ok()) << json_patched.status();
  EXPECT_EQ((*json_patched)["data"]["b"], "20");

  auto strategic = client->Patch(kConfigMaps, ns, "c", PatchType::kStrategicMerge,
                                 R"({"metadata":{"labels":{"tier":"db"}}})");
  ASSERT_TRUE(strategic.ok()) << strategic.status();
  EXPECT_EQ((*strategic)["metadata"]["labels"], (Json{{"app", "x"}, {"tier", "db"}}));

  ASSERT_TRUE(client->Create(kConfigMaps, ns, ConfigMap("other")).ok());
  ListOptions selected;
  selected.label_selector = "app=x,tier in (db)";
  auto list = client->List(kConfigMaps, ns, selected);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ((*list)["items"].size(), 1u);
  EXPECT_EQ((*list)["items"][0]["metadata"]["name"], "c");
  ListOptions by_field;
  by_field.field_selector = "metadata.name=other";
  EXPECT_EQ((*client->List(kConfigMaps, ns, by_field))["items"].size(), 1u);

  WriteOptions dry;
  dry.dry_run = true;
  ASSERT_TRUE(client->Create(kConfigMaps, ns, ConfigMap("dry"), dry).ok());
  EXPECT_EQ(client->Get(kConfigMaps, ns, "dry").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(client->Delete(kConfigMaps, ns, "c").ok());
  auto gone = client->Get(kConfigMaps, ns, "c");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().reason(), "NotFound");
  EXPECT_EQ(client->Delete(kConfigMaps, ns, "c").code(), StatusCode::kNotFound);
}

TEST(ClientCrudTest, StaleResourceVersionIsAConflict) {
  auto client = AdminClient();
  const std::string ns = FreshNamespace(*client, "conflict");
  auto v1 = client->Create(kConfigMaps, ns, ConfigMap("c", {{"n", "1"}}));
  ASSERT_TRUE(v1.ok()) << v1.status();
  Json first = *v1;
  first["data"]["n"] = "2";
  ASSERT_TRUE(client->Update(kConfigMaps, ns, first).ok());
  Json stale = *v1;  // still carries the first resourceVersion
  stale["data"]["n"] = "3";
  auto r = client->Update(kConfigMaps, ns, stale);
  EXPECT_EQ(r.status().code(), StatusCode::kConflict) << r.status();
  EXPECT_EQ(r.status().reason(), "Conflict");
  EXPECT_EQ((*client->Get(kConfigMaps, ns, "c"))["data"]["n"], "2");
}

TEST(ClientCrudTest, ServerSideApplyConflictsBetweenManagersUntilForced) {
  auto client = AdminClient();
  const std::string ns = FreshNamespace(*client, "ssa");
  Json intent = ConfigMap("c", {{"owner", "alpha"}});
  intent["metadata"]["namespace"] = ns;
  auto a = client->Apply(kConfigMaps, ns, intent, "alpha", /*force=*/false);
  ASSERT_TRUE(a.ok()) << a.status();
  // Applying the same intent again is a no-op.
  ASSERT_TRUE(client->Apply(kConfigMaps, ns, intent, "alpha", false).ok());

  Json other = intent;
  other["data"]["owner"] = "beta";
  auto conflict = client->Apply(kConfigMaps, ns, other, "beta", /*force=*/false);
  EXPECT_EQ(conflict.status().code(), StatusCode::kConflict) << conflict.status();
  EXPECT_NE(conflict.status().message().find("alpha"), std::string::npos) << conflict.status();

  auto forced = client->Apply(kConfigMaps, ns, other, "beta", /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)["data"]["owner"], "beta");
  std::set<std::string> managers;
  for (const auto& m : (*forced)["metadata"]["managedFields"]) {
    if (m.value("operation", "") == "Apply" && m.contains("fieldsV1") &&
        m["fieldsV1"].dump().find("f:owner") != std::string::npos) {
      managers.insert(m["manager"]);
    }
  }
  EXPECT_EQ(managers, std::set<std::string>{"beta"});
}

TEST(ClientCrudTest, ListAllPagesThrough500ConfigMaps) {
  CountingTransport* counter = nullptr;
  auto client = AdminClient(&counter);
  const std::string ns = FreshNamespace(*client, "paging");
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = w; i < 500; i += 2) {
        if (!client
                 ->Create(kConfigMaps, ns,
                          ConfigMap("cm-" + std::to_string(i), {{"i", std::to_string(i)}}))
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(failures.load(), 0);

  counter->Clear();
  ListOptions o;
  o.limit = 50;
  const auto start = std::chrono::steady_clock::now();
  auto all = client->ListAll(kConfigMaps, ns, o);
  const auto paged_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(all.ok()) << all.status();
  std::set<std::string> names;
  for (const auto& item : (*all)["items"]) names.insert(item["metadata"]["name"]);
  EXPECT_EQ((*all)["items"].size(), 500u);
  EXPECT_EQ(names.size(), 500u);  // no duplicates
  EXPECT_TRUE(names.count("cm-0") && names.count("cm-499"));
  EXPECT_EQ(counter->paths().size(), 10u);
  EXPECT_FALSE((*all)["metadata"]["resourceVersion"].get<std::string>().empty());
  EXPECT_EQ((*all)["kind"], "ConfigMapList");

  // Timing for the record: paged (limit 50) and one request, best of five each.
  auto best_of = [&](int64_t limit) {
    double best = 1e18;
    for (int i = 0; i < 5; ++i) {
      ListOptions l;
      l.limit = limit;
      const auto t0 = std::chrono::steady_clock::now();
      auto r = client->ListAll(kConfigMaps, ns, l);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_TRUE(r.ok() && (*r)["items"].size() == 500u);
      best = std::min(best, ms);
    }
    return best;
  };
  std::printf(
      "[ measure  ] ListAll 500 ConfigMaps: first %.1f ms; best of 5: limit=50 %.1f ms, "
      "limit=500 %.1f ms, unpaged %.1f ms\n",
      paged_ms.count(), best_of(50), best_of(500), best_of(0));
}

TEST(ClientCrudTest, DeletePropagationPolicyReachesTheServer) {
  auto client = AdminClient();
  const std::string ns = FreshNamespace(*client, "delete");
  for (const char* n : {"fg", "orphan", "bg", "pre"}) {
    ASSERT_TRUE(client->Create(kConfigMaps, ns, ConfigMap(n)).ok());
  }
  // No garbage collector runs here, so the finalizers that foreground and orphan deletion add
  // stay visible on the object, which shows which policy the server received.
  DeleteOptions fg;
  fg.propagation = PropagationPolicy::kForeground;
  ASSERT_TRUE(client->Delete(kConfigMaps, ns, "fg", fg).ok());
  auto fg_obj = client->Get(kConfigMaps, ns, "fg");
  ASSERT_TRUE(fg_obj.ok()) << fg_obj.status();
  EXPECT_TRUE((*fg_obj)["metadata"].contains("deletionTimestamp"));
  EXPECT_EQ((*fg_obj)["metadata"]["finalizers"], Json::array({"foregroundDeletion"}));

  DeleteOptions orphan;
  orphan.propagation = PropagationPolicy::kOrphan;
  ASSERT_TRUE(client->Delete(kConfigMaps, ns, "orphan", orphan).ok());
  auto orphan_obj = client->Get(kConfigMaps, ns, "orphan");
  ASSERT_TRUE(orphan_obj.ok()) << orphan_obj.status();
  EXPECT_EQ((*orphan_obj)["metadata"]["finalizers"], Json::array({"orphan"}));

  DeleteOptions bg;
  bg.propagation = PropagationPolicy::kBackground;
  ASSERT_TRUE(client->Delete(kConfigMaps, ns, "bg", bg).ok());
  EXPECT_EQ(client->Get(kConfigMaps, ns, "bg").status().code(), StatusCode::kNotFound);

  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "00000000-0000-0000-0000-000000000000";
  EXPECT_EQ(client->Delete(kConfigMaps, ns, "pre", wrong_uid).code(), StatusCode::kConflict);
  DeleteOptions right_uid;
  right_uid.precondition_uid = (*client->Get(kConfigMaps, ns, "pre"))["metadata"]["uid"];
  EXPECT_TRUE(client->Delete(kConfigMaps, ns, "pre", right_uid).ok());

  // Let the stuck objects go so the namespace can be cleaned up.
  for (const char* n : {"fg", "orphan"}) {
    EXPECT_TRUE(
        client->Patch(kConfigMaps, ns, n, PatchType::kMerge, R"({"metadata":{"finalizers":null}})")
            .ok());
  }
}

TEST(ClientCrudTest, WatchSeesChangesAndReportsExpiredVersions) {
  auto client = AdminClient();
  const std::string ns = FreshNamespace(*client, "watch");
  auto list = client->List(kConfigMaps, ns);
  ASSERT_TRUE(list.ok());
  WatchOptions w;
  w.resource_version = (*list)["metadata"]["resourceVersion"];
  w.timeout = std::chrono::seconds(60);
  ASSERT_TRUE(client->Create(kConfigMaps, ns, ConfigMap("w", {{"v", "1"}})).ok());
  ASSERT_TRUE(client->Patch(kConfigMaps, ns, "w", PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
  ASSERT_TRUE(client->Delete(kConfigMaps, ns, "w").ok());
  std::vector<WatchEventType> types;
  Status s = client->Watch(
      kConfigMaps, ns, w,
      [&](WatchEvent&& e) {
        if (e.type != WatchEventType::kBookmark) types.push_back(e.type);
        return types.size() < 3;
      },
      nullptr);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(types, (std::vector<WatchEventType>{WatchEventType::kAdded, WatchEventType::kModified,
                                                WatchEventType::kDeleted}));

  // A version from before the server's history: the server answers with a 410 ERROR event.
  WatchOptions old;
  old.resource_version = "1";
  old.timeout = std::chrono::seconds(10);
  Status expired = client->Watch(
      kConfigMaps, ns, old, [](WatchEvent&&) { return true; }, nullptr);
  EXPECT_EQ(expired.code(), StatusCode::kGone) << expired;

  // Cancel from another thread ends an idle watch promptly.
  CancelFlag cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  WatchOptions idle;
  idle.timeout = std::chrono::seconds(60);
  Status cancelled = client->Watch(
      kConfigMaps, ns, idle, [](WatchEvent&&) { return true; }, &cancel);
  canceller.join();
  EXPECT_EQ(cancelled.code(), StatusCode::kCancelled) << cancelled;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(ClientCrudTest, RawPathsAndBuiltinDiscovery) {
  auto client = AdminClient();
  auto version = client->GetRaw("/version");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->value("major", ""), "1");
  auto ready = client->GetRaw("/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, Json("ok"));
  auto deployments = client->Resolve("apps/v1", "Deployment");
  ASSERT_TRUE(deployments.ok()) << deployments.status();
  EXPECT_EQ(*deployments, resources::kDeployments);
  EXPECT_TRUE(deployments->namespaced);
  auto namespaces = client->Resolve("v1", "Namespace");
  ASSERT_TRUE(namespaces.ok());
  EXPECT_FALSE(namespaces->namespaced);
  EXPECT_EQ(client->Resolve("v1", "NoSuchKind").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice::kube::it
