#pragma once

// Certificates for test clusters, made in-process with OpenSSL: a CA, a serving certificate for
// 127.0.0.1, client certificates whose subject Kubernetes reads as user (CN) and groups (O).

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::testing {

// PEM text of a private key (PKCS#8) and its certificate.
struct CertifiedKey {
  std::string key_pem;
  std::string cert_pem;
};

struct CertificateRequest {
  std::string common_name;                 // Kubernetes user name for client certificates
  std::vector<std::string> organizations;  // Kubernetes groups for client certificates
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // dotted IPv4 or IPv6 text
  bool server_auth = false;
  bool client_auth = false;
  std::chrono::hours valid_for = std::chrono::hours(24 * 365);
};

// A self-signed CA that issues leaf certificates (ECDSA P-256). Immutable after Create, so Issue
// may be called from several threads.
class CertificateAuthority {
 public:
  static Result<std::unique_ptr<CertificateAuthority>> Create(const std::string& common_name);
  ~CertificateAuthority();

  const std::string& cert_pem() const { return ca_.cert_pem; }
  const std::string& key_pem() const { return ca_.key_pem; }

  Result<CertifiedKey> Issue(const CertificateRequest& request) const;

 private:
  struct Impl;
  explicit CertificateAuthority(std::unique_ptr<Impl> impl, CertifiedKey ca);
  std::unique_ptr<Impl> impl_;
  CertifiedKey ca_;
};

// An RSA key pair as PEM (private PKCS#8, public SubjectPublicKeyInfo): the service-account
// token signing key of kube-apiserver.
struct RsaKeyPair {
  std::string private_pem;
  std::string public_pem;
};
Result<RsaKeyPair> GenerateRsaKeyPair(int bits = 2048);

// Writes `contents` to `path` with the given mode (0600 for keys), replacing the file.
Status WriteFile(const std::string& path, const std::string& contents, unsigned mode = 0644);

}  // namespace sluice::testing
