#include "dataplane/router/router_flags.h"

#include <gtest/gtest.h>

#include "dataplane/router/routing_table.h"

namespace sluice::dataplane {
namespace {

TEST(RouterFlagsTest, DefaultsAndBothFlagForms) {
  auto f = ParseRouterFlags({"--model-deployment=fraud", "--namespace", "ml", "--http-port=0",
                             "--upstream-timeout-ms", "250", "--log-format=json"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->model_deployment, "fraud");
  EXPECT_EQ(f->ns, "ml");
  EXPECT_EQ(f->http_address, "0.0.0.0");
  EXPECT_EQ(f->http_port, 0);
  EXPECT_EQ(f->upstream_port, 8080);
  EXPECT_EQ(f->log_format, LogFormat::kJson);
  const ProxyOptions p = f->ToProxyOptions();
  EXPECT_EQ(p.upstream.request_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(p.upstream.connect_timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(p.model_deployment, "ml/fraud");
  EXPECT_EQ(f->ToHttpOptions().address, "0.0.0.0");
  EXPECT_EQ(f->grpc_port, 0);  // no gRPC unless asked
}

TEST(RouterFlagsTest, GrpcListenerAndUpstreamPort) {
  auto f = ParseRouterFlags({"--model-deployment=fraud", "--namespace=ml", "--grpc-port=8081",
                             "--upstream-grpc-port=9000", "--upstream-timeout-ms=700",
                             "--max-body-bytes=1048576", "--revision-header=X-Rev"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->upstream_grpc_port, 9000);
  const GrpcProxyOptions g = f->ToGrpcProxyOptions();
  EXPECT_EQ(g.port, 8081);
  EXPECT_EQ(g.address, "0.0.0.0");
  EXPECT_EQ(g.upstream_timeout, std::chrono::milliseconds(700));
  EXPECT_EQ(g.max_message_bytes, 1048576);
  EXPECT_EQ(g.revision_header, "X-Rev");
  EXPECT_EQ(g.model_deployment, "ml/fraud");
  // The gRPC message limit is an int32: a larger body limit is capped, not wrapped.
  auto big = ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--grpc-port=1",
                               "--max-body-bytes=10000000000"});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->ToGrpcProxyOptions().max_message_bytes, 2147483647);
  EXPECT_FALSE(ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--grpc-port=70000"}).ok());
}

TEST(RouterFlagsTest, RejectsWhatItCannotUse) {
  EXPECT_FALSE(ParseRouterFlags({"--namespace=ml"}).ok());
  EXPECT_FALSE(ParseRouterFlags({"--model-deployment=fraud"}).ok());
  EXPECT_FALSE(ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--bogus=1"}).ok());
  EXPECT_FALSE(
      ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--http-port=70000"}).ok());
  EXPECT_FALSE(
      ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--log-format=xml"}).ok());
  EXPECT_FALSE(
      ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--upstream-timeout-ms"}).ok());
  EXPECT_FALSE(
      ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--sticky-header=x"}).ok());
  EXPECT_TRUE(ParseRouterFlags({"--help"}).ok());
  // --version, like --help, needs nothing else.
  auto version = ParseRouterFlags({"--version"});
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_TRUE(version->version);
}

TEST(RouterFlagsTest, TlsFlagsGoTogether) {
  auto f = ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--tls-cert-file=/t/tls.crt",
                             "--tls-key-file=/t/tls.key", "--upstream-tls",
                             "--upstream-ca-file=/t/ca.crt", "--upstream-server-name=fraud.ml"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->tls());
  EXPECT_TRUE(f->upstream_tls);
  EXPECT_EQ(f->upstream_ca_file, "/t/ca.crt");
  EXPECT_EQ(f->upstream_server_name, "fraud.ml");
  // Round trip through the one definition of the command line.
  EXPECT_EQ(api::RouterCommand::Parse(f->ToCommand().ToArgs())->tls_key_file, "/t/tls.key");
  EXPECT_FALSE(f->ToHttpOptions().tls);  // the context is built (and reloaded) by main
  EXPECT_FALSE(
      ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--tls-cert-file=/t/c"}).ok());
  EXPECT_FALSE(
      ParseRouterFlags({"--model-deployment=a", "--namespace=b", "--tls-client-ca-file=/t/ca"})
          .ok());
  auto plain = ParseRouterFlags({"--model-deployment=a", "--namespace=b"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tls());
  EXPECT_FALSE(plain->upstream_tls);
}

TEST(RouterFlagsTest, StaticTrafficNeedsNoModelDeployment) {
  auto f = ParseRouterFlags({"--static-traffic=v1=100@127.0.0.1:8081", "--sticky-header=x-user"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(ParseRouterFlags({"--static-traffic=v1=100"}).ok());
}

TEST(RouterFlagsTest, UsageListsEveryFlag) {
  const std::string usage = RouterUsage();
  for (const char* flag :
       {"--model-deployment", "--namespace", "--kubeconfig", "--http-address", "--http-port",
        "--upstream-port", "--upstream-timeout-ms", "--connect-timeout-ms",
        "--max-idle-per-endpoint", "--log-format", "--drain-grace-ms", "--static-traffic",
        "--grpc-port", "--upstream-grpc-port", "--tls-cert-file", "--tls-key-file",
        "--tls-client-ca-file", "--upstream-tls", "--upstream-ca-file",
        "--upstream-server-name"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

TEST(StaticTrafficTest, ParsesRevisionsWeightsMirrorsAndEndpoints) {
  auto t = ParseStaticTraffic(
      "v1=90@127.0.0.1:8081,127.0.0.2:8081;v2=10@[::1]:9000;sh=0:20@10.0.0.1:80");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->config.targets.size(), 3u);
  EXPECT_EQ(t->config.targets[0].revision, "v1");
  EXPECT_EQ(t->config.targets[0].weight, 90);
  EXPECT_EQ(t->config.targets[2].weight, 0);
  EXPECT_EQ(t->config.targets[2].mirror_percent, 20);
  ASSERT_EQ(t->endpoints[0].second.size(), 2u);
  EXPECT_EQ(t->endpoints[0].second[1].key, "127.0.0.2:8081");
  EXPECT_EQ(t->endpoints[1].second[0].key, "[::1]:9000");
  EXPECT_TRUE(t->endpoints[0].second[0].grpc_target.empty());
  auto g = ParseStaticTraffic("v1=100@127.0.0.1:8081+9081;v2=0@[::1]:8082+9082");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->endpoints[0].second[0].key, "127.0.0.1:8081");
  EXPECT_EQ(g->endpoints[0].second[0].grpc_target, "ipv4:127.0.0.1:9081");
  EXPECT_EQ(g->endpoints[1].second[0].grpc_target, "ipv6:[::1]:9082");
  for (const char* bad :
       {"", "v1", "v1=x@127.0.0.1:1", "v1=101@127.0.0.1:1", "=5@127.0.0.1:1", "v1=5@host:1",
        "v1=5@127.0.0.1", "v1=5@127.0.0.1:0", "v1=5:200@1.2.3.4:5", "v1=5@127.0.0.1:1+",
        "v1=5@127.0.0.1:1+0", "v1=5@127.0.0.1:1+x", "v1=5@127.0.0.1+9000"}) {
    EXPECT_FALSE(ParseStaticTraffic(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace sluice::dataplane
