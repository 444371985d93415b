// sluice-bench-feature-writer: HSETs one entity's row of a feature view into Redis as Feast's
// Redis online store writes it (entity key v3 + project, murmur3 fields, Value and Timestamp
// protos), with DOUBLE values first, first+1, ... and the event time now.
//
//   sluice-bench-feature-writer HOST:PORT PROJECT VIEW JOIN_KEY=STRING_VALUE FIRST f1 [f2 ...]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dataplane/features/feast_codec.h"
#include "dataplane/features/redis_client.h"

int main(int argc, char** argv) {
  using namespace sluice;
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s HOST:PORT PROJECT VIEW JOIN_KEY=VALUE FIRST FEATURE...\n",
                 argv[0]);
    return 2;
  }
  auto connection = api::RedisConnection::Parse(argv[1]);
  if (!connection.ok()) {
    std::fprintf(stderr, "%s\n", connection.status().message().c_str());
    return 2;
  }
  const std::string project = argv[2], view = argv[3], entity = argv[4];
  const auto eq = entity.find('=');
  if (eq == std::string::npos) {
    std::fprintf(stderr, "entity must be JOIN_KEY=VALUE\n");
    return 2;
  }
  const std::string join_key = entity.substr(0, eq);
  const features::FeastValue key_value = features::FeastValue::String(entity.substr(eq + 1));
  const features::EntityKeyPart parts[] = {{join_key, &key_value}};
  auto key = features::RedisKey(parts, project);
  if (!key.ok()) {
    std::fprintf(stderr, "%s\n", key.status().message().c_str());
    return 2;
  }
  const double first = std::atof(argv[5]);
  std::vector<std::string> args = {"HSET", *key};
  for (int i = 6; i < argc; ++i) {
    args.push_back(features::FeatureField(view, argv[i]));
    args.push_back(features::EncodeValue(features::FeastValue::Double(first + (i - 6))));
  }
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now);
  args.push_back(features::TimestampField(view));
  args.push_back(features::EncodeTimestamp(
      secs.count(), static_cast<int32_t>(
                        std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count())));
  const features::RedisCommand cmd(args.begin(), args.end());
  features::RedisClient client(*connection);
  auto r =
      client.Pipeline(std::span<const features::RedisCommand>(&cmd, 1), std::chrono::seconds(5));
  if (!r.ok() || (*r)[0].kind == features::RedisReply::Kind::kError) {
    std::fprintf(stderr, "HSET failed: %s\n",
                 r.ok() ? (*r)[0].str.c_str() : r.status().message().c_str());
    return 1;
  }
  return 0;
}
