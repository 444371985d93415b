// The chart's RBAC against what the operator really sends. A real kube-apiserver writes an audit
// log of every request by the chart's ServiceAccount while the operator, authenticated with that
// ServiceAccount's token and bound by the rules `helm template` renders, takes a ModelDeployment
// and a FeatureView through their life. Then:
//  (a) no request was refused (403): a missing verb fails;
//  (b) every (apiGroup, resource, verb) the rendered rules grant was used at least once, but for
//      kNotInAuditLog below: an unused verb fails.
// Once with the default values (a ClusterRole), once with operator.watchNamespaces (Roles in the
// watched namespace and no ClusterRole at all).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "operator/operator.h"
#include "tests/integration/controllers/operator_env.h"
#include "tests/support/api_server.h"
#include "tests/support/process.h"

namespace sluice::controllers::it {
namespace {

using std::chrono::seconds;

const std::string kChartDir = SLUICE_CHART_DIR;
const std::string kCrdDir = SLUICE_CRD_DIR;
constexpr char kReleaseNs[] = "sluice-system";
constexpr char kModelsNs[] = "models";
// `helm template sluice`: the ServiceAccount is <release>-sluice-operator.
const std::string kUser = "system:serviceaccount:sluice-system:sluice-sluice-operator";

const kube::GroupVersionResource kClusterRolesGvr{"rbac.authorization.k8s.io", "v1", "clusterroles",
                                                  false, "ClusterRole"};
const kube::GroupVersionResource kClusterRoleBindingsGvr{
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", false, "ClusterRoleBinding"};

// (apiGroup, resource[/subresource], verb).
using Access = std::tuple<std::string, std::string, std::string>;

std::string Describe(const Access& a) {
  return (std::get<0>(a).empty() ? "core" : std::get<0>(a)) + " " + std::get<1>(a) + " " +
         std::get<2>(a);
}

// Grants that no request of the operator shows in the audit log, and why each is still needed.
// Each is still enforced here: without it a request of the operator gets a 403, which (a) catches.
const std::map<Access, std::string> kNotInAuditLog = {
    {{"sluice.dev", "modeldeployments/finalizers", "update"},
     "the owned objects it creates set blockOwnerDeletion, which the "
     "OwnerReferencesPermissionEnforcement admission plugin (on in this test) allows only to "
     "who may update the owner's finalizers: an authorization check inside the create, not a "
     "request"},
    {{"sluice.dev", "featureviews/finalizers", "update"},
     "the same for the materialization CronJob and Jobs a FeatureView owns"},
    {{"discovery.k8s.io", "endpointslices", "list"},
     "granted on in each router's Role; RBAC refuses to create a Role that grants what its creator "
     "does not hold (the router lists and watches them, the operator does not)"},
    {{"discovery.k8s.io", "endpointslices", "watch"}, "as for list"},
};

// What the rendered rules grant the ServiceAccount: access -> namespaces ("*" for cluster-wide).
using Grants = std::map<Access, std::set<std::string>>;

void AddRules(const json& role, const std::string& scope, Grants& grants) {
  for (const auto& rule : role.value("rules", json::array())) {
    for (const auto& group : rule.value("apiGroups", json::array())) {
      for (const auto& resource : rule.value("resources", json::array())) {
        for (const auto& verb : rule.value("verbs", json::array())) {
          grants[{group.get<std::string>(), resource.get<std::string>(), verb.get<std::string>()}]
              .insert(scope);
        }
      }
    }
  }
}

struct AuditUse {
  Access access;
  std::string ns;
  int code = 0;
  std::string uri;
};

// The requests of kUser in a JSON-lines audit log. A patch that created its object (201) was
// also authorized as create, so it counts as a use of create too.
std::vector<AuditUse> ReadAudit(const std::string& path) {
  std::vector<AuditUse> uses;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (e.is_discarded() || !e.is_object()) continue;
    if (e.value("user", json::object()).value("username", "") != kUser) continue;
    const json ref = e.value("objectRef", json::object());
    std::string resource = ref.value("resource", "");
    if (ref.contains("subresource")) resource += "/" + ref.value("subresource", "");
    AuditUse use{{ref.value("apiGroup", ""), resource, e.value("verb", "")},
                 ref.value("namespace", ""),
                 e.value("responseStatus", json::object()).value("code", 0),
                 e.value("requestURI", "")};
    uses.push_back(use);
    if (std::get<2>(use.access) == "patch" && use.code == 201) {
      std::get<2>(use.access) = "create";
      uses.push_back(use);
    }
  }
  return uses;
}

class RbacAuditTest : public ::testing::Test {
 protected:
  // Starts a kube-apiserver that audits kUser, installs the CRDs and what `helm template`
  // renders for the operator's identity (ServiceAccount, roles, bindings, Lease), and writes a
  // kubeconfig with a token of that ServiceAccount.
  void Install(const std::vector<std::string>& helm_set) {
    dir_ = ::testing::TempDir() + "/rbac-audit-" + std::to_string(::getpid()) + "-" +
           std::to_string(++runs_);
    ASSERT_TRUE(sluice::testing::RunCommand({"mkdir", "-p", dir_}).ok());
    audit_log_ = dir_ + "/audit.log";
    std::ofstream(dir_ + "/audit-policy.yaml")
        << "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
        << "rules:\n- level: Metadata\n  users: [\"" << kUser << "\"]\n- level: None\n";
    sluice::testing::ApiServerOptions ao;
    ao.extra_apiserver_flags = {
        "--audit-policy-file=" + dir_ + "/audit-policy.yaml",
        "--audit-log-path=" + audit_log_,
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        // Checks the finalizers grant the rules hold for blockOwnerDeletion (see kNotInAuditLog).
        "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
    };
    auto api = sluice::testing::TestApiServer::Start(ao);
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = std::move(*api);
    auto config = kube::Config::FromKubeconfig(api_->kubeconfig_path());
    ASSERT_TRUE(config.ok()) << config.status();
    auto client = kube::Client::Create(*config);
    ASSERT_TRUE(client.ok()) << client.status();
    admin_ = std::move(*client);
    Status crds = InstallCrds(*admin_, kCrdDir);
    ASSERT_TRUE(crds.ok()) << crds;
    for (const char* ns : {kReleaseNs, kModelsNs}) ASSERT_TRUE(CreateNamespace(*admin_, ns).ok());

    // Rendered exactly as `helm install sluice charts/sluice -n sluice-system` would.
    std::string cmd =
        "'" + api_->bin_dir() + "/helm' template sluice '" + kChartDir + "' -n sluice-system";
    for (const auto& s : helm_set) cmd += " --set '" + s + "'";
    cmd += " >'" + dir_ + "/rendered.yaml' 2>'" + dir_ + "/helm.err'";
    auto rendered = sluice::testing::RunCommand({"bash", "-c", cmd});
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    ASSERT_TRUE(rendered->status.success())
        << rendered->status.ToString() << ": " << sluice::testing::TailFile(dir_ + "/helm.err");
    const std::map<std::string, const kube::GroupVersionResource*> installed = {
        {"ServiceAccount", &kube::resources::kServiceAccounts},
        {"ClusterRole", &kClusterRolesGvr},
        {"ClusterRoleBinding", &kClusterRoleBindingsGvr},
        {"Role", &kRolesGvr},
        {"RoleBinding", &kRoleBindingsGvr},
        {"Lease", &kube::resources::kLeases}};
    for (const json& doc : testing::LoadYamlDocuments(dir_ + "/rendered.yaml")) {
      if (!doc.is_object()) continue;
      const std::string kind = doc.value("kind", "");
      kinds_.insert(kind);
      auto it = installed.find(kind);
      if (it == installed.end()) continue;
      const std::string ns = doc["metadata"].value("namespace", "");
      auto applied = admin_->Apply(*it->second, ns, doc, "sluice-tests", /*force=*/true);
      ASSERT_TRUE(applied.ok()) << kind << ": " << applied.status();
      if (kind == "ClusterRole") AddRules(doc, "*", grants_);
      if (kind == "Role") AddRules(doc, ns, grants_);
    }
    ASSERT_FALSE(grants_.empty()) << "no rules rendered";

    kube::WriteOptions token_request;
    token_request.subresource = "token";
    auto token = admin_->Create(kube::resources::kServiceAccounts, kReleaseNs,
                                json{{"apiVersion", "authentication.k8s.io/v1"},
                                     {"kind", "TokenRequest"},
                                     {"metadata", {{"name", "sluice-sluice-operator"}}},
                                     {"spec", {{"expirationSeconds", 3600}}}},
                                token_request);
    ASSERT_TRUE(token.ok()) << token.status();
    sa_kubeconfig_ = dir_ + "/operator.kubeconfig";
    std::ofstream(sa_kubeconfig_) << "apiVersion: v1\nkind: Config\n"
                                  << "clusters:\n- name: test\n  cluster:\n    server: "
                                  << api_->url()
                                  << "\n    certificate-authority: " << api_->ca_file() << "\n"
                                  << "users:\n- name: operator\n  user:\n    token: "
                                  << (*token)["status"]["token"].get<std::string>() << "\n"
                                  << "contexts:\n- name: operator\n  context:\n    cluster: test\n"
                                  << "    user: operator\n    namespace: " << kReleaseNs << "\n"
                                  << "current-context: operator\n";
  }

  void StartOperator(std::vector<std::string> namespaces) {
    app::OperatorOptions o;
    o.kubeconfig = sa_kubeconfig_;
    o.namespaces = std::move(namespaces);
    o.leader_elect = true;
    o.leader_election_namespace = kReleaseNs;
    o.identity = "rbac-audit";
    o.lease_duration = seconds(6);
    o.renew_deadline = seconds(4);
    o.retry_period = seconds(1);
    o.metrics_addr = {"127.0.0.1", 0};
    o.health_addr = {"127.0.0.1", 0};
    o.workers = 2;
    o.secret_recheck_period = seconds(1);
    o.workload.server_image = "registry.example/sluice:it";
    auto op = app::Operator::Create(std::move(o));
    ASSERT_TRUE(op.ok()) << op.status();
    op_ = std::move(*op);
    op_thread_ = std::thread([this] { op_result_ = op_->Run(); });
  }

  void StopOperator() {
    if (!op_) return;
    op_->Stop();
    op_thread_.join();
    EXPECT_TRUE(op_result_.ok()) << op_result_;
    op_.reset();
  }

  void TearDown() override {
    StopOperator();
    kubelet_.reset();
  }

  json Get(const kube::GroupVersionResource& gvr, const std::string& name) {
    auto got = admin_->Get(gvr, kModelsNs, name);
    return got.ok() ? *got : json::object();
  }

  bool Exists(const kube::GroupVersionResource& gvr, const std::string& name) {
    return admin_->Get(gvr, kModelsNs, name).ok();
  }

  std::vector<json> Owned(const kube::GroupVersionResource& gvr) {
    kube::ListOptions lo;
    lo.label_selector = "sluice.dev/modeldeployment=fraud";
    auto list = admin_->List(gvr, kModelsNs, lo);
    return list.ok() ? (*list)["items"].get<std::vector<json>>() : std::vector<json>{};
  }

  void ApplyMd(const json& md) {
    auto applied = admin_->Apply(kMdGvr, kModelsNs, md, "sluice-it", /*force=*/true);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  void AnnotateMd(const std::string& key, const std::string& value) {
    json patch = {{"metadata", {{"annotations", {{key, value}}}}}};
    auto patched = admin_->Patch(kMdGvr, kModelsNs, "fraud", kube::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  bool HasAnnotation(const json& object, const std::string& key) {
    return object.value("metadata", json::object())
        .value("annotations", json::object())
        .contains(key);
  }

  // A ModelDeployment from creation to deletion: first rollout, a canary to a new version and
  // the old revision's removal, HPA mode and back (the HPA deleted), a control annotation the
  // operator consumes, twice (the second Event is a patch of the first).
  void DriveModelDeployment() {
    kubelet_ = std::make_unique<FakeKubelet>(*admin_, kModelsNs);
    kubelet_->set_enabled(true);
    json md = LoadSample(kCrdDir + "/samples/fraud-modeldeployment.yaml", kModelsNs);
    md["spec"]["rollout"]["canary"]["steps"] =
        json::array({{{"weight", 10}, {"pause", "1s"}}, {{"weight", 100}, {"pause", "0s"}}});
    md["spec"]["rollout"]["canary"]["analysis"]["interval"] = "1s";
    md["spec"]["rollout"]["canary"]["analysis"]["noDataPolicy"] = "Pass";
    md["spec"]["rollout"]["scaleDownDelay"] = "1s";
    ApplyMd(md);
    ASSERT_TRUE(Eventually([&] { return Phase(Get(kMdGvr, "fraud")) == "Healthy"; }, seconds(120)))
        << Get(kMdGvr, "fraud").dump(2);
    ASSERT_TRUE(Exists(kRolesGvr, "fraud-router")) << "the router's Role was not created";
    const std::string first = StatusOf(Get(kMdGvr, "fraud")).value("stableRevision", "");
    ASSERT_FALSE(first.empty());

    // A canary to a new version; the old revision's Deployment and Service are deleted.
    md["spec"]["model"]["version"] = "2";
    md["spec"]["model"]["uri"] = "file:///models/fraud/fraud-v2.json";
    ApplyMd(md);
    ASSERT_TRUE(Eventually(
        [&] {
          const json now = Get(kMdGvr, "fraud");
          return Phase(now) == "Healthy" && StatusOf(now).value("stableRevision", "") != first;
        },
        seconds(120)))
        << Get(kMdGvr, "fraud").dump(2);
    ASSERT_TRUE(Eventually(
        [&] {
          for (const auto& gvr : {kube::resources::kDeployments, kube::resources::kServices}) {
            for (const json& o : Owned(gvr)) {
              if (o["metadata"].value("labels", json::object()).value("sluice.dev/revision", "") ==
                  first) {
                return false;
              }
            }
          }
          return true;
        },
        seconds(120)))
        << "revision " << first << " was not removed";

    // HPA mode creates an HPA per revision; back to fixed replicas deletes it.
    json hpa_md = md;
    hpa_md["spec"].erase("replicas");
    hpa_md["spec"]["autoscaling"] = {{"mode", "HPA"}, {"minReplicas", 1}, {"maxReplicas", 3}};
    ApplyMd(hpa_md);
    ASSERT_TRUE(Eventually(
        [&] { return !Owned(kube::resources::kHorizontalPodAutoscalers).empty(); }, seconds(60)))
        << Get(kMdGvr, "fraud").dump(2);
    ApplyMd(md);
    ASSERT_TRUE(Eventually(
        [&] { return Owned(kube::resources::kHorizontalPodAutoscalers).empty(); }, seconds(60)))
        << "the HPA outlived HPA mode";

    // sluice.dev/promote with no rollout in progress: consumed (a merge patch), and an Event.
    for (int i = 0; i < 2; ++i) {
      AnnotateMd("sluice.dev/promote", "true");
      ASSERT_TRUE(Eventually(
          [&] { return !HasAnnotation(Get(kMdGvr, "fraud"), "sluice.dev/promote"); }, seconds(60)))
          << "the promote annotation was not consumed";
    }
    ASSERT_TRUE(Eventually(
        [&] {
          auto events = admin_->List(kube::resources::kEvents, kModelsNs, {});
          if (!events.ok()) return false;
          for (const auto& e : (*events)["items"]) {
            if (e.value("reason", "") == "ControlIgnored" && e.value("count", 0) >= 2) return true;
          }
          return false;
        },
        seconds(60)))
        << "the repeated Event was not counted";

    auto deleted = admin_->Delete(kMdGvr, kModelsNs, "fraud");
    ASSERT_TRUE(deleted.ok()) << deleted;
  }

  // A FeatureView from creation to deletion: its Secret missing, then there (one GET each time);
  // the CronJob of its schedule and the Job at creation; a materialization on request (a Job,
  // the annotation consumed); the schedule removed (the CronJob deleted).
  void DriveFeatureView() {
    json fv = LoadSample(kCrdDir + "/samples/fraud-featureviews.yaml", kModelsNs);
    ASSERT_EQ(fv["metadata"]["name"], "card-features");
    auto applied = admin_->Apply(kFvGvr, kModelsNs, fv, "sluice-it", /*force=*/true);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_TRUE(Eventually(
        [&] {
          return ConditionReason(Get(kFvGvr, "card-features"), "Degraded").rfind("True/", 0) == 0;
        },
        seconds(60)))
        << Get(kFvGvr, "card-features").dump(2);
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", "fraud-redis"}, {"namespace", kModelsNs}}},
                   {"stringData", {{"connection", "redis.example:6379"}}}};
    auto created = admin_->Create(kube::resources::kSecrets, kModelsNs, secret);
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_TRUE(Eventually(
        [&] {
          return ConditionReason(Get(kFvGvr, "card-features"), "Degraded").rfind("True/", 0) != 0;
        },
        seconds(60)))
        << Get(kFvGvr, "card-features").dump(2);
    ASSERT_TRUE(
        Eventually([&] { return Exists(kCronJobs, "card-features-materialize"); }, seconds(60)));

    json annotate = {{"metadata", {{"annotations", {{"sluice.dev/materialize", "now"}}}}}};
    auto patched =
        admin_->Patch(kFvGvr, kModelsNs, "card-features", kube::PatchType::kMerge, annotate.dump());
    ASSERT_TRUE(patched.ok()) << patched.status();
    ASSERT_TRUE(Eventually(
        [&] { return !HasAnnotation(Get(kFvGvr, "card-features"), "sluice.dev/materialize"); },
        seconds(60)))
        << "the materialize annotation was not consumed";
    ASSERT_TRUE(Eventually(
        [&] {
          auto jobs = admin_->List(kJobs, kModelsNs, {});
          return jobs.ok() && (*jobs)["items"].size() >= 2;
        },
        seconds(60)))
        << "no Job for the requested materialization";

    fv["spec"].erase("materialization");
    applied = admin_->Apply(kFvGvr, kModelsNs, fv, "sluice-it", /*force=*/true);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_TRUE(
        Eventually([&] { return !Exists(kCronJobs, "card-features-materialize"); }, seconds(60)))
        << "the CronJob outlived the schedule";

    auto deleted = admin_->Delete(kFvGvr, kModelsNs, "card-features");
    ASSERT_TRUE(deleted.ok()) << deleted;
  }

  // The leader's Lease deleted under it: the operator creates it again.
  void DeleteLease() {
    auto deleted = admin_->Delete(kube::resources::kLeases, kReleaseNs, "sluice-operator");
    ASSERT_TRUE(deleted.ok()) << deleted;
    ASSERT_TRUE(Eventually(
        [&] {
          auto lease = admin_->Get(kube::resources::kLeases, kReleaseNs, "sluice-operator");
          return lease.ok() &&
                 (*lease).value("spec", json::object()).value("holderIdentity", "") == "rbac-audit";
        },
        seconds(60)))
        << "the Lease was not created again";
  }

  void WaitLeading() {
    ASSERT_TRUE(Eventually(
        [&] {
          auto lease = admin_->Get(kube::resources::kLeases, kReleaseNs, "sluice-operator");
          return lease.ok() &&
                 (*lease).value("spec", json::object()).value("holderIdentity", "") == "rbac-audit";
        },
        seconds(60)))
        << "the operator never took the chart's Lease";
  }

  // Every path, in order; stops at the first that fails. The audit log is checked either way:
  // a path that failed because a request was refused is reported as that request.
  void DriveAll() {
    ASSERT_NO_FATAL_FAILURE(WaitLeading());
    ASSERT_NO_FATAL_FAILURE(DriveFeatureView());
    ASSERT_NO_FATAL_FAILURE(DriveModelDeployment());
    ASSERT_NO_FATAL_FAILURE(DeleteLease());
  }

  // (a) and (b) over the audit log.
  void CheckAudit() {
    StopOperator();
    const std::vector<AuditUse> uses = ReadAudit(audit_log_);
    ASSERT_GT(uses.size(), 50u) << "the audit log holds too little of the operator: " << audit_log_;
    std::map<Access, int> counts;
    for (const auto& u : uses) ++counts[u.access];
    for (const auto& [access, n] : counts) {
      std::fprintf(stderr, "[audit] %-60s %5d\n", Describe(access).c_str(), n);
    }
    for (const auto& u : uses) {
      EXPECT_NE(u.code, 403) << "refused: " << Describe(u.access) << " ns=" << u.ns << " " << u.uri;
    }
    for (const auto& [access, scopes] : grants_) {
      if (kNotInAuditLog.count(access)) continue;
      for (const std::string& scope : scopes) {
        bool used = false;
        for (const auto& u : uses) {
          if (u.access == access && u.code != 403 && (scope == "*" || u.ns == scope)) used = true;
        }
        EXPECT_TRUE(used) << "granted but never used: " << Describe(access) << " in "
                          << (scope == "*" ? "the ClusterRole" : "the Role in " + scope)
                          << "; remove it from charts/sluice/templates/rbac.yaml, or drive the "
                             "path that uses it here";
      }
    }
    // The allow-list names only grants the chart still makes.
    for (const auto& [access, why] : kNotInAuditLog) {
      EXPECT_TRUE(grants_.count(access)) << "allow-listed but not granted: " << Describe(access);
    }
  }

  const kube::GroupVersionResource kCronJobs{"batch", "v1", "cronjobs", true, "CronJob"};
  const kube::GroupVersionResource kJobs{"batch", "v1", "jobs", true, "Job"};

  static inline int runs_ = 0;
  std::string dir_;
  std::string audit_log_;
  std::string sa_kubeconfig_;
  std::unique_ptr<sluice::testing::TestApiServer> api_;
  std::unique_ptr<kube::Client> admin_;
  std::set<std::string> kinds_;
  Grants grants_;
  std::unique_ptr<FakeKubelet> kubelet_;
  std::unique_ptr<app::Operator> op_;
  std::thread op_thread_;
  Status op_result_;
};

TEST_F(RbacAuditTest, AllNamespacesClusterRoleMatchesWhatTheOperatorSends) {
  ASSERT_NO_FATAL_FAILURE(Install({}));
  EXPECT_TRUE(kinds_.count("ClusterRole"));
  // Secrets: get only, and the only verb granted on them.
  EXPECT_TRUE(grants_.count({"", "secrets", "get"}));
  for (const auto& [access, scopes] : grants_) {
    if (std::get<1>(access) == "secrets") {
      EXPECT_EQ(std::get<2>(access), "get");
    }
  }
  ASSERT_NO_FATAL_FAILURE(StartOperator({}));
  DriveAll();
  CheckAudit();
}

TEST_F(RbacAuditTest, WatchedNamespacesRolesMatchWhatTheOperatorSends) {
  ASSERT_NO_FATAL_FAILURE(Install({"operator.watchNamespaces={models}"}));
  // Nothing cluster-wide: the operator reads no cluster-scoped object.
  EXPECT_FALSE(kinds_.count("ClusterRole"));
  EXPECT_FALSE(kinds_.count("ClusterRoleBinding"));
  for (const auto& [access, scopes] : grants_) {
    EXPECT_FALSE(scopes.count("*")) << Describe(access);
    const bool lease = std::get<1>(access) == "leases";
    for (const auto& ns : scopes) EXPECT_EQ(ns, lease ? kReleaseNs : kModelsNs) << Describe(access);
  }
  ASSERT_NO_FATAL_FAILURE(StartOperator({kModelsNs}));
  DriveAll();
  CheckAudit();
}

}  // namespace
}  // namespace sluice::controllers::it
