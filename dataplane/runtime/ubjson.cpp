#include "dataplane/runtime/ubjson.h"

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>

namespace sluice::dataplane {
namespace {

using nlohmann::json;

// Counts of payload-less elements (`[$Z#...`, `[$T#...`) are not bounded by the input size, so
// they get a fixed ceiling instead.
constexpr int64_t kMaxPayloadlessCount = int64_t{1} << 20;

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  Result<json> ParseDocument() {
    SkipNoops();
    ASSIGN_OR_RETURN(json value, ParseValue());
    SkipNoops();
    if (pos_ != in_.size()) {
      return Error("trailing bytes after the top-level value");
    }
    return value;
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgument("ubjson: " + std::string(what) + " at byte " + std::to_string(pos_));
  }

  size_t Remaining() const { return in_.size() - pos_; }

  void SkipNoops() {
    while (pos_ < in_.size() && in_[pos_] == 'N') ++pos_;
  }

  Result<char> ReadMarker() {
    if (pos_ >= in_.size()) return Error("unexpected end of input");
    return in_[pos_++];
  }

  // Reads a big-endian fixed-width value.
  template <typename T>
  Result<T> ReadRaw() {
    if (Remaining() < sizeof(T)) return Error("unexpected end of input inside a number");
    std::array<unsigned char, sizeof(T)> buf;
    std::memcpy(buf.data(), in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    if constexpr (std::endian::native == std::endian::little) {
      for (size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(buf[i], buf[sizeof(T) - 1 - i]);
    }
    T out;
    std::memcpy(&out, buf.data(), sizeof(T));
    return out;
  }

  static bool IsIntegerMarker(char m) {
    return m == 'i' || m == 'U' || m == 'I' || m == 'l' || m == 'L';
  }

  Result<int64_t> ReadIntegerPayload(char marker) {
    switch (marker) {
      case 'i': {
        ASSIGN_OR_RETURN(int8_t v, ReadRaw<int8_t>());
        return int64_t{v};
      }
      case 'U': {
        ASSIGN_OR_RETURN(uint8_t v, ReadRaw<uint8_t>());
        return int64_t{v};
      }
      case 'I': {
        ASSIGN_OR_RETURN(int16_t v, ReadRaw<int16_t>());
        return int64_t{v};
      }
      case 'l': {
        ASSIGN_OR_RETURN(int32_t v, ReadRaw<int32_t>());
        return int64_t{v};
      }
      case 'L':
        return ReadRaw<int64_t>();
      default:
        return Error(std::string("expected an integer marker, got '") + Printable(marker) + "'");
    }
  }

  // A length or count: an integer with its own marker, never negative.
  Result<int64_t> ReadLength() {
    ASSIGN_OR_RETURN(char marker, ReadMarker());
    ASSIGN_OR_RETURN(int64_t n, ReadIntegerPayload(marker));
    if (n < 0) return Error("negative length");
    return n;
  }

  Result<std::string> ReadStringPayload() {
    ASSIGN_OR_RETURN(int64_t n, ReadLength());
    if (static_cast<uint64_t>(n) > Remaining()) return Error("string longer than the input");
    std::string s(in_.substr(pos_, static_cast<size_t>(n)));
    pos_ += static_cast<size_t>(n);
    return s;
  }

  static std::string Printable(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
    return buf;
  }

  // The smallest number of bytes one element of the given type occupies, to bound counts.
  static size_t MinElementSize(char type) {
    switch (type) {
      case 'Z':
      case 'N':
      case 'T':
      case 'F':
        return 0;
      case 'i':
      case 'U':
      case 'C':
        return 1;
      case 'I':
        return 2;
      case 'l':
      case 'd':
        return 4;
      case 'L':
      case 'D':
        return 8;
      default:
        return 1;  // strings and containers need at least a marker or a length
    }
  }

  Result<json> ParseValue() {
    ASSIGN_OR_RETURN(char marker, ReadMarker());
    return ParsePayload(marker);
  }

  Result<json> ParsePayload(char marker) {
    switch (marker) {
      case 'Z':
        return json(nullptr);
      case 'T':
        return json(true);
      case 'F':
        return json(false);
      case 'i':
      case 'I':
      case 'l':
      case 'L': {
        ASSIGN_OR_RETURN(int64_t v, ReadIntegerPayload(marker));
        return json(v);
      }
      case 'U': {
        ASSIGN_OR_RETURN(uint8_t v, ReadRaw<uint8_t>());
        return json(static_cast<uint64_t>(v));
      }
      case 'd': {
        ASSIGN_OR_RETURN(float v, ReadRaw<float>());
        return json(static_cast<double>(v));
      }
      case 'D': {
        ASSIGN_OR_RETURN(double v, ReadRaw<double>());
        return json(v);
      }
      case 'C': {
        ASSIGN_OR_RETURN(uint8_t v, ReadRaw<uint8_t>());
        return json(std::string(1, static_cast<char>(v)));
      }
      case 'S': {
        ASSIGN_OR_RETURN(std::string s, ReadStringPayload());
        return json(std::move(s));
      }
      case 'H': {
        ASSIGN_OR_RETURN(std::string s, ReadStringPayload());
        double v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size()) {
          return Error("high-precision number is not a number");
        }
        return json(v);
      }
      case '[':
        return ParseContainer(/*object=*/false);
      case '{':
        return ParseContainer(/*object=*/true);
      default:
        return Error(std::string("unknown marker '") + Printable(marker) + "'");
    }
  }

  Result<json> ParseContainer(bool object) {
    if (++depth_ > kUbjsonMaxDepth) return Error("nesting deeper than the limit");
    Result<json> out = object ? ParseObjectBody() : ParseArrayBody();
    --depth_;
    return out;
  }

  // Reads the optional `$type` and `#count` header of an optimized container. Returns the count,
  // or -1 for a container that ends with its closing marker.
  Result<int64_t> ReadContainerHeader(char* type) {
    *type = 0;
    if (pos_ < in_.size() && in_[pos_] == '$') {
      ++pos_;
      ASSIGN_OR_RETURN(*type, ReadMarker());
      if (pos_ >= in_.size() || in_[pos_] != '#') return Error("'$' type without a '#' count");
    }
    if (pos_ < in_.size() && in_[pos_] == '#') {
      ++pos_;
      ASSIGN_OR_RETURN(int64_t count, ReadLength());
      size_t min_size = MinElementSize(*type);
      if (min_size == 0) {
        if (count > kMaxPayloadlessCount) return Error("count of payload-less elements too large");
      } else if (static_cast<uint64_t>(count) > Remaining() / min_size) {
        return Error("container count larger than the input");
      }
      return count;
    }
    return int64_t{-1};
  }

  Result<json> ParseElement(char type) {
    if (type == 0) {
      SkipNoops();
      return ParseValue();
    }
    return ParsePayload(type);
  }

  Result<json> ParseArrayBody() {
    char type = 0;
    ASSIGN_OR_RETURN(int64_t count, ReadContainerHeader(&type));
    json arr = json::array();
    if (count >= 0) {
      arr.get_ref<json::array_t&>().reserve(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        ASSIGN_OR_RETURN(json v, ParseElement(type));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    for (;;) {
      SkipNoops();
      if (pos_ >= in_.size()) return Error("unexpected end of input inside an array");
      if (in_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      ASSIGN_OR_RETURN(json v, ParseValue());
      arr.push_back(std::move(v));
    }
  }

  Result<json> ParseObjectBody() {
    char type = 0;
    ASSIGN_OR_RETURN(int64_t count, ReadContainerHeader(&type));
    json obj = json::object();
    auto& members = obj.get_ref<json::object_t&>();
    if (count >= 0) {
      for (int64_t i = 0; i < count; ++i) {
        ASSIGN_OR_RETURN(std::string key, ReadStringPayload());
        ASSIGN_OR_RETURN(json v, ParseElement(type));
        members[std::move(key)] = std::move(v);
      }
      return obj;
    }
    for (;;) {
      SkipNoops();
      if (pos_ >= in_.size()) return Error("unexpected end of input inside an object");
      if (in_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      ASSIGN_OR_RETURN(std::string key, ReadStringPayload());
      SkipNoops();
      ASSIGN_OR_RETURN(json v, ParseValue());
      members[std::move(key)] = std::move(v);
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<nlohmann::json> ParseUbjson(std::string_view bytes) {
  if (bytes.empty()) return InvalidArgument("ubjson: empty input");
  return Reader(bytes).ParseDocument();
}

}  // namespace sluice::dataplane
