#pragma once

// The write half of materialization: entities into Redis in Feast's layout, as Feast's
// RedisOnlineStore.online_write_batch does for each batch:
//   1. HGET <key> _ts:<view> for every entity of the batch;
//   2. for each entity whose stored timestamp is older than its row (or absent):
//        HSET <key> <field> <value>... _ts:<view> <timestamp>   and   EXPIRE <key> <key_ttl>.
// So a run is idempotent (a re-run finds its own timestamps and writes nothing), and an older
// source never rolls a newer record back. Entities are distinct across all batches (LatestRows
// made them so), so the reads of one batch cannot depend on the writes of another: one
// pipelined round trip carries the writes of a batch and the reads of the next, and Redis works
// while the next batch is decided. Call Flush() after the last batch.
//
// Errors: Unavailable when Redis cannot be reached or answers too late (nothing of the batch may
// be assumed written; a re-run repairs it); Internal with Redis' own text for an error reply (a
// key that is not a hash, an OOM). Either way the run stops.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/features/redis_client.h"
#include "dataplane/materializer/latest_rows.h"
#include "lib/base/status.h"

namespace sluice::materializer {

// Feast's rule: write unless the stored timestamp is set and at least as new as the row's.
// `stored_nanos` 0 (or absent) means no record, as Feast reads an unset Timestamp.
bool ShouldOverwrite(std::optional<int64_t> stored_nanos, int64_t new_nanos);

struct FeastWriterOptions {
  std::chrono::seconds key_ttl{0};  // 0: no EXPIRE
  // Budget of each pipelined round trip.
  std::chrono::milliseconds timeout{30000};
};

struct WriteStats {
  uint64_t written = 0;
  uint64_t not_newer = 0;  // Redis already held a record at least as new
};

class FeastWriter {
 public:
  FeastWriter(features::RedisClient& redis, const SourcePlan& plan, FeastWriterOptions options);

  // Reads the stored timestamps of the fresh entities of `batch` (stale ones are ignored),
  // sending the writes decided for the previous batch in the same round trip, and decides this
  // batch's writes. The records must stay alive until the next Write or Flush.
  Status Write(std::span<const EntityRecord* const> batch, WriteStats& stats);
  // Sends the writes still pending.
  Status Flush(WriteStats& stats);

 private:
  Status Send(size_t reads, std::vector<features::RedisReply>& replies, WriteStats& stats);

  features::RedisClient& redis_;
  const SourcePlan& plan_;
  FeastWriterOptions options_;
  std::string ttl_text_;
  // One round trip: the pending writes (the first pending_commands_), then the reads. Reused
  // from batch to batch, as are the timestamps the writes point at.
  std::vector<features::RedisCommand> round_;
  size_t pending_commands_ = 0;
  size_t pending_entities_ = 0;
  std::vector<std::string> timestamps_;
  std::vector<std::string_view> values_;
};

}  // namespace sluice::materializer
