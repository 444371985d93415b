#include "lib/base/duration.h"

#include <climits>
#include <cstdint>

namespace sluice {
namespace {

// Nanoseconds per unit; the longest matching suffix wins so "ms" is not read as "m".
struct Unit {
  std::string_view suffix;
  int64_t nanos;
};
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // µs (micro sign)
    {"\xCE\xBCs", 1'000},  // μs (Greek mu)
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

// Past ~146 years a duration is a typo, not a timeout; also keeps int64 nanoseconds exact.
constexpr int64_t kMaxNanos = INT64_MAX / 2;

// `value` / `scale` as a decimal fraction without trailing zeros ("5" for 500/1000), or "" for 0.
std::string Fraction(int64_t value, int64_t scale) {
  if (value == 0) return "";
  std::string digits = std::to_string(scale + value).substr(1);
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  return "." + digits;
}

}  // namespace

Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  const std::string original(text);
  const Status bad = InvalidArgument("invalid duration \"" + original + "\"");
  if (text.empty()) return bad;
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.front() == '-') return InvalidArgument("negative duration \"" + original + "\"");
  if (text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return bad;

  // Integer arithmetic throughout, so "1.001s" is exactly 1001ms.
  int64_t total = 0;
  while (!text.empty()) {
    int64_t whole = 0;
    int64_t frac = 0;
    int64_t frac_scale = 1;
    size_t i = 0;
    bool digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (whole > kMaxNanos / 10) {
        return InvalidArgument("duration \"" + original + "\" out of range");
      }
      whole = whole * 10 + (text[i] - '0');
      digits = true;
      ++i;
    }
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (frac_scale < 1'000'000'000'000'000LL) {  // beyond 18 digits nothing is measurable
          frac = frac * 10 + (text[i] - '0');
          frac_scale *= 10;
        }
        digits = true;
        ++i;
      }
    }
    if (!digits) return bad;
    text.remove_prefix(i);

    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(0, u.suffix.size()) == u.suffix &&
          (unit == nullptr || u.suffix.size() > unit->suffix.size())) {
        unit = &u;
      }
    }
    if (unit == nullptr) {
      return InvalidArgument("missing or unknown unit in duration \"" + original + "\"");
    }
    text.remove_prefix(unit->suffix.size());
    if (whole > kMaxNanos / unit->nanos) {
      return InvalidArgument("duration \"" + original + "\" out of range");
    }
    // frac / frac_scale of a unit, computed without overflow: frac < frac_scale ≤ 1e18.
    const long double part = static_cast<long double>(frac) * unit->nanos / frac_scale;
    total += whole * unit->nanos + static_cast<int64_t>(part + 0.5L);
    if (total > kMaxNanos) return InvalidArgument("duration \"" + original + "\" out of range");
  }
  return std::chrono::nanoseconds(total);
}

std::string FormatGoDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string out;
  if (ns < 0) {
    out = "-";
    ns = -ns;  // cannot overflow for anything ParseGoDuration returns
  }
  if (ns < 1'000) return out + std::to_string(ns) + "ns";
  if (ns < 1'000'000) return out + std::to_string(ns / 1'000) + Fraction(ns % 1'000, 1'000) + "us";
  if (ns < 1'000'000'000) {
    return out + std::to_string(ns / 1'000'000) + Fraction(ns % 1'000'000, 1'000'000) + "ms";
  }
  const int64_t hours = ns / 3'600'000'000'000;
  ns %= 3'600'000'000'000;
  const int64_t minutes = ns / 60'000'000'000;
  ns %= 60'000'000'000;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (minutes > 0) out += std::to_string(minutes) + "m";
  if (ns > 0) {
    out += std::to_string(ns / 1'000'000'000) + Fraction(ns % 1'000'000'000, 1'000'000'000) + "s";
  }
  return out;
}

}  // namespace sluice
