#include "controllers/modeldeployment/model_resolution.h"

#include "lib/api/duration.h"

namespace sluice::controllers {
namespace {

constexpr std::chrono::milliseconds kDefaultPoll{30'000};

Status WithReason(Status s, const char* reason) {
  s.WithReason(reason);
  return s;
}

// The registry token from spec.model.credentials, or "" when no Secret is named or it has no
// MLFLOW_TRACKING_TOKEN key.
Result<std::string> RegistryToken(const ModelDeployment& md, SecretReader* secrets) {
  const ModelSpec& model = md.spec.model;
  if (!model.credentials || !model.credentials->secret_ref) return std::string();
  const std::string& name = model.credentials->secret_ref->name;
  if (secrets == nullptr) {
    return WithReason(FailedPrecondition("the operator has no Secret reader"), "RegistryError");
  }
  auto secret = secrets->GetSecret(md.Namespace(), name);
  if (!secret.ok()) {
    if (secret.status().code() == StatusCode::kNotFound) {
      return WithReason(NotFound("spec.model.credentials.secretRef: Secret " + name +
                                 " does not exist in namespace " + md.Namespace()),
                        "CredentialsSecretNotFound");
    }
    if (secret.status().code() == StatusCode::kForbidden) {
      return WithReason(Status(StatusCode::kForbidden,
                               "spec.model.credentials.secretRef: the operator may not read "
                               "Secret " + name + " in namespace " + md.Namespace()),
                        "CredentialsForbidden");
    }
    return secret.status().Annotate("reading Secret " + md.Namespace() + "/" + name);
  }
  auto token = SecretValue(*secret, "MLFLOW_TRACKING_TOKEN");
  if (!token.ok()) {
    if (token.status().code() == StatusCode::kNotFound) return std::string();
    return WithReason(InvalidArgument("spec.model.credentials.secretRef: Secret " + name + ": " +
                                      token.status().message()),
                      "CredentialsInvalid");
  }
  return *token;
}

}  // namespace

std::string RegistryErrorReason(const Status& error) {
  if (!error.reason().empty()) return error.reason();
  switch (error.code()) {
    case StatusCode::kNotFound:
      return "RegistryModelNotFound";
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
      return "RegistryUnavailable";
    case StatusCode::kForbidden:
    case StatusCode::kUnauthorized:
      return "RegistryForbidden";
    case StatusCode::kInvalidArgument:
    case StatusCode::kUnimplemented:
      return "RegistryUnsupported";
    default:
      return "RegistryError";
  }
}

Result<ModelResolution> ResolveModel(const ModelResolutionInput& in) {
  const ModelDeployment& md = *in.md;
  const ModelSpec& spec = md.spec.model;
  ModelResolution out;
  out.model = spec;
  if (!spec.uri.starts_with("models:/")) return out;

  ASSIGN_OR_RETURN(RegistryModelRef ref, ParseModelsUri(spec.uri));
  const RegistrySpec registry = spec.registry.value_or(RegistrySpec{});
  const std::string tracking = registry.tracking_uri.value_or(in.default_tracking_uri);
  if (tracking.empty()) {
    return WithReason(FailedPrecondition("spec.model.uri " + spec.uri +
                                         " needs an MLflow tracking server: set "
                                         "spec.model.registry.trackingUri, or the operator's "
                                         "--mlflow-tracking-uri"),
                      "RegistryNotConfigured");
  }
  std::chrono::milliseconds poll = kDefaultPoll;
  if (registry.poll_interval) {
    auto d = ParseDuration(*registry.poll_interval);
    if (d.ok() && d->count() > 0) poll = *d;
  }
  const bool follow = ref.Moves() && registry.follow.value_or(true);

  // The last answer for this URI, if any.
  std::optional<ModelSourceStatus> known;
  if (md.status && md.status->model && md.status->model->uri == spec.uri &&
      md.status->model->version && md.status->model->source) {
    known = md.status->model;
  }
  const bool due = !known || in.refresh_requested ||
                   (follow && (!in.last_poll || in.now - *in.last_poll >= poll));
  if (follow) out.requeue_after = poll;

  ModelSourceStatus status = known.value_or(ModelSourceStatus{});
  status.uri = spec.uri;
  if (!due) {
    out.degraded_reason = in.last_error_reason;
    out.degraded = in.last_error;
  } else {
    out.polled = true;
    Result<ResolvedModel> resolved = [&]() -> Result<ResolvedModel> {
      if (in.registry == nullptr) {
        return WithReason(FailedPrecondition("the operator has no model registry client"),
                          "RegistryNotConfigured");
      }
      ASSIGN_OR_RETURN(std::string token, RegistryToken(md, in.secrets));
      RegistryAccess access;
      access.tracking_uri = tracking;
      access.token = std::move(token);
      return in.registry->Resolve(ref, access);
    }();
    if (!resolved.ok()) {
      if (!known) return resolved.status();
      out.degraded_reason = RegistryErrorReason(resolved.status());
      out.degraded = resolved.status();
    } else if (!known || status.version != resolved->version ||
               status.source != resolved->source_uri) {
      status.version = resolved->version;
      status.source = resolved->source_uri;
      status.resolved_time = in.now;
    }
  }
  // A refusal holds while the registry names that version; another version lifts it.
  if (status.refused_version && status.refused_version != status.version) {
    status.refused_version.reset();
    status.refused_reason.reset();
  }
  out.status = status;

  out.model.uri = *status.source;
  out.model.format = "mlflow";
  if (!out.model.version) out.model.version = *status.version;
  RegistrySpec pinned;
  pinned.tracking_uri = tracking;  // only the server's view: where its token may be sent
  out.model.registry = pinned;
  return out;
}

}  // namespace sluice::controllers
