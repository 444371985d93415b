#pragma once

// The rollout engine: one pure function from what the reconciler read (spec, status, pods'
// readiness, the canary's latest analysis verdict, control annotations, the time) to what it
// should write (replicas per revision, traffic weights, phase, conditions, events) and when to
// look again. No I/O, no threads, no clock reads: every path is unit-tested with explicit times.
//
// The state it carries from one call to the next lives in ModelDeploymentStatus only, so an
// operator restart or a leader change resumes where the last written status left off. Calling
// Decide again with the status it returned and the same observations is a fixed point: the same
// status, no events, no consumed controls.
//
// Invariants of every decision:
// - traffic weights sum to 100, or traffic is empty when no revision has a Ready pod;
// - no weight and no mirror on a revision with 0 Ready pods;
// - the canary's weight never exceeds the share of its full size that is Ready, unless the
//   stable revision has no Ready pod at all (then whatever can serve does);
// - a revision that takes traffic is never asked to scale below what it serves, and the stable
//   revision keeps its full size for the whole canary so that a rollback needs no new pods.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controllers/analysis/analysis.h"
#include "lib/api/model_deployment.h"
#include "lib/api/time.h"
#include "controllers/rollout/policy.h"

namespace sluice::controllers {

// Control annotations (documented in the CRD's spec description).

struct Controls {
  bool pause = false;         // level: held while the annotation is "true"
  bool promote_step = false;  // one-shot promote="true": end the current step now
  bool promote_full = false;  // one-shot promote="full": skip the remaining steps and analysis
  bool abort = false;         // one-shot
  bool retry = false;         // one-shot

  // Reads the annotations of `md`. Values other than those documented are ignored, except that
  // any value of promote other than "full" is a one-step promote.
  static Controls FromAnnotations(const ModelDeployment& md);
};

// What the revision's Deployment reports. Its status describes the spec of
// status.observedGeneration: until the Deployment controller has acted on the last change of
// spec.replicas, the counts in it are those of the previous size, and the readiness of pods it
// has not seen yet is unknown, not "not Ready".
struct RevisionObservation {
  int32_t replicas = 0;        // spec.replicas
  int32_t ready_replicas = 0;  // status.readyReplicas
  // status.replicas: the pods that exist and are not terminating (a scale-down's pods count
  // until the ReplicaSet has deleted them); nullopt when the status does not say.
  std::optional<int32_t> pods;
  bool status_current = true;  // status.observedGeneration >= metadata.generation
};

// Where replica counts come from: spec.replicas, or the autoscaler's recommendation per revision.
struct ReplicaPlan {
  std::optional<int32_t> fixed;               // spec.replicas
  std::map<std::string, int32_t> autoscaled;  // by revision, already within [min, max]
  int32_t min_replicas = 1;                   // for a revision with no recommendation yet
  int32_t max_replicas = 1;
};

struct RolloutInput {
  std::string desired_revision;  // RevisionName of the current spec
  std::optional<std::string> desired_model_version;
  std::optional<std::string> desired_model_uri;
  RolloutPolicy policy;
  ReplicaPlan replicas;
  ModelDeploymentStatus status;                         // as last written
  std::map<std::string, RevisionObservation> observed;  // by revision; absent = no Deployment
  // The canary's newest verdict, when the reconciler ran an analysis this time (see
  // AnalysisWindow); verdicts for another revision are ignored.
  std::optional<Verdict> verdict;
  Controls controls;
  WallTime now;
  int64_t generation = 0;  // metadata.generation, for the conditions' observedGeneration
};

enum class EventType { kNormal, kWarning };

struct Event {
  EventType type = EventType::kNormal;
  std::string reason;
  std::string message;
};

enum class RevisionRole { kStable, kCanary, kRetired };

struct DesiredRevision {
  std::string name;
  RevisionRole role = RevisionRole::kRetired;
  int32_t replicas = 0;
};

struct RolloutDecision {
  // The status to write (observedGeneration and selector are left as they were in the input).
  ModelDeploymentStatus status;
  // Every revision that should have a Deployment, with its replicas; a revision's Deployment
  // not listed here is no longer needed and may be deleted.
  std::vector<DesiredRevision> revisions;
  std::vector<Event> events;
  // The next time the decision can change with no new observation (a pause ending, an analysis
  // falling due, the progress deadline, a scale-down delay). nullopt: only a change does.
  std::optional<std::chrono::milliseconds> requeue_after;
  // One-shot control annotations to remove: acted on, or moot (then an event says why).
  std::vector<std::string> consumed_annotations;
};

RolloutDecision Decide(const RolloutInput& input);

// When the canary's analysis is due, the window it should cover: from the previous check (or
// from when the current step's weight took effect, for the first check) to `now`, at most two
// intervals long. nullopt when no analysis should run: no canary taking traffic, analysis off,
// a full promotion under way, or less than one interval since the last check.
std::optional<Window> AnalysisWindow(const RolloutPolicy& policy,
                                     const ModelDeploymentStatus& status, WallTime now);

// The history Evaluate continues from: status.lastAnalysis, which always belongs to the current
// canaryRevision.
std::optional<AnalysisHistory> AnalysisHistoryFromStatus(const ModelDeploymentStatus& status);

}  // namespace sluice::controllers
