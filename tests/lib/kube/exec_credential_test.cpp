// Exec credential plugins, kubeconfig merging and the newer kubeconfig fields, with real plugin
// processes: small shell scripts written to a temporary folder, counting their runs in a file.

#include "lib/kube/exec_credential.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "tests/lib/base/fake_clock.h"
#include "tests/support/scoped_env.h"

namespace sluice::kube {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kV1 = "client.authentication.k8s.io/v1";
constexpr const char* kV1beta1 = "client.authentication.k8s.io/v1beta1";

using sluice::testing::ScopedEnv;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class ExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice-exec-test-" + std::to_string(getpid()) + "-" +
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
  std::string Script(const std::string& rel, const std::string& body) {
    const std::string p = Write(rel, "#!/bin/sh\n" + body);
    ::chmod(p.c_str(), 0755);
    return p;
  }
  // A plugin that counts its runs in `count` and prints token tok-<run>, with the expiry taken
  // from $EXPIRY (none when empty).
  std::string CountingPlugin(const std::string& api_version = kV1) {
    return Script("plugin.sh",
                  "d='" + dir_.string() +
                      "'\n"
                      "n=$(( $(cat \"$d/count\" 2>/dev/null || echo 0) + 1 ))\n"
                      "echo $n > \"$d/count\"\n"
                      "printf '{\"apiVersion\":\"" +
                      api_version +
                      "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%s\","
                      "\"expirationTimestamp\":\"%s\"}}' \"$n\" \"$EXPIRY\"\n");
  }
  int Count() {
    const std::string s = ReadAll(dir_ / "count");
    return s.empty() ? 0 : std::stoi(s);
  }
  Config ConfigWith(const std::string& command, const std::string& expiry = "") {
    Config c;
    c.server = "https://127.0.0.1:6443";
    ExecConfig e;
    e.command = command;
    e.api_version = kV1;
    e.interactive_mode = "Never";
    e.user = "robot";
    e.env = {{"EXPIRY", expiry}};
    c.exec = e;
    return c;
  }
  std::unique_ptr<ExecCredentialProvider> Provider(const Config& c, Clock* clock = nullptr) {
    ExecCredentialOptions o;
    o.clock = clock;
    auto p = ExecCredentialProvider::Create(c, o);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  fs::path dir_;
};

// ---- kubeconfig: the exec user entry --------------------------------------------------------

TEST_F(ExecTest, KubeconfigExecEntryIsParsed) {
  const std::string path =
      Write("conf/kubeconfig",
            "current-context: c\n"
            "clusters:\n- name: k\n  cluster:\n    server: https://h:6443\n"
            "    extensions:\n    - name: client.authentication.k8s.io/exec\n"
            "      extension: {audience: sluice, retries: 3, verbose: true, id: '007'}\n"
            "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
            "users:\n- name: u\n  user:\n    exec:\n"
            "      apiVersion: client.authentication.k8s.io/v1\n"
            "      command: ./bin/get-token\n      args: [--cluster, prod]\n"
            "      env:\n      - {name: REGION, value: eu-1}\n"
            "      installHint: install get-token from the internal portal\n"
            "      provideClusterInfo: true\n      interactiveMode: Never\n");
  auto c = Config::FromKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->exec.has_value());
  EXPECT_EQ(c->exec->command, (dir_ / "conf/bin/get-token").string());
  EXPECT_EQ(c->exec->args, (std::vector<std::string>{"--cluster", "prod"}));
  ASSERT_EQ(c->exec->env.size(), 1u);
  EXPECT_EQ(c->exec->env[0], (std::pair<std::string, std::string>{"REGION", "eu-1"}));
  EXPECT_EQ(c->exec->install_hint, "install get-token from the internal portal");
  EXPECT_TRUE(c->exec->provide_cluster_info);
  EXPECT_EQ(c->exec->interactive_mode, "Never");
  EXPECT_EQ(c->exec->user, "u");
  EXPECT_EQ(Json::parse(c->exec->cluster_config_json),
            (Json{{"audience", "sluice"}, {"retries", 3}, {"verbose", true}, {"id", "007"}}));
  EXPECT_TRUE(c->bearer_token.empty());
  EXPECT_NE(c->DescribeCredentials().find("get-token"), std::string::npos);
}

TEST_F(ExecTest, KubeconfigExecDefaultsAndErrors) {
  auto with = [](const std::string& exec) {
    return Config::FromKubeconfigYaml(
        "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://h'}\n"
        "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
        "users:\n- name: u\n  user:\n    exec: " +
            exec + "\n",
        "/base");
  };
  // A bare name stays for $PATH lookup; v1beta1 defaults to IfAvailable.
  auto beta = with("{apiVersion: client.authentication.k8s.io/v1beta1, command: aws-iam}");
  ASSERT_TRUE(beta.ok()) << beta.status();
  EXPECT_EQ(beta->exec->command, "aws-iam");
  EXPECT_EQ(beta->exec->interactive_mode, "IfAvailable");
  EXPECT_FALSE(beta->exec->provide_cluster_info);

  struct Bad {
    std::string exec;
    StatusCode code;
    const char* mentions;
  };
  const std::vector<Bad> bad = {
      {"{apiVersion: client.authentication.k8s.io/v1, command: x}", StatusCode::kInvalidArgument,
       "interactiveMode is required"},
      {"{apiVersion: client.authentication.k8s.io/v1alpha1, command: x}",
       StatusCode::kInvalidArgument, "v1alpha1"},
      {"{apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}",
       StatusCode::kInvalidArgument, "command is required"},
      {"{apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Always}",
       StatusCode::kFailedPrecondition, "Always"},
      {"{apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Sometimes}",
       StatusCode::kInvalidArgument, "Sometimes"},
      {"{apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Never, "
       "env: [{value: v}]}",
       StatusCode::kInvalidArgument, "env entry without a name"},
  };
  for (const auto& b : bad) {
    auto r = with(b.exec);
    ASSERT_FALSE(r.ok()) << b.exec;
    EXPECT_EQ(r.status().code(), b.code) << r.status();
    EXPECT_NE(r.status().message().find(b.mentions), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("user \"u\""), std::string::npos) << r.status();
  }
}

TEST_F(ExecTest, ProxyUrlAndTlsServerName) {
  auto with = [](const std::string& extra) {
    return Config::FromKubeconfigYaml(
        "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://h', " + extra +
            "}\ncontexts:\n- name: c\n  context: {cluster: k}\n",
        "");
  };
  auto c = with("proxy-url: 'socks5://127.0.0.1:1080', tls-server-name: kubernetes");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->proxy_url, "socks5://127.0.0.1:1080");
  EXPECT_EQ(c->tls_server_name, "kubernetes");
  EXPECT_TRUE(with("proxy-url: 'http://proxy:3128'").ok());
  EXPECT_TRUE(with("proxy-url: 'https://proxy:3129'").ok());
  auto bad = with("proxy-url: 'ftp://proxy:21'");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("proxy-url"), std::string::npos) << bad.status();
  EXPECT_EQ(with("proxy-url: 'http://'").status().code(), StatusCode::kInvalidArgument);
}

// ---- kubeconfig: $KUBECONFIG lists -------------------------------------------------------------

TEST_F(ExecTest, KubeconfigListMergesByKubectlRules) {
  // The cluster (with a relative CA path) in one file, the user (with a relative token file and
  // plugin) in another; names defined twice keep the first file's entry.
  Write("a/ca.crt", "CA-FROM-A");
  const std::string a = Write(
      "a/config",
      "clusters:\n- name: k\n  cluster: {server: 'https://from-a:6443', certificate-authority: "
      "ca.crt}\n"
      "contexts:\n- name: c\n  context: {cluster: k, user: u, namespace: from-a}\n");
  Write("b/token", "token-from-b\n");
  Write("b/ca.crt", "CA-FROM-B");
  const std::string b = Write(
      "b/config",
      "current-context: c\n"
      "clusters:\n- name: k\n  cluster: {server: 'https://from-b:6443', certificate-authority: "
      "ca.crt}\n"
      "contexts:\n- name: c\n  context: {cluster: k, user: nobody}\n"
      "- name: other\n  context: {cluster: k, user: plugin}\n"
      "users:\n- name: u\n  user: {tokenFile: token}\n"
      "- name: plugin\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, "
      "command: bin/plugin, interactiveMode: Never}\n");
  const std::string c_file = Write("c/config", "current-context: other\n");
  {
    ScopedEnv env("KUBECONFIG", a + ":" + (dir_ / "missing").string() + "::" + b + ":" + c_file);
    auto c = Config::FromKubeconfig();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->server, "https://from-a:6443");
    EXPECT_EQ(c->ca_pem, "CA-FROM-A");
    EXPECT_EQ(c->default_namespace, "from-a");
    EXPECT_EQ(c->bearer_token, "token-from-b");
    EXPECT_EQ(c->token_file, (dir_ / "b/token").string());
    // Config::Load takes the same path.
    auto loaded = Config::Load("", "other");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_TRUE(loaded->exec.has_value());
    EXPECT_EQ(loaded->exec->command, (dir_ / "b/bin/plugin").string());
  }
  {
    // current-context from the first file that sets it.
    ScopedEnv env("KUBECONFIG", c_file + ":" + a + ":" + b);
    auto c = Config::FromKubeconfig();
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->exec.has_value());
  }
  {
    // The other order: b's cluster and context win; its context "c" names a user nobody defines.
    EXPECT_EQ(Config::FromKubeconfigFiles({b, a}).status().code(), StatusCode::kNotFound);
    auto c = Config::FromKubeconfigFiles({b, a}, "other");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->server, "https://from-b:6443");
    EXPECT_EQ(c->ca_pem, "CA-FROM-B");
  }
  {
    ScopedEnv env("KUBECONFIG", (dir_ / "none1").string() + ":" + (dir_ / "none2").string());
    auto c = Config::FromKubeconfig();
    EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
    EXPECT_NE(c.status().message().find("none2"), std::string::npos) << c.status();
  }
  {
    // An error names the files it merged.
    ScopedEnv env("KUBECONFIG", a);
    auto c = Config::FromKubeconfig();
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << c.status();
    EXPECT_NE(c.status().message().find(a), std::string::npos) << c.status();
  }
  EXPECT_EQ(SplitKubeconfigList("x::y:x:"), (std::vector<std::string>{"x", "y"}));
}

// ---- ExecCredential output ----------------------------------------------------------------------

TEST(ParseExecCredentialTest, TokenCertificateAndExpiry) {
  auto t = ParseExecCredential(
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
          "status":{"token":"abc","expirationTimestamp":"2026-12-07T01:00:00Z"}})",
      kV1);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "abc");
  ASSERT_TRUE(t->expiry.has_value());
  EXPECT_EQ(Clock::Wall::to_time_t(*t->expiry), 1796605200);

  auto c = ParseExecCredential(
      R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",
          "status":{"clientCertificateData":"CERT","clientKeyData":"KEY",
                    "expirationTimestamp":"2026-12-07T02:30:00.5+01:30"}})",
      kV1beta1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->token.empty());
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::milliseconds>(c->expiry->time_since_epoch()).count(),
      int64_t{1796605200} * 1000 + 500);

  auto no_expiry = ParseExecCredential(
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
          "status":{"token":"abc"}})",
      kV1);
  ASSERT_TRUE(no_expiry.ok());
  EXPECT_FALSE(no_expiry->expiry.has_value());
}

TEST(ParseExecCredentialTest, InvalidOutputSaysWhatIsWrong) {
  const std::string head =
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"token: abc", "not a JSON object"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod","status":{"token":"a"}})",
       "kind"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",)"
       R"("status":{"token":"a"}})",
       "apiVersion"},
      {head + R"("spec":{}})", "no status"},
      {head + R"("status":{}})", "neither a token"},
      {head + R"("status":{"clientCertificateData":"C"}})", "only one of"},
      {head + R"("status":{"token":7}})", "status.token is not a string"},
      {head + R"("status":{"token":"a","expirationTimestamp":"tomorrow"}})", "RFC 3339"},
  };
  for (const auto& [output, mentions] : cases) {
    auto r = ParseExecCredential(output, kV1);
    ASSERT_FALSE(r.ok()) << output;
    EXPECT_NE(r.status().message().find(mentions), std::string::npos) << r.status();
  }
}

// ---- the provider: running the plugin -----------------------------------------------------------

TEST_F(ExecTest, CachedUntilShortlyBeforeExpiryThenRunAgain) {
  sluice::testing::FakeClock clock;  // 2024-01-01T00:00:00Z
  auto p = Provider(ConfigWith(CountingPlugin(), "2024-01-01T01:00:00Z"), &clock);
  auto first = p->Get();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->token, "tok-1");
  for (int i = 0; i < 5; ++i) {
    auto again = p->Get();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->get(), first->get());
  }
  clock.Advance(std::chrono::minutes(59));
  EXPECT_EQ((*p->Get())->token, "tok-1");
  EXPECT_EQ(Count(), 1);
  EXPECT_EQ(p->runs(), 1u);
  // Within the refresh margin (10 s) of the expiry: the plugin runs again.
  clock.Advance(std::chrono::seconds(55));
  EXPECT_EQ((*p->Get())->token, "tok-2");
  EXPECT_EQ(Count(), 2);
  // The new credential carries the same (now past) expiry: every call runs the plugin, as a
  // credential that has expired must never be sent.
  clock.Advance(std::chrono::minutes(5));
  EXPECT_EQ((*p->Get())->token, "tok-3");
  EXPECT_EQ(Count(), 3);
}

TEST_F(ExecTest, WithoutExpiryCachedUntilInvalidated) {
  auto p = Provider(ConfigWith(CountingPlugin()));
  auto first = p->Get();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->token, "tok-1");
  EXPECT_FALSE((*first)->expiry.has_value());
  EXPECT_EQ((*p->Get())->token, "tok-1");
  EXPECT_EQ(Count(), 1);
  EXPECT_TRUE(p->Invalidate(first->get()));
  EXPECT_FALSE(p->Invalidate(first->get()));  // already dropped
  auto second = p->Get();
  EXPECT_EQ((*second)->token, "tok-2");
  EXPECT_FALSE(p->Invalidate(first->get()));  // a stale 401 does not drop the new one
  EXPECT_EQ((*p->Get())->token, "tok-2");
  EXPECT_EQ(Count(), 2);
}

TEST_F(ExecTest, ArgsEnvAndExecInfoReachThePlugin) {
  const std::string script =
      Script("dump.sh", "d='" + dir_.string() +
                            "'\n"
                            "printf '%s\\n' \"$@\" > \"$d/args\"\n"
                            "printf '%s' \"$REGION\" > \"$d/region\"\n"
                            "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$d/info\"\n"
                            "if read line; then echo has-stdin > \"$d/stdin\"; fi\n"
                            "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                            "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n");
  Config c = ConfigWith(script);
  c.server = "https://10.0.0.1:6443";
  c.ca_pem = "CA";
  c.tls_server_name = "kubernetes";
  c.proxy_url = "http://proxy:3128";
  c.exec->api_version = kV1beta1;
  c.exec->args = {"--flag", "two words"};
  c.exec->env = {{"REGION", "eu-1"}};
  c.exec->provide_cluster_info = true;
  c.exec->cluster_config_json = R"({"audience":"sluice"})";
  auto p = Provider(c);
  auto got = p->Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(ReadAll(dir_ / "args"), "--flag\ntwo words\n");
  EXPECT_EQ(ReadAll(dir_ / "region"), "eu-1");
  EXPECT_FALSE(fs::exists(dir_ / "stdin"));  // stdin is /dev/null
  Json info = Json::parse(ReadAll(dir_ / "info"));
  EXPECT_EQ(info["apiVersion"], kV1beta1);
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://10.0.0.1:6443");
  EXPECT_EQ(info["spec"]["cluster"]["certificate-authority-data"], "Q0E=");
  EXPECT_EQ(info["spec"]["cluster"]["tls-server-name"], "kubernetes");
  EXPECT_EQ(info["spec"]["cluster"]["proxy-url"], "http://proxy:3128");
  EXPECT_EQ(info["spec"]["cluster"]["config"], Json({{"audience", "sluice"}}));

  // Without provideClusterInfo the plugin learns nothing about the cluster.
  c.exec->provide_cluster_info = false;
  ASSERT_TRUE(Provider(c)->Get().ok());
  info = Json::parse(ReadAll(dir_ / "info"));
  EXPECT_FALSE(info["spec"].contains("cluster")) << info.dump();
  EXPECT_EQ(info["spec"]["interactive"], false);
}

TEST_F(ExecTest, CommandNotFoundShowsTheInstallHint) {
  Config c = ConfigWith("sluice-no-such-credential-plugin");
  c.exec->install_hint = "Install it with: apt-get install sluice-auth";
  auto r = Provider(c)->Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(r.status().message().find("sluice-no-such-credential-plugin"), std::string::npos);
  EXPECT_NE(r.status().message().find("not found"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("apt-get install sluice-auth"), std::string::npos)
      << r.status();
  auto by_path = Provider(ConfigWith((dir_ / "missing/plugin").string()))->Get();
  EXPECT_NE(by_path.status().message().find("not found"), std::string::npos) << by_path.status();
}

TEST_F(ExecTest, FailuresNameTheCommandWithItsStderrAndAreNotCached) {
  const std::string script =
      Script("flaky.sh", "d='" + dir_.string() +
                             "'\n"
                             "echo 'line one' >&2\necho 'token service unreachable' >&2\n"
                             "if [ -f \"$d/broken-output\" ]; then echo 'not json'; exit 0; fi\n"
                             "if [ ! -f \"$d/fixed\" ]; then exit 3; fi\n"
                             "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                             "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"ok\"}}'\n");
  auto p = Provider(ConfigWith(script));
  auto failed = p->Get();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnauthorized);
  const std::string& m = failed.status().message();
  EXPECT_NE(m.find(script), std::string::npos) << m;
  EXPECT_NE(m.find("user \"robot\""), std::string::npos) << m;
  EXPECT_NE(m.find("status 3"), std::string::npos) << m;
  EXPECT_NE(m.find("token service unreachable"), std::string::npos) << m;

  Write("broken-output", "");
  auto invalid = p->Get();
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("invalid ExecCredential"), std::string::npos)
      << invalid.status();
  EXPECT_NE(invalid.status().message().find(script), std::string::npos) << invalid.status();
  EXPECT_NE(invalid.status().message().find("token service unreachable"), std::string::npos);

  fs::remove(dir_ / "broken-output");
  Write("fixed", "");
  auto ok = p->Get();
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->token, "ok");
  EXPECT_EQ(p->runs(), 3u);
}

TEST_F(ExecTest, ConcurrentCallersShareOneRun) {
  // The plugin is slow on purpose, so every thread asks while the first run is under way.
  const std::string script = Script(
      "slow.sh", "d='" + dir_.string() +
                     "'\n"
                     "mkdir \"$d/lock\" 2>/dev/null || echo overlap >> \"$d/overlap\"\n"
                     "n=$(( $(cat \"$d/count\" 2>/dev/null || echo 0) + 1 ))\n"
                     "echo $n > \"$d/count\"\n"
                     "sleep 0.3\n"
                     "rmdir \"$d/lock\"\n"
                     "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                     "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%s\"}}' \"$n\"\n");
  auto p = Provider(ConfigWith(script));
  std::vector<std::thread> threads;
  std::vector<std::string> tokens(8);
  for (size_t i = 0; i < tokens.size(); ++i) {
    threads.emplace_back([&, i] {
      auto c = p->Get();
      tokens[i] = c.ok() ? (*c)->token : c.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& t : tokens) EXPECT_EQ(t, "tok-1");
  EXPECT_EQ(Count(), 1);

  // Every thread drops the credential it used and asks again: runs follow one another, never
  // overlap.
  threads.clear();
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 3; ++k) {
        auto c = p->Get();
        if (c.ok()) p->Invalidate(c->get());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(fs::exists(dir_ / "overlap"));
  EXPECT_GE(Count(), 2);
  EXPECT_EQ(static_cast<uint64_t>(Count()), p->runs());
}

}  // namespace
}  // namespace sluice::kube
