#include "dataplane/runtime/mlflow_model.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "dataplane/runtime/model_store.h"

namespace sluice::dataplane {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A file name from an MLmodel must stay inside the model directory.
Status CheckRelative(const std::string& data) {
  if (data.empty()) return InvalidArgument("MLmodel: flavors.xgboost.data is empty");
  if (data.front() == '/' || data.find("://") != std::string::npos ||
      data.find('\\') != std::string::npos) {
    return InvalidArgument("MLmodel: flavors.xgboost.data \"" + data +
                           "\" must be a path relative to the model directory");
  }
  size_t begin = 0;
  while (begin <= data.size()) {
    size_t end = data.find('/', begin);
    if (end == std::string::npos) end = data.size();
    if (data.compare(begin, end - begin, "..") == 0) {
      return InvalidArgument("MLmodel: flavors.xgboost.data \"" + data +
                             "\" leaves the model directory");
    }
    begin = end + 1;
  }
  return Status::Ok();
}

// Percent-encodes a relative path for a URL, keeping '/'.
std::string EscapePath(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// "scheme://authority" in lower case, and the rest (path, query, fragment) as written.
bool SplitOrigin(std::string_view uri, std::string* origin, std::string_view* rest) {
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos) return false;
  const size_t end = std::min(uri.find_first_of("/?#", sep + 3), uri.size());
  *origin = Lower(uri.substr(0, end));
  *rest = uri.substr(end);
  return true;
}

}  // namespace

Result<MlflowModelFile> ParseMlflowModel(std::string_view mlmodel_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(mlmodel_text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("MLmodel is not YAML: ") + e.what());
  }
  if (!root.IsMap() || !root["flavors"] || !root["flavors"].IsMap()) {
    return InvalidArgument("MLmodel has no flavors map");
  }
  const YAML::Node flavors = root["flavors"];
  const YAML::Node xgb = flavors["xgboost"];
  if (!xgb) {
    std::string names;
    for (const auto& kv : flavors) {
      if (!names.empty()) names += ", ";
      names += kv.first.Scalar();
    }
    return Unimplemented("the MLflow model has no xgboost flavor (it has: " +
                         (names.empty() ? std::string("none") : names) +
                         "); sluice-server serves models logged with mlflow.xgboost");
  }
  if (!xgb.IsMap()) return InvalidArgument("MLmodel: flavors.xgboost is not a map");
  MlflowModelFile out;
  if (!xgb["data"] || !xgb["data"].IsScalar()) {
    return InvalidArgument("MLmodel: flavors.xgboost has no data file name");
  }
  out.data = xgb["data"].Scalar();
  RETURN_IF_ERROR(CheckRelative(out.data));
  // model_format arrived in MLflow 2.x; before it the file was the binary "xgb" format.
  const std::string format = xgb["model_format"] && xgb["model_format"].IsScalar()
                                 ? Lower(xgb["model_format"].Scalar())
                                 : "";
  if (format == "json") {
    out.format = "xgboost-json";
  } else if (format == "ubj") {
    out.format = "xgboost-ubj";
  } else if (format.empty() || format == "xgb" || format == "deprecated") {
    out.format = "auto";
  } else {
    return Unimplemented("MLmodel: xgboost model_format \"" + format +
                         "\" is not supported (json, ubj)");
  }
  return out;
}

std::string MlflowModelFileUri(const std::string& dir_uri, const std::string& data) {
  const size_t scheme_end = dir_uri.find("://");
  const std::string scheme =
      scheme_end == std::string::npos ? "" : Lower(dir_uri.substr(0, scheme_end));
  const bool http = scheme == "http" || scheme == "https";
  std::string base = dir_uri;
  std::string tail;  // "?query" / "#fragment" of an http(s) URI, kept at the end
  if (http) {
    const size_t q = dir_uri.find_first_of("?#", scheme_end + 3);
    if (q != std::string::npos) {
      base = dir_uri.substr(0, q);
      tail = dir_uri.substr(q);
    }
  }
  while (!base.empty() && base.back() == '/' &&
         (scheme_end == std::string::npos || base.size() > scheme_end + 3)) {
    base.pop_back();
  }
  const bool escape = http || scheme == "file";
  return base + "/" + (escape ? EscapePath(data) : data) + tail;
}

bool UnderTrackingUri(std::string_view uri, std::string_view tracking_uri) {
  std::string origin, tracking_origin;
  std::string_view path, tracking_path;
  if (!SplitOrigin(uri, &origin, &path) ||
      !SplitOrigin(tracking_uri, &tracking_origin, &tracking_path) || origin != tracking_origin) {
    return false;
  }
  while (!tracking_path.empty() && tracking_path.back() == '/') tracking_path.remove_suffix(1);
  if (!path.starts_with(tracking_path)) return false;
  if (path.size() == tracking_path.size()) return true;
  const char next = path[tracking_path.size()];
  return next == '/' || next == '?' || next == '#';
}

namespace {

// Fetches `<dir_uri>/MLmodel` into `*text` and parses it.
Result<MlflowModelFile> FetchMlmodel(const std::string& dir_uri, const FetchOptions& fetch,
                                     std::string* text) {
  const std::string mlmodel = MlflowModelFileUri(dir_uri, "MLmodel");
  FetchOptions small = fetch;
  small.max_bytes = size_t{1} << 20;  // an MLmodel file is a few hundred bytes
  Result<std::string> got = FetchUri(mlmodel, small);
  if (!got.ok()) return got.status().Annotate("fetching the MLmodel file");
  *text = std::move(got).value();
  Result<MlflowModelFile> parsed = ParseMlflowModel(*text);
  if (!parsed.ok()) return parsed.status().Annotate("the MLmodel file of " + dir_uri);
  return parsed;
}

}  // namespace

Result<MlflowModelFile> ResolveMlflowModel(const std::string& dir_uri, const FetchOptions& fetch) {
  std::string text;
  return FetchMlmodel(dir_uri, fetch, &text);
}

Result<MlflowModelFile> ResolveMlflowModelInDir(const std::string& dir_uri,
                                                const std::string& model_dir,
                                                const FetchOptions& fetch, bool* reused) {
  if (reused != nullptr) *reused = false;
  const std::string mlmodel = MlflowModelFileUri(dir_uri, "MLmodel");
  const std::string path = model_dir + "/" + LocalModelName(mlmodel, "");
  if (std::ifstream in(path, std::ios::binary); in) {
    const std::string text(std::istreambuf_iterator<char>(in), {});
    Result<MlflowModelFile> parsed = ParseMlflowModel(text);
    if (parsed.ok()) {
      if (reused != nullptr) *reused = true;
      return parsed;
    }
    // Not what was written (only a parsed MLmodel is kept): fetch it again.
  }
  std::string text;
  ASSIGN_OR_RETURN(MlflowModelFile parsed, FetchMlmodel(dir_uri, fetch, &text));
  if (::mkdir(model_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Unavailable("mkdir " + model_dir + ": " + std::strerror(errno));
  }
  // Written whole, then renamed: a file under its final name is complete.
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return Unavailable("write " + partial + ": " + std::strerror(errno));
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    return Unavailable("rename " + partial + ": " + std::strerror(errno));
  }
  return parsed;
}

}  // namespace sluice::dataplane
