#include "dataplane/materializer/materializer.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <thread>

#include "dataplane/materializer/feast_writer.h"
#include "lib/api/time.h"
#include "lib/base/logging.h"

namespace sluice::materializer {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kNanosPerSecond = 1'000'000'000;

int64_t ToNanos(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

api::MaterializeResult Failed(api::MaterializeResult r, std::string_view reason,
                              std::string message) {
  r.ok = false;
  r.reason = std::string(reason);
  r.message = std::move(message);
  return r;
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

std::string_view SourceFailureReason(const Status& status) {
  if (!status.reason().empty()) return status.reason();
  switch (status.code()) {
    case StatusCode::kNotFound:
      return kSourceNotFound;
    case StatusCode::kInvalidArgument:
      // The readers' words for a column the file lacks or a value of another type: "column "x"
      // is not in the file", "...; the FeatureView declares INT64", "column "x": "abc" is not an
      // integer".
      if (Contains(status.message(), "column \"") &&
          (Contains(status.message(), "\" is not ") ||
           Contains(status.message(), "the FeatureView declares") ||
           Contains(status.message(), "the view declares"))) {
        return kSchemaMismatch;
      }
      return kSourceUnreadable;
    default:
      return kSourceUnreadable;
  }
}

std::string FormatNanos(int64_t nanos) {
  int64_t seconds = nanos / kNanosPerSecond;
  int64_t frac = nanos % kNanosPerSecond;
  if (frac < 0) {
    frac += kNanosPerSecond;
    --seconds;
  }
  std::string out =
      controllers::FormatTime(std::chrono::system_clock::time_point(std::chrono::seconds(seconds)));
  if (frac == 0) return out;
  char digits[16];
  std::snprintf(digits, sizeof(digits), ".%09lld", static_cast<long long>(frac));
  std::string fraction(digits);
  while (fraction.back() == '0') fraction.pop_back();
  out.insert(out.size() - 1, fraction);  // before the Z
  return out;
}

api::MaterializeResult Materialize(const api::FeatureViewConfig& view,
                                   const MaterializeOptions& options, const SourceOpener& open) {
  const auto started = Clock::now();
  auto log = IdentityLogger("view=" + view.name + " project=" + view.project);
  api::MaterializeResult result;
  result.run_time = controllers::FormatTime(options.run_time);
  auto finish = [&](api::MaterializeResult r) {
    r.duration_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (r.ok) {
      log->info(
          "materialized: {} rows read, {} entities written, {} stale entities skipped, "
          "source watermark {}, in {:.3f} s",
          r.rows_read, r.entities_written, r.entities_skipped_stale,
          r.source_watermark.empty() ? "none" : r.source_watermark, r.duration_seconds);
    } else {
      log->error("materialization failed: {}: {}", r.reason, r.message);
    }
    return r;
  };

  auto plan = SourcePlan::Build(view);
  if (!plan.ok()) return finish(Failed(result, kInvalidView, plan.status().message()));
  auto connection = view.ResolveRedis();
  if (!connection.ok()) return finish(Failed(result, kInvalidView, connection.status().message()));

  // Redis first: a dead Redis fails the run in a moment, before a large source is read.
  features::RedisClientOptions redis_options;
  redis_options.connect_timeout = options.redis_connect_timeout;
  features::RedisClient redis(*connection, redis_options);
  {
    const features::RedisCommand ping[] = {{"PING"}};
    auto pong = redis.Pipeline(ping, options.redis_connect_timeout + options.redis_timeout);
    if (!pong.ok()) return finish(Failed(result, kRedisUnavailable, pong.status().message()));
    if ((*pong)[0].kind == features::RedisReply::Kind::kError) {
      return finish(Failed(result, kRedisUnavailable,
                           "redis " + redis.Describe() + ": PING: " + (*pong)[0].str));
    }
  }

  features::SourceOptions source_options;
  source_options.format = view.source->format;
  source_options.uri = view.source->path;
  source_options.columns = plan->columns;
  source_options.http_timeout = options.source_timeout;
  log->info("reading {} ({}) for Redis {}, run time {}, ttl {} s", view.source->path,
            view.source->format, redis.Describe(), result.run_time,
            std::chrono::duration_cast<std::chrono::seconds>(view.ttl).count());
  auto reader = open(source_options);
  if (!reader.ok()) {
    return finish(Failed(result, SourceFailureReason(reader.status()), reader.status().message()));
  }

  const int64_t ttl_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(view.ttl).count();
  LatestRows latest(*plan, ToNanos(options.run_time), ttl_nanos);
  features::Chunk chunk;
  uint64_t next_progress = options.progress_every;
  const auto read_started = Clock::now();
  for (;;) {
    auto more = (*reader)->Next(chunk);
    if (!more.ok()) {
      result.rows_read = static_cast<int64_t>(latest.stats().rows);
      return finish(Failed(result, SourceFailureReason(more.status()), more.status().message()));
    }
    if (!*more) break;
    if (Status s = latest.Add(chunk); !s.ok()) {
      result.rows_read = static_cast<int64_t>(latest.stats().rows);
      return finish(Failed(result, kSchemaMismatch, view.source->path + ": " + s.message()));
    }
    if (latest.stats().rows >= next_progress) {
      log->info("read {} rows, {} entities so far", latest.stats().rows, latest.entities().size());
      while (next_progress <= latest.stats().rows) next_progress += options.progress_every;
    }
  }
  const SelectionStats& stats = latest.stats();
  result.rows_read = static_cast<int64_t>(stats.rows);
  result.entities_skipped_stale = static_cast<int64_t>(stats.entities_stale);
  if (stats.watermark_nanos) result.source_watermark = FormatNanos(*stats.watermark_nanos);
  log->info(
      "read {} rows in {:.3f} s: {} entities in the window, {} older than the ttl; rows "
      "skipped: {} after the run time, {} stale, {} without a join key, {} without a "
      "timestamp; {} MiB held",
      stats.rows, std::chrono::duration<double>(Clock::now() - read_started).count(),
      stats.entities_fresh, stats.entities_stale, stats.rows_after_run_time, stats.rows_stale,
      stats.rows_without_key, stats.rows_without_timestamp, latest.arena_bytes() >> 20);

  FeastWriterOptions writer_options;
  writer_options.key_ttl = view.key_ttl;
  writer_options.timeout = options.redis_timeout;
  // Two connections, each writing every other batch: Redis works on one's round trip while the
  // other decides and formats its next, where a single connection would leave Redis idle.
  // Entities are distinct, so the two never touch the same key.
  constexpr size_t kConnections = 2;
  struct Share {
    Status status;
    WriteStats stats;
  };
  std::array<Share, kConnections> shares;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  next_progress = options.progress_every;
  auto write_share = [&](size_t index, features::RedisClient& client) {
    Share& share = shares[index];
    FeastWriter writer(client, *plan, writer_options);
    std::vector<const EntityRecord*> batch;
    batch.reserve(options.batch_size);
    auto send = [&]() -> Status {
      RETURN_IF_ERROR(writer.Write(batch, share.stats));
      const uint64_t total = done.fetch_add(batch.size()) + batch.size();
      batch.clear();
      if (index == 0 && total >= next_progress) {
        log->info("wrote {} of {} entities", total, stats.entities_fresh);
        while (next_progress <= total) next_progress += options.progress_every;
      }
      return Status::Ok();
    };
    uint64_t fresh = 0;
    for (const EntityRecord& e : latest.entities()) {
      if (!e.fresh) continue;
      if ((fresh++ / options.batch_size) % kConnections != index) continue;
      batch.push_back(&e);
      if (batch.size() < options.batch_size) continue;
      if (stop.load(std::memory_order_relaxed)) return;
      if (share.status = send(); !share.status.ok()) {
        stop = true;
        return;
      }
    }
    if (!batch.empty()) share.status = send();
    if (share.status.ok()) share.status = writer.Flush(share.stats);
    if (!share.status.ok()) stop = true;
  };
  features::RedisClient second(*connection, redis_options);
  std::thread helper(write_share, 1, std::ref(second));
  write_share(0, redis);
  helper.join();

  WriteStats written;
  for (const Share& share : shares) {
    written.written += share.stats.written;
    written.not_newer += share.stats.not_newer;
  }
  for (const Share& share : shares) {
    if (share.status.ok()) continue;
    result.entities_written = static_cast<int64_t>(written.written);
    return finish(Failed(
        result, share.status.code() == StatusCode::kInternal ? kRedisError : kRedisUnavailable,
        share.status.message()));
  }
  result.ok = true;
  result.entities_written = static_cast<int64_t>(written.written);
  if (written.not_newer > 0) {
    log->info("{} entities not written: Redis already held records at least as new",
              written.not_newer);
  }
  return finish(result);
}

api::MaterializeResult MaterializeFromCommand(const api::MaterializeCommand& command,
                                              const SourceOpener& open,
                                              std::chrono::system_clock::time_point now) {
  api::MaterializeResult result;
  // Before the view is known, so these lines cannot name it.
  auto refuse = [&](std::string_view reason, std::string message) {
    spdlog::error("materialization refused: {}: {}", reason, message);
    return Failed(result, reason, std::move(message));
  };
  MaterializeOptions options;
  options.run_time = now;
  if (command.run_time) {
    auto t = controllers::ParseTime(*command.run_time);
    if (!t.ok()) return refuse(kInvalidCommand, "--run-time: " + t.status().message());
    options.run_time = *t;
  }
  result.run_time = controllers::FormatTime(options.run_time);
  if (command.batch_size) options.batch_size = static_cast<size_t>(*command.batch_size);
  if (command.source_timeout_s) {
    options.source_timeout = std::chrono::seconds(*command.source_timeout_s);
  }
  if (!command.view || command.view->empty()) {
    return refuse(kInvalidCommand, "--view is required");
  }
  const auto json = nlohmann::json::parse(*command.view, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return refuse(kInvalidView, "--view is not valid JSON");
  auto view = api::FeatureViewConfig::FromJson(json);
  if (!view.ok()) return refuse(kInvalidView, view.status().message());
  if (!view->source) {
    return refuse(kInvalidView, "feature view " + view->name + " has no source");
  }
  return Materialize(*view, options, open);
}

}  // namespace sluice::materializer
