#include "tests/support/api_server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr char kServiceCidr[] = "10.0.0.0/24";
constexpr char kServiceIp[] = "10.0.0.1";
constexpr int kStartAttempts = 3;

struct Reply {
  long code = 0;
  std::string body;
};

// TLS material for a request to kube-apiserver; empty for plain HTTP (etcd).
struct ClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One blocking request. libcurl is used directly so this fixture never depends on the client
// library that the tests using it exercise.
Result<Reply> Http(const std::string& method, const std::string& url,
                          const std::string& body, const ClientTls* tls,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (!curl) return Internal("curl_easy_init failed");
  Reply response;
  curl_slist* headers = nullptr;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (!body.empty() || method == "POST") {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (tls) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls->ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLCERT, tls->cert_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, tls->key_file.c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Unavailable(method + " " + url + ": " + curl_easy_strerror(rc));
  }
  return response;
}

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IXUSR);
}

bool LogShowsPortConflict(const std::string& log_path) {
  return TailFile(log_path, 200).find("address already in use") != std::string::npos;
}

// Polls `ready` until it returns true, the process ends, or `timeout` passes.
template <typename Ready>
Status WaitUntilReady(const std::string& name, Subprocess& process, std::chrono::seconds timeout,
                      Ready ready) {
  const auto deadline = SteadyClock::now() + timeout;
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    if (ready()) return Status::Ok();
    if (!process.Running()) {
      return Unavailable(name + " exited (" + process.exit_status()->ToString() + "); end of " +
                         process.log_path() + ":\n" + TailFile(process.log_path()));
    }
    if (SteadyClock::now() >= deadline) {
      return Unavailable(name + " not ready after " + std::to_string(timeout.count()) +
                         " s; end of " + process.log_path() + ":\n" + TailFile(process.log_path()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(250));
  }
}

bool CurrentTestsFailed() {
  auto* unit = ::testing::UnitTest::GetInstance();
  if (unit->current_test_info() != nullptr) return ::testing::Test::HasFailure();
  return unit->failed_test_count() > 0 || unit->ad_hoc_test_result().Failed();
}

std::string FileSafe(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return out;
}

}  // namespace

Result<std::unique_ptr<TestApiServer>> TestApiServer::Start(const ApiServerOptions& options) {
  std::unique_ptr<TestApiServer> server(new TestApiServer(options));
  RETURN_IF_ERROR(server->Prepare());
  RETURN_IF_ERROR(server->StartEtcd());

  Status started;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    ASSIGN_OR_RETURN(server->apiserver_port_, PickFreePort());
    RETURN_IF_ERROR(server->SpawnApiServer(attempt > 1));
    started = server->WaitApiServerReady();
    if (started.ok()) break;
    (void)server->StopApiServer();
    if (!LogShowsPortConflict(server->logs_dir() + "/kube-apiserver.log")) break;
  }
  RETURN_IF_ERROR(started);

  ClientTls tls{server->ca_file(), server->admin_cert_file(), server->admin_key_file()};
  ASSIGN_OR_RETURN(Reply version, Http("GET", server->url() + "/version", "", &tls));
  if (version.code != 200) {
    return Unavailable("GET /version answered " + std::to_string(version.code) + ": " +
                       version.body);
  }
  server->version_json_ = version.body;

  server->kubeconfig_path_ = server->dir_ + "/kubeconfig";
  RETURN_IF_ERROR(
      server->WriteKubeconfig(server->kubeconfig_path_, "sluice-admin", server->admin_));

  std::cerr << "[test cluster] kube-apiserver " << server->url() << " (etcd " << server->etcd_url()
            << ", folder " << server->dir_
            << ") /version: " << nlohmann::json::parse(server->version_json_, nullptr, false).dump()
            << std::endl;
  return server;
}

Status TestApiServer::Prepare() {
  bin_dir_ = options_.bin_dir;
  if (bin_dir_.empty()) {
    const char* env = std::getenv("SLUICE_K8S_BIN");  // NOLINT(concurrency-mt-unsafe)
    if (env == nullptr || *env == '\0') {
      return FailedPrecondition(
          "SLUICE_K8S_BIN is not set: run `make deps` to build the test cluster binaries, then run "
          "the tests through `make test` or with SLUICE_K8S_BIN=$(bash e2e/cluster/bin-dir.sh)");
    }
    bin_dir_ = env;
  }
  for (const char* binary : {"etcd", "kube-apiserver"}) {
    if (!IsExecutable(bin_dir_ + "/" + binary)) {
      return FailedPrecondition(bin_dir_ + "/" + binary +
                                " is missing: run `make deps` to build the test cluster binaries");
    }
  }

  std::string root = options_.temp_root;
  if (root.empty()) {
    const char* tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    root = tmp && *tmp ? tmp : "/tmp";
  }
  std::string pattern = root + "/sluice-apiserver-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Internal("mkdtemp " + pattern + ": " + std::generic_category().message(errno));
  }
  dir_ = pattern;
  std::error_code ec;
  for (const auto& sub : {pki_dir(), logs_dir(), dir_ + "/etcd", dir_ + "/users"}) {
    fs::create_directory(sub, ec);
    if (ec) return Internal("mkdir " + sub + ": " + ec.message());
    fs::permissions(sub, fs::perms::owner_all, ec);
  }

  ASSIGN_OR_RETURN(ca_, CertificateAuthority::Create("sluice-test-ca"));
  RETURN_IF_ERROR(WriteFile(ca_file(), ca_->cert_pem()));
  RETURN_IF_ERROR(WriteFile(pki_dir() + "/ca.key", ca_->key_pem(), 0600));

  CertificateRequest serving;
  serving.common_name = "kube-apiserver";
  serving.dns_names = {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"};
  serving.ip_addresses = {"127.0.0.1", kServiceIp};
  serving.server_auth = true;
  ASSIGN_OR_RETURN(CertifiedKey serving_key, ca_->Issue(serving));
  RETURN_IF_ERROR(WriteFile(pki_dir() + "/apiserver.crt", serving_key.cert_pem));
  RETURN_IF_ERROR(WriteFile(pki_dir() + "/apiserver.key", serving_key.key_pem, 0600));

  ASSIGN_OR_RETURN(RsaKeyPair sa, GenerateRsaKeyPair());
  RETURN_IF_ERROR(WriteFile(service_account_key_file(), sa.private_pem, 0600));
  RETURN_IF_ERROR(WriteFile(pki_dir() + "/sa.pub", sa.public_pem));

  // The readiness probe authenticates as admin, so this exists before the first start.
  CertificateRequest admin;
  admin.common_name = "sluice-admin";
  admin.organizations = {"system:masters"};
  admin.client_auth = true;
  ASSIGN_OR_RETURN(admin_, ca_->Issue(admin));
  RETURN_IF_ERROR(WriteFile(admin_cert_file(), admin_.cert_pem));
  RETURN_IF_ERROR(WriteFile(admin_key_file(), admin_.key_pem, 0600));

  // A static bearer token (--token-auth-file), random per server.
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  unsigned char raw[16] = {0};
  urandom.read(reinterpret_cast<char*>(raw), sizeof raw);
  if (!urandom) return Internal("cannot read /dev/urandom for the static token");
  static const char* kHex = "0123456789abcdef";
  static_token_.clear();
  for (unsigned char c : raw) {
    static_token_.push_back(kHex[c >> 4]);
    static_token_.push_back(kHex[c & 15]);
  }
  RETURN_IF_ERROR(WriteFile(
      pki_dir() + "/tokens.csv",
      static_token_ + "," + kStaticTokenUser + ",static-token-uid,\"" + kStaticTokenGroup + "\"\n",
      0600));
  return Status::Ok();
}

Status TestApiServer::StartEtcd() {
  const std::string log = logs_dir() + "/etcd.log";
  Status started;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    ASSIGN_OR_RETURN(etcd_port_, PickFreePort());
    do {
      ASSIGN_OR_RETURN(etcd_peer_port_, PickFreePort());
    } while (etcd_peer_port_ == etcd_port_);
    // A failed attempt may have left a member behind that names the old peer URL.
    std::error_code ec;
    fs::remove_all(dir_ + "/etcd", ec);
    fs::create_directory(dir_ + "/etcd", ec);
    fs::permissions(dir_ + "/etcd", fs::perms::owner_all, ec);

    const std::string client = "http://127.0.0.1:" + std::to_string(etcd_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(etcd_peer_port_);
    SpawnOptions spawn;
    spawn.argv = {bin_dir_ + "/etcd", "--name=sluice", "--data-dir=" + dir_ + "/etcd",
                  "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
                  "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
                  "--initial-cluster=sluice=" + peer,
                  // Test data is thrown away; fsync only slows a loaded box down.
                  "--unsafe-no-fsync", "--log-level=warn"};
    spawn.argv.insert(spawn.argv.end(), options_.extra_etcd_flags.begin(),
                      options_.extra_etcd_flags.end());
    spawn.log_path = log;
    spawn.append_log = attempt > 1;
    ASSIGN_OR_RETURN(etcd_, Subprocess::Spawn(spawn));
    started = WaitUntilReady("etcd", *etcd_, options_.ready_timeout, [&] {
      auto health = Http("GET", client + "/health", "", nullptr, std::chrono::seconds(2));
      return health.ok() && health->code == 200 &&
             health->body.find("\"true\"") != std::string::npos;
    });
    if (started.ok()) return started;
    (void)etcd_->Stop(std::chrono::seconds(5));
    if (!LogShowsPortConflict(log)) break;
  }
  return started;
}

Status TestApiServer::SpawnApiServer(bool append_log) {
  const std::string pki = pki_dir();
  SpawnOptions spawn;
  spawn.argv = {
      bin_dir_ + "/kube-apiserver",
      "--etcd-servers=" + etcd_url(),
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      "--secure-port=" + std::to_string(apiserver_port_),
      "--cert-dir=" + pki,
      "--tls-cert-file=" + pki + "/apiserver.crt",
      "--tls-private-key-file=" + pki + "/apiserver.key",
      "--client-ca-file=" + ca_file(),
      "--token-auth-file=" + pki + "/tokens.csv",
      "--authorization-mode=Node,RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--service-account-key-file=" + pki + "/sa.pub",
      "--service-account-signing-key-file=" + service_account_key_file(),
      std::string("--service-cluster-ip-range=") + kServiceCidr,
      "--allow-privileged=true",
      // No controller-manager creates the default ServiceAccount, so Pods would be refused.
      "--disable-admission-plugins=ServiceAccount",
      // Endpoints may not hold a loopback address; there is nothing to reconcile here anyway.
      "--endpoint-reconciler-type=none",
      "--profiling=false",
  };
  spawn.argv.insert(spawn.argv.end(), options_.extra_apiserver_flags.begin(),
                    options_.extra_apiserver_flags.end());
  spawn.log_path = logs_dir() + "/kube-apiserver.log";
  spawn.append_log = append_log;
  ASSIGN_OR_RETURN(apiserver_, Subprocess::Spawn(spawn));
  return Status::Ok();
}

Status TestApiServer::WaitApiServerReady() {
  ClientTls tls{ca_file(), admin_cert_file(), admin_key_file()};
  const std::string readyz = url() + "/readyz";
  return WaitUntilReady("kube-apiserver", *apiserver_, options_.ready_timeout, [&] {
    auto r = Http("GET", readyz, "", &tls, std::chrono::seconds(5));
    return r.ok() && r->code == 200;
  });
}

TestApiServer::~TestApiServer() {
  if (CurrentTestsFailed() && !dir_.empty()) {
    std::cerr << "[test cluster] a test failed; server logs (" << dir_ << "):\n"
              << LogTails() << std::endl;
  }
  if (apiserver_) (void)apiserver_->Stop(std::chrono::seconds(15));
  if (etcd_) (void)etcd_->Stop(std::chrono::seconds(10));
  const char* keep = std::getenv("SLUICE_KEEP_TEST_CLUSTER");  // NOLINT(concurrency-mt-unsafe)
  if (options_.keep_temp_dir || (keep && std::string(keep) == "1")) {
    std::cerr << "[test cluster] kept " << dir_ << std::endl;
  } else if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string TestApiServer::url() const {
  return "https://127.0.0.1:" + std::to_string(apiserver_port_);
}

std::string TestApiServer::etcd_url() const {
  return "http://127.0.0.1:" + std::to_string(etcd_port_);
}

bool TestApiServer::apiserver_running() {
  return apiserver_ && apiserver_->Running();
}

Status TestApiServer::StopApiServer() {
  if (!apiserver_) return Status::Ok();
  auto stopped = apiserver_->Stop(std::chrono::seconds(15));
  if (!stopped.ok()) return stopped.status().Annotate("stopping kube-apiserver");
  apiserver_.reset();
  return Status::Ok();
}

Status TestApiServer::StartApiServer() {
  if (apiserver_running()) return FailedPrecondition("kube-apiserver is already running");
  if (!etcd_) return FailedPrecondition("the test API server was never started");
  RETURN_IF_ERROR(SpawnApiServer(/*append_log=*/true));
  return WaitApiServerReady();
}

Result<int64_t> TestApiServer::CompactEtcd() {
  if (!etcd_) return FailedPrecondition("the test API server was never started");
  // The v3 gateway speaks protobuf-JSON: bytes are base64, int64 come back as strings.
  // A count-only range over every key ("\0" to "\0") answers with the current revision.
  const std::string all_keys = R"({"key":"AA==","range_end":"AA==","count_only":true})";
  ASSIGN_OR_RETURN(Reply range,
                   Http("POST", etcd_url() + "/v3/kv/range", all_keys, nullptr));
  if (range.code != 200) {
    return Unavailable("etcd range answered " + std::to_string(range.code) + ": " + range.body);
  }
  auto parsed = nlohmann::json::parse(range.body, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("header") ||
      !parsed["header"].contains("revision")) {
    return Internal("etcd range answer without a revision: " + range.body);
  }
  const auto& rev_json = parsed["header"]["revision"];
  const int64_t revision =
      rev_json.is_string() ? std::stoll(rev_json.get<std::string>()) : rev_json.get<int64_t>();

  nlohmann::json compact = {{"revision", std::to_string(revision)}, {"physical", true}};
  ASSIGN_OR_RETURN(Reply done, Http("POST", etcd_url() + "/v3/kv/compaction", compact.dump(),
                                           nullptr, std::chrono::seconds(30)));
  // kube-apiserver compacts on its own schedule; having got there first is the same outcome.
  if (done.code != 200 &&
      done.body.find("required revision has been compacted") == std::string::npos) {
    return Unavailable("etcd compaction at " + std::to_string(revision) + " answered " +
                       std::to_string(done.code) + ": " + done.body);
  }
  return revision;
}

Result<std::string> TestApiServer::KubeconfigForUser(const std::string& user,
                                                     const std::vector<std::string>& groups) {
  if (!ca_) return FailedPrecondition("the test API server was never started");
  CertificateRequest request;
  request.common_name = user;
  request.organizations = groups;
  request.client_auth = true;
  ASSIGN_OR_RETURN(CertifiedKey key, ca_->Issue(request));
  const std::string path =
      dir_ + "/users/" + FileSafe(user) + "-" + std::to_string(++user_kubeconfigs_) + ".kubeconfig";
  RETURN_IF_ERROR(WriteKubeconfig(path, user, key));
  return path;
}

Status TestApiServer::WriteKubeconfig(const std::string& path, const std::string& user,
                                      const CertifiedKey& credentials) const {
  // Scalars are written as JSON strings, which YAML reads as double-quoted scalars whatever the
  // user name holds.
  auto q = [](const std::string& v) { return nlohmann::json(v).dump(); };
  std::string config;
  config += "apiVersion: v1\nkind: Config\n";
  config += "clusters:\n- name: sluice-test\n  cluster:\n";
  config += "    server: " + q(url()) + "\n";
  config += "    certificate-authority-data: " + Base64(ca_->cert_pem()) + "\n";
  config += "users:\n- name: " + q(user) + "\n  user:\n";
  config += "    client-certificate-data: " + Base64(credentials.cert_pem) + "\n";
  config += "    client-key-data: " + Base64(credentials.key_pem) + "\n";
  config += "contexts:\n- name: sluice-test\n  context:\n    cluster: sluice-test\n";
  config += "    user: " + q(user) + "\n";
  config += "current-context: sluice-test\n";
  return WriteFile(path, config, 0600);
}

std::string TestApiServer::LogTails(int lines) const {
  std::string out;
  for (const char* name : {"etcd.log", "kube-apiserver.log"}) {
    out += "==> " + logs_dir() + "/" + name + " <==\n" + TailFile(logs_dir() + "/" + name, lines);
  }
  return out;
}

}  // namespace sluice::testing
