#include "dataplane/server/response_cache.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace sluice::dataplane {

namespace {

void AppendLength(std::string& key, uint64_t n) {
  char buf[8];
  std::memcpy(buf, &n, 8);
  key.append(buf, 8);
}

void AppendField(std::string& key, std::string_view field) {
  AppendLength(key, field.size());
  key.append(field);
}

size_t EntryBytes(std::string_view key, const CachedOutputs& value) {
  size_t n = key.size() + 192;  // entry, list node and index slot
  for (const Tensor& t : value) n += t.ByteSize();
  return n;
}

}  // namespace

std::string MakeCacheKey(std::string_view model, std::string_view version,
                         const InferRequest& request) {
  size_t size = 64 + model.size() + version.size();
  for (const Tensor& t : request.inputs)
    size += 32 + t.name().size() + t.shape().size() * 8 + t.bytes().size();
  std::string key;
  key.reserve(size);
  AppendField(key, model);
  AppendField(key, version);
  AppendLength(key, request.inputs.size());
  for (const Tensor& t : request.inputs) {
    AppendField(key, t.name());
    key.push_back(static_cast<char>(t.datatype()));
    AppendLength(key, t.shape().size());
    for (int64_t d : t.shape()) AppendLength(key, static_cast<uint64_t>(d));
    const auto bytes = t.bytes();
    AppendField(key, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  AppendLength(key, request.outputs.size());
  for (const RequestedOutput& o : request.outputs) AppendField(key, o.name);
  return key;
}

Result<std::unique_ptr<ResponseCache>> ResponseCache::Create(const ResponseCacheOptions& options,
                                                             Clock& clock) {
  if (options.shards == 0) return InvalidArgument("response cache: shards must be >= 1");
  if (options.capacity_bytes == 0) return InvalidArgument("response cache: capacity must be > 0");
  if (options.ttl.count() < 0) return InvalidArgument("response cache: ttl must not be negative");
  return std::unique_ptr<ResponseCache>(new ResponseCache(options, clock));
}

namespace {

// Fewer shards than entries allowed, so every shard can hold at least one.
size_t ShardCount(const ResponseCacheOptions& o) {
  return o.max_entries > 0 ? std::min(o.shards, o.max_entries) : o.shards;
}

}  // namespace

ResponseCache::ResponseCache(const ResponseCacheOptions& options, Clock& clock)
    : options_(options),
      shard_capacity_(options.capacity_bytes / ShardCount(options)),
      shard_max_entries_(options.max_entries / ShardCount(options)),
      clock_(clock) {
  for (size_t i = 0; i < ShardCount(options); ++i) shards_.push_back(std::make_unique<Shard>());
}

ResponseCache::Shard& ResponseCache::ShardFor(std::string_view key) {
  // The top bits pick the shard; the shard's map uses the full hash for its buckets.
  const size_t h = std::hash<std::string_view>{}(key);
  return *shards_[(h >> 48) % shards_.size()];
}

void ResponseCache::EraseLocked(Shard& s, std::list<Entry>::iterator it) {
  s.bytes -= it->bytes;
  s.index.erase(std::string_view(it->key));
  s.lru.erase(it);
}

std::shared_ptr<const CachedOutputs> ResponseCache::Lookup(std::string_view key) {
  Shard& s = ShardFor(key);
  const auto now = clock_.Now();
  std::lock_guard<std::mutex> lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) return nullptr;
  auto it = found->second;
  if (options_.ttl.count() > 0 && now >= it->expires) {
    EraseLocked(s, it);
    return nullptr;
  }
  s.lru.splice(s.lru.begin(), s.lru, it);
  return it->value;
}

void ResponseCache::Insert(std::string_view key, std::shared_ptr<const CachedOutputs> value) {
  if (!value) return;
  const size_t bytes = EntryBytes(key, *value);
  if (bytes > shard_capacity_) return;
  Shard& s = ShardFor(key);
  const auto expires = clock_.Now() + options_.ttl;
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto found = s.index.find(key); found != s.index.end()) EraseLocked(s, found->second);
  s.lru.push_front(Entry{std::string(key), std::move(value), bytes, expires});
  s.index.emplace(std::string_view(s.lru.front().key), s.lru.begin());
  s.bytes += bytes;
  while (s.bytes > shard_capacity_ ||
         (shard_max_entries_ > 0 && s.lru.size() > shard_max_entries_)) {
    EraseLocked(s, std::prev(s.lru.end()));
  }
}

size_t ResponseCache::entries() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->lru.size();
  }
  return n;
}

size_t ResponseCache::bytes() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->bytes;
  }
  return n;
}

}  // namespace sluice::dataplane
