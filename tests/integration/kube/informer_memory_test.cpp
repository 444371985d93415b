// How much resident memory an informer needs for 10,000 ConfigMaps, measured from
// /proc/self/status, with objects as the API server returns them and with managedFields
// dropped. Prints the figures; fails if the cache is far larger than the objects warrant.

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/kube/client_it_util.h"
#include "lib/kube/informer.h"
#include "tests/support/api_server.h"

namespace sluice::kube {
namespace {

using std::chrono::seconds;

// VmRSS in KiB, after handing freed heap back to the system so the figure reflects live data.
long ResidentKiB() {
  malloc_trim(0);
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

struct Measurement {
  long rss_kib = 0;
  double sync_seconds = 0;
  size_t objects = 0;
};

Measurement MeasureInformer(Client& client, const std::string& ns, bool strip_managed_fields) {
  const long before = ResidentKiB();
  InformerOptions options;
  options.name = strip_managed_fields ? "configmaps-stripped" : "configmaps";
  if (strip_managed_fields) options.watcher.transform = StripManagedFields;
  const auto start = std::chrono::steady_clock::now();
  auto informer = Informer::ForResource(client, resources::kConfigMaps, ns, options);
  informer->Start();
  EXPECT_TRUE(informer->WaitForSync(Clock::Real().Now() + seconds(300)));
  Measurement m;
  m.sync_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.objects = informer->store()->Size();
  m.rss_kib = ResidentKiB() - before;
  informer->Stop();
  return m;
}

TEST(InformerMemoryTest, TenThousandConfigMaps) {
  sluice::testing::SharedApiServer();
  auto admin = it::AdminClient();
  ASSERT_NE(admin, nullptr);
  const std::string ns = it::FreshNamespace(*admin, "memory");

  constexpr int kObjects = 10000;
  constexpr int kWriters = 4;
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  const auto create_start = std::chrono::steady_clock::now();
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      for (int i = next++; i < kObjects; i = next++) {
        // A realistic small ConfigMap: a few labels and ~200 bytes of data.
        Json cm = it::ConfigMap("cm-" + std::to_string(i),
                                {{"model", "fraud-detector"},
                                 {"version", std::to_string(i % 7)},
                                 {"threshold", "0.73"},
                                 {"features",
                                  "amount,merchant_category,hour_of_day,country,"
                                  "card_age_days,velocity_1h,velocity_24h"}},
                                {{"app", "sluice"}, {"shard", std::to_string(i % 16)}});
        auto r = admin->Create(resources::kConfigMaps, ns, cm);
        if (!r.ok()) {
          ++failed;
          ADD_FAILURE() << "create cm-" << i << ": " << r.status();
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  const double create_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - create_start).count();
  ASSERT_EQ(failed.load(), 0);

  auto informer_client = it::AdminClient();
  const Measurement full = MeasureInformer(*informer_client, ns, false);
  const Measurement stripped = MeasureInformer(*informer_client, ns, true);
  EXPECT_EQ(full.objects, static_cast<size_t>(kObjects));
  EXPECT_EQ(stripped.objects, static_cast<size_t>(kObjects));

  std::printf(
      "[informer-memory] created %d ConfigMaps in %.1f s (%.0f/s, %d client threads)\n"
      "[informer-memory] informer, objects as served:   +%ld KiB RSS (%.0f bytes/object), "
      "synced in %.2f s\n"
      "[informer-memory] informer, managedFields dropped: +%ld KiB RSS (%.0f bytes/object), "
      "synced in %.2f s\n",
      kObjects, create_seconds, kObjects / create_seconds, kWriters, full.rss_kib,
      full.rss_kib * 1024.0 / kObjects, full.sync_seconds, stripped.rss_kib,
      stripped.rss_kib * 1024.0 / kObjects, stripped.sync_seconds);
  // One shared copy per object: a ConfigMap like these is ~1.5 KB of JSON text with
  // managedFields, and nlohmann::json needs a few times that in memory. 8 KiB per object
  // would mean copies per index or leaked list pages. AddressSanitizer pads every allocation with
  // redzones and keeps freed memory in quarantine, so its builds get three times the room.
#if defined(__SANITIZE_ADDRESS__)
  constexpr long kKibPerObject = 24;
#else
  constexpr long kKibPerObject = 8;
#endif
  EXPECT_LT(full.rss_kib, kKibPerObject * kObjects);
  EXPECT_LT(stripped.rss_kib, full.rss_kib);
}

}  // namespace
}  // namespace sluice::kube
