// An informer whose resume point has been compacted away: the watch gets 410 Gone, the watcher
// relists, and the informer reports exactly what changed while it was away (deletes it could
// only infer, updates, adds) and ends equal to the server's own list.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/kube/client_it_util.h"
#include "lib/kube/informer.h"
#include "lib/kube/watcher.h"
#include "tests/support/api_server.h"

namespace sluice::kube {
namespace {

using std::chrono::seconds;

// Lists and watches through the real client, but can hold new watches at a gate, so the test
// decides when the watcher comes back.
class GatedListerWatcher final : public ListerWatcher {
 public:
  GatedListerWatcher(Client& client, const std::string& ns)
      : inner_(client, resources::kConfigMaps, ns) {}

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until a watch is held at the gate; returns the resourceVersion it will resume from.
  std::optional<std::string> WaitForHeldWatch(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return held_ > 0; })) return std::nullopt;
    return held_rv_;
  }

  Result<Json> List(const ListOptions& options) override { return inner_.List(options); }

  Status Watch(const WatchOptions& options, const std::function<bool(WatchEvent&&)>& on_event,
               const CancelFlag* cancel) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++held_;
      held_rv_ = options.resource_version;
      cv_.notify_all();
      // The watcher's cancel flag has no condition variable; look at it often.
      while (!open_ && !cancel->load()) cv_.wait_for(lock, std::chrono::milliseconds(20));
      --held_;
      if (cancel->load()) return Cancelled("stopped at the gate");
    }
    return inner_.Watch(options, on_event, cancel);
  }

 private:
  ClientListerWatcher inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;     // guarded by mu_
  int held_ = 0;         // guarded by mu_
  std::string held_rv_;  // guarded by mu_
};

class CallRecorder : public ResourceEventHandler {
 public:
  void OnAdd(const ObjectPtr& o) override { Record("add " + Name(*o)); }
  void OnUpdate(const ObjectPtr& old_o, const ObjectPtr& new_o) override {
    Record("update " + Name(*new_o) + " " + Seq(*old_o) + "->" + Seq(*new_o));
  }
  void OnDelete(const ObjectPtr& o, bool final_state_unknown) override {
    Record("delete " + Name(*o) + (final_state_unknown ? " unknown" : ""));
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.clear();
  }
  std::multiset<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {calls_.begin(), calls_.end()};
  }

 private:
  static std::string Name(const Json& o) { return o["metadata"]["name"].get<std::string>(); }
  static std::string Seq(const Json& o) { return o["data"]["seq"].get<std::string>(); }
  void Record(std::string call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(call));
  }
  mutable std::mutex mu_;
  std::vector<std::string> calls_;  // guarded by mu_
};

// name -> resourceVersion, for comparing the cache with the server.
std::map<std::string, std::string> Versions(const std::vector<ObjectPtr>& objects) {
  std::map<std::string, std::string> out;
  for (const auto& o : objects) out[(*o)["metadata"]["name"]] = ResourceVersionOf(*o);
  return out;
}

TEST(InformerRelistTest, CompactedResumePointLeadsToARelistThatReportsEveryChange) {
  auto& server = sluice::testing::SharedApiServer();
  auto admin = it::AdminClient();
  ASSERT_NE(admin, nullptr);
  const std::string ns = it::FreshNamespace(*admin, "relist");
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(admin
                    ->Create(resources::kConfigMaps, ns,
                             it::ConfigMap("c-" + std::to_string(i), {{"seq", "0"}}))
                    .ok());
  }

  auto informer_client = it::AdminClient();
  auto gated = std::make_unique<GatedListerWatcher>(*informer_client, ns);
  GatedListerWatcher* gate = gated.get();
  std::atomic<int> gone_relists{0};
  InformerOptions options;
  options.name = "configmaps";
  options.watcher.backoff.max = seconds(5);
  options.watcher.on_transition = [&](const WatcherTransition& t) {
    if (t.to == WatcherState::kInitialList && t.cause.code() == StatusCode::kGone) ++gone_relists;
  };
  Informer informer(std::move(gated), options);
  auto recorder = std::make_shared<CallRecorder>();
  informer.AddEventHandler(recorder);
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(Clock::Real().Now() + seconds(60)));
  ASSERT_EQ(informer.store()->Size(), 30u);

  // Break the watch (restart) and hold the watcher at the gate while things change.
  gate->Close();
  ASSERT_TRUE(server.StopApiServer().ok());
  const auto resume_rv = gate->WaitForHeldWatch(seconds(60));
  ASSERT_TRUE(resume_rv.has_value());
  ASSERT_TRUE(server.StartApiServer().ok()) << server.LogTails();

  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(admin->Delete(resources::kConfigMaps, ns, "c-" + std::to_string(i)).ok());
  }
  for (int i = 10; i < 20; ++i) {
    auto patched = admin->Patch(resources::kConfigMaps, ns, "c-" + std::to_string(i),
                                PatchType::kMerge, R"({"data":{"seq":"1"}})");
    ASSERT_TRUE(patched.ok()) << patched.status();
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(admin
                    ->Create(resources::kConfigMaps, ns,
                             it::ConfigMap("n-" + std::to_string(i), {{"seq", "0"}}))
                    .ok());
  }
  auto compacted = server.CompactEtcd();
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  EXPECT_GT(*compacted, std::stoll(*resume_rv));
  // A second restart starts the watch cache above the resume point too, so neither etcd nor
  // the cache can serve it.
  ASSERT_TRUE(server.StopApiServer().ok());
  ASSERT_TRUE(server.StartApiServer().ok()) << server.LogTails();

  recorder->Clear();
  gate->Open();
  auto server_list = admin->ListAll(resources::kConfigMaps, ns);
  ASSERT_TRUE(server_list.ok()) << server_list.status();
  std::vector<ObjectPtr> server_objects;
  for (auto& item : (*server_list)["items"]) {
    server_objects.push_back(std::make_shared<const Json>(item));
  }
  const auto want = Versions(server_objects);
  ASSERT_EQ(want.size(), 30u);
  ASSERT_TRUE(it::WaitFor([&] { return Versions(informer.store()->List()) == want; }, seconds(120)))
      << "the cache never matched the server's list";
  informer.Stop();

  EXPECT_GE(gone_relists.load(), 1);
  std::multiset<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.insert("delete c-" + std::to_string(i) + " unknown");
  for (int i = 10; i < 20; ++i) expected.insert("update c-" + std::to_string(i) + " 0->1");
  for (int i = 0; i < 10; ++i) expected.insert("add n-" + std::to_string(i));
  EXPECT_EQ(recorder->calls(), expected);
  std::printf("[informer-relist] resumed from rv %s, etcd compacted at %lld, relists on 410: %d\n",
              resume_rv->c_str(), static_cast<long long>(*compacted), gone_relists.load());
}

}  // namespace
}  // namespace sluice::kube
