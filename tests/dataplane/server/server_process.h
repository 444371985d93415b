#pragma once

// Runs the real sluice-server binary for tests: fork/exec on 127.0.0.1 with port 0, learns the
// port from --port-file, waits for readiness by polling with a deadline, and stops it with a
// signal. The destructor kills a server that is still running.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/lib/http/http_test_client.h"

namespace sluice::testing {

class ServerProcess {
 public:
  // `args` are added after the address/port flags; `env` (NAME=value) is added to the inherited
  // environment. stdout and stderr go to `log_path`.
  bool Start(const std::string& binary, std::vector<std::string> args,
             const std::vector<std::string>& env = {}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-server-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    port_file_ = dir_ / "port";
    log_path_ = dir_ / "server.log";
    std::vector<std::string> argv = {binary, "--http-address", "127.0.0.1", "--http-port", "0",
                                     "--port-file", port_file_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    // Built before fork: the child of a threaded process may only call async-signal-safe functions.
    std::vector<std::string> envs;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view kv(*e);
      const auto name = kv.substr(0, kv.find('='));
      bool replaced = false;
      for (const auto& o : env) replaced = replaced || o.substr(0, o.find('=')) == name;
      if (!replaced) envs.emplace_back(kv);
    }
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> cenv;
    for (auto& e : envs) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execve(cargv[0], cargv.data(), cenv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0) {
        port_ = static_cast<uint16_t>(port);
        return true;
      }
      if (Exited()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Polls /v2/health/ready until 200 or the deadline.
  bool WaitReady(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      HttpTestClient c(port_, std::chrono::seconds(2));
      auto r = c.Get("/v2/health/ready");
      if (r && r->status == 200) return true;
      if (Exited()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Waits for the process to exit; its exit code, or nullopt on timeout or death by signal.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Exited()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!exit_status_) return std::nullopt;
    if (!WIFEXITED(*exit_status_)) return std::nullopt;
    return WEXITSTATUS(*exit_status_);
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  uint16_t port() const { return port_; }

  ~ServerProcess() {
    if (pid_ > 0 && !exit_status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

 private:
  bool Exited() {
    if (exit_status_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) exit_status_ = st;
    return exit_status_.has_value();
  }

  static inline int counter_ = 0;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::filesystem::path dir_, port_file_, log_path_;
  std::optional<int> exit_status_;
};

}  // namespace sluice::testing
