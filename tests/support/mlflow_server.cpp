#include "tests/support/mlflow_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

size_t Discard(char*, size_t size, size_t nmemb, void*) {
  return size * nmemb;
}

bool Healthy(int port) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(curl_easy_init(), &curl_easy_cleanup);
  if (!h) return false;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/health";
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(h.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &Discard);
  if (curl_easy_perform(h.get()) != CURLE_OK) return false;
  long code = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
  return code == 200;
}

}  // namespace

Result<std::string> RegistryPython(const std::string& source_dir) {
  ASSIGN_OR_RETURN(
      CommandResult r,
      RunCommand({"bash", source_dir + "/e2e/scripts/registry-venv.sh"}, std::chrono::minutes(20)));
  if (!r.status.success()) {
    return Unavailable("e2e/scripts/registry-venv.sh failed: " + r.output);
  }
  std::string out = r.output;
  // The last line is the path; installation chatter comes before it.
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const size_t nl = out.rfind('\n');
  return out.substr(nl == std::string::npos ? 0 : nl + 1);
}

Result<std::unique_ptr<MlflowServer>> MlflowServer::Start(MlflowServerOptions options) {
  if (options.python.empty() || options.source_dir.empty()) {
    return InvalidArgument("MlflowServerOptions needs python and source_dir");
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/sluice-mlflow-" +
                          std::to_string(::getpid()) + "-" +
                          std::to_string(Clock::now().time_since_epoch().count());
  std::error_code ec;
  std::filesystem::create_directories(dir + "/artifacts", ec);
  if (ec) return Internal("mkdir " + dir + ": " + ec.message());
  std::unique_ptr<MlflowServer> server(new MlflowServer(std::move(options), dir));
  Status last = Internal("mlflow server did not start");
  // A port picked free can be taken before the server binds it: try another.
  for (int attempt = 0; attempt < 3; ++attempt) {
    last = server->Launch();
    if (last.ok()) return server;
    if (last.code() != StatusCode::kUnavailable) break;
  }
  return last;
}

Status MlflowServer::Launch() {
  ASSIGN_OR_RETURN(port_, PickFreePort());
  const std::string artifacts =
      options_.artifacts_destination.empty() ? dir_ + "/artifacts" : options_.artifacts_destination;
  SpawnOptions spawn;
  spawn.argv = {options_.python,
                options_.source_dir + "/tests/support/mlflow_launch.py",
                "--host",
                "127.0.0.1",
                "--port",
                std::to_string(port_),
                "--workers",
                "1",
                "--backend-store-uri",
                "sqlite:///" + dir_ + "/mlflow.db"};
  if (options_.serve_artifacts) {
    spawn.argv.insert(spawn.argv.end(), {"--artifacts-destination", artifacts});
  } else {
    spawn.argv.insert(spawn.argv.end(),
                      {"--no-serve-artifacts", "--default-artifact-root", artifacts});
  }
  // No background job runner (huey consumers): the tests use only the tracking and registry APIs,
  // and it costs start-up time and processes.
  spawn.env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false", "PYTHONUNBUFFERED=1",
               "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"};
  spawn.env.insert(spawn.env.end(), options_.env.begin(), options_.env.end());
  spawn.log_path = log_path();
  spawn.append_log = true;
  spawn.working_dir = dir_;
  const auto start = Clock::now();
  ASSIGN_OR_RETURN(process_, Subprocess::Spawn(spawn));
  const auto deadline = start + options_.start_timeout;
  while (Clock::now() < deadline) {
    if (!process_->Running()) {
      return Unavailable("mlflow server exited on port " + std::to_string(port_) + ": " +
                         TailFile(log_path(), 20));
    }
    if (Healthy(port_)) {
      start_duration_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  (void)process_->Stop(std::chrono::seconds(10));
  return Timeout("mlflow server did not answer /health on port " + std::to_string(port_) +
                 " within " + std::to_string(options_.start_timeout.count()) +
                 "s: " + TailFile(log_path(), 20));
}

Status MlflowServer::Stop() {
  if (process_ == nullptr) return Status::Ok();
  auto status = process_->Stop(std::chrono::seconds(15));
  return status.ok() ? Status::Ok() : status.status();
}

MlflowServer::~MlflowServer() {
  (void)Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace sluice::testing
