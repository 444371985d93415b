// The pure parts of sluice-procnode: pod address allocation, probe results over time, how a pod's
// container becomes argv and env, the reported PodStatus, and the restart backoff.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "e2e/procnode/launch.h"
#include "e2e/procnode/pod_network.h"
#include "e2e/procnode/pod_status.h"
#include "e2e/procnode/probe.h"

namespace sluice::procnode {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(PodNetwork, ParsesAndRejectsCidrs) {
  auto c = ParseCidr("10.244.0.0/16");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network, 0x0af40000u);
  EXPECT_EQ(c->prefix, 16);
  EXPECT_EQ(c->ToString(), "10.244.0.0/16");
  EXPECT_TRUE(c->Contains(*ParseIpv4("10.244.255.1")));
  EXPECT_FALSE(c->Contains(*ParseIpv4("10.245.0.1")));
  EXPECT_FALSE(ParseCidr("10.244.0.0").ok());
  EXPECT_FALSE(ParseCidr("10.244.0.1/16").ok());  // host bits
  EXPECT_FALSE(ParseCidr("10.244.0.0/25").ok());  // no room
  EXPECT_FALSE(ParseCidr("10.244.0.0/x").ok());
  EXPECT_FALSE(ParseCidr("300.0.0.0/16").ok());
}

TEST(IpAllocator, NodeTakesFirstAddressPodsStartAtSecondSubnet) {
  IpAllocator a(*ParseCidr("10.244.0.0/16"));
  EXPECT_EQ(FormatIpv4(a.node_address()), "10.244.0.1");
  EXPECT_EQ(FormatIpv4(*a.Allocate("a")), "10.244.1.1");
  EXPECT_EQ(FormatIpv4(*a.Allocate("b")), "10.244.1.2");
}

TEST(IpAllocator, SameKeySameAddressUntilReleased) {
  IpAllocator a(*ParseCidr("10.244.0.0/16"));
  const uint32_t first = *a.Allocate("pod-1");
  EXPECT_EQ(*a.Allocate("pod-1"), first);
  EXPECT_EQ(a.allocated(), 1u);
  a.Release("pod-1");
  a.Release("unknown");
  EXPECT_EQ(a.allocated(), 0u);
  // A released address is not handed out again right away.
  EXPECT_NE(*a.Allocate("pod-2"), first);
}

TEST(IpAllocator, SkipsNetworkAndBroadcastOctetsAndWrapsAround) {
  IpAllocator a(*ParseCidr("10.9.0.0/23"));  // pods only in 10.9.1.1 .. 10.9.1.254
  std::set<uint32_t> seen;
  for (int i = 0; i < 254; ++i) {
    auto ip = a.Allocate("p" + std::to_string(i));
    ASSERT_TRUE(ip.ok()) << i << ": " << ip.status();
    const uint32_t last = *ip & 0xff;
    EXPECT_NE(last, 0u);
    EXPECT_NE(last, 255u);
    EXPECT_EQ((*ip >> 8) & 0xff, 1u) << FormatIpv4(*ip);
    EXPECT_TRUE(seen.insert(*ip).second) << "duplicate " << FormatIpv4(*ip);
  }
  auto full = a.Allocate("one-too-many");
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  a.Release("p7");
  auto again = a.Allocate("late");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(FormatIpv4(*again), "10.9.1.8");
}

json ServerContainer() {
  return json::parse(R"({
    "name": "server", "image": "sluice:dev",
    "command": ["sluice-server"], "args": ["--model-name=fraud", "--http-port=8080"],
    "ports": [{"name": "http", "containerPort": 8080}, {"name": "grpc", "containerPort": 9000}],
    "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"},
                       "periodSeconds": 2, "failureThreshold": 2},
    "livenessProbe": {"httpGet": {"path": "v2/health/live", "port": 8080}},
    "startupProbe": {"tcpSocket": {"port": 8080}}
  })");
}

TEST(Probe, ParsesHttpGetWithDefaultsAndNamedPorts) {
  const json c = ServerContainer();
  auto readiness = ParseProbe(c, ProbeKind::kReadiness);
  ASSERT_TRUE(readiness.ok()) << readiness.status();
  ASSERT_TRUE(readiness->has_value());
  EXPECT_EQ((*readiness)->path, "/v2/health/ready");
  EXPECT_EQ((*readiness)->port, 8080);
  EXPECT_EQ((*readiness)->period, 2s);
  EXPECT_EQ((*readiness)->failure_threshold, 2);
  EXPECT_EQ((*readiness)->success_threshold, 1);
  EXPECT_EQ((*readiness)->timeout, 1s);
  auto liveness = ParseProbe(c, ProbeKind::kLiveness);
  ASSERT_TRUE(liveness.ok() && liveness->has_value());
  EXPECT_EQ((*liveness)->path, "/v2/health/live");
  EXPECT_EQ((*liveness)->period, 10s);
  EXPECT_EQ((*liveness)->failure_threshold, 3);
  // Not an httpGet probe: refused rather than silently skipped.
  EXPECT_EQ(ParseProbe(c, ProbeKind::kStartup).status().code(), StatusCode::kUnimplemented);
  json none = c;
  none.erase("readinessProbe");
  auto absent = ParseProbe(none, ProbeKind::kReadiness);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
  json bad = c;
  bad["readinessProbe"]["httpGet"]["port"] = "metrics";
  EXPECT_THAT(ParseProbe(bad, ProbeKind::kReadiness).status().message(), HasSubstr("metrics"));
}

TEST(ProbeTracker, ThresholdsDecideAndPeriodsSchedule) {
  ProbeSpec spec;
  spec.initial_delay = 3s;
  spec.period = 2s;
  spec.success_threshold = 2;
  spec.failure_threshold = 3;
  const Clock::Steady::time_point t0{};
  ProbeTracker p(spec, t0);
  EXPECT_FALSE(p.Due(t0 + 2s));
  EXPECT_TRUE(p.Due(t0 + 3s));
  EXPECT_EQ(p.Record(t0 + 3s, true), ProbeTracker::Result::kUnknown);  // 1 of 2
  EXPECT_FALSE(p.Due(t0 + 4s));
  EXPECT_TRUE(p.Due(t0 + 5s));
  EXPECT_EQ(p.Record(t0 + 5s, true), ProbeTracker::Result::kSuccess);
  // Two failures are not enough to flip a passing probe; the third is.
  EXPECT_EQ(p.Record(t0 + 7s, false), ProbeTracker::Result::kSuccess);
  EXPECT_EQ(p.Record(t0 + 9s, false), ProbeTracker::Result::kSuccess);
  EXPECT_EQ(p.consecutive_failures(), 2);
  EXPECT_EQ(p.Record(t0 + 11s, false), ProbeTracker::Result::kFailure);
  // A success in between resets the run.
  EXPECT_EQ(p.Record(t0 + 13s, true), ProbeTracker::Result::kFailure);
  EXPECT_EQ(p.consecutive_failures(), 0);
  EXPECT_EQ(p.Record(t0 + 15s, false), ProbeTracker::Result::kFailure);
  EXPECT_EQ(p.Record(t0 + 17s, true), ProbeTracker::Result::kFailure);
  EXPECT_EQ(p.Record(t0 + 19s, true), ProbeTracker::Result::kSuccess);
  EXPECT_EQ(p.next_attempt(), t0 + 21s);
}

class LaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("procnode-launch-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_ / "a");
    std::filesystem::create_directories(dir_ / "b");
    Touch(dir_ / "b" / "sluice-server", 0755);
    Touch(dir_ / "a" / "sluice-router", 0644);  // not executable: skipped
    Touch(dir_ / "b" / "sluice-router", 0755);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static void Touch(const std::filesystem::path& p, mode_t mode) {
    std::ofstream(p) << "#!/bin/sh\n";
    chmod(p.c_str(), mode);
  }
  std::vector<std::string> Dirs() const { return {(dir_ / "a").string(), (dir_ / "b").string()}; }

  json Pod() const {
    json pod = {
        {"metadata", {{"name", "fraud-v1-abc"}, {"namespace", "ml"}, {"uid", "u-1"}}},
        {"spec", {{"nodeName", "proc-0"}, {"containers", json::array({ServerContainer()})}}}};
    pod["spec"]["containers"][0]["env"] = json::parse(R"js([
      {"name": "SLUICE_FAULT_ERROR_PERCENT", "value": "20"},
      {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
      {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
      {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
      {"name": "GREETING", "value": "pod $(POD_NAME) at $(POD_IP), $$(POD_IP) and $(NOPE)"}
    ])js");
    pod["spec"]["containers"][0]["args"].push_back("--label=$(POD_NAMESPACE)");
    return pod;
  }

  std::filesystem::path dir_;
};

TEST_F(LaunchTest, ResolvesCommandsByBaseNameInOrder) {
  auto server = ResolveBinary("/usr/local/bin/sluice-server", Dirs());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(*server, (dir_ / "b" / "sluice-server").string());
  auto router = ResolveBinary("sluice-router", Dirs());
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_EQ(*router, (dir_ / "b" / "sluice-router").string());
  auto missing = ResolveBinary("redis-server", Dirs());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr((dir_ / "a").string()));
}

TEST_F(LaunchTest, BuildsArgvAndEnvironmentLikeTheKubelet) {
  LaunchOptions options;
  options.bin_dirs = Dirs();
  options.pod_kubeconfig = "/tmp/kubeconfig";
  options.base_env = {"PATH=/usr/bin", "KUBERNETES_SERVICE_HOST=10.0.0.1", "POD_IP=stale"};
  auto launch = BuildLaunch(Pod(), "10.244.1.7", "10.244.0.1", options);
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->binary, (dir_ / "b" / "sluice-server").string());
  EXPECT_THAT(launch->argv, ElementsAre(launch->binary, "--model-name=fraud", "--http-port=8080",
                                        "--label=ml", "--http-address=10.244.1.7"));
  EXPECT_THAT(launch->env, Contains("SLUICE_FAULT_ERROR_PERCENT=20"));
  EXPECT_THAT(launch->env, Contains("POD_NAME=fraud-v1-abc"));
  EXPECT_THAT(launch->env, Contains("POD_NAMESPACE=ml"));
  EXPECT_THAT(launch->env, Contains("POD_IP=10.244.1.7"));
  EXPECT_THAT(launch->env,
              Contains("GREETING=pod fraud-v1-abc at 10.244.1.7, $(POD_IP) and $(NOPE)"));
  EXPECT_THAT(launch->env, Contains("KUBECONFIG=/tmp/kubeconfig"));
  EXPECT_THAT(launch->env, Contains("PATH=/usr/bin"));
  EXPECT_THAT(launch->env, Contains("HOSTNAME=fraud-v1-abc"));
  for (const auto& e : launch->env) EXPECT_THAT(e, ::testing::Not(HasSubstr("KUBERNETES_SERVICE")));
}

TEST_F(LaunchTest, RefusesWhatCannotRunHere) {
  LaunchOptions options;
  options.bin_dirs = Dirs();
  json pod = Pod();
  pod["spec"]["containers"][0]["env"].push_back(
      {{"name", "PASSWORD"}, {"valueFrom", {{"secretKeyRef", {{"name", "s"}, {"key", "k"}}}}}});
  EXPECT_EQ(BuildLaunch(pod, "10.244.1.7", "10.244.0.1", options).status().code(),
            StatusCode::kUnimplemented);
  pod = Pod();
  pod["spec"]["containers"][0].erase("command");
  EXPECT_EQ(BuildLaunch(pod, "10.244.1.7", "10.244.0.1", options).status().code(),
            StatusCode::kInvalidArgument);
  pod = Pod();
  pod["spec"]["containers"].push_back(pod["spec"]["containers"][0]);
  EXPECT_EQ(BuildLaunch(pod, "10.244.1.7", "10.244.0.1", options).status().code(),
            StatusCode::kUnimplemented);
  pod = Pod();
  pod["spec"]["containers"][0]["command"] = json::array({"no-such-binary"});
  EXPECT_EQ(BuildLaunch(pod, "10.244.1.7", "10.244.0.1", options).status().code(),
            StatusCode::kNotFound);
}

TEST_F(LaunchTest, ReadsSecretKeysAndMapsEmptyDirMounts) {
  LaunchOptions options;
  options.bin_dirs = Dirs();
  options.volumes_dir = (dir_ / "volumes").string();
  std::vector<std::string> asked;
  options.secret_value = [&](const std::string& name, const std::string& key) -> Result<std::string> {
    asked.push_back(name + "/" + key);
    if (key == "AWS_ACCESS_KEY_ID") return std::string("AKID");
    return NotFound("Secret " + name + " has no key " + key);
  };
  json pod = Pod();
  json& c = pod["spec"]["containers"][0];
  c["env"].push_back({{"name", "AWS_ACCESS_KEY_ID"},
                      {"valueFrom", {{"secretKeyRef", {{"name", "s3"}, {"key", "AWS_ACCESS_KEY_ID"}, {"optional", true}}}}}});
  c["env"].push_back({{"name", "AWS_SESSION_TOKEN"},
                      {"valueFrom", {{"secretKeyRef", {{"name", "s3"}, {"key", "AWS_SESSION_TOKEN"}, {"optional", true}}}}}});
  c["env"].push_back({{"name", "CACHE"}, {"value", "/var/lib/sluice/model/cache"}});
  c["args"].push_back("--model-dir=/var/lib/sluice/model");
  c["args"].push_back("--other=/var/lib/sluice/modelx");  // not under the mount
  c["volumeMounts"] = json::array({{{"name", "model"}, {"mountPath", "/var/lib/sluice/model"}}});
  pod["spec"]["volumes"] = json::array({{{"name", "model"}, {"emptyDir", json::object()}}});
  auto launch = BuildLaunch(pod, "10.244.1.7", "10.244.0.1", options);
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_THAT(asked, ElementsAre("s3/AWS_ACCESS_KEY_ID", "s3/AWS_SESSION_TOKEN"));
  EXPECT_THAT(launch->env, Contains("AWS_ACCESS_KEY_ID=AKID"));
  for (const auto& e : launch->env) EXPECT_THAT(e, ::testing::Not(HasSubstr("AWS_SESSION_TOKEN")));
  const std::string volume = (dir_ / "volumes" / "model").string();
  EXPECT_TRUE(std::filesystem::is_directory(volume));
  EXPECT_THAT(launch->argv, Contains("--model-dir=" + volume));
  EXPECT_THAT(launch->argv, Contains("--other=/var/lib/sluice/modelx"));
  EXPECT_THAT(launch->env, Contains("CACHE=" + volume + "/cache"));

  // A required key that is missing stops the launch, naming it.
  c["env"].push_back({{"name", "SECRET"},
                      {"valueFrom", {{"secretKeyRef", {{"name", "s3"}, {"key", "AWS_SECRET_ACCESS_KEY"}}}}}});
  auto missing = BuildLaunch(pod, "10.244.1.7", "10.244.0.1", options);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("AWS_SECRET_ACCESS_KEY"));
}

TEST(PodStatus, ReportsRunningReadyContainer) {
  PodState s;
  s.phase = "Running";
  s.pod_ip = "10.244.1.3";
  s.host_ip = "10.244.0.1";
  s.start_time = Clock::Wall::time_point(std::chrono::seconds(1700000000));
  s.container_name = "server";
  s.image = "sluice:dev";
  s.container = PodState::Container::kRunning;
  s.running_since = s.start_time + 1s;
  s.pid = 4242;
  s.started = true;
  s.ready = true;
  s.ready_changed_at = s.start_time + 3s;
  s.restart_count = 2;
  s.last_termination =
      Termination{137, 9, "Error", s.start_time, s.start_time + 1s, "cannot load the model\n"};
  const json st = BuildPodStatus(s);
  EXPECT_EQ(st["containerStatuses"][0]["lastState"]["terminated"]["message"],
            "cannot load the model\n");
  EXPECT_EQ(st["phase"], "Running");
  EXPECT_EQ(st["podIP"], "10.244.1.3");
  EXPECT_EQ(st["podIPs"], json::parse(R"([{"ip":"10.244.1.3"}])"));
  EXPECT_EQ(st["hostIP"], "10.244.0.1");
  EXPECT_EQ(st["startTime"], "2023-11-14T22:13:20Z");
  const json& cs = st["containerStatuses"][0];
  EXPECT_EQ(cs["name"], "server");
  EXPECT_EQ(cs["ready"], true);
  EXPECT_EQ(cs["started"], true);
  EXPECT_EQ(cs["restartCount"], 2);
  EXPECT_EQ(cs["containerID"], "proc://4242");
  EXPECT_EQ(cs["state"]["running"]["startedAt"], "2023-11-14T22:13:21Z");
  EXPECT_EQ(cs["lastState"]["terminated"]["exitCode"], 137);
  EXPECT_EQ(cs["lastState"]["terminated"]["signal"], 9);
  bool saw_ready = false;
  for (const auto& c : st["conditions"]) {
    if (c["type"] == "Ready") {
      saw_ready = true;
      EXPECT_EQ(c["status"], "True");
      EXPECT_EQ(c["lastTransitionTime"], "2023-11-14T22:13:23Z");
    }
  }
  EXPECT_TRUE(saw_ready);
  EXPECT_EQ(BuildPodStatus(s), st) << "equal states must give equal status";
  s.ready = false;
  EXPECT_NE(BuildPodStatus(s), st);
}

TEST(PodStatus, WaitingContainerHasNoPodIpBeforeTheSandbox) {
  PodState s;
  s.host_ip = "10.244.0.1";
  s.container_name = "server";
  s.waiting_reason = "CrashLoopBackOff";
  s.waiting_message = "back-off";
  const json st = BuildPodStatus(s);
  EXPECT_EQ(st["phase"], "Pending");
  EXPECT_FALSE(st.contains("podIP"));
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["reason"], "CrashLoopBackOff");
  EXPECT_EQ(st["containerStatuses"][0]["started"], false);
}

TEST(RestartBackoff, DoublesUpToMaxAndResetsAfterALongRun) {
  RestartBackoff b(1000ms, 5000ms, 60000ms);
  EXPECT_EQ(b.Next(10ms), 1000ms);
  EXPECT_EQ(b.Next(10ms), 2000ms);
  EXPECT_EQ(b.Next(10ms), 4000ms);
  EXPECT_EQ(b.Next(10ms), 5000ms);
  EXPECT_EQ(b.Next(10ms), 5000ms);
  EXPECT_EQ(b.Next(60000ms), 1000ms);
}

TEST(ExpandReferences, FollowsKubeletRules) {
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"A", "1"}, {"B", "two"}, {"A", "3"}};
  EXPECT_EQ(ExpandReferences("$(A)-$(B)", vars), "3-two");
  EXPECT_EQ(ExpandReferences("$$(A) $(C) $( $", vars), "$(A) $(C) $( $");
}

}  // namespace
}  // namespace sluice::procnode
