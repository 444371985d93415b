#include "lib/http/tls.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdio>

namespace sluice {

namespace ssl = boost::asio::ssl;

namespace {

// The OpenSSL error queue as one line (and emptied), for messages that name what failed.
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

std::string FileIdentity(const std::string& path) {
  if (path.empty()) return "-";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":missing";
  return fmt::format("{}:{}:{}:{}:{}.{}", path, st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec);
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const TlsServerFiles& files) {
  if (files.cert_file.empty() || files.key_file.empty()) {
    return InvalidArgument("tls: a certificate file and a key file are both required");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // No TLS 1.3 session tickets: they arrive after the handshake, as unasked bytes that an idle
  // keep-alive client (the router's pool) would read as the peer talking out of turn.
  SSL_CTX_set_num_tickets(native, 0);
  if (SSL_CTX_use_certificate_chain_file(native, files.cert_file.c_str()) != 1) {
    return InvalidArgument("tls: cannot load the certificate chain " + files.cert_file + ": " +
                           OpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(native, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgument("tls: cannot load the private key " + files.key_file + ": " +
                           OpenSslErrors());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return InvalidArgument("tls: the private key " + files.key_file +
                           " does not match the certificate " + files.cert_file + ": " +
                           OpenSslErrors());
  }
  if (!files.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, files.client_ca_file.c_str(), nullptr) != 1) {
      return InvalidArgument("tls: cannot load the client CA " + files.client_ca_file + ": " +
                             OpenSslErrors());
    }
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

Result<std::shared_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  const int loaded = ca_file.empty()
                         ? SSL_CTX_set_default_verify_paths(native)
                         : SSL_CTX_load_verify_locations(native, ca_file.c_str(), nullptr);
  if (loaded != 1) {
    return InvalidArgument("tls: cannot load the CA " +
                           (ca_file.empty() ? std::string("system store") : ca_file) + ": " +
                           OpenSslErrors());
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

Result<std::string> CertificateFingerprint(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return Internal("tls: out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return InvalidArgument("tls: not a PEM certificate: " + OpenSslErrors());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &n) != 1) {
    return Internal("tls: digest failed: " + OpenSslErrors());
  }
  std::string hex;
  for (unsigned i = 0; i < n; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

// --- ReloadingTlsContext ---

ReloadingTlsContext::ReloadingTlsContext(ReloadingTlsOptions options)
    : options_(std::move(options)) {}

Result<std::unique_ptr<ReloadingTlsContext>> ReloadingTlsContext::Create(
    ReloadingTlsOptions options) {
  std::unique_ptr<ReloadingTlsContext> r(new ReloadingTlsContext(std::move(options)));
  r->fingerprint_ = r->Fingerprint();
  ASSIGN_OR_RETURN(r->current_, MakeServerTlsContext(r->options_.files));
  return r;
}

ReloadingTlsContext::~ReloadingTlsContext() {
  Stop();
}

std::shared_ptr<ssl::context> ReloadingTlsContext::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::string ReloadingTlsContext::Fingerprint() const {
  return FileIdentity(options_.files.cert_file) + "|" + FileIdentity(options_.files.key_file) +
         "|" + FileIdentity(options_.files.client_ca_file);
}

Status ReloadingTlsContext::CheckNow() {
  std::lock_guard<std::mutex> check(check_mu_);
  std::string now = Fingerprint();
  if (now == fingerprint_) return Status::Ok();
  fingerprint_ = std::move(now);
  auto next = MakeServerTlsContext(options_.files);
  Status result = next.status();
  if (next.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = std::move(next).value();
    }
    reloads_.fetch_add(1);
  } else {
    failures_.fetch_add(1);
  }
  if (options_.on_reload) options_.on_reload(result);
  return result;
}

void ReloadingTlsContext::Start() {
  if (options_.poll_period.count() <= 0) return;
  std::lock_guard<std::mutex> lock(run_mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(run_mu_);
    while (!run_cv_.wait_for(lock, options_.poll_period, [this] { return stopping_; })) {
      lock.unlock();
      (void)CheckNow();  // reported through on_reload
      lock.lock();
    }
  });
}

void ReloadingTlsContext::Stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stopping_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::shared_ptr<ReloadingTlsContext>> StartServingTls(const TlsServerFiles& files,
                                                             std::chrono::milliseconds poll_period,
                                                             prometheus::Registry& registry,
                                                             const std::string& metric_name,
                                                             const std::string& identity) {
  auto& family = prometheus::BuildCounter()
                     .Name(metric_name)
                     .Help(
                         "Reloads of the serving certificate after its files changed, by result "
                         "(error: the new files did not load, the previous certificate stays).")
                     .Register(registry);
  prometheus::Counter* reloaded = &family.Add({{"result", "reloaded"}});
  prometheus::Counter* failed = &family.Add({{"result", "error"}});
  ReloadingTlsOptions options;
  options.files = files;
  options.poll_period = poll_period;
  options.on_reload = [reloaded, failed, identity, cert = files.cert_file](const Status& s) {
    if (s.ok()) {
      reloaded->Increment();
      std::string fp = "?";
      if (FILE* f = std::fopen(cert.c_str(), "r")) {
        std::string pem;
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) pem.append(buf, n);
        std::fclose(f);
        if (auto got = CertificateFingerprint(pem); got.ok()) fp = *got;
      }
      spdlog::info("{} serving a new TLS certificate from {} (sha256 {})", identity, cert, fp);
    } else {
      failed->Increment();
      spdlog::error(
          "{} the changed TLS certificate does not load; still serving the previous "
          "one: {}",
          identity, s.ToString());
    }
  };
  ASSIGN_OR_RETURN(std::unique_ptr<ReloadingTlsContext> tls,
                   ReloadingTlsContext::Create(std::move(options)));
  tls->Start();
  return std::shared_ptr<ReloadingTlsContext>(std::move(tls));
}

}  // namespace sluice
