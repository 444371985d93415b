#include "dataplane/materializer/latest_rows.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

namespace sluice::materializer {
namespace {

using features::Chunk;
using features::Column;
using features::ColumnType;
using features::FeastValue;

constexpr int64_t kNanosPerSecond = 1'000'000'000;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

template <typename T>
void PutLittle(T v, std::string& out) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // x86-64 and arm64 are little-endian, as Feast writes
  out.append(buf, sizeof(T));
}

bool HoldsInts(ColumnType t) {
  return t == ColumnType::kInt32 || t == ColumnType::kInt64 || t == ColumnType::kBool ||
         t == ColumnType::kTimestamp;
}
bool HoldsDoubles(ColumnType t) {
  return t == ColumnType::kFloat || t == ColumnType::kDouble;
}

}  // namespace

features::ColumnType ColumnTypeOf(api::FeastType type) {
  switch (type) {
    case api::FeastType::kBytes:
      return ColumnType::kBytes;
    case api::FeastType::kString:
      return ColumnType::kString;
    case api::FeastType::kInt32:
      return ColumnType::kInt32;
    case api::FeastType::kInt64:
      return ColumnType::kInt64;
    case api::FeastType::kDouble:
      return ColumnType::kDouble;
    case api::FeastType::kFloat:
      return ColumnType::kFloat;
    case api::FeastType::kBool:
      return ColumnType::kBool;
    case api::FeastType::kUnixTimestamp:
      return ColumnType::kTimestamp;
  }
  return ColumnType::kString;
}

int64_t FeastEventNanos(int64_t nanos) {
  return FloorDiv(nanos, 1000) * 1000;
}

std::string EncodeEventTimestamp(int64_t feast_nanos) {
  const int64_t seconds = FloorDiv(feast_nanos, kNanosPerSecond);
  return features::EncodeTimestamp(seconds,
                                   static_cast<int32_t>(feast_nanos - seconds * kNanosPerSecond));
}

Result<SourcePlan> SourcePlan::Build(const api::FeatureViewConfig& view) {
  if (!view.source) return InvalidArgument("feature view " + view.name + " has no source");
  if (view.entities.empty())
    return InvalidArgument("feature view " + view.name + " has no entities");
  if (view.features.empty())
    return InvalidArgument("feature view " + view.name + " has no features");
  if (view.source->timestamp_field.empty()) {
    return InvalidArgument("feature view " + view.name + ": source.timestampField is empty");
  }
  SourcePlan plan;
  plan.view = view.name;
  plan.project = view.project;
  plan.timestamp_field = features::TimestampField(view.name);

  // Who asked for each column, for the error when two parts of the view disagree on its type.
  std::map<std::string, std::string, std::less<>> use;
  auto column = [&](const std::string& name, ColumnType type,
                    const std::string& what) -> Result<size_t> {
    for (size_t i = 0; i < plan.columns.size(); ++i) {
      if (plan.columns[i].name != name) continue;
      if (plan.columns[i].type != type) {
        return InvalidArgument("feature view " + view.name + ": column \"" + name + "\" is " +
                               use[name] + " (" + std::string(ColumnTypeName(plan.columns[i].type)) +
                               ") and " + what + " (" + std::string(ColumnTypeName(type)) + ")");
      }
      return i;
    }
    plan.columns.push_back({name, type});
    use[name] = what;
    return plan.columns.size() - 1;
  };

  std::vector<const api::FeatureEntity*> sorted;
  for (const auto& e : view.entities) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->join_key < b->join_key; });
  PutLittle<uint32_t>(static_cast<uint32_t>(sorted.size()), plan.key_prefix);
  for (const auto* e : sorted) {
    switch (e->value_type) {
      case api::FeastType::kString:
      case api::FeastType::kBytes:
      case api::FeastType::kInt32:
      case api::FeastType::kInt64:
      case api::FeastType::kUnixTimestamp:
        break;
      default:
        return InvalidArgument("feature view " + view.name + ": entity " + e->name + " is " +
                               std::string(api::FeastTypeName(e->value_type)) +
                               ", which Feast cannot key by");
    }
    if (e->join_key.empty()) {
      return InvalidArgument("feature view " + view.name + ": entity " + e->name +
                             " has no join key");
    }
    ASSIGN_OR_RETURN(size_t col, column(e->join_key, ColumnTypeOf(e->value_type),
                                        "the join key of entity " + e->name));
    plan.keys.push_back({col, e->value_type});
    PutLittle<uint32_t>(static_cast<uint32_t>(api::FeastType::kString), plan.key_prefix);
    PutLittle<uint32_t>(static_cast<uint32_t>(e->join_key.size()), plan.key_prefix);
    plan.key_prefix.append(e->join_key);
  }
  for (const auto& f : view.features) {
    ASSIGN_OR_RETURN(size_t col, column(f.name, ColumnTypeOf(f.type), "feature " + f.name));
    plan.features.push_back({col, f.type, features::FeatureField(view.name, f.name)});
  }
  ASSIGN_OR_RETURN(plan.timestamp_column, column(view.source->timestamp_field,
                                                 ColumnType::kTimestamp, "the timestamp field"));
  if (!view.source->created_timestamp_field.empty()) {
    ASSIGN_OR_RETURN(size_t created, column(view.source->created_timestamp_field,
                                            ColumnType::kTimestamp, "the created timestamp field"));
    plan.created_column = created;
  }
  return plan;
}

void FeatureValues(const EntityRecord& e, std::vector<std::string_view>& out) {
  out.clear();
  const char* p = e.values;
  const char* end = e.values + e.values_len;
  while (p < end) {
    uint32_t len = 0;
    std::memcpy(&len, p, 4);
    out.emplace_back(p + 4, len);
    p += 4 + len;
  }
}

// Keys and values live in large blocks that never move, so records can point into them.
class LatestRows::Arena {
 public:
  char* Allocate(size_t n) {
    if (n > left_) {
      const size_t size = std::max(n, kBlock);
      blocks_.push_back(std::make_unique<char[]>(size));
      bytes_ += size;
      next_ = blocks_.back().get();
      left_ = size;
    }
    char* p = next_;
    next_ += n;
    left_ -= n;
    return p;
  }
  size_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kBlock = size_t{4} << 20;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
  size_t bytes_ = 0;
};

LatestRows::LatestRows(const SourcePlan& plan, int64_t run_time_nanos, int64_t ttl_nanos)
    : plan_(plan),
      run_time_nanos_(run_time_nanos),
      ttl_nanos_(ttl_nanos),
      arena_(std::make_unique<Arena>()),
      slots_(1024, 0) {
  for (const auto& f : plan_.features) {
    FeastValue v;
    v.present = true;
    v.type = f.type;
    scratch_.push_back(std::move(v));
  }
}

LatestRows::~LatestRows() = default;

size_t LatestRows::arena_bytes() const {
  return arena_->bytes();
}

namespace {
// A slot holds the entity's index + 1 in its low half and the top half of its hash in the high
// half, so a probe only touches the entity (and its key) when the hashes agree.
uint64_t Slot(uint64_t hash, size_t index) {
  return (hash & 0xffffffff00000000ULL) | static_cast<uint64_t>(index + 1);
}
}  // namespace

void LatestRows::Grow() {
  std::vector<uint64_t> slots(slots_.size() * 2, 0);
  const size_t mask = slots.size() - 1;
  for (size_t i = 0; i < entities_.size(); ++i) {
    size_t s = entities_[i].hash & mask;
    while (slots[s] != 0) s = (s + 1) & mask;
    slots[s] = Slot(entities_[i].hash, i);
  }
  slots_.swap(slots);
}

EntityRecord& LatestRows::Find(std::string_view key, uint64_t hash, bool& inserted) {
  const size_t mask = slots_.size() - 1;
  const uint64_t tag = hash & 0xffffffff00000000ULL;
  size_t s = hash & mask;
  while (slots_[s] != 0) {
    if ((slots_[s] & 0xffffffff00000000ULL) == tag) {
      EntityRecord& e = entities_[(slots_[s] & 0xffffffffULL) - 1];
      if (e.hash == hash && e.redis_key() == key) {
        inserted = false;
        return e;
      }
    }
    s = (s + 1) & mask;
  }
  inserted = true;
  EntityRecord e;
  e.hash = hash;
  char* k = arena_->Allocate(key.size());
  std::memcpy(k, key.data(), key.size());
  e.key = k;
  e.key_len = static_cast<uint32_t>(key.size());
  entities_.push_back(e);
  slots_[s] = Slot(hash, entities_.size() - 1);
  // Half full at most, so probes stay short.
  if (entities_.size() * 2 > slots_.size()) Grow();
  return entities_.back();
}

void LatestRows::EncodeRow(const Chunk& chunk, size_t row, EntityRecord& e) {
  values_buf_.clear();
  for (size_t i = 0; i < plan_.features.size(); ++i) {
    const auto& f = plan_.features[i];
    const Column& col = chunk.columns[f.column];
    const size_t at = values_buf_.size();
    values_buf_.append(4, '\0');
    FeastValue& v = scratch_[i];
    // A null is a missing value of the feature's type (Feast writes most as an empty Value).
    v.present = col.valid[row] != 0;
    if (v.present) {
      switch (f.type) {
        case api::FeastType::kInt32:
        case api::FeastType::kInt64:
        case api::FeastType::kBool:
          v.i = col.ints[row];
          break;
        case api::FeastType::kUnixTimestamp:
          // Feast's UNIX_TIMESTAMP values are whole seconds.
          v.i = FloorDiv(col.ints[row], kNanosPerSecond);
          break;
        case api::FeastType::kFloat:
        case api::FeastType::kDouble:
          v.d = col.doubles[row];
          break;
        case api::FeastType::kString:
        case api::FeastType::kBytes:
          v.s.assign(col.strings[row]);  // reuses the scratch string's capacity
          break;
      }
    }
    features::EncodeValue(v, values_buf_);
    const auto len = static_cast<uint32_t>(values_buf_.size() - at - 4);
    std::memcpy(values_buf_.data() + at, &len, 4);
  }
  if (values_buf_.size() > e.values_cap) {
    e.values = arena_->Allocate(values_buf_.size());
    e.values_cap = static_cast<uint32_t>(values_buf_.size());
  }
  std::memcpy(e.values, values_buf_.data(), values_buf_.size());
  e.values_len = static_cast<uint32_t>(values_buf_.size());
}

bool LatestRows::BuildKey(const Chunk& chunk, size_t r, std::string& key) const {
  // The prefix of join key names, then each value as Feast serializes it, then the project.
  key.assign(plan_.key_prefix);
  for (const auto& k : plan_.keys) {
    const Column& c = chunk.columns[k.column];
    if (c.valid[r] == 0) return false;
    PutLittle<uint32_t>(static_cast<uint32_t>(k.type), key);
    switch (k.type) {
      case api::FeastType::kString:
      case api::FeastType::kBytes:
        PutLittle<uint32_t>(static_cast<uint32_t>(c.strings[r].size()), key);
        key.append(c.strings[r]);
        break;
      case api::FeastType::kInt32:
        PutLittle<uint32_t>(4, key);
        PutLittle<int32_t>(static_cast<int32_t>(c.ints[r]), key);
        break;
      case api::FeastType::kInt64:
        PutLittle<uint32_t>(8, key);
        PutLittle<int64_t>(c.ints[r], key);
        break;
      case api::FeastType::kUnixTimestamp:
        PutLittle<uint32_t>(8, key);
        PutLittle<int64_t>(FloorDiv(c.ints[r], kNanosPerSecond), key);
        break;
      default:
        break;  // refused by SourcePlan::Build
    }
  }
  key.append(plan_.project);
  return true;
}

Status LatestRows::Add(const Chunk& chunk) {
  if (chunk.columns.size() != plan_.columns.size()) {
    return InvalidArgument("the source returned " + std::to_string(chunk.columns.size()) +
                           " columns; " + std::to_string(plan_.columns.size()) + " were asked for");
  }
  const size_t rows = chunk.rows;
  for (size_t i = 0; i < plan_.columns.size(); ++i) {
    const Column& c = chunk.columns[i];
    const auto& want = plan_.columns[i];
    if (c.type != want.type) {
      return InvalidArgument("column \"" + want.name + "\" came as " +
                             std::string(ColumnTypeName(c.type)) + "; the view declares " +
                             std::string(ColumnTypeName(want.type)));
    }
    const size_t n = HoldsInts(c.type)      ? c.ints.size()
                     : HoldsDoubles(c.type) ? c.doubles.size()
                                            : c.strings.size();
    if (n < rows || c.valid.size() < rows) {
      return InvalidArgument("column \"" + want.name + "\" holds fewer values than the chunk's " +
                             std::to_string(rows) + " rows");
    }
  }
  const Column& ts = chunk.columns[plan_.timestamp_column];
  const Column* created = plan_.created_column ? &chunk.columns[*plan_.created_column] : nullptr;
  const bool bounded = ttl_nanos_ > 0;
  const int64_t oldest_excluded = run_time_nanos_ - ttl_nanos_;
  std::hash<std::string_view> hasher;
  stats_.rows += rows;
  // Rows go in blocks: first every row's key and hash, prefetching its slot and then its entity,
  // then the lookups in row order. A lookup misses the cache three times (slot, record, key)
  // when the entities outnumber the cache; this way the misses of a block overlap.
  for (size_t base = 0; base < rows; base += kBlock) {
    const size_t n = std::min(kBlock, rows - base);
    for (size_t j = 0; j < n; ++j) {
      const size_t r = base + j;
      keyed_[j] = false;
      if (ts.valid[r] == 0) {
        ++stats_.rows_without_timestamp;
        continue;
      }
      const int64_t raw = ts.ints[r];
      if (!stats_.watermark_nanos || raw > *stats_.watermark_nanos) stats_.watermark_nanos = raw;
      if (raw > run_time_nanos_) {
        ++stats_.rows_after_run_time;
        continue;
      }
      if (!BuildKey(chunk, r, keys_[j])) {
        ++stats_.rows_without_key;
        continue;
      }
      keyed_[j] = true;
      hashes_[j] = hasher(keys_[j]);
      __builtin_prefetch(&slots_[hashes_[j] & (slots_.size() - 1)]);
    }
    for (size_t j = 0; j < n; ++j) {
      if (!keyed_[j]) continue;
      const uint64_t slot = slots_[hashes_[j] & (slots_.size() - 1)];
      if (slot != 0 && (slot & 0xffffffff00000000ULL) == (hashes_[j] & 0xffffffff00000000ULL)) {
        const EntityRecord& e = entities_[(slot & 0xffffffffULL) - 1];
        __builtin_prefetch(&e);
        __builtin_prefetch(e.key);  // the record may not be here yet: then this is a no-op hint
      }
    }
    for (size_t j = 0; j < n; ++j) {
      if (!keyed_[j]) continue;
      const size_t r = base + j;
      const int64_t raw = ts.ints[r];
      bool inserted = false;
      EntityRecord& e = Find(keys_[j], hashes_[j], inserted);
      if (bounded && raw <= oldest_excluded) {
        ++stats_.rows_stale;
        if (inserted) ++stats_.entities_stale;
        continue;
      }
      const int64_t event = FeastEventNanos(raw);
      const int64_t created_at = created != nullptr && created->valid[r] != 0
                                     ? created->ints[r]
                                     : std::numeric_limits<int64_t>::min();
      if (!e.fresh) {
        if (!inserted) --stats_.entities_stale;
        ++stats_.entities_fresh;
      } else if (event < e.event_nanos ||
                 (event == e.event_nanos && created_at < e.created_nanos)) {
        continue;
      }
      e.fresh = true;
      e.event_nanos = event;
      e.created_nanos = created_at;
      EncodeRow(chunk, r, e);
    }
  }
  return Status::Ok();
}

}  // namespace sluice::materializer
