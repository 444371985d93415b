#pragma once

// The model's files in a local directory, fetched once per pod: sluice-server --model-dir points
// at an emptyDir, so a container restart (crash, OOM, liveness kill) finds the model already
// there and loads it without a second download of possibly gigabytes from S3.
//
// Layout: `<stem>-<16 hex>.<ext>` where the hex is a digest of the URI and the expected sha256,
// so another URI or another pinned digest never reuses the file; beside it
// `<stem>-<16 hex>.reference.json` (the reference predictions) or `<stem>-<16 hex>.no-reference`
// (none exists beside the model, so a restart does not ask again). A file under its final name is
// complete: FetchToFile renames only a whole, verified download.
//
// Contract: one process per directory (the pod's server); not safe against concurrent callers
// on the same directory. Retries as FetchOptions says. A reused model file is re-hashed when a
// digest is pinned, and fetched again if it does not match.

#include <string>

#include "dataplane/runtime/model_source.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

struct LocalModel {
  std::string path;            // the model file
  std::string reference_path;  // "" when the model has no reference
  bool reused = false;         // true: nothing was fetched
  uint64_t bytes = 0;          // size of the model file
  uint64_t fetched_bytes = 0;  // model + reference bytes downloaded by this call
  double fetch_seconds = 0;    // wall time spent fetching (0 when reused)
  int attempts = 0;            // of the model fetch
};

Result<LocalModel> FetchModelToDir(const ModelSource& source, const std::string& dir,
                                   const FetchOptions& options);

// The file name (no directory) the model of `uri` pinned to `sha256` gets in the directory.
std::string LocalModelName(const std::string& uri, const std::string& sha256);

}  // namespace sluice::dataplane
