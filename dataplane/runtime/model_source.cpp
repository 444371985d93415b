#include "dataplane/runtime/model_source.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "dataplane/runtime/sigv4.h"

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

// Opens a model file for reading, with the error codes of the contract.
Result<std::unique_ptr<FILE, int (*)(FILE*)>> OpenModelFile(const std::string& uri,
                                                            const FetchOptions& options,
                                                            std::string* path_out) {
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
  *path_out = path;
  return f;
}

Result<std::string> ReadFile(const std::string& uri, const FetchOptions& options) {
  std::string path;
  ASSIGN_OR_RETURN(auto f, OpenModelFile(uri, options, &path));
  std::string out;
  struct stat st {};
  if (fstat(fileno(f.get()), &st) == 0 && S_ISREG(st.st_mode)) {
    out.reserve(static_cast<size_t>(st.st_size));
  }
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

Status CheckDigestForm(std::string_view expected) {
  if (expected.empty()) return Status::Ok();
  constexpr std::string_view kPrefix = "sha256:";
  const std::string want = Lower(expected.substr(std::min(expected.size(), kPrefix.size())));
  if (Lower(expected.substr(0, kPrefix.size())) != kPrefix || want.size() != 64 ||
      !std::all_of(want.begin(), want.end(), [](unsigned char c) { return std::isxdigit(c); })) {
    return InvalidArgument("checksum \"" + std::string(expected) +
                           "\" must be of the form sha256:<64 hex digits>");
  }
  return Status::Ok();
}

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Where the bytes of a successful answer go. Reset before every attempt.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Reset() = 0;
  // False on a local failure (disk full); the transfer is then aborted.
  virtual bool Write(const char* data, size_t n) = 0;
};

class StringSink : public Sink {
 public:
  Status Reset() override {
    body.clear();
    return Status::Ok();
  }
  bool Write(const char* data, size_t n) override {
    body.append(data, n);
    return true;
  }
  std::string body;
};

// Writes to an open file and hashes what it writes (SHA-256, OpenSSL EVP). The receiving thread
// only copies into 1 MiB chunks; a worker thread hashes and writes them, so the network, the
// hash and the page cache overlap. At most kMaxChunks chunks are in flight: memory stays bounded
// whatever the model's size.
class FileSink : public Sink {
 public:
  FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)), md_(EVP_MD_CTX_new()) {}
  ~FileSink() override {
    Stop();
    EVP_MD_CTX_free(md_);
  }

  Status Reset() override {
    Stop();
    bytes_ = 0;
    error_.clear();
    failed_ = false;
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
      return Unavailable("truncate " + path_ + ": " + std::strerror(errno));
    }
    EVP_DigestInit_ex(md_, EVP_sha256(), nullptr);
    current_.clear();
    current_.reserve(kChunk);
    done_ = false;
    worker_ = std::thread([this] { Work(); });
    return Status::Ok();
  }

  bool Write(const char* data, size_t n) override {
    bytes_ += n;
    while (n > 0) {
      const size_t take = std::min(n, kChunk - current_.size());
      current_.append(data, take);
      data += take;
      n -= take;
      if (current_.size() == kChunk && !Push()) return false;
    }
    return true;
  }

  // Waits for every chunk to be hashed and written. False on a write error (see error()).
  bool Flush() {
    if (!current_.empty() && !Push()) return false;
    Stop();
    return !failed_;
  }

  std::string Finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md_, digest, &len);
    return HexOf(std::string_view(reinterpret_cast<const char*>(digest), len));
  }
  uint64_t bytes() const { return bytes_; }
  std::string error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  static constexpr size_t kChunk = size_t{1} << 20;
  static constexpr size_t kMaxChunks = 8;

  bool Push() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return queue_.size() < kMaxChunks || failed_; });
    if (failed_) return false;
    queue_.push_back(std::move(current_));
    current_ = std::string();
    current_.reserve(kChunk);
    cv_.notify_all();
    return true;
  }

  void Stop() {
    if (!worker_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  void Work() {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) return;
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      cv_.notify_all();
      if (failed_) continue;  // drain without writing
      EVP_DigestUpdate(md_, chunk.data(), chunk.size());
      const char* p = chunk.data();
      size_t n = chunk.size();
      while (n > 0) {
        const ssize_t w = ::write(fd_, p, n);
        if (w < 0) {
          if (errno == EINTR) continue;
          std::lock_guard<std::mutex> lock(mu_);
          error_ = "write " + path_ + ": " + std::strerror(errno);
          failed_ = true;
          cv_.notify_all();
          break;
        }
        p += w;
        n -= static_cast<size_t>(w);
      }
    }
  }

  int fd_;
  std::string path_;
  EVP_MD_CTX* md_;  // used by the worker while it runs, by the caller otherwise
  uint64_t bytes_ = 0;
  std::string current_;  // the chunk being filled, receiving thread only
  std::thread worker_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // guarded by mu_
  bool done_ = false;              // guarded by mu_
  std::atomic<bool> failed_{false};
  std::string error_;  // guarded by mu_
};

Status CopyFile(const std::string& uri, const FetchOptions& options, Sink& sink) {
  RETURN_IF_ERROR(sink.Reset());
  std::string path;
  ASSIGN_OR_RETURN(auto f, OpenModelFile(uri, options, &path));
  std::vector<char> buf(size_t{1} << 20);
  size_t total = 0;
  for (;;) {
    const size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n > 0) {
      total += n;
      if (total > options.max_bytes) {
        return ResourceExhausted(path + " is over the limit of " +
                                 std::to_string(options.max_bytes) + " bytes");
      }
      if (!sink.Write(buf.data(), n)) {
        const auto* file = dynamic_cast<FileSink*>(&sink);
        return Internal(file != nullptr ? file->error() : "write failed");
      }
    }
    if (n < buf.size()) {
      if (std::ferror(f.get())) return Unavailable("read " + path + ": I/O error");
      return Status::Ok();
    }
  }
}

// One request's state, seen by the write callback.
struct Transfer {
  CURL* curl = nullptr;
  Sink* sink = nullptr;
  size_t max_bytes = 0;
  size_t written = 0;
  bool too_large = false;
  bool sink_failed = false;
  std::string error_body;  // the body of a non-2xx answer (S3's XML error), capped
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) {
    if (t->error_body.size() < 64 * 1024) t->error_body.append(data, n);
    return n;
  }
  if (t->written + n > t->max_bytes) {
    t->too_large = true;
    return 0;  // makes libcurl abort with CURLE_WRITE_ERROR
  }
  if (!t->sink->Write(data, n)) {
    t->sink_failed = true;
    return 0;
  }
  t->written += n;
  return n;
}

// What one attempt asks for. `what` names the resource in errors ("s3://b/k", a redacted URL).
struct Request {
  std::string url;
  std::string what;
  bool s3 = false;
  // Built per attempt: S3 signatures carry the time.
  std::function<Result<std::vector<std::string>>()> headers;
};

Status HttpError(long code, const Request& req, const std::string& body) {
  std::string msg = req.what + ": HTTP " + std::to_string(code);
  std::string s3_code;
  if (req.s3) {
    s3_code = XmlElementText(body, "Code");
    if (!s3_code.empty()) msg += " " + s3_code;
    const std::string detail = XmlElementText(body, "Message");
    if (!detail.empty()) msg += ": " + detail;
    const std::string endpoint = XmlElementText(body, "Endpoint");
    if (!endpoint.empty()) msg += " (endpoint " + endpoint + ")";
    const std::string region = XmlElementText(body, "Region");
    if (!region.empty()) msg += " (bucket region " + region + "; set --s3-region)";
  }
  const int http = static_cast<int>(code);
  switch (code) {
    case 404:
    case 410:
      return NotFound(msg).WithHttpStatus(http);
    case 401:
      return Status(StatusCode::kUnauthorized, msg).WithHttpStatus(http);
    case 403:
      return Status(StatusCode::kForbidden, msg).WithHttpStatus(http);
    case 429:
      return Status(StatusCode::kTooManyRequests, msg).WithHttpStatus(http);
    default:
      if (code >= 500) return Unavailable(msg).WithHttpStatus(http);
      return InvalidArgument(msg).WithHttpStatus(http);
  }
}

// One GET. Never retried here.
Status Attempt(const Request& req, const FetchOptions& options, Sink& sink) {
  CurlGlobalInit();
  RETURN_IF_ERROR(sink.Reset());
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Internal("curl_easy_init failed");
  CURL* h = curl.get();
  Transfer t;
  t.curl = h;
  t.sink = &sink;
  t.max_bytes = options.max_bytes;
  std::vector<std::string> header_lines;
  if (req.headers) {
    ASSIGN_OR_RETURN(header_lines, req.headers());
  }
  curl_slist* list = nullptr;
  for (const auto& line : header_lines) list = curl_slist_append(list, line.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(list, &curl_slist_free_all);
  curl_slist* resolve = nullptr;
  for (const auto& r : options.resolve) resolve = curl_slist_append(resolve, r.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> resolve_list(resolve, &curl_slist_free_all);

  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  // A signed S3 request cannot follow a redirect (the signature covers the host); S3's 301 says
  // the bucket lives in another region, which the error reports.
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req.s3 ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  if (!req.s3) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice-server");
  if (list != nullptr) curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  if (resolve != nullptr) curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
  if (!options.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());

  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    return ResourceExhausted("GET " + req.what + ": body over the limit of " +
                             std::to_string(options.max_bytes) + " bytes");
  }
  if (t.sink_failed) {
    const auto* file = dynamic_cast<FileSink*>(&sink);
    return Internal("GET " + req.what + ": " + (file != nullptr ? file->error() : "write failed"));
  }
  if (rc != CURLE_OK) {
    const std::string detail = error[0] != 0 ? error : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout("GET " + req.what + ": " + detail);
    if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
      return InvalidArgument("GET " + req.what + ": " + detail);
    }
    return Unavailable("GET " + req.what + ": " + detail);
  }
  if (code >= 200 && code < 300) return Status::Ok();
  return HttpError(code, req, t.error_body);
}

bool Retriable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout;
}

// Runs `attempt` up to options.max_attempts times while it fails with a retriable error,
// sleeping with exponential backoff and full jitter in between.
Status WithRetries(const FetchOptions& options, const std::function<Status()>& attempt,
                   int* attempts) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  const int max = std::max(1, options.max_attempts);
  auto backoff = options.initial_backoff;
  Status s;
  for (int i = 1; i <= max; ++i) {
    *attempts = i;
    s = attempt();
    if (s.ok() || !Retriable(s) || i == max) break;
    const auto cap = std::min(backoff, options.max_backoff);
    std::uniform_int_distribution<int64_t> jitter(cap.count() / 2,
                                                  std::max<int64_t>(cap.count(), 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
    backoff *= 2;
  }
  if (!s.ok() && *attempts > 1) {
    return s.Annotate("after " + std::to_string(*attempts) + " attempts");
  }
  return s;
}

bool DnsCompatibleBucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;  // dots too: *.s3.amazonaws.com certificates do not cover them
    }
  }
  return b.front() != '-' && b.back() != '-';
}

Result<Request> S3Request(const std::string& uri, const FetchOptions& options) {
  ASSIGN_OR_RETURN(S3Location loc, ParseS3Uri(uri));
  const GetEnvFn env = options.getenv ? options.getenv : ProcessEnv();
  const std::string region = options.s3.region.empty() ? AwsRegionFromEnv(env) : options.s3.region;
  ASSIGN_OR_RETURN(S3Target target, S3TargetFor(loc, options.s3, region));
  Request req;
  req.url = target.url;
  req.what = "s3://" + loc.bucket + "/" + loc.key;
  req.s3 = true;
  AwsCredentialOptions cred_options;
  cred_options.connect_timeout = options.connect_timeout;
  cred_options.ca_file = options.ca_file;
  cred_options.region = region;
  req.headers = [env, cred_options, target, region,
                 what = req.what]() -> Result<std::vector<std::string>> {
    Result<AwsCredentials> creds = ResolveAwsCredentials(env, cred_options);
    if (!creds.ok()) return creds.status().Annotate(what);
    SigV4Request sr;
    sr.method = "GET";
    sr.host = target.host;
    sr.path = target.path;
    sr.payload_sha256 = "UNSIGNED-PAYLOAD";
    sr.headers = {{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
    SigV4Result signed_req = SignV4(sr, *creds, {region, "s3"}, std::chrono::system_clock::now());
    std::vector<std::string> lines = {"Host: " + target.host,
                                      "x-amz-content-sha256: UNSIGNED-PAYLOAD"};
    for (const auto& [name, value] : signed_req.headers_to_add)
      lines.push_back(name + ": " + value);
    return lines;
  };
  return req;
}

Request HttpRequest(const std::string& uri, const FetchOptions& options) {
  Request req;
  req.url = uri;
  req.what = RedactUri(uri);
  if (!options.http_headers.empty()) {
    req.headers = [h = options.http_headers]() -> Result<std::vector<std::string>> { return h; };
  }
  return req;
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
  if (StartsWith(lower, "http://") || StartsWith(lower, "https://") || StartsWith(lower, "s3://")) {
    Request req;
    if (StartsWith(lower, "s3://")) {
      ASSIGN_OR_RETURN(req, S3Request(uri, options));
    } else {
      req = HttpRequest(uri, options);
    }
    StringSink sink;
    RETURN_IF_ERROR(Attempt(req, options, sink));
    return std::move(sink.body);
  }
  if (StartsWith(lower, "file://")) return ReadFile(uri, options);
  const size_t scheme = uri.find("://");
  if (scheme != std::string::npos) {
    return Unimplemented("model URI scheme \"" + uri.substr(0, scheme) + "\" is not supported");
  }
  return ReadFile(uri, options);
}

Result<FetchResult> FetchToFile(const std::string& uri, const std::string& dest_path,
                                const FetchOptions& options, const std::string& expected_sha256) {
  if (uri.empty()) return InvalidArgument("empty model URI");
  if (dest_path.empty()) return InvalidArgument("empty destination path for " + RedactUri(uri));
  // A malformed digest is refused before anything is fetched.
  RETURN_IF_ERROR(CheckDigestForm(expected_sha256));
  const std::string lower = Lower(uri.substr(0, std::min<size_t>(uri.size(), 10)));
  std::optional<Request> req;
  if (StartsWith(lower, "s3://")) {
    ASSIGN_OR_RETURN(req, S3Request(uri, options));
  } else if (StartsWith(lower, "http://") || StartsWith(lower, "https://")) {
    req = HttpRequest(uri, options);
  } else if (uri.find("://") != std::string::npos && !StartsWith(lower, "file://")) {
    return Unimplemented("model URI scheme \"" + uri.substr(0, uri.find("://")) +
                         "\" is not supported");
  }

  const std::string partial = dest_path + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("open " + partial + ": " + std::strerror(errno));
  FileSink sink(fd, partial);
  auto fail = [&](Status s) {
    (void)sink.Flush();  // the worker is done with the file before it is closed
    ::close(fd);
    ::unlink(partial.c_str());
    return s;
  };
  FetchResult result;
  Status s;
  if (req) {
    s = WithRetries(
        options, [&] { return Attempt(*req, options, sink); }, &result.attempts);
  } else {
    result.attempts = 1;
    s = CopyFile(uri, options, sink);
  }
  if (s.ok() && !sink.Flush()) s = Internal("GET " + RedactUri(uri) + ": " + sink.error());
  if (!s.ok()) return fail(s);
  result.bytes = sink.bytes();
  result.sha256 = sink.Finish();
  if (!expected_sha256.empty()) {
    const std::string want = Lower(std::string_view(expected_sha256).substr(7));
    if (want != result.sha256) {
      return fail(InvalidArgument(RedactUri(uri) + ": checksum mismatch: expected sha256:" + want +
                                  ", got sha256:" + result.sha256));
    }
  }
  // No fsync: the file has to survive a container restart, not a machine crash (a pod's
  // emptyDir goes with the node), and syncing 200 MB costs about a third of the download.
  if (::close(fd) != 0) {
    ::unlink(partial.c_str());
    return Unavailable("close " + partial + ": " + std::strerror(errno));
  }
  if (::rename(partial.c_str(), dest_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(partial.c_str());
    return Unavailable("rename " + partial + " to " + dest_path + ": " + std::strerror(err));
  }
  return result;
}

Result<S3Location> ParseS3Uri(const std::string& uri) {
  if (Lower(uri.substr(0, 5)) != "s3://")
    return InvalidArgument("\"" + uri + "\" is not an s3:// URI");
  const std::string rest = uri.substr(5);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size()) {
    return InvalidArgument("\"" + uri + "\" must be s3://<bucket>/<key>");
  }
  S3Location loc{rest.substr(0, slash), rest.substr(slash + 1)};
  if (loc.key.find_first_of("?#") != std::string::npos) {
    return InvalidArgument("\"" + uri + "\": an s3:// key takes no query or fragment");
  }
  return loc;
}

Result<S3Target> S3TargetFor(const S3Location& loc, const S3Options& options,
                             const std::string& region) {
  std::string scheme = "https";
  std::string host = "s3." + region + ".amazonaws.com";
  if (!options.endpoint.empty()) {
    const std::string& e = options.endpoint;
    const size_t sep = e.find("://");
    if (sep == std::string::npos) {
      return InvalidArgument("S3 endpoint \"" + e + "\" must be http(s)://host[:port]");
    }
    scheme = Lower(e.substr(0, sep));
    if (scheme != "http" && scheme != "https") {
      return InvalidArgument("S3 endpoint \"" + e + "\" must be http(s)://host[:port]");
    }
    host = e.substr(sep + 3);
    while (!host.empty() && host.back() == '/') host.pop_back();
    if (host.empty() || host.find('/') != std::string::npos) {
      return InvalidArgument("S3 endpoint \"" + e + "\" must be http(s)://host[:port] (no path)");
    }
  }
  bool virtual_host;
  if (options.addressing_style == "virtual") {
    virtual_host = true;
  } else if (options.addressing_style == "path") {
    virtual_host = false;
  } else if (options.addressing_style.empty() || options.addressing_style == "auto") {
    virtual_host = options.endpoint.empty() && DnsCompatibleBucket(loc.bucket);
  } else {
    return InvalidArgument("S3 addressing style \"" + options.addressing_style +
                           "\" is not auto, path or virtual");
  }
  S3Target t;
  t.virtual_host = virtual_host;
  const std::string key = AwsUriEncode(loc.key, true);
  if (virtual_host) {
    t.host = loc.bucket + "." + host;
    t.path = "/" + key;
  } else {
    t.host = host;
    t.path = "/" + AwsUriEncode(loc.bucket, false) + "/" + key;
  }
  t.url = scheme + "://" + t.host + t.path;
  return t;
}

std::string RedactUri(const std::string& uri) {
  std::string out = uri;
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos && Lower(out.substr(0, scheme)) != "file") {
    const size_t host_start = scheme + 3;
    const size_t host_end = out.find_first_of("/?#", host_start);
    const size_t at = out.rfind('@', host_end == std::string::npos ? out.size() : host_end);
    if (at != std::string::npos && at >= host_start)
      out.replace(host_start, at - host_start, "...");
    const size_t q = out.find('?', host_start);
    if (q != std::string::npos) out.replace(q, std::string::npos, "?...");
  }
  return out;
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
  RETURN_IF_ERROR(CheckDigestForm(expected));
  const std::string want = Lower(expected.substr(7));
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
