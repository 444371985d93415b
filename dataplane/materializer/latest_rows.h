#pragma once

// The selection half of materialization, with no I/O: from the chunks of a FeatureView's batch
// source, keep for each entity the newest row whose event timestamp lies in the window
// (run_time - ttl, run_time] (ttl 0: no lower bound), as Feast's `materialize` does. Ties on the
// event timestamp go to the later created timestamp, then to the later row.
//
// Each entity's Redis key and the Feast Value bytes of its winning row are encoded once, when
// the row wins, into an arena: the hot path allocates nothing per row (the key is built in a
// reused buffer and looked up in an open-addressing table keyed by those bytes).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/features/feast_codec.h"
#include "dataplane/features/source/table_reader.h"
#include "lib/api/feature_view.h"
#include "lib/base/status.h"

namespace sluice::materializer {

// The source columns a view needs and how each becomes part of a Redis record, worked out once.
struct SourcePlan {
  std::string view;
  std::string project;
  // What the reader is asked for; a column used twice (a join key that is also a feature) is
  // read once.
  std::vector<features::ColumnRequest> columns;

  struct KeyPart {
    size_t column;  // in `columns`
    api::FeastType type;
  };
  // Sorted by join key, the order Feast serializes them in.
  std::vector<KeyPart> keys;
  // The serialized entity key up to the values: the part count and the sorted join key names.
  std::string key_prefix;

  struct Feature {
    size_t column;
    api::FeastType type;
    std::string field;  // murmur3("<view>:<feature>"), the hash field
  };
  std::vector<Feature> features;  // in the view's order

  size_t timestamp_column = 0;
  std::optional<size_t> created_column;
  std::string timestamp_field;  // "_ts:<view>"

  // InvalidArgument naming what is wrong: no source, no entities, a type Feast cannot key by, one
  // column declared with two types.
  static Result<SourcePlan> Build(const api::FeatureViewConfig& view);
};

// The source column type a Feast type is read as.
features::ColumnType ColumnTypeOf(api::FeastType type);

// Event timestamps as Feast stores them: it turns each into a Python datetime, which holds
// microseconds, so nanoseconds below that are dropped (rounding down).
int64_t FeastEventNanos(int64_t nanos);
// google.protobuf.Timestamp bytes of a FeastEventNanos value.
std::string EncodeEventTimestamp(int64_t feast_nanos);

// One entity: its Redis key and, when it has a row in the window, the encoded values of the
// newest such row. The views point into LatestRows' arena and live as long as it does.
struct EntityRecord {
  uint64_t hash = 0;
  const char* key = nullptr;
  uint32_t key_len = 0;
  uint32_t values_len = 0;
  uint32_t values_cap = 0;
  bool fresh = false;  // false: every row of the entity is older than the ttl allows
  char* values = nullptr;
  int64_t event_nanos = 0;  // FeastEventNanos of the winning row
  int64_t created_nanos = 0;

  std::string_view redis_key() const { return {key, key_len}; }
};

// Splits an entity's encoded values into one Value per feature, in the plan's order (a view
// into the record; an empty view is a missing value, as Feast writes it).
void FeatureValues(const EntityRecord& e, std::vector<std::string_view>& out);

struct SelectionStats {
  uint64_t rows = 0;
  uint64_t rows_after_run_time = 0;  // event time in the future of the run: not written
  uint64_t rows_stale = 0;           // older than the ttl allows
  uint64_t rows_without_key = 0;     // a null join key
  uint64_t rows_without_timestamp = 0;
  std::optional<int64_t> watermark_nanos;  // the newest event timestamp read (as read)
  uint64_t entities_fresh = 0;
  uint64_t entities_stale = 0;  // every row older than the ttl allows
};

class LatestRows {
 public:
  // `run_time_nanos` and `ttl_nanos` (0: no lower bound) define the window.
  LatestRows(const SourcePlan& plan, int64_t run_time_nanos, int64_t ttl_nanos);
  ~LatestRows();
  LatestRows(const LatestRows&) = delete;
  LatestRows& operator=(const LatestRows&) = delete;

  // Takes one chunk. InvalidArgument (a schema mismatch) when its columns are not what the plan
  // asked for.
  Status Add(const features::Chunk& chunk);

  const SelectionStats& stats() const { return stats_; }
  // Every entity seen in or before the window, in first-seen order; write those with `fresh`.
  std::span<const EntityRecord> entities() const { return entities_; }
  // Bytes held for keys and values.
  size_t arena_bytes() const;

 private:
  class Arena;
  static constexpr size_t kBlock = 16;
  // False when a join key is null.
  bool BuildKey(const features::Chunk& chunk, size_t row, std::string& key) const;
  EntityRecord& Find(std::string_view key, uint64_t hash, bool& inserted);
  void Grow();
  void EncodeRow(const features::Chunk& chunk, size_t row, EntityRecord& e);

  const SourcePlan& plan_;
  int64_t run_time_nanos_;
  int64_t ttl_nanos_;
  SelectionStats stats_;
  std::unique_ptr<Arena> arena_;
  std::vector<EntityRecord> entities_;
  std::vector<uint64_t> slots_;  // open addressing: 0 is empty, else a Slot (hash tag, index)
  // One block of rows at a time: their keys, hashes, and whether they have a key at all.
  std::array<std::string, kBlock> keys_;
  std::array<uint64_t, kBlock> hashes_{};
  std::array<bool, kBlock> keyed_{};
  std::string values_buf_;
  std::vector<features::FeastValue> scratch_;  // one per feature, typed once
};

}  // namespace sluice::materializer
