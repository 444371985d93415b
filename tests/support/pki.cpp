#include "tests/support/pki.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace sluice::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

Status OpenSslError(std::string_view what) {
  std::string msg(what);
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  ERR_clear_error();
  return Internal(std::move(msg));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  return BioText(bio.get());
}

Result<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PUBKEY(bio.get(), key)) return OpenSslError("PEM_write_bio_PUBKEY");
  return BioText(bio.get());
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("PEM_write_bio_X509");
  return BioText(bio.get());
}

Result<PkeyPtr> NewEcKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("EVP_EC_gen");
  return key;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return OpenSslError("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return OpenSslError("X509_add_ext");
  return Status::Ok();
}

// A certificate for `key` named by `request`, signed by issuer_key (self-signed when issuer is
// null). Starts an hour in the past so a test box whose clock lags still accepts it.
Result<X509Ptr> BuildCertificate(EVP_PKEY* key, const CertificateRequest& request, bool is_ca,
                                 X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);

  BnPtr serial(BN_new());
  if (!serial || !BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return OpenSslError("serial number");
  }
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  static_cast<long>(std::chrono::seconds(request.valid_for).count()));
  if (!X509_set_pubkey(cert.get(), key)) return OpenSslError("X509_set_pubkey");

  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& org : request.organizations) {
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1,
                                    0)) {
      return OpenSslError("subject O=" + org);
    }
  }
  if (!X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(request.common_name.c_str()), -1, -1, 0)) {
    return OpenSslError("subject CN=" + request.common_name);
  }
  X509* signer = issuer ? issuer : cert.get();
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(signer))) {
    return OpenSslError("X509_set_issuer_name");
  }

  RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_basic_constraints,
                               is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_key_usage,
                               is_ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                                     : "critical,digitalSignature,keyEncipherment"));
  RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  if (issuer) {
    RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  std::string eku;
  if (request.server_auth) eku = "serverAuth";
  if (request.client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
  if (!eku.empty()) RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_ext_key_usage, eku));
  std::string san;
  for (const auto& dns : request.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : request.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_alt_name, san));

  if (!X509_sign(cert.get(), issuer_key, EVP_sha256())) return OpenSslError("X509_sign");
  return cert;
}

}  // namespace

struct CertificateAuthority::Impl {
  PkeyPtr key;
  X509Ptr cert;
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Impl> impl, CertifiedKey ca)
    : impl_(std::move(impl)), ca_(std::move(ca)) {}

CertificateAuthority::~CertificateAuthority() = default;

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::Create(
    const std::string& common_name) {
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->key, NewEcKey());
  CertificateRequest request;
  request.common_name = common_name;
  request.valid_for = std::chrono::hours(24 * 3650);
  ASSIGN_OR_RETURN(impl->cert,
                   BuildCertificate(impl->key.get(), request, true, nullptr, impl->key.get()));
  CertifiedKey pem;
  ASSIGN_OR_RETURN(pem.key_pem, PrivateKeyPem(impl->key.get()));
  ASSIGN_OR_RETURN(pem.cert_pem, CertPem(impl->cert.get()));
  return std::unique_ptr<CertificateAuthority>(
      new CertificateAuthority(std::move(impl), std::move(pem)));
}

Result<CertifiedKey> CertificateAuthority::Issue(const CertificateRequest& request) const {
  if (request.common_name.empty()) return InvalidArgument("certificate without a common name");
  ASSIGN_OR_RETURN(PkeyPtr key, NewEcKey());
  ASSIGN_OR_RETURN(X509Ptr cert, BuildCertificate(key.get(), request, false, impl_->cert.get(),
                                                  impl_->key.get()));
  CertifiedKey out;
  ASSIGN_OR_RETURN(out.key_pem, PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertPem(cert.get()));
  return out;
}

Result<RsaKeyPair> GenerateRsaKeyPair(int bits) {
  PkeyPtr key(EVP_RSA_gen(static_cast<unsigned>(bits)));
  if (!key) return OpenSslError("EVP_RSA_gen");
  RsaKeyPair out;
  ASSIGN_OR_RETURN(out.private_pem, PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(out.public_pem, PublicKeyPem(key.get()));
  return out;
}

Status WriteFile(const std::string& path, const std::string& contents, unsigned mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Internal("open " + path + ": " + std::generic_category().message(errno));
  ::fchmod(fd, mode);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Internal("write " + path + ": " + std::generic_category().message(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0)
    return Internal("close " + path + ": " + std::generic_category().message(errno));
  return Status::Ok();
}

}  // namespace sluice::testing
