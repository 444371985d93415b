#include "e2e/procnode/launch.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

namespace sluice::procnode {

using nlohmann::json;

Result<std::string> ResolveBinary(const std::string& command,
                                  const std::vector<std::string>& bin_dirs) {
  const std::string base = std::filesystem::path(command).filename().string();
  if (base.empty()) return InvalidArgument("empty command");
  std::string searched;
  for (const auto& dir : bin_dirs) {
    if (dir.empty()) continue;
    const std::filesystem::path candidate = std::filesystem::path(dir) / base;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) {
      return std::filesystem::absolute(candidate).string();
    }
    searched += (searched.empty() ? "" : ", ") + dir;
  }
  return NotFound("no executable '" + base + "' in --bin-dir (" + searched + ")");
}

std::string ExpandReferences(const std::string& text,
                             const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] == '(') {
      const size_t close = text.find(')', i + 2);
      if (close != std::string::npos) {
        const std::string name = text.substr(i + 2, close - i - 2);
        // The last definition wins, as in the kubelet's map.
        const std::string* value = nullptr;
        for (const auto& [k, v] : vars) {
          if (k == name) value = &v;
        }
        if (value) {
          out += *value;
          i = close;
          continue;
        }
      }
    }
    out += text[i];
  }
  return out;
}

namespace {

Result<std::string> FieldRefValue(const json& pod, const std::string& field_path,
                                  const std::string& pod_ip, const std::string& host_ip) {
  const json& meta = pod.value("metadata", json::object());
  const json& spec = pod.value("spec", json::object());
  if (field_path == "metadata.name") return meta.value("name", "");
  if (field_path == "metadata.namespace") return meta.value("namespace", "");
  if (field_path == "metadata.uid") return meta.value("uid", "");
  if (field_path == "spec.nodeName") return spec.value("nodeName", "");
  if (field_path == "spec.serviceAccountName") return spec.value("serviceAccountName", "default");
  if (field_path == "status.podIP") return pod_ip;
  if (field_path == "status.hostIP") return host_ip;
  return Unimplemented("env fieldRef " + field_path + " is not supported");
}

}  // namespace

Result<Launch> BuildLaunch(const json& pod, const std::string& pod_ip, const std::string& host_ip,
                           const LaunchOptions& options) {
  const json& containers = pod["spec"].value("containers", json::array());
  if (containers.size() != 1) {
    return Unimplemented("pods with " + std::to_string(containers.size()) +
                         " containers are not supported (exactly one)");
  }
  if (pod["spec"].contains("initContainers") && !pod["spec"]["initContainers"].empty()) {
    return Unimplemented("init containers are not supported");
  }
  const json& c = containers[0];
  std::vector<std::string> command;
  for (const auto& s : c.value("command", json::array())) command.push_back(s.get<std::string>());
  if (command.empty()) {
    return InvalidArgument("container " + c.value("name", "") +
                           " has no command (images have no entrypoint here)");
  }

  // The container's variables in declaration order; a value may refer to earlier ones.
  std::vector<std::pair<std::string, std::string>> vars;
  for (const auto& e : c.value("env", json::array())) {
    const std::string name = e.value("name", "");
    if (name.empty()) return InvalidArgument("env entry without a name");
    if (e.contains("valueFrom") && e["valueFrom"].contains("secretKeyRef")) {
      const json& ref = e["valueFrom"]["secretKeyRef"];
      if (!options.secret_value) {
        return Unimplemented("env " + name + ": secretKeyRef needs a Secret reader");
      }
      const std::string secret = ref.value("name", ""), key = ref.value("key", "");
      Result<std::string> value = options.secret_value(secret, key);
      if (value.ok()) {
        vars.emplace_back(name, *value);
      } else if (value.status().code() != StatusCode::kNotFound || !ref.value("optional", false)) {
        return value.status().Annotate("env " + name + " from Secret " + secret + " key " + key);
      }
    } else if (e.contains("valueFrom")) {
      const json& from = e["valueFrom"];
      if (!from.contains("fieldRef")) {
        return Unimplemented("env " + name + ": only valueFrom.fieldRef and secretKeyRef are supported");
      }
      ASSIGN_OR_RETURN(
          std::string value,
          FieldRefValue(pod, from["fieldRef"].value("fieldPath", ""), pod_ip, host_ip));
      vars.emplace_back(name, value);
    } else {
      vars.emplace_back(name, ExpandReferences(e.value("value", ""), vars));
    }
  }
  if (c.contains("envFrom") && !c["envFrom"].empty()) {
    return Unimplemented("envFrom is not supported");
  }

  // emptyDir mounts: container path -> the volume's folder on this host.
  std::vector<std::pair<std::string, std::string>> mounts;
  if (!options.volumes_dir.empty()) {
    std::set<std::string> empty_dirs;
    for (const auto& v : pod["spec"].value("volumes", json::array())) {
      if (v.contains("emptyDir")) empty_dirs.insert(v.value("name", ""));
    }
    for (const auto& m : c.value("volumeMounts", json::array())) {
      const std::string volume = m.value("name", "");
      if (!empty_dirs.count(volume)) continue;
      const std::string dir = options.volumes_dir + "/" + volume;
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return Internal("creating " + dir + ": " + ec.message());
      mounts.emplace_back(m.value("mountPath", ""), dir);
    }
  }
  auto on_host = [&](const std::string& text) {
    for (const auto& [path, dir] : mounts) {
      if (path.empty() || path == "/") continue;
      // "--flag=<path>..." or "<path>...", at a path boundary.
      for (size_t at : {size_t{0}, text.find('=') == std::string::npos ? std::string::npos
                                                                       : text.find('=') + 1}) {
        if (at == std::string::npos || text.compare(at, path.size(), path) != 0) continue;
        const size_t end = at + path.size();
        if (end != text.size() && text[end] != '/') continue;
        return text.substr(0, at) + dir + text.substr(end);
      }
    }
    return text;
  };
  for (auto& [k, v] : vars) v = on_host(v);

  Launch launch;
  ASSIGN_OR_RETURN(launch.binary, ResolveBinary(command[0], options.bin_dirs));
  launch.argv.push_back(launch.binary);
  for (size_t i = 1; i < command.size(); ++i) {
    launch.argv.push_back(on_host(ExpandReferences(command[i], vars)));
  }
  for (const auto& a : c.value("args", json::array())) {
    launch.argv.push_back(on_host(ExpandReferences(a.get<std::string>(), vars)));
  }
  launch.argv.push_back("--http-address=" + pod_ip);

  std::map<std::string, std::string> env;
  for (const auto& kv : options.base_env) {
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // In-cluster detection must not fire: the process talks to the API through KUBECONFIG or not
  // at all.
  env.erase("KUBERNETES_SERVICE_HOST");
  env.erase("KUBERNETES_SERVICE_PORT");
  if (!options.pod_kubeconfig.empty()) env["KUBECONFIG"] = options.pod_kubeconfig;
  env["HOSTNAME"] = pod["metadata"].value("name", "");
  for (const auto& [k, v] : vars) env[k] = v;
  for (const auto& [k, v] : env) launch.env.push_back(k + "=" + v);
  return launch;
}

}  // namespace sluice::procnode
