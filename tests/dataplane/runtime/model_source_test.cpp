// Fetching models: file paths, http:// from a loopback server, checksums, size limits, errors,
// reference discovery, format selection.

#include "dataplane/runtime/model_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/dataplane/runtime/loopback_http_server.h"
#include "tests/dataplane/runtime/test_util.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {
namespace {

using testing::LoopbackHttpServer;
using Route = LoopbackHttpServer::Route;
using testing::ReadAll;
using testing::Source;
using testing::TestData;

class HttpFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ubj_ = ReadAll(TestData("tiny.ubj"));
    json_ = ReadAll(TestData("tiny.json"));
    reference_ = ReadAll(TestData("tiny.reference.json"));
    server_.Set("/models/tiny.ubj", Route::Body(ubj_));
    server_.Set("/models/tiny.reference.json", Route::Body(reference_));
    server_.Set("/models/tiny.json", Route::Body(json_));
    server_.Set("/raw/model", Route::Body(ubj_));
  }
  LoopbackHttpServer server_;
  std::string ubj_, json_, reference_;
};

TEST_F(HttpFetchTest, LoadsModelAndTheReferenceBesideIt) {
  auto rt = XGBoostRuntime::Load(Source(server_.Url("/models/tiny.ubj")), LoadOptions{});
  ASSERT_TRUE(rt.ok()) << rt.status();
  ASSERT_NE((*rt)->reference(), nullptr);
  EXPECT_EQ((*rt)->reference()->num_rows, 20u);
  EXPECT_EQ(server_.requests("/models/tiny.reference.json"), 1);
  EXPECT_EQ((*rt)->metadata().name, "tiny");
}

TEST_F(HttpFetchTest, ChecksumIsVerified) {
  ModelSource src = Source(server_.Url("/models/tiny.ubj"));
  src.sha256 = "sha256:" + Sha256Hex(ubj_);
  EXPECT_TRUE(XGBoostRuntime::Load(src, LoadOptions{}).ok());
  src.sha256 = "SHA256:" + Sha256Hex(ubj_);
  EXPECT_TRUE(XGBoostRuntime::Load(src, LoadOptions{}).ok());

  src.sha256 = "sha256:" + Sha256Hex(json_);
  auto rt = XGBoostRuntime::Load(src, LoadOptions{});
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rt.status().message().find("checksum mismatch"), std::string::npos) << rt.status();
  EXPECT_NE(rt.status().message().find(Sha256Hex(ubj_)), std::string::npos) << rt.status();

  for (const char* bad : {"md5:abc", "sha256:xyz", "sha256:", "0123"}) {
    src.sha256 = bad;
    EXPECT_EQ(XGBoostRuntime::Load(src, LoadOptions{}).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(HttpFetchTest, HttpErrorsMapToStatusCodes) {
  server_.Set("/boom.json", Route::Code(500, "oops"));
  server_.Set("/forbidden.json", Route::Code(403, "no"));
  EXPECT_EQ(FetchUri(server_.Url("/missing.json"), {}).status().code(), StatusCode::kNotFound);
  Status s = FetchUri(server_.Url("/boom.json"), {}).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.http_status(), 500);
  EXPECT_EQ(FetchUri(server_.Url("/forbidden.json"), {}).status().code(), StatusCode::kForbidden);

  // Nothing listens on a port once its server has stopped.
  LoopbackHttpServer gone;
  const std::string url = gone.Url("/m.json");
  gone.Stop();
  EXPECT_EQ(FetchUri(url, {}).status().code(), StatusCode::kUnavailable);
}

TEST_F(HttpFetchTest, SizeLimitHoldsWithAndWithoutContentLength) {
  const std::string big(300'000, 'x');
  server_.Set("/big", Route::Body(big));
  server_.Set("/big-stream", Route::Stream(big));
  FetchOptions small;
  small.max_bytes = 100'000;
  EXPECT_EQ(FetchUri(server_.Url("/big"), small).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(FetchUri(server_.Url("/big-stream"), small).status().code(),
            StatusCode::kResourceExhausted);
  auto whole = FetchUri(server_.Url("/big-stream"), {});
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, big);
}

TEST_F(HttpFetchTest, ServerThatNeverAnswersTimesOut) {
  server_.Set("/slow.json", Route::Hang());
  FetchOptions quick;
  quick.timeout = std::chrono::milliseconds(300);
  EXPECT_EQ(FetchUri(server_.Url("/slow.json"), quick).status().code(), StatusCode::kTimeout);
}

TEST_F(HttpFetchTest, MissingReferenceBesideTheModelIsFine) {
  auto rt = XGBoostRuntime::Load(Source(server_.Url("/raw/model")), LoadOptions{});
  ASSERT_TRUE(rt.ok()) << rt.status();  // no extension: the format comes from the content
  EXPECT_EQ((*rt)->reference(), nullptr);
  EXPECT_EQ(server_.requests("/raw/model.reference.json"), 1);

  // A reference that exists but cannot be fetched is an error, not silently skipped.
  server_.Set("/models/tiny.reference.json", Route::Code(503));
  EXPECT_EQ(
      XGBoostRuntime::Load(Source(server_.Url("/models/tiny.ubj")), LoadOptions{}).status().code(),
      StatusCode::kUnavailable);
}

TEST_F(HttpFetchTest, FormatFromOptionExtensionOrContent) {
  ModelSource src = Source(server_.Url("/raw/model"));
  src.format = "xgboost-ubj";
  EXPECT_TRUE(LoadModel(src, LoadOptions{}).ok());
  src.format = "xgboost-json";  // UBJSON bytes read as JSON
  EXPECT_EQ(LoadModel(src, LoadOptions{}).status().code(), StatusCode::kInvalidArgument);
  src.format = "onnx";
  EXPECT_EQ(LoadModel(src, LoadOptions{}).status().code(), StatusCode::kUnimplemented);
  src.format = "auto";
  auto rt = LoadModel(src, LoadOptions{});
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ((*rt)->metadata().platform, "xgboost");
}

TEST(FileFetch, PathsAndErrors) {
  const std::string path = TestData("tiny.json");
  auto plain = FetchUri(path, {});
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto uri = FetchUri("file://" + path, {});
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(*plain, *uri);

  Status missing = FetchUri("file:///nonexistent/sluice/model.json", {}).status();
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("/nonexistent/sluice/model.json"), std::string::npos);
  EXPECT_EQ(
      XGBoostRuntime::Create(Source("file:///nonexistent/m.ubj"), LoadOptions{}).status().code(),
      StatusCode::kNotFound);
  EXPECT_EQ(FetchUri(TestData(""), {}).status().code(), StatusCode::kInvalidArgument);
  FetchOptions tiny;
  tiny.max_bytes = 100;
  EXPECT_EQ(FetchUri(path, tiny).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(FetchUri("gs://bucket/model.json", {}).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(FetchUri("", {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(UriHelpers, ReferenceNamesAndExtensions) {
  EXPECT_EQ(ReferenceUriFor("file:///m/fraud.json"), "file:///m/fraud.reference.json");
  EXPECT_EQ(ReferenceUriFor("/m/fraud.ubj"), "/m/fraud.reference.json");
  EXPECT_EQ(ReferenceUriFor("https://h/m/model?sig=1"), "https://h/m/model.reference.json?sig=1");
  EXPECT_EQ(ReferenceUriFor("http://h/a.b/model"), "http://h/a.b/model.reference.json");
  EXPECT_EQ(UriExtension("https://h/m/fraud.UBJ?x=y.json"), "ubj");
  EXPECT_EQ(UriExtension("http://h.example/model"), "");
  EXPECT_EQ(UriStem("https://h/m/fraud.json?x=1"), "fraud");
  EXPECT_EQ(UriStem("/a/b/c"), "c");
}

TEST(Checksum, Sha256OfKnownInput) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(VerifySha256("abc", "").ok());
  EXPECT_TRUE(
      VerifySha256("abc", "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")
          .ok());
  EXPECT_EQ(
      VerifySha256("abd", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
          .code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::dataplane
