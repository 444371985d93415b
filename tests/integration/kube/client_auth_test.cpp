// Authentication and authorization through the client: client certificates, bearer tokens from
// the TokenRequest API (inline and from a token file), and RBAC turning Forbidden into allowed.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/kube/client_it_util.h"

namespace sluice::kube::it {
namespace {

using resources::kConfigMaps;

const GroupVersionResource kRoles{"rbac.authorization.k8s.io", "v1", "roles", true, "Role"};
const GroupVersionResource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", true,
                                         "RoleBinding"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Grants get/list/watch on ConfigMaps in `ns` to `subject`.
void GrantConfigMapReader(Client& admin, const std::string& ns, const Json& subject) {
  Json role = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
               {"kind", "Role"},
               {"metadata", {{"name", "cm-reader"}, {"namespace", ns}}},
               {"rules",
                {{{"apiGroups", {""}},
                  {"resources", {"configmaps"}},
                  {"verbs", {"get", "list", "watch"}}}}}};
  Json binding = {
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "RoleBinding"},
      {"metadata", {{"name", "cm-reader"}, {"namespace", ns}}},
      {"roleRef",
       {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "cm-reader"}}},
      {"subjects", {subject}}};
  ASSERT_TRUE(admin.Apply(kRoles, ns, role, "it-test").ok());
  ASSERT_TRUE(admin.Apply(kRoleBindings, ns, binding, "it-test").ok());
}

TEST(ClientAuthTest, ClientCertificateUserIsForbiddenUntilRbacAllows) {
  auto admin = AdminClient();
  const std::string ns = FreshNamespace(*admin, "cert-auth");
  ASSERT_TRUE(admin->Create(kConfigMaps, ns, ConfigMap("c")).ok());
  auto kubeconfig = sluice::testing::SharedApiServer().KubeconfigForUser("alice", {"team-a"});
  ASSERT_TRUE(kubeconfig.ok()) << kubeconfig.status();
  auto config = Config::FromKubeconfig(*kubeconfig);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->client_cert_pem.empty());
  auto alice = ClientFor(*config);

  auto denied = alice->List(kConfigMaps, ns);
  ASSERT_EQ(denied.status().code(), StatusCode::kForbidden) << denied.status();
  EXPECT_EQ(denied.status().http_status(), 403);
  EXPECT_NE(denied.status().message().find("alice"), std::string::npos) << denied.status();

  GrantConfigMapReader(
      *admin, ns,
      Json{{"kind", "Group"}, {"name", "team-a"}, {"apiGroup", "rbac.authorization.k8s.io"}});
  Result<Json> allowed = NotFound("not yet");
  ASSERT_TRUE(WaitFor([&] {
    allowed = alice->List(kConfigMaps, ns);
    return allowed.ok();
  })) << allowed.status();
  EXPECT_EQ((*allowed)["items"].size(), 1u);
  // Reading is granted, writing is not; nor is another namespace.
  EXPECT_EQ(alice->Create(kConfigMaps, ns, ConfigMap("mine")).status().code(),
            StatusCode::kForbidden);
  EXPECT_EQ(alice->List(kConfigMaps, "default").status().code(), StatusCode::kForbidden);
}

TEST(ClientAuthTest, ServiceAccountTokenFromTokenRequest) {
  auto admin = AdminClient();
  const std::string ns = FreshNamespace(*admin, "token-auth");
  ASSERT_TRUE(admin
                  ->Create(resources::kServiceAccounts, ns,
                           Json{{"apiVersion", "v1"},
                                {"kind", "ServiceAccount"},
                                {"metadata", {{"name", "robot"}}}})
                  .ok());
  WriteOptions token_sub;
  token_sub.subresource = "token";
  Json request = {{"apiVersion", "authentication.k8s.io/v1"},
                  {"kind", "TokenRequest"},
                  {"metadata", {{"name", "robot"}}},
                  {"spec", {{"expirationSeconds", 3600}}}};
  auto issued = admin->Create(resources::kServiceAccounts, ns, request, token_sub);
  ASSERT_TRUE(issued.ok()) << issued.status();
  const std::string token = (*issued)["status"]["token"];
  ASSERT_FALSE(token.empty());

  Config config;
  config.server = sluice::testing::SharedApiServer().url();
  config.ca_pem = ReadFile(sluice::testing::SharedApiServer().ca_file());
  config.bearer_token = token;
  auto robot = ClientFor(config);
  auto denied = robot->Get(kConfigMaps, ns, "x");
  ASSERT_EQ(denied.status().code(), StatusCode::kForbidden) << denied.status();
  EXPECT_NE(denied.status().message().find("system:serviceaccount:" + ns + ":robot"),
            std::string::npos)
      << denied.status();

  ASSERT_TRUE(admin->Create(kConfigMaps, ns, ConfigMap("x", {{"k", "v"}})).ok());
  GrantConfigMapReader(*admin, ns,
                       Json{{"kind", "ServiceAccount"}, {"name", "robot"}, {"namespace", ns}});
  Result<Json> got = NotFound("not yet");
  ASSERT_TRUE(WaitFor([&] {
    got = robot->Get(kConfigMaps, ns, "x");
    return got.ok();
  })) << got.status();
  EXPECT_EQ((*got)["data"]["k"], "v");

  // The same token read from a file (as in a pod), with a stale inline value ignored.
  const std::string path =
      std::filesystem::temp_directory_path() / ("sluice-it-token-" + std::to_string(getpid()));
  std::ofstream(path) << token << "\n";
  Config from_file = config;
  from_file.bearer_token = "stale";
  from_file.token_file = path;
  auto pod_like = ClientFor(from_file);
  auto via_file = pod_like->Get(kConfigMaps, ns, "x");
  EXPECT_TRUE(via_file.ok()) << via_file.status();
  std::filesystem::remove(path);

  Config bogus = config;
  bogus.bearer_token = "not-a-token";
  EXPECT_EQ(ClientFor(bogus)->Get(kConfigMaps, ns, "x").status().code(), StatusCode::kUnauthorized);

  Config untrusted = config;
  untrusted.ca_pem.clear();  // the system store does not know the test CA
  EXPECT_EQ(ClientFor(untrusted)->Get(kConfigMaps, ns, "x").status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sluice::kube::it
