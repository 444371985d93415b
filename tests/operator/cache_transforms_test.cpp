// What the operator's cache keeps of a Pod: every reader of Pods in the operator gets the same
// answer from a trimmed Pod as from the Pod the API server sent, and what no reader needs is gone.
// A reader that starts using a field TrimPod drops fails here.

#include "operator/cache_transforms.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controllers/featureview/materialization.h"
#include "controllers/modeldeployment/resources.h"
#include "controllers/scrape/pod_finder.h"
#include "lib/api/object_labels.h"
#include "lib/controller/object_io.h"

namespace sluice::app {
namespace {

using nlohmann::json;

// A server Pod as kube-apiserver returns it (defaults, service account volume, tolerations,
// managedFields), on a node, Running and Ready.
json ServerPod(const std::string& name) {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
      "name": ")" + name +
                     R"(", "namespace": "ml", "generateName": "fraud-v1-7d9f-",
      "uid": "u-)" + name +
                     R"(", "resourceVersion": "42", "generation": 1,
      "creationTimestamp": "2026-12-07T03:26:59Z",
      "labels": {"app.kubernetes.io/component": "server", "app.kubernetes.io/managed-by": "sluice-operator",
                 "sluice.dev/modeldeployment": "fraud", "sluice.dev/revision": "v1",
                 "pod-template-hash": "7d9f"},
      "annotations": {"prometheus.io/port": "8080", "prometheus.io/scrape": "true"},
      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "fraud-v1-7d9f",
                           "uid": "rs-1", "controller": true, "blockOwnerDeletion": true}],
      "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]
    },
    "spec": {
      "containers": [{
        "name": "server", "image": "ghcr.io/sluice-dev/sluice-dataplane:0.1.0",
        "args": ["--model=/models/fraud.json", "--http-port=8080"],
        "env": [{"name": "SLUICE_LOG_FORMAT", "value": "json"}],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"},
                  {"containerPort": 8081, "name": "grpc", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http", "scheme": "HTTP"},
                           "periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 3,
                           "successThreshold": 1},
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                          "name": "kube-api-access-x", "readOnly": true}]
      }],
      "dnsPolicy": "ClusterFirst", "nodeName": "node-000004", "restartPolicy": "Always",
      "schedulerName": "default-scheduler", "serviceAccountName": "default",
      "terminationGracePeriodSeconds": 30,
      "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready",
                       "operator": "Exists", "tolerationSeconds": 300}],
      "volumes": [{"name": "kube-api-access-x", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}}]}}]
    },
    "status": {
      "phase": "Running", "podIP": "10.0.4.1", "podIPs": [{"ip": "10.0.4.1"}],
      "hostIP": "192.0.2.5", "hostIPs": [{"ip": "192.0.2.5"}], "qosClass": "Burstable",
      "startTime": "2026-12-07T03:27:00Z",
      "conditions": [
        {"type": "Initialized", "status": "True", "lastProbeTime": null,
         "lastTransitionTime": "2026-12-07T03:27:00Z"},
        {"type": "Ready", "status": "True", "lastProbeTime": null,
         "lastTransitionTime": "2026-12-07T03:27:00Z"}],
      "containerStatuses": [{
        "name": "server", "ready": true, "restartCount": 0, "started": true,
        "image": "ghcr.io/sluice-dev/sluice-dataplane:0.1.0", "imageID": "sha256:abc",
        "containerID": "containerd://123", "lastState": {},
        "state": {"running": {"startedAt": "2026-12-07T03:27:00Z"}}}]
    }
  })");
}

// The same Pod crash-looping: its last run ended with a JSON log line as termination message.
json CrashingServerPod() {
  json pod = ServerPod("fraud-v1-7d9f-crash");
  pod["status"]["conditions"][1]["status"] = "False";
  json& c = pod["status"]["containerStatuses"][0];
  c["ready"] = false;
  c["restartCount"] = 4;
  c["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", "back-off 40s"}}}};
  c["lastState"] = {
      {"terminated",
       {{"exitCode", 2},
        {"reason", "Error"},
        {"finishedAt", "2026-12-07T03:28:00Z"},
        {"message",
         "{\"level\":\"error\",\"msg\":\"model file not found: /models/fraud.json\"}\n"}}}};
  return pod;
}

// A materialization Job's Pod, finished, with the materializer's result as termination message.
json MaterializePod(const std::string& job, int exit_code, const std::string& message) {
  json pod = ServerPod(job + "-abcde");
  pod["metadata"]["labels"] = {{"batch.kubernetes.io/job-name", job},
                               {"job-name", job},
                               {"app.kubernetes.io/managed-by", "sluice-operator"}};
  pod["metadata"]["annotations"] = {{api::kFeatureViewAnnotation, "clicks"}};
  pod["spec"]["containers"][0]["name"] = controllers::kMaterializeContainer;
  pod["status"]["phase"] = exit_code == 0 ? "Succeeded" : "Failed";
  pod["status"]["containerStatuses"][0] = {{"name", controllers::kMaterializeContainer},
                                           {"ready", false},
                                           {"restartCount", 0},
                                           {"image", "ghcr.io/sluice-dev/sluice-dataplane:0.1.0"},
                                           {"imageID", "sha256:abc"},
                                           {"state",
                                            {{"terminated",
                                              {{"exitCode", exit_code},
                                               {"reason", exit_code == 0 ? "Completed" : "Error"},
                                               {"startedAt", "2026-12-07T03:00:00Z"},
                                               {"finishedAt", "2026-12-07T03:00:09Z"},
                                               {"message", message}}}}}};
  return pod;
}

json Job(const std::string& name, const char* condition) {
  return {
      {"metadata",
       {{"name", name},
        {"namespace", "ml"},
        {"annotations", {{api::kFeatureViewAnnotation, "clicks"}}}}},
      {"status",
       {{"completionTime", "2026-12-07T03:00:10Z"},
        {"conditions",
         json::array({{{"type", condition},
                       {"status", "True"},
                       {"reason", std::string(condition) == "Failed" ? "BackoffLimitExceeded" : ""},
                       {"message", "Job has reached the specified backoff limit"},
                       {"lastTransitionTime", "2026-12-07T03:00:10Z"}}})}}}};
}

json Trimmed(json pod) {
  TrimPod(pod);
  return pod;
}

std::vector<controllers::ObjectPtr> Ptrs(const std::vector<json>& objects) {
  std::vector<controllers::ObjectPtr> out;
  for (const auto& o : objects) out.push_back(std::make_shared<const json>(o));
  return out;
}

TEST(TrimPodTest, DropsWhatNoReaderNeeds) {
  const json full = ServerPod("fraud-v1-7d9f-a");
  const json pod = Trimmed(full);
  // Metadata as it came (the cache drops managedFields before this transform runs).
  EXPECT_EQ(pod["metadata"], full["metadata"]);
  EXPECT_EQ(
      pod["spec"],
      (json{{"containers", json::array({{{"name", "server"},
                                         {"ports", full["spec"]["containers"][0]["ports"]}}})}}));
  for (const char* gone : {"hostIP", "hostIPs", "podIPs", "qosClass", "startTime"}) {
    EXPECT_FALSE(pod["status"].contains(gone)) << gone;
  }
  const json& c = pod["status"]["containerStatuses"][0];
  for (const char* gone : {"image", "imageID", "containerID"})
    EXPECT_FALSE(c.contains(gone)) << gone;
  EXPECT_EQ(c["state"], full["status"]["containerStatuses"][0]["state"]);
  EXPECT_LT(pod.dump().size() * 2, full.dump().size());
  // Objects that are not Pods-shaped are left alone.
  json odd = json::array({1, 2});
  TrimPod(odd);
  EXPECT_EQ(odd, json::array({1, 2}));
}

TEST(TrimPodTest, ScrapeTargetsAreTheSame) {
  for (const json& full : {ServerPod("fraud-v1-7d9f-a"), CrashingServerPod()}) {
    auto a = controllers::ScrapeablePod(full);
    auto b = controllers::ScrapeablePod(Trimmed(full));
    ASSERT_EQ(a.has_value(), b.has_value());
    if (!a) continue;
    EXPECT_EQ(a->name, b->name);
    EXPECT_EQ(a->ip, b->ip);
    EXPECT_EQ(a->labels, b->labels);
    EXPECT_EQ(a->ports, b->ports);
    EXPECT_EQ(b->ports.at("http"), 8080);
  }
  // The crash-looping Pod is not Ready, so it is no target; the healthy one is.
  EXPECT_TRUE(controllers::ScrapeablePod(Trimmed(ServerPod("x"))).has_value());
  EXPECT_FALSE(controllers::ScrapeablePod(Trimmed(CrashingServerPod())).has_value());
}

TEST(TrimPodTest, FailingRevisionsAreReportedTheSame) {
  const json crashing = CrashingServerPod();
  const std::string trouble = controllers::PodTrouble(crashing);
  EXPECT_NE(trouble.find("model file not found"), std::string::npos) << trouble;
  EXPECT_EQ(controllers::PodTrouble(Trimmed(crashing)), trouble);
  EXPECT_EQ(controllers::PodTrouble(Trimmed(ServerPod("ok"))), "");
}

TEST(TrimPodTest, MaterializationRunsReadTheSame) {
  const json fv = {{"metadata", {{"name", "clicks"}, {"namespace", "ml"}}}};
  const std::string result =
      R"({"ok":true,"runTime":"2026-12-07T03:00:00Z","rowsRead":120,"entitiesWritten":40,)"
      R"("entitiesSkippedStale":0,"durationSeconds":1.5})";
  struct Case {
    json job;
    json pod;
  };
  const std::vector<Case> cases = {
      {Job("clicks-1-ok", "Complete"), MaterializePod("clicks-1-ok", 0, result)},
      {Job("clicks-2-bad", "Failed"), MaterializePod("clicks-2-bad", 1, "Traceback...\nboom\n")}};
  for (const auto& c : cases) {
    auto a = controllers::LatestRun(fv, Ptrs({c.job}), Ptrs({c.pod}));
    auto b = controllers::LatestRun(fv, Ptrs({c.job}), Ptrs({Trimmed(c.pod)}));
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(a->job, b->job);
    EXPECT_EQ(a->succeeded, b->succeeded);
    EXPECT_EQ(a->completion_time, b->completion_time);
    EXPECT_EQ(a->result, b->result);
    EXPECT_EQ(a->reason, b->reason);
    EXPECT_EQ(a->message, b->message);
    // The answers come from the Pod, not only from the Job.
    if (a->succeeded) {
      ASSERT_TRUE(b->result.has_value());
      EXPECT_EQ(b->result->rows_read, 120);
    } else {
      EXPECT_NE(b->message.find("boom"), std::string::npos) << b->message;
    }
    EXPECT_EQ(controllers::FeatureViewOf(Trimmed(c.pod)), controllers::FeatureViewOf(c.pod));
  }
}

TEST(TrimDeploymentTest, KeepsWhatApplyIfChangedAndTheRolloutRead) {
  controllers::ModelDeploymentObject owner;
  owner.md.metadata = {{"name", "fraud"}, {"namespace", "ml"}};
  owner.md.spec.model.uri = "file:///models/fraud/fraud.json";
  owner.md.spec.model.format = "xgboost-json";
  owner.md.spec.model.version = "3";
  owner.uid = "1234-uid";
  const json intent = controllers::RouterDeployment(owner, {});
  // As the API server returns it: the intent, defaults, and a status with conditions.
  json live = intent;
  live["metadata"]["uid"] = "d-1";
  live["metadata"]["generation"] = 2;
  live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1";
  live["spec"]["progressDeadlineSeconds"] = 600;
  live["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst";
  live["status"] = {
      {"observedGeneration", 2},
      {"replicas", 2},
      {"readyReplicas", 1},
      {"updatedReplicas", 2},
      {"availableReplicas", 1},
      {"conditions", json::array({{{"type", "Available"},
                                   {"status", "False"},
                                   {"reason", "MinimumReplicasUnavailable"},
                                   {"message", "Deployment does not have minimum availability."},
                                   {"lastUpdateTime", "2026-12-07T03:39:50Z"},
                                   {"lastTransitionTime", "2026-12-07T03:39:50Z"}}})}};
  json trimmed = live;
  TrimDeployment(trimmed);
  // Nothing the operator applies is lost, so an unchanged Deployment is not applied again...
  ASSERT_TRUE(controllers::IsSubset(intent, live));
  EXPECT_TRUE(controllers::IsSubset(intent, trimmed));
  EXPECT_EQ(trimmed["spec"], live["spec"]);
  EXPECT_EQ(trimmed["metadata"], live["metadata"]);
  // ...and a changed one still is.
  json changed = intent;
  changed["spec"]["replicas"] = 5;
  EXPECT_FALSE(controllers::IsSubset(changed, trimmed));
  // The replica counts the rollout reads are kept; the conditions are not.
  for (const char* field : {"observedGeneration", "replicas", "readyReplicas"}) {
    EXPECT_EQ(trimmed["status"][field], live["status"][field]) << field;
  }
  EXPECT_FALSE(trimmed["status"].contains("conditions"));
  // A Deployment the controller has not seen yet has no status, and keeps having none.
  json fresh = intent;
  TrimDeployment(fresh);
  EXPECT_EQ(fresh, intent);
}

}  // namespace
}  // namespace sluice::app
