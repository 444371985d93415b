#pragma once

// spec.model as a revision's pods see it. A models:/ URI is resolved through the model registry
// to one registered version and its artifact folder; the revision is built from that (format
// "mlflow", the registry's version number), so an alias that moves to another version is a new
// revision and rolls out like any other change, and one that stays makes none.
//
// When the registry is asked: on the first reconcile of a URI, then (for an alias or a stage
// with registry.follow) once per pollInterval, and at once when sluice.dev/registry-refresh is
// set. Between polls the last answer, kept in status.model, stands, so reconciles of pods and
// analysis cost no registry call and a restarted operator rebuilds the same revision.
//
// Failures: with an earlier answer for the same URI the revisions keep serving it and the error
// is reported (Degraded condition, reason below); without one nothing can be built.

#include <chrono>
#include <optional>
#include <string>

#include "controllers/registry/model_registry.h"
#include "lib/api/model_deployment.h"
#include "lib/api/time.h"
#include "lib/base/status.h"
#include "lib/controller/secret_reader.h"

namespace sluice::controllers {

struct ModelResolutionInput {
  const ModelDeployment* md = nullptr;
  WallTime now;
  // When the registry was last asked for this ModelDeployment by this process (nullopt: never).
  std::optional<WallTime> last_poll;
  // The failure of that last poll, reported until a poll succeeds (OK: it succeeded).
  std::string last_error_reason;
  Status last_error;
  bool refresh_requested = false;         // sluice.dev/registry-refresh
  std::string default_tracking_uri;       // the operator's --mlflow-tracking-uri
  ModelRegistry* registry = nullptr;      // required for models:/ URIs
  SecretReader* secrets = nullptr;        // required when spec.model.credentials is set
};

struct ModelResolution {
  ModelSpec model;                         // what the revision is built from
  std::optional<ModelSourceStatus> status;  // status.model to write (nullopt: none)
  bool polled = false;                     // the registry was asked in this call
  // A failure the revisions survive (an earlier answer is kept): the Degraded reason and the
  // error. Reasons: RegistryUnavailable, RegistryModelNotFound, RegistryForbidden,
  // RegistryError, RegistryNotConfigured, CredentialsSecretNotFound, CredentialsForbidden.
  std::string degraded_reason;
  Status degraded;
  std::optional<std::chrono::milliseconds> requeue_after;  // the next poll
};

// The Degraded reason for a registry or Secret error.
std::string RegistryErrorReason(const Status& error);

// Resolves spec.model. An error means no revision can be built for the current spec (no earlier
// answer to fall back on): its message names the cause, and RegistryErrorReason gives the
// condition's reason.
Result<ModelResolution> ResolveModel(const ModelResolutionInput& in);

}  // namespace sluice::controllers
