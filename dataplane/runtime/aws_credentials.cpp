#include "dataplane/runtime/aws_credentials.h"

#include <curl/curl.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <tuple>

namespace sluice::dataplane {
namespace {

std::string Env(const GetEnvFn& getenv, const char* name) {
  const char* v = getenv ? getenv(name) : nullptr;
  return v != nullptr ? std::string(v) : std::string();
}

std::string FormEncode(std::string_view s) {
  return AwsUriEncode(s, false);
}

size_t AppendBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t n = size * nmemb;
  if (body->size() + n > (size_t{1} << 20)) return 0;  // STS answers are a few KB
  body->append(data, n);
  return n;
}

// "2026-12-06T22:30:00Z" (fractions of a second ignored); nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> ParseIsoTime(const std::string& s) {
  std::tm tm{};
  if (s.size() < 19 || strptime(s.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

struct CachedCredentials {
  AwsCredentials credentials;
  std::chrono::system_clock::time_point expires;
};

std::mutex cache_mu;
// (role, token file, endpoint) -> credentials; guarded by cache_mu.
std::map<std::tuple<std::string, std::string, std::string>, CachedCredentials> cache;

Result<AwsCredentials> AssumeRoleWithWebIdentity(const std::string& endpoint,
                                                 const std::string& role_arn,
                                                 const std::string& session_name,
                                                 const std::string& token_file,
                                                 const AwsCredentialOptions& options) {
  std::ifstream in(token_file);
  if (!in) {
    return Status(StatusCode::kUnauthorized,
                  "cannot read the web identity token AWS_WEB_IDENTITY_TOKEN_FILE=" + token_file);
  }
  std::stringstream token;
  token << in.rdbuf();
  std::string jwt = token.str();
  while (!jwt.empty() && (jwt.back() == '\n' || jwt.back() == '\r' || jwt.back() == ' ')) {
    jwt.pop_back();
  }
  const std::string body =
      "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + FormEncode(role_arn) +
      "&RoleSessionName=" + FormEncode(session_name) + "&WebIdentityToken=" + FormEncode(jwt);
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Internal("curl_easy_init failed");
  CURL* h = curl.get();
  std::string answer;
  char error[CURL_ERROR_SIZE] = {0};
  curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/x-www-form-urlencoded");
  headers = curl_slist_append(headers, "Accept: application/xml");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, &curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_URL, endpoint.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-server");
  if (!options.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());
  const CURLcode rc = curl_easy_perform(h);
  const std::string what = "STS AssumeRoleWithWebIdentity at " + endpoint + " for " + role_arn;
  if (rc != CURLE_OK) {
    const std::string detail = error[0] != 0 ? error : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout(what + ": " + detail);
    return Unavailable(what + ": " + detail);
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    std::string msg = what + ": HTTP " + std::to_string(code);
    const std::string err = XmlElementText(answer, "Code");
    if (!err.empty()) msg += " " + err;
    const std::string detail = XmlElementText(answer, "Message");
    if (!detail.empty()) msg += ": " + detail;
    if (code >= 500) return Unavailable(msg).WithHttpStatus(static_cast<int>(code));
    return Status(StatusCode::kForbidden, msg).WithHttpStatus(static_cast<int>(code));
  }
  AwsCredentials c;
  c.access_key_id = XmlElementText(answer, "AccessKeyId");
  c.secret_access_key = XmlElementText(answer, "SecretAccessKey");
  c.session_token = XmlElementText(answer, "SessionToken");
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return Internal(what + ": the answer has no credentials");
  }
  const auto expires = ParseIsoTime(XmlElementText(answer, "Expiration"));
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    cache[{role_arn, token_file, endpoint}] = {
        c, expires ? *expires : std::chrono::system_clock::now() + std::chrono::minutes(15)};
  }
  return c;
}

}  // namespace

GetEnvFn ProcessEnv() {
  return [](const char* name) -> const char* { return std::getenv(name); };
}

std::string AwsRegionFromEnv(const GetEnvFn& getenv) {
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    std::string v = Env(getenv, name);
    if (!v.empty()) return v;
  }
  return "us-east-1";
}

Result<AwsCredentials> ResolveAwsCredentials(const GetEnvFn& getenv,
                                             const AwsCredentialOptions& options) {
  AwsCredentials c;
  c.access_key_id = Env(getenv, "AWS_ACCESS_KEY_ID");
  c.secret_access_key = Env(getenv, "AWS_SECRET_ACCESS_KEY");
  c.session_token = Env(getenv, "AWS_SESSION_TOKEN");
  if (!c.access_key_id.empty() && !c.secret_access_key.empty()) return c;
  if (!c.access_key_id.empty() || !c.secret_access_key.empty()) {
    return Status(StatusCode::kUnauthorized,
                  std::string("AWS credentials are incomplete: ") +
                      (c.access_key_id.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") +
                      " is not set");
  }

  const std::string token_file = Env(getenv, "AWS_WEB_IDENTITY_TOKEN_FILE");
  const std::string role_arn = Env(getenv, "AWS_ROLE_ARN");
  if (!token_file.empty() && !role_arn.empty()) {
    std::string session = Env(getenv, "AWS_ROLE_SESSION_NAME");
    if (session.empty()) session = "sluice-server";
    std::string endpoint = Env(getenv, "AWS_ENDPOINT_URL_STS");
    if (endpoint.empty()) {
      const std::string region = options.region.empty() ? AwsRegionFromEnv(getenv) : options.region;
      endpoint = "https://sts." + region + ".amazonaws.com";
    }
    if (endpoint.back() != '/') endpoint.push_back('/');
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = cache.find({role_arn, token_file, endpoint});
      if (it != cache.end() &&
          std::chrono::system_clock::now() + std::chrono::minutes(5) < it->second.expires) {
        return it->second.credentials;
      }
    }
    return AssumeRoleWithWebIdentity(endpoint, role_arn, session, token_file, options);
  }
  if (!token_file.empty() || !role_arn.empty()) {
    return Status(StatusCode::kUnauthorized,
                  std::string("web identity credentials are incomplete: ") +
                      (token_file.empty() ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN") +
                      " is not set");
  }
  return Status(StatusCode::kUnauthorized,
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                "AWS_SESSION_TOKEN for temporary keys), or AWS_WEB_IDENTITY_TOKEN_FILE and "
                "AWS_ROLE_ARN for web identity (IRSA); anonymous access is not attempted");
}

std::string XmlElementText(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const size_t b = xml.find(open);
  if (b == std::string_view::npos) return "";
  const size_t start = b + open.size();
  const size_t e = xml.find(close, start);
  if (e == std::string_view::npos) return "";
  std::string_view raw = xml.substr(start, e - start);
  std::string out;
  out.reserve(raw.size());
  static const std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  for (size_t i = 0; i < raw.size(); ++i) {
    bool replaced = false;
    if (raw[i] == '&') {
      for (const auto& [ent, ch] : kEntities) {
        if (raw.substr(i, ent.size()) == ent) {
          out.push_back(ch);
          i += ent.size() - 1;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(raw[i]);
  }
  return out;
}

void ClearAwsCredentialCache() {
  std::lock_guard<std::mutex> lock(cache_mu);
  cache.clear();
}

}  // namespace sluice::dataplane
