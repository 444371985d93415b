#pragma once

// YAML → JSON as the API server reads a manifest: plain scalars become booleans, nulls, integers
// or floats when they look like one, quoted scalars stay strings.

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::controllers::testing {

inline nlohmann::json YamlToJson(const YAML::Node& node) {
  using nlohmann::json;
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~" || s.empty()) return nullptr;
      char* end = nullptr;
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == '\0') return i;
      const double d = std::strtod(s.c_str(), &end);
      if (end && *end == '\0' && s.find_first_of("0123456789") != std::string::npos) return d;
      return s;
    }
  }
  return nullptr;
}

// Every document of a YAML file.
inline std::vector<nlohmann::json> LoadYamlDocuments(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const YAML::Node& doc : YAML::LoadAllFromFile(path)) {
    if (doc.IsNull()) continue;
    out.push_back(YamlToJson(doc));
  }
  return out;
}

// The v1alpha1 openAPIV3Schema of the CRD in `path`.
inline nlohmann::json LoadCrdSchema(const std::string& path) {
  std::vector<nlohmann::json> docs = LoadYamlDocuments(path);
  if (docs.size() != 1) throw std::runtime_error(path + ": expected one document");
  for (const nlohmann::json& v : docs.at(0).at("spec").at("versions")) {
    if (v.at("name") == "v1alpha1") return v.at("schema").at("openAPIV3Schema");
  }
  throw std::runtime_error(path + ": no v1alpha1 version");
}

}  // namespace sluice::controllers::testing
