#include "lib/kube/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
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

// One entry of a kubeconfig list (a cluster, user or context) with the folder of the file that
// defined it, against which its relative paths resolve.
struct Entry {
  YAML::Node node;
  std::string base_dir;
};

// Several kubeconfig files merged by kubectl's rules: the first file to define a name wins,
// current-context comes from the first file that sets it.
struct Merged {
  std::string current_context;
  std::map<std::string, Entry> clusters;
  std::map<std::string, Entry> users;
  std::map<std::string, Entry> contexts;

  Status Add(const YAML::Node& root, const std::string& base_dir) {
    if (!root || root.IsNull()) return Status::Ok();  // an empty file adds nothing
    if (!root.IsMap()) return InvalidArgument("kubeconfig: not a YAML map");
    if (current_context.empty()) current_context = Str(root, "current-context");
    AddList(root, "clusters", "cluster", base_dir, clusters);
    AddList(root, "users", "user", base_dir, users);
    AddList(root, "contexts", "context", base_dir, contexts);
    return Status::Ok();
  }

 private:
  static void AddList(const YAML::Node& root, const char* list, const char* inner,
                      const std::string& base_dir, std::map<std::string, Entry>& into) {
    const YAML::Node items = root[list];
    if (!items || !items.IsSequence()) return;
    for (const auto& item : items) {
      const std::string name = Str(item, "name");
      if (name.empty() || into.count(name) != 0) continue;
      YAML::Node v = item[inner];
      into.emplace(name, Entry{v ? v : YAML::Node(YAML::NodeType::Map), base_dir});
    }
  }
};

const Entry* Find(const std::map<std::string, Entry>& in, const std::string& name) {
  auto it = in.find(name);
  return it == in.end() ? nullptr : &it->second;
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

// YAML (a kubeconfig extension) as JSON: plain scalars that read as booleans, null or integers
// become those, everything else a string.
nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : node) out.push_back(YamlToJson(v));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      const bool integer =
          !s.empty() && s.size() < 19 &&
          s.find_first_not_of("0123456789", s[0] == '-' ? 1 : 0) == std::string::npos && s != "-";
      if (integer) return std::stoll(s);
      return s;
    }
    default:
      return nullptr;
  }
}

constexpr const char* kExecV1 = "client.authentication.k8s.io/v1";
constexpr const char* kExecV1beta1 = "client.authentication.k8s.io/v1beta1";
constexpr const char* kExecExtension = "client.authentication.k8s.io/exec";

Result<ExecConfig> ParseExec(const YAML::Node& exec, const Entry& cluster,
                             const std::string& base_dir, const std::string& user_name) {
  const std::string owner = "kubeconfig: user \"" + user_name + "\" exec";
  if (!exec.IsMap()) return InvalidArgument(owner + ": not a map");
  ExecConfig out;
  out.user = user_name;
  out.command = Str(exec, "command");
  if (out.command.empty()) return InvalidArgument(owner + ": command is required");
  if (out.command.find('/') != std::string::npos) out.command = Resolve(base_dir, out.command);
  out.api_version = Str(exec, "apiVersion");
  if (out.api_version.empty()) return InvalidArgument(owner + ": apiVersion is required");
  if (out.api_version != kExecV1 && out.api_version != kExecV1beta1) {
    return InvalidArgument(owner + ": apiVersion \"" + out.api_version +
                           "\" is not supported; use " + kExecV1 + " or " + kExecV1beta1);
  }
  if (const YAML::Node args = exec["args"]; args && args.IsSequence()) {
    for (const auto& a : args) out.args.push_back(a.as<std::string>());
  }
  if (const YAML::Node env = exec["env"]; env && env.IsSequence()) {
    for (const auto& e : env) {
      const std::string name = Str(e, "name");
      if (name.empty()) return InvalidArgument(owner + ": env entry without a name");
      out.env.emplace_back(name, Str(e, "value"));
    }
  }
  out.install_hint = Str(exec, "installHint");
  out.provide_cluster_info = Bool(exec, "provideClusterInfo");
  out.interactive_mode = Str(exec, "interactiveMode");
  if (out.interactive_mode.empty()) {
    if (out.api_version == kExecV1) {
      return InvalidArgument(owner + ": interactiveMode is required for " + kExecV1 +
                             " (Never, IfAvailable or Always)");
    }
    out.interactive_mode = "IfAvailable";
  }
  if (out.interactive_mode != "Never" && out.interactive_mode != "IfAvailable" &&
      out.interactive_mode != "Always") {
    return InvalidArgument(owner + ": interactiveMode \"" + out.interactive_mode +
                           "\" is not one of Never, IfAvailable, Always");
  }
  if (out.interactive_mode == "Always") {
    return FailedPrecondition(owner +
                              ": interactiveMode Always needs a terminal, and this process "
                              "gives the plugin none");
  }
  if (const YAML::Node exts = cluster.node["extensions"]; exts && exts.IsSequence()) {
    for (const auto& ext : exts) {
      if (Str(ext, "name") == kExecExtension && ext["extension"]) {
        out.cluster_config_json = YamlToJson(ext["extension"]).dump();
      }
    }
  }
  return out;
}

Status CheckProxyUrl(const std::string& url, const std::string& owner) {
  const size_t sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? "" : url.substr(0, sep);
  if (scheme != "http" && scheme != "https" && scheme != "socks5") {
    return InvalidArgument("kubeconfig: " + owner + " proxy-url \"" + url +
                           "\": the scheme must be http, https or socks5");
  }
  if (sep + 3 >= url.size()) {
    return InvalidArgument("kubeconfig: " + owner + " proxy-url \"" + url + "\" names no host");
  }
  return Status::Ok();
}

Result<Config> ParseKubeconfig(const Merged& root, const std::string& context_name) {
  std::string ctx_name = context_name.empty() ? root.current_context : context_name;
  if (ctx_name.empty()) {
    return InvalidArgument("kubeconfig: no context given and current-context is not set");
  }
  const Entry* ctx_entry = Find(root.contexts, ctx_name);
  if (ctx_entry == nullptr) return NotFound("kubeconfig: context \"" + ctx_name + "\" not found");
  const YAML::Node& ctx = ctx_entry->node;

  const std::string cluster_name = Str(ctx, "cluster");
  if (cluster_name.empty()) {
    return InvalidArgument("kubeconfig: context \"" + ctx_name + "\" names no cluster");
  }
  const Entry* cluster_entry = Find(root.clusters, cluster_name);
  if (cluster_entry == nullptr) {
    return NotFound("kubeconfig: cluster \"" + cluster_name + "\" not found");
  }
  const YAML::Node& cluster = cluster_entry->node;

  Config config;
  const std::string cluster_owner = "cluster \"" + cluster_name + "\"";
  config.server = Str(cluster, "server");
  if (config.server.empty()) {
    return InvalidArgument("kubeconfig: " + cluster_owner + " has no server");
  }
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  config.insecure_skip_tls_verify = Bool(cluster, "insecure-skip-tls-verify");
  config.tls_server_name = Str(cluster, "tls-server-name");
  config.proxy_url = Str(cluster, "proxy-url");
  if (!config.proxy_url.empty()) RETURN_IF_ERROR(CheckProxyUrl(config.proxy_url, cluster_owner));
  ASSIGN_OR_RETURN(config.ca_pem, DataOrFile(cluster, "certificate-authority",
                                             cluster_entry->base_dir, cluster_owner));
  if (config.insecure_skip_tls_verify && !config.ca_pem.empty()) {
    return InvalidArgument("kubeconfig: " + cluster_owner +
                           " sets both a certificate authority and insecure-skip-tls-verify");
  }

  const std::string ns = Str(ctx, "namespace");
  if (!ns.empty()) config.default_namespace = ns;

  const std::string user_name = Str(ctx, "user");
  if (user_name.empty()) return config;  // anonymous
  const Entry* user_entry = Find(root.users, user_name);
  if (user_entry == nullptr) return NotFound("kubeconfig: user \"" + user_name + "\" not found");
  const YAML::Node& user = user_entry->node;
  const std::string& base_dir = user_entry->base_dir;
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

  if (user["exec"] && user["auth-provider"]) {
    return InvalidArgument("kubeconfig: " + user_owner +
                           " sets both exec and auth-provider; use one");
  }
  if (const YAML::Node exec = user["exec"]) {
    ASSIGN_OR_RETURN(ExecConfig e, ParseExec(exec, *cluster_entry, base_dir, user_name));
    config.exec = std::move(e);
  }

  const bool has_credentials =
      !config.client_cert_pem.empty() || !config.bearer_token.empty() || config.exec.has_value();
  if (!has_credentials && user["auth-provider"]) {
    return Unimplemented("kubeconfig: " + user_owner +
                         " authenticates through an auth-provider plugin, which is not "
                         "supported (kubectl dropped them too); use an exec plugin, a token, "
                         "tokenFile or a client certificate");
  }
  if (!has_credentials && (user["username"] || user["password"])) {
    return Unimplemented("kubeconfig: " + user_owner +
                         " uses basic authentication, which is not supported");
  }
  return config;
}

Result<YAML::Node> LoadYaml(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("kubeconfig: ") + e.what());
  }
}

}  // namespace

std::vector<std::string> SplitKubeconfigList(const std::string& value) {
  std::vector<std::string> out;
  std::string_view list(value);
  while (true) {
    const size_t colon = list.find(':');
    const std::string entry(list.substr(0, colon));
    if (!entry.empty() && std::find(out.begin(), out.end(), entry) == out.end()) {
      out.push_back(entry);
    }
    if (colon == std::string_view::npos) break;
    list.remove_prefix(colon + 1);
  }
  return out;
}

std::string Config::DescribeCredentials() const {
  if (!bearer_token.empty() || !token_file.empty()) {
    return token_file.empty() ? "bearer token" : "token file " + token_file;
  }
  if (exec) return "exec plugin \"" + exec->command + "\" (user \"" + exec->user + "\")";
  if (!client_cert_pem.empty()) return "client certificate";
  return "no credentials";
}

Result<Config> Config::FromKubeconfigYaml(const std::string& yaml, const std::string& base_dir,
                                          const std::string& context) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml));
  if (!root || !root.IsMap()) return InvalidArgument("kubeconfig: not a YAML map");
  Merged merged;
  RETURN_IF_ERROR(merged.Add(root, base_dir));
  return ParseKubeconfig(merged, context);
}

Result<Config> Config::FromKubeconfigFiles(const std::vector<std::string>& paths,
                                           const std::string& context) {
  Merged merged;
  std::string files;
  for (const std::string& file : paths) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) continue;
    ASSIGN_OR_RETURN(std::string text, ReadFile(file, "kubeconfig"));
    Result<YAML::Node> root = LoadYaml(text);
    if (!root.ok()) return root.status().Annotate(file);
    Status added = merged.Add(*root, std::filesystem::path(file).parent_path().string());
    if (!added.ok()) return added.Annotate(file);
    files += (files.empty() ? "" : ":") + file;
  }
  if (files.empty()) {
    std::string listed;
    for (const auto& p : paths) listed += (listed.empty() ? "" : ":") + p;
    return NotFound("kubeconfig: none of these files exists: " +
                    (listed.empty() ? std::string("(no files)") : listed));
  }
  Result<Config> config = ParseKubeconfig(merged, context);
  if (!config.ok()) return config.status().Annotate(files);
  return config;
}

Result<Config> Config::FromKubeconfig(const std::string& path, const std::string& context) {
  std::string file = path;
  if (file.empty()) {
    const char* env = std::getenv("KUBECONFIG");
    const std::vector<std::string> list = SplitKubeconfigList(env == nullptr ? "" : env);
    if (!list.empty()) return FromKubeconfigFiles(list, context);
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return NotFound("kubeconfig: no path given, $KUBECONFIG is empty and $HOME is not set");
    }
    file = std::string(home) + "/.kube/config";
  }
  // A file named explicitly (or the default one) must exist, unlike entries of $KUBECONFIG.
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
  const char* env = std::getenv("KUBECONFIG");
  if (!SplitKubeconfigList(env == nullptr ? "" : env).empty()) return FromKubeconfig("", context);
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') return InCluster();
  return FromKubeconfig("", context);
}

}  // namespace sluice::kube
