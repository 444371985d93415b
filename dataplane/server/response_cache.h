#pragma once

// A response cache for deterministic models: LRU with a TTL, an entry bound and a byte bound. Keys
// are the exact request content (model, version, every input's name, datatype, shape and bytes, the
// requested outputs); lookups hash the key and compare all its bytes, so a hash collision can never
// return another request's answer.
//
// Thread-safe; the cache is split into shards, each with its own lock, so concurrent lookups of
// different keys rarely contend.

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dataplane/server/inference.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

struct ResponseCacheOptions {
  size_t capacity_bytes = size_t{64} << 20;
  // The most entries held (spec.runtime.cache.capacity); 0: bounded by bytes only. Never
  // exceeded: each shard holds at most its whole share.
  size_t max_entries = 0;
  std::chrono::milliseconds ttl{60'000};  // zero: entries never expire
  size_t shards = 8;
};

using CachedOutputs = std::vector<Tensor>;

// The cache key of `request` for the given model: unambiguous (every field length-prefixed).
std::string MakeCacheKey(std::string_view model, std::string_view version,
                         const InferRequest& request);

class ResponseCache {
 public:
  static Result<std::unique_ptr<ResponseCache>> Create(const ResponseCacheOptions& options,
                                                       Clock& clock);

  // The outputs stored under `key`, or null when absent or expired (an expired entry is dropped).
  // A hit makes the entry the most recently used.
  std::shared_ptr<const CachedOutputs> Lookup(std::string_view key);

  // Stores `value` under `key`, replacing an older value, then evicts least recently used entries
  // until the shard fits its share of capacity_bytes and max_entries. An entry larger than the
  // byte share is not kept.
  void Insert(std::string_view key, std::shared_ptr<const CachedOutputs> value);

  size_t entries() const;
  size_t bytes() const;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const CachedOutputs> value;
    size_t bytes = 0;
    Clock::Steady::time_point expires;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // guarded by mu; front is the most recently used
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // guarded by mu
    size_t bytes = 0;                                                        // guarded by mu
  };

  ResponseCache(const ResponseCacheOptions& options, Clock& clock);
  Shard& ShardFor(std::string_view key);
  static void EraseLocked(Shard& s, std::list<Entry>::iterator it);

  const ResponseCacheOptions options_;
  const size_t shard_capacity_;
  const size_t shard_max_entries_;  // 0: no entry bound
  Clock& clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::dataplane
