#include "dataplane/features/source/value_parse.h"

#include <charconv>
#include <cmath>

#include "lib/base/base64.h"

namespace sluice::features {

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool LeapYear(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

}  // namespace

bool ParseInt64(std::string_view s, int64_t& out) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && p == e && b != e;
}

bool ParseIntegral(std::string_view s, int64_t& out) {
  if (ParseInt64(s, out)) return true;
  size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  for (size_t i = dot + 1; i < s.size(); ++i) {
    if (s[i] != '0') return false;
  }
  return ParseInt64(s.substr(0, dot), out);
}

bool ParseDouble(std::string_view s, double& out, bool& null) {
  null = false;
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, out);
  if (ec != std::errc() || p != e || b == e) return false;
  if (std::isnan(out)) null = true;
  return true;
}

bool ParseBool(std::string_view s, bool& out) {
  if (s == "1" || s == "true" || s == "True" || s == "TRUE") {
    out = true;
    return true;
  }
  if (s == "0" || s == "false" || s == "False" || s == "FALSE") {
    out = false;
    return true;
  }
  return false;
}

bool DecodeBase64(std::string_view s, std::string& out) {
  // Padding is optional here (as Python's and pandas' writers differ); the strict decoder gets it.
  std::string padded(s);
  if (padded.size() % 4 != 0) padded.append(4 - padded.size() % 4, '=');
  auto decoded = sluice::DecodeBase64(padded);
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

bool ParseTimestamp(std::string_view s, int64_t& nanos) {
  // Integer epoch seconds.
  int64_t secs;
  if (ParseInt64(s, secs)) {
    return !__builtin_mul_overflow(secs, int64_t{1'000'000'000}, &nanos);
  }
  int64_t y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
  if (!Digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
      !Digits(s, 8, 2, d)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d > kDays[mo - 1] + (mo == 2 && LeapYear(y) ? 1 : 0)) return false;
  size_t pos = 10;
  int64_t offset_secs = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return false;
    ++pos;
    if (!Digits(s, pos, 2, h) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !Digits(s, pos + 3, 2, mi)) {
      return false;
    }
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!Digits(s, pos + 1, 2, sec)) return false;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        int digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (digits < 9) {
            frac = frac * 10 + (s[pos] - '0');
            ++digits;
          }
          ++pos;
        }
        if (digits == 0) return false;
        for (int i = digits; i < 9; ++i) frac *= 10;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return false;
    if (pos < s.size()) {
      char z = s[pos];
      if ((z == 'Z' || z == 'z') && pos + 1 == s.size()) {
        pos = s.size();
      } else if (z == '+' || z == '-') {
        int64_t oh, om = 0;
        if (!Digits(s, pos + 1, 2, oh)) return false;
        size_t q = pos + 3;
        if (q < s.size() && s[q] == ':') ++q;
        if (q < s.size()) {
          if (!Digits(s, q, 2, om) || q + 2 != s.size()) return false;
        }
        if (oh > 23 || om > 59) return false;
        offset_secs = (oh * 3600 + om * 60) * (z == '+' ? 1 : -1);
        pos = s.size();
      } else {
        return false;
      }
    }
  }
  int64_t days = DaysFromCivil(y, mo, d);
  int64_t total = days * 86400 + h * 3600 + mi * 60 + sec - offset_secs;
  int64_t ns;
  if (__builtin_mul_overflow(total, int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, frac, &ns)) {
    return false;
  }
  nanos = ns;
  return true;
}

}  // namespace sluice::features
