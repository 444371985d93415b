#pragma once

// A real etcd + kube-apiserver for integration tests, started from the binaries in
// $SLUICE_K8S_BIN (`make deps` builds them; the Makefile exports the variable). Deals in
// processes, files and URLs only, so it does not depend on the Kubernetes client it helps test.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"

namespace sluice::testing {

struct ApiServerOptions {
  // Folder with etcd and kube-apiserver; empty means $SLUICE_K8S_BIN.
  std::string bin_dir;
  // Appended after the defaults ("--flag=value"); a repeated flag overrides the default, e.g.
  // "--default-watch-cache-size=0" or "--enable-admission-plugins=...".
  std::vector<std::string> extra_apiserver_flags;
  std::vector<std::string> extra_etcd_flags;
  // How long each of etcd and kube-apiserver may take to become ready (a loaded 2-core box
  // needs ~10-20 s for kube-apiserver's post-start hooks).
  std::chrono::seconds ready_timeout = std::chrono::seconds(120);
  // Parent of the temporary folder; empty means $TMPDIR or /tmp.
  std::string temp_root;
  // Keep the temporary folder (certificates, data, logs) after the server is destroyed. Also
  // turned on by SLUICE_KEEP_TEST_CLUSTER=1.
  bool keep_temp_dir = false;
};

// etcd and kube-apiserver on free 127.0.0.1 ports with RBAC on, in a fresh temporary folder.
// Admin access is a client certificate in group system:masters; static_token() is a bearer token
// for an unprivileged user. Both processes die with the test
// process (see Subprocess); their logs are in temp_dir()/logs and are printed when a test fails.
// Not thread-safe: tests may use the URLs and files from any thread, but Stop/Start/Compact and
// KubeconfigForUser belong to one thread at a time.
class TestApiServer {
 public:
  // Starts etcd, then kube-apiserver, and waits for /readyz. Fails with FailedPrecondition when the
  // binaries are missing (the message says to run `make deps`), Unavailable when a process does not
  // come up (the message holds the end of its log). Logs the /version body to stderr.
  static Result<std::unique_ptr<TestApiServer>> Start(const ApiServerOptions& options = {});

  // Stops kube-apiserver and etcd and removes the temporary folder (unless kept).
  ~TestApiServer();
  TestApiServer(const TestApiServer&) = delete;
  TestApiServer& operator=(const TestApiServer&) = delete;

  // Admin kubeconfig (system:masters, client certificate; CA and credentials embedded as *-data).
  const std::string& kubeconfig_path() const { return kubeconfig_path_; }
  // https://127.0.0.1:PORT; the port stays the same across StopApiServer/StartApiServer.
  std::string url() const;
  int port() const { return apiserver_port_; }
  // PEM files: the cluster CA, and the admin client certificate and key.
  std::string ca_file() const { return pki_dir() + "/ca.crt"; }
  std::string admin_cert_file() const { return pki_dir() + "/admin.crt"; }
  std::string admin_key_file() const { return pki_dir() + "/admin.key"; }
  // A bearer token kube-apiserver accepts (--token-auth-file) for user kStaticTokenUser in group
  // kStaticTokenGroup; random per server. Not bound to any role: RBAC allows it nothing.
  static constexpr const char* kStaticTokenUser = "sluice-static-token";
  static constexpr const char* kStaticTokenGroup = "sluice:static-token";
  const std::string& static_token() const { return static_token_; }
  // The key kube-apiserver signs service-account tokens with (PEM, RSA).
  std::string service_account_key_file() const { return pki_dir() + "/sa.key"; }
  // http://127.0.0.1:PORT of etcd (plain HTTP; loopback only).
  std::string etcd_url() const;
  const std::string& temp_dir() const { return dir_; }
  const std::string& bin_dir() const { return bin_dir_; }
  // The body of GET /version at the first start.
  const std::string& version_json() const { return version_json_; }

  // Stops kube-apiserver only (SIGTERM, then SIGKILL); etcd keeps the data. Idempotent.
  Status StopApiServer();
  // Starts kube-apiserver again on the same port against the same etcd and waits for /readyz.
  // FailedPrecondition if it is running.
  Status StartApiServer();
  bool apiserver_running();

  // Compacts etcd at its current revision (physical compaction, through etcd's v3 JSON gateway)
  // and returns that revision. Watches and lists from resourceVersions below it then get
  // 410 Gone once kube-apiserver's watch cache no longer covers them.
  Result<int64_t> CompactEtcd();

  // Writes a kubeconfig for a non-admin identity: a client certificate with CN=user and one
  // O per group, for RBAC tests. Returns its path (in the temporary folder; a repeated user gets a
  // fresh certificate and file).
  Result<std::string> KubeconfigForUser(const std::string& user,
                                        const std::vector<std::string>& groups = {});

  // The last lines of both logs, for failure messages.
  std::string LogTails(int lines = 40) const;

 private:
  friend TestApiServer& SharedApiServer();  // builds the unstarted stand-in
  explicit TestApiServer(ApiServerOptions options) : options_(std::move(options)) {}

  Status Prepare();
  Status StartEtcd();
  Status SpawnApiServer(bool append_log);
  Status WaitApiServerReady();
  Status WriteKubeconfig(const std::string& path, const std::string& user,
                         const CertifiedKey& credentials) const;
  std::string pki_dir() const { return dir_ + "/pki"; }
  std::string logs_dir() const { return dir_ + "/logs"; }

  ApiServerOptions options_;
  std::string bin_dir_;
  std::string dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  CertifiedKey admin_;
  std::string kubeconfig_path_;
  int etcd_port_ = 0;
  int etcd_peer_port_ = 0;
  int apiserver_port_ = 0;
  std::unique_ptr<Subprocess> etcd_;
  std::unique_ptr<Subprocess> apiserver_;
  std::string version_json_;
  std::string static_token_;
  int user_kubeconfigs_ = 0;
};

// One TestApiServer shared by all tests of a binary, started before the first test by a GTest
// Environment (registered by linking this function in) and stopped after the last. Tests sharing
// it should use their own namespaces. If it could not start, every test that calls this fails
// with the reason (e.g. "run `make deps`") and gets a server that answers nothing: tests fail,
// never skip.
TestApiServer& SharedApiServer();

}  // namespace sluice::testing
