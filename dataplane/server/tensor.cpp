#include "dataplane/server/tensor.h"

#include <array>
#include <bit>
#include <cstring>

namespace sluice::dataplane {

namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<TypeInfo, 13> kTypes = {{
    {DataType::kBool, "BOOL", 1},
    {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8},
    {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},
    {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},
    {DataType::kBytes, "BYTES", 0},
}};

}  // namespace

DataType ParseDataType(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name == name) return t.type;
  }
  return DataType::kInvalid;
}

std::string_view DataTypeName(DataType type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return t.name;
  }
  return "INVALID";
}

size_t DataTypeSize(DataType type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return t.size;
  }
  return 0;
}

Result<uint64_t> ElementCount(std::span<const int64_t> shape) {
  if (shape.size() > kMaxTensorRank) {
    return InvalidArgument("shape has rank " + std::to_string(shape.size()) + "; at most " +
                           std::to_string(kMaxTensorRank) + " is supported");
  }
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("shape " + ShapeToString(shape) + " has a negative dimension");
    if (d == 0) return uint64_t{0};
  }
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) || n > kMaxTensorElements) {
      return InvalidArgument("shape " + ShapeToString(shape) + " has too many elements");
    }
  }
  return n;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  s += "]";
  return s;
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // < half of the smallest subnormal
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    // value = mant * 2^(exp-150) and a subnormal half is h * 2^-24, so h = mant >> (126 - exp).
    const uint32_t full = 126 - (abs >> 23);
    uint32_t half = mant >> full;
    const uint32_t rem = mant & ((1u << full) - 1);
    const uint32_t mid = 1u << (full - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | (exp + 127 - 15) << 23 | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

Result<uint64_t> CountByteElements(std::span<const uint8_t> bytes) {
  uint64_t n = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 4) {
      return InvalidArgument("BYTES element at offset " + std::to_string(pos) +
                             " has a truncated length prefix");
    }
    uint32_t len;
    std::memcpy(&len, bytes.data() + pos, 4);
    if constexpr (std::endian::native == std::endian::big) len = __builtin_bswap32(len);
    pos += 4;
    if (len > bytes.size() - pos) {
      return InvalidArgument("BYTES element at offset " + std::to_string(pos - 4) + " claims " +
                             std::to_string(len) + " bytes but only " +
                             std::to_string(bytes.size() - pos) + " remain");
    }
    pos += len;
    ++n;
  }
  return n;
}

void AppendByteElement(std::string& out, std::string_view element) {
  uint32_t len = static_cast<uint32_t>(element.size());
  if constexpr (std::endian::native == std::endian::big) len = __builtin_bswap32(len);
  char prefix[4];
  std::memcpy(prefix, &len, 4);
  out.append(prefix, 4);
  out.append(element);
}

Status Tensor::Validate() const {
  if (datatype_ == DataType::kInvalid) return InvalidArgument("tensor '" + name_ + "' has no datatype");
  ASSIGN_OR_RETURN(uint64_t count, ElementCount(shape_));
  const auto data = bytes();
  if (datatype_ == DataType::kBytes) {
    ASSIGN_OR_RETURN(uint64_t have, CountByteElements(data));
    if (have != count) {
      return InvalidArgument("tensor '" + name_ + "' has " + std::to_string(have) +
                             " BYTES elements; shape " + ShapeToString(shape_) + " needs " +
                             std::to_string(count));
    }
    return Status::Ok();
  }
  const uint64_t want = count * DataTypeSize(datatype_);
  if (data.size() != want) {
    return InvalidArgument("tensor '" + name_ + "' has " + std::to_string(data.size()) +
                           " bytes; shape " + ShapeToString(shape_) + " of " +
                           std::string(DataTypeName(datatype_)) + " needs " + std::to_string(want));
  }
  if (datatype_ == DataType::kBool) {
    for (size_t i = 0; i < data.size(); ++i) {
      if (data[i] > 1) {
        return InvalidArgument("tensor '" + name_ + "': BOOL element " + std::to_string(i) +
                               " is " + std::to_string(data[i]) + ", not 0 or 1");
      }
    }
  }
  return Status::Ok();
}

}  // namespace sluice::dataplane
