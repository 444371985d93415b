#pragma once

// A real redis-server for tests: on 127.0.0.1, a free port, no persistence, optionally with a
// password; started and waited for (it answers PING), stopped by the destructor. Pause() and
// Resume() (SIGSTOP/SIGCONT) make it hang without closing connections; Stop() and Restart() take
// it away and bring it back on the same port.

#include <chrono>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "tests/support/process.h"

namespace sluice::testing {

struct RedisServerOptions {
  std::string password;  // empty: no AUTH
  std::string log_path;  // empty: a file under the system temp dir
};

class RedisServer {
 public:
  static Result<std::unique_ptr<RedisServer>> Start(RedisServerOptions options = {});
  ~RedisServer();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  Status Pause();
  Status Resume();
  Status Stop();
  Status Restart();

  // Runs redis-cli against the server (binary-safe arguments) and returns its raw output.
  Result<std::string> Cli(const std::vector<std::string>& args);

 private:
  RedisServer(RedisServerOptions options, int port) : options_(std::move(options)), port_(port) {}
  Status Launch();

  RedisServerOptions options_;
  int port_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace sluice::testing
