#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "controllers/registry/model_registry.h"

namespace sluice::controllers {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr size_t kMaxAnswerBytes = size_t{4}
                                   << 20;  // MLflow's answers here are a few hundred bytes
constexpr std::string_view kApi = "/api/2.0/mlflow/";
constexpr std::string_view kArtifactProxy = "/api/2.0/mlflow-artifacts/artifacts";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Percent-encodes everything but RFC 3986's unreserved characters (and '/' when asked).
std::string Escape(std::string_view s, bool keep_slash = false) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// A tracking URI split the way MLflow's artifact proxy resolution needs it.
struct Tracking {
  std::string scheme;  // "http" or "https"
  std::string netloc;  // host[:port], possibly with user:password@ (kept out of messages)
  std::string prefix;  // "" or "/some/prefix", no trailing slash

  std::string Base() const { return scheme + "://" + netloc + prefix; }
  // For messages: the URI without any user:password@.
  std::string Display() const {
    const size_t at = netloc.rfind('@');
    return scheme + "://" + (at == std::string::npos ? netloc : netloc.substr(at + 1)) + prefix;
  }
};

Result<Tracking> ParseTracking(const std::string& uri) {
  const size_t sep = uri.find("://");
  Tracking t;
  if (sep != std::string::npos) t.scheme = Lower(std::string_view(uri).substr(0, sep));
  if (t.scheme != "http" && t.scheme != "https") {
    return InvalidArgument("MLflow tracking URI must be http:// or https://, got \"" +
                           uri.substr(0, sep == std::string::npos ? 0 : sep) + "\" scheme");
  }
  std::string_view rest = std::string_view(uri).substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgument("MLflow tracking URI must not have a query or fragment");
  }
  const size_t slash = rest.find('/');
  t.netloc = std::string(rest.substr(0, slash));
  if (t.netloc.empty()) return InvalidArgument("MLflow tracking URI has no host");
  if (slash != std::string_view::npos) t.prefix = std::string(rest.substr(slash));
  while (!t.prefix.empty() && t.prefix.back() == '/') t.prefix.pop_back();
  return t;
}

struct Answer {
  long status = 0;
  std::string body;
  bool overflow = false;
};

size_t OnData(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* a = static_cast<Answer*>(user);
  const size_t n = size * nmemb;
  if (a->body.size() + n > kMaxAnswerBytes) {
    a->overflow = true;
    return 0;
  }
  a->body.append(ptr, n);
  return n;
}

// One MLflow call. `what` names the call for messages ("model fraud version 3").
class Call {
 public:
  Call(const Tracking& tracking, const RegistryAccess& access, Clock::time_point deadline)
      : tracking_(tracking), access_(access), deadline_(deadline) {}

  // GET <api><endpoint>?<query> or POST with a JSON body. The answer's JSON on 200; an error
  // Status following the contract in model_registry.h otherwise.
  Result<json> Do(const std::string& endpoint, const std::string& query, const json* post,
                  const std::string& what) const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    const std::string where = "MLflow at " + tracking_.Display();
    if (left.count() <= 0) {
      return Unavailable(where + ": no answer within " + std::to_string(access_.timeout.count()) +
                         "ms (" + what + ")");
    }
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle(curl_easy_init(),
                                                               &curl_easy_cleanup);
    if (!handle) return Internal("curl_easy_init failed");
    CURL* h = handle.get();
    const std::string url =
        tracking_.Base() + std::string(kApi) + endpoint + (query.empty() ? "" : "?" + query);
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Accept: application/json");
    std::string auth;
    if (!access_.token.empty()) {
      auth = "Authorization: Bearer " + access_.token;
      headers = curl_slist_append(headers, auth.c_str());
    }
    std::string body;
    if (post != nullptr) {
      body = post->dump();
      headers = curl_slist_append(headers, "Content-Type: application/json");
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers,
                                                                            &curl_slist_free_all);
    Answer answer;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(left.count()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnData);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-operator");
    const CURLcode rc = curl_easy_perform(h);
    if (answer.overflow) {
      return Internal(where + ": answer over " + std::to_string(kMaxAnswerBytes) + " bytes (" +
                      what + ")");
    }
    if (rc != CURLE_OK) {
      // curl_easy_strerror, not the error buffer: the buffer can quote the URL, which may hold
      // user:password@.
      return Unavailable(where + ": " + curl_easy_strerror(rc) + " (" + what + ")");
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &answer.status);
    const json doc = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
    if (answer.status == 200) {
      if (!doc.is_object()) {
        return Internal(where + ": HTTP 200 without a JSON object (" + what + ")");
      }
      return doc;
    }
    std::string error_code, message;
    if (doc.is_object()) {
      if (doc.contains("error_code") && doc["error_code"].is_string()) {
        error_code = doc["error_code"].get<std::string>();
      }
      if (doc.contains("message") && doc["message"].is_string()) {
        message = doc["message"].get<std::string>();
      }
    }
    std::string detail = "HTTP " + std::to_string(answer.status);
    if (!error_code.empty()) detail += " " + error_code;
    if (!message.empty()) detail += ": " + message;
    const int code = static_cast<int>(answer.status);
    if (code == 404 || error_code == "RESOURCE_DOES_NOT_EXIST") {
      return NotFound(what + " not found in " + where + " (" + detail + ")").WithHttpStatus(code);
    }
    if (code == 401) {
      return Status(StatusCode::kUnauthorized, where + ": " + detail + " (" + what + ")")
          .WithHttpStatus(code);
    }
    if (code == 403) {
      return Status(StatusCode::kForbidden, where + ": " + detail + " (" + what + ")")
          .WithHttpStatus(code);
    }
    if (code >= 500 || code == 429) {
      return Unavailable(where + ": " + detail + " (" + what + ")").WithHttpStatus(code);
    }
    return Internal(where + ": " + detail + " (" + what + ")").WithHttpStatus(code);
  }

 private:
  const Tracking& tracking_;
  const RegistryAccess& access_;
  const Clock::time_point deadline_;
};

std::string StringAt(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// The version's number and run from a ModelVersion object, refusing versions that are not READY.
Result<ResolvedModel> FromModelVersion(const json& mv, const std::string& what,
                                       const std::string& where) {
  ResolvedModel out;
  out.version = StringAt(mv, "version");
  out.run_id = StringAt(mv, "run_id");
  if (out.version.empty()) {
    return Internal(where + ": answer for " + what + " has no model_version.version");
  }
  const std::string status = StringAt(mv, "status");
  if (status == "PENDING_REGISTRATION") {
    return Unavailable(what + " (version " + out.version + ") is still being registered in " +
                       where);
  }
  if (!status.empty() && status != "READY") {
    return Internal(
        what + " (version " + out.version + ") is " + status + " in " + where +
        (StringAt(mv, "status_message").empty() ? "" : ": " + StringAt(mv, "status_message")));
  }
  return out;
}

// Maps an artifact location from MLflow to a URI sluice-server fetches (see model_registry.h).
// mlflow-artifacts: locations resolve as MLflow's own client does (MlflowArtifactsRepository):
// the tracking URI's scheme and path prefix, the location's host when it names one.
Result<std::string> FetchableUri(const std::string& location, const Tracking& tracking,
                                 const std::string& what) {
  std::string out;
  const std::string lower = Lower(location.substr(0, std::min<size_t>(location.size(), 20)));
  if (StartsWith(lower, "mlflow-artifacts:")) {
    std::string_view rest = std::string_view(location).substr(17);
    std::string netloc = tracking.netloc;
    if (StartsWith(rest, "//")) {
      rest.remove_prefix(2);
      const size_t slash = rest.find('/');
      if (slash != 0) netloc = std::string(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    std::string path = tracking.prefix + std::string(kArtifactProxy) + "/" + Escape(rest, true);
    // Collapse "//" as MLflow does; the path came from MLflow, not from the user.
    std::string collapsed;
    for (char c : path) {
      if (c == '/' && !collapsed.empty() && collapsed.back() == '/') continue;
      collapsed.push_back(c);
    }
    out = tracking.scheme + "://" + netloc + collapsed;
  } else if (StartsWith(lower, "s3://") || StartsWith(lower, "gs://") ||
             StartsWith(lower, "http://") || StartsWith(lower, "https://") ||
             StartsWith(lower, "file:")) {
    out = location;
  } else if (StartsWith(location, "/")) {
    // A local artifact root without a scheme (mlflow server --default-artifact-root /path).
    out = "file://" + location;
  } else {
    const size_t colon = location.find(':');
    const std::string scheme = colon == std::string::npos ? location : location.substr(0, colon);
    return Unimplemented(what + " is stored at a \"" + scheme +
                         ":\" location, which sluice-server cannot fetch (supported: "
                         "mlflow-artifacts:, s3://, gs://, http(s)://, file://)");
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

int VersionNumber(const std::string& v) {
  try {
    return std::stoi(v);
  } catch (...) {
    return -1;
  }
}

class MlflowRegistry final : public ModelRegistry {
 public:
  Result<ResolvedModel> Resolve(const RegistryModelRef& ref,
                                const RegistryAccess& access) override {
    ASSIGN_OR_RETURN(Tracking tracking, ParseTracking(access.tracking_uri));
    const Call call(tracking, access, Clock::now() + access.timeout);
    const std::string where = "MLflow at " + tracking.Display();
    const std::string model = "model \"" + ref.name + "\"";
    const std::string name_q = "name=" + Escape(ref.name);

    ResolvedModel resolved;
    if (!ref.version.empty()) {
      const std::string what = model + " version " + ref.version;
      ASSIGN_OR_RETURN(
          json doc,
          call.Do("model-versions/get", name_q + "&version=" + Escape(ref.version), nullptr, what));
      ASSIGN_OR_RETURN(resolved, FromModelVersion(doc.value("model_version", json()), what, where));
    } else if (!ref.alias.empty()) {
      const std::string what = model + " alias \"" + ref.alias + "\"";
      auto doc =
          call.Do("registered-models/alias", name_q + "&alias=" + Escape(ref.alias), nullptr, what);
      // MLflow answers an unknown alias of a known model with 400 INVALID_PARAMETER_VALUE
      // ("Registered model alias <a> not found."), an unknown model with 404.
      if (!doc.ok() && doc.status().http_status() == 400 &&
          doc.status().message().find("not found") != std::string::npos) {
        return NotFound(what + " not found in " + where);
      }
      if (!doc.ok()) return doc.status();
      ASSIGN_OR_RETURN(resolved,
                       FromModelVersion(doc->value("model_version", json()), what, where));
    } else if (!ref.stage.empty()) {
      const bool latest = ref.stage == "latest";
      const std::string what = latest ? model + " latest version" : model + " stage " + ref.stage;
      json body = {{"name", ref.name}};
      if (!latest) body["stages"] = json::array({ref.stage});
      ASSIGN_OR_RETURN(json doc, call.Do("registered-models/get-latest-versions", "", &body, what));
      // One version per stage; with no stage filter, one per stage in use: take the highest.
      const json* best = nullptr;
      if (doc.contains("model_versions") && doc["model_versions"].is_array()) {
        for (const json& mv : doc["model_versions"]) {
          if (best == nullptr ||
              VersionNumber(StringAt(mv, "version")) > VersionNumber(StringAt(*best, "version"))) {
            best = &mv;
          }
        }
      }
      if (best == nullptr) {
        return NotFound(latest ? model + " has no versions in " + where
                               : model + " has no version in stage " + ref.stage + " in " + where);
      }
      ASSIGN_OR_RETURN(resolved, FromModelVersion(*best, what, where));
    } else {
      return InvalidArgument(model + ": the reference names no version, alias or stage");
    }

    const std::string what = model + " version " + resolved.version;
    ASSIGN_OR_RETURN(json uri,
                     call.Do("model-versions/get-download-uri",
                             name_q + "&version=" + Escape(resolved.version), nullptr, what));
    const std::string location = StringAt(uri, "artifact_uri");
    if (location.empty()) {
      return Internal(where + ": no artifact_uri in the download URI of " + what);
    }
    ASSIGN_OR_RETURN(resolved.source_uri, FetchableUri(location, tracking, what));
    return resolved;
  }
};

}  // namespace

std::unique_ptr<ModelRegistry> NewMlflowRegistry() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::make_unique<MlflowRegistry>();
}

}  // namespace sluice::controllers
