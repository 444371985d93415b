#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <system_error>
#include <thread>

extern char** environ;

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(std::string_view what, int err) {
  return std::string(what) + ": " + std::generic_category().message(err);
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

Result<std::string> ResolveProgram(const std::string& name) {
  if (name.empty()) return InvalidArgument("empty argv[0]");
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): nobody sets it
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return NotFound(name + " not found in PATH");
}

// The test's environment with `overrides` ("NAME=value") added or replacing entries by name.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> by_name;
  std::vector<std::string> order;
  auto put = [&](const std::string& entry) {
    std::string name = entry.substr(0, entry.find('='));
    if (by_name.find(name) == by_name.end()) order.push_back(name);
    by_name[name] = entry;
  };
  for (char** e = environ; e && *e; ++e) put(*e);
  for (const auto& entry : overrides) put(entry);
  std::vector<std::string> out;
  out.reserve(order.size());
  for (const auto& name : order) out.push_back(by_name[name]);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus out;
  if (WIFEXITED(status)) {
    out.exited = true;
    out.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.signal = WTERMSIG(status);
  }
  return out;
}

// Forks and execs argv with stdout/stderr on `out_fd` and stdin on /dev/null. Everything the child
// touches is prepared before fork: after fork in a multi-threaded test only async-signal-safe
// calls are allowed. Exec failures come back through a close-on-exec pipe.
Result<pid_t> ForkExec(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       int out_fd, const std::string& working_dir) {
  if (argv.empty()) return InvalidArgument("empty argv");
  ASSIGN_OR_RETURN(std::string program, ResolveProgram(argv[0]));
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnvironment(env);
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_envs = CStrings(envs);

  Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) return Internal(ErrnoText("open /dev/null", errno));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Internal(ErrnoText("pipe2", errno));
  Fd err_read(pipe_fds[0]);
  Fd err_write(pipe_fds[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Internal(ErrnoText("fork", errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died between fork and prctl; then nobody would kill us.
    if (::getppid() != parent) ::_exit(127);
    sigset_t all;
    ::sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::signal(SIGPIPE, SIG_DFL);  // NOLINT(concurrency-mt-unsafe): the child has one thread
    const bool ready = ::dup2(null_in.get(), 0) >= 0 && ::dup2(out_fd, 1) >= 0 &&
                       ::dup2(out_fd, 2) >= 0 &&
                       (working_dir.empty() || ::chdir(working_dir.c_str()) == 0);
    if (ready) ::execve(program.c_str(), c_args.data(), c_envs.data());
    int err = errno;
    ssize_t ignored = ::write(err_write.get(), &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  err_write.Reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_read.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(child_errno)) {
    int status;
    ::waitpid(pid, &status, 0);
    return Internal(ErrnoText("exec " + program, child_errno));
  }
  return pid;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return "exit code " + std::to_string(code);
  const char* name = ::sigabbrev_np(signal);
  return "killed by signal " + std::to_string(signal) +
         (name ? std::string(" (SIG") + name + ")" : "");
}

Result<std::unique_ptr<Subprocess>> Subprocess::Spawn(const SpawnOptions& options) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options.append_log ? O_APPEND : O_TRUNC);
  const std::string log = options.log_path.empty() ? "/dev/null" : options.log_path;
  Fd out(::open(log.c_str(), flags, 0644));
  if (out.get() < 0) return Internal(ErrnoText("open " + log, errno));
  ASSIGN_OR_RETURN(pid_t pid, ForkExec(options.argv, options.env, out.get(), options.working_dir));
  return std::unique_ptr<Subprocess>(new Subprocess(pid, options.log_path));
}

Subprocess::~Subprocess() {
  if (!exit_status_) (void)Stop(std::chrono::seconds(10));
}

bool Subprocess::Running() {
  if (exit_status_) return false;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_status_ = FromWaitStatus(status);
    return false;
  }
  if (r < 0) {
    // ECHILD: someone else reaped it (e.g. a SIGCHLD handler set to SIG_IGN); it is gone.
    exit_status_ = ExitStatus{};
    return false;
  }
  return true;
}

Result<ExitStatus> Subprocess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (Running()) {
    if (Clock::now() >= deadline) {
      return Timeout("pid " + std::to_string(pid_) + " still running after " +
                     std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  return *exit_status_;
}

Result<ExitStatus> Subprocess::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return *exit_status_;
  ::kill(pid_, SIGTERM);
  auto waited = Wait(grace);
  if (waited.ok()) return waited;
  ::kill(pid_, SIGKILL);
  return Wait(std::chrono::seconds(10));
}

Status Subprocess::Signal(int signal) {
  if (!Running()) return FailedPrecondition("pid " + std::to_string(pid_) + " has exited");
  if (::kill(pid_, signal) != 0) return Internal(ErrnoText("kill", errno));
  return Status::Ok();
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout,
                                 const std::vector<std::string>& env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Internal(ErrnoText("pipe2", errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  ASSIGN_OR_RETURN(pid_t pid, ForkExec(argv, env, write_end.get(), ""));
  write_end.Reset();

  CommandResult result;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = FromWaitStatus(status);
  if (timed_out) {
    return Timeout(argv[0] + " did not finish within " + std::to_string(timeout.count()) +
                   " ms; output so far: " + result.output);
  }
  return result;
}

std::string TailFile(const std::string& path, int max_lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - std::streamoff{256} * 1024);
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int lines = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++lines == max_lines) break;
  }
  return text.substr(pos);
}

Result<int> PickFreePort() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Internal(ErrnoText("socket", errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Internal(ErrnoText("bind 127.0.0.1:0", errno));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Internal(ErrnoText("getsockname", errno));
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace sluice::testing
