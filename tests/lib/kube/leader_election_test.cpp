#include "lib/kube/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/lib/base/fake_clock.h"
#include "tests/lib/kube/fake_transport.h"

namespace sluice::kube {
namespace {

using sluice::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace sluice::kube::testing;  // NOLINT(google-build-using-namespace)

// The lease as the API server would keep it: a record and a version that every write bumps.
class FakeLeaseServer {
 public:
  struct State {
    std::optional<LeaderElectionRecord> record;
    int64_t version = 0;
    int writes = 0;
  };

  State state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  void Put(const LeaderElectionRecord& record) {
    std::lock_guard<std::mutex> lock(mu_);
    state_.record = record;
    ++state_.version;
  }

  Result<std::pair<LeaderElectionRecord, int64_t>> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.record) return NotFound("lease not found");
    return std::make_pair(*state_.record, state_.version);
  }
  Result<int64_t> Create(const LeaderElectionRecord& record) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_.record) return Status(StatusCode::kAlreadyExists, "lease exists");
    state_.record = record;
    ++state_.writes;
    return ++state_.version;
  }
  Result<int64_t> Update(const LeaderElectionRecord& record, int64_t expected_version) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.record) return NotFound("lease not found");
    if (expected_version != state_.version) return Status(StatusCode::kConflict, "conflict");
    state_.record = record;
    ++state_.writes;
    return ++state_.version;
  }

 private:
  mutable std::mutex mu_;
  State state_;  // guarded by mu_
};

// One candidate's view of the FakeLeaseServer, with failure injection.
class FakeLeaseLock : public LeaseLock {
 public:
  explicit FakeLeaseLock(FakeLeaseServer& server) : server_(server) {}

  std::atomic<bool> unavailable{false};
  // The next Update finds that this holder wrote the lease just before it (a lost race).
  std::string steal_before_next_update;  // set before Run() starts

  Result<LeaderElectionRecord> Get() override {
    if (unavailable) return Unavailable("connection refused");
    ASSIGN_OR_RETURN(auto got, server_.Get());
    version_ = got.second;
    return got.first;
  }
  Status Create(const LeaderElectionRecord& record) override {
    if (unavailable) return Unavailable("connection refused");
    ASSIGN_OR_RETURN(version_, server_.Create(record));
    return Status::Ok();
  }
  Status Update(const LeaderElectionRecord& record) override {
    if (unavailable) return Unavailable("connection refused");
    if (!steal_before_next_update.empty()) {
      LeaderElectionRecord thief = record;
      thief.holder_identity = steal_before_next_update;
      server_.Put(thief);
      steal_before_next_update.clear();
    }
    ASSIGN_OR_RETURN(version_, server_.Update(record, version_));
    return Status::Ok();
  }
  std::string Describe() const override { return "ns/fake"; }

 private:
  FakeLeaseServer& server_;
  int64_t version_ = -1;
};

// A candidate running LeaderElector::Run on its own thread, recording its callbacks.
class Candidate {
 public:
  Candidate(std::string identity, FakeLeaseServer& server, FakeClock& clock) {
    auto lock = std::make_unique<FakeLeaseLock>(server);
    lock_ = lock.get();
    LeaderElectionOptions options;
    options.identity = std::move(identity);
    options.retry_jitter = 0.0;
    options.clock = &clock;
    options.callbacks.on_started_leading = [this] { ++started_; };
    options.callbacks.on_stopped_leading = [this] { ++stopped_; };
    options.callbacks.on_new_leader = [this](const std::string& id) {
      std::lock_guard<std::mutex> l(mu_);
      leaders_.push_back(id);
    };
    auto elector = LeaderElector::Create(std::move(lock), std::move(options));
    EXPECT_TRUE(elector.ok()) << elector.status();
    elector_ = std::move(elector).value();
  }
  ~Candidate() { StopAndJoin(); }

  void Start() {
    thread_ = std::thread([this] {
      elector_->Run();
      returned_ = true;
    });
  }
  void StopAndJoin() {
    elector_->Stop();
    Join();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  FakeLeaseLock& lock() { return *lock_; }
  LeaderElector& elector() { return *elector_; }
  int started() const { return started_.load(); }
  int stopped() const { return stopped_.load(); }
  bool returned() const { return returned_.load(); }
  std::vector<std::string> leaders() const {
    std::lock_guard<std::mutex> l(mu_);
    return leaders_;
  }

 private:
  FakeLeaseLock* lock_ = nullptr;
  std::unique_ptr<LeaderElector> elector_;
  std::thread thread_;
  std::atomic<int> started_{0};
  std::atomic<int> stopped_{0};
  std::atomic<bool> returned_{false};
  mutable std::mutex mu_;
  std::vector<std::string> leaders_;  // guarded by mu_
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  // Moves time in whole seconds and lets `waiting` candidates settle back into their waits
  // after every second, so each retry happens at the fake time it is due.
  void Step(int secs, size_t waiting) {
    for (int i = 0; i < secs; ++i) {
      clock_.Advance(seconds(1));
      ASSERT_TRUE(clock_.BlockUntilWaiters(waiting));
    }
  }

  FakeClock clock_;
  FakeLeaseServer server_;
};

TEST_F(LeaderElectionTest, AcquiresAFreeLeaseAndRenewsIt) {
  Candidate a("a", server_, clock_);
  const auto wall0 = clock_.WallNow();
  a.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));  // leading, waiting to renew
  EXPECT_EQ(a.started(), 1);
  EXPECT_TRUE(a.elector().IsLeader());
  EXPECT_EQ(a.elector().GetLeader(), "a");
  EXPECT_EQ(a.leaders(), std::vector<std::string>{"a"});
  auto record = *server_.state().record;
  EXPECT_EQ(record.holder_identity, "a");
  EXPECT_EQ(record.lease_duration_seconds, 15);
  EXPECT_EQ(record.lease_transitions, 0);
  EXPECT_EQ(record.acquire_time, wall0);
  EXPECT_EQ(record.renew_time, wall0);

  Step(2, 1);
  record = *server_.state().record;
  EXPECT_EQ(record.renew_time, wall0 + seconds(2));
  EXPECT_EQ(record.acquire_time, wall0);  // a renewal keeps the acquire time
  Step(2, 1);
  EXPECT_EQ(server_.state().record->renew_time, wall0 + seconds(4));
  EXPECT_EQ(server_.state().writes, 3);
  EXPECT_EQ(a.stopped(), 0);
}

TEST_F(LeaderElectionTest, StopsLeadingWhenItCannotRenewWithinTheDeadline) {
  Candidate a("a", server_, clock_);
  a.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  ASSERT_TRUE(a.elector().IsLeader());
  a.lock().unavailable = true;
  // Renew attempts at 2, 4, 6, 8 s fail but the deadline (10 s) has not passed.
  Step(8, 1);
  EXPECT_TRUE(a.elector().IsLeader());
  EXPECT_EQ(a.stopped(), 0);
  clock_.Advance(seconds(2));
  a.Join();  // Run returns after losing
  EXPECT_FALSE(a.elector().IsLeader());
  EXPECT_EQ(a.stopped(), 1);
  // Still held in the server: losing is not releasing.
  EXPECT_EQ(server_.state().record->holder_identity, "a");
}

TEST_F(LeaderElectionTest, ExpiryIsJudgedByTheFollowersOwnObservationNotTheRemoteTimestamp) {
  // A record renewed "an hour ago" by a clock we cannot trust.
  LeaderElectionRecord stale;
  stale.holder_identity = "gone";
  stale.lease_duration_seconds = 15;
  stale.acquire_time = clock_.WallNow() - std::chrono::hours(1);
  stale.renew_time = stale.acquire_time;
  stale.lease_transitions = 4;
  server_.Put(stale);

  Candidate b("b", server_, clock_);
  b.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_EQ(b.leaders(), std::vector<std::string>{"gone"});
  // Attempts at 0, 2, ..., 14 s: not expired by b's observation (first seen at 0 s).
  Step(15, 1);
  EXPECT_EQ(b.started(), 0);
  EXPECT_FALSE(b.elector().IsLeader());
  Step(1, 1);  // the attempt at 16 s
  EXPECT_EQ(b.started(), 1);
  auto record = *server_.state().record;
  EXPECT_EQ(record.holder_identity, "b");
  EXPECT_EQ(record.lease_transitions, 5);
  EXPECT_EQ(record.acquire_time, clock_.WallNow());
}

TEST_F(LeaderElectionTest, ARenewTimeOlderThanTheFollowersPreviousReadIsNotBelieved) {
  LeaderElectionRecord held;
  held.holder_identity = "x";
  held.lease_duration_seconds = 15;
  held.acquire_time = clock_.WallNow();
  held.renew_time = held.acquire_time;
  server_.Put(held);

  Candidate b("b", server_, clock_);
  b.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  Step(1, 1);
  // x renews, but its clock is an hour behind: the renewal happened after b's read at 0 s, so b
  // dates it at 0 s at the earliest, never an hour ago.
  held.renew_time = clock_.WallNow() - std::chrono::hours(1);
  server_.Put(held);
  Step(14, 1);  // b reads the change at 2 s; 14 s after its first read the lease still holds
  EXPECT_EQ(b.started(), 0);
  for (int waited = 0; b.started() == 0 && waited < 5; ++waited) Step(1, 1);
  EXPECT_EQ(b.started(), 1);
  EXPECT_GE(server_.state().record->acquire_time - held.acquire_time, seconds(15));
}

TEST_F(LeaderElectionTest, FollowerTakesOverOnlyAfterTheLeaderStopsRenewing) {
  Candidate a("a", server_, clock_);
  a.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  Candidate b("b", server_, clock_);
  b.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(2));
  // A live leader keeps the lease however long b waits.
  Step(60, 2);
  EXPECT_EQ(b.started(), 0);
  EXPECT_TRUE(a.elector().IsLeader());

  // a's connection dies: its record stops changing. Its last renewal was at 60 s, so it gives
  // up at 70 s (renew deadline), when its renew attempt fails.
  a.lock().unavailable = true;
  const auto last_renew = server_.state().record->renew_time;
  Step(9, 2);
  EXPECT_TRUE(a.elector().IsLeader());
  clock_.Advance(seconds(1));
  a.Join();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  for (int waited = 0; b.started() == 0 && waited < 20; ++waited) Step(1, 1);
  ASSERT_EQ(b.started(), 1);
  EXPECT_EQ(a.stopped(), 1);
  const auto takeover = server_.state().record->acquire_time - last_renew;
  // b dates the last renewal by its renewTime (it lies between b's reads) and tries again the
  // moment 15 s have passed since; the fake clock moves in whole seconds, hence the + 1.
  EXPECT_GE(takeover, seconds(15));
  EXPECT_LE(takeover, seconds(15 + 1));
  EXPECT_EQ(server_.state().record->lease_transitions, 1);
  EXPECT_EQ(b.leaders(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(LeaderElectionTest, ReleaseOnStopLetsTheFollowerTakeOverAtItsNextRetry) {
  Candidate a("a", server_, clock_);
  a.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  Candidate b("b", server_, clock_);
  b.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(2));
  Step(3, 2);

  a.StopAndJoin();
  EXPECT_EQ(a.stopped(), 1);
  auto released = *server_.state().record;
  EXPECT_EQ(released.holder_identity, "");
  EXPECT_EQ(released.lease_duration_seconds, 1);
  EXPECT_EQ(released.lease_transitions, 0);
  // b retries within one retry period and finds the lease free.
  Step(2, 1);
  EXPECT_EQ(b.started(), 1);
  EXPECT_EQ(server_.state().record->holder_identity, "b");
  EXPECT_EQ(server_.state().record->lease_transitions, 1);
}

TEST_F(LeaderElectionTest, LosingAWriteRaceMeansFollowing) {
  LeaderElectionRecord free_lease;
  free_lease.lease_duration_seconds = 1;
  server_.Put(free_lease);
  Candidate b("b", server_, clock_);
  b.lock().steal_before_next_update = "c";
  b.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_EQ(b.started(), 0);  // its conditional write hit a Conflict
  EXPECT_EQ(server_.state().record->holder_identity, "c");
  Step(2, 1);
  EXPECT_EQ(b.started(), 0);  // c's lease is fresh in b's eyes
  EXPECT_EQ(b.elector().GetLeader(), "c");
}

TEST_F(LeaderElectionTest, SeeingAnotherHolderWhileLeadingStopsAtOnce) {
  Candidate a("a", server_, clock_);
  a.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  LeaderElectionRecord usurper = *server_.state().record;
  usurper.holder_identity = "x";
  server_.Put(usurper);
  clock_.Advance(seconds(2));
  a.Join();
  EXPECT_EQ(a.stopped(), 1);
  EXPECT_EQ(server_.state().record->holder_identity, "x");  // not released: it is not ours
}

TEST_F(LeaderElectionTest, StopBeforeLeadingReturnsWithoutCallbacks) {
  LeaderElectionRecord held;
  held.holder_identity = "other";
  held.lease_duration_seconds = 15;
  server_.Put(held);
  Candidate b("b", server_, clock_);
  b.Start();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  b.StopAndJoin();
  EXPECT_EQ(b.started(), 0);
  EXPECT_EQ(b.stopped(), 0);
  EXPECT_EQ(server_.state().record->holder_identity, "other");
}

TEST(LeaderElectorCreateTest, RejectsInconsistentTimings) {
  FakeLeaseServer server;
  auto make = [&](LeaderElectionOptions o) {
    return LeaderElector::Create(std::make_unique<FakeLeaseLock>(server), std::move(o)).status();
  };
  LeaderElectionOptions ok;
  ok.identity = "a";
  EXPECT_TRUE(make(ok).ok());
  LeaderElectionOptions no_id = ok;
  no_id.identity = "";
  EXPECT_EQ(make(no_id).code(), StatusCode::kInvalidArgument);
  LeaderElectionOptions renew_too_long = ok;
  renew_too_long.renew_deadline = seconds(15);
  EXPECT_EQ(make(renew_too_long).code(), StatusCode::kInvalidArgument);
  LeaderElectionOptions retry_too_long = ok;
  retry_too_long.retry_period = seconds(9);  // 9 * 1.2 > 10
  EXPECT_EQ(make(retry_too_long).code(), StatusCode::kInvalidArgument);
  LeaderElectionOptions sub_second = ok;
  sub_second.lease_duration = milliseconds(900);
  sub_second.renew_deadline = milliseconds(500);
  sub_second.retry_period = milliseconds(100);
  EXPECT_EQ(make(sub_second).code(), StatusCode::kInvalidArgument);
}

// ---- MicroTime and the Lease object ----

TEST(MicroTimeTest, FormatsUtcWithMicroseconds) {
  const auto t = Clock::Wall::time_point(std::chrono::seconds(1704164645)) +
                 std::chrono::microseconds(123456) + std::chrono::nanoseconds(789);
  EXPECT_EQ(FormatMicroTime(t), "2024-01-02T03:04:05.123456Z");
  EXPECT_EQ(FormatMicroTime(Clock::Wall::time_point(std::chrono::seconds(1704164645))),
            "2024-01-02T03:04:05.000000Z");
}

TEST(MicroTimeTest, ParsesWhatTheServerSends) {
  const auto base = Clock::Wall::time_point(std::chrono::seconds(1704164645));
  EXPECT_EQ(*ParseMicroTime("2024-01-02T03:04:05.123456Z"),
            base + std::chrono::microseconds(123456));
  EXPECT_EQ(*ParseMicroTime("2024-01-02T03:04:05Z"), base);
  EXPECT_EQ(*ParseMicroTime("2024-01-02T05:04:05.5+02:00"), base + milliseconds(500));
  EXPECT_EQ(*ParseMicroTime("2024-01-01T22:04:05-05:00"), base);
  for (const char* bad : {"", "yesterday", "2024-01-02 03:04:05Z", "2024-01-02T03:04:05",
                          "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05Zjunk"}) {
    EXPECT_FALSE(ParseMicroTime(bad).ok()) << bad;
  }
}

TEST(KubeLeaseLockTest, CreatesReadsAndUpdatesConditionally) {
  auto transport = std::make_unique<FakeTransport>();
  FakeTransport& fake = *transport;
  Config config;
  config.server = "https://127.0.0.1:6443";
  ClientOptions client_options;
  client_options.max_read_retries = 0;
  auto client = std::move(Client::Create(config, std::move(transport), client_options)).value();
  const std::string path = "/apis/coordination.k8s.io/v1/namespaces/sys/leases";

  LeaderElectionRecord record;
  record.holder_identity = "pod-a";
  record.lease_duration_seconds = 15;
  record.acquire_time =
      Clock::Wall::time_point(std::chrono::seconds(1704164645)) + std::chrono::microseconds(42);
  record.renew_time = record.acquire_time + seconds(2);
  record.lease_transitions = 3;

  Json server_lease = {{"apiVersion", "coordination.k8s.io/v1"},
                       {"kind", "Lease"},
                       {"metadata",
                        {{"name", "sluice"},
                         {"namespace", "sys"},
                         {"resourceVersion", "77"},
                         {"labels", {{"keep", "me"}}}}},
                       {"spec", KubeLeaseLock::SpecFromRecord(record)}};
  server_lease["spec"]["preferredHolder"] = "someone";
  fake.Expect("GET", path + "/sluice", Reply(404, StatusObject(404, "NotFound", "not found")))
      .Expect("POST", path, Reply(201, server_lease))
      .Expect("GET", path + "/sluice", Reply(200, server_lease))
      .Expect("PUT", path + "/sluice", Reply(200, server_lease));

  KubeLeaseLock lock(*client, "sys", "sluice");
  EXPECT_EQ(lock.Get().status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(lock.Create(record).ok());
  auto got = lock.Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, record);
  LeaderElectionRecord renewed = record;
  renewed.renew_time += seconds(2);
  ASSERT_TRUE(lock.Update(renewed).ok());

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 4u);
  const Json created = Json::parse(requests[1].body);
  EXPECT_EQ(created["spec"]["holderIdentity"], "pod-a");
  EXPECT_EQ(created["spec"]["acquireTime"], "2024-01-02T03:04:05.000042Z");
  EXPECT_EQ(created["spec"]["renewTime"], "2024-01-02T03:04:07.000042Z");
  EXPECT_EQ(created["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ(created["spec"]["leaseTransitions"], 3);
  const Json updated = Json::parse(requests[3].body);
  // Conditional on the version read, and what the lock does not own is kept.
  EXPECT_EQ(updated["metadata"]["resourceVersion"], "77");
  EXPECT_EQ(updated["metadata"]["labels"]["keep"], "me");
  EXPECT_EQ(updated["spec"]["preferredHolder"], "someone");
  EXPECT_EQ(updated["spec"]["renewTime"], "2024-01-02T03:04:09.000042Z");
  EXPECT_TRUE(fake.unexpected().empty());
}

}  // namespace
}  // namespace sluice::kube
