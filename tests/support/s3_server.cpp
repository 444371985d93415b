#include "tests/support/s3_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

const std::string kSourceDir = SLUICE_SOURCE_DIR;

size_t Discard(char*, size_t size, size_t nmemb, void*) {
  return size * nmemb;
}

// The HTTP status of a request to moto's own API, or 0 when nothing answers.
long MotoApi(int port, const std::string& path, const std::string* post_body) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return 0;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Discard);
  // moto reads the raw body; a form content type would make the server parse it away.
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, "Content-Type: text/plain"), &curl_slist_free_all);
  if (post_body != nullptr) {
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  if (curl_easy_perform(h) != CURLE_OK) return 0;
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

std::string TempPath(const std::string& what) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr ? tmp : "/tmp") + "/sluice-s3-" + what + "-" +
         std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace

Result<std::string> S3Server::VenvPython() {
  ASSIGN_OR_RETURN(CommandResult r,
                   RunCommand({"bash", kSourceDir + "/e2e/scripts/registry-venv.sh"}, 15min));
  if (!r.status.success()) {
    return Unavailable("e2e/scripts/registry-venv.sh failed: " + r.output);
  }
  std::string out = r.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  // The last line is the path; installation chatter comes before it.
  const size_t nl = out.rfind('\n');
  return out.substr(nl == std::string::npos ? 0 : nl + 1);
}

Result<std::unique_ptr<S3Server>> S3Server::Start() {
  ASSIGN_OR_RETURN(std::string python, VenvPython());
  Status last = Internal("moto server did not start");
  for (int attempt = 0; attempt < 5; ++attempt) {
    ASSIGN_OR_RETURN(int port, PickFreePort());
    std::unique_ptr<S3Server> server(new S3Server(python, port, TempPath("moto") + ".log"));
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;
}

Status S3Server::Launch() {
  SpawnOptions spawn;
  spawn.argv = {python_, "-m", "moto.server", "-H", "127.0.0.1", "-p", std::to_string(port_)};
  // Authentication stays off (moto's default) until the IAM user exists; see below.
  spawn.env = {"MOTO_ALLOW_NONEXISTENT_REGION=true", "AWS_DEFAULT_REGION=us-east-1"};
  spawn.log_path = log_path_;
  ASSIGN_OR_RETURN(process_, Subprocess::Spawn(spawn));
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    if (!process_->Running()) {
      return Unavailable("moto server exited on port " + std::to_string(port_) + ": " +
                         TailFile(log_path_, 10));
    }
    if (MotoApi(port_, "/moto-api/data.json", nullptr) == 200) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Timeout("moto server did not answer on port " + std::to_string(port_));
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSIGN_OR_RETURN(std::string out, Admin({"setup"}, false));
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("access_key")) return Internal("s3_admin.py setup: " + out);
  access_key_ = j["access_key"];
  secret_key_ = j["secret_key"];
  role_arn_ = j["role_arn"];
  // From now on every request must be signed by a known key and allowed by its policies.
  return AllowUnsignedRequests(0);
}

Status S3Server::AllowUnsignedRequests(int n) {
  const std::string body = std::to_string(n);
  const long code = MotoApi(port_, "/moto-api/reset-auth", &body);
  if (code != 200) return Internal("moto reset-auth answered " + std::to_string(code));
  return Status::Ok();
}

Result<std::string> S3Server::Admin(const std::vector<std::string>& args, bool signed_request) {
  std::vector<std::string> argv = {python_, kSourceDir + "/tests/support/s3_admin.py", "--endpoint",
                                   endpoint()};
  if (signed_request) {
    argv.insert(argv.end(), {"--access-key", access_key_, "--secret-key", secret_key_});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  // No proxy and no profile of the machine's user may change what the helper does.
  ASSIGN_OR_RETURN(CommandResult r,
                   RunCommand(argv, 5min,
                              {"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
                               "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1"}));
  if (!r.status.success()) {
    return Internal("s3_admin.py " + args[0] + " failed (" + r.status.ToString() +
                    "): " + r.output);
  }
  return r.output;
}

Status S3Server::CreateBucket(const std::string& bucket) {
  return Admin({"create-bucket", bucket}, true).status();
}

Status S3Server::PutFile(const std::string& bucket, const std::string& key,
                         const std::string& path) {
  return Admin({"put-object", bucket, key, path}, true).status();
}

Status S3Server::PutObject(const std::string& bucket, const std::string& key,
                           const std::string& bytes) {
  const std::string path = TempPath("object");
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    if (!out) return Internal("cannot write " + path);
  }
  Status s = PutFile(bucket, key, path);
  std::filesystem::remove(path);
  return s;
}

S3Server::~S3Server() {
  if (process_ != nullptr) (void)process_->Stop(5s);
}

}  // namespace sluice::testing
