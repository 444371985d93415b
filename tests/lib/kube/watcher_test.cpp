#include "lib/kube/watcher.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/lib/kube/watcher_test_util.h"

namespace sluice::kube {
namespace {

using sluice::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace sluice::kube::testing;  // NOLINT(google-build-using-namespace)

// A watcher on a real Client over the fake transport, on a fake clock, running on its thread.
class WatcherTest : public ::testing::Test {
 protected:
  WatcherTest() : api_(MakeFakeApi(clock_)) {}

  ~WatcherTest() override { StopWatcher(); }

  FakeTransport& transport() { return *api_.transport; }

  // No server-side timeout in the request path (it is random) and exact backoff delays.
  static WatcherOptions TestOptions() {
    WatcherOptions options;
    options.watch_timeout = seconds(0);
    options.backoff.jitter = 0.0;
    return options;
  }

  void StartWatcher(WatcherOptions options = TestOptions()) {
    options.name = "configmaps";
    options.clock = &clock_;
    options.on_transition = [this](const WatcherTransition& t) { recorder_.OnTransition(t); };
    watcher_ = std::make_unique<Watcher>(
        std::make_unique<ClientListerWatcher>(*api_.client, resources::kConfigMaps, "ns"),
        [this](WatcherEvent&& e) { recorder_.OnEvent(std::move(e)); }, std::move(options));
    thread_ = std::thread([this] { watcher_->Run(); });
  }

  void StopWatcher() {
    if (!watcher_) return;
    watcher_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  // Waits until the watcher sits in a backoff wait, then lets exactly that wait pass.
  void PassBackoff(std::chrono::nanoseconds expected) {
    ASSERT_TRUE(clock_.BlockUntilWaiterBy(clock_.Now() + expected));
    ASSERT_EQ(*clock_.NextDeadline() - clock_.Now(), expected);
    clock_.Advance(expected);
  }

  std::vector<WatcherTransition> TransitionsTo(WatcherState to) {
    std::vector<WatcherTransition> out;
    for (const auto& t : recorder_.transitions()) {
      if (t.to == to) out.push_back(t);
    }
    return out;
  }

  FakeClock clock_;
  FakeApi api_;
  Recorder recorder_;
  std::unique_ptr<Watcher> watcher_;
  std::thread thread_;
};

TEST_F(WatcherTest, ListsEveryPageThenWatchesFromTheListVersion) {
  transport()
      .Expect("GET", ListPath(),
              Reply(200, ConfigMapList({ConfigMap("a", "5"), ConfigMap("b", "7")}, "10", "tok1")))
      .Expect("GET", ListPath("tok1"), Reply(200, ConfigMapList({ConfigMap("c", "9")}, "10")))
      .Expect("GET", WatchPath("10"),
              Hang({EventLine("ADDED", ConfigMap("d", "11")),
                    EventLine("MODIFIED", ConfigMap("a", "12", "v2")), BookmarkLine("15"),
                    EventLine("DELETED", ConfigMap("b", "16"))}));
  StartWatcher();
  ASSERT_TRUE(recorder_.WaitForEvents(5));
  const auto events = recorder_.events();
  ASSERT_EQ(events[0].type, WatcherEventType::kRestarted);
  ASSERT_EQ(events[0].objects.size(), 3u);
  EXPECT_EQ(KeyOf(*events[0].objects[2]), "ns/c");
  // List items get the type of their list, like watch objects.
  EXPECT_EQ((*events[0].objects[0])["kind"], "ConfigMap");
  EXPECT_EQ((*events[0].objects[0])["apiVersion"], "v1");
  EXPECT_EQ(events[0].resource_version, "10");
  EXPECT_EQ(events[1].type, WatcherEventType::kAdded);
  EXPECT_EQ(KeyOf(*events[1].object), "ns/d");
  EXPECT_EQ(events[2].type, WatcherEventType::kModified);
  EXPECT_EQ((*events[2].object)["data"]["k"], "v2");
  EXPECT_EQ(events[3].type, WatcherEventType::kBookmark);
  EXPECT_EQ(events[3].resource_version, "15");
  EXPECT_EQ(events[4].type, WatcherEventType::kDeleted);
  EXPECT_EQ(events[4].resource_version, "16");
  EXPECT_EQ(watcher_->resource_version(), "16");
  EXPECT_EQ(watcher_->state(), WatcherState::kWatching);

  // Stop cancels the open watch; Run returns.
  StopWatcher();
  EXPECT_EQ(watcher_->state(), WatcherState::kStopped);
  EXPECT_TRUE(transport().unexpected().empty());
  EXPECT_TRUE(transport().pending().empty());
}

TEST_F(WatcherTest, ResumesFromTheLastVersionAfterACleanClose) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("a", "5")}, "10")))
      .Expect("GET", WatchPath("10"), StreamOf({EventLine("ADDED", ConfigMap("b", "11"))}))
      .Expect("GET", WatchPath("11"), Hang({EventLine("MODIFIED", ConfigMap("b", "12", "x"))}));
  StartWatcher();
  ASSERT_TRUE(recorder_.WaitForEvents(3));
  StopWatcher();
  const auto events = recorder_.events();
  ASSERT_EQ(events.size(), 3u);  // no relist, nothing twice
  EXPECT_EQ(events[0].type, WatcherEventType::kRestarted);
  EXPECT_EQ(events[1].type, WatcherEventType::kAdded);
  EXPECT_EQ(events[2].type, WatcherEventType::kModified);
  EXPECT_EQ(events[2].resource_version, "12");
  EXPECT_TRUE(TransitionsTo(WatcherState::kBackoff).empty());
  EXPECT_TRUE(transport().unexpected().empty());
}

TEST_F(WatcherTest, BookmarksAdvanceTheResumeVersion) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "10")))
      .Expect("GET", WatchPath("10"), StreamOf({BookmarkLine("50")}))
      .Expect("GET", WatchPath("50"), Hang({BookmarkLine("60")}));
  StartWatcher();
  ASSERT_TRUE(recorder_.WaitForEvents(3));
  EXPECT_EQ(watcher_->resource_version(), "60");
  ASSERT_TRUE(Eventually([&] { return transport().pending().empty(); }));
  StopWatcher();
  EXPECT_TRUE(transport().unexpected().empty());
}

TEST_F(WatcherTest, GoneInHttpStatusRelists) {
  transport()
      .Expect("GET", ListPath(),
              Reply(200, ConfigMapList({ConfigMap("a", "5"), ConfigMap("b", "6")}, "10")))
      .Expect("GET", WatchPath("10"),
              Reply(410, StatusObject(410, "Expired", "too old resource version: 10 (30)")))
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("b", "31")}, "40")))
      .Expect("GET", WatchPath("40"), Hang());
  StartWatcher();
  ASSERT_TRUE(recorder_.WaitForEvents(2));
  const auto events = recorder_.events();
  ASSERT_EQ(events[1].type, WatcherEventType::kRestarted);
  ASSERT_EQ(events[1].objects.size(), 1u);
  EXPECT_EQ(ResourceVersionOf(*events[1].objects[0]), "31");
  EXPECT_EQ(events[1].resource_version, "40");
  // A first 410 relists at once, without a backoff.
  EXPECT_TRUE(TransitionsTo(WatcherState::kBackoff).empty());
  auto relists = TransitionsTo(WatcherState::kInitialList);
  ASSERT_EQ(relists.size(), 1u);
  EXPECT_EQ(relists[0].cause.code(), StatusCode::kGone);
  StopWatcher();
  EXPECT_TRUE(transport().unexpected().empty());
}

TEST_F(WatcherTest, GoneAsAnErrorEventRelists) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("a", "5")}, "10")))
      .Expect("GET", WatchPath("10"),
              StreamOf({EventLine("MODIFIED", ConfigMap("a", "11", "x")),
                        EventLine("ERROR", StatusObject(410, "Expired", "too old"))}))
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("a", "12", "y")}, "20")))
      .Expect("GET", WatchPath("20"), Hang());
  StartWatcher();
  ASSERT_TRUE(recorder_.WaitForEvents(3));
  const auto events = recorder_.events();
  EXPECT_EQ(events[1].type, WatcherEventType::kModified);
  EXPECT_EQ(events[2].type, WatcherEventType::kRestarted);
  ASSERT_TRUE(Eventually([&] { return transport().pending().empty(); }));
  StopWatcher();
  EXPECT_TRUE(transport().unexpected().empty());
}

TEST_F(WatcherTest, RepeatedGoneWithoutProgressBacksOffBeforeRelisting) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "10")))
      .Expect("GET", WatchPath("10"), Reply(410, StatusObject(410, "Expired", "too old")))
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "11")))
      .Expect("GET", WatchPath("11"), Reply(410, StatusObject(410, "Expired", "too old")))
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "12")))
      .Expect("GET", WatchPath("12"), Hang());
  StartWatcher();
  PassBackoff(milliseconds(800));
  ASSERT_TRUE(recorder_.WaitForEvents(3));
  auto backoffs = TransitionsTo(WatcherState::kBackoff);
  ASSERT_EQ(backoffs.size(), 1u);
  EXPECT_EQ(backoffs[0].cause.code(), StatusCode::kGone);
  ASSERT_TRUE(Eventually([&] { return transport().pending().empty(); }));
  StopWatcher();
}

TEST_F(WatcherTest, ExpiredContinueTokenRestartsTheList) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("a", "5")}, "10", "old")))
      .Expect("GET", ListPath("old"), Reply(410, StatusObject(410, "Expired", "continue expired")))
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("z", "25")}, "30", "new")))
      .Expect("GET", ListPath("new"), Reply(200, ConfigMapList({ConfigMap("y", "26")}, "30")))
      .Expect("GET", WatchPath("30"), Hang());
  StartWatcher();
  ASSERT_TRUE(recorder_.WaitForEvents(1));
  const auto events = recorder_.events();
  ASSERT_EQ(events[0].objects.size(), 2u);  // only the second snapshot
  EXPECT_EQ(KeyOf(*events[0].objects[0]), "ns/z");
  EXPECT_EQ(events[0].resource_version, "30");
  ASSERT_TRUE(Eventually([&] { return transport().pending().empty(); }));
  StopWatcher();
}

TEST_F(WatcherTest, BackoffGrowsOnRepeatedFailuresAndStartsOverAfterAHealthyStretch) {
  transport()
      .Expect("GET", ListPath(), Fail(Unavailable("connection refused")))
      .Expect("GET", ListPath(), Fail(Unavailable("connection refused")))
      .Expect("GET", ListPath(), Reply(503, StatusObject(503, "ServiceUnavailable", "starting")))
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("a", "5")}, "10")))
      // The watch breaks at once: still part of the same failure streak.
      .Expect("GET", WatchPath("10"), BreakAfter({}, Unavailable("connection reset")))
      // Healthy for long enough, then it breaks again: the backoff starts over.
      .Expect("GET", WatchPath("10"),
              BreakAfter({EventLine("MODIFIED", ConfigMap("a", "11", "x"))},
                         Unavailable("connection reset")))
      .Expect("GET", WatchPath("11"), Hang());
  StartWatcher();
  PassBackoff(milliseconds(800));
  PassBackoff(milliseconds(1600));
  PassBackoff(milliseconds(3200));
  // Waiting in the fourth backoff (6.4 s); let 200 s pass, as if the next watch ran that long.
  ASSERT_TRUE(clock_.BlockUntilWaiterBy(clock_.Now() + milliseconds(6400)));
  ASSERT_EQ(*clock_.NextDeadline() - clock_.Now(), milliseconds(6400));
  clock_.Advance(seconds(200));
  PassBackoff(milliseconds(800));
  ASSERT_TRUE(recorder_.WaitForEvents(2));

  auto backoffs = TransitionsTo(WatcherState::kBackoff);
  ASSERT_EQ(backoffs.size(), 5u);
  EXPECT_EQ(backoffs[0].backoff, milliseconds(800));
  EXPECT_EQ(backoffs[1].backoff, milliseconds(1600));
  EXPECT_EQ(backoffs[2].backoff, milliseconds(3200));
  EXPECT_EQ(backoffs[3].backoff, milliseconds(6400));
  EXPECT_EQ(backoffs[3].from, WatcherState::kWatching);
  EXPECT_EQ(backoffs[4].backoff, milliseconds(800));
  EXPECT_EQ(backoffs[0].from, WatcherState::kInitialList);
  // A list failure retries the list; a watch failure retries the watch (from the same version).
  ASSERT_TRUE(Eventually([&] { return transport().pending().empty(); }));
  EXPECT_EQ(transport().requests().size(), 7u);
  StopWatcher();
}

TEST_F(WatcherTest, WatchClosingAtOnceWithoutEventsIsAFailure) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "10")))
      .Expect("GET", WatchPath("10"), StreamOf({}))
      .Expect("GET", WatchPath("10"), Hang());
  StartWatcher();
  PassBackoff(milliseconds(800));
  ASSERT_TRUE(recorder_.WaitForTransitions(3));  // list->watch, ->backoff, ->watching
  auto backoffs = TransitionsTo(WatcherState::kBackoff);
  ASSERT_EQ(backoffs.size(), 1u);
  EXPECT_EQ(backoffs[0].cause.code(), StatusCode::kUnavailable);
  StopWatcher();
}

TEST_F(WatcherTest, StopDuringBackoffReturnsWithoutTimePassing) {
  transport().On(FakeTransport::StartsWith("GET", kConfigMaps), "any list",
                 Fail(Unavailable("connection refused")));
  StartWatcher();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  const auto before = clock_.Now();
  StopWatcher();  // joins: Run returned
  EXPECT_EQ(clock_.Now(), before);
  EXPECT_EQ(watcher_->state(), WatcherState::kStopped);
}

TEST_F(WatcherTest, AsksTheServerToEndEachWatchAfterAJitteredTimeout) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({}, "10")))
      .Expect(FakeTransport::StartsWith("GET", WatchPath("10") + "&timeoutSeconds="), "watch",
              Hang({BookmarkLine("11")}));
  WatcherOptions options = TestOptions();
  options.watch_timeout = seconds(301);
  StartWatcher(std::move(options));
  ASSERT_TRUE(recorder_.WaitForEvents(2));
  StopWatcher();
  const auto requests = transport().requests();
  ASSERT_EQ(requests.size(), 2u);
  const std::string& path = requests[1].path;
  const int timeout = std::stoi(path.substr(path.find("timeoutSeconds=") + 15));
  EXPECT_GE(timeout, 301);
  EXPECT_LT(timeout, 602);
}

TEST_F(WatcherTest, TransformRunsOnEveryObjectBeforeItIsShared) {
  transport()
      .Expect("GET", ListPath(), Reply(200, ConfigMapList({ConfigMap("a", "5")}, "10")))
      .Expect("GET", WatchPath("10"), Hang({EventLine("ADDED", ConfigMap("b", "11"))}));
  WatcherOptions options = TestOptions();
  options.transform = [](Json& o) { o["metadata"]["labels"]["seen"] = "yes"; };
  StartWatcher(std::move(options));
  ASSERT_TRUE(recorder_.WaitForEvents(2));
  StopWatcher();
  const auto events = recorder_.events();
  EXPECT_EQ((*events[0].objects[0])["metadata"]["labels"]["seen"], "yes");
  EXPECT_EQ((*events[1].object)["metadata"]["labels"]["seen"], "yes");
}

}  // namespace
}  // namespace sluice::kube
