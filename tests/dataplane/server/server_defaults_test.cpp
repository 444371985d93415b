// sluice-server started by hand behaves like one the operator started from a ModelDeployment
// that leaves the same settings out: the server's standalone defaults equal the CRD's defaults
// (which the API server fills in, and the operator passes on as they are).

#include <gtest/gtest.h>

#include <chrono>

#include "dataplane/server/server_flags.h"
#include "lib/base/duration.h"
#include "tests/lib/api/yaml_json.h"

namespace sluice::dataplane {
namespace {

using nlohmann::json;

const json& Property(const json& schema, std::initializer_list<const char*> path) {
  const json* at = &schema;
  for (const char* name : path) at = &at->at("properties").at(name);
  return *at;
}

std::chrono::nanoseconds Duration(const json& text) {
  auto d = ParseGoDuration(text.get<std::string>());
  EXPECT_TRUE(d.ok()) << text;
  return d.ok() ? *d : std::chrono::nanoseconds(-1);
}

TEST(ServerDefaultsTest, EqualTheCrdDefaults) {
  const json schema =
      controllers::testing::LoadCrdSchema(SLUICE_CRD_DIR "/sluice.dev_modeldeployments.yaml");
  const json& model = Property(schema, {"spec", "model"});
  const json& batching = Property(schema, {"spec", "runtime", "batching"});
  const json& cache = Property(schema, {"spec", "runtime", "cache"});
  const ServerFlags server;

  EXPECT_EQ(Property(model, {"format"}).at("default"), server.model_format);
  EXPECT_EQ(Property(batching, {"maxBatchSize"}).at("default"), server.max_batch_size);
  EXPECT_EQ(Duration(Property(batching, {"maxQueueDelay"}).at("default")),
            std::chrono::microseconds(server.max_queue_delay_us));
  EXPECT_EQ(Property(batching, {"maxQueueSize"}).at("default"), server.max_queue_size);
  EXPECT_EQ(Property(cache, {"capacity"}).at("default"), server.cache_capacity);
  EXPECT_EQ(Duration(Property(cache, {"ttl"}).at("default")),
            std::chrono::milliseconds(server.cache_ttl_ms));
  // cache.enabled defaults to true once a cache object is given; no object means no cache, which
  // is the server's default.
  EXPECT_EQ(Property(cache, {"enabled"}).at("default"), true);
  EXPECT_FALSE(server.cache);

  // And the command line the server shows as its defaults says the same.
  const api::ServerCommand shown = server.ToCommand();
  EXPECT_EQ(shown.max_queue_delay, std::chrono::microseconds(server.max_queue_delay_us));
  EXPECT_EQ(shown.cache_capacity, server.cache_capacity);
}

}  // namespace
}  // namespace sluice::dataplane
