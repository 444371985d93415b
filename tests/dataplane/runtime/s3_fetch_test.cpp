// s3:// against a real S3-compatible server that checks SigV4 signatures (moto with IAM auth on,
// tests/support/s3_server.h): objects fetched path-style and virtual-host style (the bucket's
// host name pinned to loopback), a model loaded with the reference beside it, a wrong secret,
// an unknown key id, missing keys and buckets, a wrong digest, and web identity through moto's
// STS.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "dataplane/runtime/aws_credentials.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/model_source.h"
#include "tests/dataplane/runtime/test_util.h"
#include "tests/support/s3_server.h"

namespace sluice::dataplane {
namespace {

namespace fs = std::filesystem;
using testing::ReadAll;
using testing::TestData;
using testing::WriteAll;

GetEnvFn EnvOf(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

class S3FetchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = sluice::testing::S3Server::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
    Status bucket = server_->CreateBucket("models");
    ASSERT_TRUE(bucket.ok()) << bucket;
    model_ = ReadAll(TestData("tiny.ubj"));
    ASSERT_TRUE(server_->PutObject("models", "tiny/v1/tiny.ubj", model_).ok());
    ASSERT_TRUE(server_
                    ->PutObject("models", "tiny/v1/tiny.reference.json",
                                ReadAll(TestData("tiny.reference.json")))
                    .ok());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ClearAwsCredentialCache();
    dir_ = fs::temp_directory_path() /
           ("sluice-s3-fetch-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  FetchOptions Options(const std::string& secret = "") const {
    FetchOptions o;
    o.s3.endpoint = server_->endpoint();
    o.s3.addressing_style = "path";
    o.getenv = EnvOf({{"AWS_ACCESS_KEY_ID", server_->access_key()},
                      {"AWS_SECRET_ACCESS_KEY", secret.empty() ? server_->secret_key() : secret}});
    o.initial_backoff = std::chrono::milliseconds(5);
    return o;
  }
  std::string Dest() const { return (dir_ / "model.ubj").string(); }
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    return out;
  }

  static inline sluice::testing::S3Server* server_ = nullptr;
  static inline std::string model_;
  fs::path dir_;
};

TEST_F(S3FetchTest, PathStyleDownloadsTheObject) {
  auto r =
      FetchToFile("s3://models/tiny/v1/tiny.ubj", Dest(), Options(), "sha256:" + Sha256Hex(model_));
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << sluice::testing::TailFile(server_->log_path());
  EXPECT_EQ(r->bytes, model_.size());
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(ReadAll(Dest()), model_);
  EXPECT_EQ(Files(), std::vector<std::string>{"model.ubj"});
}

TEST_F(S3FetchTest, VirtualHostStyleDownloadsTheObject) {
  // The bucket's own host name, resolved to loopback the way curl --resolve does. moto takes the
  // bucket from the first label of a dotted host, so a path-style request here would ask for a
  // bucket named "s3" and fail.
  FetchOptions o = Options();
  const std::string port = std::to_string(server_->port());
  o.s3.endpoint = "http://s3.sluice.test:" + port;
  o.s3.addressing_style = "virtual";
  o.resolve = {"models.s3.sluice.test:" + port + ":127.0.0.1"};
  auto r = FetchToFile("s3://models/tiny/v1/tiny.ubj", Dest(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(Dest()), model_);
  EXPECT_EQ(r->sha256, Sha256Hex(model_));
}

TEST_F(S3FetchTest, LoadModelFetchesTheModelAndTheReferenceBesideIt) {
  LoadOptions load;
  load.fetch = Options();
  ModelSource src;
  src.uri = "s3://models/tiny/v1/tiny.ubj";
  auto rt = LoadModel(src, load);
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ((*rt)->metadata().name, "tiny");
}

TEST_F(S3FetchTest, WrongSecretIsForbiddenNamingSignatureDoesNotMatch) {
  const std::string wrong = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY";
  auto r = FetchToFile("s3://models/tiny/v1/tiny.ubj", Dest(), Options(wrong));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kForbidden) << r.status();
  EXPECT_EQ(r.status().http_status(), 403);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("SignatureDoesNotMatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("s3://models/tiny/v1/tiny.ubj"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HTTP 403"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("attempts"), std::string::npos) << "a 403 is not retried: " << msg;
  EXPECT_EQ(msg.find(wrong), std::string::npos);
  EXPECT_EQ(msg.find(server_->secret_key()), std::string::npos);
  EXPECT_TRUE(Files().empty());
}

TEST_F(S3FetchTest, UnknownAccessKeyIsForbiddenNamingInvalidAccessKeyId) {
  FetchOptions o = Options();
  o.getenv = EnvOf({{"AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000"},
                    {"AWS_SECRET_ACCESS_KEY", server_->secret_key()}});
  auto r = FetchToFile("s3://models/tiny/v1/tiny.ubj", Dest(), o);
  EXPECT_EQ(r.status().code(), StatusCode::kForbidden) << r.status();
  EXPECT_NE(r.status().message().find("InvalidAccessKeyId"), std::string::npos) << r.status();
}

TEST_F(S3FetchTest, MissingKeyAndBucketAreNotFound) {
  auto r = FetchToFile("s3://models/tiny/v1/absent.ubj", Dest(), Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status();
  EXPECT_NE(r.status().message().find("s3://models/tiny/v1/absent.ubj"), std::string::npos);
  EXPECT_NE(r.status().message().find("NoSuchKey"), std::string::npos) << r.status();
  EXPECT_EQ(r.status().http_status(), 404);

  auto b = FetchUri("s3://no-such-bucket-here/m.ubj", Options());
  EXPECT_EQ(b.status().code(), StatusCode::kNotFound) << b.status();
  EXPECT_NE(b.status().message().find("NoSuchBucket"), std::string::npos) << b.status();
  EXPECT_TRUE(Files().empty());
}

TEST_F(S3FetchTest, WrongDigestLeavesNoFile) {
  const std::string wrong = Sha256Hex("not the model");
  auto r = FetchToFile("s3://models/tiny/v1/tiny.ubj", Dest(), Options(), "sha256:" + wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(wrong), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(Sha256Hex(model_)), std::string::npos) << r.status();
  EXPECT_TRUE(Files().empty());
}

TEST_F(S3FetchTest, WebIdentityThroughSts) {
  const std::string token_file = (dir_ / "token").string();
  WriteAll(token_file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWwifQ.sig\n");
  FetchOptions o = Options();
  o.getenv = EnvOf({{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                    {"AWS_ROLE_ARN", server_->role_arn()},
                    {"AWS_ROLE_SESSION_NAME", "fraud-model"},
                    {"AWS_ENDPOINT_URL_STS", server_->endpoint()}});
  // One unsigned request: the AssumeRoleWithWebIdentity call (see S3Server). The S3 GET that
  // follows is checked, signed with the temporary key and its session token.
  ASSERT_TRUE(server_->AllowUnsignedRequests(1).ok());
  auto r = FetchToFile("s3://models/tiny/v1/tiny.ubj", Dest(), o);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << sluice::testing::TailFile(server_->log_path());
  EXPECT_EQ(ReadAll(Dest()), model_);

  auto creds = ResolveAwsCredentials(o.getenv, {});  // from the cache: no second STS call
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->access_key_id.rfind("ASIA", 0), 0u) << "temporary keys start with ASIA";
  EXPECT_FALSE(creds->session_token.empty());

  // Without the session token the temporary key is refused: the token is really being used.
  FetchOptions no_token = Options();
  no_token.getenv = EnvOf({{"AWS_ACCESS_KEY_ID", creds->access_key_id},
                           {"AWS_SECRET_ACCESS_KEY", creds->secret_access_key}});
  auto refused = FetchUri("s3://models/tiny/v1/tiny.ubj", no_token);
  EXPECT_EQ(refused.status().code(), StatusCode::kForbidden) << refused.status();
}

}  // namespace
}  // namespace sluice::dataplane
