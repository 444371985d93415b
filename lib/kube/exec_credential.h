#pragma once

// Credentials from a client-go exec plugin (kubeconfig users[].user.exec), as kubectl gets them:
// the command runs with its args and env plus KUBERNETES_EXEC_INFO (an ExecCredential with
// spec.interactive=false and, when provideClusterInfo is set, spec.cluster), stdin from
// /dev/null; its stdout must be an ExecCredential of the configured apiVersion whose status holds
// a token and/or clientCertificateData + clientKeyData, optionally with an expirationTimestamp.
//
// Contract: thread-safe. The credential is cached until shortly before it expires (never, when
// the plugin gives no expiry) or until Invalidate() is called with it after a 401. At most one
// run of the plugin is under way per provider; callers that need a credential meanwhile wait for
// that run and share its result. A failed run is not cached: the next Get() runs it again.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "lib/base/clock.h"
#include "lib/base/status.h"
#include "lib/kube/config.h"

namespace sluice::kube {

struct ExecCredential {
  std::string token;
  std::string client_cert_pem;
  std::string client_key_pem;
  // From status.expirationTimestamp; none means valid until rejected.
  std::optional<Clock::Wall::time_point> expiry;
};

struct ExecCredentialOptions {
  // Re-run this long before the expiry (at most half the credential's lifetime when it was
  // obtained, so a short-lived credential is still used).
  std::chrono::seconds refresh_before{10};
  // A plugin that has not finished by then is killed and the run fails.
  std::chrono::seconds run_timeout{120};
  // Bytes of standard output accepted; standard error keeps its last `stderr_tail` bytes for
  // error messages.
  size_t max_output_bytes = size_t{1} << 20;
  size_t stderr_tail = 2048;
  // Expiry decisions use its WallNow() (nullptr: the real clock).
  Clock* clock = nullptr;
};

class ExecCredentialProvider {
 public:
  // `config.exec` must be set; the cluster fields of `config` go to the plugin when
  // provideClusterInfo is set.
  static Result<std::unique_ptr<ExecCredentialProvider>> Create(const Config& config,
                                                                ExecCredentialOptions options = {});

  // The cached credential, or a fresh one from a run of the plugin. Errors are kUnauthorized and
  // name the command (with its stderr tail, or the install hint when it is not found).
  Result<std::shared_ptr<const ExecCredential>> Get();

  // After the API server answered 401 to a request made with `used`: drop it if it is still the
  // cached one, so the next Get() runs the plugin. Returns whether it was dropped (false means
  // another caller has already replaced it).
  bool Invalidate(const ExecCredential* used);

  // Runs of the plugin so far, successful or not.
  uint64_t runs() const;

 private:
  ExecCredentialProvider(const Config& config, ExecCredentialOptions options);
  bool Fresh(const ExecCredential& c, Clock::Wall::time_point obtained) const;
  Result<std::shared_ptr<const ExecCredential>> Run();

  const ExecConfig exec_;
  const std::string exec_info_;  // KUBERNETES_EXEC_INFO
  const ExecCredentialOptions options_;
  Clock& clock_;

  std::mutex run_mu_;  // held for a whole run: one plugin process at a time
  mutable std::mutex mu_;
  std::shared_ptr<const ExecCredential> cached_;  // guarded by mu_
  Clock::Wall::time_point obtained_;              // guarded by mu_
  uint64_t runs_ = 0;                             // guarded by mu_
};

// Parses a plugin's standard output (exposed for tests). `api_version` is the one configured.
Result<ExecCredential> ParseExecCredential(const std::string& output,
                                           const std::string& api_version);

}  // namespace sluice::kube
