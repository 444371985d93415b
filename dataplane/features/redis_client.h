#pragma once

// A small Redis client over hiredis for the feature read and write paths: one blocking
// connection, pipelined commands (all sent, then all replies read: one round trip), and a
// deadline on every exchange so a slow or dead Redis costs at most the caller's budget.
//
// Not thread-safe: the server keeps one client per io thread, the materializer one per run.
// After any error the connection is closed; the next call reconnects (at most once per
// `reconnect_backoff`, so a dead Redis is not hammered by every request).
//
// Connection set-up: the host name is resolved once and its address kept (resolved again only
// after a failed connect), so a request never waits for DNS (in a pod, a cluster name goes
// through several search domains). The first connection of a client is bounded by
// `connect_timeout` alone, not by the caller's deadline: it is paid once per client (per io
// thread in the server), and a budget of a few milliseconds would otherwise leave a cold client
// no time to connect at all. Later reconnects are bounded by both.

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/api/feature_view.h"
#include "lib/base/status.h"

struct redisContext;

namespace sluice::features {

struct RedisReply {
  enum class Kind { kNil, kString, kInteger, kArray, kStatus, kError };
  Kind kind = Kind::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

// One command as its arguments (binary-safe).
using RedisCommand = std::vector<std::string_view>;

// Appends `command` to `out` in Redis's wire protocol (RESP): an array of bulk strings.
void AppendResp(const RedisCommand& command, std::string& out);

struct RedisClientOptions {
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds reconnect_backoff{500};
};

class RedisClient {
 public:
  RedisClient(api::RedisConnection connection, RedisClientOptions options = {});
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends `commands` and reads one reply per command, all within `timeout` (from the call).
  // Unavailable when Redis cannot be reached or does not answer in time (the connection is then
  // dropped); a Redis error reply is a kError element, not a failed call.
  Result<std::vector<RedisReply>> Pipeline(std::span<const RedisCommand> commands,
                                           std::chrono::microseconds timeout);

  // host:port/db, for logs.
  std::string Describe() const { return connection_.Describe(); }

 private:
  Status EnsureConnected(std::chrono::steady_clock::time_point deadline);
  void Drop();

  api::RedisConnection connection_;
  RedisClientOptions options_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point next_connect_{};
  bool connected_once_ = false;
  std::string wire_;  // the formatted commands of the current exchange, reused
  std::string resolved_;  // numeric address of connection_.host; empty until resolved
};

}  // namespace sluice::features
