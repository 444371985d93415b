#include "dataplane/runtime/model_source.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

namespace sluice::dataplane {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Decodes %XX escapes of a file URI path.
Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      return InvalidArgument("bad percent escape in \"" + std::string(s) + "\"");
    }
    out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

Result<std::string> FilePathOf(const std::string& uri) {
  if (!StartsWith(uri, "file://")) return uri;
  std::string_view rest = std::string_view(uri).substr(7);
  // file:///abs/path or file://localhost/abs/path; a relative "file://rel" is taken as written.
  if (StartsWith(rest, "localhost/")) rest.remove_prefix(9);
  return PercentDecode(rest);
}

Result<std::string> ReadFile(const std::string& uri, const FetchOptions& options) {
  ASSIGN_OR_RETURN(std::string path, FilePathOf(uri));
  if (path.empty()) return InvalidArgument("empty model path in \"" + uri + "\"");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    const int err = errno;
    const std::string msg = "open " + path + ": " + std::strerror(err);
    if (err == ENOENT || err == ENOTDIR) return NotFound(msg);
    if (err == EACCES || err == EPERM) return Status(StatusCode::kForbidden, msg);
    return Unavailable(msg);
  }
  struct stat st {};
  if (fstat(fileno(f.get()), &st) != 0) return Unavailable("stat " + path);
  if (S_ISDIR(st.st_mode)) return InvalidArgument(path + " is a directory");
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > options.max_bytes) {
    return ResourceExhausted(path + " is " + std::to_string(st.st_size) +
                             " bytes, over the limit of " + std::to_string(options.max_bytes));
  }
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const size_t n = std::fread(buf, 1, sizeof(buf), f.get());
    if (n > 0) {
      if (out.size() + n > options.max_bytes) {
        return ResourceExhausted(path + " is over the limit of " +
                                 std::to_string(options.max_bytes) + " bytes");
      }
      out.append(buf, n);
    }
    if (n < sizeof(buf)) {
      if (std::ferror(f.get())) return Unavailable("read " + path + ": I/O error");
      break;
    }
  }
  return out;
}

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Download {
  std::string body;
  size_t max_bytes = 0;
  bool too_large = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t n = size * nmemb;
  if (d->body.size() + n > d->max_bytes) {
    d->too_large = true;
    return 0;  // makes libcurl abort with CURLE_WRITE_ERROR
  }
  d->body.append(data, n);
  return n;
}

Result<std::string> HttpGet(const std::string& uri, const FetchOptions& options) {
  CurlGlobalInit();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Internal("curl_easy_init failed");
  Download d;
  d.max_bytes = options.max_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, uri.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-server");
  if (!options.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());

  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (d.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    return ResourceExhausted("GET " + uri + ": body over the limit of " +
                             std::to_string(options.max_bytes) + " bytes");
  }
  if (rc != CURLE_OK) {
    const std::string detail = error[0] != 0 ? error : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout("GET " + uri + ": " + detail);
    if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
      return InvalidArgument("GET " + uri + ": " + detail);
    }
    return Unavailable("GET " + uri + ": " + detail);
  }
  if (code >= 200 && code < 300) return std::move(d.body);
  const std::string msg = "GET " + uri + ": HTTP " + std::to_string(code);
  switch (code) {
    case 404:
    case 410:
      return NotFound(msg);
    case 401:
      return Status(StatusCode::kUnauthorized, msg).WithHttpStatus(static_cast<int>(code));
    case 403:
      return Status(StatusCode::kForbidden, msg).WithHttpStatus(static_cast<int>(code));
    case 429:
      return Status(StatusCode::kTooManyRequests, msg).WithHttpStatus(static_cast<int>(code));
    default:
      if (code >= 500) return Unavailable(msg).WithHttpStatus(static_cast<int>(code));
      return InvalidArgument(msg).WithHttpStatus(static_cast<int>(code));
  }
}

// Where the path of an http(s) URI ends: before "?query" or "#fragment". File paths may contain
// either character, so they are taken whole.
size_t PathEnd(const std::string& uri) {
  const size_t scheme = uri.find("://");
  if (scheme == std::string::npos || Lower(uri.substr(0, scheme)) == "file") return uri.size();
  const size_t q = uri.find_first_of("?#", scheme + 3);
  return q == std::string::npos ? uri.size() : q;
}

}  // namespace

Result<std::string> FetchUri(const std::string& uri, const FetchOptions& options) {
  if (uri.empty()) return InvalidArgument("empty model URI");
  const std::string lower = Lower(uri.substr(0, std::min<size_t>(uri.size(), 10)));
  if (StartsWith(lower, "http://") || StartsWith(lower, "https://")) return HttpGet(uri, options);
  if (StartsWith(lower, "file://")) return ReadFile(uri, options);
  const size_t scheme = uri.find("://");
  if (scheme != std::string::npos) {
    return Unimplemented("model URI scheme \"" + uri.substr(0, scheme) + "\" is not supported");
  }
  return ReadFile(uri, options);
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Status VerifySha256(std::string_view bytes, std::string_view expected) {
  if (expected.empty()) return Status::Ok();
  constexpr std::string_view kPrefix = "sha256:";
  if (Lower(expected.substr(0, kPrefix.size())) != kPrefix) {
    return InvalidArgument("checksum \"" + std::string(expected) +
                           "\" must be of the form sha256:<64 hex digits>");
  }
  const std::string want = Lower(expected.substr(kPrefix.size()));
  if (want.size() != 64 ||
      !std::all_of(want.begin(), want.end(), [](unsigned char c) { return std::isxdigit(c); })) {
    return InvalidArgument("checksum \"" + std::string(expected) +
                           "\" must be of the form sha256:<64 hex digits>");
  }
  const std::string got = Sha256Hex(bytes);
  if (got != want) {
    return InvalidArgument("checksum mismatch: expected sha256:" + want + ", got sha256:" + got);
  }
  return Status::Ok();
}

std::string UriExtension(const std::string& uri) {
  const size_t end = PathEnd(uri);
  const size_t slash = uri.rfind('/', end == 0 ? 0 : end - 1);
  const size_t dot = uri.rfind('.', end == 0 ? 0 : end - 1);
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return Lower(std::string_view(uri).substr(dot + 1, end - dot - 1));
}

std::string UriStem(const std::string& uri) {
  const size_t end = PathEnd(uri);
  const size_t slash = end == 0 ? std::string::npos : uri.rfind('/', end - 1);
  const size_t begin = slash == std::string::npos ? 0 : slash + 1;
  std::string name = uri.substr(begin, end - begin);
  const size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

std::string ReferenceUriFor(const std::string& model_uri) {
  const size_t end = PathEnd(model_uri);
  std::string stem = model_uri.substr(0, end);
  const std::string ext = UriExtension(model_uri);
  if (ext == "json" || ext == "ubj" || ext == "ubjson") stem.resize(stem.size() - ext.size() - 1);
  return stem + ".reference.json" + model_uri.substr(end);
}

}  // namespace sluice::dataplane
