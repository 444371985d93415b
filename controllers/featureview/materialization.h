#pragma once

// Materialization of a FeatureView: the Job and CronJob that run sluice-materialize (pure
// builders of server-side-apply intents), when an immediate run is due (a pure function of the
// FeatureView), and what a finished Job says (from the Job and the termination message of its
// Pod). No I/O here; the reconciler reads the cache, calls these and applies the result.
//
// Jobs: an immediate Job on create, on every spec change (generation bump) and when the
// FeatureView is annotated sluice.dev/materialize=now; a CronJob on spec.materialization.schedule
// (UTC, concurrencyPolicy Forbid). Every Job's name is a function of its trigger, so a reconcile
// repeated after a crash or over a stale cache applies the same Job again instead of starting a
// second one.
//
// The Job needs no API access: sluice-materialize writes its MaterializeResult to
// /dev/termination-log, the kubelet copies it into the Pod's status, and the operator reads it
// from there (terminationMessagePolicy FallbackToLogsOnError puts the log's tail there instead
// when the program died before writing it).

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/api/materialize_command.h"
#include "lib/api/time.h"
#include "lib/base/status.h"
#include "lib/controller/object_io.h"
#include "lib/controller/reconciler.h"
#include "lib/kube/client.h"

namespace sluice::controllers {

extern const kube::GroupVersionResource kJobsGvr;
extern const kube::GroupVersionResource kCronJobsGvr;

// Settings from the operator's flags.
struct MaterializationOptions {
  std::string image;  // the data-plane image (the operator passes its server image)
  std::string image_pull_policy = "IfNotPresent";
  int64_t run_as_user = 65532;
  int32_t backoff_limit = 2;  // retries of a failed run within one Job
  int64_t active_deadline_seconds = 3600;
  // Long enough for the operator to read the result after a restart; the CronJob's history
  // limits bound scheduled Jobs as well.
  int32_t ttl_seconds_after_finished = 86400;
  int32_t successful_jobs_history_limit = 3;
  int32_t failed_jobs_history_limit = 3;
  int64_t starting_deadline_seconds = 300;
  std::string log_format = "json";
};

// The container's name in every materialization pod.
inline constexpr char kMaterializeContainer[] = "materialize";

// The controller ownerReference of everything a FeatureView owns.
nlohmann::json FeatureViewOwnerReference(const nlohmann::json& feature_view);

// sluice-materialize's command line for the view: its config with the source, the result to the
// termination log, the operator's log format.
Result<api::MaterializeCommand> MaterializeCommandFor(const nlohmann::json& feature_view,
                                                      const MaterializationOptions& options);

// "<fv>-<generation>-<hash of trigger>", at most 63 characters (a Job's name becomes a label
// value of its Pods). Equal inputs give equal names.
std::string MaterializationJobName(const std::string& fv_name, int64_t generation,
                                   const std::string& trigger);
// "<fv>-materialize", at most 52 characters (the CronJob controller appends 11 to its Jobs).
std::string MaterializationCronJobName(const std::string& fv_name);

// The immediate Job for `trigger` (what caused it, for the hash and an annotation).
Result<nlohmann::json> MaterializationJob(const nlohmann::json& feature_view,
                                          const std::string& job_name, const std::string& trigger,
                                          const MaterializationOptions& options);
// The CronJob of spec.materialization.schedule; nullopt when the view has no schedule.
Result<std::optional<nlohmann::json>> MaterializationCronJob(const nlohmann::json& feature_view,
                                                             const MaterializationOptions& options);

// Whether an immediate run is due, and which.
struct Trigger {
  std::string job_name;
  std::string trigger;              // "created", "spec-changed" or "requested"
  bool consume_annotation = false;  // remove sluice.dev/materialize once the Job exists
};
// Due when status.triggeredGeneration is not the current generation (a new view, a changed spec)
// or the FeatureView is annotated sluice.dev/materialize=now; one Job serves both. The requested
// Job's name hashes the resourceVersion that carried the annotation, so a repeated reconcile
// names the same Job and the next request a new one.
std::optional<Trigger> DueTrigger(const nlohmann::json& feature_view);

// The newest finished materialization Job of the view among `jobs`, and what it did.
struct RunOutcome {
  std::string job;
  bool succeeded = false;
  WallTime completion_time{};
  // From the Pod's termination message when it could be read; otherwise reason/message come from
  // the Job's conditions.
  std::optional<api::MaterializeResult> result;
  std::string reason;   // failure: a CamelCase reason fit for a condition
  std::string message;  // failure: what went wrong
};
// `jobs` and `pods` as the cache holds them (any; those of other views and unfinished Jobs are
// ignored). nullopt when no Job of the view has finished.
std::optional<RunOutcome> LatestRun(const nlohmann::json& feature_view,
                                    const std::vector<ObjectPtr>& jobs,
                                    const std::vector<ObjectPtr>& pods);

// The sluice.dev/featureview label of the view's CronJob, Jobs and their Pods (the name, cut to
// a label's 63 characters with a hash of the whole): what to look them up by in the cache.
std::string FeatureViewLabelValue(const nlohmann::json& feature_view);
// Whether the Job belongs to the view (its sluice.dev/featureview annotation).
bool IsMaterializationOf(const nlohmann::json& object, const std::string& fv_name);
// The FeatureView a Job or materialization Pod belongs to, for the controller's watches.
std::vector<ObjectKey> FeatureViewOf(const nlohmann::json& object);

// "2.5s".
std::string FormatSeconds(double seconds);

}  // namespace sluice::controllers
