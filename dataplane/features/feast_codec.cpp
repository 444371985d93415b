#include "dataplane/features/feast_codec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "lib/base/base64.h"

namespace sluice::features {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

// Value.proto field numbers of the scalars, and null_val.
constexpr uint32_t kBytesVal = 1;
constexpr uint32_t kStringVal = 2;
constexpr uint32_t kInt32Val = 3;
constexpr uint32_t kInt64Val = 4;
constexpr uint32_t kDoubleVal = 5;
constexpr uint32_t kFloatVal = 6;
constexpr uint32_t kBoolVal = 7;
constexpr uint32_t kUnixTimestampVal = 8;
constexpr uint32_t kNullVal = 19;

void PutVarint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutTag(uint32_t field, uint32_t wire, std::string& out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | wire, out);
}

template <typename T>
void PutLittle(T v, std::string& out) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // x86-64 and arm64 are little-endian
  out.append(buf, sizeof(T));
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

template <typename T>
bool GetLittle(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

}  // namespace

float FeastValue::AsFloat() const {
  if (!present) return std::numeric_limits<float>::quiet_NaN();
  switch (type) {
    case FeastType::kInt32:
    case FeastType::kInt64:
    case FeastType::kUnixTimestamp:
    case FeastType::kBool:
      return static_cast<float>(i);
    case FeastType::kFloat:
    case FeastType::kDouble:
      return static_cast<float>(d);
    case FeastType::kString:
    case FeastType::kBytes:
      break;
  }
  return std::numeric_limits<float>::quiet_NaN();
}

void EncodeValue(const FeastValue& v, std::string& out) {
  if (!v.present) {
    if (v.type == FeastType::kUnixTimestamp) {
      PutTag(kUnixTimestampVal, kVarint, out);
      PutVarint(static_cast<uint64_t>(std::numeric_limits<int64_t>::min()), out);
    }
    return;
  }
  switch (v.type) {
    case FeastType::kBytes:
    case FeastType::kString:
      PutTag(v.type == FeastType::kBytes ? kBytesVal : kStringVal, kLengthDelimited, out);
      PutVarint(v.s.size(), out);
      out.append(v.s);
      return;
    case FeastType::kInt32:
      PutTag(kInt32Val, kVarint, out);
      // int32 is sign-extended to 64 bits on the wire.
      PutVarint(static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v.i))), out);
      return;
    case FeastType::kInt64:
    case FeastType::kUnixTimestamp:
      PutTag(v.type == FeastType::kInt64 ? kInt64Val : kUnixTimestampVal, kVarint, out);
      PutVarint(static_cast<uint64_t>(v.i), out);
      return;
    case FeastType::kDouble:
      if (std::isnan(v.d)) return;
      PutTag(kDoubleVal, kFixed64, out);
      PutLittle<double>(v.d, out);
      return;
    case FeastType::kFloat:
      if (std::isnan(v.d)) return;
      PutTag(kFloatVal, kFixed32, out);
      PutLittle<float>(static_cast<float>(v.d), out);
      return;
    case FeastType::kBool:
      PutTag(kBoolVal, kVarint, out);
      PutVarint(v.i != 0 ? 1 : 0, out);
      return;
  }
}

std::string EncodeValue(const FeastValue& v) {
  std::string out;
  EncodeValue(v, out);
  return out;
}

Result<FeastValue> DecodeValue(std::string_view in) {
  FeastValue v;
  // A oneof: the last scalar on the wire wins, as protobuf parsers do.
  while (!in.empty()) {
    uint64_t tag = 0;
    if (!GetVarint(in, tag)) return InvalidArgument("a Feast value has a truncated field tag");
    const auto field = static_cast<uint32_t>(tag >> 3);
    const auto wire = static_cast<uint32_t>(tag & 7);
    uint64_t n = 0;
    switch (field) {
      case kBytesVal:
      case kStringVal: {
        if (wire != kLengthDelimited || !GetVarint(in, n) || n > in.size()) {
          return InvalidArgument("a Feast string or bytes value is malformed");
        }
        v = field == kBytesVal ? FeastValue::Bytes(std::string(in.substr(0, n)))
                               : FeastValue::String(std::string(in.substr(0, n)));
        in.remove_prefix(n);
        break;
      }
      case kInt32Val:
      case kInt64Val:
      case kUnixTimestampVal:
      case kBoolVal:
        if (wire != kVarint || !GetVarint(in, n)) {
          return InvalidArgument("a Feast integer value is malformed");
        }
        if (field == kInt32Val) {
          v = FeastValue::Int32(static_cast<int32_t>(static_cast<uint32_t>(n)));
        } else if (field == kInt64Val) {
          v = FeastValue::Int64(static_cast<int64_t>(n));
        } else if (field == kUnixTimestampVal) {
          const auto seconds = static_cast<int64_t>(n);
          v = seconds == std::numeric_limits<int64_t>::min()
                  ? FeastValue::MissingOf(FeastType::kUnixTimestamp)
                  : FeastValue::UnixTimestamp(seconds);
        } else {
          v = FeastValue::Bool(n != 0);
        }
        break;
      case kDoubleVal: {
        double d = 0;
        if (wire != kFixed64 || !GetLittle(in, d)) {
          return InvalidArgument("a Feast double value is malformed");
        }
        v = FeastValue::Double(d);
        break;
      }
      case kFloatVal: {
        float f = 0;
        if (wire != kFixed32 || !GetLittle(in, f)) {
          return InvalidArgument("a Feast float value is malformed");
        }
        v = FeastValue::Float(f);
        break;
      }
      case kNullVal:
        if (wire != kVarint || !GetVarint(in, n)) {
          return InvalidArgument("a Feast null value is malformed");
        }
        v = FeastValue::Missing();
        break;
      default:
        return InvalidArgument("a Feast value holds field " + std::to_string(field) +
                               ", which is not a scalar Sluice serves");
    }
  }
  return v;
}

std::string EncodeTimestamp(int64_t seconds, int32_t nanos) {
  std::string out;
  if (seconds != 0) {
    PutTag(1, kVarint, out);
    PutVarint(static_cast<uint64_t>(seconds), out);
  }
  if (nanos != 0) {
    PutTag(2, kVarint, out);
    PutVarint(static_cast<uint64_t>(static_cast<int64_t>(nanos)), out);
  }
  return out;
}

Result<int64_t> DecodeTimestampNanos(std::string_view in) {
  int64_t seconds = 0;
  int64_t nanos = 0;
  while (!in.empty()) {
    uint64_t tag = 0;
    uint64_t n = 0;
    if (!GetVarint(in, tag) || (tag & 7) != kVarint || !GetVarint(in, n)) {
      return InvalidArgument("a Feast event timestamp is malformed");
    }
    if ((tag >> 3) == 1) {
      seconds = static_cast<int64_t>(n);
    } else if ((tag >> 3) == 2) {
      nanos = static_cast<int64_t>(n);
    } else {
      return InvalidArgument("a Feast event timestamp holds an unknown field");
    }
  }
  if (nanos < 0 || nanos > 999'999'999 || seconds > std::numeric_limits<int64_t>::max() / 1'000'000'000 ||
      seconds < std::numeric_limits<int64_t>::min() / 1'000'000'000) {
    return InvalidArgument("a Feast event timestamp is out of range");
  }
  return seconds * 1'000'000'000 + nanos;
}

uint32_t Murmur3_32(std::string_view data, uint32_t seed) {
  constexpr uint32_t c1 = 0xcc9e2d51;
  constexpr uint32_t c2 = 0x1b873593;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t len = data.size();
  const size_t blocks = len / 4;
  uint32_t h = seed;
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t k = 0;
    std::memcpy(&k, p + i * 4, 4);
    k *= c1;
    k = Rotl(k, 15);
    k *= c2;
    h ^= k;
    h = Rotl(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const uint8_t* tail = p + blocks * 4;
  uint32_t k = 0;
  switch (len & 3) {
    case 3:
      k ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k ^= tail[0];
      k *= c1;
      k = Rotl(k, 15);
      k *= c2;
      h ^= k;
  }
  h ^= static_cast<uint32_t>(len);
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

std::string FeatureField(std::string_view view, std::string_view feature) {
  std::string key;
  key.reserve(view.size() + 1 + feature.size());
  key.append(view).push_back(':');
  key.append(feature);
  std::string out;
  PutLittle<uint32_t>(Murmur3_32(key), out);
  return out;
}

std::string TimestampField(std::string_view view) {
  return "_ts:" + std::string(view);
}

Result<std::string> RedisKey(std::span<const EntityKeyPart> parts, std::string_view project) {
  std::vector<const EntityKeyPart*> sorted;
  sorted.reserve(parts.size());
  for (const auto& p : parts) sorted.push_back(&p);
  if (sorted.size() > 1) {
    std::sort(sorted.begin(), sorted.end(),
              [](const EntityKeyPart* a, const EntityKeyPart* b) { return a->join_key < b->join_key; });
  }
  std::string out;
  PutLittle<uint32_t>(static_cast<uint32_t>(sorted.size()), out);
  for (const auto* p : sorted) {
    PutLittle<uint32_t>(static_cast<uint32_t>(FeastType::kString), out);
    PutLittle<uint32_t>(static_cast<uint32_t>(p->join_key.size()), out);
    out.append(p->join_key);
  }
  for (const auto* p : sorted) {
    const FeastValue& v = *p->value;
    if (!v.present) {
      return InvalidArgument("entity key " + std::string(p->join_key) + " has no value");
    }
    PutLittle<uint32_t>(static_cast<uint32_t>(v.type), out);
    switch (v.type) {
      case FeastType::kString:
      case FeastType::kBytes:
        PutLittle<uint32_t>(static_cast<uint32_t>(v.s.size()), out);
        out.append(v.s);
        break;
      case FeastType::kInt32:
        PutLittle<uint32_t>(4, out);
        PutLittle<int32_t>(static_cast<int32_t>(v.i), out);
        break;
      case FeastType::kInt64:
      case FeastType::kUnixTimestamp:
        PutLittle<uint32_t>(8, out);
        PutLittle<int64_t>(v.i, out);
        break;
      default:
        return InvalidArgument("entity key " + std::string(p->join_key) + " is of type " +
                               std::string(api::FeastTypeName(v.type)) +
                               ", which Feast cannot key by");
    }
  }
  out.append(project);
  return out;
}

Result<FeastValue> ParseDefault(const api::FeatureField& field) {
  if (!field.default_value) return FeastValue::Missing();
  const std::string& text = *field.default_value;
  auto bad = [&](const char* what) {
    return InvalidArgument("the default \"" + text + "\" of feature " + field.name + " is not " +
                           what);
  };
  auto parse_int = [&](int64_t& out) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
  };
  switch (field.type) {
    case FeastType::kInt32: {
      int64_t v = 0;
      if (!parse_int(v) || v < std::numeric_limits<int32_t>::min() ||
          v > std::numeric_limits<int32_t>::max()) {
        return bad("a 32-bit integer");
      }
      return FeastValue::Int32(static_cast<int32_t>(v));
    }
    case FeastType::kInt64:
    case FeastType::kUnixTimestamp: {
      int64_t v = 0;
      if (!parse_int(v)) return bad("a 64-bit integer");
      return field.type == FeastType::kInt64 ? FeastValue::Int64(v) : FeastValue::UnixTimestamp(v);
    }
    case FeastType::kFloat:
    case FeastType::kDouble: {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) {
        return bad("a finite number");
      }
      return field.type == FeastType::kFloat ? FeastValue::Float(static_cast<float>(v))
                                             : FeastValue::Double(v);
    }
    case FeastType::kBool:
      if (text == "true") return FeastValue::Bool(true);
      if (text == "false") return FeastValue::Bool(false);
      return bad("true or false");
    case FeastType::kString:
      return FeastValue::String(text);
    case FeastType::kBytes: {
      auto decoded = DecodeBase64(text);
      if (!decoded) return bad("base64");
      return FeastValue::Bytes(std::move(*decoded));
    }
  }
  return bad("of a known type");
}

}  // namespace sluice::features
