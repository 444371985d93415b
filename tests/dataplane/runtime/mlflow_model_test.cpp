// MLmodel parsing against files the real MLflow wrote (testdata/mlflow/make_mlmodels.py), and
// joining a model directory URI with the model file's name.
#include "dataplane/runtime/mlflow_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sluice::dataplane {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(SLUICE_REPO_DIR) + "/tests/dataplane/runtime/testdata/mlflow/" +
                   name + ".MLmodel");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << "missing fixture " << name;
  return ss.str();
}

TEST(MlflowModelTest, XgboostFormatsFromRealMlflow) {
  struct Case {
    std::string fixture, data, format;
  } cases[] = {
      {"xgboost_json", "model.json", "xgboost-json"},
      {"xgboost_ubj", "model.ubj", "xgboost-ubj"},
      {"xgboost_xgb", "model.xgb", "auto"},
      {"xgboost_booster", "model.json", "xgboost-json"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fixture);
    auto m = ParseMlflowModel(Fixture(c.fixture));
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->data, c.data);
    EXPECT_EQ(m->format, c.format);
  }
}

TEST(MlflowModelTest, WithoutXgboostFlavorIsUnimplementedNamingTheFlavors) {
  auto m = ParseMlflowModel(Fixture("sklearn"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("python_function, sklearn"), std::string::npos)
      << m.status().message();
}

TEST(MlflowModelTest, OlderMlmodelWithoutModelFormatIsSniffed) {
  auto m = ParseMlflowModel("flavors:\n  xgboost:\n    data: model.xgb\n    xgb_version: 1.7.6\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->data, "model.xgb");
  EXPECT_EQ(m->format, "auto");
}

TEST(MlflowModelTest, MalformedDocuments) {
  const std::pair<std::string, StatusCode> cases[] = {
      {"", StatusCode::kInvalidArgument},
      {"flavors: [a, b]", StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {data: \"x\", model_format: json", StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {model_format: json}}", StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {data: /etc/passwd, model_format: json}}", StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {data: ../other/model.json, model_format: json}}",
       StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {data: a/../../b.json, model_format: json}}",
       StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {data: s3://b/model.json, model_format: json}}",
       StatusCode::kInvalidArgument},
      {"flavors: {xgboost: {data: model.bin, model_format: pickle}}", StatusCode::kUnimplemented},
      {"flavors: {}", StatusCode::kUnimplemented},
  };
  for (const auto& [text, code] : cases) {
    SCOPED_TRACE(text);
    auto m = ParseMlflowModel(text);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), code) << m.status();
  }
}

TEST(MlflowModelTest, FileUriJoinsEachScheme) {
  const std::string cases[][3] = {
      {"s3://bucket/mlflow/0/models/m-1/artifacts", "model.json",
       "s3://bucket/mlflow/0/models/m-1/artifacts/model.json"},
      {"s3://bucket/prefix/", "model.ubj", "s3://bucket/prefix/model.ubj"},
      {"file:///var/models/fraud", "model.json", "file:///var/models/fraud/model.json"},
      {"file:///var/models/fraud/", "sub dir/model.json",
       "file:///var/models/fraud/sub%20dir/model.json"},
      {"http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/0/models/m-1/artifacts",
       "model.json",
       "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/0/models/m-1/artifacts/"
       "model.json"},
      {"https://h/dir/?sig=a/b&x=1", "model.json", "https://h/dir/model.json?sig=a/b&x=1"},
      {"https://h/dir#frag", "m.json", "https://h/dir/m.json#frag"},
      {"https://h/dir", "a b#c.json", "https://h/dir/a%20b%23c.json"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(MlflowModelFileUri(c[0], c[1]), c[2]) << c[0] << " + " << c[1];
  }
}

TEST(MlflowModelTest, OnlyUrisOfTheTrackingServerGetItsToken) {
  const std::string t = "http://mlflow.ml:5000";
  const std::string folder = "/api/2.0/mlflow-artifacts/artifacts/0/models/m-1/artifacts";
  EXPECT_TRUE(UnderTrackingUri(t + folder, t));
  EXPECT_TRUE(UnderTrackingUri(t + folder, t + "/"));
  EXPECT_TRUE(UnderTrackingUri("HTTP://MLflow.ML:5000" + folder, t));
  EXPECT_TRUE(UnderTrackingUri("https://h/prefix/api/x", "https://h/prefix"));
  EXPECT_TRUE(UnderTrackingUri("https://h/prefix", "https://h/prefix/"));
  EXPECT_TRUE(UnderTrackingUri("https://h/prefix?x=1", "https://h/prefix"));
  // Another port, host, scheme or path that merely starts with the same characters.
  EXPECT_FALSE(UnderTrackingUri("http://mlflow.ml:50001" + folder, t));
  EXPECT_FALSE(UnderTrackingUri("http://mlflow.ml:5000.evil.example" + folder, t));
  EXPECT_FALSE(UnderTrackingUri("http://mlflow.ml:5000@evil.example" + folder, t));
  EXPECT_FALSE(UnderTrackingUri("https://mlflow.ml:5000" + folder, t));
  EXPECT_FALSE(UnderTrackingUri("https://h/prefix-other/api/x", "https://h/prefix"));
  EXPECT_FALSE(UnderTrackingUri("https://h/api/x", "https://h/prefix"));
  EXPECT_FALSE(UnderTrackingUri("s3://bucket/mlflow/0/models/m-1/artifacts", t));
  EXPECT_FALSE(UnderTrackingUri(t + folder, ""));
  EXPECT_FALSE(UnderTrackingUri(t + folder, "mlflow.ml:5000"));
}

TEST(MlflowModelTest, InADirTheMLmodelIsFetchedOnceAndOnlyWhenItParses) {
  namespace fs = std::filesystem;
  const fs::path root =
      fs::temp_directory_path() / ("sluice-mlmodel-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "folder");
  const std::string folder = "file://" + (root / "folder").string();
  const std::string dir = (root / "model-dir").string();
  std::ofstream(root / "folder" / "MLmodel") << Fixture("sklearn");
  bool reused = true;
  auto sklearn = ResolveMlflowModelInDir(folder, dir, {}, &reused);
  ASSERT_FALSE(sklearn.ok());
  EXPECT_EQ(sklearn.status().code(), StatusCode::kUnimplemented) << sklearn.status();
  EXPECT_FALSE(reused);
  EXPECT_TRUE(!fs::exists(dir) || fs::is_empty(dir));  // an MLmodel that did not parse is not kept

  std::ofstream(root / "folder" / "MLmodel", std::ios::trunc) << Fixture("xgboost_ubj");
  auto first = ResolveMlflowModelInDir(folder, dir, {}, &reused);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(reused);
  EXPECT_EQ(first->format, "xgboost-ubj");
  // The folder is gone (a registry or S3 out of reach): the kept copy answers.
  fs::remove_all(root / "folder");
  auto again = ResolveMlflowModelInDir(folder, dir, {}, &reused);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(reused);
  EXPECT_EQ(again->data, "model.ubj");
  EXPECT_EQ(again->format, "xgboost-ubj");
  // Another folder is another file.
  auto other = ResolveMlflowModelInDir(folder + "-other", dir, {}, &reused);
  EXPECT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kNotFound) << other.status();
  fs::remove_all(root);
}

}  // namespace
}  // namespace sluice::dataplane
