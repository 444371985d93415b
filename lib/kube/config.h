#pragma once

// Where the API server is and how to authenticate to it, from kubeconfig files or from the
// in-cluster service account. TLS is always verified unless the kubeconfig explicitly sets
// insecure-skip-tls-verify for the cluster.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/status.h"

namespace sluice::kube {

// A client-go credential plugin (users[].user.exec): a command that prints an ExecCredential
// (client.authentication.k8s.io/v1 or v1beta1) with a bearer token and/or a client certificate.
// Run by ExecCredentialProvider (lib/kube/exec_credential.h).
struct ExecConfig {
  // As written in the kubeconfig; a relative path with a '/' is resolved against the folder of
  // the kubeconfig that named it (as kubectl does), a bare name is looked up in $PATH.
  std::string command;
  std::vector<std::string> args;
  // Added to (or replacing in) the process environment for the command.
  std::vector<std::pair<std::string, std::string>> env;
  std::string api_version;   // "client.authentication.k8s.io/v1" or ".../v1beta1"
  std::string install_hint;  // shown when the command is not found
  bool provide_cluster_info = false;
  std::string interactive_mode;  // Never | IfAvailable | Always (v1beta1 default IfAvailable)
  std::string user;              // the kubeconfig user's name, for messages
  // clusters[].cluster.extensions["client.authentication.k8s.io/exec"] as JSON text (empty if
  // unset); passed to the plugin as spec.cluster.config when provide_cluster_info is set.
  std::string cluster_config_json;
};

struct Config {
  std::string server;  // "https://127.0.0.1:6443"
  // Trust: PEM data (from certificate-authority-data or the file it names); empty means the
  // system trust store.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // The name TLS sends (SNI) and verifies instead of the server URL's host.
  std::string tls_server_name;
  // http://, https:// or socks5:// proxy for every connection to the server (the cluster's
  // proxy-url). Empty: the usual https_proxy / no_proxy environment applies.
  std::string proxy_url;

  // Client certificate authentication (PEM data).
  std::string client_cert_pem;
  std::string client_key_pem;

  // Bearer token authentication. When token_file is set it is re-read when it changes (projected
  // service-account tokens rotate), so `bearer_token` is only the initial value.
  std::string bearer_token;
  std::string token_file;

  // Credentials from a plugin, fetched when first needed and cached until they expire. A static
  // token or client certificate above takes precedence over what the plugin returns.
  std::optional<ExecConfig> exec;

  std::string default_namespace = "default";
  std::string user_agent = "sluice/0.1";

  // Where the credentials come from, for error messages ("exec plugin \"aws\" (user \"u\")",
  // "token file /var/run/...", "client certificate", "bearer token", "no credentials").
  std::string DescribeCredentials() const;

  // Loads `path` (or the files listed in $KUBECONFIG, or ~/.kube/config when path is empty) and
  // selects `context` (or current-context when empty). Relative file references resolve against
  // the folder of the file that holds them.
  static Result<Config> FromKubeconfig(const std::string& path = "",
                                       const std::string& context = "");
  // Several kubeconfigs merged as kubectl merges $KUBECONFIG: for clusters, users and contexts
  // the first file that defines a name wins (whole entries, not fields), current-context comes
  // from the first file that sets it. Files that do not exist are skipped (as kubectl does);
  // NotFound when none exists.
  static Result<Config> FromKubeconfigFiles(const std::vector<std::string>& paths,
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

// The entries of a $KUBECONFIG value (':'-separated), empty entries and repeats dropped.
std::vector<std::string> SplitKubeconfigList(const std::string& value);

}  // namespace sluice::kube
