#pragma once

// MLflow model directories (what a registry's models:/ URI resolves to): the `MLmodel` file that
// describes the directory, and which file in it sluice-server loads. Parsing only; fetching is
// model_source.h's.
//
// An MLmodel file is YAML with one entry per flavor under `flavors`. sluice-server serves the
// xgboost flavor (mlflow.xgboost.log_model / save_model):
//   flavors:
//     xgboost: {data: model.json, model_format: json, model_class: ..., xgb_version: ...}

#include <string>
#include <string_view>

#include "dataplane/runtime/model_source.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

struct MlflowModelFile {
  // The model file, relative to the model directory ("model.json"); never absolute, never "..".
  std::string data;
  // ModelSource::format: "xgboost-json", "xgboost-ubj", or "auto" (MLflow's deprecated binary
  // "xgb" format, or an MLmodel from before model_format existed: decided by content).
  std::string format;
};

// Errors: text that is not an MLmodel document, or an xgboost flavor without a usable `data`,
// is kInvalidArgument; a model without an xgboost flavor (only python_function, sklearn, ...) or
// an xgboost model_format we do not know is kUnimplemented naming what it has.
Result<MlflowModelFile> ParseMlflowModel(std::string_view mlmodel_text);

// The URI of `data` (relative, as in MlflowModelFile) inside the directory `dir_uri`
// (file://, s3://, http(s)://; a trailing slash or none). For http(s) and file:// the file name
// is percent-encoded; for http(s) a query string of `dir_uri` stays at the end of the result.
std::string MlflowModelFileUri(const std::string& dir_uri, const std::string& data);

// True when `uri` belongs to the tracking server at `tracking_uri`: the same scheme, user info,
// host and port (compared without case) and a path at or below the tracking URI's path (a
// trailing slash on either is ignored). Only such fetches may carry the tracking server's token;
// "http://mlflow:5000" does not cover "http://mlflow:50001/..." nor "http://mlflow:5000-x/...".
bool UnderTrackingUri(std::string_view uri, std::string_view tracking_uri);

// Fetches `<dir_uri>/MLmodel` (one attempt per FetchUri's retry rules) and parses it: which file
// of the folder to load, in which format. Errors name the MLmodel URI.
Result<MlflowModelFile> ResolveMlflowModel(const std::string& dir_uri, const FetchOptions& fetch);

// ResolveMlflowModel with the MLmodel kept in `model_dir` beside the model (model_store.h's
// naming, `MLmodel-<16 hex>`), so a restart of the pod's server reads it from there and fetches
// nothing, as it does for the model. Only an MLmodel that parsed is kept. `*reused` (optional)
// tells whether it came from the directory.
Result<MlflowModelFile> ResolveMlflowModelInDir(const std::string& dir_uri,
                                                const std::string& model_dir,
                                                const FetchOptions& fetch, bool* reused = nullptr);

}  // namespace sluice::dataplane
