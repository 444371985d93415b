#pragma once

// Child processes for tests: real servers (etcd, kube-apiserver, redis-server, prometheus,
// sluice-server) started from argv, with their output in a log file, that never outlive the test.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::testing {

struct SpawnOptions {
  // argv[0] is the program; a name without '/' is looked up in PATH.
  std::vector<std::string> argv;
  // "NAME=value" entries added to (or replacing in) the test's own environment.
  std::vector<std::string> env;
  // stdout and stderr go here (created or truncated); empty sends both to /dev/null.
  std::string log_path;
  // Appends to log_path instead of truncating (a restarted server keeps its earlier lines).
  bool append_log = false;
  // Empty keeps the test's working directory.
  std::string working_dir;
};

// How a child ended: an exit code, or the signal that killed it.
struct ExitStatus {
  bool exited = false;  // true: `code` is valid; false: `signal` is
  int code = 0;
  int signal = 0;

  bool success() const { return exited && code == 0; }
  std::string ToString() const;
};

// One child process. The child gets SIGKILL when the thread that spawned it exits
// (PR_SET_PDEATHSIG), so a crashed or killed test leaves nothing behind; spawn long-lived servers
// from the main thread or from a thread that outlives them. The destructor kills a child that is
// still running. Not thread-safe: one thread owns a Subprocess.
class Subprocess {
 public:
  // Fails (without leaving a process) when the log cannot be opened or exec fails.
  static Result<std::unique_ptr<Subprocess>> Spawn(const SpawnOptions& options);

  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Reaps the child if it has ended; never blocks.
  bool Running();
  // The exit status once the child has been reaped.
  const std::optional<ExitStatus>& exit_status() const { return exit_status_; }

  // Waits up to `timeout` for the child to end. kTimeout if it is still running.
  Result<ExitStatus> Wait(std::chrono::milliseconds timeout);

  // SIGTERM, then SIGKILL if the child has not ended after `grace`; returns how it ended.
  // Idempotent: on a child that already ended it returns the recorded status.
  Result<ExitStatus> Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

  // Sends `signal` without waiting (e.g. SIGSTOP to simulate a hung server).
  Status Signal(int signal);

 private:
  Subprocess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  std::string log_path_;
  std::optional<ExitStatus> exit_status_;
};

// Runs argv to completion (output captured, stdout and stderr merged) within `timeout`; the child
// is killed on timeout. For short tools such as kubectl or openssl.
struct CommandResult {
  ExitStatus status;
  std::string output;
};
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60),
                                 const std::vector<std::string>& env = {});

// The last `max_lines` lines of a text file ("" if it cannot be read); for failure messages.
std::string TailFile(const std::string& path, int max_lines = 40);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released). Another
// process can take it before the caller binds it, so servers started on it are retried on
// "address already in use".
Result<int> PickFreePort();

}  // namespace sluice::testing
