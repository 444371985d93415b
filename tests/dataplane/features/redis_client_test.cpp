// The Redis client against a real redis-server: pipelining, binary safety, AUTH and SELECT, and
// what a dead, hung or restarted Redis costs a caller with a deadline.
#include "dataplane/features/redis_client.h"

#include <gtest/gtest.h>

#include "tests/support/redis_server.h"

namespace sluice::features {
namespace {

using namespace std::literals;

api::RedisConnection Connection(const testing::RedisServer& server, std::string password = "",
                                int db = 0) {
  api::RedisConnection c;
  c.host = "127.0.0.1";
  c.port = server.port();
  c.password = std::move(password);
  c.db = db;
  return c;
}

TEST(RedisClientTest, CommandsAreWrittenInResp) {
  std::string out;
  AppendResp({"HMGET", "k\x00"s, ""}, out);
  EXPECT_EQ(out, "*3\r\n$5\r\nHMGET\r\n$2\r\nk\x00\r\n$0\r\n\r\n"s);
}

TEST(RedisClientTest, PipelinesBinarySafeCommandsInOneExchange) {
  auto server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().message();
  RedisClient client(Connection(**server));
  const std::string key = "k\x00\xff"s;
  const std::string field = "\x05\x48\xe7\xef"s;
  const std::string value = "\x18\x00"s;
  const RedisCommand cmds[] = {{"HSET", key, field, value, "_ts:v", "x"},
                               {"HMGET", key, field, "_ts:v", "absent"},
                               {"NOSUCHCOMMAND"}};
  auto replies = client.Pipeline(cmds, 2s);
  ASSERT_TRUE(replies.ok()) << replies.status().message();
  ASSERT_EQ(replies->size(), 3u);
  EXPECT_EQ((*replies)[0].kind, RedisReply::Kind::kInteger);
  EXPECT_EQ((*replies)[0].integer, 2);
  ASSERT_EQ((*replies)[1].kind, RedisReply::Kind::kArray);
  ASSERT_EQ((*replies)[1].elements.size(), 3u);
  EXPECT_EQ((*replies)[1].elements[0].str, value);
  EXPECT_EQ((*replies)[1].elements[1].str, "x");
  EXPECT_EQ((*replies)[1].elements[2].kind, RedisReply::Kind::kNil);
  EXPECT_EQ((*replies)[2].kind, RedisReply::Kind::kError);
}

TEST(RedisClientTest, AuthenticatesAndSelectsTheDatabase) {
  auto server = testing::RedisServer::Start(testing::RedisServerOptions{"s3cret", ""});
  ASSERT_TRUE(server.ok()) << server.status().message();
  RedisClient client(Connection(**server, "s3cret", 3));
  const RedisCommand set[] = {{"SET", "a", "in-db-3"}};
  ASSERT_TRUE(client.Pipeline(set, 2s).ok());
  auto in3 = (*server)->Cli({"-n", "3", "GET", "a"});
  ASSERT_TRUE(in3.ok());
  EXPECT_EQ(*in3, "in-db-3\n");

  RedisClient wrong(Connection(**server, "nope"));
  auto r = wrong.Pipeline(set, 2s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("AUTH"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("nope"), std::string::npos) << "the password leaked";
}

TEST(RedisClientTest, AHungRedisCostsAtMostTheDeadline) {
  auto server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().message();
  RedisClient client(Connection(**server));
  const RedisCommand ping[] = {{"PING"}};
  ASSERT_TRUE(client.Pipeline(ping, 2s).ok());
  ASSERT_TRUE((*server)->Pause().ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Pipeline(ping, 5ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  // The deadline plus scheduling slack on a loaded machine; far below a second.
  EXPECT_LT(took, 200ms);
  ASSERT_TRUE((*server)->Resume().ok());
}

TEST(RedisClientTest, ReconnectsAfterARestartWithoutHammering) {
  auto server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().message();
  RedisClient client(Connection(**server), {.connect_timeout = 200ms, .reconnect_backoff = 50ms});
  const RedisCommand ping[] = {{"PING"}};
  ASSERT_TRUE(client.Pipeline(ping, 2s).ok());
  ASSERT_TRUE((*server)->Stop().ok());
  auto down = client.Pipeline(ping, 100ms);
  ASSERT_FALSE(down.ok());
  // Within the backoff the client does not even try.
  auto again = client.Pipeline(ping, 100ms);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("not reconnecting yet"), std::string::npos)
      << again.status().message();
  ASSERT_TRUE((*server)->Restart().ok());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool back = false;
  while (!back && std::chrono::steady_clock::now() < deadline) {
    back = client.Pipeline(ping, 100ms).ok();
  }
  EXPECT_TRUE(back);
}

// The first connection of a client is set up outside the caller's budget (once per io thread in
// the server), and a host name is resolved once: a cold client with a budget of a microsecond
// still gets its answer, by name.
TEST(RedisClientTest, AColdClientConnectsByNameEvenOnATinyBudget) {
  auto server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().message();
  api::RedisConnection c = Connection(**server);
  c.host = "localhost";
  RedisClient client(c);
  const RedisCommand ping[] = {{"PING"}};
  auto r = client.Pipeline(ping, 1us);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].str, "PONG");
}

}  // namespace
}  // namespace sluice::features
