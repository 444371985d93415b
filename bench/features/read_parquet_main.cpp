// sluice-bench-read-source: reads a batch source with the feature source reader and prints rows
// per second. Run by hand on a file from make_big.py (see dataplane/features/source/README.md):
//   sluice-bench-read-source /tmp/big.parquet [repeats]
// Requests the columns make_big.py writes, with the FeatureView types a fraud model declares.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dataplane/features/source/table_reader.h"

using sluice::features::Chunk;
using sluice::features::ColumnType;
using sluice::features::OpenSource;
using sluice::features::SourceOptions;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.parquet|FILE.csv [repeats]\n", argv[0]);
    return 2;
  }
  int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  SourceOptions o;
  o.uri = argv[1];
  o.columns = {
      {"card_id", ColumnType::kString},
      {"merchant_id", ColumnType::kInt64},
      {"velocity_last_24h", ColumnType::kInt32},
      {"cardholder_age", ColumnType::kInt32},
      {"txn_count_30d", ColumnType::kInt64},
      {"avg_amount_30d", ColumnType::kDouble},
      {"max_amount_30d", ColumnType::kDouble},
      {"fraud_score", ColumnType::kFloat},
      {"distance_km", ColumnType::kFloat},
      {"is_premium", ColumnType::kBool},
      {"home_country", ColumnType::kString},
      {"merchant_category", ColumnType::kInt32},
      {"event_timestamp", ColumnType::kTimestamp},
  };
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto reader = OpenSource(o);
    if (!reader.ok()) {
      std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
      return 1;
    }
    Chunk chunk;
    uint64_t checksum = 0;
    while (true) {
      auto more = (*reader)->Next(chunk);
      if (!more.ok()) {
        std::fprintf(stderr, "%s\n", more.status().ToString().c_str());
        return 1;
      }
      if (!*more) break;
      checksum += static_cast<uint64_t>(chunk.columns[1].ints[0]);  // keep the reads alive
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = static_cast<double>((*reader)->rows_read()) / secs;
    if (rate > best) best = rate;
    std::printf("run %d: %llu rows x %zu columns in %.3f s: %.0f rows/s (checksum %llu)\n", i,
                static_cast<unsigned long long>((*reader)->rows_read()), o.columns.size(), secs,
                rate, static_cast<unsigned long long>(checksum));
  }
  std::printf("best: %.0f rows/s\n", best);
  return 0;
}
