#pragma once

// Where the API server is and how to authenticate to it, from a kubeconfig file or from the
// in-cluster service account. TLS is always verified unless the kubeconfig explicitly sets
// insecure-skip-tls-verify for the cluster.

#include <optional>
#include <string>

#include "lib/base/status.h"

namespace sluice::kube {

struct Config {
  std::string server;  // "https://127.0.0.1:6443"
  // Trust: PEM data (from certificate-authority-data or the file it names); empty means the
  // system trust store.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;

  // Client certificate authentication (PEM data).
  std::string client_cert_pem;
  std::string client_key_pem;

  // Bearer token authentication. When token_file is set it is re-read when it changes (projected
  // service-account tokens rotate), so `bearer_token` is only the initial value.
  std::string bearer_token;
  std::string token_file;

  std::string default_namespace = "default";
  std::string user_agent = "sluice/0.1";

  // Loads `path` (or $KUBECONFIG, or ~/.kube/config when path is empty) and selects `context`
  // (or current-context when empty). Relative file references resolve against the file's folder.
  static Result<Config> FromKubeconfig(const std::string& path = "",
                                       const std::string& context = "");
  // The same from kubeconfig text already in memory; relative file references resolve against
  // `base_dir`.
  static Result<Config> FromKubeconfigYaml(const std::string& yaml, const std::string& base_dir,
                                           const std::string& context = "");
  // KUBERNETES_SERVICE_HOST/PORT,
  // /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}. `root` replaces the
  // secrets folder in tests.
  static Result<Config> InCluster(const std::string& root = "");
  // Order: an explicit `kubeconfig_path`, then $KUBECONFIG, then in-cluster when running in a pod
  // (KUBERNETES_SERVICE_HOST set), then ~/.kube/config.
  static Result<Config> Load(const std::string& kubeconfig_path = "",
                             const std::string& context = "");
};

}  // namespace sluice::kube
