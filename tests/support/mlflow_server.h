#pragma once

// A real MLflow tracking server for tests (PyPI mlflow from e2e/scripts/registry-venv.sh): on
// 127.0.0.1, a free port, one worker, a fresh SQLite backend store in a temporary folder, and
// artifacts either served through the server's proxy (mlflow-artifacts:/, the default) or left
// for clients to read directly from the artifact root. Start returns once /health answers; the
// destructor stops the server (and its uvicorn child: tests/support/mlflow_launch.py) and removes
// the folder.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "tests/support/process.h"

namespace sluice::testing {

// The registry venv's python (runs e2e/scripts/registry-venv.sh, which installs on first use).
Result<std::string> RegistryPython(const std::string& source_dir);

struct MlflowServerOptions {
  std::string python;      // required: RegistryPython()
  std::string source_dir;  // required: the repository (for tests/support/mlflow_launch.py)
  // Where artifacts are stored: empty is a folder under the server's temporary folder; or
  // s3://bucket/prefix (with MLFLOW_S3_ENDPOINT_URL etc. in `env`).
  std::string artifacts_destination;
  // true: --artifacts-destination, clients see mlflow-artifacts:/ URIs served by the proxy.
  // false: --no-serve-artifacts --default-artifact-root, clients see the store's own URIs
  // (file://, s3://) and read them directly.
  bool serve_artifacts = true;
  // "NAME=value" for the server (MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
  std::vector<std::string> env;
  std::chrono::seconds start_timeout{240};
};

class MlflowServer {
 public:
  static Result<std::unique_ptr<MlflowServer>> Start(MlflowServerOptions options);
  ~MlflowServer();

  int port() const { return port_; }
  std::string tracking_uri() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The temporary folder (mlflow.db, the log, local artifacts).
  const std::string& dir() const { return dir_; }
  std::string log_path() const { return dir_ + "/mlflow.log"; }
  // How long the last start took, until /health answered.
  std::chrono::milliseconds start_duration() const { return start_duration_; }

  Status Stop();

 private:
  MlflowServer(MlflowServerOptions options, std::string dir)
      : options_(std::move(options)), dir_(std::move(dir)) {}
  Status Launch();

  MlflowServerOptions options_;
  std::string dir_;
  int port_ = 0;
  std::chrono::milliseconds start_duration_{0};
  std::unique_ptr<Subprocess> process_;
};

}  // namespace sluice::testing
