#include "dataplane/router/weighted_schedule.h"

#include <algorithm>
#include <numeric>

namespace sluice::dataplane {

WeightedSchedule::WeightedSchedule(const std::vector<int32_t>& weights) {
  std::vector<int64_t> w(weights.size());
  int64_t g = 0;
  int64_t total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    w[i] = std::max<int32_t>(weights[i], 0);
    g = std::gcd(g, w[i]);
    total += w[i];
    cumulative_.push_back(total);
  }
  if (total == 0) {
    cumulative_.clear();
    return;
  }
  // Dividing by the gcd keeps the period short (50/50 alternates instead of repeating every 100)
  // without changing the ratios.
  for (auto& x : w) x /= g;
  const int64_t period = total / g;
  sequence_.reserve(static_cast<size_t>(period));
  std::vector<int64_t> current(w.size(), 0);
  for (int64_t n = 0; n < period; ++n) {
    size_t best = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      current[i] += w[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= period;
    sequence_.push_back(static_cast<uint16_t>(best));
  }
}

int WeightedSchedule::ForHash(uint64_t hash) const {
  if (cumulative_.empty()) return -1;
  const auto total = static_cast<uint64_t>(cumulative_.back());
  const auto slot = static_cast<int64_t>(hash % total);
  // The first range whose end lies beyond the slot; zero-weight indices have empty ranges.
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), slot);
  return static_cast<int>(it - cumulative_.begin());
}

uint64_t StickyHash(std::string_view value) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : value) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // splitmix64's finalizer: FNV alone leaves the low bits of short, similar keys correlated,
  // and the modulo in ForHash reads exactly those.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

MirrorShare::MirrorShare(int32_t percent) : percent_(std::clamp<int32_t>(percent, 0, 100)) {}

bool MirrorShare::Take() {
  if (percent_ <= 0) return false;
  const uint64_t n = calls_.fetch_add(1, std::memory_order_relaxed) % 100;
  return ((n + 1) * percent_) / 100 > (n * percent_) / 100;
}

}  // namespace sluice::dataplane
