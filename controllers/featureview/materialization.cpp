#include "controllers/featureview/materialization.h"

#include <cmath>
#include <cstdio>
#include <regex>

#include "lib/api/feature_view.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {

using nlohmann::json;

const kube::GroupVersionResource kJobsGvr{"batch", "v1", "jobs", true, "Job"};
const kube::GroupVersionResource kCronJobsGvr{"batch", "v1", "cronjobs", true, "CronJob"};

namespace {

constexpr char kApiVersionFv[] = "sluice.dev/v1alpha1";

uint64_t Fnv1a64(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// `n` characters from an alphabet without vowels (no accidental words).
std::string ShortHash(std::string_view data, int n) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  uint64_t h = Fnv1a64(data);
  std::string out;
  for (int i = 0; i < n; ++i) {
    out.push_back(kAlphabet[h % kAlphabet.size()]);
    h /= kAlphabet.size();
  }
  return out;
}

// `name` cut to `max` characters, ending in a hash of the whole when cut, and never in '-'.
std::string Bounded(const std::string& name, size_t max) {
  if (name.size() <= max) return name;
  std::string head = name.substr(0, max - 6);
  while (!head.empty() && head.back() == '-') head.pop_back();
  return head + "-" + ShortHash(name, 5);
}

json Labels(const json& fv) {
  const std::string name = MetaString(fv, "name");
  return {{api::kLabelName, api::kNameValue},
          {api::kLabelInstance, Bounded(name, 63)},
          {api::kLabelManagedBy, api::kManagedByValue},
          {api::kLabelComponent, "materialize"},
          {api::kLabelFeatureView, FeatureViewLabelValue(fv)}};
}

json Metadata(const json& fv, const std::string& name) {
  return {{"name", name},
          {"namespace", MetaString(fv, "namespace")},
          {"labels", Labels(fv)},
          {"annotations", {{api::kFeatureViewAnnotation, MetaString(fv, "name")}}},
          {"ownerReferences", json::array({FeatureViewOwnerReference(fv)})}};
}

Result<json> JobSpec(const json& fv, const MaterializationOptions& options) {
  ASSIGN_OR_RETURN(api::MaterializeCommand command, MaterializeCommandFor(fv, options));
  json container = {
      {"name", kMaterializeContainer},
      {"image", options.image},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"sluice-materialize"})},
      {"args", command.ToArgs()},
      {"terminationMessagePath", "/dev/termination-log"},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"readOnlyRootFilesystem", true},
        {"runAsNonRoot", true},
        {"capabilities", {{"drop", json::array({"ALL"})}}}}},
      {"volumeMounts", json::array({{{"name", "tmp"}, {"mountPath", "/tmp"}}})},
  };
  const json* secret_ref = JsonAt(fv, {"spec", "online", "redis", "addressSecretRef"});
  if (JsonAt(fv, {"spec", "online", "redis", "address"}) == nullptr && secret_ref != nullptr) {
    container["env"] = json::array(
        {{{"name", api::RedisConnectionEnv(0)},
          {"valueFrom",
           {{"secretKeyRef",
             {{"name", secret_ref->value("name", "")}, {"key", secret_ref->value("key", "")}}}}}}});
  }
  json pod_metadata = {{"labels", Labels(fv)},
                       {"annotations", {{api::kFeatureViewAnnotation, MetaString(fv, "name")}}}};
  return json{
      {"backoffLimit", options.backoff_limit},
      {"activeDeadlineSeconds", options.active_deadline_seconds},
      {"ttlSecondsAfterFinished", options.ttl_seconds_after_finished},
      {"template",
       {{"metadata", std::move(pod_metadata)},
        {"spec",
         {{"restartPolicy", "Never"},
          {"automountServiceAccountToken", false},
          {"enableServiceLinks", false},
          {"securityContext",
           {{"runAsNonRoot", true},
            {"runAsUser", options.run_as_user},
            {"runAsGroup", options.run_as_user},
            {"fsGroup", options.run_as_user},
            {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
          {"containers", json::array({std::move(container)})},
          {"volumes", json::array({{{"name", "tmp"}, {"emptyDir", json::object()}}})}}}}},
  };
}

bool HasCondition(const json& job, const char* type) {
  const json* conditions = JsonAt(job, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const auto& c : *conditions) {
    if (c.value("type", "") == type && c.value("status", "") == "True") return true;
  }
  return false;
}

const json* ConditionOf(const json& job, const char* type) {
  const json* conditions = JsonAt(job, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const auto& c : *conditions) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}

WallTime TimeAt(const json& j, std::initializer_list<const char*> path) {
  auto t = ParseTime(StringAt(j, path));
  return t.ok() ? *t : WallTime{};
}

// A reason as the FeatureView's condition schema allows it.
std::string ConditionReason(const std::string& reason) {
  static const std::regex kReason("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$");
  if (reason.empty() || reason.size() > 128 || !std::regex_match(reason, kReason)) {
    return "MaterializationFailed";
  }
  return reason;
}

// The terminated state of the materialize container of `pod`, the last attempt first.
const json* Terminated(const json& pod) {
  const json* statuses = JsonAt(pod, {"status", "containerStatuses"});
  if (statuses == nullptr || !statuses->is_array()) return nullptr;
  for (const auto& s : *statuses) {
    if (s.value("name", "") != kMaterializeContainer) continue;
    if (const json* t = JsonAt(s, {"state", "terminated"}); t != nullptr) return t;
    if (const json* t = JsonAt(s, {"lastState", "terminated"}); t != nullptr) return t;
  }
  return nullptr;
}

std::string JobNameOfPod(const json& pod) {
  const json* labels = JsonAt(pod, {"metadata", "labels"});
  if (labels == nullptr || !labels->is_object()) return {};
  for (const char* key : {"batch.kubernetes.io/job-name", "job-name"}) {
    if (auto it = labels->find(key); it != labels->end() && it->is_string()) return *it;
  }
  return {};
}

}  // namespace

json FeatureViewOwnerReference(const json& fv) {
  return {{"apiVersion", kApiVersionFv},  {"kind", "FeatureView"}, {"name", MetaString(fv, "name")},
          {"uid", MetaString(fv, "uid")}, {"controller", true},    {"blockOwnerDeletion", true}};
}

Result<api::MaterializeCommand> MaterializeCommandFor(const json& fv,
                                                      const MaterializationOptions& options) {
  auto config = api::FeatureViewConfig::FromResource(fv, api::RedisConnectionEnv(0), {},
                                                     /*with_source=*/true);
  if (!config.ok()) return config.status().Annotate("FeatureView " + MetaString(fv, "name"));
  if (!config->source) {
    return InvalidArgument("FeatureView " + MetaString(fv, "name") + " has no spec.source");
  }
  api::MaterializeCommand c;
  c.view = config->ToJson().dump();
  c.result_file = "/dev/termination-log";
  c.log_format = options.log_format;
  return c;
}

std::string MaterializationJobName(const std::string& fv_name, int64_t generation,
                                   const std::string& trigger) {
  const std::string tail =
      "-" + std::to_string(generation) + "-" +
      ShortHash(fv_name + "\n" + std::to_string(generation) + "\n" + trigger, 5);
  std::string head = fv_name.substr(0, 63 - tail.size());
  while (!head.empty() && head.back() == '-') head.pop_back();
  return head + tail;
}

std::string MaterializationCronJobName(const std::string& fv_name) {
  return Bounded(fv_name + "-materialize", 52);
}

Result<json> MaterializationJob(const json& fv, const std::string& job_name,
                                const std::string& trigger, const MaterializationOptions& options) {
  ASSIGN_OR_RETURN(json spec, JobSpec(fv, options));
  json metadata = Metadata(fv, job_name);
  metadata["annotations"][api::kMaterializeTriggerAnnotation] = trigger;
  return json{{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", std::move(metadata)},
              {"spec", std::move(spec)}};
}

Result<std::optional<json>> MaterializationCronJob(const json& fv,
                                                   const MaterializationOptions& options) {
  const std::string schedule = StringAt(fv, {"spec", "materialization", "schedule"});
  if (schedule.empty()) return std::optional<json>();
  const json* suspend = JsonAt(fv, {"spec", "materialization", "suspend"});
  ASSIGN_OR_RETURN(json job_spec, JobSpec(fv, options));
  json job_metadata = {{"labels", Labels(fv)},
                       {"annotations",
                        {{api::kFeatureViewAnnotation, MetaString(fv, "name")},
                         {api::kMaterializeTriggerAnnotation, "scheduled"}}}};
  return std::optional<json>(json{
      {"apiVersion", "batch/v1"},
      {"kind", "CronJob"},
      {"metadata", Metadata(fv, MaterializationCronJobName(MetaString(fv, "name")))},
      {"spec",
       {{"schedule", schedule},
        {"timeZone", "Etc/UTC"},
        {"suspend", suspend != nullptr && suspend->is_boolean() && suspend->get<bool>()},
        // A run still writing when the next is due: the next waits (two writers of one view
        // would race on the same keys).
        {"concurrencyPolicy", "Forbid"},
        {"startingDeadlineSeconds", options.starting_deadline_seconds},
        {"successfulJobsHistoryLimit", options.successful_jobs_history_limit},
        {"failedJobsHistoryLimit", options.failed_jobs_history_limit},
        {"jobTemplate", {{"metadata", std::move(job_metadata)}, {"spec", std::move(job_spec)}}}}},
  });
}

std::optional<Trigger> DueTrigger(const json& fv) {
  const std::string name = MetaString(fv, "name");
  const int64_t generation = MetaGeneration(fv);
  const json* requested = Annotation(fv, api::kMaterializeAnnotation);
  if (requested != nullptr && requested->is_string() && *requested == "now") {
    const std::string trigger = "requested";
    return Trigger{MaterializationJobName(name, generation,
                                          trigger + "\n" + MetaString(fv, "uid") + "\n" +
                                              MetaString(fv, "resourceVersion")),
                   trigger, /*consume_annotation=*/true};
  }
  const json* triggered = JsonAt(fv, {"status", "triggeredGeneration"});
  const bool never = triggered == nullptr || !triggered->is_number_integer();
  if (never || triggered->get<int64_t>() != generation) {
    const std::string trigger = never ? "created" : "spec-changed";
    return Trigger{MaterializationJobName(name, generation, "spec\n" + MetaString(fv, "uid")),
                   trigger, false};
  }
  return std::nullopt;
}

bool IsMaterializationOf(const json& object, const std::string& fv_name) {
  const json* a = Annotation(object, api::kFeatureViewAnnotation);
  return a != nullptr && a->is_string() && *a == fv_name;
}

std::vector<ObjectKey> FeatureViewOf(const json& object) {
  const json* a = Annotation(object, api::kFeatureViewAnnotation);
  if (a == nullptr || !a->is_string() || a->get<std::string>().empty()) return {};
  return {ObjectKey{MetaString(object, "namespace"), a->get<std::string>()}};
}

std::string FeatureViewLabelValue(const json& fv) {
  return Bounded(MetaString(fv, "name"), 63);
}

std::optional<RunOutcome> LatestRun(const json& fv, const std::vector<ObjectPtr>& jobs,
                                    const std::vector<ObjectPtr>& pods) {
  const std::string name = MetaString(fv, "name");
  const std::string ns = MetaString(fv, "namespace");
  const json* newest = nullptr;
  WallTime newest_time{};
  bool newest_ok = false;
  for (const auto& job : jobs) {
    if (MetaString(*job, "namespace") != ns || !IsMaterializationOf(*job, name)) continue;
    const bool ok = HasCondition(*job, "Complete");
    const bool failed = HasCondition(*job, "Failed");
    if (!ok && !failed) continue;
    WallTime t = TimeAt(*job, {"status", "completionTime"});
    if (t == WallTime{}) {
      if (const json* c = ConditionOf(*job, ok ? "Complete" : "Failed")) {
        t = TimeAt(*c, {"lastTransitionTime"});
      }
    }
    // Ties (same second) go to the later name, so the choice does not depend on list order.
    if (newest == nullptr || t > newest_time ||
        (t == newest_time && MetaString(*job, "name") > MetaString(*newest, "name"))) {
      newest = job.get();
      newest_time = t;
      newest_ok = ok;
    }
  }
  if (newest == nullptr) return std::nullopt;

  RunOutcome out;
  out.job = MetaString(*newest, "name");
  out.succeeded = newest_ok;
  out.completion_time = newest_time;
  // The termination message of the Job's last attempt: the pod that terminated last.
  const json* last = nullptr;
  WallTime last_finish{};
  for (const auto& pod : pods) {
    if (MetaString(*pod, "namespace") != ns || JobNameOfPod(*pod) != out.job) continue;
    const json* t = Terminated(*pod);
    if (t == nullptr) continue;
    const bool exit_ok = t->value("exitCode", -1) == 0;
    // A Complete Job's result is its successful attempt's.
    if (newest_ok && !exit_ok) continue;
    WallTime finished = TimeAt(*t, {"finishedAt"});
    if (last == nullptr || finished >= last_finish) {
      last = t;
      last_finish = finished;
    }
  }
  std::string raw_message;
  if (last != nullptr) {
    raw_message = last->value("message", "");
    json parsed = json::parse(raw_message, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      if (auto result = api::MaterializeResult::FromJson(parsed); result.ok()) {
        out.result = std::move(*result);
      }
    }
  }
  if (out.succeeded) return out;
  if (out.result && !out.result->ok) {
    out.reason = ConditionReason(out.result->reason);
    out.message = out.result->message.empty() ? out.reason : out.result->message;
    return out;
  }
  // No result written: the program died (its log's tail is the message), or the Job gave up
  // before a pod could finish (deadline, backoff limit).
  const json* failed = ConditionOf(*newest, "Failed");
  const std::string job_reason = failed != nullptr ? failed->value("reason", "") : "";
  if (!raw_message.empty() && !out.result) {
    out.reason = "MaterializationFailed";
    std::string tail =
        raw_message.size() > 1024 ? raw_message.substr(raw_message.size() - 1024) : raw_message;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
    out.message = "sluice-materialize wrote no result; its log ends: " + tail;
  } else {
    out.reason = job_reason == "DeadlineExceeded" ? "DeadlineExceeded" : "MaterializationFailed";
    out.message = "Job " + out.job + " failed";
    if (failed != nullptr) {
      const std::string why = failed->value("message", "");
      out.message += ": " + (why.empty() ? job_reason : why);
    }
  }
  return out;
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", seconds);
  if (seconds >= 100) std::snprintf(buf, sizeof(buf), "%.0f", seconds);
  return std::string(buf) + "s";
}

}  // namespace sluice::controllers
