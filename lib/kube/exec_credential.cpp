#include "lib/kube/exec_credential.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <vector>

extern char** environ;

namespace sluice::kube {
namespace {

using Json = nlohmann::json;
using Wall = Clock::Wall;

std::string Base64Encode(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(a[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

// RFC 3339 ("2026-12-07T01:00:00Z", "...:00.123+02:00"), as metav1.Time is written.
std::optional<Wall::time_point> ParseRfc3339(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  size_t pos = 19;
  std::chrono::nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (scale > 0) frac += std::chrono::nanoseconds((s[pos] - '0') * scale);
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  int offset_seconds = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int h = 0, m = 0;
    if (pos + 6 != s.size() || std::sscanf(s.c_str() + pos + 1, "%2d:%2d", &h, &m) != 2) {
      return std::nullopt;
    }
    offset_seconds = (s[pos] == '+' ? 1 : -1) * (h * 3600 + m * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return Wall::from_time_t(t - offset_seconds) + std::chrono::duration_cast<Wall::duration>(frac);
}

std::string BuildExecInfo(const Config& config) {
  Json spec = {{"interactive", false}};
  if (config.exec->provide_cluster_info) {
    Json cluster = {{"server", config.server}};
    if (!config.tls_server_name.empty()) cluster["tls-server-name"] = config.tls_server_name;
    if (config.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!config.ca_pem.empty()) cluster["certificate-authority-data"] = Base64Encode(config.ca_pem);
    if (!config.proxy_url.empty()) cluster["proxy-url"] = config.proxy_url;
    if (!config.exec->cluster_config_json.empty()) {
      Json ext = Json::parse(config.exec->cluster_config_json, nullptr, false);
      if (!ext.is_discarded()) cluster["config"] = std::move(ext);
    }
    spec["cluster"] = std::move(cluster);
  }
  return Json{{"apiVersion", config.exec->api_version}, {"kind", "ExecCredential"}, {"spec", spec}}
      .dump();
}

struct RunOutput {
  int exit_status = 0;  // as from waitpid
  std::string out;
  std::string err_tail;
  bool out_too_large = false;
  bool timed_out = false;
};

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Runs argv[0] (looked up in $PATH when it has no '/') with `env`, stdin from /dev/null, and
// collects its output. Returns the spawn error (errno) as a negative exit_status-free Status.
Result<RunOutput> RunCommand(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env,
                             const ExecCredentialOptions& options, int* spawn_errno) {
  *spawn_errno = 0;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + strerror(errno));
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + strerror(errno));
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The plugin starts with default signal handling whatever this process blocks or ignores.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  pid_t pid = -1;
  const bool search = argv[0].find('/') == std::string::npos;
  int rc = search ? posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), cenv.data())
                  : posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    *spawn_errno = rc;
    return Unavailable(strerror(rc));
  }
  out_w.Close();
  err_w.Close();

  RunOutput result;
  std::string err;
  const auto deadline = std::chrono::steady_clock::now() + options.run_timeout;
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    char buf[8192];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        (i == 0 ? out_r : err_r).Close();
        continue;
      }
      if (i == 0) {
        if (result.out.size() + got > options.max_output_bytes) {
          result.out_too_large = true;
        } else {
          result.out.append(buf, got);
        }
      } else {
        err.append(buf, got);
        if (err.size() > 2 * options.stderr_tail) err.erase(0, err.size() - options.stderr_tail);
      }
    }
  }
  if (result.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_status = status;
  if (err.size() > options.stderr_tail) err.erase(0, err.size() - options.stderr_tail);
  while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
  result.err_tail = std::move(err);
  return result;
}

std::string StderrSuffix(const std::string& tail) {
  return tail.empty() ? std::string("; it wrote nothing to stderr")
                      : "; its stderr ends with: " + tail;
}

}  // namespace

Result<ExecCredential> ParseExecCredential(const std::string& output,
                                           const std::string& api_version) {
  Json j = Json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("output is not a JSON object");
  const std::string kind = j.value("kind", "");
  if (kind != "ExecCredential") {
    return InvalidArgument("kind is \"" + kind + "\", not \"ExecCredential\"");
  }
  const std::string version = j.value("apiVersion", "");
  if (version != api_version) {
    return InvalidArgument("apiVersion is \"" + version + "\", but the kubeconfig asks for \"" +
                           api_version + "\"");
  }
  const Json status = j.value("status", Json());
  if (!status.is_object()) return InvalidArgument("no status in the ExecCredential");
  ExecCredential c;
  auto str = [&](const char* key) -> Result<std::string> {
    auto it = status.find(key);
    if (it == status.end() || it->is_null()) return std::string();
    if (!it->is_string()) return InvalidArgument(std::string("status.") + key + " is not a string");
    return it->get<std::string>();
  };
  ASSIGN_OR_RETURN(c.token, str("token"));
  ASSIGN_OR_RETURN(c.client_cert_pem, str("clientCertificateData"));
  ASSIGN_OR_RETURN(c.client_key_pem, str("clientKeyData"));
  if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
    return InvalidArgument(
        "status has only one of clientCertificateData and clientKeyData; both are needed");
  }
  if (c.token.empty() && c.client_cert_pem.empty()) {
    return InvalidArgument("status has neither a token nor clientCertificateData/clientKeyData");
  }
  ASSIGN_OR_RETURN(std::string expiry, str("expirationTimestamp"));
  if (!expiry.empty()) {
    c.expiry = ParseRfc3339(expiry);
    if (!c.expiry) {
      return InvalidArgument("status.expirationTimestamp \"" + expiry + "\" is not RFC 3339");
    }
  }
  return c;
}

Result<std::unique_ptr<ExecCredentialProvider>> ExecCredentialProvider::Create(
    const Config& config, ExecCredentialOptions options) {
  if (!config.exec) return InvalidArgument("exec credential: the config has no exec plugin");
  if (config.exec->command.empty()) return InvalidArgument("exec credential: empty command");
  return std::unique_ptr<ExecCredentialProvider>(new ExecCredentialProvider(config, options));
}

ExecCredentialProvider::ExecCredentialProvider(const Config& config, ExecCredentialOptions options)
    : exec_(*config.exec),
      exec_info_(BuildExecInfo(config)),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()) {}

bool ExecCredentialProvider::Fresh(const ExecCredential& c, Wall::time_point obtained) const {
  if (!c.expiry) return true;
  auto margin = std::chrono::duration_cast<Wall::duration>(options_.refresh_before);
  margin = std::min(margin, (*c.expiry - obtained) / 2);
  return clock_.WallNow() < *c.expiry - std::max(margin, Wall::duration::zero());
}

Result<std::shared_ptr<const ExecCredential>> ExecCredentialProvider::Get() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ && Fresh(*cached_, obtained_)) return cached_;
  }
  std::lock_guard<std::mutex> run_lock(run_mu_);
  {
    // Another caller may have run the plugin while this one waited.
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ && Fresh(*cached_, obtained_)) return cached_;
  }
  return Run();
}

bool ExecCredentialProvider::Invalidate(const ExecCredential* used) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cached_ || cached_.get() != used) return false;
  cached_.reset();
  return true;
}

uint64_t ExecCredentialProvider::runs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_;
}

Result<std::shared_ptr<const ExecCredential>> ExecCredentialProvider::Run() {
  const std::string who = "exec plugin \"" + exec_.command + "\" for user \"" + exec_.user + "\"";
  std::vector<std::string> argv{exec_.command};
  argv.insert(argv.end(), exec_.args.begin(), exec_.args.end());
  std::vector<std::pair<std::string, std::string>> overrides = exec_.env;
  overrides.emplace_back("KUBERNETES_EXEC_INFO", exec_info_);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [k, v] : overrides) replaced = replaced || k == name;
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [k, v] : overrides) env.push_back(k + "=" + v);

  {
    std::lock_guard<std::mutex> lock(mu_);
    ++runs_;
  }
  const Wall::time_point started = clock_.WallNow();
  int spawn_errno = 0;
  Result<RunOutput> ran = RunCommand(argv, env, options_, &spawn_errno);
  if (!ran.ok()) {
    if (spawn_errno == ENOENT) {
      std::string msg = who + ": executable not found";
      msg += exec_.command.find('/') == std::string::npos ? " in $PATH" : "";
      if (!exec_.install_hint.empty()) msg += "\n\n" + exec_.install_hint;
      return Status(StatusCode::kUnauthorized, msg);
    }
    return Status(StatusCode::kUnauthorized, who + ": cannot run it: " + ran.status().message());
  }
  const RunOutput& out = *ran;
  if (out.timed_out) {
    return Status(StatusCode::kUnauthorized, who + ": no result after " +
                                                 std::to_string(options_.run_timeout.count()) +
                                                 "s, killed" + StderrSuffix(out.err_tail));
  }
  if (WIFSIGNALED(out.exit_status)) {
    return Status(StatusCode::kUnauthorized, who + ": killed by signal " +
                                                 std::to_string(WTERMSIG(out.exit_status)) +
                                                 StderrSuffix(out.err_tail));
  }
  if (WEXITSTATUS(out.exit_status) != 0) {
    return Status(StatusCode::kUnauthorized, who + ": exited with status " +
                                                 std::to_string(WEXITSTATUS(out.exit_status)) +
                                                 StderrSuffix(out.err_tail));
  }
  if (out.out_too_large) {
    return Status(
        StatusCode::kUnauthorized,
        who + ": printed more than " + std::to_string(options_.max_output_bytes) + " bytes");
  }
  Result<ExecCredential> parsed = ParseExecCredential(out.out, exec_.api_version);
  if (!parsed.ok()) {
    return Status(StatusCode::kUnauthorized,
                  who + ": invalid ExecCredential on stdout: " + parsed.status().message() +
                      StderrSuffix(out.err_tail));
  }
  auto credential = std::make_shared<const ExecCredential>(std::move(*parsed));
  if (credential->expiry && *credential->expiry <= started) {
    spdlog::warn("kube: {} returned a credential that expired already", who);
  }
  std::lock_guard<std::mutex> lock(mu_);
  cached_ = credential;
  obtained_ = started;
  return credential;
}

}  // namespace sluice::kube
