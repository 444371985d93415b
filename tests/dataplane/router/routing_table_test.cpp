#include "dataplane/router/routing_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "lib/http/metrics_exposition.h"
#include "dataplane/router/traffic_source.h"

namespace sluice::dataplane {
namespace {

using nlohmann::json;
using EndpointList = std::vector<std::pair<std::string, std::vector<Endpoint>>>;

std::vector<Endpoint> Eps(std::initializer_list<const char*> ips, uint16_t port = 8080) {
  std::vector<Endpoint> out;
  for (const char* ip : ips) out.push_back(MakeEndpoint(ip, port));
  return out;
}

std::map<std::string, int> Picks(const RoutingTable& t, int n) {
  std::map<std::string, int> out;
  for (int i = 0; i < n; ++i) ++out[t.revision(t.PickRevision("")).name];
  return out;
}

TEST(RoutingTableTest, ExactRatiosAndAWeightChangeMidStream) {
  TrafficConfig config{{{"stable", 90, 0}, {"canary", 10, 0}}, ""};
  EndpointList eps = {{"stable", Eps({"10.0.0.1"})}, {"canary", Eps({"10.0.0.2"})}};
  auto t1 = RoutingTable::Build(config, eps, nullptr, nullptr);
  auto partial = Picks(*t1, 37);  // 3 whole periods of 10 and part of a fourth
  EXPECT_TRUE(partial["canary"] == 3 || partial["canary"] == 4) << partial["canary"];
  // From wherever the stream stands, the next 100 picks hold exactly 10/90.
  EXPECT_EQ(Picks(*t1, 100), (std::map<std::string, int>{{"canary", 10}, {"stable", 90}}));

  config.targets = {{"stable", 50, 0}, {"canary", 50, 0}};
  auto t2 = RoutingTable::Build(config, eps, nullptr, t1.get());
  EXPECT_EQ(Picks(*t2, 100), (std::map<std::string, int>{{"canary", 50}, {"stable", 50}}));
  config.targets = {{"stable", 0, 0}, {"canary", 100, 0}};
  auto t3 = RoutingTable::Build(config, eps, nullptr, t2.get());
  EXPECT_EQ(Picks(*t3, 100), (std::map<std::string, int>{{"canary", 100}}));
}

TEST(RoutingTableTest, EndpointChurnKeepsThePickCounter) {
  TrafficConfig config{{{"a", 90, 0}, {"b", 10, 0}}, ""};
  auto t1 = RoutingTable::Build(config, {{"a", Eps({"10.0.0.1"})}, {"b", Eps({"10.0.0.2"})}},
                                nullptr, nullptr);
  auto first = Picks(*t1, 55);
  // A new pod of `a`: same effective weights, so the schedule continues where it was.
  auto t2 = RoutingTable::Build(
      config, {{"a", Eps({"10.0.0.1", "10.0.0.3"})}, {"b", Eps({"10.0.0.2"})}}, nullptr, t1.get());
  auto second = Picks(*t2, 45);
  EXPECT_EQ(first["b"] + second["b"], 10);
  EXPECT_EQ(first["a"] + second["a"], 90);
}

TEST(RoutingTableTest, ConcurrentPicksStayExact) {
  TrafficConfig config{{{"a", 70, 0}, {"b", 30, 0}}, ""};
  auto t = RoutingTable::Build(config, {{"a", Eps({"10.0.0.1"})}, {"b", Eps({"10.0.0.2"})}},
                               nullptr, nullptr);
  std::atomic<int> b{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 2500; ++k) {
        if (t->PickRevision("") == 1) b.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(b.load(), 3000);
}

TEST(RoutingTableTest, RevisionWithoutEndpointsGivesItsShareToTheOthers) {
  TrafficConfig config{{{"stable", 90, 0}, {"canary", 10, 0}}, ""};
  auto t = RoutingTable::Build(config, {{"stable", Eps({"10.0.0.1"})}, {"canary", {}}}, nullptr,
                               nullptr);
  EXPECT_TRUE(t->routable());
  EXPECT_EQ(Picks(*t, 100), (std::map<std::string, int>{{"stable", 100}}));

  auto none = RoutingTable::Build(config, {{"stable", {}}, {"canary", {}}}, nullptr, nullptr);
  EXPECT_FALSE(none->routable());
  EXPECT_EQ(none->PickRevision(""), -1);
  EXPECT_EQ(none->PickRevision("user"), -1);
  EXPECT_FALSE(RoutingTable::Build({}, {}, nullptr, nullptr)->routable());
}

TEST(RoutingTableTest, EndpointsRoundRobin) {
  TrafficConfig config{{{"a", 100, 0}}, ""};
  auto t = RoutingTable::Build(config, {{"a", Eps({"10.0.0.1", "10.0.0.2", "10.0.0.3"})}}, nullptr,
                               nullptr);
  std::map<std::string, int> seen;
  for (int i = 0; i < 300; ++i) ++seen[t->PickEndpoint(0).key];
  EXPECT_EQ(seen, (std::map<std::string, int>{
                      {"10.0.0.1:8080", 100}, {"10.0.0.2:8080", 100}, {"10.0.0.3:8080", 100}}));
}

TEST(RoutingTableTest, StickyCallersStayWhileWeightsHoldAndFollowTheWeights) {
  TrafficConfig config{{{"stable", 80, 0}, {"canary", 20, 0}}, "x-user"};
  EndpointList eps = {{"stable", Eps({"10.0.0.1"})}, {"canary", Eps({"10.0.0.2"})}};
  auto t1 = RoutingTable::Build(config, eps, nullptr, nullptr);
  EXPECT_EQ(t1->sticky_header(), "x-user");
  std::map<std::string, int> first;
  int canary = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const int r = t1->PickRevision(user);
    first[user] = r;
    canary += r == 1 ? 1 : 0;
    // Repeated calls, interleaved with weighted picks, give the same answer.
    t1->PickRevision("");
    EXPECT_EQ(t1->PickRevision(user), r);
  }
  EXPECT_GT(canary, 300);
  EXPECT_LT(canary, 500);
  // A rebuilt table with the same weights (say, an endpoint changed) keeps every caller.
  auto t2 = RoutingTable::Build(
      config, {{"stable", Eps({"10.0.0.1", "10.0.0.9"})}, {"canary", Eps({"10.0.0.2"})}}, nullptr,
      t1.get());
  for (const auto& [user, r] : first) ASSERT_EQ(t2->PickRevision(user), r) << user;
  // Growing the canary only moves callers towards it: nobody on the canary leaves it.
  TrafficConfig grown{{{"stable", 50, 0}, {"canary", 50, 0}}, "x-user"};
  auto t3 = RoutingTable::Build(grown, eps, nullptr, t2.get());
  int moved = 0;
  for (const auto& [user, r] : first) {
    const int now = t3->PickRevision(user);
    if (r == 1) {
      ASSERT_EQ(now, 1) << user;
    }
    moved += now != r ? 1 : 0;
  }
  EXPECT_GT(moved, 400);
}

TEST(RoutingTableTest, MirrorShareOfAShadow) {
  TrafficConfig config{{{"stable", 100, 0}, {"shadow", 0, 25}}, ""};
  auto t = RoutingTable::Build(
      config, {{"stable", Eps({"10.0.0.1"})}, {"shadow", Eps({"10.0.0.2"})}}, nullptr, nullptr);
  ASSERT_TRUE(t->revision(1).mirror);
  EXPECT_FALSE(t->revision(0).mirror);
  int mirrored = 0;
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(t->PickRevision(""), 0);  // weight 0: never primary
    mirrored += t->revision(1).mirror->Take() ? 1 : 0;
  }
  EXPECT_EQ(mirrored, 100);
  // No endpoints: nothing to mirror to.
  auto dark = RoutingTable::Build(config, {{"stable", Eps({"10.0.0.1"})}, {"shadow", {}}}, nullptr,
                                  nullptr);
  EXPECT_FALSE(dark->revision(1).mirror);
  EXPECT_EQ(t->Describe(), "stable=100 (1 endpoint), mirror shadow 25% (1 endpoint)");
}

TEST(RoutingTableTest, PublishesGaugesAndKeepsCountersOfRetiredRevisions) {
  auto registry = std::make_shared<prometheus::Registry>();
  RouterMetrics metrics(registry);
  TrafficConfig config{{{"r1", 90, 0}, {"r2", 10, 0}}, ""};
  RoutingTable::Build(config, {{"r1", Eps({"10.0.0.1", "10.0.0.2"})}, {"r2", Eps({"10.0.0.3"})}},
                      &metrics, nullptr);
  std::string text = RenderPrometheusText(*registry);
  EXPECT_NE(text.find("sluice_router_traffic_weight{revision=\"r2\"} 10"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_router_endpoints{revision=\"r1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("sluice_router_requests_total{code=\"5xx\",revision=\"r2\"} 0"),
            std::string::npos)
      << text;
  metrics.ForRevision("r2").CountRequest(CodeClass::k5xx);
  RoutingTable::Build({{{"r1", 100, 0}}, ""}, {{"r1", Eps({"10.0.0.1"})}}, &metrics, nullptr);
  text = RenderPrometheusText(*registry);
  EXPECT_NE(text.find("sluice_router_traffic_weight{revision=\"r2\"} 0"), std::string::npos);
  EXPECT_NE(text.find("sluice_router_endpoints{revision=\"r2\"} 0"), std::string::npos);
  EXPECT_NE(text.find("sluice_router_requests_total{code=\"5xx\",revision=\"r2\"} 1"),
            std::string::npos);
}

TEST(RouterMetricsTest, ClassifiesStatuses) {
  EXPECT_EQ(ClassifyStatus(200), CodeClass::k2xx);
  EXPECT_EQ(ClassifyStatus(204), CodeClass::k2xx);
  EXPECT_EQ(ClassifyStatus(302), CodeClass::k3xx);
  EXPECT_EQ(ClassifyStatus(400), CodeClass::k4xx);
  EXPECT_EQ(ClassifyStatus(499), CodeClass::k4xx);
  EXPECT_EQ(ClassifyStatus(500), CodeClass::k5xx);
  EXPECT_EQ(ClassifyStatus(503), CodeClass::k5xx);
  EXPECT_EQ(ClassifyStatus(100), CodeClass::kError);
  EXPECT_EQ(ClassifyStatus(0), CodeClass::kError);
  EXPECT_EQ(ClassifyStatus(600), CodeClass::kError);
  EXPECT_EQ(CodeClassLabel(CodeClass::k2xx), "2xx");
  EXPECT_EQ(CodeClassLabel(CodeClass::k3xx), "3xx");
  EXPECT_EQ(CodeClassLabel(CodeClass::k4xx), "4xx");
  EXPECT_EQ(CodeClassLabel(CodeClass::k5xx), "5xx");
  EXPECT_EQ(CodeClassLabel(CodeClass::kError), "error");
}

TEST(RouterMetricsTest, DurationBucketsAreTheContract) {
  const std::vector<double> want = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  EXPECT_EQ(RouterMetrics::DurationBuckets(), want);
}

json Slice(const std::string& type, json ports, json endpoints) {
  return {{"addressType", type}, {"ports", std::move(ports)}, {"endpoints", std::move(endpoints)}};
}

std::vector<std::string> Keys(const std::vector<Endpoint>& eps) {
  std::vector<std::string> out;
  for (const auto& e : eps) out.push_back(e.key);
  return out;
}

TEST(EndpointsFromSlicesTest, ReadyEndpointsOnThePortNamedHttp) {
  json a = Slice("IPv4", {{{"name", "grpc"}, {"port", 9000}}, {{"name", "http"}, {"port", 8081}}},
                 {{{"addresses", {"127.0.0.2"}}, {"conditions", {{"ready", true}}}},
                  {{"addresses", {"127.0.0.3"}}, {"conditions", {{"ready", false}}}},
                  {{"addresses", {"127.0.0.4"}}}});  // no conditions: ready
  json b = Slice("IPv4", {{{"name", "http"}, {"port", 8081}}},
                 {{{"addresses", {"127.0.0.2"}}, {"conditions", {{"ready", true}}}},  // duplicate
                  {{"addresses", {"127.0.0.1"}}, {"conditions", {{"ready", true}}}}});
  EXPECT_EQ(Keys(EndpointsFromSlices({&a, &b}, 8080)),
            (std::vector<std::string>{"127.0.0.1:8081", "127.0.0.2:8081", "127.0.0.4:8081"}));
}

TEST(EndpointsFromSlicesTest, TheGrpcPortIsThePortNamedGrpcElseTheFallback) {
  json named = Slice("IPv4", {{{"name", "grpc"}, {"port", 9000}}, {{"name", "http"}, {"port", 8081}}},
                     {{{"addresses", {"10.0.0.1"}}}});
  json unnamed = Slice("IPv6", {{{"port", 7000}}}, {{{"addresses", {"fd00::1"}}}});
  auto eps = EndpointsFromSlices({&named, &unnamed}, 8080, 8181);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].key, "10.0.0.1:8081");
  EXPECT_EQ(eps[0].grpc_port, 9000);
  EXPECT_EQ(eps[0].grpc_target, "ipv4:10.0.0.1:9000");
  EXPECT_EQ(eps[1].key, "[fd00::1]:7000");
  EXPECT_EQ(eps[1].grpc_target, "ipv6:[fd00::1]:8181");
  // Without a fallback, a slice with no grpc port gives endpoints that take no gRPC calls.
  auto http_only = EndpointsFromSlices({&unnamed}, 8080);
  ASSERT_EQ(http_only.size(), 1u);
  EXPECT_EQ(http_only[0].grpc_port, 0);
  EXPECT_TRUE(http_only[0].grpc_target.empty());
}

// A revision with spec.tls says so on its Service's http port; the router then speaks TLS to it.
TEST(EndpointsFromSlicesTest, AnHttpsPortMakesTlsEndpoints) {
  json tls = Slice("IPv4",
                   {{{"name", "http"}, {"port", 8080}, {"appProtocol", "https"}},
                    {{"name", "grpc"}, {"port", 8081}}},
                   {{{"addresses", {"10.0.0.1"}}}});
  json plain = Slice("IPv4", {{{"name", "http"}, {"port", 8080}}, {{"name", "grpc"}, {"port", 8081}}},
                     {{{"addresses", {"10.0.0.2"}}}});
  auto eps = EndpointsFromSlices({&tls, &plain}, 8080);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_TRUE(eps[0].tls);
  EXPECT_FALSE(eps[1].tls);
}

TEST(EndpointsFromSlicesTest, PortFallbacks) {
  json unnamed = Slice("IPv4", {{{"port", 7000}}}, {{{"addresses", {"10.1.0.1"}}}});
  json other =
      Slice("IPv4", {{{"name", "metrics"}, {"port", 9090}}}, {{{"addresses", {"10.1.0.2"}}}});
  json none = Slice("IPv4", json::array(), {{{"addresses", {"10.1.0.3"}}}});
  EXPECT_EQ(Keys(EndpointsFromSlices({&unnamed, &other, &none}, 8080)),
            (std::vector<std::string>{"10.1.0.1:7000", "10.1.0.2:8080", "10.1.0.3:8080"}));
}

TEST(EndpointsFromSlicesTest, TerminatingButServingOnlyWhenNothingIsReady) {
  json s = Slice(
      "IPv4", {{{"name", "http"}, {"port", 8080}}},
      {{{"addresses", {"10.0.0.1"}},
        {"conditions", {{"ready", false}, {"serving", true}, {"terminating", true}}}},
       {{"addresses", {"10.0.0.2"}},
        {"conditions", {{"ready", false}, {"serving", false}, {"terminating", true}}}},
       {{"addresses", {"10.0.0.3"}}, {"conditions", {{"ready", false}, {"serving", false}}}}});
  EXPECT_EQ(Keys(EndpointsFromSlices({&s}, 8080)), (std::vector<std::string>{"10.0.0.1:8080"}));
  json ready = Slice("IPv4", {{{"name", "http"}, {"port", 8080}}},
                     {{{"addresses", {"10.0.0.4"}}, {"conditions", {{"ready", true}}}}});
  EXPECT_EQ(Keys(EndpointsFromSlices({&s, &ready}, 8080)),
            (std::vector<std::string>{"10.0.0.4:8080"}));
}

TEST(EndpointsFromSlicesTest, SkipsFqdnAndMalformed) {
  json fqdn = Slice("FQDN", json::array(), {{{"addresses", {"example.com"}}}});
  json bad = Slice("IPv4", json::array(),
                   {{{"addresses", {"not-an-ip"}}}, {{"addresses", json::array()}}, 5});
  json v6 = Slice("IPv6", json::array(), {{{"addresses", {"::1"}}}});
  json garbage = "nope";
  EXPECT_EQ(Keys(EndpointsFromSlices({&fqdn, &bad, &v6, &garbage, nullptr}, 8080)),
            (std::vector<std::string>{"[::1]:8080"}));
}

TEST(TrafficConfigTest, ReadsStatusTrafficAndStickyHeader) {
  json md = {{"apiVersion", "sluice.dev/v1alpha1"},
             {"kind", "ModelDeployment"},
             {"metadata", {{"name", "fraud"}, {"namespace", "ml"}}},
             {"spec",
              {{"model", {{"uri", "file:///m.json"}}},
               {"traffic", {{"sticky", {{"header", "x-user"}}}, {"mirror", {{"percent", 5}}}}}}},
             {"status",
              {{"traffic",
                {{{"revision", "fraud-a"}, {"weight", 90}},
                 {{"revision", "fraud-b"}, {"weight", 10}, {"mirrorPercent", 5}}}}}}};
  auto c = TrafficConfigFromModelDeployment(md);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sticky_header, "x-user");
  ASSERT_EQ(c->targets.size(), 2u);
  EXPECT_EQ(c->targets[0].revision, "fraud-a");
  EXPECT_EQ(c->targets[0].weight, 90);
  EXPECT_EQ(c->targets[0].mirror_percent, 0);
  EXPECT_EQ(c->targets[1].mirror_percent, 5);

  json no_status = md;
  no_status.erase("status");
  no_status["spec"].erase("traffic");
  auto empty = TrafficConfigFromModelDeployment(no_status);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->targets.empty());
  EXPECT_TRUE(empty->sticky_header.empty());

  json broken = md;
  broken["status"]["traffic"][0]["weight"] = "lots";
  EXPECT_FALSE(TrafficConfigFromModelDeployment(broken).ok());
}

}  // namespace
}  // namespace sluice::dataplane
