#include "lib/kube/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/lib/kube/fake_transport.h"

namespace sluice::kube {
namespace {

using testing::Fail;
using testing::FakeTransport;
using testing::Reply;
using testing::ScriptedResponse;
using testing::StatusObject;
using testing::StreamOf;

// A clock whose waits return at once, moving time to the deadline and remembering how long
// each wait was, so backoff and Retry-After are observable without sleeping.
class InstantClock final : public Clock {
 public:
  Steady::time_point Now() const override { return now_; }
  Wall::time_point WallNow() const override { return Wall::time_point{}; }
  bool WaitUntil(std::condition_variable&, std::unique_lock<std::mutex>&,
                 Steady::time_point deadline) override {
    if (deadline > now_) {
      waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now_));
      now_ = deadline;
    }
    return false;
  }
  std::vector<std::chrono::milliseconds> waits;

 private:
  Steady::time_point now_{};
};

const GroupVersionResource kModels{"sluice.dev", "v1alpha1", "modeldeployments", true,
                                   "ModelDeployment"};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = std::make_unique<FakeTransport>();
    fake_ = fake.get();
    ClientOptions o;
    o.clock = &clock_;
    o.max_read_retries = 3;
    auto c = Client::Create(Config{}, std::move(fake), o);
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  void TearDown() override {
    EXPECT_TRUE(fake_->unexpected().empty()) << ::testing::PrintToString(fake_->unexpected());
    EXPECT_TRUE(fake_->pending().empty()) << ::testing::PrintToString(fake_->pending());
  }

  InstantClock clock_;
  FakeTransport* fake_ = nullptr;
  std::unique_ptr<Client> client_;
};

Json Cm(const std::string& name, const std::string& rv = "1") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "ns"}, {"resourceVersion", rv}}}};
}

TEST_F(ClientTest, GetReturnsTheObjectAndSetsTimeout) {
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps/a", Reply(200, Cm("a")));
  auto r = client_->Get(resources::kConfigMaps, "ns", "a");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["metadata"]["name"], "a");
  EXPECT_EQ(fake_->requests().at(0).timeout, std::chrono::milliseconds(30'000));
}

TEST_F(ClientTest, GetMapsNotFound) {
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps/a",
                Reply(404, StatusObject(404, "NotFound", "configmaps \"a\" not found")));
  auto r = client_->Get(resources::kConfigMaps, "ns", "a");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "configmaps \"a\" not found");
  EXPECT_TRUE(clock_.waits.empty());
}

TEST_F(ClientTest, ReadsRetriedOn503And429HonouringRetryAfter) {
  const std::string path = "/api/v1/namespaces/ns/configmaps/a";
  fake_->Expect("GET", path, Reply(503, StatusObject(503, "ServiceUnavailable", "busy")))
      .Expect("GET", path,
              Reply(429, StatusObject(429, "TooManyRequests", "slow down"), {{"retry-after", "7"}}))
      .Expect("GET", path, Fail(Unavailable("connection refused")))
      .Expect("GET", path, Reply(200, Cm("a")));
  auto r = client_->Get(resources::kConfigMaps, "ns", "a");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(clock_.waits.size(), 3u);
  // Backoff doubles from 200ms with +-50% jitter; Retry-After is a floor.
  EXPECT_GE(clock_.waits[0], std::chrono::milliseconds(100));
  EXPECT_LE(clock_.waits[0], std::chrono::milliseconds(300));
  EXPECT_EQ(clock_.waits[1], std::chrono::milliseconds(7000));
  EXPECT_GE(clock_.waits[2], std::chrono::milliseconds(400));
  EXPECT_LE(clock_.waits[2], std::chrono::milliseconds(1200));
}

TEST_F(ClientTest, ReadRetriesAreBounded) {
  fake_->On(FakeTransport::StartsWith("GET", "/api/v1/namespaces/ns/configmaps"), "always 500",
            Reply(500, StatusObject(500, "InternalError", "etcd down")));
  auto r = client_->List(resources::kConfigMaps, "ns");
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_EQ(fake_->requests().size(), 4u);  // 1 + max_read_retries
}

TEST_F(ClientTest, RetryAfterBeyondTheLimitIsHandedBack) {
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps/a",
                Reply(429, StatusObject(429, "TooManyRequests", "x"), {{"retry-after", "600"}}));
  auto r = client_->Get(resources::kConfigMaps, "ns", "a");
  EXPECT_EQ(r.status().code(), StatusCode::kTooManyRequests);
  EXPECT_EQ(r.status().retry_after(), std::chrono::seconds(600));
  EXPECT_TRUE(clock_.waits.empty());
}

TEST_F(ClientTest, NonRetryableReadErrorsAreNotRetried) {
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps/a",
                Reply(403, StatusObject(403, "Forbidden", "no")));
  EXPECT_EQ(client_->Get(resources::kConfigMaps, "ns", "a").status().code(),
            StatusCode::kForbidden);
  EXPECT_EQ(fake_->requests().size(), 1u);
}

TEST_F(ClientTest, WritesAreNeverRetried) {
  fake_->On(FakeTransport::StartsWith("POST", "/"), "create",
            Reply(503, StatusObject(503, "ServiceUnavailable", "busy"), {{"retry-after", "1"}}));
  fake_->On(FakeTransport::StartsWith("PUT", "/"), "update",
            Reply(429, StatusObject(429, "TooManyRequests", "x"), {{"retry-after", "1"}}));
  fake_->On(FakeTransport::StartsWith("PATCH", "/"), "patch", Fail(Unavailable("reset")));
  fake_->On(FakeTransport::StartsWith("DELETE", "/"), "delete",
            Reply(500, StatusObject(500, "InternalError", "x")));
  EXPECT_EQ(client_->Create(resources::kConfigMaps, "ns", Cm("a")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(client_->Update(resources::kConfigMaps, "ns", Cm("a")).status().code(),
            StatusCode::kTooManyRequests);
  EXPECT_EQ(
      client_->Patch(resources::kConfigMaps, "ns", "a", PatchType::kMerge, "{}").status().code(),
      StatusCode::kUnavailable);
  EXPECT_EQ(client_->Apply(resources::kConfigMaps, "ns", Cm("a"), "mgr").status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(client_->Delete(resources::kConfigMaps, "ns", "a").code(), StatusCode::kInternal);
  EXPECT_EQ(fake_->requests().size(), 5u);
  EXPECT_TRUE(clock_.waits.empty());
}

TEST_F(ClientTest, VerbsSendWhatRequestBuildingSays) {
  Json created = Cm("a", "5");
  fake_->Expect("POST", "/api/v1/namespaces/ns/configmaps?fieldManager=m", Reply(201, created))
      .Expect("PUT", "/api/v1/namespaces/ns/configmaps/a", Reply(200, Cm("a", "6")))
      .Expect("PATCH", "/apis/sluice.dev/v1alpha1/namespaces/ns/modeldeployments/m/status",
              Reply(200, Json{{"kind", "ModelDeployment"}}))
      .Expect("PATCH", "/api/v1/namespaces/ns/configmaps/a?fieldManager=op&force=true",
              Reply(200, Cm("a", "7")))
      .Expect("DELETE", "/api/v1/namespaces/ns/configmaps/a",
              Reply(200, StatusObject(200, "", "")));
  WriteOptions w;
  w.field_manager = "m";
  auto c = client_->Create(resources::kConfigMaps, "ns", Cm("a"), w);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)["metadata"]["resourceVersion"], "5");
  ASSERT_TRUE(client_->Update(resources::kConfigMaps, "ns", Cm("a", "5")).ok());
  PatchOptions p;
  p.subresource = "status";
  ASSERT_TRUE(client_->Patch(kModels, "ns", "m", PatchType::kMerge, R"({"status":{}})", p).ok());
  ASSERT_TRUE(client_->Apply(resources::kConfigMaps, "ns", Cm("a"), "op").ok());
  ASSERT_TRUE(client_->Delete(resources::kConfigMaps, "ns", "a").ok());

  auto seen = fake_->requests();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(Json::parse(seen[1].body)["metadata"]["resourceVersion"], "5");
  EXPECT_EQ(seen[2].body, R"({"status":{}})");
  EXPECT_EQ(Json::parse(seen[3].body), Cm("a"));
}

TEST_F(ClientTest, BadArgumentsNeverReachTheTransport) {
  EXPECT_EQ(client_->Get(resources::kConfigMaps, "", "a").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Patch(kModels, "ns", "m", PatchType::kApply, "{}").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Delete(resources::kConfigMaps, "ns", "").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fake_->requests().empty());
}

TEST_F(ClientTest, UndecodableAnswerIsAnError) {
  ScriptedResponse r;
  r.response = Response{200, {}, "<html>"};
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps/a", r);
  EXPECT_EQ(client_->Get(resources::kConfigMaps, "ns", "a").status().code(), StatusCode::kInternal);
}

Json Page(std::vector<std::string> names, const std::string& rv, const std::string& cont) {
  Json items = Json::array();
  for (const auto& n : names) items.push_back(Cm(n));
  Json md = {{"resourceVersion", rv}};
  if (!cont.empty()) {
    md["continue"] = cont;
    md["remainingItemCount"] = 3;
  }
  return {{"kind", "ConfigMapList"}, {"apiVersion", "v1"}, {"metadata", md}, {"items", items}};
}

TEST_F(ClientTest, ListAllFollowsContinueTokens) {
  const std::string base = "/api/v1/namespaces/ns/configmaps?labelSelector=app%3Dx&limit=2";
  fake_
      ->Expect("GET", base + "&resourceVersion=0&resourceVersionMatch=NotOlderThan",
               Reply(200, Page({"a", "b"}, "100", "tok1")))
      .Expect("GET", base + "&continue=tok1", Reply(200, Page({"c", "d"}, "100", "tok2")))
      .Expect("GET", base + "&continue=tok2", Reply(200, Page({"e"}, "100", "")));
  ListOptions o;
  o.label_selector = "app=x";
  o.limit = 2;
  o.resource_version = "0";
  o.resource_version_match = "NotOlderThan";
  auto r = client_->ListAll(resources::kConfigMaps, "ns", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["kind"], "ConfigMapList");
  EXPECT_EQ((*r)["metadata"]["resourceVersion"], "100");
  EXPECT_FALSE((*r)["metadata"].contains("continue"));
  EXPECT_FALSE((*r)["metadata"].contains("remainingItemCount"));
  std::vector<std::string> names;
  for (const auto& i : (*r)["items"]) names.push_back(i["metadata"]["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

TEST_F(ClientTest, ListAllRestartsWhenTheContinueTokenExpires) {
  const std::string base = "/api/v1/namespaces/ns/configmaps?limit=2";
  fake_->Expect("GET", base, Reply(200, Page({"a", "b"}, "100", "old")))
      .Expect(
          "GET", base + "&continue=old",
          Reply(410, StatusObject(410, "Expired", "The provided continue parameter is too old")))
      .Expect("GET", base, Reply(200, Page({"a", "b"}, "200", "new")))
      .Expect("GET", base + "&continue=new", Reply(200, Page({"c"}, "200", "")));
  ListOptions o;
  o.limit = 2;
  auto r = client_->ListAll(resources::kConfigMaps, "ns", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["items"].size(), 3u);  // no duplicates from the abandoned first pass
  EXPECT_EQ((*r)["metadata"]["resourceVersion"], "200");
}

TEST_F(ClientTest, ListAllFallsBackToOneWholeListAfterRepeatedExpiry) {
  const std::string base = "/api/v1/namespaces/ns/configmaps?limit=1";
  for (int i = 0; i < 4; ++i) {  // max_list_restarts (3) + the first pass
    fake_->Expect("GET", base, Reply(200, Page({"a"}, "1", "t")))
        .Expect("GET", base + "&continue=t", Reply(410, StatusObject(410, "Expired", "too old")));
  }
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps", Reply(200, Page({"a", "b"}, "9", "")));
  ListOptions o;
  o.limit = 1;
  auto r = client_->ListAll(resources::kConfigMaps, "ns", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["items"].size(), 2u);
}

TEST_F(ClientTest, ListAllPassesOtherErrorsThrough) {
  fake_->Expect("GET", "/api/v1/namespaces/ns/configmaps?limit=2",
                Reply(410, StatusObject(410, "Expired", "rv too old")));
  ListOptions o;
  o.limit = 2;
  // A 410 on the first page (no continue token) is the caller's resourceVersion: not restarted.
  EXPECT_EQ(client_->ListAll(resources::kConfigMaps, "ns", o).status().code(), StatusCode::kGone);
}

Json ResourceList() {
  return {
      {"kind", "APIResourceList"},
      {"groupVersion", "sluice.dev/v1alpha1"},
      {"resources",
       {{{"name", "modeldeployments"}, {"namespaced", true}, {"kind", "ModelDeployment"}},
        {{"name", "modeldeployments/status"}, {"namespaced", true}, {"kind", "ModelDeployment"}},
        {{"name", "modeldeployments/scale"}, {"namespaced", true}, {"kind", "Scale"}},
        {{"name", "featureviews"}, {"namespaced", true}, {"kind", "FeatureView"}},
        {{"name", "clusterthings"}, {"namespaced", false}, {"kind", "ClusterThing"}}}}};
}

TEST_F(ClientTest, DiscoveryResolvesSkipsSubresourcesAndCaches) {
  fake_->Expect("GET", "/apis/sluice.dev/v1alpha1", Reply(200, ResourceList()));
  auto md = client_->Resolve("sluice.dev/v1alpha1", "ModelDeployment");
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->group, "sluice.dev");
  EXPECT_EQ(md->version, "v1alpha1");
  EXPECT_EQ(md->resource, "modeldeployments");
  EXPECT_TRUE(md->namespaced);
  EXPECT_EQ(md->kind, "ModelDeployment");
  auto ct = client_->Resolve("sluice.dev/v1alpha1", "ClusterThing");  // from the cache
  ASSERT_TRUE(ct.ok());
  EXPECT_FALSE(ct->namespaced);
  EXPECT_EQ(fake_->requests().size(), 1u);

  // "Scale" only appears as a subresource: not a resource of its own. A miss looks again.
  fake_->Expect("GET", "/apis/sluice.dev/v1alpha1", Reply(200, ResourceList()));
  EXPECT_EQ(client_->Resolve("sluice.dev/v1alpha1", "Scale").status().code(),
            StatusCode::kNotFound);

  client_->InvalidateDiscovery();
  fake_->Expect("GET", "/apis/sluice.dev/v1alpha1", Reply(200, ResourceList()));
  ASSERT_TRUE(client_->Resolve("sluice.dev/v1alpha1", "FeatureView").ok());
  EXPECT_EQ(fake_->requests().size(), 3u);
}

TEST_F(ClientTest, DiscoveryOfCoreAndUnknownGroups) {
  fake_->Expect(
      "GET", "/api/v1",
      Reply(200, Json{{"resources",
                       {{{"name", "configmaps"}, {"namespaced", true}, {"kind", "ConfigMap"}}}}}));
  auto cm = client_->Resolve("v1", "ConfigMap");
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm->group, "");
  EXPECT_EQ(cm->ApiVersion(), "v1");
  fake_->Expect("GET", "/apis/nope.dev/v1", Reply(404, StatusObject(404, "NotFound", "not found")));
  auto r = client_->Resolve("nope.dev/v1", "X");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope.dev/v1"), std::string::npos);
}

TEST_F(ClientTest, GetRawJsonAndText) {
  fake_->Expect("GET", "/version", Reply(200, Json{{"gitVersion", "v1.31.0"}}));
  ScriptedResponse text;
  text.response = Response{200, {}, "ok"};
  fake_->Expect("GET", "/readyz", text);
  EXPECT_EQ((*client_->GetRaw("/version"))["gitVersion"], "v1.31.0");
  EXPECT_EQ(*client_->GetRaw("/readyz"), Json("ok"));
}

// --- watch ---

std::string Event(const std::string& type, const Json& object) {
  return Json{{"type", type}, {"object", object}}.dump() + "\n";
}

const char* kWatchPath =
    "/api/v1/namespaces/ns/configmaps?watch=1&resourceVersion=10&allowWatchBookmarks=true"
    "&timeoutSeconds=60";

WatchOptions From10() {
  WatchOptions o;
  o.resource_version = "10";
  o.timeout = std::chrono::seconds(60);
  return o;
}

TEST_F(ClientTest, WatchDeliversEventsAndBookmarksAtEverySplit) {
  const std::string body =
      Event("ADDED", Cm("a", "11")) + Event("MODIFIED", Cm("a", "12")) +
      Event("BOOKMARK", Json{{"kind", "ConfigMap"}, {"metadata", {{"resourceVersion", "13"}}}}) +
      Event("DELETED", Cm("a", "14"));
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    fake_->Expect("GET", kWatchPath, StreamOf({body.substr(0, cut), body.substr(cut)}));
    std::vector<std::pair<WatchEventType, std::string>> got;
    Status s = client_->Watch(
        resources::kConfigMaps, "ns", From10(),
        [&](WatchEvent&& e) {
          got.emplace_back(e.type, e.object["metadata"]["resourceVersion"]);
          return true;
        },
        nullptr);
    ASSERT_TRUE(s.ok()) << "cut " << cut << ": " << s;
    ASSERT_EQ(got.size(), 4u) << "cut " << cut;
    EXPECT_EQ(got[0], std::make_pair(WatchEventType::kAdded, std::string("11")));
    EXPECT_EQ(got[1], std::make_pair(WatchEventType::kModified, std::string("12")));
    EXPECT_EQ(got[2], std::make_pair(WatchEventType::kBookmark, std::string("13")));
    EXPECT_EQ(got[3], std::make_pair(WatchEventType::kDeleted, std::string("14")));
  }
  // The idle allowance is the server timeout plus the margin.
  EXPECT_EQ(fake_->requests().back().idle_timeout, std::chrono::milliseconds(90'000));
}

TEST_F(ClientTest, WatchErrorEvent410IsGone) {
  fake_->Expect("GET", kWatchPath,
                StreamOf({Event("ADDED", Cm("a", "11")),
                          Event("ERROR", StatusObject(410, "Expired",
                                                      "too old resource version: 10 (50)"))}));
  int events = 0;
  Status s = client_->Watch(
      resources::kConfigMaps, "ns", From10(), [&](WatchEvent&&) { return ++events, true; },
      nullptr);
  EXPECT_EQ(s.code(), StatusCode::kGone);
  EXPECT_EQ(s.reason(), "Expired");
  EXPECT_EQ(events, 1);
}

TEST_F(ClientTest, WatchOtherErrorEventsAreMapped) {
  fake_->Expect("GET", kWatchPath,
                StreamOf({Event("ERROR", StatusObject(500, "InternalError", "etcd gone"))}));
  Status s = client_->Watch(
      resources::kConfigMaps, "ns", From10(), [&](WatchEvent&&) { return true; }, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "etcd gone");
}

TEST_F(ClientTest, WatchHttpStatusIsChecked) {
  ScriptedResponse gone = StreamOf({StatusObject(410, "Gone", "gone").dump()}, 410);
  fake_->Expect("GET", kWatchPath, gone);
  ScriptedResponse forbidden =
      StreamOf({StatusObject(403, "Forbidden", "cannot watch configmaps").dump().substr(0, 30),
                StatusObject(403, "Forbidden", "cannot watch configmaps").dump().substr(30)},
               403);
  fake_->Expect("GET", kWatchPath, forbidden);
  auto sink = [](WatchEvent&&) {
    ADD_FAILURE() << "no event expected";
    return true;
  };
  EXPECT_EQ(client_->Watch(resources::kConfigMaps, "ns", From10(), sink, nullptr).code(),
            StatusCode::kGone);
  Status s = client_->Watch(resources::kConfigMaps, "ns", From10(), sink, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kForbidden);
  EXPECT_EQ(s.message(), "cannot watch configmaps");
}

TEST_F(ClientTest, WatchStopsWhenTheCallbackSaysSo) {
  fake_->Expect("GET", kWatchPath,
                StreamOf({Event("ADDED", Cm("a", "11")) + Event("ADDED", Cm("b", "12"))}));
  int events = 0;
  Status s = client_->Watch(
      resources::kConfigMaps, "ns", From10(), [&](WatchEvent&&) { return ++events, false; },
      nullptr);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(events, 1);
}

TEST_F(ClientTest, WatchCancelledFromAnotherThread) {
  ScriptedResponse hang = StreamOf({Event("ADDED", Cm("a", "11"))});
  hang.hang_until_cancelled = true;
  fake_->Expect("GET", kWatchPath, hang);
  CancelFlag cancel{false};
  std::atomic<int> events{0};
  std::thread canceller([&] {
    while (events.load() == 0) std::this_thread::yield();
    cancel.store(true);
  });
  Status s = client_->Watch(
      resources::kConfigMaps, "ns", From10(), [&](WatchEvent&&) { return ++events, true; },
      &cancel);
  canceller.join();
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_EQ(events.load(), 1);
}

TEST_F(ClientTest, WatchBrokenConnectionAndTruncatedEvent) {
  ScriptedResponse broken = StreamOf({Event("ADDED", Cm("a", "11"))});
  broken.stream_error = Unavailable("connection reset by peer");
  fake_->Expect("GET", kWatchPath, broken);
  fake_->Expect("GET", kWatchPath, StreamOf({Event("ADDED", Cm("a", "11")).substr(0, 25)}));
  auto sink = [](WatchEvent&&) { return true; };
  EXPECT_EQ(client_->Watch(resources::kConfigMaps, "ns", From10(), sink, nullptr).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(client_->Watch(resources::kConfigMaps, "ns", From10(), sink, nullptr).code(),
            StatusCode::kInternal);
}

TEST_F(ClientTest, ConcurrentCallsAreSafe) {
  fake_->On(FakeTransport::StartsWith("GET", "/api/v1/namespaces/ns/configmaps/"), "get",
            Reply(200, Cm("x")));
  fake_->On(FakeTransport::Is("GET", "/apis/sluice.dev/v1alpha1"), "discovery",
            Reply(200, ResourceList()));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (client_->Get(resources::kConfigMaps, "ns", "c" + std::to_string(t)).ok()) ++ok;
        if (i % 50 == 0) client_->InvalidateDiscovery();
        if (client_->Resolve("sluice.dev/v1alpha1", "FeatureView").ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4 * 200 * 2);
}

}  // namespace
}  // namespace sluice::kube
