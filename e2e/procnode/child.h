#pragma once

// A container process and the probe/preStop HTTP call. The child runs in its own process group
// (so a signal reaches whatever it forks) and gets SIGKILL when the thread that started it ends
// (PR_SET_PDEATHSIG): a crashed sluice-procnode leaves no pod behind.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "e2e/procnode/launch.h"

namespace sluice::procnode {

struct ExitInfo {
  int exit_code = 0;  // 128 + signal when killed
  int signal = 0;
};

// Owned by one thread: the one that called Start, which must outlive the process.
class ChildProcess {
 public:
  // Starts launch.binary with launch.argv/env; stdout and stderr append to `log_path`.
  static Result<std::unique_ptr<ChildProcess>> Start(const Launch& launch,
                                                     const std::string& log_path,
                                                     const std::string& working_dir);
  // Kills the group with SIGKILL and reaps it if still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Reaps without blocking; the exit once it ended.
  std::optional<ExitInfo> Poll();
  // Signals the whole process group; no-op once reaped.
  void Signal(int signal);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<ExitInfo> exit_;
};

// GET http://host:port/path within `timeout`; the HTTP status, or an error when no answer came.
Result<int> HttpGet(const std::string& host, int port, const std::string& path,
                    std::chrono::milliseconds timeout);

}  // namespace sluice::procnode
