// The MLflow registry client against a scripted loopback server: the requests it sends (paths,
// encoded query parameters, the stage POST body, the bearer token), how MLflow's artifact
// locations become fetchable URIs, and the error contract of model_registry.h, with the token
// never in a message. The real MLflow server is in tests/integration/registry.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "controllers/registry/model_registry.h"
#include "tests/controllers/registry/scripted_http_server.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using testing::HttpReply;
using testing::HttpRequest;
using testing::ScriptedHttpServer;

constexpr char kToken[] = "s3cr3t-T0KEN-value";

std::string Version(const std::string& v, const std::string& status = "READY") {
  return json{{"model_version",
               {{"name", "fraud"},
                {"version", v},
                {"run_id", "run" + v},
                {"status", status},
                {"source", "models:/m-" + v}}}}
      .dump();
}

std::string DownloadUri(const std::string& uri) {
  return json{{"artifact_uri", uri}}.dump();
}

bool StartsWith(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

// Answers like MLflow 3.17 for model "fraud" version 1..3, alias champion -> 2, Production -> 3.
HttpReply Mlflow(const HttpRequest& r, const std::string& artifact_uri) {
  const std::string api = "/api/2.0/mlflow/";
  const size_t at = r.target.find(api);
  const std::string call = at == std::string::npos ? r.target : r.target.substr(at + api.size());
  if (StartsWith(call, "model-versions/get-download-uri?")) return {200, DownloadUri(artifact_uri)};
  if (StartsWith(call, "model-versions/get?name=fraud&version=")) {
    const std::string v = call.substr(call.rfind('=') + 1);
    if (v == "1" || v == "2" || v == "3") return {200, Version(v)};
    return {
        404,
        R"({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Model Version (name=fraud, version=)" +
            v + R"() not found"})"};
  }
  if (call == "registered-models/alias?name=fraud&alias=champion") return {200, Version("2")};
  if (StartsWith(call, "registered-models/alias?name=fraud&alias=")) {
    return {
        400,
        R"({"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias x not found."})"};
  }
  if (call == "registered-models/get-latest-versions") {
    const json body = json::parse(r.body);
    if (!body.contains("stages")) {
      return {200, json{{"model_versions",
                         json::parse("[" + json::parse(Version("3"))["model_version"].dump() + "," +
                                     json::parse(Version("1"))["model_version"].dump() + "]")}}
                       .dump()};
    }
    if (body["stages"] == json::array({"Production"})) {
      return {200,
              json{{"model_versions", json::array({json::parse(Version("3"))["model_version"]})}}
                  .dump()};
    }
    return {200, "{}"};
  }
  return {404, R"({"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"})"};
}

class MlflowRegistryTest : public ::testing::Test {
 protected:
  RegistryAccess Access(const ScriptedHttpServer& server, const std::string& prefix = "") {
    RegistryAccess a;
    a.tracking_uri = server.Url() + prefix;
    a.token = kToken;
    a.timeout = std::chrono::milliseconds(3000);
    return a;
  }
  std::unique_ptr<ModelRegistry> registry_ = NewMlflowRegistry();
};

TEST_F(MlflowRegistryTest, SendsTheBearerTokenAndEncodedQueryOnEveryRequest) {
  ScriptedHttpServer server([](const HttpRequest& r) {
    if (r.target.find("get-download-uri") != std::string::npos) {
      return HttpReply{200, DownloadUri("mlflow-artifacts:/0/models/m-1/artifacts")};
    }
    return HttpReply{200, Version("7")};
  });
  RegistryModelRef ref{.name = "fraud detector/&=?é", .version = "7"};
  auto got = registry_->Resolve(ref, Access(server));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "7");
  EXPECT_EQ(got->run_id, "run7");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target,
            "/api/2.0/mlflow/model-versions/get?name=fraud%20detector%2F%26%3D%3F%C3%A9&version=7");
  EXPECT_EQ(requests[1].target,
            "/api/2.0/mlflow/model-versions/"
            "get-download-uri?name=fraud%20detector%2F%26%3D%3F%C3%A9&version=7");
  for (const HttpRequest& r : requests) {
    EXPECT_NE(r.headers.find(std::string("\r\nAuthorization: Bearer ") + kToken + "\r\n"),
              std::string::npos)
        << r.headers;
  }
}

TEST_F(MlflowRegistryTest, NoTokenNoAuthorizationHeader) {
  ScriptedHttpServer server(
      [](const HttpRequest& r) { return Mlflow(r, "mlflow-artifacts:/0/models/m-1/artifacts"); });
  RegistryAccess access = Access(server);
  access.token.clear();
  ASSERT_TRUE(registry_->Resolve({.name = "fraud", .version = "1"}, access).ok());
  for (const HttpRequest& r : server.requests()) {
    EXPECT_EQ(r.headers.find("Authorization"), std::string::npos) << r.headers;
  }
}

TEST_F(MlflowRegistryTest, AliasStageAndLatestPickTheirVersion) {
  ScriptedHttpServer server(
      [](const HttpRequest& r) { return Mlflow(r, "mlflow-artifacts:/0/models/m-1/artifacts"); });
  auto alias = registry_->Resolve({.name = "fraud", .alias = "champion"}, Access(server));
  ASSERT_TRUE(alias.ok()) << alias.status();
  EXPECT_EQ(alias->version, "2");
  auto stage = registry_->Resolve({.name = "fraud", .stage = "Production"}, Access(server));
  ASSERT_TRUE(stage.ok()) << stage.status();
  EXPECT_EQ(stage->version, "3");
  auto latest = registry_->Resolve({.name = "fraud", .stage = "latest"}, Access(server));
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, "3");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 6u);
  EXPECT_EQ(requests[2].method, "POST");
  EXPECT_EQ(requests[2].target, "/api/2.0/mlflow/registered-models/get-latest-versions");
  EXPECT_EQ(json::parse(requests[2].body), (json{{"name", "fraud"}, {"stages", {"Production"}}}));
  EXPECT_NE(requests[2].headers.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(json::parse(requests[4].body), (json{{"name", "fraud"}}));
  EXPECT_EQ(requests[5].target,
            "/api/2.0/mlflow/model-versions/get-download-uri?name=fraud&version=3");
}

TEST_F(MlflowRegistryTest, ArtifactLocationsBecomeFetchableUris) {
  struct Case {
    std::string location, prefix, want;  // want "" means: expect kUnimplemented
    std::string names = "";              // the error names this
  };
  const Case cases[] = {
      {"mlflow-artifacts:/0/models/m-1/artifacts", "",
       "{url}/api/2.0/mlflow-artifacts/artifacts/0/models/m-1/artifacts"},
      {"mlflow-artifacts:/0/models/m-1/artifacts/", "/mlflow",
       "{url}/mlflow/api/2.0/mlflow-artifacts/artifacts/0/models/m-1/artifacts"},
      {"mlflow-artifacts://other:5000/0/a b", "/p",
       "http://other:5000/p/api/2.0/mlflow-artifacts/artifacts/0/a%20b"},
      {"s3://bucket/mlflow/0/models/m-1/artifacts", "",
       "s3://bucket/mlflow/0/models/m-1/artifacts"},
      {"gs://bucket/x/", "", "gs://bucket/x"},
      {"https://blob.example/x?sig=1", "", "https://blob.example/x?sig=1"},
      {"file:///var/mlruns/0/models/m-1/artifacts", "",
       "file:///var/mlruns/0/models/m-1/artifacts"},
      {"/var/mlruns/0/models/m-1/artifacts", "", "file:///var/mlruns/0/models/m-1/artifacts"},
      {"dbfs:/databricks/mlflow/0/x", "", "", "\"dbfs:\""},
      {"runs:/abc/model", "", "", "\"runs:\""},
      {"models:/m-1", "", "", "\"models:\""},
      {"wasbs://c@acct.blob.core.windows.net/x", "", "", "\"wasbs:\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.location);
    ScriptedHttpServer server([&](const HttpRequest& r) { return Mlflow(r, c.location); });
    auto got = registry_->Resolve({.name = "fraud", .version = "1"}, Access(server, c.prefix));
    if (c.want.empty()) {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.status().code(), StatusCode::kUnimplemented) << got.status();
      EXPECT_NE(got.status().message().find(c.names), std::string::npos) << got.status();
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.status();
    std::string want = c.want;
    if (StartsWith(want, "{url}")) want = server.Url() + want.substr(5);
    EXPECT_EQ(got->source_uri, want);
    if (!c.prefix.empty()) {
      EXPECT_TRUE(StartsWith(server.requests()[0].target, c.prefix + "/api/2.0/mlflow/"));
    }
  }
}

TEST_F(MlflowRegistryTest, ErrorsFollowTheContractAndNeverCarryTheToken) {
  struct Case {
    std::string name;
    HttpReply reply;
    RegistryModelRef ref;
    StatusCode code;
    std::string names;
  };
  const Case cases[] = {
      {"unknown version",
       {},
       {.name = "fraud", .version = "9"},
       StatusCode::kNotFound,
       "\"fraud\" version 9"},
      {"unknown alias",
       {},
       {.name = "fraud", .alias = "ghost"},
       StatusCode::kNotFound,
       "\"fraud\" alias \"ghost\""},
      {"empty stage",
       {},
       {.name = "fraud", .stage = "Staging"},
       StatusCode::kNotFound,
       "\"fraud\" has no version in stage Staging"},
      {"401",
       {401, R"({"error_code":"UNAUTHENTICATED","message":"bad token"})"},
       {.name = "fraud", .version = "1"},
       StatusCode::kUnauthorized,
       "401"},
      {"403",
       {403, R"({"error_code":"PERMISSION_DENIED","message":"no"})"},
       {.name = "fraud", .version = "1"},
       StatusCode::kForbidden,
       "403"},
      {"503",
       {503, "busy"},
       {.name = "fraud", .version = "1"},
       StatusCode::kUnavailable,
       "HTTP 503"},
      {"500",
       {500, R"({"error_code":"INTERNAL_ERROR","message":"db locked"})"},
       {.name = "fraud", .version = "1"},
       StatusCode::kUnavailable,
       "db locked"},
      {"not json",
       {200, "<html>proxy login</html>"},
       {.name = "fraud", .version = "1"},
       StatusCode::kInternal,
       "without a JSON object"},
      {"pending",
       {200, Version("1", "PENDING_REGISTRATION")},
       {.name = "fraud", .version = "1"},
       StatusCode::kUnavailable,
       "still being registered"},
      {"failed",
       {200, Version("1", "FAILED_REGISTRATION")},
       {.name = "fraud", .version = "1"},
       StatusCode::kInternal,
       "FAILED_REGISTRATION"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const bool scripted = c.reply.status != 200 || !c.reply.body.empty();
    ScriptedHttpServer server([&](const HttpRequest& r) {
      if (scripted) return c.reply;
      return Mlflow(r, "mlflow-artifacts:/0/x");
    });
    RegistryAccess access = Access(server);
    auto got = registry_->Resolve(c.ref, access);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), c.code) << got.status();
    EXPECT_NE(got.status().message().find(c.names), std::string::npos) << got.status();
    EXPECT_EQ(got.status().message().find(kToken), std::string::npos) << got.status();
    ASSERT_FALSE(server.requests().empty());
    EXPECT_NE(server.requests()[0].headers.find(kToken), std::string::npos);
  }
}

TEST_F(MlflowRegistryTest, ClosedPortIsUnavailableNamingTheTrackingUri) {
  int port = 0;
  {
    ScriptedHttpServer gone([](const HttpRequest&) { return HttpReply{}; });
    port = gone.port();
  }  // closed: nothing listens there now
  RegistryAccess access;
  access.tracking_uri = "http://user:hunter2@127.0.0.1:" + std::to_string(port) + "/";
  access.token = kToken;
  access.timeout = std::chrono::milliseconds(2000);
  const auto start = std::chrono::steady_clock::now();
  auto got = registry_->Resolve({.name = "fraud", .alias = "champion"}, access);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status();
  EXPECT_NE(got.status().message().find("http://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << got.status();
  EXPECT_EQ(got.status().message().find(kToken), std::string::npos);
  EXPECT_EQ(got.status().message().find("hunter2"), std::string::npos) << got.status();
  EXPECT_LT(took, std::chrono::milliseconds(2000));
}

TEST_F(MlflowRegistryTest, HungRegistryIsUnavailableWithinTheTimeout) {
  ScriptedHttpServer server([](const HttpRequest&) { return HttpReply{.hang = true}; });
  RegistryAccess access = Access(server);
  access.timeout = std::chrono::milliseconds(400);
  const auto start = std::chrono::steady_clock::now();
  auto got = registry_->Resolve({.name = "fraud", .version = "1"}, access);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status();
  EXPECT_NE(got.status().message().find(server.Url()), std::string::npos) << got.status();
  EXPECT_EQ(got.status().message().find(kToken), std::string::npos);
  EXPECT_GE(took, std::chrono::milliseconds(350));
  // Generous for a loaded machine; without a deadline curl would wait for minutes.
  EXPECT_LT(took, std::chrono::milliseconds(3000));
}

TEST_F(MlflowRegistryTest, TrackingUriMustBeHttp) {
  RegistryAccess access;
  access.tracking_uri = "databricks";
  auto got = registry_->Resolve({.name = "fraud", .version = "1"}, access);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status();
}

}  // namespace
}  // namespace sluice::controllers
