#pragma once

// How sluice-router protects callers from a bad canary, defined once for the router (which applies
// it) and the operator (whose analysis reads what the router reports):
// - retry on stable: a request a canary answers with a 5xx, or does not answer (connect failure,
//   reset, timeout), is sent once to the stable revision (spec.traffic.retryOnStable, default
//   true), within the caller's deadline and a per-router retry budget;
// - the guard: a canary whose error rate over its recent requests (the last analysis interval) is
//   above the analysis' errorRate limit, over at least kGuardMinSamples requests and with at least
//   kGuardMinErrors errors, stops getting
//   new requests (they go to stable), and the router exports sluice_router_guard_tripped{revision}
//   = 1, which the analysis takes as a failed check. The window is the analysis' own, so the guard
//   judges like the analysis (one transient error among a healthy second's requests does not trip
//   it); how fast it trips depends on the canary's request rate, not on the window: a canary that
//   fails trips as soon as it has answered kGuardMinSamples requests.

#include <cstdint>

#include "lib/api/model_deployment.h"

namespace sluice::api {

// The errorRate limit of the default analysis (spec.rollout.canary.analysis without metrics).
inline constexpr double kDefaultMaxErrorRate = 0.01;
// The guard's limit when the analysis lists metrics but no errorRate with a max: a canary failing
// half its requests is broken whatever else is measured.
inline constexpr double kGuardFallbackMaxErrorRate = 0.5;
// Outcomes the guard needs within its window before it may trip.
inline constexpr int64_t kGuardMinSamples = 20;
// Errors the guard needs within its window before it may trip: at a canary's low request rate
// (20 to 100 requests a window) one transient error is already above a 1 % limit, and a single
// error says nothing about a revision; a broken one makes three in its first few requests.
inline constexpr int64_t kGuardMinErrors = 3;
// The guard's window when the analysis sets no interval (the analysis' default interval), and
// the bounds it is kept within.
inline constexpr int64_t kGuardWindowMs = 5000;
inline constexpr int64_t kGuardMinWindowMs = 1000;
inline constexpr int64_t kGuardMaxWindowMs = 60000;
// Retries allowed per 100 primary requests (a token bucket per router; see the router's README).
inline constexpr int64_t kRetryBudgetPercent = 10;

// spec.traffic.retryOnStable with its default (true).
bool RetryOnStable(const controllers::ModelDeploymentSpec& spec);

// The guard's error-rate limit: the max of the canary analysis' builtin errorRate metric (the
// smallest when there are several), kDefaultMaxErrorRate when the analysis lists no metrics,
// kGuardFallbackMaxErrorRate when it lists metrics but none is an errorRate with a max.
double GuardMaxErrorRate(const controllers::ModelDeploymentSpec& spec);

// The guard's window: spec.rollout.canary.analysis.interval (kGuardWindowMs when absent or not a
// duration), within [kGuardMinWindowMs, kGuardMaxWindowMs].
int64_t GuardWindowMs(const controllers::ModelDeploymentSpec& spec);

}  // namespace sluice::api
