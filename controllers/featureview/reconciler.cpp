#include "controllers/featureview/reconciler.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "controllers/featureview/validation.h"
#include "lib/api/duration.h"
#include "lib/api/model_deployment.h"
#include "lib/api/object_labels.h"
#include "lib/api/time.h"

namespace sluice::controllers {

using nlohmann::json;

namespace {

constexpr char kApiVersionFv[] = "sluice.dev/v1alpha1";

FeatureViewCheck Fail(std::string reason, std::string message, bool retry_later = false) {
  return FeatureViewCheck{false, std::move(reason), std::move(message), retry_later};
}

// Typed defaults exactly (CEL compares 64-bit integers through doubles and cannot bound floats).
std::optional<std::string> CheckDefault(const std::string& type, const std::string& value) {
  if (type == "INT64" || type == "UNIX_TIMESTAMP") {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || ptr != value.data() + value.size()) {
      return "\"" + value + "\" is not a 64-bit integer";
    }
  } else if (type == "FLOAT" || type == "DOUBLE") {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(value.c_str(), &end);
    if (end != value.c_str() + value.size() || errno == ERANGE || !std::isfinite(v)) {
      return "\"" + value + "\" is not a finite number";
    }
    if (type == "FLOAT" && std::fabs(v) > 3.4028234663852886e38) {
      return "\"" + value + "\" is outside the range of a 32-bit float";
    }
  }
  return std::nullopt;
}

Condition MakeCondition(const std::string& type, bool status, const std::string& reason,
                        const std::string& message, int64_t generation, WallTime now) {
  Condition c;
  c.type = type;
  c.status = status ? "True" : "False";
  c.reason = reason;
  c.message = message;
  c.observed_generation = generation;
  c.last_transition_time = now;
  return c;
}

// metav1.Condition JSON, keeping lastTransitionTime from `previous` when the status is unchanged.
json ConditionJson(Condition c, const json* previous_conditions) {
  if (previous_conditions != nullptr && previous_conditions->is_array()) {
    for (const auto& p : *previous_conditions) {
      if (p.value("type", "") == c.type && p.value("status", "") == c.status) {
        if (auto t = ParseTime(p.value("lastTransitionTime", "")); t.ok()) {
          c.last_transition_time = *t;
        }
      }
    }
  }
  json j = c;
  return j;
}

}  // namespace

FeatureViewReconciler::FeatureViewReconciler(const ObjectReader& reader, SecretReader& secrets,
                                             ObjectWriter& writer, EventRecorder& events,
                                             FeatureViewReconcilerOptions options)
    : reader_(reader),
      secrets_(secrets),
      writer_(writer),
      events_(events),
      options_(options),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

Result<FeatureViewCheck> FeatureViewReconciler::Check(const json& fv) {
  const json* spec = JsonAt(fv, {"spec"});
  if (spec == nullptr || !spec->is_object()) return Fail("InvalidSpec", "spec is missing");
  const std::string ns = MetaString(fv, "namespace");

  if (const json* ttl = JsonAt(*spec, {"ttl"}); ttl != nullptr) {
    if (!ttl->is_string() || !ParseDuration(ttl->get<std::string>()).ok()) {
      return Fail("InvalidSpec", "spec.ttl is not a duration");
    }
  }
  if (const json* features = JsonAt(*spec, {"features"});
      features != nullptr && features->is_array()) {
    for (size_t i = 0; i < features->size(); ++i) {
      const json& f = (*features)[i];
      if (!f.contains("default") || !f["default"].is_string()) continue;
      if (auto why = CheckDefault(f.value("type", ""), f["default"].get<std::string>())) {
        return Fail("InvalidDefault", "spec.features[" + std::to_string(i) + "].default (" +
                                          f.value("name", "") + "): " + *why);
      }
    }
  }
  if (const json* schedule = JsonAt(*spec, {"materialization", "schedule"});
      schedule != nullptr && schedule->is_string()) {
    if (Status s = ValidateCronSchedule(schedule->get<std::string>()); !s.ok()) {
      return Fail("InvalidSchedule", s.message());
    }
  }
  if (const json* key_ttl = JsonAt(*spec, {"online", "redis", "keyTtl"});
      key_ttl != nullptr &&
      (!key_ttl->is_string() || !ParseDuration(key_ttl->get<std::string>()).ok())) {
    return Fail("InvalidSpec", "spec.online.redis.keyTtl is not a duration");
  }

  const json* redis = JsonAt(*spec, {"online", "redis"});
  if (redis == nullptr || !redis->is_object()) {
    return Fail("InvalidSpec", "spec.online.redis is missing");
  }
  if (const json* address = JsonAt(*redis, {"address"});
      address != nullptr && address->is_string()) {
    if (Status s = ValidateRedisConnection(address->get<std::string>()); !s.ok()) {
      return Fail("InvalidRedisAddress", "spec.online.redis.address: " + s.message());
    }
    return FeatureViewCheck{};
  }
  const std::string secret_name = StringAt(*redis, {"addressSecretRef", "name"});
  const std::string secret_key = StringAt(*redis, {"addressSecretRef", "key"});
  if (secret_name.empty() || secret_key.empty()) {
    return Fail("InvalidSpec", "spec.online.redis needs address or addressSecretRef{name, key}");
  }
  auto secret = secrets_.GetSecret(ns, secret_name);
  if (!secret.ok()) {
    if (secret.status().code() == StatusCode::kNotFound) {
      return Fail("SecretNotFound",
                  "spec.online.redis.addressSecretRef: Secret " + secret_name +
                      " does not exist in namespace " + ns,
                  /*retry_later=*/true);
    }
    if (secret.status().code() == StatusCode::kForbidden) {
      return Fail("SecretForbidden",
                  "spec.online.redis.addressSecretRef: the operator may not read Secret " +
                      secret_name + " in namespace " + ns,
                  /*retry_later=*/true);
    }
    return secret.status().Annotate("reading Secret " + ns + "/" + secret_name);
  }
  Result<std::string> value = SecretValue(*secret, secret_key);
  if (!value.ok() && value.status().code() == StatusCode::kInvalidArgument) {
    return Fail("InvalidSecret",
                "spec.online.redis.addressSecretRef: key " + secret_key + " of Secret " +
                    secret_name + " is not valid base64",
                true);
  }
  if (!value.ok()) {
    return Fail(
        "SecretKeyNotFound",
        "spec.online.redis.addressSecretRef: Secret " + secret_name + " has no key " + secret_key,
        true);
  }
  if (Status s = ValidateRedisConnection(*value); !s.ok()) {
    return Fail("InvalidRedisConnection",
                "spec.online.redis.addressSecretRef: key " + secret_key + " of Secret " +
                    secret_name + ": " + s.message(),
                true);
  }
  return FeatureViewCheck{};
}

Result<Action> FeatureViewReconciler::Reconcile(const ObjectKey& key) {
  ObjectPtr object = reader_.Get(kFeatureViewsGvr, key.ns, key.name);
  if (object == nullptr || JsonAt(*object, {"metadata", "deletionTimestamp"}) != nullptr) {
    return Action::WaitForChange();
  }
  const json& fv = *object;
  ASSIGN_OR_RETURN(FeatureViewCheck check, Check(fv));

  const int64_t generation = MetaGeneration(fv);
  const WallTime now = clock_.WallNow();
  const json* previous = JsonAt(fv, {"status", "conditions"});
  const InvolvedObject involved = InvolvedObject::From(fv);

  json status = json::object();
  if (const json* old = JsonAt(fv, {"status"}); old != nullptr && old->is_object()) status = *old;
  status["observedGeneration"] = generation;

  // 1. What the view runs: its CronJob, and an immediate Job when one is due. A view the
  // operator cannot run starts nothing (its pods would only wait for a Secret or fail).
  std::string resource_version = MetaString(fv, "resourceVersion");
  std::optional<Trigger> started;
  if (check.ok) {
    ASSIGN_OR_RETURN(std::optional<json> cron,
                     MaterializationCronJob(fv, options_.materialization));
    const std::string cron_name = MaterializationCronJobName(key.name);
    ObjectPtr live_cron = reader_.Get(kCronJobsGvr, key.ns, cron_name);
    const json* cron_ref = live_cron ? ControllerRef(*live_cron) : nullptr;
    const bool cron_ours =
        cron_ref != nullptr && cron_ref->value("uid", "") == MetaString(fv, "uid");
    if (cron) {
      if (live_cron == nullptr || !IsSubset(*cron, *live_cron)) {
        auto applied = writer_.Apply(kCronJobsGvr, *cron, /*force=*/cron_ours);
        if (!applied.ok()) return applied.status().Annotate("applying CronJob " + cron_name);
      }
    } else if (cron_ours) {
      RETURN_IF_ERROR(writer_.Delete(kCronJobsGvr, key.ns, cron_name, MetaString(*live_cron, "uid"))
                          .Annotate("deleting CronJob " + cron_name));
    }

    if (std::optional<Trigger> due = DueTrigger(fv)) {
      if (reader_.Get(kJobsGvr, key.ns, due->job_name) == nullptr) {
        ASSIGN_OR_RETURN(json job, MaterializationJob(fv, due->job_name, due->trigger,
                                                      options_.materialization));
        auto applied = writer_.Apply(kJobsGvr, job, /*force=*/false);
        if (!applied.ok()) return applied.status().Annotate("creating Job " + due->job_name);
        spdlog::info("fv={} materialization job={} started ({})", key.String(), due->job_name,
                     due->trigger);
        started = due;
      }
      // The request is consumed once its Job exists; before the status is written, so that a
      // failed status write cannot leave the annotation to name a second Job.
      if (due->consume_annotation) {
        auto patched = writer_.MergePatch(
            kFeatureViewsGvr, key.ns, key.name,
            {{"metadata", {{"annotations", {{api::kMaterializeAnnotation, nullptr}}}}}});
        if (!patched.ok()) {
          return patched.status().Annotate("removing annotation " +
                                           std::string(api::kMaterializeAnnotation));
        }
        resource_version = MetaString(*patched, "resourceVersion");
      }
      status["triggeredGeneration"] = generation;
    }
  }

  // 2. The newest finished run, if the status has not recorded it yet.
  const std::string label = FeatureViewLabelValue(fv);
  std::optional<RunOutcome> run =
      LatestRun(fv, reader_.ListByLabel(kJobsGvr, key.ns, api::kLabelFeatureView, label),
                reader_.ListByLabel(kube::resources::kPods, key.ns, api::kLabelFeatureView, label));
  bool new_run = false;
  if (run) {
    const json* last = JsonAt(status, {"lastRun"});
    if (last == nullptr || !last->is_object()) {
      new_run = true;
    } else if (last->value("job", "") != run->job) {
      // A Job the status recorded may be gone (ttlSecondsAfterFinished, history limits); an
      // older one left behind is not news.
      auto recorded = ParseTime(last->value("completionTime", ""));
      new_run = !recorded.ok() || run->completion_time >= *recorded;
    }
  }
  if (new_run) {
    const std::string completion =
        FormatTime(run->completion_time == WallTime{} ? now : run->completion_time);
    json last_run = {
        {"job", run->job}, {"succeeded", run->succeeded}, {"completionTime", completion}};
    if (!run->succeeded) {
      last_run["reason"] = run->reason;
      last_run["message"] = run->message.substr(0, 4000);
    }
    status["lastRun"] = std::move(last_run);
    if (run->succeeded) {
      json m = {{"completionTime", completion}, {"job", run->job}};
      if (run->result) {
        const api::MaterializeResult& r = *run->result;
        auto run_time = ParseTime(r.run_time);
        const WallTime end = run_time.ok() ? *run_time : run->completion_time;
        m["end"] = FormatTime(end);
        if (const json* ttl = JsonAt(fv, {"spec", "ttl"}); ttl != nullptr && ttl->is_string()) {
          if (auto d = ParseDuration(ttl->get<std::string>()); d.ok() && d->count() > 0) {
            m["start"] = FormatTime(end - *d);
          }
        }
        m["rows"] = std::max<int64_t>(0, r.rows_read);
        m["entitiesWritten"] = std::max<int64_t>(0, r.entities_written);
        m["entitiesSkippedStale"] = std::max<int64_t>(0, r.entities_skipped_stale);
        m["duration"] = FormatSeconds(r.duration_seconds);
        if (auto w = ParseTime(r.source_watermark); w.ok()) m["sourceWatermark"] = FormatTime(*w);
      } else {
        m["end"] = completion;
      }
      status["lastMaterialized"] = std::move(m);
    }
  }

  // 3. Conditions.
  const json* last_run = JsonAt(status, {"lastRun"});
  const bool last_failed =
      last_run != nullptr && last_run->is_object() && !last_run->value("succeeded", true);
  const json* materialized = JsonAt(status, {"lastMaterialized"});
  const bool has_data = materialized != nullptr && materialized->contains("completionTime");
  bool degraded = false;
  std::string degraded_reason, degraded_message;
  json conditions = json::array();
  if (!check.ok) {
    degraded = true;
    degraded_reason = check.reason;
    degraded_message = check.message;
    conditions.push_back(ConditionJson(
        MakeCondition("Ready", false, check.reason, check.message, generation, now), previous));
  } else {
    std::string data;
    if (has_data) {
      data = "the online store holds the materialization finished at " +
             materialized->value("completionTime", "");
      if (materialized->contains("job")) data += " (Job " + materialized->value("job", "") + ")";
    }
    if (last_failed) {
      degraded = true;
      degraded_reason = last_run->value("reason", "MaterializationFailed");
      degraded_message = "materialization Job " + last_run->value("job", "") +
                         " failed: " + last_run->value("message", "");
    }
    if (has_data) {
      conditions.push_back(ConditionJson(
          MakeCondition("Ready", true, "Materialized",
                        last_failed ? data + "; the last run failed (" + degraded_reason +
                                          "), so its values may be older than the source's"
                                    : data,
                        generation, now),
          previous));
    } else if (last_failed) {
      conditions.push_back(ConditionJson(
          MakeCondition("Ready", false, degraded_reason, degraded_message, generation, now),
          previous));
    } else {
      conditions.push_back(ConditionJson(
          MakeCondition("Ready", false, "NotMaterialized",
                        "the spec is valid; no materialization has completed yet", generation, now),
          previous));
    }
  }
  conditions.push_back(ConditionJson(
      degraded ? MakeCondition("Degraded", true, degraded_reason, degraded_message, generation, now)
               : MakeCondition("Degraded", false, "AsExpected",
                               "the spec and its Secret are valid and the last run succeeded",
                               generation, now),
      previous));
  // Conditions of other types are kept.
  if (previous != nullptr && previous->is_array()) {
    for (const auto& p : *previous) {
      const std::string type = p.value("type", "");
      if (type != "Ready" && type != "Degraded") conditions.push_back(p);
    }
  }
  status["conditions"] = std::move(conditions);

  // 4. The status, then Events for what it records.
  const json* old_status = JsonAt(fv, {"status"});
  if (old_status == nullptr || *old_status != status) {
    json intent = {
        {"apiVersion", kApiVersionFv},
        {"kind", "FeatureView"},
        {"metadata",
         {{"name", key.name}, {"namespace", key.ns}, {"resourceVersion", resource_version}}},
        {"status", status}};
    auto written = writer_.ApplyStatus(kFeatureViewsGvr, intent);
    if (!written.ok()) return written.status().Annotate("writing FeatureView status");

    std::string old_reason;
    bool was_degraded = false;
    if (previous != nullptr && previous->is_array()) {
      for (const auto& p : *previous) {
        if (p.value("type", "") == "Degraded") {
          was_degraded = p.value("status", "") == "True";
          old_reason = p.value("reason", "");
        }
      }
    }
    if (!check.ok && (!was_degraded || old_reason != check.reason)) {
      events_.Record(involved, EventSeverity::kWarning, check.reason, check.message);
      spdlog::warn("fv={} degraded: {}: {}", key.String(), check.reason, check.message);
    } else if (check.ok && was_degraded && !degraded) {
      events_.Record(
          involved, EventSeverity::kNormal, "Recovered",
          new_run ? "materialization succeeded again" : "the spec and its Secret are valid again");
      spdlog::info("fv={} recovered", key.String());
    }
    if (new_run) {
      if (run->succeeded) {
        std::string message = "Job " + run->job + " materialized the view";
        if (run->result) {
          const api::MaterializeResult& r = *run->result;
          message += ": " + std::to_string(r.rows_read) + " rows read, " +
                     std::to_string(r.entities_written) + " entities written";
          if (r.entities_skipped_stale > 0) {
            message += ", " + std::to_string(r.entities_skipped_stale) + " skipped as stale";
          }
          message += " in " + FormatSeconds(r.duration_seconds);
        }
        events_.Record(involved, EventSeverity::kNormal, "Materialized", message);
        spdlog::info("fv={} {}", key.String(), message);
      } else {
        events_.Record(involved, EventSeverity::kWarning, "MaterializationFailed",
                       "Job " + run->job + ": " + run->reason + ": " + run->message);
        spdlog::warn("fv={} materialization job={} failed: {}: {}", key.String(), run->job,
                     run->reason, run->message);
      }
    }
  }
  if (started) {
    events_.Record(involved, EventSeverity::kNormal, "MaterializationStarted",
                   "Job " + started->job_name + " (" + started->trigger + ")");
  }
  if (!check.ok && check.retry_later) return Action::RequeueAfter(options_.recheck_secret);
  return Action::WaitForChange();
}

}  // namespace sluice::controllers
