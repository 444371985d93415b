#include "lib/kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::kube {
namespace {

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

Result<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kNotFound, std::string(what) + ": cannot read " + path);
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

int Base64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// Standard or URL-safe alphabet; whitespace (line-wrapped PEM-in-YAML) is skipped.
Result<std::string> Base64Decode(std::string_view in, std::string_view what) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    int v = Base64Value(c);
    if (v < 0) return InvalidArgument(std::string(what) + ": not valid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

std::string Str(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  if (!v || !v.IsScalar()) return "";
  return v.as<std::string>();
}

bool Bool(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  if (!v || !v.IsScalar()) return false;
  const std::string s = v.as<std::string>();
  return s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on";
}

// Finds `name` in a kubeconfig list (clusters, contexts, users) and returns its inner map.
YAML::Node FindNamed(const YAML::Node& root, const char* list, const char* inner,
                     const std::string& name) {
  const YAML::Node items = root[list];
  if (!items || !items.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& item : items) {
    if (Str(item, "name") == name) {
      YAML::Node v = item[inner];
      return v ? v : YAML::Node(YAML::NodeType::Map);
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Data from `<key>-data` (base64) or the file named by `<key>`, whichever is set; data wins, as
// in kubectl.
Result<std::string> DataOrFile(const YAML::Node& node, const std::string& key,
                               const std::string& base_dir, const std::string& owner) {
  const std::string data = Str(node, (key + "-data").c_str());
  if (!data.empty()) return Base64Decode(data, owner + " " + key + "-data");
  const std::string file = Str(node, key.c_str());
  if (file.empty()) return std::string();
  return ReadFile(Resolve(base_dir, file), owner + " " + key);
}

Result<Config> ParseKubeconfig(const YAML::Node& root, const std::string& base_dir,
                               const std::string& context_name) {
  if (!root || !root.IsMap()) return InvalidArgument("kubeconfig: not a YAML map");
  std::string ctx_name = context_name.empty() ? Str(root, "current-context") : context_name;
  if (ctx_name.empty()) {
    return InvalidArgument("kubeconfig: no context given and current-context is not set");
  }
  const YAML::Node ctx = FindNamed(root, "contexts", "context", ctx_name);
  if (!ctx) return NotFound("kubeconfig: context \"" + ctx_name + "\" not found");

  const std::string cluster_name = Str(ctx, "cluster");
  if (cluster_name.empty()) {
    return InvalidArgument("kubeconfig: context \"" + ctx_name + "\" names no cluster");
  }
  const YAML::Node cluster = FindNamed(root, "clusters", "cluster", cluster_name);
  if (!cluster) return NotFound("kubeconfig: cluster \"" + cluster_name + "\" not found");

  Config config;
  const std::string cluster_owner = "cluster \"" + cluster_name + "\"";
  config.server = Str(cluster, "server");
  if (config.server.empty()) {
    return InvalidArgument("kubeconfig: " + cluster_owner + " has no server");
  }
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  config.insecure_skip_tls_verify = Bool(cluster, "insecure-skip-tls-verify");
  config.tls_server_name = Str(cluster, "tls-server-name");
  ASSIGN_OR_RETURN(config.ca_pem,
                   DataOrFile(cluster, "certificate-authority", base_dir, cluster_owner));
  if (config.insecure_skip_tls_verify && !config.ca_pem.empty()) {
    return InvalidArgument("kubeconfig: " + cluster_owner +
                           " sets both a certificate authority and insecure-skip-tls-verify");
  }

  const std::string ns = Str(ctx, "namespace");
  if (!ns.empty()) config.default_namespace = ns;

  const std::string user_name = Str(ctx, "user");
  if (user_name.empty()) return config;  // anonymous
  const YAML::Node user = FindNamed(root, "users", "user", user_name);
  if (!user) return NotFound("kubeconfig: user \"" + user_name + "\" not found");
  const std::string user_owner = "user \"" + user_name + "\"";

  ASSIGN_OR_RETURN(config.client_cert_pem,
                   DataOrFile(user, "client-certificate", base_dir, user_owner));
  ASSIGN_OR_RETURN(config.client_key_pem, DataOrFile(user, "client-key", base_dir, user_owner));
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return InvalidArgument("kubeconfig: " + user_owner + " has " +
                           (config.client_cert_pem.empty()
                                ? "a client key but no client certificate"
                                : "a client certificate but no client key"));
  }

  // As in client-go, an inline token takes precedence over tokenFile.
  config.bearer_token = Str(user, "token");
  if (config.bearer_token.empty()) {
    const std::string token_file = Str(user, "tokenFile");
    if (!token_file.empty()) {
      config.token_file = Resolve(base_dir, token_file);
      ASSIGN_OR_RETURN(std::string token, ReadFile(config.token_file, user_owner + " tokenFile"));
      config.bearer_token = Trim(std::move(token));
    }
  }

  const bool has_credentials = !config.client_cert_pem.empty() || !config.bearer_token.empty();
  if (!has_credentials && (user["exec"] || user["auth-provider"])) {
    return Unimplemented("kubeconfig: " + user_owner +
                         " authenticates through an exec or auth-provider plugin, which is not "
                         "supported; use a token, tokenFile or client certificate");
  }
  if (!has_credentials && (user["username"] || user["password"])) {
    return Unimplemented("kubeconfig: " + user_owner +
                         " uses basic authentication, which is not supported");
  }
  return config;
}

std::string FirstKubeconfigEntry(const char* env) {
  if (env == nullptr) return "";
  std::string_view list(env);
  while (!list.empty()) {
    size_t colon = list.find(':');
    std::string_view entry = list.substr(0, colon);
    if (!entry.empty()) return std::string(entry);
    if (colon == std::string_view::npos) break;
    list.remove_prefix(colon + 1);
  }
  return "";
}

}  // namespace

Result<Config> Config::FromKubeconfigYaml(const std::string& yaml, const std::string& base_dir,
                                          const std::string& context) {
  try {
    return ParseKubeconfig(YAML::Load(yaml), base_dir, context);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("kubeconfig: ") + e.what());
  }
}

Result<Config> Config::FromKubeconfig(const std::string& path, const std::string& context) {
  std::string file = path;
  if (file.empty()) file = FirstKubeconfigEntry(std::getenv("KUBECONFIG"));
  if (file.empty()) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return NotFound("kubeconfig: no path given, $KUBECONFIG is empty and $HOME is not set");
    }
    file = std::string(home) + "/.kube/config";
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(file, "kubeconfig"));
  const std::string base_dir = std::filesystem::path(file).parent_path().string();
  Result<Config> config = FromKubeconfigYaml(text, base_dir, context);
  if (!config.ok()) return config.status().Annotate(file);
  return config;
}

Result<Config> Config::InCluster(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return FailedPrecondition(
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  const std::string dir = root.empty() ? kServiceAccountDir : root;
  Config config;
  std::string h = host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";  // IPv6 literal
  config.server = "https://" + h + ":" + port;
  config.token_file = dir + "/token";
  ASSIGN_OR_RETURN(std::string token, ReadFile(config.token_file, "in-cluster config: token"));
  config.bearer_token = Trim(std::move(token));
  if (config.bearer_token.empty()) {
    return FailedPrecondition("in-cluster config: token file " + config.token_file + " is empty");
  }
  ASSIGN_OR_RETURN(config.ca_pem, ReadFile(dir + "/ca.crt", "in-cluster config: ca.crt"));
  Result<std::string> ns = ReadFile(dir + "/namespace", "namespace");
  if (ns.ok() && !Trim(*ns).empty()) config.default_namespace = Trim(*ns);
  return config;
}

Result<Config> Config::Load(const std::string& kubeconfig_path, const std::string& context) {
  if (!kubeconfig_path.empty()) return FromKubeconfig(kubeconfig_path, context);
  if (!FirstKubeconfigEntry(std::getenv("KUBECONFIG")).empty()) return FromKubeconfig("", context);
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') return InCluster();
  return FromKubeconfig("", context);
}

}  // namespace sluice::kube
