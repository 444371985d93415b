#include "lib/kube/informer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "lib/kube/store.h"
#include "tests/lib/kube/watcher_test_util.h"

namespace sluice::kube {
namespace {

using sluice::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace sluice::kube::testing;  // NOLINT(google-build-using-namespace)

ObjectPtr Ptr(Json j) {
  return std::make_shared<const Json>(std::move(j));
}

Json Owned(Json object, const std::string& owner_uid) {
  object["metadata"]["ownerReferences"] = Json::array({{{"apiVersion", "sluice.dev/v1alpha1"},
                                                        {"kind", "ModelDeployment"},
                                                        {"name", "md"},
                                                        {"uid", owner_uid}}});
  return object;
}

std::vector<std::string> Keys(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> keys;
  for (const auto& o : objects) keys.push_back(KeyOf(*o));
  return keys;
}

// ---- Store ----

TEST(StoreTest, KeysAreNamespaceSlashNameOrJustName) {
  EXPECT_EQ(KeyOf(ConfigMap("a", "1")), "ns/a");
  EXPECT_EQ(KeyOf(Json{{"metadata", {{"name", "node-1"}}}}), "node-1");
}

// Every Store test runs on both holdings: a packed store hands out equal objects, parsed afresh
// for each read; a parsed one hands out the very objects it was given.
class StoreTest : public ::testing::TestWithParam<Store::Holding> {
 protected:
  bool parsed() const { return GetParam() == Store::Holding::kParsed; }
  // The object the store gave back is the one written: the same pointer when parsed, an equal
  // copy when packed.
  void ExpectSame(const ObjectPtr& got, const ObjectPtr& written) const {
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(*got, *written);
    if (parsed()) {
      EXPECT_EQ(got.get(), written.get());
    } else {
      EXPECT_NE(got.get(), written.get());
    }
  }
};

INSTANTIATE_TEST_SUITE_P(Holdings, StoreTest,
                         ::testing::Values(Store::Holding::kParsed, Store::Holding::kPacked),
                         [](const ::testing::TestParamInfo<Store::Holding>& info) {
                           return info.param == Store::Holding::kParsed ? "Parsed" : "Packed";
                         });

TEST_P(StoreTest, UpsertAndRemoveReportWhatChanged) {
  Store store(DefaultIndexers(), GetParam());
  auto v1 = Ptr(ConfigMap("a", "1"));
  auto v2 = Ptr(ConfigMap("a", "2"));
  StoreChange added = store.Upsert(v1);
  EXPECT_EQ(added.kind, StoreChange::Kind::kAdded);
  EXPECT_EQ(added.new_object, v1);
  StoreChange updated = store.Upsert(v2);
  EXPECT_EQ(updated.kind, StoreChange::Kind::kUpdated);
  ExpectSame(updated.old_object, v1);
  EXPECT_EQ(updated.new_object, v2);
  ExpectSame(store.Get("ns/a"), v2);
  auto final_state = Ptr(ConfigMap("a", "3"));
  StoreChange deleted = store.Remove(final_state);
  EXPECT_EQ(deleted.kind, StoreChange::Kind::kDeleted);
  ExpectSame(deleted.old_object, v2);
  EXPECT_EQ(deleted.new_object, final_state);
  EXPECT_FALSE(deleted.final_state_unknown);
  EXPECT_EQ(store.Get("ns/a"), nullptr);
  EXPECT_EQ(store.Size(), 0u);
  // Removing what the store does not hold reports the final state as both old and new.
  StoreChange unknown = store.Remove(final_state);
  EXPECT_EQ(unknown.old_object, final_state);
  EXPECT_EQ(unknown.new_object, final_state);
}

TEST_P(StoreTest, ReplaceDiffsAgainstWhatItHeld) {
  Store store(DefaultIndexers(), GetParam());
  auto a = Ptr(ConfigMap("a", "1"));
  auto b = Ptr(ConfigMap("b", "2"));
  auto c = Ptr(ConfigMap("c", "3"));
  store.Upsert(a);
  store.Upsert(b);
  store.Upsert(c);
  auto b2 = Ptr(ConfigMap("b", "9"));
  auto d = Ptr(ConfigMap("d", "10"));
  auto a_same = Ptr(ConfigMap("a", "1"));
  auto changes = store.Replace({d, b2, a_same});
  ASSERT_EQ(changes.size(), 3u);
  // In key order: b updated, c deleted, d added; a unchanged is not reported.
  EXPECT_EQ(changes[0].kind, StoreChange::Kind::kUpdated);
  ExpectSame(changes[0].old_object, b);
  EXPECT_EQ(changes[0].new_object, b2);
  EXPECT_EQ(changes[1].kind, StoreChange::Kind::kDeleted);
  ExpectSame(changes[1].new_object, c);
  EXPECT_TRUE(changes[1].final_state_unknown);
  EXPECT_EQ(changes[2].kind, StoreChange::Kind::kAdded);
  EXPECT_EQ(changes[2].new_object, d);
  EXPECT_EQ(store.ListKeys(), (std::vector<std::string>{"ns/a", "ns/b", "ns/d"}));
  // The unchanged object is kept as it was.
  ExpectSame(store.Get("ns/a"), a);
  ExpectSame(store.Get("ns/b"), b2);
  ExpectSame(store.Get("ns/d"), d);
  EXPECT_EQ(store.Get("ns/c"), nullptr);
}

TEST_P(StoreTest, IndexesFollowUpdates) {
  Store store(DefaultIndexers(), GetParam());
  auto owned = Ptr(Owned(ConfigMap("a", "1"), "uid-1"));
  store.Upsert(owned);
  store.Upsert(Ptr(Owned(ConfigMap("b", "1"), "uid-1")));
  Json other_ns = ConfigMap("c", "1");
  other_ns["metadata"]["namespace"] = "other";
  store.Upsert(Ptr(other_ns));

  EXPECT_EQ(Keys(store.ByIndex(kOwnerUidIndex, "uid-1")),
            (std::vector<std::string>{"ns/a", "ns/b"}));
  EXPECT_EQ(Keys(store.ByIndex(kNamespaceIndex, "other")), (std::vector<std::string>{"other/c"}));
  // Parsed: one object, not a copy per index.
  ExpectSame(store.ByIndex(kOwnerUidIndex, "uid-1")[0], owned);
  ExpectSame(store.Get("ns/a"), owned);

  // a changes owner: it leaves the old index entry.
  store.Upsert(Ptr(Owned(ConfigMap("a", "2"), "uid-2")));
  EXPECT_EQ(Keys(store.ByIndex(kOwnerUidIndex, "uid-1")), (std::vector<std::string>{"ns/b"}));
  EXPECT_EQ(Keys(store.ByIndex(kOwnerUidIndex, "uid-2")), (std::vector<std::string>{"ns/a"}));
  store.Remove(Ptr(ConfigMap("b", "3")));
  EXPECT_TRUE(store.ByIndex(kOwnerUidIndex, "uid-1").empty());
  EXPECT_TRUE(store.IndexKeys(kOwnerUidIndex, "uid-1").empty());
  EXPECT_TRUE(store.ByIndex("no-such-index", "x").empty());
  // A relist that moves a back and drops c unindexes and reindexes them too.
  store.Replace({Ptr(Owned(ConfigMap("a", "3"), "uid-1"))});
  EXPECT_EQ(Keys(store.ByIndex(kOwnerUidIndex, "uid-1")), (std::vector<std::string>{"ns/a"}));
  EXPECT_TRUE(store.ByIndex(kOwnerUidIndex, "uid-2").empty());
  EXPECT_TRUE(store.ByIndex(kNamespaceIndex, "other").empty());
}

TEST_P(StoreTest, CustomIndexers) {
  Indexers indexers = DefaultIndexers();
  indexers["data-k"] = [](const Json& o) -> std::vector<std::string> {
    return {o["data"]["k"].get<std::string>()};
  };
  Store store(std::move(indexers), GetParam());
  store.Upsert(Ptr(ConfigMap("a", "1", "red")));
  store.Upsert(Ptr(ConfigMap("b", "1", "blue")));
  store.Upsert(Ptr(ConfigMap("c", "1", "red")));
  EXPECT_EQ(Keys(store.ByIndex("data-k", "red")), (std::vector<std::string>{"ns/a", "ns/c"}));
}

// What a packed store gives back is the same JSON value for every type an object carries, numbers
// (signed, unsigned, fractional) and nulls included.
TEST(StorePackedTest, ObjectsReadBackEqualToWhatWasWritten) {
  Store store(DefaultIndexers(), Store::Holding::kPacked);
  Json object = ConfigMap("a", "1");
  object["spec"] = {{"replicas", 3},
                    {"negative", -7},
                    {"big", 18446744073709551615ULL},
                    {"ratio", 0.1},
                    {"half", 0.5},
                    {"none", nullptr},
                    {"on", true},
                    {"list", Json::array({"x", 1, Json::object(), Json::array()})},
                    {"text", std::string(300, 'q')}};
  auto written = Ptr(object);
  store.Upsert(written);
  ObjectPtr read = store.Get("ns/a");
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(*read, *written);
  EXPECT_TRUE((*read)["spec"]["replicas"].is_number_unsigned());
  EXPECT_TRUE((*read)["spec"]["negative"].is_number_integer());
  EXPECT_TRUE((*read)["spec"]["ratio"].is_number_float());
  EXPECT_EQ((*read)["spec"]["ratio"].get<double>(), 0.1);
  EXPECT_EQ(read->dump(), written->dump());
}

// Readers run while a writer churns; under TSan this checks the locking, and every snapshot a
// reader takes must be internally consistent (an index never names a key the store lacks).
TEST_P(StoreTest, ConcurrentReadersSeeConsistentSnapshots) {
  Store store(DefaultIndexers(), GetParam());
  std::atomic<bool> done{false};
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        for (const auto& o : store.ByIndex(kOwnerUidIndex, "uid-1")) {
          if (OwnerUidIndexFunc(*o) != std::vector<std::string>{"uid-1"}) ++inconsistent;
        }
        for (const auto& o : store.List()) {
          if (KeyOf(*o).empty()) ++inconsistent;
        }
        std::this_thread::yield();
      }
    });
  }
  for (int i = 0; i < 800; ++i) {
    const std::string name = "o" + std::to_string(i % 50);
    const std::string uid = (i / 50) % 2 == 0 ? "uid-1" : "uid-2";
    if (i % 7 == 0) {
      store.Remove(Ptr(ConfigMap(name, std::to_string(i))));
    } else {
      store.Upsert(Ptr(Owned(ConfigMap(name, std::to_string(i)), uid)));
    }
    if (i % 200 == 199) store.Replace({Ptr(Owned(ConfigMap("o1", "x"), "uid-1"))});
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(inconsistent.load(), 0);
}

// ---- Informer ----

// Records handler calls as text, and checks at each call that the store already shows it.
class RecordingHandler : public ResourceEventHandler {
 public:
  explicit RecordingHandler(const Informer* informer = nullptr) : informer_(informer) {}

  void OnAdd(const ObjectPtr& o) override {
    CheckStore(KeyOf(*o), o);
    Record("add " + KeyOf(*o) + " " + ResourceVersionOf(*o));
  }
  void OnUpdate(const ObjectPtr& old_o, const ObjectPtr& new_o) override {
    CheckStore(KeyOf(*new_o), new_o);
    Record("update " + KeyOf(*new_o) + " " + ResourceVersionOf(*old_o) + "->" +
           ResourceVersionOf(*new_o));
  }
  void OnDelete(const ObjectPtr& o, bool final_state_unknown) override {
    CheckStore(KeyOf(*o), nullptr);
    Record("delete " + KeyOf(*o) + " " + ResourceVersionOf(*o) +
           (final_state_unknown ? " unknown" : ""));
  }

  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(30), [&] { return calls_.size() >= n; });
  }
  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  int store_mismatches() const { return store_mismatches_.load(); }

 private:
  void CheckStore(const std::string& key, const ObjectPtr& expected) {
    if (informer_ == nullptr) return;
    if (informer_->store()->Get(key) != expected) ++store_mismatches_;
  }
  void Record(std::string call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(call));
    cv_.notify_all();
  }

  const Informer* informer_;
  std::atomic<int> store_mismatches_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;  // guarded by mu_
};

class InformerTest : public ::testing::Test {
 protected:
  InformerTest() : api_(MakeFakeApi(clock_)) {}
  ~InformerTest() override {
    if (informer_) informer_->Stop();
  }

  FakeTransport& transport() { return *api_.transport; }

  void MakeInformer(std::chrono::nanoseconds resync = {}) {
    InformerOptions options;
    options.clock = &clock_;
    options.resync_period = resync;
    options.watcher.watch_timeout = seconds(0);
    options.watcher.backoff.jitter = 0.0;
    informer_ = Informer::ForResource(*api_.client, resources::kConfigMaps, "ns", options);
    handler_ = std::make_shared<RecordingHandler>(informer_.get());
    informer_->AddEventHandler(handler_);
  }

  FakeClock clock_;
  FakeApi api_;
  std::unique_ptr<Informer> informer_;
  std::shared_ptr<RecordingHandler> handler_;
};

TEST_F(InformerTest, SyncsFromTheListThenAppliesWatchEvents) {
  transport()
      .Expect("GET", ListPath(),
              Reply(200, ConfigMapList({Owned(ConfigMap("a", "5"), "uid-1"), ConfigMap("b", "6")},
                                       "10")))
      .Expect("GET", WatchPath("10"),
              Hang({EventLine("ADDED", Owned(ConfigMap("c", "11"), "uid-1")),
                    EventLine("MODIFIED", ConfigMap("a", "12", "x")),
                    EventLine("DELETED", ConfigMap("b", "13"))}));
  MakeInformer();
  EXPECT_FALSE(informer_->HasSynced());
  informer_->Start();
  ASSERT_TRUE(informer_->WaitForSync(clock_.Now() + seconds(1)));
  ASSERT_TRUE(handler_->WaitFor(5));
  EXPECT_EQ(handler_->calls(), (std::vector<std::string>{"add ns/a 5", "add ns/b 6", "add ns/c 11",
                                                         "update ns/a 5->12", "delete ns/b 13"}));
  EXPECT_EQ(handler_->store_mismatches(), 0);
  auto store = informer_->store();
  EXPECT_EQ(store->ListKeys(), (std::vector<std::string>{"ns/a", "ns/c"}));
  // a lost its owner in the update; c is owned.
  EXPECT_EQ(Keys(store->ByIndex(kOwnerUidIndex, "uid-1")), (std::vector<std::string>{"ns/c"}));
  EXPECT_EQ(Keys(store->ByIndex(kNamespaceIndex, "ns")),
            (std::vector<std::string>{"ns/a", "ns/c"}));
  EXPECT_EQ(informer_->resource_version(), "13");
  informer_->Stop();
  EXPECT_TRUE(transport().unexpected().empty());
}

TEST_F(InformerTest, RelistAfterGoneSynthesisesDeletesForWhatVanished) {
  transport()
      .Expect(
          "GET", ListPath(),
          Reply(200, ConfigMapList({ConfigMap("a", "5"), ConfigMap("b", "6"), ConfigMap("c", "7")},
                                   "10")))
      .Expect("GET", WatchPath("10"),
              StreamOf({EventLine("MODIFIED", ConfigMap("a", "11", "x")),
                        EventLine("ERROR", StatusObject(410, "Expired", "too old"))}))
      // Meanwhile b changed, c was deleted, d was created; a is as the watch left it.
      .Expect("GET", ListPath(),
              Reply(200, ConfigMapList({ConfigMap("a", "11", "x"), ConfigMap("b", "30"),
                                        ConfigMap("d", "31")},
                                       "40")))
      .Expect("GET", WatchPath("40"), Hang());
  MakeInformer();
  informer_->Start();
  ASSERT_TRUE(handler_->WaitFor(7));
  EXPECT_EQ(handler_->calls(), (std::vector<std::string>{"add ns/a 5", "add ns/b 6", "add ns/c 7",
                                                         "update ns/a 5->11", "update ns/b 6->30",
                                                         "delete ns/c 7 unknown", "add ns/d 31"}));
  EXPECT_EQ(handler_->store_mismatches(), 0);
  EXPECT_EQ(informer_->store()->ListKeys(), (std::vector<std::string>{"ns/a", "ns/b", "ns/d"}));
  ASSERT_TRUE(Eventually([&] { return transport().pending().empty(); }));
  informer_->Stop();
  EXPECT_EQ(handler_->calls().size(), 7u);  // nothing twice
}

TEST_F(InformerTest, ResyncRedeliversEveryObjectEachPeriod) {
  transport()
      .Expect("GET", ListPath(),
              Reply(200, ConfigMapList({ConfigMap("a", "5"), ConfigMap("b", "6")}, "10")))
      .Expect("GET", WatchPath("10"), Hang());
  MakeInformer(seconds(30));
  informer_->Start();
  ASSERT_TRUE(informer_->WaitForSync(clock_.Now() + seconds(1)));
  ASSERT_TRUE(handler_->WaitFor(2));
  ASSERT_TRUE(clock_.BlockUntilWaiterBy(clock_.Now() + seconds(30)));
  clock_.Advance(seconds(29));
  EXPECT_EQ(handler_->calls().size(), 2u);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(handler_->WaitFor(4));
  ASSERT_TRUE(clock_.BlockUntilWaiterBy(clock_.Now() + seconds(30)));
  clock_.Advance(seconds(30));
  ASSERT_TRUE(handler_->WaitFor(6));
  EXPECT_EQ(handler_->calls(),
            (std::vector<std::string>{"add ns/a 5", "add ns/b 6", "update ns/a 5->5",
                                      "update ns/b 6->6", "update ns/a 5->5", "update ns/b 6->6"}));
  informer_->Stop();
}

TEST_F(InformerTest, WaitForSyncGivesUpAtTheDeadlineOrOnStop) {
  transport().On(FakeTransport::StartsWith("GET", kConfigMaps), "any",
                 Fail(Unavailable("connection refused")));
  MakeInformer();
  informer_->Start();
  std::atomic<int> result{-1};
  // The deadline is fixed before the thread starts, and the clock moves only once that wait
  // (not the watcher's 800 ms backoff) is pending.
  const auto deadline = clock_.Now() + seconds(5);
  std::thread waiter([&, deadline] { result = informer_->WaitForSync(deadline) ? 1 : 0; });
  ASSERT_TRUE(clock_.BlockUntilWaiterAt(deadline));
  clock_.Advance(seconds(5));
  waiter.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_FALSE(informer_->HasSynced());

  std::thread waiter2([&] { result = informer_->WaitForSync(clock_.Now() + seconds(60)) ? 1 : 0; });
  ASSERT_TRUE(clock_.BlockUntilWaiterBy(clock_.Now() + seconds(60)));
  informer_->Stop();
  waiter2.join();
  EXPECT_EQ(result.load(), 0);
}

TEST_F(InformerTest, HandlerAddedLateIsToldAboutCachedObjects) {
  transport()
      .Expect("GET", ListPath(),
              Reply(200, ConfigMapList({ConfigMap("a", "5"), ConfigMap("b", "6")}, "10")))
      .Expect("GET", WatchPath("10"), Hang());
  MakeInformer();
  informer_->Start();
  ASSERT_TRUE(informer_->WaitForSync(clock_.Now() + seconds(1)));
  auto late = std::make_shared<RecordingHandler>();
  informer_->AddEventHandler(late);
  EXPECT_EQ(late->calls(), (std::vector<std::string>{"add ns/a 5", "add ns/b 6"}));
  informer_->Stop();
}

// The watch applies a long stream of events while other threads read the store (TSan target).
TEST_F(InformerTest, ReadersRunWhileEventsApply) {
  std::vector<std::string> lines;
  constexpr int kEvents = 1000;
  for (int i = 0; i < kEvents; ++i) {
    const std::string name = "o" + std::to_string(i % 40);
    const std::string rv = std::to_string(11 + i);
    lines.push_back(EventLine(i % 9 == 8 ? "DELETED" : "MODIFIED", ConfigMap(name, rv)));
  }
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "10")))
      .Expect("GET", WatchPath("10"), Hang(lines));
  MakeInformer();
  std::atomic<bool> done{false};
  std::atomic<int> looping{0};
  std::atomic<size_t> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      bool counted = false;
      while (!done.load()) {
        auto store = informer_->store();
        for (const auto& o : store->ByIndex(kNamespaceIndex, "ns")) reads += o->size() > 0;
        store->Get("ns/o1");
        if (!counted) {
          counted = true;
          ++looping;
        }
        std::this_thread::yield();
      }
    });
  }
  // Both readers run before the first event and until they have seen objects, however the
  // machine schedules them.
  while (looping.load() < 2) std::this_thread::yield();
  informer_->Start();
  const bool all_applied = handler_->WaitFor(kEvents);
  const auto give_up = std::chrono::steady_clock::now() + seconds(30);
  while (reads.load() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  done = true;
  for (auto& t : readers) t.join();
  ASSERT_TRUE(all_applied);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(informer_->resource_version(), std::to_string(10 + kEvents));
  EXPECT_EQ(handler_->store_mismatches(), 0);
  informer_->Stop();
}

}  // namespace
}  // namespace sluice::kube
