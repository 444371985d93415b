// The generic controller: which keys events enqueue (primary, owned through the controller
// ownerReference, mapped watches), and the one rule for what follows a reconcile — requeue
// after, backoff on error, no retry on a terminal error — on a fake clock.

#include "lib/controller/controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/lib/base/fake_clock.h"
#include "tests/lib/controller/fake_source.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const kube::GroupVersionResource kMds{"sluice.dev", "v1alpha1", "modeldeployments", true,
                                      "ModelDeployment"};
const kube::GroupVersionResource kDeps{"apps", "v1", "deployments", true, "Deployment"};
const kube::GroupVersionResource kConfigMaps{"", "v1", "configmaps", true, "ConfigMap"};

// Waits (in real time, as a guard against a hung test) until `pred` holds.
bool Eventually(const std::function<bool()>& pred, milliseconds timeout = seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return pred();
}

class ScriptedReconciler final : public Reconciler {
 public:
  std::function<Result<Action>(const ObjectKey&, int call)> behaviour = [](const ObjectKey&, int) {
    return Result<Action>(Action::WaitForChange());
  };

  Result<Action> Reconcile(const ObjectKey& key) override {
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++calls_[key.String()];
      order_.push_back(key.String());
      const int now_running = ++running_[key.String()];
      max_running_same_key_ = std::max(max_running_same_key_, now_running);
      ++total_running_;
      max_total_running_ = std::max(max_total_running_, total_running_);
    }
    cv_.notify_all();
    struct Done {
      ScriptedReconciler* self;
      std::string key;
      ~Done() {
        {
          std::lock_guard<std::mutex> lock(self->mu_);
          --self->running_[key];
          --self->total_running_;
          ++self->finished_;
        }
        self->cv_.notify_all();
      }
    } done{this, key.String()};
    return behaviour(key, n);
  }

  int Calls(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[key];
  }
  std::vector<std::string> Order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }
  int Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  int MaxRunningSameKey() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_running_same_key_;
  }
  int MaxTotalRunning() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_total_running_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> calls_;    // guarded by mu_
  std::map<std::string, int> running_;  // guarded by mu_
  std::vector<std::string> order_;      // guarded by mu_
  int total_running_ = 0;               // guarded by mu_
  int max_total_running_ = 0;           // guarded by mu_
  int max_running_same_key_ = 0;        // guarded by mu_
  int finished_ = 0;                    // guarded by mu_
};

class RecordingMetrics final : public ControllerMetrics {
 public:
  void ObserveReconcile(std::string_view controller, ReconcileResult result,
                        std::chrono::nanoseconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    results_.emplace_back(std::string(controller), result);
  }
  std::vector<ReconcileResult> Results() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ReconcileResult> out;
    for (const auto& [c, r] : results_) out.push_back(r);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, ReconcileResult>> results_;  // guarded by mu_
};

json Md(const std::string& name) {
  return {{"apiVersion", "sluice.dev/v1alpha1"},
          {"kind", "ModelDeployment"},
          {"metadata", {{"name", name}, {"namespace", "ml"}, {"uid", "uid-" + name}}}};
}

json OwnedDeployment(const std::string& name, const json& owner_refs) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "ml"}, {"ownerReferences", owner_refs}}}};
}

json Ref(const std::string& kind, const std::string& api_version, const std::string& name,
         bool controller) {
  return {{"apiVersion", api_version},
          {"kind", kind},
          {"name", name},
          {"uid", "uid-" + name},
          {"controller", controller}};
}

TEST(ControllerOwnerKeysTest, OnlyTheControllerReferenceOfThePrimaryKindCounts) {
  auto keys = [](const json& refs) {
    return Controller::OwnerKeys(OwnedDeployment("d", refs), "sluice.dev", "ModelDeployment");
  };
  EXPECT_EQ(keys(json::array({Ref("ModelDeployment", "sluice.dev/v1alpha1", "a", true)})),
            std::vector<ObjectKey>{(ObjectKey{"ml", "a"})});
  EXPECT_TRUE(
      keys(json::array({Ref("ModelDeployment", "sluice.dev/v1alpha1", "a", false)})).empty());
  EXPECT_TRUE(keys(json::array({Ref("ReplicaSet", "apps/v1", "a", true)})).empty());
  EXPECT_TRUE(keys(json::array({Ref("ModelDeployment", "other.dev/v1", "a", true)})).empty());
  EXPECT_TRUE(keys(json::array()).empty());
  EXPECT_EQ(keys(json::array({Ref("ModelDeployment", "sluice.dev/v1alpha1", "x", false),
                              Ref("ModelDeployment", "sluice.dev/v1beta1", "b", true)})),
            std::vector<ObjectKey>{(ObjectKey{"ml", "b"})});
}

class ControllerEventsTest : public ::testing::Test {
 protected:
  void Build(int workers = 1) {
    CacheOptions co;
    co.source = [this](const kube::GroupVersionResource& gvr, const std::string&) {
      return source_.For(gvr.resource);
    };
    cache_ = std::make_unique<InformerCache>(nullptr, co);
    ASSERT_TRUE(cache_->Register(kMds).ok());
    ASSERT_TRUE(cache_->Register(kDeps).ok());
    ASSERT_TRUE(cache_->Register(kConfigMaps).ok());
    ControllerOptions options;
    options.name = "test";
    options.primary = kMds;
    options.primary_kind = "ModelDeployment";
    options.owns = {kDeps};
    // ConfigMaps name the ModelDeployment they configure in a label.
    options.watches = {{kConfigMaps, [](const json& o) {
                          std::vector<ObjectKey> out;
                          auto labels = o["metadata"].value("labels", json::object());
                          if (labels.contains("md")) out.push_back({"ml", labels["md"]});
                          return out;
                        }}};
    options.workers = workers;
    options.metrics = &metrics_;
    auto c = Controller::Create(*cache_, reconciler_, std::move(options));
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
  }

  void TearDown() override {
    if (controller_) controller_->Stop();
    if (cache_) cache_->Stop();
  }

  testing::FakeSource source_;
  ScriptedReconciler reconciler_;
  RecordingMetrics metrics_;
  std::unique_ptr<InformerCache> cache_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(ControllerEventsTest, PrimaryOwnedAndWatchedObjectsEnqueueTheirOwners) {
  source_.Upsert("modeldeployments", Md("a"));
  source_.Upsert("modeldeployments", Md("b"));
  source_.Upsert(
      "deployments",
      OwnedDeployment("a-rev",
                      json::array({Ref("ModelDeployment", "sluice.dev/v1alpha1", "a", true)})));
  source_.Upsert(
      "deployments",
      OwnedDeployment("foreign", json::array({Ref("ReplicaSet", "apps/v1", "b", true)})));
  Build();
  cache_->Start();
  ASSERT_TRUE(cache_->WaitForSync(std::chrono::steady_clock::now() + seconds(20)));
  controller_->Start();
  // The initial list enqueues both primaries once each (the owned Deployment's add is folded
  // into a's pending key).
  ASSERT_TRUE(
      Eventually([&] { return reconciler_.Calls("ml/a") >= 1 && reconciler_.Calls("ml/b") >= 1; }));
  // Idle: nothing queued and nothing in flight, so the counts below are final.
  ASSERT_TRUE(Eventually([&] {
    return controller_->queue().Len() == 0 && controller_->queue().NumProcessing() == 0;
  }));
  // The owned Deployment's initial add may still reach a's handler after this point and add a
  // reconcile of a, so a's counts below are compared as "more than before", never exactly. b has
  // no owned object: its count is exact.
  const int a = reconciler_.Calls("ml/a");
  const int b = reconciler_.Calls("ml/b");

  // A status change of the owned Deployment reconciles its owner only.
  json changed = OwnedDeployment(
      "a-rev", json::array({Ref("ModelDeployment", "sluice.dev/v1alpha1", "a", true)}));
  changed["status"] = {{"readyReplicas", 2}};
  source_.Upsert("deployments", changed);
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") > a; }));
  EXPECT_EQ(reconciler_.Calls("ml/b"), b);

  // A watched ConfigMap reconciles the ModelDeployment its map function names.
  source_.Upsert("configmaps",
                 {{"metadata", {{"name", "cm"}, {"namespace", "ml"}, {"labels", {{"md", "b"}}}}}});
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/b") == b + 1; }));

  // Deleting the primary reconciles it one last time (it then finds nothing).
  const int before_delete = reconciler_.Calls("ml/a");
  source_.Remove("modeldeployments", "ml", "a");
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") > before_delete; }));

  // The foreign Deployment's change enqueues nobody.
  json foreign = OwnedDeployment("foreign", json::array({Ref("ReplicaSet", "apps/v1", "b", true)}));
  foreign["status"] = {{"readyReplicas", 1}};
  source_.Upsert("deployments", foreign);
  // Drained when the informer delivered that event and the queue is empty again: an unwanted
  // enqueue would have shown up as a reconcile of ml/b.
  const int before_marker = reconciler_.Calls("ml/a");
  source_.Upsert("configmaps",
                 {{"metadata", {{"name", "cm2"}, {"namespace", "ml"}, {"labels", {{"md", "a"}}}}}});
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") > before_marker; }));
  EXPECT_EQ(reconciler_.Calls("ml/b"), b + 1);
  // Reads of the cache see what the informers hold.
  EXPECT_NE(cache_->Get(kMds, "ml", "b"), nullptr);
  EXPECT_EQ(cache_->Get(kMds, "ml", "a"), nullptr);
  EXPECT_EQ(cache_->ListOwnedBy(kDeps, "ml", "uid-a").size(), 1u);
  EXPECT_EQ(cache_->List(kDeps, "ml").size(), 2u);
}

TEST_F(ControllerEventsTest, OneKeyIsNeverReconciledTwiceAtOnceButKeysRunInParallel) {
  Build(/*workers=*/3);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  reconciler_.behaviour = [&](const ObjectKey&, int) -> Result<Action> {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, seconds(20), [&] { return release; });
    return Action::WaitForChange();
  };
  controller_->Start();
  for (const char* k : {"ml/a", "ml/b", "ml/c"}) controller_->Enqueue(*ObjectKey::Parse(k));
  ASSERT_TRUE(Eventually([&] { return reconciler_.MaxTotalRunning() == 3; }));
  // Added again while held: handed out again only after the first reconcile is done.
  controller_->Enqueue(ObjectKey{"ml", "a"});
  controller_->Enqueue(ObjectKey{"ml", "a"});
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(Eventually([&] { return reconciler_.Finished() == 4; }));
  EXPECT_EQ(reconciler_.Calls("ml/a"), 2);
  EXPECT_EQ(reconciler_.MaxRunningSameKey(), 1);
}

TEST_F(ControllerEventsTest, StopFinishesTheReconcileInFlightAndTakesNoMoreWork) {
  Build();
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> sequence{0};
  std::atomic<int> reconcile_done_at{0};
  reconciler_.behaviour = [&](const ObjectKey& key, int) -> Result<Action> {
    if (key.name == "slow") {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, seconds(20), [&] { return release; });
      reconcile_done_at = ++sequence;
    }
    return Action::WaitForChange();
  };
  controller_->Start();
  controller_->Enqueue(ObjectKey{"ml", "slow"});
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/slow") == 1; }));
  controller_->Enqueue(ObjectKey{"ml", "queued"});
  std::atomic<int> stop_returned_at{0};
  std::thread stopper([&] {
    controller_->Stop();
    stop_returned_at = ++sequence;
  });
  ASSERT_TRUE(Eventually([&] { return controller_->queue().ShuttingDown(); }));
  EXPECT_EQ(stop_returned_at.load(), 0);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  stopper.join();
  EXPECT_EQ(reconcile_done_at.load(), 1);
  EXPECT_EQ(stop_returned_at.load(), 2);
  // The key queued behind it was dropped, and nothing new is taken.
  controller_->Enqueue(ObjectKey{"ml", "late"});
  EXPECT_EQ(reconciler_.Calls("ml/queued"), 0);
  EXPECT_EQ(reconciler_.Calls("ml/late"), 0);
}

// The result rules, on a fake clock so every delay is exact.
class ControllerRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CacheOptions co;
    co.source = [this](const kube::GroupVersionResource& gvr, const std::string&) {
      return source_.For(gvr.resource);
    };
    cache_ = std::make_unique<InformerCache>(nullptr, co);
    ASSERT_TRUE(cache_->Register(kMds).ok());
    ControllerOptions options;
    options.name = "rules";
    options.primary = kMds;
    options.primary_kind = "ModelDeployment";
    options.clock = &clock_;
    options.metrics = &metrics_;
    auto c = Controller::Create(*cache_, reconciler_, std::move(options));
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    controller_->Start();
  }
  void TearDown() override { controller_->Stop(); }

  // Waits until the worker sleeps on the clock for a delayed key and returns how far away.
  std::optional<std::chrono::nanoseconds> PendingDelay() {
    if (!Eventually([&] {
          return clock_.NextDeadline().has_value() && reconciler_.Finished() == calls_seen_;
        })) {
      return std::nullopt;
    }
    return *clock_.NextDeadline() - clock_.Now();
  }

  sluice::testing::FakeClock clock_;
  testing::FakeSource source_;
  ScriptedReconciler reconciler_;
  RecordingMetrics metrics_;
  std::unique_ptr<InformerCache> cache_;
  std::unique_ptr<Controller> controller_;
  int calls_seen_ = 0;
};

TEST_F(ControllerRulesTest, ErrorsAreRetriedWithPerKeyExponentialBackoff) {
  reconciler_.behaviour = [](const ObjectKey&, int call) -> Result<Action> {
    if (call <= 3) return Unavailable("api server unreachable");
    return Action::WaitForChange();
  };
  controller_->Enqueue(ObjectKey{"ml", "a"});
  for (auto expected : {milliseconds(5), milliseconds(10), milliseconds(20)}) {
    ++calls_seen_;
    ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") == calls_seen_; }));
    auto delay = PendingDelay();
    ASSERT_TRUE(delay.has_value());
    EXPECT_EQ(*delay, expected);
    clock_.Advance(*delay - std::chrono::nanoseconds(1));
    // Still waiting on the clock for the last nanosecond: not handed out early.
    EXPECT_EQ(PendingDelay(), std::chrono::nanoseconds(1));
    EXPECT_EQ(reconciler_.Calls("ml/a"), calls_seen_);
    clock_.Advance(std::chrono::nanoseconds(1));
  }
  ASSERT_TRUE(
      Eventually([&] { return reconciler_.Calls("ml/a") == 4 && reconciler_.Finished() == 4; }));
  // The controller records a result after the reconciler returns.
  ASSERT_TRUE(Eventually([&] { return metrics_.Results().size() == 4; }));
  // Success forgets the backoff: the next failure starts from 5 ms again.
  EXPECT_EQ(controller_->queue().NumRequeues("ml/a"), 0);
  EXPECT_THAT(metrics_.Results(),
              ::testing::ElementsAre(ReconcileResult::kError, ReconcileResult::kError,
                                     ReconcileResult::kError, ReconcileResult::kSuccess));
}

TEST_F(ControllerRulesTest, RequeueAfterComesBackAtThatTimeAndNotBefore) {
  reconciler_.behaviour = [](const ObjectKey&, int call) -> Result<Action> {
    if (call == 1) return Action::RequeueAfter(seconds(30));
    return Action::WaitForChange();
  };
  controller_->Enqueue(ObjectKey{"ml", "a"});
  calls_seen_ = 1;
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") == 1; }));
  auto delay = PendingDelay();
  ASSERT_TRUE(delay.has_value());
  EXPECT_EQ(*delay, seconds(30));
  clock_.Advance(seconds(29));
  EXPECT_EQ(PendingDelay(), seconds(1));
  EXPECT_EQ(reconciler_.Calls("ml/a"), 1);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(Eventually([&] { return reconciler_.Finished() == 2; }));
  EXPECT_EQ(reconciler_.Calls("ml/a"), 2);
  ASSERT_TRUE(Eventually([&] { return metrics_.Results().size() == 2; }));
  EXPECT_THAT(metrics_.Results(),
              ::testing::ElementsAre(ReconcileResult::kRequeue, ReconcileResult::kSuccess));
}

TEST_F(ControllerRulesTest, TerminalErrorsAreNotRetried) {
  reconciler_.behaviour = [](const ObjectKey&, int) -> Result<Action> {
    return TerminalError(InvalidArgument("spec cannot be realised"));
  };
  controller_->Enqueue(ObjectKey{"ml", "a"});
  ASSERT_TRUE(Eventually([&] { return reconciler_.Finished() == 1; }));
  ASSERT_TRUE(Eventually([&] { return controller_->queue().NumProcessing() == 0; }));
  EXPECT_FALSE(clock_.NextDeadline().has_value());
  EXPECT_EQ(controller_->queue().NumDelayed(), 0u);
  clock_.Advance(std::chrono::hours(1));
  EXPECT_EQ(reconciler_.Calls("ml/a"), 1);
  EXPECT_THAT(metrics_.Results(), ::testing::ElementsAre(ReconcileResult::kTerminalError));
  // A change (an event) reconciles it again.
  controller_->Enqueue(ObjectKey{"ml", "a"});
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") == 2; }));
}

TEST_F(ControllerRulesTest, AThrowingReconcilerIsAnErrorNotACrash) {
  reconciler_.behaviour = [](const ObjectKey&, int call) -> Result<Action> {
    if (call == 1) throw std::runtime_error("json type_error");
    return Action::WaitForChange();
  };
  controller_->Enqueue(ObjectKey{"ml", "a"});
  calls_seen_ = 1;
  ASSERT_TRUE(Eventually([&] { return reconciler_.Calls("ml/a") == 1; }));
  auto delay = PendingDelay();
  ASSERT_TRUE(delay.has_value());
  EXPECT_EQ(*delay, milliseconds(5));
  clock_.Advance(*delay);
  ASSERT_TRUE(Eventually([&] { return reconciler_.Finished() == 2; }));
  // The controller records a result after the reconciler returns.
  ASSERT_TRUE(Eventually([&] { return metrics_.Results().size() == 2; }));
  EXPECT_THAT(metrics_.Results(),
              ::testing::ElementsAre(ReconcileResult::kError, ReconcileResult::kSuccess));
}

TEST(InformerCacheTransformTest, ObjectsAreTrimmedBeforeReadersAndHandlersSeeThem) {
  testing::FakeSource source;
  CacheOptions co;
  co.source = [&source](const kube::GroupVersionResource& gvr, const std::string&) {
    return source.For(gvr.resource);
  };
  InformerCache cache(nullptr, co);
  // ConfigMaps keep only their "keep" data key; Deployments get the default (managedFields out).
  ASSERT_TRUE(cache
                  .Register(kConfigMaps, "",
                            [](kube::Json& o) {
                              json kept = o["data"].value("keep", "");
                              o["data"] = {{"keep", kept}};
                            })
                  .ok());
  ASSERT_TRUE(cache.Register(kDeps).ok());
  std::mutex mu;
  std::vector<json> seen;  // guarded by mu
  auto handler = std::make_shared<kube::ResourceEventHandlerFuncs>();
  handler->on_add = [&](const kube::ObjectPtr& o) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(*o);
  };
  ASSERT_TRUE(cache.AddEventHandler(kConfigMaps, handler).ok());
  const json managed = json::array({{{"manager", "kubectl"}, {"operation", "Apply"}}});
  source.Upsert("configmaps",
                {{"metadata", {{"name", "cm"}, {"namespace", "ml"}, {"managedFields", managed}}},
                 {"data", {{"keep", "k"}, {"drop", std::string(4096, 'x')}}}});
  source.Upsert("deployments",
                {{"metadata",
                  {{"name", "d"},
                   {"namespace", "ml"},
                   {"managedFields", managed},
                   {"annotations",
                    {{"kubectl.kubernetes.io/last-applied-configuration", "{\"spec\":{}}"},
                     {"team", "fraud"}}}}},
                 {"spec", {{"replicas", 2}}}});
  cache.Start();
  ASSERT_TRUE(cache.WaitForSync(std::chrono::steady_clock::now() + seconds(20)));

  auto cm = cache.Get(kConfigMaps, "ml", "cm");
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ((*cm)["data"], (json{{"keep", "k"}}));
  EXPECT_FALSE((*cm)["metadata"].contains("managedFields"));
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0], *cm);
  }
  auto d = cache.Get(kDeps, "ml", "d");
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE((*d)["metadata"].contains("managedFields"));
  EXPECT_EQ((*d)["metadata"]["annotations"], (json{{"team", "fraud"}}));
  EXPECT_EQ((*d)["spec"]["replicas"], 2);

  // Watch events go through the same transform as the list.
  source.Upsert("configmaps", {{"metadata", {{"name", "cm2"}, {"namespace", "ml"}}},
                               {"data", {{"keep", "k2"}, {"drop", "y"}}}});
  ASSERT_TRUE(Eventually([&] { return cache.Get(kConfigMaps, "ml", "cm2") != nullptr; }));
  EXPECT_EQ((*cache.Get(kConfigMaps, "ml", "cm2"))["data"], (json{{"keep", "k2"}}));
  cache.Stop();
}

const kube::GroupVersionResource kPods{"", "v1", "pods", true, "Pod"};

json LabelledPod(const std::string& ns, const std::string& name, json labels) {
  json meta = {{"name", name}, {"namespace", ns}};
  if (!labels.is_null()) meta["labels"] = std::move(labels);
  return {{"metadata", std::move(meta)}};
}

std::vector<std::string> Names(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects)
    out.push_back(MetaString(*o, "namespace") + "/" + MetaString(*o, "name"));
  return out;
}

TEST(InformerCacheLabelIndexTest, IndexedLookupsReturnWhatTheScanReturns) {
  testing::FakeSource source;
  CacheOptions co;
  co.source = [&source](const kube::GroupVersionResource& gvr, const std::string&) {
    return source.For(gvr.resource);
  };
  co.indexed_labels = {"rev"};
  InformerCache cache(nullptr, co);
  ASSERT_TRUE(cache.Register(kPods).ok());
  source.Upsert("pods", LabelledPod("ml", "a1", {{"rev", "a"}, {"role", "server"}}));
  source.Upsert("pods", LabelledPod("ml", "a2", {{"rev", "a"}, {"role", "router"}}));
  source.Upsert("pods", LabelledPod("ml", "b1", {{"rev", "b"}}));
  source.Upsert("pods", LabelledPod("ml", "none", nullptr));
  source.Upsert("pods", LabelledPod("ml", "number", {{"rev", 7}}));
  source.Upsert("pods", LabelledPod("other", "a9", {{"rev", "a"}}));
  cache.Start();
  ASSERT_TRUE(cache.WaitForSync(std::chrono::steady_clock::now() + seconds(20)));

  // Every (namespace, key, value) asked both ways: the index for "rev", the scan for the rest.
  auto same = [&] {
    for (const std::string ns : {"ml", "other", "absent", ""}) {
      for (const std::string key : {"rev", "role"}) {
        for (const std::string value : {"a", "b", "c", "server", "7"}) {
          auto indexed = Names(cache.ListByLabel(kPods, ns, key, value));
          auto scanned = Names(cache.ObjectReader::ListByLabel(kPods, ns, key, value));
          if (indexed != scanned) {
            ADD_FAILURE() << ns << " " << key << "=" << value << ": "
                          << ::testing::PrintToString(indexed) << " vs "
                          << ::testing::PrintToString(scanned);
            return false;
          }
        }
      }
    }
    return true;
  };
  EXPECT_TRUE(same());
  EXPECT_EQ(Names(cache.ListByLabel(kPods, "ml", "rev", "a")),
            (std::vector<std::string>{"ml/a1", "ml/a2"}));
  EXPECT_EQ(Names(cache.ListByLabel(kPods, "other", "rev", "a")),
            (std::vector<std::string>{"other/a9"}));
  EXPECT_TRUE(cache.ListByLabel(kPods, "ml", "rev", "7").empty());  // not a string label

  // A relabelled pod moves in the index; a deleted one leaves it.
  source.Upsert("pods", LabelledPod("ml", "a2", {{"rev", "b"}}));
  source.Remove("pods", "ml", "a1");
  ASSERT_TRUE(Eventually([&] {
    return Names(cache.ListByLabel(kPods, "ml", "rev", "b")) ==
               std::vector<std::string>{"ml/a2", "ml/b1"} &&
           cache.ListByLabel(kPods, "ml", "rev", "a").empty();
  }));
  EXPECT_TRUE(same());
  cache.Stop();
}

// An ObjectIndex registered with a resource answers from the index (its function runs when
// objects arrive, not when asked) with what the scan answers, in one namespace and in all, with
// the objects packed; one not registered is a scan.
TEST(InformerCacheObjectIndexTest, RegisteredIndexesAnswerWithoutReadingEveryObject) {
  testing::FakeSource source;
  CacheOptions co;
  co.source = [&source](const kube::GroupVersionResource& gvr, const std::string&) {
    return source.For(gvr.resource);
  };
  co.holding = kube::Store::Holding::kPacked;
  InformerCache cache(nullptr, co);
  std::atomic<int> calls{0};
  auto roles = [&calls](const json& pod) {
    ++calls;
    std::vector<std::string> out;
    const json* role = JsonAt(pod, {"metadata", "labels", "role"});
    if (role != nullptr && role->is_string()) out.push_back(role->get<std::string>());
    if (role != nullptr && role->is_string() && role->get<std::string>() == "server") {
      out.push_back("serving");  // several values per object
    }
    return out;
  };
  const ObjectIndex registered{"roles", roles};
  const ObjectIndex unregistered{"roles-unregistered", roles};
  ASSERT_TRUE(cache.Register(kPods, "", nullptr, {registered}).ok());
  source.Upsert("pods", LabelledPod("ml", "a1", {{"role", "server"}}));
  source.Upsert("pods", LabelledPod("ml", "a2", {{"role", "router"}}));
  source.Upsert("pods", LabelledPod("ml", "none", nullptr));
  source.Upsert("pods", LabelledPod("other", "b1", {{"role", "server"}}));
  cache.Start();
  ASSERT_TRUE(cache.WaitForSync(std::chrono::steady_clock::now() + seconds(20)));

  auto same = [&] {
    for (const std::string ns : {"ml", "other", "absent", ""}) {
      for (const std::string value : {"server", "serving", "router", "none"}) {
        const int before = calls.load();
        auto indexed = Names(cache.ListByIndex(kPods, ns, registered, value));
        EXPECT_EQ(calls.load(), before) << "the registered index ran at lookup time";
        auto scanned = Names(cache.ListByIndex(kPods, ns, unregistered, value));
        if (indexed != scanned) {
          ADD_FAILURE() << ns << " " << value << ": " << ::testing::PrintToString(indexed) << " vs "
                        << ::testing::PrintToString(scanned);
          return false;
        }
      }
    }
    return true;
  };
  EXPECT_TRUE(same());
  EXPECT_EQ(Names(cache.ListByIndex(kPods, "", registered, "serving")),
            (std::vector<std::string>{"ml/a1", "other/b1"}));
  EXPECT_EQ(Names(cache.ListByIndex(kPods, "ml", registered, "router")),
            (std::vector<std::string>{"ml/a2"}));
  const int before = calls.load();
  cache.ListByIndex(kPods, "", unregistered, "server");
  EXPECT_GT(calls.load(), before) << "an index the cache does not keep is a scan";

  // An object whose values change moves in the index; a deleted one leaves it.
  source.Upsert("pods", LabelledPod("ml", "a2", {{"role", "server"}}));
  source.Remove("pods", "other", "b1");
  ASSERT_TRUE(Eventually([&] {
    return Names(cache.ListByIndex(kPods, "", registered, "serving")) ==
               std::vector<std::string>{"ml/a1", "ml/a2"} &&
           cache.ListByIndex(kPods, "", registered, "router").empty();
  }));
  EXPECT_TRUE(same());
  cache.Stop();
}

TEST(PredicateIndexTest, FilesWhatHoldsUnderTrueAndNothingElse) {
  const ObjectIndex index =
      PredicateIndex("one", [](const json& o) { return o.value("x", 0) == 1; });
  EXPECT_EQ(index.name, "one");
  EXPECT_EQ(index.values(json{{"x", 1}}), std::vector<std::string>{"true"});
  EXPECT_TRUE(index.values(json{{"x", 2}}).empty());
}

TEST(ControllerCreateTest, RefusesResourcesTheCacheDoesNotHold) {
  InformerCache cache(nullptr, CacheOptions{});
  ScriptedReconciler r;
  ControllerOptions options;
  options.name = "x";
  options.primary = kMds;
  EXPECT_EQ(Controller::Create(cache, r, std::move(options)).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sluice::controllers
