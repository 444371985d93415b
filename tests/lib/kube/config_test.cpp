#include "lib/kube/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "tests/support/scoped_env.h"

namespace sluice::kube {
namespace {

namespace fs = std::filesystem;

std::string B64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(a[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

const std::string kCa = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const std::string kCert = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
const std::string kKey = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

// Sets or clears an environment variable for the scope of a test.
using sluice::testing::ScopedEnv;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice-config-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& rel, const std::string& text) {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

  fs::path dir_;
};

std::string InlineKubeconfig() {
  return "apiVersion: v1\nkind: Config\ncurrent-context: admin\n"
         "clusters:\n"
         "- name: local\n  cluster:\n    server: https://127.0.0.1:6443/\n"
         "    certificate-authority-data: " +
         B64(kCa) +
         "\n"
         "- name: remote\n  cluster:\n    server: https://k8s.example:443\n"
         "    insecure-skip-tls-verify: true\n"
         "contexts:\n"
         "- name: admin\n  context: {cluster: local, user: admin, namespace: team-a}\n"
         "- name: robot\n  context: {cluster: remote, user: robot}\n"
         "users:\n"
         "- name: admin\n  user:\n    client-certificate-data: " +
         B64(kCert) +
         "\n"
         "    client-key-data: " +
         B64(kKey) +
         "\n"
         "- name: robot\n  user:\n    token: abc.def\n";
}

TEST_F(ConfigTest, InlineDataAndCurrentContext) {
  auto c = Config::FromKubeconfigYaml(InlineKubeconfig(), dir_.string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->client_cert_pem, kCert);
  EXPECT_EQ(c->client_key_pem, kKey);
  EXPECT_EQ(c->default_namespace, "team-a");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_TRUE(c->bearer_token.empty());
  EXPECT_TRUE(c->token_file.empty());
}

TEST_F(ConfigTest, NamedContextWithTokenAndInsecure) {
  auto c = Config::FromKubeconfigYaml(InlineKubeconfig(), dir_.string(), "robot");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://k8s.example:443");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_TRUE(c->ca_pem.empty());
  EXPECT_EQ(c->bearer_token, "abc.def");
  EXPECT_EQ(c->default_namespace, "default");
}

TEST_F(ConfigTest, WrappedBase64IsAccepted) {
  std::string b64 = B64(kCa);
  std::string wrapped = b64.substr(0, 10) + "\n  " + b64.substr(10);
  std::string y =
      "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://h\n"
      "    certificate-authority-data: |\n      " +
      b64.substr(0, 10) + "\n      " + b64.substr(10) +
      "\ncontexts:\n- name: c\n  context: {cluster: k}\n";
  auto c = Config::FromKubeconfigYaml(y, "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, kCa);
}

TEST_F(ConfigTest, FilesResolveAgainstTheKubeconfigFolder) {
  Write("conf/pki/ca.crt", kCa);
  Write("conf/pki/client.crt", kCert);
  const std::string key = Write("elsewhere/client.key", kKey);
  Write("conf/token", "  tok-from-file\n");
  const std::string path =
      Write("conf/kubeconfig",
            "current-context: c\n"
            "clusters:\n- name: k\n  cluster:\n    server: https://10.0.0.1:6443\n"
            "    certificate-authority: pki/ca.crt\n    tls-server-name: kubernetes.default\n"
            "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
            "users:\n- name: u\n  user:\n    client-certificate: pki/client.crt\n"
            "    client-key: " +
                key + "\n    tokenFile: token\n");
  auto c = Config::FromKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->client_cert_pem, kCert);
  EXPECT_EQ(c->client_key_pem, kKey);
  EXPECT_EQ(c->tls_server_name, "kubernetes.default");
  EXPECT_EQ(c->bearer_token, "tok-from-file");
  EXPECT_EQ(c->token_file, (dir_ / "conf/token").string());
}

TEST_F(ConfigTest, InlineTokenWinsOverTokenFile) {
  auto c = Config::FromKubeconfigYaml(
      "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://h'}\n"
      "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
      "users:\n- name: u\n  user: {token: inline, tokenFile: /does/not/exist}\n",
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bearer_token, "inline");
  EXPECT_TRUE(c->token_file.empty());
}

TEST_F(ConfigTest, InsecureOnlyWhenTrue) {
  auto with = [](const std::string& value) {
    return Config::FromKubeconfigYaml(
        "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://h\n"
        "    insecure-skip-tls-verify: " +
            value + "\ncontexts:\n- name: c\n  context: {cluster: k}\n",
        "");
  };
  EXPECT_TRUE(with("true")->insecure_skip_tls_verify);
  EXPECT_FALSE(with("false")->insecure_skip_tls_verify);
  EXPECT_FALSE(with("\"\"")->insecure_skip_tls_verify);
}

struct BadCase {
  const char* name;
  std::string yaml;
  StatusCode code;
  const char* mentions;
};

TEST_F(ConfigTest, ClearErrorsNamingWhatIsMissing) {
  const std::string cluster = "clusters:\n- name: k\n  cluster: {server: 'https://h'}\n";
  const std::vector<BadCase> cases = {
      {"no current context", cluster, StatusCode::kInvalidArgument, "current-context"},
      {"unknown context",
       "current-context: nope\n" + cluster + "contexts:\n- name: c\n  context: {cluster: k}\n",
       StatusCode::kNotFound, "context \"nope\""},
      {"unknown cluster", "current-context: c\ncontexts:\n- name: c\n  context: {cluster: gone}\n",
       StatusCode::kNotFound, "cluster \"gone\""},
      {"no server",
       "current-context: c\nclusters:\n- name: k\n  cluster: {}\ncontexts:\n- name: c\n"
       "  context: {cluster: k}\n",
       StatusCode::kInvalidArgument, "has no server"},
      {"unknown user",
       "current-context: c\n" + cluster +
           "contexts:\n- name: c\n  context: {cluster: k, user: x}\n",
       StatusCode::kNotFound, "user \"x\""},
      {"missing CA file",
       "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://h', "
       "certificate-authority: /nonexistent/ca.crt}\ncontexts:\n- name: c\n  context: {cluster: "
       "k}\n",
       StatusCode::kNotFound, "/nonexistent/ca.crt"},
      {"cert without key",
       "current-context: c\n" + cluster +
           "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
           "users:\n- name: u\n  user: {client-certificate-data: " +
           B64(kCert) + "}\n",
       StatusCode::kInvalidArgument, "no client key"},
      {"bad base64",
       "current-context: c\n" + cluster +
           "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
           "users:\n- name: u\n  user: {client-certificate-data: '***', client-key-data: '***'}\n",
       StatusCode::kInvalidArgument, "client-certificate-data"},
      {"exec plugin without apiVersion",
       "current-context: c\n" + cluster +
           "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
           "users:\n- name: u\n  user: {exec: {command: aws}}\n",
       StatusCode::kInvalidArgument, "apiVersion is required"},
      {"auth-provider",
       "current-context: c\n" + cluster +
           "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
           "users:\n- name: u\n  user: {auth-provider: {name: gcp}}\n",
       StatusCode::kUnimplemented, "auth-provider"},
      {"insecure with CA",
       "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://h', "
       "insecure-skip-tls-verify: true, certificate-authority-data: " +
           B64(kCa) + "}\ncontexts:\n- name: c\n  context: {cluster: k}\n",
       StatusCode::kInvalidArgument, "insecure-skip-tls-verify"},
      {"missing token file",
       "current-context: c\n" + cluster +
           "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
           "users:\n- name: u\n  user: {tokenFile: /nonexistent/token}\n",
       StatusCode::kNotFound, "/nonexistent/token"},
      {"not yaml", "clusters: [a, b\n", StatusCode::kInvalidArgument, "kubeconfig"},
      {"not a map", "- a\n- b\n", StatusCode::kInvalidArgument, "not a YAML map"},
  };
  for (const auto& c : cases) {
    auto r = Config::FromKubeconfigYaml(c.yaml, "");
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    EXPECT_NE(r.status().message().find(c.mentions), std::string::npos)
        << c.name << ": " << r.status();
  }
}

TEST_F(ConfigTest, KubeconfigEnvListThenHome) {
  const std::string first = Write("a/config", InlineKubeconfig());
  std::string second_text = InlineKubeconfig();
  second_text.replace(second_text.find("current-context: admin"), 22, "current-context: robot");
  const std::string second = Write("b/config", second_text);
  {
    ScopedEnv env("KUBECONFIG", first + ":" + second);
    auto c = Config::FromKubeconfig();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  }
  {
    ScopedEnv env("KUBECONFIG", ":" + second);
    auto c = Config::FromKubeconfig();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->server, "https://k8s.example:443");
  }
  {
    ScopedEnv env("KUBECONFIG", std::nullopt);
    ScopedEnv home("HOME", (dir_ / "home").string());
    Write("home/.kube/config", second_text);
    auto c = Config::FromKubeconfig();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->bearer_token, "abc.def");
  }
  {
    ScopedEnv env("KUBECONFIG", (dir_ / "missing").string());
    auto c = Config::FromKubeconfig();
    EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
    EXPECT_NE(c.status().message().find("missing"), std::string::npos);
  }
}

TEST_F(ConfigTest, InCluster) {
  Write("sa/token", "sa-token\n");
  Write("sa/ca.crt", kCa);
  Write("sa/namespace", "sluice-system");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto c = Config::InCluster((dir_ / "sa").string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->bearer_token, "sa-token");
  EXPECT_EQ(c->token_file, (dir_ / "sa/token").string());
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->default_namespace, "sluice-system");
}

TEST_F(ConfigTest, InClusterIpv6AndDefaults) {
  Write("sa/token", "t");
  Write("sa/ca.crt", kCa);
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
  auto c = Config::InCluster((dir_ / "sa").string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://[fd00:10:96::1]:6443");
  EXPECT_EQ(c->default_namespace, "default");
}

TEST_F(ConfigTest, InClusterErrors) {
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    auto c = Config::InCluster((dir_ / "sa").string());
    EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(c.status().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  }
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto no_token = Config::InCluster((dir_ / "sa").string());
  EXPECT_EQ(no_token.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_token.status().message().find("sa/token"), std::string::npos);
  Write("sa/token", "t");
  auto no_ca = Config::InCluster((dir_ / "sa").string());
  EXPECT_EQ(no_ca.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_ca.status().message().find("ca.crt"), std::string::npos);
}

TEST_F(ConfigTest, LoadPrefersExplicitPathThenKubeconfigEnv) {
  const std::string path = Write("k/config", InlineKubeconfig());
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  {
    ScopedEnv env("KUBECONFIG", std::nullopt);
    auto explicit_path = Config::Load(path, "robot");
    ASSERT_TRUE(explicit_path.ok()) << explicit_path.status();
    EXPECT_EQ(explicit_path->server, "https://k8s.example:443");
    // No kubeconfig named anywhere and a service host set: in-cluster (which fails here, as the
    // service-account folder does not exist on this machine, naming the token).
    auto in_cluster = Config::Load();
    if (!in_cluster.ok()) {
      EXPECT_NE(in_cluster.status().message().find("in-cluster"), std::string::npos);
    }
  }
  ScopedEnv env("KUBECONFIG", path);
  auto from_env = Config::Load();
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->server, "https://127.0.0.1:6443");
}

}  // namespace
}  // namespace sluice::kube
