#include "dataplane/server/response_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/lib/base/fake_clock.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::FakeClock;

std::shared_ptr<const CachedOutputs> Outputs(float v, size_t pad_bytes = 0) {
  Tensor t("predict", DataType::kFp32, {1});
  t.mutable_bytes().assign(reinterpret_cast<const char*>(&v), sizeof(v));
  t.mutable_bytes().append(pad_bytes, '\0');
  return std::make_shared<const CachedOutputs>(CachedOutputs{t});
}

float ValueOf(const std::shared_ptr<const CachedOutputs>& o) {
  float v;
  std::memcpy(&v, (*o)[0].bytes().data(), sizeof(v));
  return v;
}

std::unique_ptr<ResponseCache> Make(ResponseCacheOptions o, Clock& clock) {
  auto c = ResponseCache::Create(o, clock);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(c).value();
}

TEST(ResponseCache, HitsWhatWasStoredAndMissesTheRest) {
  auto cache = Make({}, Clock::Real());
  EXPECT_EQ(cache->Lookup("a"), nullptr);
  cache->Insert("a", Outputs(1));
  cache->Insert("b", Outputs(2));
  ASSERT_NE(cache->Lookup("a"), nullptr);
  EXPECT_EQ(ValueOf(cache->Lookup("a")), 1);
  EXPECT_EQ(ValueOf(cache->Lookup("b")), 2);
  EXPECT_EQ(cache->Lookup("c"), nullptr);
  cache->Insert("a", Outputs(3));  // replaces
  EXPECT_EQ(ValueOf(cache->Lookup("a")), 3);
  EXPECT_EQ(cache->entries(), 2u);
}

TEST(ResponseCache, EntriesExpireAfterTheTtl) {
  FakeClock clock;
  ResponseCacheOptions o;
  o.ttl = std::chrono::milliseconds(100);
  auto cache = Make(o, clock);
  cache->Insert("k", Outputs(1));
  clock.Advance(std::chrono::milliseconds(99));
  EXPECT_NE(cache->Lookup("k"), nullptr);
  clock.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(cache->Lookup("k"), nullptr);
  EXPECT_EQ(cache->entries(), 0u);
  EXPECT_EQ(cache->bytes(), 0u);
}

TEST(ResponseCache, EvictsTheLeastRecentlyUsedToStayWithinCapacity) {
  ResponseCacheOptions o;
  o.shards = 1;
  o.ttl = std::chrono::milliseconds(0);
  // Find the size of one entry, then allow exactly four.
  {
    auto probe = Make(o, Clock::Real());
    probe->Insert("k1", Outputs(0));
    o.capacity_bytes = probe->bytes() * 4;
  }
  auto cache = Make(o, Clock::Real());
  for (int i = 1; i <= 4; ++i)
    cache->Insert("k" + std::to_string(i), Outputs(static_cast<float>(i)));
  EXPECT_EQ(cache->entries(), 4u);
  ASSERT_NE(cache->Lookup("k1"), nullptr);  // k1 is now the most recently used
  cache->Insert("k5", Outputs(5));
  EXPECT_EQ(cache->entries(), 4u);
  EXPECT_EQ(cache->Lookup("k2"), nullptr);  // the least recently used went
  EXPECT_NE(cache->Lookup("k1"), nullptr);
  EXPECT_NE(cache->Lookup("k3"), nullptr);
  EXPECT_NE(cache->Lookup("k5"), nullptr);
  EXPECT_LE(cache->bytes(), o.capacity_bytes);
  // An entry bigger than the whole cache is not kept and evicts nothing.
  cache->Insert("huge", Outputs(9, o.capacity_bytes));
  EXPECT_EQ(cache->Lookup("huge"), nullptr);
  EXPECT_EQ(cache->entries(), 4u);
}

TEST(ResponseCache, NeverHoldsMoreEntriesThanItsCapacity) {
  // spec.runtime.cache.capacity counts responses, whatever their size, across all shards.
  for (size_t capacity : {1, 3, 8, 100}) {
    ResponseCacheOptions o;
    o.max_entries = capacity;
    auto cache = Make(o, Clock::Real());
    for (int i = 0; i < 1000; ++i) {
      cache->Insert("k" + std::to_string(i), Outputs(static_cast<float>(i)));
      ASSERT_LE(cache->entries(), capacity) << "capacity " << capacity << " after " << i;
    }
    EXPECT_GE(cache->entries(), capacity / 2) << "capacity " << capacity;
    // The newest entry is always kept.
    EXPECT_NE(cache->Lookup("k999"), nullptr) << "capacity " << capacity;
  }
}

InferRequest Request(std::string name, DataType type, std::vector<int64_t> shape,
                     std::string bytes) {
  InferRequest r;
  Tensor t(std::move(name), type, std::move(shape));
  t.mutable_bytes() = std::move(bytes);
  r.inputs.push_back(std::move(t));
  return r;
}

TEST(ResponseCache, KeysAreTheExactRequestContent) {
  const std::string four(4 * 6, 'x');
  std::set<std::string> keys;
  auto add = [&](std::string key) { EXPECT_TRUE(keys.insert(std::move(key)).second); };
  const InferRequest base = Request("in", DataType::kFp32, {2, 3}, four);
  add(MakeCacheKey("m", "1", base));
  add(MakeCacheKey("m", "2", base));
  add(MakeCacheKey("n", "1", base));
  add(MakeCacheKey("m1", "", base));  // "m"+"1" must not equal "m1"+""
  add(MakeCacheKey("m", "1", Request("in2", DataType::kFp32, {2, 3}, four)));
  add(MakeCacheKey("m", "1", Request("in", DataType::kInt32, {2, 3}, four)));
  add(MakeCacheKey("m", "1", Request("in", DataType::kFp32, {3, 2}, four)));
  add(MakeCacheKey("m", "1", Request("in", DataType::kFp32, {2, 3}, std::string(24, 'y'))));
  InferRequest with_output = base;
  with_output.outputs.push_back({"predict", false, {}});
  add(MakeCacheKey("m", "1", with_output));
  // The same content gives the same key, whether the bytes are owned or viewed.
  InferRequest viewed = base;
  viewed.inputs[0].set_external(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(four.data()), four.size()));
  EXPECT_EQ(MakeCacheKey("m", "1", viewed), MakeCacheKey("m", "1", base));
}

TEST(ResponseCache, ConcurrentLookupsAndInserts) {
  ResponseCacheOptions o;
  o.capacity_bytes = 64 * 1024;
  auto cache = Make(o, Clock::Real());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const int k = (i * 7 + t) % 500;
        const std::string key = "key-" + std::to_string(k);
        if (auto hit = cache->Lookup(key)) {
          if (ValueOf(hit) != static_cast<float>(k)) ++wrong;
        } else {
          cache->Insert(key, Outputs(static_cast<float>(k)));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(cache->bytes(), o.capacity_bytes);
}

}  // namespace
}  // namespace sluice::dataplane
