#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "controllers/registry/model_registry.h"

namespace sluice::controllers {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// MLflow's stage names, matched without regard to case as MLflow does.
constexpr std::array<std::string_view, 4> kStages = {"None", "Staging", "Production", "Archived"};

Status Malformed(const std::string& uri, const std::string& why) {
  return InvalidArgument("model URI \"" + uri + "\": " + why +
                         " (expected models:/<name>/<version>, models:/<name>/<stage> or "
                         "models:/<name>@<alias>)");
}

}  // namespace

Result<RegistryModelRef> ParseModelsUri(const std::string& uri) {
  constexpr std::string_view kScheme = "models:/";
  if (Lower(std::string_view(uri).substr(0, kScheme.size())) != kScheme) {
    return Malformed(uri, "the scheme must be models:/");
  }
  std::string_view rest = std::string_view(uri).substr(kScheme.size());
  if (!rest.empty() && rest.front() == '/') {
    // models://<profile>/... names a Databricks profile's registry; only the tracking URI of the
    // ModelDeployment chooses the registry here.
    return Malformed(uri, "a registry authority (models://...) is not supported");
  }
  RegistryModelRef ref;
  const size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    ref.name = std::string(rest.substr(0, at));
    ref.alias = std::string(rest.substr(at + 1));
    if (ref.name.empty()) return Malformed(uri, "the model name is empty");
    if (ref.name.find('/') != std::string::npos) {
      return Malformed(uri, "an alias follows the model name directly");
    }
    if (ref.alias.empty()) return Malformed(uri, "the alias after '@' is empty");
    if (ref.alias.find_first_of("/@") != std::string::npos) {
      return Malformed(uri, "the alias \"" + ref.alias + "\" contains '/' or '@'");
    }
    return ref;
  }
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    if (rest.empty()) return Malformed(uri, "the model name is missing");
    return Malformed(uri, "a version, stage or alias must follow the model name");
  }
  ref.name = std::string(rest.substr(0, slash));
  const std::string_view second = rest.substr(slash + 1);
  if (ref.name.empty()) return Malformed(uri, "the model name is empty");
  if (second.empty()) return Malformed(uri, "the version or stage after the name is empty");
  if (second.find('/') != std::string_view::npos) {
    return Malformed(uri, "too many path segments after the model name");
  }
  if (AllDigits(second)) {
    ref.version = std::string(second);
    if (ref.version.find_first_not_of('0') == std::string::npos) {
      return Malformed(uri, "version 0 does not exist (versions start at 1)");
    }
    return ref;
  }
  const std::string lower = Lower(second);
  if (lower == "latest") {
    ref.stage = "latest";
    return ref;
  }
  for (std::string_view stage : kStages) {
    if (lower == Lower(stage)) {
      ref.stage = std::string(stage);
      return ref;
    }
  }
  return Malformed(uri, "\"" + std::string(second) +
                            "\" is neither a version number nor a stage (None, Staging, "
                            "Production, Archived, latest)");
}

}  // namespace sluice::controllers
