#include "controllers/scrape/prom_text.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace sluice::controllers {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || (c >= '0' && c <= '9');
}
bool IsLabelStart(char c) {
  return IsNameStart(c) && c != ':';
}
bool IsLabelChar(char c) {
  return IsNameChar(c) && c != ':';
}
bool IsBlank(char c) {
  return c == ' ' || c == '\t';
}

// A cursor over one line.
class Line {
 public:
  Line(std::string_view text, int number) : text_(text), number_(number) {}

  bool Done() const { return pos_ >= text_.size(); }
  char Peek() const { return Done() ? '\0' : text_[pos_]; }
  void SkipBlanks() {
    while (!Done() && IsBlank(text_[pos_])) ++pos_;
  }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  std::string_view TakeWhile(bool (*pred)(char)) {
    const size_t start = pos_;
    while (!Done() && pred(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  std::string_view TakeToken() {
    const size_t start = pos_;
    while (!Done() && !IsBlank(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  std::string_view Rest() const { return text_.substr(std::min(pos_, text_.size())); }
  void SkipAll() { pos_ = text_.size(); }
  Status Error(const std::string& what) const {
    return InvalidArgument("metrics line " + std::to_string(number_) + ", column " +
                           std::to_string(pos_ + 1) + ": " + what);
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int number_;
};

Result<double> ParseValue(std::string_view token) {
  // Go's ParseFloat, which the format is defined by, takes Inf/NaN in any case and an optional
  // sign; strtod does too, plus hex floats and "infinity", which are harmless.
  if (token.empty()) return InvalidArgument("missing value");
  std::string copy(token);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) {
    return InvalidArgument("\"" + copy + "\" is not a number");
  }
  // Out-of-range literals saturate to ±Inf or underflow towards 0, as in Go.
  return v;
}

Result<int64_t> ParseTimestamp(std::string_view token) {
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
  if (ec != std::errc() || ptr != token.data() + token.size()) {
    return InvalidArgument("\"" + std::string(token) + "\" is not a timestamp in milliseconds");
  }
  return out;
}

std::optional<PromType> ParseType(std::string_view t) {
  if (t == "counter") return PromType::kCounter;
  if (t == "gauge") return PromType::kGauge;
  if (t == "histogram") return PromType::kHistogram;
  if (t == "summary") return PromType::kSummary;
  if (t == "untyped") return PromType::kUntyped;
  return std::nullopt;
}

// HELP text escapes: \\ and \n.
std::string UnescapeHelp(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size()) {
      if (in[i + 1] == 'n') {
        out += '\n';
        ++i;
        continue;
      }
      if (in[i + 1] == '\\') {
        out += '\\';
        ++i;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

Status ParseComment(Line& line, PromExposition& out) {
  line.Consume('#');
  line.SkipBlanks();
  const std::string_view keyword = line.TakeToken();
  if (keyword != "HELP" && keyword != "TYPE") return Status::Ok();  // a plain comment
  line.SkipBlanks();
  const std::string_view name = line.TakeWhile(IsNameChar);
  if (name.empty() || !IsNameStart(name.front())) {
    // Free text that happens to start with the word HELP or TYPE.
    return Status::Ok();
  }
  if (!line.Done() && !IsBlank(line.Peek()))
    return line.Error("bad metric name in " + std::string(keyword));
  line.SkipBlanks();
  if (keyword == "HELP") {
    out.help[std::string(name)] = UnescapeHelp(line.Rest());
    return Status::Ok();
  }
  const std::string_view type = line.TakeToken();
  const std::optional<PromType> t = ParseType(type);
  if (!t) return line.Error("unknown metric type \"" + std::string(type) + "\"");
  line.SkipBlanks();
  if (!line.Done()) return line.Error("unexpected text after the TYPE");
  if (out.types.count(std::string(name))) {
    return line.Error("second TYPE line for " + std::string(name));
  }
  out.types[std::string(name)] = *t;
  return Status::Ok();
}

Status ParseLabelValue(Line& line, std::string& value) {
  if (!line.Consume('"')) return line.Error("expected '\"' to open a label value");
  while (true) {
    if (line.Done()) return line.Error("unterminated label value");
    const char c = line.Peek();
    line.Consume(c);
    if (c == '"') return Status::Ok();
    if (c != '\\') {
      value += c;
      continue;
    }
    if (line.Done()) return line.Error("unterminated escape in a label value");
    const char e = line.Peek();
    line.Consume(e);
    switch (e) {
      case '\\':
        value += '\\';
        break;
      case '"':
        value += '"';
        break;
      case 'n':
        value += '\n';
        break;
      default:
        return line.Error(std::string("unknown escape \\") + e + " in a label value");
    }
  }
}

Status ParseSample(Line& line, PromExposition& out) {
  PromSample s;
  const std::string_view name = line.TakeWhile(IsNameChar);
  if (name.empty() || !IsNameStart(name.front())) return line.Error("expected a metric name");
  s.name = std::string(name);
  line.SkipBlanks();
  if (line.Consume('{')) {
    while (true) {
      line.SkipBlanks();
      if (line.Consume('}')) break;
      const std::string_view label = line.TakeWhile(IsLabelChar);
      if (label.empty() || !IsLabelStart(label.front())) return line.Error("expected a label name");
      line.SkipBlanks();
      if (!line.Consume('=')) return line.Error("expected '=' after label " + std::string(label));
      line.SkipBlanks();
      std::string value;
      RETURN_IF_ERROR(ParseLabelValue(line, value));
      for (const auto& [k, v] : s.labels) {
        if (k == label) return line.Error("label " + std::string(label) + " appears twice");
      }
      s.labels.emplace_back(std::string(label), std::move(value));
      line.SkipBlanks();
      if (line.Consume(',')) continue;
      if (line.Consume('}')) break;
      return line.Error("expected ',' or '}' in the label set");
    }
    line.SkipBlanks();
  }
  const std::string_view value = line.TakeToken();
  if (value.empty()) return line.Error("missing value");
  auto v = ParseValue(value);
  if (!v.ok()) return line.Error(v.status().message());
  s.value = *v;
  line.SkipBlanks();
  if (!line.Done()) {
    const std::string_view ts = line.TakeToken();
    auto t = ParseTimestamp(ts);
    if (!t.ok()) return line.Error(t.status().message());
    s.timestamp_ms = *t;
    line.SkipBlanks();
    if (!line.Done()) return line.Error("unexpected text after the timestamp");
  }
  out.samples.push_back(std::move(s));
  return Status::Ok();
}

}  // namespace

const std::string* PromSample::Label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return &v;
  }
  return nullptr;
}

Result<PromExposition> ParsePrometheusText(std::string_view text) {
  PromExposition out;
  int number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    Line line(raw, number);
    line.SkipBlanks();
    if (line.Done()) continue;
    if (line.Peek() == '#') {
      RETURN_IF_ERROR(ParseComment(line, out));
    } else {
      RETURN_IF_ERROR(ParseSample(line, out));
    }
  }
  return out;
}

std::optional<double> HistogramQuantile(double q, std::vector<HistogramBucket> buckets) {
  if (!(q >= 0 && q <= 1)) return std::nullopt;
  std::sort(buckets.begin(), buckets.end(), [](const HistogramBucket& a, const HistogramBucket& b) {
    return a.upper_bound < b.upper_bound;
  });
  if (buckets.empty() || !std::isinf(buckets.back().upper_bound) ||
      buckets.back().upper_bound < 0) {
    return std::nullopt;
  }
  for (size_t i = 1; i < buckets.size(); ++i) {
    buckets[i].count = std::max(buckets[i].count, buckets[i - 1].count);
  }
  const double total = buckets.back().count;
  if (!(total > 0)) return std::nullopt;
  if (buckets.size() < 2) return std::nullopt;  // only +Inf: nothing to interpolate within
  const double rank = q * total;
  size_t b = 0;
  while (b < buckets.size() - 1 && buckets[b].count < rank) ++b;
  if (b == buckets.size() - 1) return buckets[b - 1].upper_bound;
  const double upper = buckets[b].upper_bound;
  if (b == 0 && upper <= 0) return upper;
  const double lower = b == 0 ? 0 : buckets[b - 1].upper_bound;
  const double below = b == 0 ? 0 : buckets[b - 1].count;
  const double in_bucket = buckets[b].count - below;
  if (in_bucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / in_bucket);
}

}  // namespace sluice::controllers
