#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace sluice::testing {
namespace {

// True when a PING on a fresh connection gets an answer (+PONG, or -NOAUTH with a password).
bool Answers(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::write(fd, "PING\r\n", 6) == 6) {
    char buf[64];
    ok = ::read(fd, buf, sizeof(buf)) > 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

Result<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  if (options.log_path.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    options.log_path = std::string(tmp != nullptr ? tmp : "/tmp") + "/sluice-redis-" +
                       std::to_string(::getpid()) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
                       ".log";
  }
  Status last = Internal("redis-server did not start");
  for (int attempt = 0; attempt < 5; ++attempt) {
    ASSIGN_OR_RETURN(int port, PickFreePort());
    std::unique_ptr<RedisServer> server(new RedisServer(options, port));
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;
}

Status RedisServer::Launch() {
  SpawnOptions spawn;
  spawn.argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_),
                "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"};
  if (!options_.password.empty()) {
    spawn.argv.push_back("--requirepass");
    spawn.argv.push_back(options_.password);
  }
  spawn.log_path = options_.log_path;
  spawn.append_log = true;
  ASSIGN_OR_RETURN(process_, Subprocess::Spawn(spawn));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->Running()) {
      return Unavailable("redis-server exited on port " + std::to_string(port_) + ": " +
                         TailFile(options_.log_path, 10));
    }
    if (Answers(port_)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Timeout("redis-server did not answer on port " + std::to_string(port_));
}

RedisServer::~RedisServer() {
  if (process_ != nullptr) {
    (void)process_->Signal(SIGCONT);
    (void)process_->Stop(std::chrono::seconds(5));
  }
}

Status RedisServer::Pause() { return process_->Signal(SIGSTOP); }
Status RedisServer::Resume() { return process_->Signal(SIGCONT); }

Status RedisServer::Stop() {
  (void)process_->Signal(SIGCONT);
  auto status = process_->Stop(std::chrono::seconds(5));
  return status.ok() ? Status::Ok() : status.status();
}

Status RedisServer::Restart() {
  RETURN_IF_ERROR(Stop());
  return Launch();
}

Result<std::string> RedisServer::Cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (!options_.password.empty()) {
    argv.push_back("--no-auth-warning");
    argv.push_back("-a");
    argv.push_back(options_.password);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, std::chrono::seconds(30)));
  if (!r.status.success()) return Internal("redis-cli failed: " + r.output);
  return r.output;
}

}  // namespace sluice::testing
