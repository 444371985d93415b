#pragma once

// A real S3-compatible server for tests: moto's server mode (PyPI, from the venv that
// e2e/scripts/registry-venv.sh provides) on 127.0.0.1 and a free port, with IAM authentication
// on, so every S3 request must carry a valid SigV4 signature of a known key. Start() waits until
// it answers, creates an IAM user with an access key and an S3 policy (and a role for web
// identity) while authentication is still off, then turns it on. The destructor stops it.
//
// Helpers run tests/support/s3_admin.py (boto3, signed with the user's key), so they do not
// depend on the client under test.

#include <chrono>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "tests/support/process.h"

namespace sluice::testing {

class S3Server {
 public:
  // The venv's python (runs e2e/scripts/registry-venv.sh, installing it on first use).
  static Result<std::string> VenvPython();

  static Result<std::unique_ptr<S3Server>> Start();
  ~S3Server();

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  // A role whose trust policy allows sts:AssumeRoleWithWebIdentity, with the same S3 policy.
  const std::string& role_arn() const { return role_arn_; }
  const std::string& log_path() const { return log_path_; }

  Status CreateBucket(const std::string& bucket);
  Status PutObject(const std::string& bucket, const std::string& key, const std::string& bytes);
  Status PutFile(const std::string& bucket, const std::string& key, const std::string& path);

  // Lets the next `n` requests through without authentication. moto checks signatures even on
  // sts:AssumeRoleWithWebIdentity, which AWS accepts unsigned; a test of web identity opens
  // exactly one such call.
  Status AllowUnsignedRequests(int n);

 private:
  S3Server(std::string python, int port, std::string log_path)
      : python_(std::move(python)), port_(port), log_path_(std::move(log_path)) {}
  Status Launch();
  Result<std::string> Admin(const std::vector<std::string>& args, bool signed_request);

  std::string python_;
  int port_;
  std::string log_path_;
  std::string access_key_, secret_key_, role_arn_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace sluice::testing
