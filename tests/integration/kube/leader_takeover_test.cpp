// Leader election between separate processes (leader_candidate) on one Lease of a real API
// server, with the default timings (lease 15 s, renew deadline 10 s, retry 2 s): a killed
// leader is replaced once its lease expires by the follower's own observation, and a leader
// that shuts down gracefully releases the lease so the follower takes over at its next retry.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "tests/integration/kube/client_it_util.h"
#include "lib/kube/leader_election.h"
#include "tests/support/api_server.h"
#include "tests/support/process.h"

#ifndef SLUICE_LEADER_CANDIDATE
#error "SLUICE_LEADER_CANDIDATE must name the leader_candidate binary"
#endif

namespace sluice::kube {
namespace {

using sluice::testing::Subprocess;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kLease[] = "sluice-operator";

// The CLOCK_MONOTONIC time (ns) at which `candidate` printed "<event> <who>", if it did.
std::optional<int64_t> EventTime(const Subprocess& candidate, const std::string& event,
                                 const std::string& who) {
  std::ifstream log(candidate.log_path());
  std::string line;
  while (std::getline(log, line)) {
    std::istringstream fields(line);
    long long ns = 0;
    std::string e;
    std::string w;
    if (fields >> ns >> e >> w && e == event && w == who) return ns;
  }
  return std::nullopt;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Seconds(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

class LeaderTakeoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = it::AdminClient();
    ASSERT_NE(admin_, nullptr);
    ns_ = it::FreshNamespace(*admin_, "leader");
  }

  std::unique_ptr<Subprocess> Spawn(const std::string& identity) {
    sluice::testing::SpawnOptions options;
    options.argv = {SLUICE_LEADER_CANDIDATE, sluice::testing::SharedApiServer().kubeconfig_path(),
                    ns_, kLease, identity};
    options.log_path =
        sluice::testing::SharedApiServer().temp_dir() + "/candidate-" + identity + ".log";
    auto spawned = Subprocess::Spawn(options);
    EXPECT_TRUE(spawned.ok()) << spawned.status();
    return spawned.ok() ? std::move(spawned).value() : nullptr;
  }

  // Waits for "<event> <who>" in the candidate's output.
  std::optional<int64_t> WaitForEvent(const Subprocess& candidate, const std::string& event,
                                      const std::string& who, seconds timeout) {
    std::optional<int64_t> at;
    it::WaitFor([&] { return (at = EventTime(candidate, event, who)).has_value(); }, timeout);
    if (!at)
      ADD_FAILURE() << "no \"" << event << " " << who << "\" in " << candidate.log_path() << ":\n"
                    << sluice::testing::TailFile(candidate.log_path());
    return at;
  }

  LeaderElectionRecord Record() {
    auto lease = admin_->Get(resources::kLeases, ns_, kLease);
    EXPECT_TRUE(lease.ok()) << lease.status();
    if (!lease.ok()) return {};
    auto record = KubeLeaseLock::RecordFromLease(*lease);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? *record : LeaderElectionRecord{};
  }

  std::unique_ptr<Client> admin_;
  std::string ns_;
};

TEST_F(LeaderTakeoverTest, KilledLeaderIsReplacedAfterExpiryAndAReleasedLeaseAtOnce) {
  auto a = Spawn("cand-a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(WaitForEvent(*a, "STARTED_LEADING", "cand-a", seconds(60)));
  auto b = Spawn("cand-b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitForEvent(*b, "NEW_LEADER", "cand-a", seconds(60)));
  // Let b watch a few renewals, so it is a's renewals (not b's first sighting) that b times.
  const auto first_renew = Record().renew_time;
  ASSERT_TRUE(
      it::WaitFor([&] { return Record().renew_time >= first_renew + seconds(4); }, seconds(30)));
  EXPECT_EQ(Record().holder_identity, "cand-a");

  // Crash: SIGKILL, no release. b must wait for the lease to expire by its own observation.
  const int64_t killed_at = NowNs();
  ASSERT_TRUE(a->Signal(SIGKILL).ok());
  ASSERT_TRUE(a->Wait(seconds(10)).ok());
  auto b_leads = WaitForEvent(*b, "STARTED_LEADING", "cand-b", seconds(60));
  ASSERT_TRUE(b_leads);
  const double crash_takeover = Seconds(*b_leads - killed_at);
  // b dates a's last renewal by its renewTime (same host, same clock) and tries again the moment
  // 15 s have passed since it: the takeover comes within the lease duration of the kill (a
  // renewed at most 2.4 s before it), plus the latency of b's requests on a loaded machine.
  EXPECT_GE(crash_takeover, 10.0);  // far above a takeover that ignored the live lease (< 2.4 s)
  EXPECT_LE(crash_takeover, 15 + 0.5);
  auto record = Record();
  EXPECT_EQ(record.holder_identity, "cand-b");
  EXPECT_EQ(record.lease_transitions, 1);

  // Graceful: b releases on SIGTERM, c takes over at its next retry.
  auto c = Spawn("cand-c");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(WaitForEvent(*c, "NEW_LEADER", "cand-b", seconds(60)));
  const int64_t terminated_at = NowNs();
  ASSERT_TRUE(b->Signal(SIGTERM).ok());
  auto c_leads = WaitForEvent(*c, "STARTED_LEADING", "cand-c", seconds(30));
  ASSERT_TRUE(c_leads);
  const double release_takeover = Seconds(*c_leads - terminated_at);
  // One retry period with jitter (2.4 s) and a margin for the requests on a loaded machine.
  EXPECT_LE(release_takeover, 2.4 + 1.5);
  auto b_exit = b->Wait(seconds(10));
  ASSERT_TRUE(b_exit.ok()) << b_exit.status();
  EXPECT_TRUE(b_exit->success()) << b_exit->ToString();
  EXPECT_TRUE(EventTime(*b, "STOPPED_LEADING", "cand-b").has_value());
  record = Record();
  EXPECT_EQ(record.holder_identity, "cand-c");
  EXPECT_EQ(record.lease_transitions, 2);
  EXPECT_EQ(record.lease_duration_seconds, 15);

  std::printf(
      "[leader] kill -9 of the leader -> follower leading after %.2f s (lease 15 s, retry 2 s)\n"
      "[leader] SIGTERM (release) of the leader -> follower leading after %.2f s\n",
      crash_takeover, release_takeover);
  ASSERT_TRUE(c->Stop(seconds(10)).ok());
}

}  // namespace
}  // namespace sluice::kube
