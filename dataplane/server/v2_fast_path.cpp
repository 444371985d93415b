// The fast path: the common request shape (named tensors with datatype, shape and flat data, no
// parameters) parsed without building a JSON tree; anything else falls back to the streaming
// parser.

#include <charconv>
#include <cstring>

#include "dataplane/server/v2_codec.h"
#include "dataplane/server/v2_codec_internal.h"

namespace sluice::dataplane {

using json = nlohmann::json;
using namespace v2_internal;

namespace {

// A cursor over the body for the fast path. Every method returns false on anything outside the
// narrow grammar it accepts; the caller then falls back to the general parser.
class FastCursor {
 public:
  explicit FastCursor(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    SkipSpace();
    return p_ == end_;
  }
  // A string of printable ASCII without escapes.
  bool String(std::string_view& out) {
    if (!Eat('"')) return false;
    const char* start = p_;
    while (p_ < end_ && *p_ != '"') {
      const auto u = static_cast<unsigned char>(*p_);
      if (u < 0x20 || u >= 0x80 || *p_ == '\\') return false;
      ++p_;
    }
    if (p_ == end_) return false;
    out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }
  // A non-negative JSON integer.
  bool Unsigned(uint64_t& out) {
    SkipSpace();
    const char* start = p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ == start || (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E'))) return false;
    auto [ptr, ec] = std::from_chars(start, p_, out);
    return ec == std::errc() && ptr == p_;
  }
  // A JSON number, read exactly as the general path reads it: the nearest double, where an
  // integer "-0" is the integer zero.
  bool Number(double& out) {
    SkipSpace();
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    const char* digits = p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ == digits) return false;
    bool integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      const char* frac = ++p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == frac) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      const char* exp = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == exp) return false;
    }
    auto [ptr, ec] = std::from_chars(start, p_, out);
    if (ec != std::errc() || ptr != p_) return false;  // out of range: let the general path say so
    if (integer && out == 0) out = 0.0;                // "-0" is an integer zero, without a sign
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

bool FastTensor(FastCursor& c, size_t body_size, Tensor& out) {
  if (!c.Eat('{')) return false;
  std::string_view name, datatype;
  std::vector<int64_t> shape;
  bool has_name = false, has_datatype = false, has_shape = false, has_data = false;
  std::string bytes;
  // `data` is decoded once the shape is known, so it must come after `shape`.
  do {
    std::string_view key;
    if (!c.String(key) || !c.Eat(':')) return false;
    if (key == "name" && !has_name) {
      if (!c.String(name)) return false;
      has_name = true;
    } else if (key == "datatype" && !has_datatype) {
      if (!c.String(datatype) || datatype != "FP32") return false;
      has_datatype = true;
    } else if (key == "shape" && !has_shape) {
      if (!c.Eat('[')) return false;
      if (!c.Eat(']')) {
        do {
          uint64_t d;
          if (!c.Unsigned(d) || d > kMaxTensorElements || shape.size() >= kMaxTensorRank) {
            return false;
          }
          shape.push_back(static_cast<int64_t>(d));
        } while (c.Eat(','));
        if (!c.Eat(']')) return false;
      }
      has_shape = true;
    } else if (key == "data" && !has_data && has_shape) {
      auto count = ElementCount(shape);
      if (!count.ok() || *count > body_size) return false;
      bytes.reserve(*count * sizeof(float));
      if (!c.Eat('[')) return false;
      if (!c.Eat(']')) {
        do {
          double d;
          if (!c.Number(d) || bytes.size() >= *count * sizeof(float)) return false;
          if (std::fabs(d) > std::numeric_limits<float>::max()) return false;
          AppendPod<float>(bytes, static_cast<float>(d));
        } while (c.Eat(','));
        if (!c.Eat(']')) return false;
      }
      if (bytes.size() != *count * sizeof(float)) return false;
      has_data = true;
    } else {
      return false;
    }
  } while (c.Eat(','));
  if (!c.Eat('}') || !has_name || !has_datatype || !has_data) return false;
  out = Tensor(std::string(name), DataType::kFp32, std::move(shape));
  out.mutable_bytes() = std::move(bytes);
  return true;
}

}  // namespace

std::optional<InferRequest> ParseCommonInferRequest(std::string_view json) {
  FastCursor c(json);
  InferRequest req;
  bool has_id = false, has_inputs = false;
  if (!c.Eat('{')) return std::nullopt;
  do {
    std::string_view key;
    if (!c.String(key) || !c.Eat(':')) return std::nullopt;
    if (key == "id" && !has_id) {
      std::string_view id;
      if (!c.String(id)) return std::nullopt;
      req.id = std::string(id);
      has_id = true;
    } else if (key == "inputs" && !has_inputs) {
      if (!c.Eat('[')) return std::nullopt;
      if (!c.Eat(']')) {
        do {
          Tensor t;
          if (req.inputs.size() >= kMaxTensors || !FastTensor(c, json.size(), t))
            return std::nullopt;
          for (const Tensor& other : req.inputs) {
            if (other.name() == t.name()) return std::nullopt;
          }
          req.inputs.push_back(std::move(t));
        } while (c.Eat(','));
        if (!c.Eat(']')) return std::nullopt;
      }
      has_inputs = true;
    } else {
      return std::nullopt;
    }
  } while (c.Eat(','));
  if (!c.Eat('}') || !c.AtEnd() || !has_inputs) return std::nullopt;
  return req;
}

}  // namespace sluice::dataplane
