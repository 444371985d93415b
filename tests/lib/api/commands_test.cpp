// The command lines the operator writes for sluice-server and sluice-router: what ToArgs writes,
// Parse reads back unchanged.

#include <gtest/gtest.h>

#include "lib/api/router_command.h"
#include "lib/api/server_command.h"

namespace sluice::api {
namespace {

using namespace std::chrono_literals;

const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

ServerCommand EveryServerField() {
  ServerCommand c;
  c.help = false;
  c.version = false;
  c.http_address = "10.0.0.1";
  c.http_port = 8080;
  c.port_file = "/tmp/port";
  c.grpc_port = 8081;
  c.io_threads = 2;
  c.tls_cert_file = "/etc/sluice/tls/tls.crt";
  c.tls_key_file = "/etc/sluice/tls/tls.key";
  c.tls_client_ca_file = "/etc/sluice/tls/ca.crt";
  c.admin_port = 9090;
  c.model_name = "fraud";
  c.model_version = "2";
  c.model_uri = "file:///models/fraud.json";
  c.model_format = "xgboost-json";
  c.model_sha256 = kHex;
  c.s3_endpoint = "http://minio.storage:9000";
  c.s3_region = "eu-west-1";
  c.s3_addressing_style = "path";
  c.model_dir = "/var/lib/sluice/models";
  c.batching = true;
  c.max_batch_size = 64;
  c.max_queue_delay = 500us;
  c.batch_inline_when_idle = false;
  c.max_queue_size = 4096;
  c.request_timeout_ms = 100;
  c.cache = true;
  c.cache_capacity = 50000;
  c.cache_capacity_bytes = 1 << 20;
  c.cache_ttl = 5min;
  c.max_body_bytes = 1000;
  c.max_header_bytes = 2000;
  c.header_timeout_ms = 1;
  c.body_timeout_ms = 2;
  c.idle_timeout_ms = 3;
  c.drain_grace_ms = 4;
  c.drain_timeout_ms = 5;
  c.drain_idle_timeout_ms = 6;
  c.fault_error_percent = 7;
  c.fault_delay_ms = 8;
  c.log_format = "json";
  c.log_level = "debug";
  return c;
}

TEST(ServerCommandTest, ParseReadsBackWhatToArgsWrites) {
  const ServerCommand c = EveryServerField();
  const std::vector<std::string> args = c.ToArgs();
  EXPECT_EQ(args.size(), 42u);  // one per field
  auto back = ServerCommand::Parse(args);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);

  const ServerCommand empty;
  EXPECT_TRUE(empty.ToArgs().empty());
  EXPECT_EQ(*ServerCommand::Parse({}), empty);
}

TEST(ServerCommandTest, TheDigestIsBareHexInsideAndPrefixedOnTheCommandLine) {
  ServerCommand c;
  c.model_sha256 = kHex;
  EXPECT_EQ(c.ToArgs(), std::vector<std::string>{"--model-sha256=sha256:" + kHex});
  EXPECT_EQ(Sha256Digest(kHex), "sha256:" + kHex);
  for (const std::string& bad : {kHex, "sha256:" + kHex.substr(1), "sha256:" + kHex + "0",
                                 "sha256:" + std::string(64, 'A'), "md5:" + kHex}) {
    auto parsed = ServerCommand::Parse({"--model-sha256=" + bad});
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("--model-sha256"), std::string::npos);
  }
}

TEST(ServerCommandTest, DurationsAndExtraArgs) {
  auto c = ServerCommand::Parse({"--max-queue-delay=2ms", "--cache-ttl", "1m30s"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_queue_delay, 2ms);
  EXPECT_EQ(c->cache_ttl, 90s);
  EXPECT_FALSE(ServerCommand::Parse({"--max-queue-delay=11s"}).ok());
  EXPECT_FALSE(ServerCommand::Parse({"--model-format=onnx"}).ok());
  EXPECT_FALSE(ServerCommand::Parse({"--s3-addressing-style=dns"}).ok());
  EXPECT_FALSE(ServerCommand::Parse({"--log-format=xml"}).ok());

  ServerCommand with_extra;
  with_extra.model_uri = "m.json";
  with_extra.extra_args = {"--max-batch-size=8", "--log-level=debug"};
  const auto args = with_extra.ToArgs();
  ASSERT_EQ(args.size(), 3u);
  EXPECT_EQ(args.back(), "--log-level=debug");  // the user's arguments come last and win
  auto parsed = ServerCommand::Parse(args);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->max_batch_size, 8);
}

TEST(RouterCommandTest, ParseReadsBackWhatToArgsWrites) {
  RouterCommand c;
  c.help = false;
  c.version = false;
  c.model_deployment = "fraud";
  c.ns = "ml";
  c.kubeconfig = "/k";
  c.context = "ctx";
  c.static_traffic = "v1=100@127.0.0.1:1";
  c.sticky_header = "x-user";
  c.http_address = "0.0.0.0";
  c.http_port = 8080;
  c.port_file = "/tmp/p";
  c.grpc_port = 8081;
  c.io_threads = 1;
  c.admin_port = 9090;
  c.admin_port_file = "/tmp/admin";
  c.tls_cert_file = "/t/tls.crt";
  c.tls_key_file = "/t/tls.key";
  c.tls_client_ca_file = "/t/client-ca.crt";
  c.upstream_port = 9000;
  c.upstream_grpc_port = 9001;
  c.upstream_timeout_ms = 10;
  c.connect_timeout_ms = 11;
  c.max_idle_per_endpoint = 12;
  c.upstream_idle_timeout_ms = 13;
  c.max_mirror_inflight = 14;
  c.revision_header = "x-rev";
  c.upstream_tls = true;
  c.upstream_ca_file = "/t/ca.crt";
  c.upstream_server_name = "fraud.ml.svc";
  c.max_body_bytes = 15;
  c.max_header_bytes = 2048;
  c.header_timeout_ms = 16;
  c.body_timeout_ms = 17;
  c.idle_timeout_ms = 18;
  c.drain_grace_ms = 19;
  c.drain_timeout_ms = 20;
  c.drain_idle_timeout_ms = 21;
  c.sync_timeout_ms = 22;
  c.log_format = "text";
  c.log_level = "warn";
  const auto args = c.ToArgs();
  EXPECT_EQ(args.size(), 40u);  // one per field
  auto back = RouterCommand::Parse(args);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  EXPECT_FALSE(RouterCommand::Parse({"--upstream-port=0"}).ok());
  EXPECT_FALSE(RouterCommand::Parse({"--admin-port=65536"}).ok());
  auto bad = RouterCommand::Parse({"--bogus"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown flag --bogus");
}

}  // namespace
}  // namespace sluice::api
