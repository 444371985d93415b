// Kubeconfigs as kubectl reads them, against the real kube-apiserver: a user whose credentials
// come from an exec plugin (a script printing the server's static token), a $KUBECONFIG list with
// the cluster in one file and the user in another, tls-server-name and proxy-url.

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>

#include "tests/integration/kube/client_it_util.h"
#include "tests/support/connect_proxy.h"
#include "tests/support/scoped_env.h"

namespace sluice::kube::it {
namespace {

namespace fs = std::filesystem;
using sluice::testing::SharedApiServer;
using sluice::testing::TestApiServer;

const GroupVersionResource kSelfSubjectReviews{"authentication.k8s.io", "v1", "selfsubjectreviews",
                                               false, "SelfSubjectReview"};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Who the API server takes the client for.
Result<std::string> WhoAmI(Client& client) {
  ASSIGN_OR_RETURN(Json review, client.Create(kSelfSubjectReviews, "",
                                              Json{{"apiVersion", "authentication.k8s.io/v1"},
                                                   {"kind", "SelfSubjectReview"}}));
  return review["status"]["userInfo"].value("username", "");
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using sluice::testing::ScopedEnv;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice-it-kubeconfig-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  // An exec plugin that prints `token` (valid for an hour) and counts its runs in <dir>/runs.
  std::string Plugin(const std::string& rel, const std::string& token) {
    const std::string expiry = Rfc3339(std::chrono::system_clock::now() + std::chrono::hours(1));
    const std::string path =
        Write(rel,
              "#!/bin/sh\n"
              "echo x >> '" +
                  (dir_ / "runs").string() +
                  "'\n"
                  "cat <<EOF\n"
                  "{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": "
                  "\"ExecCredential\", \"status\": {\"token\": \"" +
                  token + "\", \"expirationTimestamp\": \"" + expiry + "\"}}\nEOF\n");
    ::chmod(path.c_str(), 0755);
    return path;
  }
  int Runs() {
    const std::string s = ReadAll(dir_ / "runs");
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }
  static std::string ClusterYaml(const std::string& ca_path, const std::string& extra = "") {
    return "clusters:\n- name: test\n  cluster:\n    server: " + SharedApiServer().url() +
           "\n    certificate-authority: " + ca_path + "\n" + extra;
  }
  static std::string ExecUserYaml(const std::string& name, const std::string& command) {
    return "- name: " + name +
           "\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
           "      command: " +
           command +
           "\n      interactiveMode: Never\n      installHint: the test writes this plugin\n";
  }

  fs::path dir_;
};

TEST_F(KubeconfigTest, ExecPluginTokenAuthenticates) {
  fs::copy_file(SharedApiServer().ca_file(), dir_ / "ca.crt");
  Plugin("bin/token.sh", SharedApiServer().static_token());
  // Relative paths (the CA, the plugin) resolve against the kubeconfig's folder.
  const std::string path =
      Write("kubeconfig", "current-context: c\n" + ClusterYaml("ca.crt") +
                              "contexts:\n- name: c\n  context: {cluster: test, user: robot}\n"
                              "users:\n" +
                              ExecUserYaml("robot", "./bin/token.sh"));
  auto config = Config::FromKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  auto client = ClientFor(*config);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto who = WhoAmI(*client);
    ASSERT_TRUE(who.ok()) << who.status();
    EXPECT_EQ(*who, TestApiServer::kStaticTokenUser);
  }
  // RBAC grants the static-token user nothing: authenticated, then forbidden by name.
  auto denied = client->List(resources::kConfigMaps, "default");
  EXPECT_EQ(denied.status().code(), StatusCode::kForbidden) << denied.status();
  EXPECT_NE(denied.status().message().find(TestApiServer::kStaticTokenUser), std::string::npos)
      << denied.status();
  EXPECT_EQ(Runs(), 1);  // the credential is valid for an hour: one run served every request
}

TEST_F(KubeconfigTest, WrongTokenFromThePluginIsAClear401) {
  const std::string plugin = Plugin("bad-token.sh", "not-a-valid-token");
  const std::string path =
      Write("kubeconfig", "current-context: c\n" + ClusterYaml(SharedApiServer().ca_file()) +
                              "contexts:\n- name: c\n  context: {cluster: test, user: robot}\n"
                              "users:\n" +
                              ExecUserYaml("robot", plugin));
  auto config = Config::FromKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  auto client = ClientFor(*config);
  auto r = WhoAmI(*client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized) << r.status();
  EXPECT_EQ(r.status().http_status(), 401);
  EXPECT_NE(r.status().message().find("exec plugin \"" + plugin + "\""), std::string::npos)
      << r.status();
  // The 401 made the transport run the plugin again; the same token came back, so the request
  // was not resent and the 401 is the answer.
  EXPECT_EQ(Runs(), 2);

  // A plugin that is not installed: the error says so, with the install hint.
  const std::string missing = Write(
      "missing/kubeconfig", "current-context: c\n" + ClusterYaml(SharedApiServer().ca_file()) +
                                "contexts:\n- name: c\n  context: {cluster: test, user: r}\n"
                                "users:\n" +
                                ExecUserYaml("r", "sluice-it-no-such-plugin"));
  auto no_plugin = ClientFor(*Config::FromKubeconfig(missing));
  auto err = no_plugin->Get(resources::kConfigMaps, "default", "x");
  EXPECT_EQ(err.status().code(), StatusCode::kUnauthorized) << err.status();
  EXPECT_NE(err.status().message().find("sluice-it-no-such-plugin"), std::string::npos);
  EXPECT_NE(err.status().message().find("the test writes this plugin"), std::string::npos)
      << err.status();
}

TEST_F(KubeconfigTest, KubeconfigListWithClusterAndUserInDifferentFiles) {
  fs::create_directories(dir_ / "cluster");
  fs::copy_file(SharedApiServer().ca_file(), dir_ / "cluster/ca.crt");
  const std::string cluster_file = Write(
      "cluster/config", "current-context: via-plugin\n" + ClusterYaml("ca.crt") +
                            "contexts:\n"
                            "- name: via-plugin\n  context: {cluster: test, user: robot}\n"
                            "- name: via-file\n  context: {cluster: test, user: file-robot}\n");
  Plugin("user/bin/token.sh", SharedApiServer().static_token());
  Write("user/token", SharedApiServer().static_token() + "\n");
  const std::string user_file = Write(
      "user/config", "users:\n" + ExecUserYaml("robot", "bin/token.sh") +
                         "- name: file-robot\n  user: {tokenFile: token}\n"
                         // Another file's cluster of the same name loses to the first.
                         "clusters:\n- name: test\n  cluster: {server: 'https://127.0.0.1:1'}\n");
  ScopedEnv env("KUBECONFIG", cluster_file + ":" + user_file);
  for (const char* context : {"", "via-file"}) {
    auto config = Config::Load("", context);
    ASSERT_TRUE(config.ok()) << context << ": " << config.status();
    auto who = WhoAmI(*ClientFor(*config));
    ASSERT_TRUE(who.ok()) << context << ": " << who.status();
    EXPECT_EQ(*who, TestApiServer::kStaticTokenUser) << context;
  }
  EXPECT_EQ(Runs(), 1);
}

TEST_F(KubeconfigTest, TlsServerNameIsWhatTheCertificateIsCheckedAgainst) {
  // The URL's host is 127.0.0.1 (in the serving certificate); with tls-server-name set, the
  // certificate must name that instead.
  Config config = AdminConfig();
  config.tls_server_name = "kubernetes.default.svc";
  auto in_cert = WhoAmI(*ClientFor(config));
  ASSERT_TRUE(in_cert.ok()) << in_cert.status();
  EXPECT_EQ(*in_cert, "sluice-admin");

  config.tls_server_name = "not-in-the-certificate.example";
  auto wrong = WhoAmI(*ClientFor(config));
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition) << wrong.status();
}

TEST_F(KubeconfigTest, ProxyUrlCarriesEveryRequest) {
  auto proxy = sluice::testing::ConnectProxy::Start();
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const std::string path = Write(
      "kubeconfig",
      "current-context: c\n" +
          ClusterYaml(SharedApiServer().ca_file(), "    proxy-url: " + (*proxy)->url() + "\n") +
          "contexts:\n- name: c\n  context: {cluster: test, user: robot}\n"
          "users:\n- name: robot\n  user: {token: " +
          SharedApiServer().static_token() + "}\n");
  auto config = Config::FromKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->proxy_url, (*proxy)->url());
  auto who = WhoAmI(*ClientFor(*config));
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, TestApiServer::kStaticTokenUser);
  const auto targets = (*proxy)->targets();
  ASSERT_FALSE(targets.empty());
  for (const auto& t : targets) {
    EXPECT_EQ(t, "127.0.0.1:" + std::to_string(SharedApiServer().port()));
  }
}

}  // namespace
}  // namespace sluice::kube::it
