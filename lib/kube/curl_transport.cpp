#include "lib/kube/curl_transport.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace sluice::kube {

namespace curl_internal {

struct Handle {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;  // owns the connection cache of this handle
  ~Handle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
};

// Per-exchange state shared with the libcurl callbacks.
struct Call {
  using Steady = std::chrono::steady_clock;

  const CancelFlag* cancel = nullptr;
  std::chrono::milliseconds idle_timeout{0};
  Steady::time_point last_activity = Steady::now();
  bool cancelled = false;
  bool idle_expired = false;
  bool stopped = false;  // a stream callback asked to stop

  int status = 0;
  bool headers_done = false;
  std::vector<Header> headers;

  // Send(): the body is collected here.
  std::string* body = nullptr;
  size_t max_body = 0;
  bool too_large = false;

  // Stream(): chunks are handed out.
  const std::function<bool(int, const std::vector<Header>&)>* on_headers = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;

  bool ShouldAbort() {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) cancelled = true;
    if (idle_timeout.count() > 0 && Steady::now() - last_activity > idle_timeout) {
      idle_expired = true;
    }
    return cancelled || idle_expired;
  }
};

}  // namespace curl_internal

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string TrimWs(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* call = static_cast<curl_internal::Call*>(user);
  const size_t len = size * n;
  std::string_view line(data, len);
  call->last_activity = std::chrono::steady_clock::now();
  if (line.substr(0, 5) == "HTTP/") {
    // A new header block (after 1xx or a redirect): start over.
    size_t sp = line.find(' ');
    call->status =
        sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
    call->headers.clear();
    call->headers_done = false;
    return len;
  }
  if (line == "\r\n" || line == "\n") {
    if (call->status >= 200) {
      call->headers_done = true;
      if (call->on_headers != nullptr && !(*call->on_headers)(call->status, call->headers)) {
        call->stopped = true;
        return 0;
      }
    }
    return len;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    call->headers.emplace_back(Lower(std::string(line.substr(0, colon))),
                               TrimWs(line.substr(colon + 1)));
  }
  return len;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* call = static_cast<curl_internal::Call*>(user);
  const size_t len = size * n;
  call->last_activity = std::chrono::steady_clock::now();
  if (call->on_data != nullptr) {
    if (!(*call->on_data)(std::string_view(data, len))) {
      call->stopped = true;
      return 0;
    }
    return len;
  }
  if (call->body->size() + len > call->max_body) {
    call->too_large = true;
    return 0;
  }
  call->body->append(data, len);
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* call = static_cast<curl_internal::Call*>(user);
  return call->ShouldAbort() ? 1 : 0;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

bool IsTlsVerificationError(CURLcode rc) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<std::unique_ptr<CurlTransport>> CurlTransport::Create(const Config& config,
                                                             CurlTransportOptions options) {
  if (config.server.empty()) return InvalidArgument("curl transport: config has no server");
  std::unique_ptr<CurlTransport> t(new CurlTransport(config, options));
  RETURN_IF_ERROR(t->Init());
  return t;
}

CurlTransport::CurlTransport(const Config& config, CurlTransportOptions options)
    : config_(config), options_(options) {}

CurlTransport::~CurlTransport() {
  pool_.clear();
  if (share_ != nullptr) curl_share_cleanup(static_cast<CURLSH*>(share_));
}

Status CurlTransport::Init() {
  GlobalInit();
  CURLU* url = curl_url();
  if (url == nullptr) return Internal("curl transport: out of memory");
  std::unique_ptr<CURLU, void (*)(CURLU*)> url_guard(url, curl_url_cleanup);
  if (curl_url_set(url, CURLUPART_URL, config_.server.c_str(), 0) != CURLUE_OK) {
    return InvalidArgument("curl transport: cannot parse server URL \"" + config_.server + "\"");
  }
  auto part = [&](CURLUPart p, unsigned flags = 0) -> std::string {
    char* v = nullptr;
    if (curl_url_get(url, p, &v, flags) != CURLUE_OK || v == nullptr) return "";
    std::string out(v);
    curl_free(v);
    return out;
  };
  const std::string scheme = part(CURLUPART_SCHEME);
  if (scheme != "https" && scheme != "http") {
    return InvalidArgument("curl transport: unsupported scheme in \"" + config_.server + "\"");
  }
  const std::string host = part(CURLUPART_HOST);  // IPv6 literals keep their brackets
  const std::string port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  std::string prefix = part(CURLUPART_PATH);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!config_.tls_server_name.empty() && scheme == "https") {
    // libcurl takes SNI and the name it verifies from the URL, so the URL names the TLS server
    // and CONNECT_TO sends the connection to the real address.
    url_base_ = scheme + "://" + config_.tls_server_name + ":" + port + prefix;
    std::string connect_host = host;
    if (connect_host.size() > 1 && connect_host.front() == '[') {
      connect_host = connect_host.substr(1, connect_host.size() - 2);
      connect_host = "[" + connect_host + "]";
    }
    connect_to_ = config_.tls_server_name + ":" + port + ":" + connect_host + ":" + port;
  } else {
    url_base_ = scheme + "://" + host + ":" + port + prefix;
  }

  CURLSH* share = curl_share_init();
  if (share == nullptr) return Internal("curl transport: out of memory");
  share_ = share;
  curl_share_setopt(share, CURLSHOPT_USERDATA, this);
  curl_share_setopt(
      share, CURLSHOPT_LOCKFUNC, +[](CURL*, curl_lock_data data, curl_lock_access, void* user) {
        static_cast<CurlTransport*>(user)->share_mu_[data % 8].lock();
      });
  curl_share_setopt(
      share, CURLSHOPT_UNLOCKFUNC, +[](CURL*, curl_lock_data data, void* user) {
        static_cast<CurlTransport*>(user)->share_mu_[data % 8].unlock();
      });
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

  if (!config_.proxy_url.empty()) {
    proxy_ = config_.proxy_url;
    // client-go's SOCKS5 dialer lets the proxy resolve the host name; so does socks5h.
    if (proxy_.rfind("socks5://", 0) == 0) proxy_ = "socks5h://" + proxy_.substr(9);
  }
  if (config_.exec) {
    ASSIGN_OR_RETURN(exec_, ExecCredentialProvider::Create(config_, options_.exec));
  }

  std::lock_guard<std::mutex> lock(token_mu_);
  token_ = config_.bearer_token;
  return Status::Ok();
}

std::string CurlTransport::CurrentToken(bool force, bool* changed) {
  std::lock_guard<std::mutex> lock(token_mu_);
  if (changed != nullptr) *changed = false;
  if (config_.token_file.empty()) return token_;
  struct stat st {};
  if (::stat(config_.token_file.c_str(), &st) != 0) return token_;
  std::string stamp = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                      std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  if (!force && stamp == token_stamp_) return token_;
  std::ifstream in(config_.token_file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = TrimWs(text.str());
  if (!in || token.empty()) {
    spdlog::warn("kube transport: cannot read token file {}; keeping the previous token",
                 config_.token_file);
    return token_;
  }
  token_stamp_ = std::move(stamp);
  if (token != token_) {
    token_ = std::move(token);
    if (changed != nullptr) *changed = true;
  }
  return token_;
}

Result<std::shared_ptr<const ExecCredential>> CurlTransport::ExecCredentialForRequest() {
  if (!exec_) return std::shared_ptr<const ExecCredential>();
  const bool static_token = !config_.bearer_token.empty() || !config_.token_file.empty();
  const bool static_cert = !config_.client_cert_pem.empty();
  if (static_token && static_cert) return std::shared_ptr<const ExecCredential>();
  return exec_->Get();
}

bool CurlTransport::RefreshAfterUnauthorized(const ExecCredential* used) {
  if (!exec_ || used == nullptr) return false;
  exec_->Invalidate(used);
  Result<std::shared_ptr<const ExecCredential>> next = exec_->Get();
  if (!next.ok()) return false;  // the next request reports the plugin's error
  const ExecCredential& n = **next;
  return n.token != used->token || n.client_cert_pem != used->client_cert_pem ||
         n.client_key_pem != used->client_key_pem;
}

std::unique_ptr<CurlTransport::Handle> CurlTransport::Acquire() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      auto h = std::move(pool_.back());
      pool_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->easy = curl_easy_init();
  h->multi = curl_multi_init();
  if (h->easy == nullptr || h->multi == nullptr) return nullptr;
  return h;
}

void CurlTransport::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_.size() < options_.max_idle_handles) pool_.push_back(std::move(handle));
}

Status CurlTransport::Perform(Handle& h, const Request& request, Call& call,
                              const ExecCredential* credential) {
  CURL* easy = h.easy;
  curl_easy_reset(easy);
  char errbuf[CURL_ERROR_SIZE] = {0};
  const std::string url = url_base_ + request.path;
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_SHARE, static_cast<CURLSH*>(share_));
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                   options_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  if (options_.compression) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  if (request.timeout.count() > 0) {
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  }
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE,
                   static_cast<long>(options_.tcp_keepalive_idle.count()));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, config_.user_agent.c_str());
  Slist connect_to(connect_to_.empty() ? nullptr : curl_slist_append(nullptr, connect_to_.c_str()));
  if (connect_to) curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to.get());
  if (!proxy_.empty()) {
    curl_easy_setopt(easy, CURLOPT_PROXY, proxy_.c_str());
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "");  // the kubeconfig's proxy, whatever no_proxy says
    // CONNECT even for http:// servers, so the proxy only ever relays bytes.
    curl_easy_setopt(easy, CURLOPT_HTTPPROXYTUNNEL, 1L);
  }

  // Client certificate: the kubeconfig's own, else the exec plugin's.
  const std::string& cert_pem = !config_.client_cert_pem.empty() || credential == nullptr
                                    ? config_.client_cert_pem
                                    : credential->client_cert_pem;
  const std::string& key_pem = !config_.client_cert_pem.empty() || credential == nullptr
                                   ? config_.client_key_pem
                                   : credential->client_key_pem;

  // TLS: the kubeconfig's CA only (not the system store) when one is given.
  curl_blob ca{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(), CURL_BLOB_NOCOPY};
  curl_blob cert{const_cast<char*>(cert_pem.data()), cert_pem.size(), CURL_BLOB_NOCOPY};
  curl_blob key{const_cast<char*>(key_pem.data()), key_pem.size(), CURL_BLOB_NOCOPY};
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.ca_pem.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!cert_pem.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
  }

  curl_slist* raw_headers = nullptr;
  for (const auto& [k, v] : request.headers) {
    raw_headers = curl_slist_append(raw_headers, (k + ": " + v).c_str());
  }
  // A static token (inline or token file) wins over the exec plugin's, as in client-go.
  std::string token = CurrentToken(false, nullptr);
  if (token.empty() && credential != nullptr) token = credential->token;
  if (!token.empty()) {
    raw_headers = curl_slist_append(raw_headers, ("Authorization: Bearer " + token).c_str());
  }
  raw_headers = curl_slist_append(raw_headers, "Expect:");
  const bool has_content_type =
      std::any_of(request.headers.begin(), request.headers.end(),
                  [](const Header& h) { return Lower(h.first) == "content-type"; });
  // Otherwise libcurl labels every body as a form.
  if (!has_content_type) raw_headers = curl_slist_append(raw_headers, "Content-Type:");
  Slist headers(raw_headers);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());

  const std::string& m = request.method;
  if (m == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (m == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m.c_str());
  }
  if (m != "GET" && m != "HEAD" &&
      (!request.body.empty() || m == "POST" || m == "PUT" || m == "PATCH")) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
  }

  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &call);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &call);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &call);

  call.last_activity = std::chrono::steady_clock::now();
  CURLMcode mc = curl_multi_add_handle(h.multi, easy);
  if (mc != CURLM_OK) return Internal(std::string("curl: ") + curl_multi_strerror(mc));
  CURLcode rc = CURLE_OK;
  bool finished = false;
  while (true) {
    int running = 0;
    mc = curl_multi_perform(h.multi, &running);
    if (mc != CURLM_OK) break;
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(h.multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
        rc = msg->data.result;
        finished = true;
      }
    }
    if (finished || running == 0) break;
    if (call.ShouldAbort()) break;
    mc = curl_multi_poll(h.multi, nullptr, 0, static_cast<int>(options_.poll_interval.count()),
                         nullptr);
    if (mc != CURLM_OK) break;
  }
  long connects = 0;
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
  connections_opened_ += static_cast<uint64_t>(connects);
  curl_multi_remove_handle(h.multi, easy);
  curl_easy_setopt(easy, CURLOPT_SHARE, nullptr);

  const std::string what = request.method + " " + request.path;
  if (call.cancelled) return Cancelled("cancelled: " + what);
  if (call.idle_expired) {
    return Timeout("no data for " + std::to_string(call.idle_timeout.count()) + "ms: " + what);
  }
  if (call.stopped) return Status::Ok();
  if (call.too_large) {
    return ResourceExhausted("response larger than " + std::to_string(call.max_body) +
                             " bytes: " + what);
  }
  if (mc != CURLM_OK) return Internal(std::string("curl: ") + curl_multi_strerror(mc));
  if (!finished) return Unavailable("transfer ended without a result: " + what);
  if (rc == CURLE_OK) return Status::Ok();
  // The API server may answer an error (a 401 to a POST, say) before it has read the request
  // body and then reset the stream; the status line already arrived, and it is the answer.
  if (call.status >= 400 && (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR ||
                             rc == CURLE_SEND_ERROR || rc == CURLE_HTTP2_STREAM)) {
    return Status::Ok();
  }
  std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout(what + ": " + detail);
  if (IsTlsVerificationError(rc)) return FailedPrecondition("TLS: " + what + ": " + detail);
  return Unavailable(what + ": " + detail);
}

Result<Response> CurlTransport::Send(const Request& request) {
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Handle> h = Acquire();
    if (!h) return Internal("curl transport: cannot allocate a handle");
    Result<std::shared_ptr<const ExecCredential>> credential = ExecCredentialForRequest();
    if (!credential.ok()) {
      Release(std::move(h));
      return credential.status();
    }
    Response response;
    Call call;
    call.body = &response.body;
    call.max_body = options_.max_response_bytes;
    Status s = Perform(*h, request, call, credential->get());
    Release(std::move(h));
    if (!s.ok()) return s;
    response.status = call.status;
    response.headers = std::move(call.headers);
    if (response.status == 401 && attempt == 0) {
      bool rotated = false;
      if (!config_.token_file.empty()) CurrentToken(true, &rotated);
      if (!rotated) rotated = RefreshAfterUnauthorized(credential->get());
      if (rotated) continue;
    }
    return response;
  }
}

Result<int> CurlTransport::Stream(
    const Request& request, const std::function<bool(int, const std::vector<Header>&)>& on_headers,
    const std::function<bool(std::string_view)>& on_data, const CancelFlag* cancel) {
  std::unique_ptr<Handle> h = Acquire();
  if (!h) return Internal("curl transport: cannot allocate a handle");
  Result<std::shared_ptr<const ExecCredential>> credential = ExecCredentialForRequest();
  if (!credential.ok()) {
    Release(std::move(h));
    return credential.status();
  }
  Call call;
  call.cancel = cancel;
  call.idle_timeout = request.idle_timeout;
  call.on_headers = &on_headers;
  call.on_data = &on_data;
  Status s = Perform(*h, request, call, credential->get());
  Release(std::move(h));
  if (!s.ok()) return s;
  // Streams are not resent (the caller restarts them); the next one gets the fresh credential.
  if (call.status == 401 && !config_.token_file.empty()) CurrentToken(true, nullptr);
  if (call.status == 401 && *credential) exec_->Invalidate(credential->get());
  return call.status;
}

}  // namespace sluice::kube
