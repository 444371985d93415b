// The owned objects as intents: security settings, probes, drain, arguments, labels, owner
// references, and the subset comparison that keeps reconciles at rest free of writes.

#include "controllers/modeldeployment/resources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "controllers/rollout/revision.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;

ModelDeploymentObject Owner() {
  ModelDeploymentObject o;
  o.md.metadata = {{"name", "fraud"}, {"namespace", "ml"}};
  o.md.spec.model.uri = "file:///models/fraud/fraud.json";
  o.md.spec.model.format = "xgboost-json";
  o.md.spec.model.version = "3";
  RuntimeSpec runtime;
  runtime.resources = json{{"requests", {{"cpu", "500m"}}}, {"limits", {{"memory", "512Mi"}}}};
  runtime.batching = BatchingSpec{64, "2ms", 2048};
  runtime.cache = CacheSpec{true, 500, "30s"};
  runtime.env = json::array({{{"name", "OMP_NUM_THREADS"}, {"value", "1"}}});
  runtime.args = std::vector<std::string>{"--log-level=debug"};
  o.md.spec.runtime = runtime;
  o.uid = "1234-uid";
  return o;
}

// The revision Deployment of a spec the operator can build.
json Revision(const ModelDeploymentObject& owner, const ModelDeploymentSpec& spec,
              int32_t replicas) {
  auto d = RevisionDeployment(owner, "fraud-abcdefghjk", spec, replicas, {});
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : json();
}

const json& Container(const json& deployment) {
  return deployment["spec"]["template"]["spec"]["containers"][0];
}

// Without --server-image and spec.runtime.image, pods run the data-plane image of this version of
// the project: the name e2e/images/build.sh gives the image it builds
// ($SLUICE_IMAGE_REPO/sluice-dataplane:$(sluice_version)).
TEST(ResourcesTest, DefaultServerImageIsThisVersionsDataPlaneImage) {
  const std::string image = "ghcr.io/sluice-dev/sluice-dataplane:" SLUICE_PROJECT_VERSION;
  EXPECT_EQ(DefaultServerImage(), image);
  EXPECT_EQ(WorkloadOptions{}.server_image, image);
  const auto owner = Owner();
  ASSERT_FALSE(owner.md.spec.runtime->image.has_value());
  EXPECT_EQ(Container(Revision(owner, owner.md.spec, 1))["image"], image);

  auto read = [](const std::string& path) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/" + path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_THAT(
      read("e2e/images/lib.sh"),
      ::testing::HasSubstr("SLUICE_IMAGE_REPO=\"${SLUICE_IMAGE_REPO:-ghcr.io/sluice-dev}\""));
  EXPECT_THAT(read("e2e/images/build.sh"),
              ::testing::HasSubstr("build_image sluice-dataplane dataplane/Dockerfile"));
}

TEST(ResourcesTest, RevisionDeploymentIsLockedDown) {
  const auto owner = Owner();
  const json d = Revision(owner, owner.md.spec, 3);
  const json& c = Container(d);
  EXPECT_EQ(c["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  const json& pod = d["spec"]["template"]["spec"];
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  // A read-only root still needs somewhere to write downloads.
  EXPECT_EQ(c["volumeMounts"][0]["mountPath"], "/tmp");
}

TEST(ResourcesTest, RevisionDeploymentProbesDrainAndResources) {
  const auto owner = Owner();
  const json d = Revision(owner, owner.md.spec, 3);
  const json& c = Container(d);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], "http");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
  EXPECT_GT(c["lifecycle"]["preStop"]["sleep"]["seconds"].get<int>(), 0);
  EXPECT_GT(d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].get<int>(),
            c["lifecycle"]["preStop"]["sleep"]["seconds"].get<int>());
  EXPECT_EQ(c["resources"]["requests"]["cpu"], "500m");
  EXPECT_EQ(c["resources"]["limits"]["memory"], "512Mi");
  EXPECT_EQ(c["env"][0]["name"], "OMP_NUM_THREADS");
  EXPECT_EQ(d["spec"]["replicas"], 3);
}

TEST(ResourcesTest, ServerCommandSaysWhatTheSpecSaysAndUserArgsLast) {
  const auto owner = Owner();
  auto command = ServerCommandFor("fraud", owner.md.spec, {});
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->model_name, "fraud");
  EXPECT_EQ(command->model_uri, "file:///models/fraud/fraud.json");
  EXPECT_EQ(command->model_format, "xgboost-json");
  EXPECT_EQ(command->model_version, "3");
  EXPECT_EQ(command->batching, true);
  EXPECT_EQ(command->max_batch_size, 64);
  EXPECT_EQ(command->max_queue_delay, std::chrono::milliseconds(2));
  EXPECT_EQ(command->max_queue_size, 2048);
  EXPECT_EQ(command->cache, true);
  EXPECT_EQ(command->cache_capacity, 500);
  EXPECT_EQ(command->cache_ttl, std::chrono::seconds(30));
  EXPECT_EQ(command->http_port, WorkloadOptions{}.server_http_port);
  EXPECT_EQ(command->grpc_port, WorkloadOptions{}.server_grpc_port);
  // The container runs exactly that command line, which sluice-server reads back unchanged.
  const auto args =
      Container(Revision(owner, owner.md.spec, 1))["args"].get<std::vector<std::string>>();
  EXPECT_EQ(args, command->ToArgs());
  EXPECT_EQ(args.back(), "--log-level=debug");
  auto parsed = api::ServerCommand::Parse(args);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  api::ServerCommand without_extra = *command;
  without_extra.extra_args.clear();
  without_extra.log_level = "debug";
  EXPECT_EQ(*parsed, without_extra);

  // The digest: bare hex in the spec, one definition of how the flag writes it.
  ModelDeploymentSpec pinned = owner.md.spec;
  pinned.model.sha256 = std::string(64, 'a');
  auto with_digest = ServerCommandFor("fraud", pinned, {});
  ASSERT_TRUE(with_digest.ok());
  EXPECT_EQ(with_digest->model_sha256, std::string(64, 'a'));
  EXPECT_EQ(api::ServerCommand::Parse(with_digest->ToArgs())->model_sha256, pinned.model.sha256);

  // No batching or cache in the spec: none on the server; nothing else is invented.
  ModelDeploymentSpec bare;
  bare.model.uri = "https://models.example.com/m.ubj";
  auto minimal = ServerCommandFor("m", bare, {});
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->batching, false);
  EXPECT_EQ(minimal->cache, false);
  EXPECT_FALSE(minimal->model_format.has_value());
  EXPECT_FALSE(minimal->max_batch_size.has_value());
  EXPECT_FALSE(minimal->max_queue_delay.has_value());
  EXPECT_FALSE(minimal->cache_capacity.has_value());
  EXPECT_FALSE(minimal->cache_ttl.has_value());

  // A disabled cache passes no cache settings.
  ModelDeploymentSpec disabled = owner.md.spec;
  disabled.runtime->cache->enabled = false;
  auto off = ServerCommandFor("m", disabled, {});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->cache, false);
  EXPECT_FALSE(off->cache_capacity.has_value());

  // A duration the server cannot read is the operator's error, not a crash-looping pod.
  ModelDeploymentSpec bad = owner.md.spec;
  bad.runtime->batching->max_queue_delay = "soon";
  auto refused = RevisionDeployment(owner, "fraud-abcdefghjk", bad, 1, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("maxQueueDelay"), std::string::npos);
}

TEST(ResourcesTest, LabelsSelectorsAndOwnerReference) {
  const auto owner = Owner();
  const json d = Revision(owner, owner.md.spec, 1);
  EXPECT_EQ(d["metadata"]["name"], "fraud-abcdefghjk");
  EXPECT_EQ(d["metadata"]["namespace"], "ml");
  EXPECT_EQ(d["metadata"]["labels"][api::kLabelModelDeployment], "fraud");
  EXPECT_EQ(d["metadata"]["labels"][api::kLabelRevision], "fraud-abcdefghjk");
  EXPECT_EQ(d["metadata"]["labels"][api::kLabelModelVersion], "3");
  EXPECT_EQ(d["metadata"]["labels"][api::kLabelManagedBy], "sluice-operator");
  EXPECT_EQ(
      d["spec"]["selector"]["matchLabels"],
      (json{{api::kLabelModelDeployment, "fraud"}, {api::kLabelRevision, "fraud-abcdefghjk"}}));
  // Pods carry the labels the scale subresource's selector and the revision Service select on.
  const json& pod_labels = d["spec"]["template"]["metadata"]["labels"];
  EXPECT_EQ(pod_labels[api::kLabelComponent], "server");
  EXPECT_EQ(ServerPodSelector("fraud"),
            "sluice.dev/modeldeployment=fraud,app.kubernetes.io/component=server");
  const json s = RevisionService(owner, "fraud-abcdefghjk", {});
  EXPECT_EQ(s["spec"]["selector"], d["spec"]["selector"]["matchLabels"]);
  // Headless: the router reads the EndpointSlices; no virtual IP is allocated.
  EXPECT_EQ(s["spec"]["clusterIP"], "None");

  const json ref = d["metadata"]["ownerReferences"][0];
  EXPECT_EQ(ref, (json{{"apiVersion", "sluice.dev/v1alpha1"},
                       {"kind", "ModelDeployment"},
                       {"name", "fraud"},
                       {"uid", "1234-uid"},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}));
}

TEST(ResourcesTest, RouterObjectsBindOnlyItsOwnModelDeployment) {
  const auto owner = Owner();
  const json d = RouterDeployment(owner, {});
  EXPECT_EQ(d["metadata"]["name"], "fraud-router");
  EXPECT_EQ(d["spec"]["template"]["spec"]["serviceAccountName"], "fraud-router");
  const auto router_args = Container(d)["args"].get<std::vector<std::string>>();
  EXPECT_EQ(router_args, RouterCommandFor(owner, {}).ToArgs());
  auto router = api::RouterCommand::Parse(router_args);
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_EQ(router->model_deployment, "fraud");
  EXPECT_EQ(router->ns, "ml");
  EXPECT_EQ(Container(d)["securityContext"]["readOnlyRootFilesystem"], true);
  // Both protocols: the router listens for gRPC and forwards to the revisions' gRPC port.
  EXPECT_EQ(router->grpc_port, WorkloadOptions{}.router_grpc_port);
  EXPECT_EQ(router->upstream_grpc_port, WorkloadOptions{}.server_grpc_port);
  EXPECT_EQ(Container(d)["ports"][1]["name"], "grpc");
  // Metrics on the admin port, named and annotated for Prometheus; the traffic port has none.
  EXPECT_EQ(router->admin_port, WorkloadOptions{}.router_admin_port);
  EXPECT_EQ(Container(d)["ports"][2]["name"], api::kAdminPortName);
  EXPECT_EQ(Container(d)["ports"][2]["containerPort"], WorkloadOptions{}.router_admin_port);
  const json& pod_annotations = d["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(pod_annotations["prometheus.io/scrape"], "true");
  EXPECT_EQ(pod_annotations["prometheus.io/port"],
            std::to_string(WorkloadOptions{}.router_admin_port));
  EXPECT_EQ(pod_annotations["prometheus.io/path"], "/metrics");
  const json svc = RouterService(owner, {});
  EXPECT_EQ(svc["metadata"]["name"], "fraud");
  EXPECT_EQ(svc["spec"]["selector"][api::kLabelComponent], "router");
  EXPECT_EQ(svc["spec"]["ports"][1]["name"], "grpc");
  EXPECT_EQ(svc["spec"]["ports"][1]["targetPort"], "grpc");
  EXPECT_EQ(svc["spec"]["ports"][1]["appProtocol"], "kubernetes.io/h2c");
  const json role = RouterRole(owner);
  EXPECT_EQ(role["rules"][0]["resourceNames"], json::array({"fraud"}));
  EXPECT_THAT(role["rules"][0]["verbs"].get<std::vector<std::string>>(),
              ElementsAre("list", "watch"));
  const json binding = RouterRoleBinding(owner);
  EXPECT_EQ(binding["roleRef"]["name"], "fraud-router");
  EXPECT_EQ(binding["subjects"][0]["name"], "fraud-router");
  EXPECT_EQ(binding["subjects"][0]["namespace"], "ml");
}

// spec.tls: the Secret mounted read-only, the TLS flags, HTTPS probes, metrics on a plain admin
// port, https in the Services; and a revision of a spec without tls keeps its name.
TEST(ResourcesTest, TlsMountsTheSecretAndSwitchesProbesAndPorts) {
  auto owner = Owner();
  const std::string plain_hash = RevisionHash(owner.md.spec);
  const json plain = Revision(owner, owner.md.spec, 1);
  EXPECT_FALSE(Container(plain)["readinessProbe"]["httpGet"].contains("scheme"));
  EXPECT_EQ(Container(plain)["ports"].size(), 2u);
  EXPECT_FALSE(
      RevisionService(owner, "fraud-abcdefghjk", {})["spec"]["ports"][0].contains("appProtocol"));

  owner.md.spec.tls = TlsSpec{"fraud-tls"};
  EXPECT_NE(RevisionHash(owner.md.spec), plain_hash);
  const json d = Revision(owner, owner.md.spec, 1);
  const json& c = Container(d);
  for (const char* probe : {"readinessProbe", "livenessProbe", "startupProbe"}) {
    EXPECT_EQ(c[probe]["httpGet"]["scheme"], "HTTPS") << probe;
    EXPECT_EQ(c[probe]["httpGet"]["port"], "http") << probe;
  }
  EXPECT_THAT(
      c["volumeMounts"],
      Contains(json{{"name", "tls"}, {"mountPath", std::string(kTlsDir)}, {"readOnly", true}}));
  EXPECT_THAT(d["spec"]["template"]["spec"]["volumes"],
              Contains(json{{"name", "tls"},
                            {"secret", {{"secretName", "fraud-tls"}, {"defaultMode", 0440}}}}));
  auto server = api::ServerCommand::Parse(c["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(server->tls_cert_file, std::string(kTlsDir) + "/tls.crt");
  EXPECT_EQ(server->tls_key_file, std::string(kTlsDir) + "/tls.key");
  EXPECT_EQ(server->admin_port, WorkloadOptions{}.server_admin_port);
  EXPECT_THAT(c["ports"], Contains(json{{"name", "admin"},
                                        {"containerPort", WorkloadOptions{}.server_admin_port},
                                        {"protocol", "TCP"}}));
  EXPECT_EQ(d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"],
            std::to_string(WorkloadOptions{}.server_admin_port));
  // The revision keeps its tls when re-applied from its annotation.
  auto spec = RevisionSpecFromDeployment(d);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->tls.has_value());
  EXPECT_EQ(spec->tls->secret_name, "fraud-tls");
  EXPECT_EQ(RevisionHash(*spec), RevisionHash(owner.md.spec));
  EXPECT_EQ(RevisionService(owner, "fraud-abcdefghjk", {}, true)["spec"]["ports"][0]["appProtocol"],
            "https");

  // The router: TLS listener from the Secret, the servers verified against its ca.crt.
  const TlsSecretInfo info{"fraud-tls", true};
  const json r = RouterDeployment(owner, {}, info);
  const json& rc = Container(r);
  EXPECT_EQ(rc["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
  EXPECT_EQ(rc["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
  EXPECT_THAT(
      rc["volumeMounts"],
      Contains(json{{"name", "tls"}, {"mountPath", std::string(kTlsDir)}, {"readOnly", true}}));
  EXPECT_EQ(r["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"], "fraud-tls");
  auto router = api::RouterCommand::Parse(rc["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_EQ(router->tls_cert_file, std::string(kTlsDir) + "/tls.crt");
  EXPECT_EQ(router->tls_key_file, std::string(kTlsDir) + "/tls.key");
  EXPECT_EQ(router->upstream_ca_file, std::string(kTlsDir) + "/ca.crt");
  EXPECT_FALSE(router->upstream_tls.has_value());  // per revision, from its EndpointSlices
  auto no_ca = api::RouterCommand::Parse(
      Container(RouterDeployment(owner, {}, TlsSecretInfo{"fraud-tls", false}))["args"]
          .get<std::vector<std::string>>());
  ASSERT_TRUE(no_ca.ok());
  EXPECT_FALSE(no_ca->upstream_ca_file.has_value());
  const json svc = RouterService(owner, {}, info);
  EXPECT_EQ(svc["spec"]["ports"][0]["appProtocol"], "https");
  EXPECT_EQ(svc["spec"]["ports"][1]["appProtocol"], "grpc");
  // Without tls the router is as it was.
  EXPECT_EQ(RouterDeployment(owner, {}, std::nullopt), RouterDeployment(owner, {}));
  EXPECT_FALSE(Container(RouterDeployment(owner, {})).contains("volumeMounts"));
}

TEST(ResourcesTest, RevisionSpecSurvivesTheRoundTripThroughItsDeployment) {
  const auto owner = Owner();
  const json d = Revision(owner, owner.md.spec, 1);
  auto spec = RevisionSpecFromDeployment(d);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(RevisionHash(*spec), RevisionHash(owner.md.spec));
  // Re-applying it gives the very same Deployment: an older revision never rolls in place.
  EXPECT_EQ(Revision(owner, *spec, 1), d);

  json broken = d;
  broken["metadata"]["annotations"]["sluice.dev/revision-spec"] = "{not json";
  EXPECT_EQ(RevisionSpecFromDeployment(broken).status().code(), StatusCode::kInvalidArgument);
  broken["metadata"].erase("annotations");
  EXPECT_EQ(RevisionSpecFromDeployment(broken).status().code(), StatusCode::kNotFound);
}

TEST(ResourcesTest, IsSubsetIgnoresServerAddedFieldsButNotChanges) {
  const auto owner = Owner();
  const json intent = Revision(owner, owner.md.spec, 2);
  json live = intent;
  live["metadata"]["uid"] = "u";
  live["metadata"]["resourceVersion"] = "42";
  live["status"] = {{"readyReplicas", 2}};
  live["spec"]["progressDeadlineSeconds"] = 600;
  live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
      "/dev/termination-log";
  live["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["timeoutSeconds"] = 1;
  EXPECT_TRUE(IsSubset(intent, live));

  json scaled = live;
  scaled["spec"]["replicas"] = 5;
  EXPECT_FALSE(IsSubset(intent, scaled));
  json extra_arg = live;
  extra_arg["spec"]["template"]["spec"]["containers"][0]["args"].push_back("--x");
  EXPECT_FALSE(IsSubset(intent, extra_arg));
  json no_label = live;
  no_label["metadata"]["labels"].erase(api::kLabelRevision);
  EXPECT_FALSE(IsSubset(intent, no_label));
  // Quantities written as numbers come back from the API server as strings.
  EXPECT_TRUE(IsSubset(json{{"cpu", 1}}, json{{"cpu", "1"}}));
  EXPECT_FALSE(IsSubset(json{{"cpu", 2}}, json{{"cpu", "1"}}));
}

TEST(RevisionServiceTest, AServiceWithAVirtualIpKeepsIt) {
  const ModelDeploymentObject owner = Owner();
  json allocated = RevisionService(owner, "fraud-abcdefghjk", {});
  allocated["spec"]["clusterIP"] = "10.0.0.12";
  json intent = RevisionService(owner, "fraud-abcdefghjk", {});
  KeepAllocatedClusterIp(intent, &allocated);
  EXPECT_FALSE(intent["spec"].contains("clusterIP"));
  EXPECT_TRUE(IsSubset(intent, allocated));

  // New, or already headless: the intent says headless.
  json fresh = RevisionService(owner, "fraud-abcdefghjk", {});
  KeepAllocatedClusterIp(fresh, nullptr);
  EXPECT_EQ(fresh["spec"]["clusterIP"], "None");
  const json headless = fresh;
  KeepAllocatedClusterIp(fresh, &headless);
  EXPECT_EQ(fresh["spec"]["clusterIP"], "None");
}

}  // namespace
}  // namespace sluice::controllers
