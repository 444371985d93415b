// SignV4 against AWS's published Signature Version 4 test suite (example credentials and date of
// the suite) and the S3 GetObject example of the S3 API reference; the UNSIGNED-PAYLOAD variant
// of that example was computed with botocore 1.44 (S3SigV4Auth, payload signing off), which
// reproduces the published empty-payload signature byte for byte.

#include "dataplane/runtime/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>

namespace sluice::dataplane {
namespace {

using std::chrono::system_clock;

constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

system_clock::time_point At(int y, int mo, int d, int h, int mi, int s) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return system_clock::from_time_t(timegm(&tm));
}

const AwsCredentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const SigV4Scope kSuiteScope{"us-east-1", "service"};
const system_clock::time_point kSuiteTime = At(2015, 8, 30, 12, 36, 0);

std::string HeaderOf(const SigV4Result& r, const std::string& name) {
  for (const auto& [n, v] : r.headers_to_add) {
    if (n == name) return v;
  }
  return "<none>";
}

SigV4Request SuiteRequest(std::string method = "GET") {
  SigV4Request r;
  r.method = std::move(method);
  r.host = "example.amazonaws.com";
  r.payload_sha256 = kEmptySha256;
  return r;
}

TEST(SigV4, GetVanilla) {
  SigV4Result r = SignV4(SuiteRequest(), kSuite, kSuiteScope, kSuiteTime);
  EXPECT_EQ(
      r.canonical_request,
      "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
          std::string(kEmptySha256));
  EXPECT_EQ(r.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(HeaderOf(r, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(HeaderOf(r, "X-Amz-Date"), "20150830T123600Z");
  EXPECT_EQ(HeaderOf(r, "X-Amz-Security-Token"), "<none>");
}

TEST(SigV4, PostVanilla) {
  SigV4Result r = SignV4(SuiteRequest("POST"), kSuite, kSuiteScope, kSuiteTime);
  EXPECT_EQ(r.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4, GetVanillaQueryOrderKeyCase) {
  SigV4Request req = SuiteRequest();
  req.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  SigV4Result r = SignV4(req, kSuite, kSuiteScope, kSuiteTime);
  EXPECT_NE(r.canonical_request.find("\n/\nParam1=value1&Param2=value2\n"), std::string::npos)
      << r.canonical_request;
  EXPECT_EQ(r.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4, GetHeaderValueTrim) {
  SigV4Request req = SuiteRequest();
  req.headers = {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}};
  SigV4Result r = SignV4(req, kSuite, kSuiteScope, kSuiteTime);
  EXPECT_NE(r.canonical_request.find("my-header1:value1\nmy-header2:\"a b c\"\n"),
            std::string::npos)
      << r.canonical_request;
  EXPECT_EQ(r.signature, "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

TEST(SigV4, GetUnreservedPath) {
  SigV4Request req = SuiteRequest();
  req.path = "/" + AwsUriEncode(
                       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", true);
  SigV4Result r = SignV4(req, kSuite, kSuiteScope, kSuiteTime);
  EXPECT_EQ(r.signature, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

// The S3 API reference's GetObject example (first 10 bytes of examplebucket/test.txt).
SigV4Request S3Example(const std::string& payload) {
  SigV4Request req;
  req.host = "examplebucket.s3.amazonaws.com";
  req.path = "/test.txt";
  req.headers = {{"Range", "bytes=0-9"}, {"x-amz-content-sha256", payload}};
  req.payload_sha256 = payload;
  return req;
}
const AwsCredentials kS3Example{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                ""};

TEST(SigV4, S3GetObjectExample) {
  SigV4Result r =
      SignV4(S3Example(kEmptySha256), kS3Example, {"us-east-1", "s3"}, At(2013, 5, 24, 0, 0, 0));
  EXPECT_EQ(r.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(HeaderOf(r, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3GetObjectUnsignedPayload) {
  SigV4Result r = SignV4(S3Example("UNSIGNED-PAYLOAD"), kS3Example, {"us-east-1", "s3"},
                         At(2013, 5, 24, 0, 0, 0));
  EXPECT_EQ(r.canonical_request.substr(r.canonical_request.rfind('\n') + 1), "UNSIGNED-PAYLOAD");
  EXPECT_EQ(r.signature, "edacce68e5445863e1f916719fac26d3be9c1581fccd7878ade0879597fc0dc1");
}

TEST(SigV4, SessionTokenIsSignedAndSent) {
  AwsCredentials c = kSuite;
  c.session_token = "TOKEN";
  SigV4Result r = SignV4(SuiteRequest(), c, kSuiteScope, kSuiteTime);
  EXPECT_EQ(HeaderOf(r, "X-Amz-Security-Token"), "TOKEN");
  EXPECT_NE(r.canonical_request.find("x-amz-security-token:TOKEN\n"), std::string::npos);
  EXPECT_NE(HeaderOf(r, "Authorization").find("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            std::string::npos);
}

TEST(SigV4, TheSecretNeverAppearsInTheOutput) {
  SigV4Result r = SignV4(SuiteRequest(), kSuite, kSuiteScope, kSuiteTime);
  for (const auto& [n, v] : r.headers_to_add) {
    EXPECT_EQ(v.find(kSuite.secret_access_key), std::string::npos) << n;
  }
  EXPECT_EQ(r.canonical_request.find(kSuite.secret_access_key), std::string::npos);
}

TEST(SigV4, UriEncode) {
  EXPECT_EQ(AwsUriEncode("models/fraud v1+x.json", true), "models/fraud%20v1%2Bx.json");
  EXPECT_EQ(AwsUriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(AwsUriEncode("\xc3\xa9", false), "%C3%A9");
}

}  // namespace
}  // namespace sluice::dataplane
