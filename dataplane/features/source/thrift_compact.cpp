#include "dataplane/features/source/thrift_compact.h"

#include <cstring>

namespace sluice::features::thrift {

namespace {
constexpr int kMaxDepth = 32;
}

void CompactDecoder::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  pos_ = end_;
}

uint8_t CompactDecoder::ReadByte() {
  if (pos_ >= end_) {
    Fail("thrift: unexpected end of data");
    return 0;
  }
  return *pos_++;
}

uint64_t CompactDecoder::ReadVarint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= end_) {
      Fail("thrift: unexpected end of data in a varint");
      return 0;
    }
    uint8_t b = *pos_++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  Fail("thrift: varint longer than 10 bytes");
  return 0;
}

int64_t CompactDecoder::ReadI64() {
  uint64_t v = ReadVarint();
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

int32_t CompactDecoder::ReadI32() {
  int64_t v = ReadI64();
  if (v < INT32_MIN || v > INT32_MAX) {
    Fail("thrift: i32 out of range");
    return 0;
  }
  return static_cast<int32_t>(v);
}

std::string_view CompactDecoder::ReadBinary() {
  uint64_t len = ReadVarint();
  if (!ok()) return {};
  if (len > static_cast<uint64_t>(end_ - pos_)) {
    Fail("thrift: binary field longer than the data left");
    return {};
  }
  std::string_view s(reinterpret_cast<const char*>(pos_), len);
  pos_ += len;
  return s;
}

void CompactDecoder::BeginStruct() {
  if (depth_ >= kMaxDepth) {
    Fail("thrift: structs nested too deep");
    return;
  }
  last_id_[depth_++] = 0;
}

void CompactDecoder::EndStruct() {
  if (depth_ > 0) --depth_;
}

bool CompactDecoder::ReadField(int16_t& id, Type& type) {
  if (!ok() || depth_ == 0) return false;
  uint8_t b = ReadByte();
  if (!ok()) return false;
  type = static_cast<Type>(b & 0x0f);
  if (type == Type::kStop) return false;
  if (static_cast<uint8_t>(type) > static_cast<uint8_t>(Type::kStruct)) {
    Fail("thrift: unknown field type " + std::to_string(b & 0x0f));
    return false;
  }
  int delta = b >> 4;
  if (delta != 0) {
    id = static_cast<int16_t>(last_id_[depth_ - 1] + delta);
  } else {
    int64_t v = ReadI64();
    id = static_cast<int16_t>(v);
  }
  last_id_[depth_ - 1] = id;
  return ok();
}

uint32_t CompactDecoder::ReadListHeader(Type& elem_type) {
  uint8_t b = ReadByte();
  elem_type = static_cast<Type>(b & 0x0f);
  uint64_t n = b >> 4;
  if (n == 15) n = ReadVarint();
  // Every element takes at least one byte, so a count beyond the bytes left is corrupt; this also
  // keeps callers from reserving memory for a forged count.
  if (!ok() || n > static_cast<uint64_t>(end_ - pos_)) {
    Fail("thrift: list longer than the data left");
    return 0;
  }
  return static_cast<uint32_t>(n);
}

void CompactDecoder::Skip(Type type) {
  SkipDepth(type, 0);
}

void CompactDecoder::SkipDepth(Type type, int depth) {
  if (depth > kMaxDepth) {
    Fail("thrift: values nested too deep");
    return;
  }
  switch (type) {
    case Type::kBoolTrue:
    case Type::kBoolFalse:
      return;  // the value is in the field header
    case Type::kByte:
      ReadByte();
      return;
    case Type::kI16:
    case Type::kI32:
    case Type::kI64:
      ReadVarint();
      return;
    case Type::kDouble:
      if (end_ - pos_ < 8) {
        Fail("thrift: unexpected end of data in a double");
      } else {
        pos_ += 8;
      }
      return;
    case Type::kBinary:
      ReadBinary();
      return;
    case Type::kList:
    case Type::kSet: {
      Type elem;
      uint32_t n = ReadListHeader(elem);
      for (uint32_t i = 0; i < n && ok(); ++i) {
        // Booleans inside a container take one byte each.
        if (elem == Type::kBoolTrue || elem == Type::kBoolFalse) {
          ReadByte();
        } else {
          SkipDepth(elem, depth + 1);
        }
      }
      return;
    }
    case Type::kMap: {
      uint64_t n = ReadVarint();
      if (n == 0) return;
      uint8_t kv = ReadByte();
      if (!ok() || n > static_cast<uint64_t>(end_ - pos_)) {
        Fail("thrift: map longer than the data left");
        return;
      }
      Type k = static_cast<Type>(kv >> 4), v = static_cast<Type>(kv & 0x0f);
      for (uint64_t i = 0; i < n && ok(); ++i) {
        if (k == Type::kBoolTrue || k == Type::kBoolFalse)
          ReadByte();
        else
          SkipDepth(k, depth + 1);
        if (v == Type::kBoolTrue || v == Type::kBoolFalse)
          ReadByte();
        else
          SkipDepth(v, depth + 1);
      }
      return;
    }
    case Type::kStruct: {
      BeginStruct();
      int16_t id;
      Type t;
      while (ReadField(id, t)) SkipDepth(t, depth + 1);
      EndStruct();
      return;
    }
    case Type::kStop:
    default:
      Fail("thrift: cannot skip a value of type " + std::to_string(static_cast<int>(type)));
      return;
  }
}

}  // namespace sluice::features::thrift
