#include "tests/support/api_server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>

namespace sluice::testing {
namespace {

using nlohmann::json;

struct Reply {
  long code = 0;  // 0: no HTTP answer (connection refused, TLS failure)
  std::string body;
  std::string error;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// libcurl straight to the server with the cluster CA and a client certificate: what the fixture
// promises must hold for any HTTPS client, not only for ours.
Reply Call(const std::string& method, const std::string& url, const std::string& ca,
           const std::string& cert, const std::string& key, const std::string& body = "") {
  Reply reply;
  CURL* curl = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  if (!cert.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, cert.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, key.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.code);
  } else {
    reply.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

Reply Admin(const std::string& method, const std::string& path, const std::string& body = "") {
  TestApiServer& s = SharedApiServer();
  return Call(method, s.url() + path, s.ca_file(), s.admin_cert_file(), s.admin_key_file(), body);
}

Reply EtcdCall(const std::string& path, const json& body) {
  Reply reply;
  CURL* curl = curl_easy_init();
  const std::string url = SharedApiServer().etcd_url() + path;
  const std::string text = body.dump();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.code);
  }
  curl_easy_cleanup(curl);
  return reply;
}

// kubectl from the same cache reads the kubeconfig files exactly as any client would.
CommandResult Kubectl(const std::string& kubeconfig, std::vector<std::string> args) {
  std::vector<std::string> argv = {SharedApiServer().bin_dir() + "/kubectl",
                                   "--kubeconfig=" + kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = RunCommand(argv, std::chrono::seconds(60));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : CommandResult{};
}

json CreateConfigMap(const std::string& ns, const std::string& name) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", name}}},
             {"data", {{"k", "v"}}}};
  Reply r = Admin("POST", "/api/v1/namespaces/" + ns + "/configmaps", cm.dump());
  EXPECT_EQ(r.code, 201) << r.body << r.error;
  return json::parse(r.body, nullptr, false);
}

void EnsureNamespace(const std::string& ns) {
  json body = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
  Reply r = Admin("POST", "/api/v1/namespaces", body.dump());
  ASSERT_TRUE(r.code == 201 || r.code == 409) << r.code << " " << r.body << r.error;
}

TEST(TestApiServer, ServesThePinnedKubernetesRelease) {
  Reply r = Admin("GET", "/version");
  ASSERT_EQ(r.code, 200) << r.error << r.body;
  json version = json::parse(r.body);
  EXPECT_EQ(version.value("major", ""), "1");
  EXPECT_EQ(version.value("minor", ""), "33");
  EXPECT_EQ(version.value("gitVersion", "").rfind("v1.33.", 0), 0u) << r.body;
  EXPECT_EQ(json::parse(SharedApiServer().version_json()), version);

  EXPECT_EQ(Admin("GET", "/readyz").code, 200);
  EXPECT_EQ(SharedApiServer().url().rfind("https://127.0.0.1:", 0), 0u);
}

TEST(TestApiServer, RejectsClientsWithoutACertificate) {
  TestApiServer& s = SharedApiServer();
  // Anonymous requests are authenticated as system:anonymous, which RBAC refuses.
  Reply r = Call("GET", s.url() + "/api/v1/namespaces", s.ca_file(), "", "");
  EXPECT_EQ(r.code, 403) << r.body << r.error;
}

TEST(TestApiServer, AdminKubeconfigWorksWithKubectl) {
  TestApiServer& s = SharedApiServer();
  CommandResult version = Kubectl(s.kubeconfig_path(), {"get", "--raw", "/version"});
  ASSERT_TRUE(version.status.success()) << version.output;
  EXPECT_EQ(json::parse(version.output).value("gitVersion", ""),
            json::parse(s.version_json()).value("gitVersion", "x"));

  CommandResult whoami = Kubectl(s.kubeconfig_path(), {"auth", "whoami", "-o", "json"});
  ASSERT_TRUE(whoami.status.success()) << whoami.output;
  json info = json::parse(whoami.output)["status"]["userInfo"];
  EXPECT_EQ(info["username"], "sluice-admin");
  EXPECT_NE(info["groups"].dump().find("system:masters"), std::string::npos) << info.dump();
}

TEST(TestApiServer, UserKubeconfigCarriesUserAndGroupsForRbac) {
  TestApiServer& s = SharedApiServer();
  const std::string ns = "rbac-user-test";
  EnsureNamespace(ns);

  auto viewer = s.KubeconfigForUser("alice", {"sluice-viewers", "team-a"});
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  auto outsider = s.KubeconfigForUser("bob");
  ASSERT_TRUE(outsider.ok()) << outsider.status();
  EXPECT_NE(*viewer, *outsider);

  CommandResult whoami = Kubectl(*viewer, {"auth", "whoami", "-o", "json"});
  ASSERT_TRUE(whoami.status.success()) << whoami.output;
  json info = json::parse(whoami.output)["status"]["userInfo"];
  EXPECT_EQ(info["username"], "alice");
  EXPECT_NE(info["groups"].dump().find("sluice-viewers"), std::string::npos) << info.dump();
  EXPECT_NE(info["groups"].dump().find("team-a"), std::string::npos) << info.dump();

  // Nobody but admin may list ConfigMaps until a RoleBinding grants it to the group.
  CommandResult before = Kubectl(*viewer, {"-n", ns, "get", "configmaps"});
  EXPECT_FALSE(before.status.success());
  EXPECT_NE(before.output.find("Forbidden"), std::string::npos) << before.output;

  json role = {
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "Role"},
      {"metadata", {{"name", "configmap-reader"}}},
      {"rules",
       {{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get", "list"}}}}}};
  Reply r =
      Admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/roles", role.dump());
  ASSERT_EQ(r.code, 201) << r.body;
  json binding = {
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "RoleBinding"},
      {"metadata", {{"name", "viewers-read-configmaps"}}},
      {"roleRef",
       {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "configmap-reader"}}},
      {"subjects",
       {{{"apiGroup", "rbac.authorization.k8s.io"},
         {"kind", "Group"},
         {"name", "sluice-viewers"}}}}};
  r = Admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/rolebindings",
            binding.dump());
  ASSERT_EQ(r.code, 201) << r.body;

  // RBAC is read from kube-apiserver's informer cache, so the grant shows up shortly after.
  CommandResult after;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    after = Kubectl(*viewer, {"-n", ns, "get", "configmaps", "-o", "name"});
  } while (!after.status.success() && std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(after.status.success()) << after.output;

  CommandResult denied = Kubectl(*outsider, {"-n", ns, "get", "configmaps"});
  EXPECT_FALSE(denied.status.success());
  EXPECT_NE(denied.output.find("Forbidden"), std::string::npos) << denied.output;
}

TEST(TestApiServer, RestartedApiServerKeepsPortAndData) {
  TestApiServer& s = SharedApiServer();
  const std::string ns = "restart-test";
  EnsureNamespace(ns);
  json created = CreateConfigMap(ns, "survivor");
  const std::string uid = created["metadata"].value("uid", "");
  ASSERT_FALSE(uid.empty());
  const std::string url_before = s.url();

  ASSERT_TRUE(s.StopApiServer().ok());
  EXPECT_FALSE(s.apiserver_running());
  Reply down = Admin("GET", "/readyz");
  EXPECT_EQ(down.code, 0) << "kube-apiserver still answers after StopApiServer";
  EXPECT_TRUE(s.StopApiServer().ok()) << "stopping twice must be harmless";

  Status restarted = s.StartApiServer();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_TRUE(s.apiserver_running());
  EXPECT_EQ(s.url(), url_before);
  EXPECT_EQ(s.StartApiServer().code(), StatusCode::kFailedPrecondition);

  Reply got = Admin("GET", "/api/v1/namespaces/" + ns + "/configmaps/survivor");
  ASSERT_EQ(got.code, 200) << got.body << got.error;
  EXPECT_EQ(json::parse(got.body)["metadata"]["uid"], uid);
}

TEST(TestApiServer, CompactEtcdExpiresOldRevisions) {
  TestApiServer& s = SharedApiServer();
  const std::string ns = "compact-test";
  EnsureNamespace(ns);
  json first = CreateConfigMap(ns, "before-compaction");
  const std::string old_rv = first["metadata"].value("resourceVersion", "");
  ASSERT_FALSE(old_rv.empty());
  for (int i = 0; i < 3; ++i) CreateConfigMap(ns, "after-" + std::to_string(i));

  auto compacted = s.CompactEtcd();
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  EXPECT_GT(*compacted, std::stoll(old_rv));

  // etcd itself refuses to read below the compacted revision...
  Reply range = EtcdCall(
      "/v3/kv/range",
      {{"key", "AA=="}, {"range_end", "AA=="}, {"count_only", true}, {"revision", old_rv}});
  EXPECT_NE(range.body.find("compacted"), std::string::npos) << range.code << " " << range.body;

  // ...and kube-apiserver turns that into 410 Gone for an exact list at the old version.
  Reply list = Admin("GET", "/api/v1/namespaces/" + ns + "/configmaps?resourceVersion=" + old_rv +
                                "&resourceVersionMatch=Exact");
  EXPECT_EQ(list.code, 410) << list.body;

  // Compacting again at an unchanged revision is harmless.
  auto again = s.CompactEtcd();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GE(*again, *compacted);
}

TEST(TestApiServerStart, FailsWithAClearMessageWithoutBinaries) {
  ApiServerOptions options;
  options.bin_dir = ::testing::TempDir() + "/no-cluster-binaries-here";
  auto started = TestApiServer::Start(options);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(started.status().message().find("make deps"), std::string::npos) << started.status();

  const char* saved = std::getenv("SLUICE_K8S_BIN");
  std::string saved_value = saved ? saved : "";
  ::unsetenv("SLUICE_K8S_BIN");
  auto unset = TestApiServer::Start();
  if (saved) ::setenv("SLUICE_K8S_BIN", saved_value.c_str(), 1);
  ASSERT_FALSE(unset.ok());
  EXPECT_EQ(unset.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(unset.status().message().find("make deps"), std::string::npos) << unset.status();
}

}  // namespace
}  // namespace sluice::testing
