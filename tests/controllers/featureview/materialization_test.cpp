// Materialization of a FeatureView: the Job and CronJob builders, when an immediate run is due,
// and the status and Events a finished Job turns into (through the reconciler, over the fake
// cache, with Jobs and Pods written as the Job controller and the kubelet would).

#include "controllers/featureview/materialization.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controllers/featureview/reconciler.h"
#include "lib/api/feature_view.h"
#include "lib/api/object_labels.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/controller/fake_objects.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json CardFeatures() {
  return {{"apiVersion", "sluice.dev/v1alpha1"},
          {"kind", "FeatureView"},
          {"metadata", {{"name", "card-features"}, {"namespace", "ml"}}},
          {"spec",
           {{"project", "fraud"},
            {"entities",
             json::array({{{"name", "card"}, {"joinKey", "card_id"}, {"valueType", "STRING"}}})},
            {"features",
             json::array({{{"name", "velocity_last_24h"}, {"type", "INT32"}, {"default", "0"}},
                          {{"name", "avg_amount_30d"}, {"type", "DOUBLE"}, {"default", "0.0"}}})},
            {"ttl", "24h"},
            {"source",
             {{"type", "parquet"},
              {"path", "http://models/features/card.parquet"},
              {"timestampField", "ts"}}},
            {"online",
             {{"redis",
               {{"addressSecretRef", {{"name", "fraud-redis"}, {"key", "connection"}}},
                {"db", 0},
                {"keyTtl", "0s"}}}}},
            {"materialization", {{"schedule", "*/15 * * * *"}, {"suspend", false}}}}}};
}

MaterializationOptions Options() {
  MaterializationOptions o;
  o.image = "ghcr.io/sluice-dev/sluice-dataplane:test";
  return o;
}

json Stored(json fv) {
  fv["metadata"]["uid"] = "fv-uid";
  fv["metadata"]["generation"] = 3;
  fv["metadata"]["resourceVersion"] = "41";
  return fv;
}

TEST(MaterializationTest, TheJobRunsTheMaterializerWithTheViewAndTheSecret) {
  auto job =
      MaterializationJob(Stored(CardFeatures()), "card-features-3-abcde", "created", Options());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)["apiVersion"], "batch/v1");
  EXPECT_EQ((*job)["kind"], "Job");
  const json& meta = (*job)["metadata"];
  EXPECT_EQ(meta["name"], "card-features-3-abcde");
  EXPECT_EQ(meta["namespace"], "ml");
  EXPECT_EQ(meta["labels"][api::kLabelManagedBy], api::kManagedByValue);
  EXPECT_EQ(meta["labels"][api::kLabelFeatureView], "card-features");
  EXPECT_EQ(meta["annotations"][api::kFeatureViewAnnotation], "card-features");
  EXPECT_EQ(meta["annotations"][api::kMaterializeTriggerAnnotation], "created");
  EXPECT_EQ(meta["ownerReferences"][0]["kind"], "FeatureView");
  EXPECT_EQ(meta["ownerReferences"][0]["uid"], "fv-uid");
  EXPECT_EQ(meta["ownerReferences"][0]["controller"], true);

  const json& spec = (*job)["spec"];
  EXPECT_EQ(spec["backoffLimit"], 2);
  EXPECT_GT(spec["activeDeadlineSeconds"].get<int64_t>(), 0);
  EXPECT_GT(spec["ttlSecondsAfterFinished"].get<int64_t>(), 0);
  const json& pod = spec["template"]["spec"];
  EXPECT_EQ(pod["restartPolicy"], "Never");
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(spec["template"]["metadata"]["labels"][api::kLabelManagedBy], api::kManagedByValue);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["name"], kMaterializeContainer);
  EXPECT_EQ(c["image"], "ghcr.io/sluice-dev/sluice-dataplane:test");
  EXPECT_EQ(c["command"], json::array({"sluice-materialize"}));
  EXPECT_EQ(c["terminationMessagePolicy"], "FallbackToLogsOnError");
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["env"][0]["name"], api::RedisConnectionEnv(0));
  EXPECT_EQ(c["env"][0]["valueFrom"]["secretKeyRef"]["name"], "fraud-redis");
  EXPECT_EQ(c["env"][0]["valueFrom"]["secretKeyRef"]["key"], "connection");

  // The arguments are the contract's, and carry the view with its source.
  std::vector<std::string> args = c["args"].get<std::vector<std::string>>();
  auto parsed = api::MaterializeCommand::Parse(args);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->result_file, "/dev/termination-log");
  EXPECT_EQ(parsed->log_format, "json");
  ASSERT_TRUE(parsed->view.has_value());
  auto view = api::FeatureViewConfig::FromJson(json::parse(*parsed->view));
  ASSERT_TRUE(view.ok()) << view.status();
  auto expected = api::FeatureViewConfig::FromResource(Stored(CardFeatures()),
                                                       api::RedisConnectionEnv(0), {}, true);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*view, *expected);
  ASSERT_TRUE(view->source.has_value());
  EXPECT_EQ(view->source->path, "http://models/features/card.parquet");
  EXPECT_EQ(view->redis_connection_env, api::RedisConnectionEnv(0));
}

TEST(MaterializationTest, AnAddressNeedsNoSecret) {
  json fv = Stored(CardFeatures());
  fv["spec"]["online"]["redis"] = {{"address", "redis.sluice-features.svc.cluster.local:6379"},
                                   {"db", 1}};
  auto job = MaterializationJob(fv, "j", "created", Options());
  ASSERT_TRUE(job.ok());
  EXPECT_FALSE((*job)["spec"]["template"]["spec"]["containers"][0].contains("env"));
}

TEST(MaterializationTest, TheCronJobFollowsTheScheduleInUtcOneRunAtATime) {
  json fv = Stored(CardFeatures());
  auto cron = MaterializationCronJob(fv, Options());
  ASSERT_TRUE(cron.ok()) << cron.status();
  ASSERT_TRUE(cron->has_value());
  const json& c = **cron;
  EXPECT_EQ(c["kind"], "CronJob");
  EXPECT_EQ(c["metadata"]["name"], "card-features-materialize");
  EXPECT_EQ(c["spec"]["schedule"], "*/15 * * * *");
  EXPECT_EQ(c["spec"]["timeZone"], "Etc/UTC");
  EXPECT_EQ(c["spec"]["concurrencyPolicy"], "Forbid");
  EXPECT_EQ(c["spec"]["suspend"], false);
  EXPECT_EQ(c["spec"]["successfulJobsHistoryLimit"], 3);
  EXPECT_EQ(c["spec"]["failedJobsHistoryLimit"], 3);
  EXPECT_EQ(c["spec"]["jobTemplate"]["metadata"]["annotations"][api::kFeatureViewAnnotation],
            "card-features");
  auto job = MaterializationJob(fv, "j", "created", Options());
  EXPECT_EQ(c["spec"]["jobTemplate"]["spec"], (*job)["spec"]);

  fv["spec"]["materialization"]["suspend"] = true;
  EXPECT_EQ((**MaterializationCronJob(fv, Options()))["spec"]["suspend"], true);
  fv["spec"].erase("materialization");
  auto none = MaterializationCronJob(fv, Options());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(MaterializationTest, NamesAreDeterministicAndFitTheirLimits) {
  EXPECT_EQ(MaterializationJobName("card-features", 3, "x"),
            MaterializationJobName("card-features", 3, "x"));
  EXPECT_NE(MaterializationJobName("card-features", 3, "x"),
            MaterializationJobName("card-features", 3, "y"));
  EXPECT_THAT(MaterializationJobName("card-features", 3, "x"),
              ::testing::StartsWith("card-features-3-"));
  const std::string long_name(200, 'a');
  EXPECT_LE(MaterializationJobName(long_name, 123456, "x").size(), 63u);
  EXPECT_LE(MaterializationCronJobName(long_name).size(), 52u);
  EXPECT_NE(MaterializationCronJobName(long_name), MaterializationCronJobName(long_name + "b"));
}

TEST(MaterializationTest, ARunIsDueOnCreateOnSpecChangeAndOnRequest) {
  json fv = Stored(CardFeatures());
  auto due = DueTrigger(fv);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->trigger, "created");
  EXPECT_FALSE(due->consume_annotation);
  const std::string first = due->job_name;

  fv["status"]["triggeredGeneration"] = 3;
  EXPECT_FALSE(DueTrigger(fv).has_value());

  fv["metadata"]["generation"] = 4;
  due = DueTrigger(fv);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->trigger, "spec-changed");
  EXPECT_NE(due->job_name, first);
  EXPECT_THAT(due->job_name, ::testing::StartsWith("card-features-4-"));

  fv["status"]["triggeredGeneration"] = 4;
  fv["metadata"]["annotations"][api::kMaterializeAnnotation] = "now";
  due = DueTrigger(fv);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->trigger, "requested");
  EXPECT_TRUE(due->consume_annotation);
  // The same request names the same Job; the next request (another resourceVersion) a new one.
  EXPECT_EQ(DueTrigger(fv)->job_name, due->job_name);
  fv["metadata"]["resourceVersion"] = "57";
  EXPECT_NE(DueTrigger(fv)->job_name, due->job_name);

  fv["metadata"]["annotations"][api::kMaterializeAnnotation] = "later";
  EXPECT_FALSE(DueTrigger(fv).has_value());
}

// --- the reconciler ---

class FakeSecrets final : public SecretReader {
 public:
  Result<json> GetSecret(const std::string& ns, const std::string& name) override {
    if (ns == "ml" && name == "fraud-redis") {
      return json{{"data", {{"connection", value}}}};
    }
    return NotFound("secrets \"" + name + "\" not found");
  }
  std::string value = "cmVkaXM6NjM3OQ==";  // redis:6379
};

class MaterializationReconcileTest : public ::testing::Test {
 protected:
  MaterializationReconcileTest()
      : reconciler_(objects_, secrets_, objects_, events_,
                    FeatureViewReconcilerOptions{std::chrono::seconds(30), &clock_, Options()}) {}

  Result<Action> Reconcile() { return reconciler_.Reconcile(ObjectKey{"ml", "card-features"}); }
  json Fv() { return *objects_.Find(kFeatureViewsGvr, "ml", "card-features"); }
  json Condition(const std::string& type) {
    for (const auto& c : Fv()["status"].value("conditions", json::array())) {
      if (c["type"] == type) return c;
    }
    return nullptr;
  }
  std::vector<json> Jobs() { return objects_.All(kJobsGvr); }
  int EventCount(const std::string& reason) {
    int n = 0;
    for (const auto& e : events_.events()) n += e.reason == reason;
    return n;
  }

  // What the Job controller and the kubelet write when a run ends.
  void Finish(const std::string& job, bool ok, const std::string& message,
              const std::string& at = "2026-01-01T00:05:00Z", int exit_code = -1) {
    json status = {
        {"conditions",
         json::array({{{"type", ok ? "Complete" : "Failed"},
                       {"status", "True"},
                       {"reason", ok ? "" : "BackoffLimitExceeded"},
                       {"message", ok ? "" : "Job has reached the specified backoff limit"},
                       {"lastTransitionTime", at}}})}};
    if (ok) status["completionTime"] = at;
    objects_.SetStatus(kJobsGvr, "ml", job, status);
    if (message.empty()) return;
    // The Job controller labels its pods with the template's labels and the Job's name.
    json labels = (*objects_.Find(kJobsGvr, "ml", job))["spec"]["template"]["metadata"]["labels"];
    labels["batch.kubernetes.io/job-name"] = job;
    objects_.Put(kube::resources::kPods,
                 {{"metadata",
                   {{"name", job + "-pod" + std::to_string(++pods_)},
                    {"namespace", "ml"},
                    {"labels", labels}}},
                  {"status",
                   {{"containerStatuses",
                     json::array({{{"name", kMaterializeContainer},
                                   {"state",
                                    {{"terminated",
                                      {{"exitCode", exit_code >= 0 ? exit_code : (ok ? 0 : 1)},
                                       {"finishedAt", at},
                                       {"message", message}}}}}}})}}}});
  }

  static std::string Success(int64_t rows) {
    api::MaterializeResult r;
    r.ok = true;
    r.run_time = "2026-01-01T00:04:00Z";
    r.source_watermark = "2025-12-31T23:59:00Z";
    r.rows_read = rows;
    r.entities_written = rows / 2;
    r.entities_skipped_stale = 1;
    r.duration_seconds = 2.5;
    return r.ToJson().dump();
  }
  static std::string Failure(const std::string& reason, const std::string& message) {
    api::MaterializeResult r;
    r.ok = false;
    r.reason = reason;
    r.message = message;
    r.run_time = "2026-01-01T00:04:00Z";
    return r.ToJson().dump();
  }

  sluice::testing::FakeClock clock_;
  testing::FakeObjects objects_;
  testing::FakeEvents events_;
  FakeSecrets secrets_;
  FeatureViewReconciler reconciler_;
  int pods_ = 0;
};

TEST_F(MaterializationReconcileTest, ANewViewGetsItsCronJobAndOneImmediateJob) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(objects_.Find(kCronJobsGvr, "ml", "card-features-materialize").has_value());
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0]["metadata"]["annotations"][api::kMaterializeTriggerAnnotation], "created");
  EXPECT_EQ(Fv()["status"]["triggeredGeneration"], 1);
  EXPECT_EQ(Condition("Ready")["reason"], "NotMaterialized");
  EXPECT_TRUE(events_.Has("MaterializationStarted"));

  // Reconciling again (the cache caught up, or not) starts nothing new.
  const int writes = objects_.writes();
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(objects_.writes(), writes);

  // A spec change runs again at once.
  json spec = Fv()["spec"];
  spec["ttl"] = "48h";
  objects_.UpdateSpec(kFeatureViewsGvr, "ml", "card-features", spec);
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Jobs().size(), 2u);
  EXPECT_EQ(Fv()["status"]["triggeredGeneration"], 2);
}

TEST_F(MaterializationReconcileTest, AnInvalidViewStartsNothing) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  secrets_.value = "cmVkaXM6NjM3OSxzc2w9dHJ1ZQ==";  // redis:6379,ssl=true
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_TRUE(Jobs().empty());
  EXPECT_FALSE(objects_.Find(kCronJobsGvr, "ml", "card-features-materialize").has_value());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidRedisConnection");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("ssl=true"));
}

TEST_F(MaterializationReconcileTest, TheAnnotationRunsOnceAndIsRemoved) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Jobs().size(), 1u);
  objects_.Merge(kFeatureViewsGvr, "ml", "card-features",
                 {{"metadata", {{"annotations", {{api::kMaterializeAnnotation, "now"}}}}}});
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Jobs().size(), 2u);
  EXPECT_FALSE(
      Fv()["metadata"].value("annotations", json::object()).contains(api::kMaterializeAnnotation));
  bool requested = false;
  for (const auto& j : Jobs()) {
    requested |= j["metadata"]["annotations"][api::kMaterializeTriggerAnnotation] == "requested";
  }
  EXPECT_TRUE(requested);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Jobs().size(), 2u);
}

TEST_F(MaterializationReconcileTest, ASuccessfulRunMakesTheViewReadyWithItsNumbers) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  const std::string job = MetaString(Jobs()[0], "name");
  Finish(job, true, Success(1200));
  ASSERT_TRUE(Reconcile().ok());
  const json m = Fv()["status"]["lastMaterialized"];
  EXPECT_EQ(m["rows"], 1200);
  EXPECT_EQ(m["entitiesWritten"], 600);
  EXPECT_EQ(m["entitiesSkippedStale"], 1);
  EXPECT_EQ(m["end"], "2026-01-01T00:04:00Z");
  EXPECT_EQ(m["start"], "2025-12-31T00:04:00Z");  // end - ttl (24h)
  EXPECT_EQ(m["completionTime"], "2026-01-01T00:05:00Z");
  EXPECT_EQ(m["sourceWatermark"], "2025-12-31T23:59:00Z");
  EXPECT_EQ(m["duration"], "2.5s");
  EXPECT_EQ(m["job"], job);
  EXPECT_EQ(Fv()["status"]["lastRun"]["succeeded"], true);
  EXPECT_EQ(Condition("Ready")["status"], "True");
  EXPECT_EQ(Condition("Ready")["reason"], "Materialized");
  EXPECT_EQ(Condition("Degraded")["status"], "False");
  ASSERT_EQ(EventCount("Materialized"), 1);
  for (const auto& e : events_.events()) {
    if (e.reason == "Materialized") {
      EXPECT_THAT(e.message, HasSubstr("1200 rows"));
      EXPECT_THAT(e.message, HasSubstr("600 entities"));
      EXPECT_THAT(e.message, HasSubstr("2.5s"));
    }
  }
  // Seen once, reported once.
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(EventCount("Materialized"), 1);
}

TEST_F(MaterializationReconcileTest, AFailedRunDegradesButKeepsEarlierDataReady) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  // The first run fails: nothing in the store, so not Ready either.
  const std::string first = MetaString(Jobs()[0], "name");
  Finish(first, false,
         Failure("SchemaMismatch", "column velocity_last_24h is a string, not INT32"));
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["status"], "True");
  EXPECT_EQ(Condition("Degraded")["reason"], "SchemaMismatch");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("velocity_last_24h"));
  EXPECT_EQ(Condition("Ready")["status"], "False");
  EXPECT_EQ(Condition("Ready")["reason"], "SchemaMismatch");
  EXPECT_EQ(EventCount("MaterializationFailed"), 1);

  // Retried on request; this one succeeds.
  objects_.Merge(kFeatureViewsGvr, "ml", "card-features",
                 {{"metadata", {{"annotations", {{api::kMaterializeAnnotation, "now"}}}}}});
  ASSERT_TRUE(Reconcile().ok());
  std::string second;
  for (const auto& j : Jobs()) {
    if (MetaString(j, "name") != first) second = MetaString(j, "name");
  }
  ASSERT_FALSE(second.empty());
  Finish(second, true, Success(10), "2026-01-01T01:00:00Z");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Ready")["status"], "True");
  EXPECT_EQ(Condition("Degraded")["status"], "False");
  EXPECT_TRUE(events_.Has("Recovered"));

  // A later run fails: the store still holds the earlier values, so Ready stays True and says so.
  objects_.Merge(kFeatureViewsGvr, "ml", "card-features",
                 {{"metadata", {{"annotations", {{api::kMaterializeAnnotation, "now"}}}}}});
  ASSERT_TRUE(Reconcile().ok());
  std::string third;
  for (const auto& j : Jobs()) {
    if (MetaString(j, "name") != first && MetaString(j, "name") != second)
      third = MetaString(j, "name");
  }
  ASSERT_FALSE(third.empty());
  Finish(third, false, Failure("RedisUnavailable", "redis:6379: connection refused"),
         "2026-01-01T02:00:00Z");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Ready")["status"], "True");
  EXPECT_THAT(Condition("Ready")["message"].get<std::string>(), HasSubstr("the last run failed"));
  EXPECT_EQ(Condition("Degraded")["reason"], "RedisUnavailable");
  EXPECT_EQ(Fv()["status"]["lastMaterialized"]["job"], second);
  EXPECT_EQ(Fv()["status"]["lastRun"]["job"], third);
  EXPECT_EQ(EventCount("MaterializationFailed"), 2);

  // When the newest Job is gone (ttlSecondsAfterFinished), an older one is not news.
  ASSERT_TRUE(objects_.Delete(kJobsGvr, "ml", third, "").ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Fv()["status"]["lastRun"]["job"], third);
  EXPECT_EQ(EventCount("Materialized"), 1);
}

TEST_F(MaterializationReconcileTest, ARunThatWroteNoResultReportsItsLogOrTheJob) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  const std::string job = MetaString(Jobs()[0], "name");
  // FallbackToLogsOnError: the log's tail instead of a result.
  Finish(job, false, "terminate called after throwing an instance of 'std::bad_alloc'\n");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "MaterializationFailed");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("bad_alloc"));
}

TEST_F(MaterializationReconcileTest, AJobThatGaveUpWithoutAPodSaysWhy) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  const std::string job = MetaString(Jobs()[0], "name");
  Finish(job, false, "");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "MaterializationFailed");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("backoff limit"));
}

TEST_F(MaterializationReconcileTest, RemovingTheScheduleRemovesTheCronJob) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(objects_.Find(kCronJobsGvr, "ml", "card-features-materialize").has_value());
  json spec = Fv()["spec"];
  spec.erase("materialization");
  objects_.UpdateSpec(kFeatureViewsGvr, "ml", "card-features", spec);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_FALSE(objects_.Find(kCronJobsGvr, "ml", "card-features-materialize").has_value());
}

TEST(FeatureViewOfTest, MapsJobsAndPodsToTheirView) {
  json job = {{"metadata",
               {{"name", "j"},
                {"namespace", "ml"},
                {"annotations", {{api::kFeatureViewAnnotation, "card-features"}}}}}};
  auto keys = FeatureViewOf(job);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].String(), "ml/card-features");
  EXPECT_TRUE(
      FeatureViewOf(json{{"metadata", {{"name", "server-pod"}, {"namespace", "ml"}}}}).empty());
}

}  // namespace
}  // namespace sluice::controllers
