// FetchToFile: streaming to a file with its SHA-256, the partial file never left behind, retries
// on 5xx / unreachable with none on 4xx; S3 request building (path and virtual-host style) and
// credentials from the environment. The real S3 exchange is in s3_fetch_test.cpp.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "dataplane/runtime/aws_credentials.h"
#include "dataplane/runtime/model_source.h"
#include "dataplane/runtime/model_store.h"
#include "tests/dataplane/runtime/loopback_http_server.h"
#include "tests/dataplane/runtime/test_util.h"

namespace sluice::dataplane {
namespace {

namespace fs = std::filesystem;
using testing::LoopbackHttpServer;
using Route = LoopbackHttpServer::Route;
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

class FetchToFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice-fetch-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    body_ = ReadAll(TestData("tiny.ubj"));
    server_.Set("/m.ubj", Route::Body(body_));
    quick_.initial_backoff = std::chrono::milliseconds(5);
    quick_.max_backoff = std::chrono::milliseconds(20);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Dest(const std::string& name = "m.ubj") const { return (dir_ / name).string(); }
  // Nothing but `names` in the directory (no .partial left over).
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
  LoopbackHttpServer server_;
  std::string body_;
  FetchOptions quick_;
};

TEST_F(FetchToFileTest, HttpStreamsToTheFileWithItsDigest) {
  auto r = FetchToFile(server_.Url("/m.ubj"), Dest(), quick_, "sha256:" + Sha256Hex(body_));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes, body_.size());
  EXPECT_EQ(r->sha256, Sha256Hex(body_));
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(ReadAll(Dest()), body_);
  EXPECT_EQ(Files(), std::vector<std::string>{"m.ubj"});
  // FetchUri reads what FetchToFile wrote.
  auto again = FetchUri("file://" + Dest(), {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, body_);
}

TEST_F(FetchToFileTest, FilesAndPlainPathsToo) {
  auto r = FetchToFile(TestData("tiny.ubj"), Dest(), quick_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sha256, Sha256Hex(body_));
  auto r2 = FetchToFile("file://" + TestData("tiny.ubj"), Dest("b.ubj"), quick_);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(ReadAll(Dest("b.ubj")), body_);
  EXPECT_EQ(FetchToFile(TestData("absent.ubj"), Dest("c"), quick_).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Files(), (std::vector<std::string>{"b.ubj", "m.ubj"}));
}

TEST_F(FetchToFileTest, WrongDigestRemovesThePartialFileAndKeepsTheOldOne) {
  WriteAll(Dest(), "previous");
  const std::string wrong = Sha256Hex("something else");
  auto r = FetchToFile(server_.Url("/m.ubj"), Dest(), quick_, "sha256:" + wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(wrong), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(Sha256Hex(body_)), std::string::npos) << r.status();
  EXPECT_EQ(Files(), std::vector<std::string>{"m.ubj"});
  EXPECT_EQ(ReadAll(Dest()), "previous");
  EXPECT_EQ(server_.requests("/m.ubj"), 1);  // a mismatch is not retried
  // A malformed digest is refused before fetching.
  EXPECT_EQ(FetchToFile(server_.Url("/m.ubj"), Dest(), quick_, "md5:1").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.requests("/m.ubj"), 1);
}

TEST_F(FetchToFileTest, ServerErrorsAreRetriedThenSucceed) {
  server_.SetSequence("/flaky.ubj",
                      {Route::Code(503, "busy"), Route::Code(500, "oops"), Route::Body(body_)});
  auto r = FetchToFile(server_.Url("/flaky.ubj"), Dest(), quick_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(server_.requests("/flaky.ubj"), 3);
  EXPECT_EQ(ReadAll(Dest()), body_);  // the failed attempts' bodies are not in the file
}

TEST_F(FetchToFileTest, PersistentServerErrorIsUnavailableAfterMaxAttempts) {
  server_.Set("/down.ubj", Route::Code(502, "bad gateway"));
  auto r = FetchToFile(server_.Url("/down.ubj"), Dest(), quick_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().http_status(), 502);
  EXPECT_NE(r.status().message().find("HTTP 502"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("after 4 attempts"), std::string::npos) << r.status();
  EXPECT_EQ(server_.requests("/down.ubj"), 4);
  EXPECT_TRUE(Files().empty());
}

TEST_F(FetchToFileTest, ClientErrorsAreNotRetried) {
  server_.Set("/forbidden.ubj", Route::Code(403, "no"));
  auto r = FetchToFile(server_.Url("/forbidden.ubj"), Dest(), quick_);
  EXPECT_EQ(r.status().code(), StatusCode::kForbidden);
  EXPECT_EQ(server_.requests("/forbidden.ubj"), 1);
  auto missing = FetchToFile(server_.Url("/missing.ubj"), Dest(), quick_);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/missing.ubj"), std::string::npos);
  EXPECT_EQ(server_.requests("/missing.ubj"), 1);
  EXPECT_TRUE(Files().empty());
}

TEST_F(FetchToFileTest, UnreachableIsRetriedThenUnavailable) {
  LoopbackHttpServer gone;
  const std::string url = gone.Url("/m.ubj");
  gone.Stop();
  auto r = FetchToFile(url, Dest(), quick_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("after 4 attempts"), std::string::npos) << r.status();
  EXPECT_TRUE(Files().empty());
}

TEST_F(FetchToFileTest, ExtraHeadersAreSentAndNeverInErrors) {
  FetchOptions o = quick_;
  o.http_headers = {"Authorization: Bearer mlflow-token-123", "X-Tenant: fraud"};
  auto r = FetchToFile(server_.Url("/m.ubj"), Dest(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string head = server_.last_head("/m.ubj");
  EXPECT_NE(head.find("Authorization: Bearer mlflow-token-123\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Tenant: fraud\r\n"), std::string::npos) << head;
  auto body = FetchUri(server_.Url("/m.ubj"), o);  // FetchUri sends them too
  ASSERT_TRUE(body.ok());
  EXPECT_NE(server_.last_head("/m.ubj").find("Bearer mlflow-token-123"), std::string::npos);

  server_.Set("/denied.ubj?sig=presigned-secret", Route::Code(401, "no"));
  auto denied = FetchToFile(server_.Url("/denied.ubj?sig=presigned-secret"), Dest(), o);
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthorized);
  EXPECT_EQ(denied.status().message().find("mlflow-token-123"), std::string::npos);
  EXPECT_EQ(denied.status().message().find("presigned-secret"), std::string::npos)
      << denied.status();
}

TEST_F(FetchToFileTest, TheSizeLimitHolds) {
  FetchOptions small = quick_;
  small.max_bytes = 10;
  EXPECT_EQ(FetchToFile(server_.Url("/m.ubj"), Dest(), small).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(FetchToFile(TestData("tiny.ubj"), Dest(), small).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(Files().empty());
}

TEST_F(FetchToFileTest, ModelDirFetchesOnceAndReusesTheCompleteFile) {
  const std::string reference = ReadAll(TestData("tiny.reference.json"));
  server_.Set("/v1/tiny.ubj", Route::Body(body_));
  server_.Set("/v1/tiny.reference.json", Route::Body(reference));
  ModelSource src;
  src.uri = server_.Url("/v1/tiny.ubj");
  src.sha256 = "sha256:" + Sha256Hex(body_);
  const std::string dir = (dir_ / "models").string();

  auto first = FetchModelToDir(src, dir, quick_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->reused);
  EXPECT_EQ(first->bytes, body_.size());
  EXPECT_EQ(first->fetched_bytes, body_.size() + reference.size());
  EXPECT_GT(first->fetch_seconds, 0.0);
  EXPECT_EQ(first->path, dir + "/" + LocalModelName(src.uri, src.sha256));
  EXPECT_EQ(ReadAll(first->path), body_);
  EXPECT_EQ(ReadAll(first->reference_path), reference);

  auto again = FetchModelToDir(src, dir, quick_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->reused);
  EXPECT_EQ(again->fetch_seconds, 0.0);
  EXPECT_EQ(again->reference_path, first->reference_path);
  EXPECT_EQ(server_.requests("/v1/tiny.ubj"), 1);
  EXPECT_EQ(server_.requests("/v1/tiny.reference.json"), 1);

  // A pinned digest is re-checked: a damaged file is fetched again.
  WriteAll(first->path, "damaged");
  auto repaired = FetchModelToDir(src, dir, quick_);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_FALSE(repaired->reused);
  EXPECT_EQ(ReadAll(first->path), body_);
  EXPECT_EQ(server_.requests("/v1/tiny.ubj"), 2);

  // Another URI or another digest never reuses it.
  EXPECT_NE(LocalModelName(src.uri, ""), LocalModelName(src.uri, src.sha256));
  EXPECT_NE(LocalModelName(server_.Url("/v2/tiny.ubj"), ""), LocalModelName(src.uri, ""));
}

TEST_F(FetchToFileTest, ModelDirRemembersThatThereIsNoReference) {
  server_.Set("/solo/tiny.ubj", Route::Body(body_));
  ModelSource src;
  src.uri = server_.Url("/solo/tiny.ubj");
  const std::string dir = (dir_ / "models").string();
  auto first = FetchModelToDir(src, dir, quick_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->reference_path.empty());
  EXPECT_EQ(server_.requests("/solo/tiny.reference.json"), 1);
  auto again = FetchModelToDir(src, dir, quick_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->reused);
  EXPECT_EQ(server_.requests("/solo/tiny.reference.json"), 1);  // not asked again

  // A reference that exists but fails (5xx) fails the fetch instead of being skipped.
  server_.Set("/broken/tiny.ubj", Route::Body(body_));
  server_.Set("/broken/tiny.reference.json", Route::Code(500));
  src.uri = server_.Url("/broken/tiny.ubj");
  EXPECT_EQ(FetchModelToDir(src, dir, quick_).status().code(), StatusCode::kUnavailable);
}

TEST(S3Uri, ParseAndTargets) {
  auto loc = ParseS3Uri("s3://models/fraud/v1/model b.json");
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->bucket, "models");
  EXPECT_EQ(loc->key, "fraud/v1/model b.json");
  for (const char* bad : {"s3://", "s3://bucket", "s3://bucket/", "s3:///key", "http://b/k"}) {
    EXPECT_EQ(ParseS3Uri(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }

  S3Options aws;  // auto on AWS: virtual-host style for a DNS-compatible name
  auto t = S3TargetFor(*loc, aws, "eu-west-1");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->virtual_host);
  EXPECT_EQ(t->url, "https://models.s3.eu-west-1.amazonaws.com/fraud/v1/model%20b.json");
  EXPECT_EQ(t->host, "models.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(t->path, "/fraud/v1/model%20b.json");

  // Dots or upper case: path style even on AWS.
  t = S3TargetFor({"my.models", "k"}, aws, "us-east-1");
  EXPECT_FALSE(t->virtual_host);
  EXPECT_EQ(t->url, "https://s3.us-east-1.amazonaws.com/my.models/k");
  EXPECT_FALSE(S3TargetFor({"Models", "k"}, aws, "us-east-1")->virtual_host);

  S3Options minio;  // auto on a custom endpoint: path style
  minio.endpoint = "http://127.0.0.1:9000/";
  t = S3TargetFor(*loc, minio, "us-east-1");
  EXPECT_FALSE(t->virtual_host);
  EXPECT_EQ(t->url, "http://127.0.0.1:9000/models/fraud/v1/model%20b.json");
  EXPECT_EQ(t->host, "127.0.0.1:9000");

  minio.addressing_style = "virtual";
  minio.endpoint = "https://s3.example.internal:8443";
  t = S3TargetFor(*loc, minio, "us-east-1");
  EXPECT_TRUE(t->virtual_host);
  EXPECT_EQ(t->url, "https://models.s3.example.internal:8443/fraud/v1/model%20b.json");
  EXPECT_EQ(t->host, "models.s3.example.internal:8443");

  aws.addressing_style = "path";
  EXPECT_EQ(S3TargetFor(*loc, aws, "us-east-1")->url,
            "https://s3.us-east-1.amazonaws.com/models/fraud/v1/model%20b.json");
  aws.addressing_style = "sideways";
  EXPECT_EQ(S3TargetFor(*loc, aws, "us-east-1").status().code(), StatusCode::kInvalidArgument);
  minio.addressing_style = "auto";
  minio.endpoint = "ftp://x";
  EXPECT_EQ(S3TargetFor(*loc, minio, "us-east-1").status().code(), StatusCode::kInvalidArgument);
}

TEST(AwsCredentials, FromTheEnvironment) {
  ClearAwsCredentialCache();
  auto c = ResolveAwsCredentials(EnvOf({{"AWS_ACCESS_KEY_ID", "AKID"},
                                        {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                                        {"AWS_SESSION_TOKEN", "TOKEN"}}),
                                 {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKID");
  EXPECT_EQ(c->secret_access_key, "SECRET");
  EXPECT_EQ(c->session_token, "TOKEN");

  auto none = ResolveAwsCredentials(EnvOf({}), {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(none.status().message().find("no AWS credentials found"), std::string::npos);

  auto half = ResolveAwsCredentials(EnvOf({{"AWS_SECRET_ACCESS_KEY", "SECRET"}}), {});
  EXPECT_EQ(half.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(half.status().message().find("AWS_ACCESS_KEY_ID is not set"), std::string::npos);
  EXPECT_EQ(half.status().message().find("SECRET"), std::string::npos);

  auto role_only = ResolveAwsCredentials(EnvOf({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}}), {});
  EXPECT_NE(role_only.status().message().find("AWS_WEB_IDENTITY_TOKEN_FILE is not set"),
            std::string::npos);

  EXPECT_EQ(AwsRegionFromEnv(EnvOf({})), "us-east-1");
  EXPECT_EQ(AwsRegionFromEnv(EnvOf({{"AWS_DEFAULT_REGION", "eu-west-1"}})), "eu-west-1");
  EXPECT_EQ(
      AwsRegionFromEnv(EnvOf({{"AWS_DEFAULT_REGION", "eu-west-1"}, {"AWS_REGION", "ap-south-1"}})),
      "ap-south-1");
}

TEST(AwsCredentials, S3FetchWithoutCredentialsSaysSoAndSendsNothing) {
  LoopbackHttpServer server;
  FetchOptions o;
  o.s3.endpoint = server.Url("");
  o.getenv = EnvOf({});
  o.max_attempts = 1;
  auto r = FetchUri("s3://bucket/key.json", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(r.status().message().find("no AWS credentials found"), std::string::npos);
  EXPECT_NE(r.status().message().find("s3://bucket/key.json"), std::string::npos);
  EXPECT_EQ(server.requests("/bucket/key.json"), 0);
}

TEST(AwsCredentials, WebIdentityStsErrorsNameTheRoleNotTheToken) {
  ClearAwsCredentialCache();
  LoopbackHttpServer sts;
  sts.Set("/", Route::Code(400,
                           "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad "
                           "token</Message></Error></ErrorResponse>"));
  const std::string token_file =
      (fs::temp_directory_path() / ("sluice-wi-" + std::to_string(::getpid()))).string();
  WriteAll(token_file, "eyJSECRETJWT\n");
  auto r = ResolveAwsCredentials(EnvOf({{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                        {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/m"},
                                        {"AWS_ENDPOINT_URL_STS", sts.Url("")}}),
                                 {});
  fs::remove(token_file);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kForbidden);
  EXPECT_NE(r.status().message().find("InvalidIdentityToken"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("arn:aws:iam::123456789012:role/m"), std::string::npos);
  EXPECT_EQ(r.status().message().find("eyJSECRETJWT"), std::string::npos);
  EXPECT_EQ(sts.requests("/"), 1);
}

TEST(Redaction, QueryStringsAndUserInfoNeverAppear) {
  EXPECT_EQ(RedactUri("https://b.s3.amazonaws.com/k.json?X-Amz-Signature=abc"),
            "https://b.s3.amazonaws.com/k.json?...");
  EXPECT_EQ(RedactUri("https://user:pw@host/m.json"), "https://...@host/m.json");
  EXPECT_EQ(RedactUri("file:///a?b"), "file:///a?b");
  EXPECT_EQ(RedactUri("s3://b/k"), "s3://b/k");
}

}  // namespace
}  // namespace sluice::dataplane
