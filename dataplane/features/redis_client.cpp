#include "dataplane/features/redis_client.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cerrno>

#include <hiredis/hiredis.h>

namespace sluice::features {
namespace {

using Clock = std::chrono::steady_clock;

timeval ToTimeval(std::chrono::microseconds d) {
  // A zero timeval means "block forever" to the socket options hiredis sets.
  d = std::max(d, std::chrono::microseconds(1));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(d.count() % 1'000'000);
  return tv;
}

std::chrono::microseconds Remaining(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.kind = RedisReply::Kind::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.kind = RedisReply::Kind::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.kind = RedisReply::Kind::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.kind = RedisReply::Kind::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.kind = RedisReply::Kind::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.kind = RedisReply::Kind::kNil;
  }
  return out;
}

// The first address getaddrinfo gives for `host`, numeric; empty when it cannot be resolved.
std::string Resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  const void* addr = res->ai_family == AF_INET6
                         ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr)
                         : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
  std::string out = inet_ntop(res->ai_family, addr, buf, sizeof(buf)) != nullptr ? buf : "";
  freeaddrinfo(res);
  return out;
}

void AppendDecimal(size_t n, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  out.append(buf, end);
}

}  // namespace

void AppendResp(const RedisCommand& command, std::string& out) {
  out.push_back('*');
  AppendDecimal(command.size(), out);
  out.append("\r\n");
  for (std::string_view arg : command) {
    out.push_back('$');
    AppendDecimal(arg.size(), out);
    out.append("\r\n");
    out.append(arg);
    out.append("\r\n");
  }
}

RedisClient::RedisClient(api::RedisConnection connection, RedisClientOptions options)
    : connection_(std::move(connection)), options_(options) {}

RedisClient::~RedisClient() { Drop(); }

void RedisClient::Drop() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

Status RedisClient::EnsureConnected(Clock::time_point deadline) {
  if (ctx_ != nullptr) return Status::Ok();
  const auto now = Clock::now();
  if (now < next_connect_) {
    return Unavailable("redis " + Describe() + " failed recently; not reconnecting yet");
  }
  next_connect_ = now + options_.reconnect_backoff;
  const auto budget =
      std::min<std::chrono::microseconds>(options_.connect_timeout, Remaining(deadline));
  if (budget.count() <= 0) return Unavailable("redis " + Describe() + ": no time left to connect");
  if (resolved_.empty()) {
    resolved_ = Resolve(connection_.host);
    if (resolved_.empty()) {
      return Unavailable("redis " + Describe() + ": cannot resolve " + connection_.host);
    }
  }
  ctx_ = redisConnectWithTimeout(resolved_.c_str(), connection_.port, ToTimeval(budget));
  if (ctx_ == nullptr || ctx_->err != 0) {
    std::string why = ctx_ != nullptr ? ctx_->errstr : "out of memory";
    Drop();
    resolved_.clear();  // the name may point elsewhere now
    return Unavailable("redis " + Describe() + ": connect: " + why);
  }
  connected_once_ = true;
  redisEnableKeepAlive(ctx_);
  std::vector<RedisCommand> hello;
  if (!connection_.password.empty()) {
    if (connection_.username.empty()) {
      hello.push_back({"AUTH", connection_.password});
    } else {
      hello.push_back({"AUTH", connection_.username, connection_.password});
    }
  }
  const std::string db = std::to_string(connection_.db);
  if (connection_.db != 0) hello.push_back({"SELECT", db});
  if (hello.empty()) return Status::Ok();
  // The handshake goes through the same pipeline; its replies must all be OK.
  redisContext* ctx = ctx_;
  for (const auto& cmd : hello) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  for (size_t i = 0; i < hello.size(); ++i) {
    const auto left = Remaining(deadline);
    if (left.count() <= 0 || redisSetTimeout(ctx, ToTimeval(left)) != REDIS_OK) {
      Drop();
      return Unavailable("redis " + Describe() + ": timed out during AUTH/SELECT");
    }
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
      std::string why = ctx->errstr;
      Drop();
      return Unavailable("redis " + Describe() + ": AUTH/SELECT: " + why);
    }
    auto* reply = static_cast<redisReply*>(raw);
    const bool ok = reply->type == REDIS_REPLY_STATUS;
    std::string text = reply->str != nullptr ? std::string(reply->str, reply->len) : "";
    freeReplyObject(reply);
    if (!ok) {
      Drop();
      // The reply names the problem (WRONGPASS, ERR DB index out of range), never the password.
      return FailedPrecondition("redis " + Describe() + ": " + (i == 0 && !connection_.password.empty()
                                                                  ? "AUTH: "
                                                                  : "SELECT: ") +
                              text);
    }
  }
  return Status::Ok();
}

Result<std::vector<RedisReply>> RedisClient::Pipeline(std::span<const RedisCommand> commands,
                                                      std::chrono::microseconds timeout) {
  auto deadline = Clock::now() + timeout;
  // A cold client's first connection is not charged to the caller: it gets connect_timeout on
  // top of the timeout (once per client, so once per io thread in the server).
  if (!connected_once_ && ctx_ == nullptr) deadline += options_.connect_timeout;
  RETURN_IF_ERROR(EnsureConnected(deadline));
  // The commands in RESP, formatted here into one buffer and handed to hiredis at once: its own
  // formatting allocates per argument, which dominated a 100-entity fetch.
  std::string& out = wire_;
  out.clear();
  for (const auto& cmd : commands) AppendResp(cmd, out);
  if (redisAppendFormattedCommand(ctx_, out.data(), out.size()) != REDIS_OK) {
    Drop();
    return Internal("redis " + Describe() + ": could not queue the commands");
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    // Replies already read are taken from the buffer; the socket is read (with the time left as
    // its timeout: one setsockopt per read) only when none is.
    if (redisGetReplyFromReader(ctx_, &raw) == REDIS_OK && raw == nullptr) {
      const auto left = Remaining(deadline);
      if (left.count() <= 0 || redisSetTimeout(ctx_, ToTimeval(left)) != REDIS_OK) {
        Drop();
        next_connect_ = Clock::now();
        return Unavailable("redis " + Describe() + ": no reply within " +
                           std::to_string(timeout.count()) + "us");
      }
      if (redisGetReply(ctx_, &raw) != REDIS_OK) raw = nullptr;
    }
    if (raw == nullptr) {
      const bool timed_out = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
      std::string why = ctx_->errstr;
      Drop();
      // A slow Redis may answer the next request in time; a broken one is given a rest.
      next_connect_ = Clock::now() + (timed_out ? std::chrono::milliseconds(0)
                                                : options_.reconnect_backoff);
      if (timed_out) {
        return Unavailable("redis " + Describe() + ": no reply within " +
                           std::to_string(timeout.count()) + "us");
      }
      return Unavailable("redis " + Describe() + ": " + why);
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(Convert(reply));
    freeReplyObject(reply);
  }
  return replies;
}

}  // namespace sluice::features
