#pragma once

// A small decoder for the Thrift compact protocol, enough to read Parquet's footer and page
// headers. It never reads past its buffer: a malformed input sets an error and every later read
// returns zero, so callers check ok() once after a struct.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::features::thrift {

enum class Type : uint8_t {
  kStop = 0,
  kBoolTrue = 1,
  kBoolFalse = 2,
  kByte = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12,
};

class CompactDecoder {
 public:
  CompactDecoder(const uint8_t* data, size_t size) : pos_(data), begin_(data), end_(data + size) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t consumed() const { return static_cast<size_t>(pos_ - begin_); }

  // Struct traversal: call BeginStruct, then ReadField until it returns false (the stop field),
  // then EndStruct. A field that is not wanted is passed to Skip.
  void BeginStruct();
  void EndStruct();
  bool ReadField(int16_t& id, Type& type);

  int64_t ReadI64();  // also reads i32, i16 and byte fields (zigzag varints)
  int32_t ReadI32();
  bool ReadBool(Type field_type) { return field_type == Type::kBoolTrue; }
  std::string_view ReadBinary();
  // A list header: the element type and the count (checked against the bytes left).
  uint32_t ReadListHeader(Type& elem_type);
  void Skip(Type type);
  void Fail(std::string message);

 private:
  uint64_t ReadVarint();
  uint8_t ReadByte();
  void SkipDepth(Type type, int depth);

  const uint8_t* pos_;
  const uint8_t* begin_;
  const uint8_t* end_;
  std::string error_;
  int16_t last_id_[64] = {0};  // the previous field id of each open struct
  int depth_ = 0;
};

}  // namespace sluice::features::thrift
