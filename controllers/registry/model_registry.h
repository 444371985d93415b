#pragma once

// A model registry as the operator sees it: `models:/` URIs (MLflow's form) resolved to one
// registered version and the location of its artifacts, which sluice-server then fetches.
//
//   models:/<name>/<version>   one version, pinned
//   models:/<name>@<alias>     whatever version the alias names now (it moves)
//   models:/<name>/<stage>     the latest version in a stage (legacy MLflow stages: Staging,
//                              Production, Archived, None, any case; it moves)
//   models:/<name>/latest      the highest version number in any stage (it moves)
//
// Contract: Resolve is one attempt (the reconciler retries with backoff) and thread-safe; its
// requests together stay within RegistryAccess::timeout.
// Errors: an unknown model, version or alias, or a stage with no version, is kNotFound naming it;
// a registry that does not answer (connect failure, timeout, 5xx, 429) is kUnavailable naming the
// tracking URI, and so is a version still being registered; 401 is kUnauthorized and 403
// kForbidden; an artifact location sluice-server cannot fetch (dbfs:, runs:/, ...) is
// kUnimplemented naming its scheme; anything else unexpected (a failed registration, an answer
// that is not MLflow's JSON) is kInternal. The token never appears in an error or a log line.

#include <chrono>
#include <memory>
#include <string>

#include "lib/base/status.h"

namespace sluice::controllers {

struct RegistryModelRef {
  std::string name;
  std::string version;  // set for models:/<name>/<digits>
  std::string alias;    // set for models:/<name>@<alias>
  std::string stage;    // set for models:/<name>/<stage>, spelled as MLflow does ("Production")
                        // or "latest"
  // True when the reference can move (alias or stage): the operator follows it.
  bool Moves() const { return version.empty(); }
};

// Parses a models:/ URI; anything malformed is kInvalidArgument with a message naming the part.
Result<RegistryModelRef> ParseModelsUri(const std::string& uri);

struct RegistryAccess {
  std::string tracking_uri;  // http(s)://host[:port][/prefix], no trailing slash needed
  std::string token;         // bearer token; empty: none sent
  std::chrono::milliseconds timeout{5000};
};

struct ResolvedModel {
  std::string version;  // the registered version number, as text ("3")
  // Where the version's MLflow model directory is (the folder holding MLmodel), as a URI
  // sluice-server fetches: s3://bucket/prefix, gs://..., http(s)://... (MLflow's proxied
  // artifact endpoint for mlflow-artifacts:/ locations), or file:// . No trailing slash. In
  // MLflow 3 this comes from the version's download URI, not its `source` (which is a
  // models:/m-<id> logged-model reference for models logged with log_model).
  std::string source_uri;
  std::string run_id;  // may be empty
};

class ModelRegistry {
 public:
  virtual ~ModelRegistry() = default;
  virtual Result<ResolvedModel> Resolve(const RegistryModelRef& ref,
                                        const RegistryAccess& access) = 0;
};

// The MLflow REST API (2.0 paths) over libcurl: two requests per Resolve (the version, then its
// download URI). Redirects are not followed, so the token only goes to the tracking host.
std::unique_ptr<ModelRegistry> NewMlflowRegistry();

}  // namespace sluice::controllers
