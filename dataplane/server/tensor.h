#pragma once

// Tensors as the Open Inference Protocol (V2) carries them: a name, a datatype, a shape and the
// elements in one byte buffer. Fixed-size types are stored little-endian, row-major, packed; BYTES
// elements are stored as a 4-byte little-endian length followed by the bytes, which is exactly the
// layout of the binary tensor extension, so binary inputs need no conversion.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace sluice::dataplane {

enum class DataType : uint8_t {
  kInvalid = 0,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,
};

// "FP32" -> kFp32; kInvalid for anything else (names are case-sensitive, as in the protocol).
DataType ParseDataType(std::string_view name);
std::string_view DataTypeName(DataType type);
// Bytes per element; 0 for BYTES (variable) and kInvalid.
size_t DataTypeSize(DataType type);
inline bool IsNumeric(DataType t) { return t >= DataType::kUint8 && t <= DataType::kFp64; }

// Largest element count accepted for one tensor; keeps shape arithmetic far from overflow.
inline constexpr uint64_t kMaxTensorElements = uint64_t{1} << 40;
// Largest rank accepted.
inline constexpr size_t kMaxTensorRank = 32;

// Product of the dims; InvalidArgument when a dim is negative or the product exceeds
// kMaxTensorElements.
Result<uint64_t> ElementCount(std::span<const int64_t> shape);
std::string ShapeToString(std::span<const int64_t> shape);

// IEEE 754 half precision <-> float, round to nearest even.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// A tensor that owns its bytes or views bytes owned elsewhere (a binary input inside the request
// body: whoever built the tensor keeps that memory alive for as long as the tensor is used).
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::string name, DataType datatype, std::vector<int64_t> shape)
      : name_(std::move(name)), datatype_(datatype), shape_(std::move(shape)) {}

  const std::string& name() const { return name_; }
  DataType datatype() const { return datatype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  void set_name(std::string name) { name_ = std::move(name); }
  void set_datatype(DataType t) { datatype_ = t; }
  void set_shape(std::vector<int64_t> shape) { shape_ = std::move(shape); }

  std::span<const uint8_t> bytes() const {
    if (external_) return {external_, external_size_};
    return {reinterpret_cast<const uint8_t*>(owned_.data()), owned_.size()};
  }
  // Owned storage for writing; drops any external view.
  std::string& mutable_bytes() {
    external_ = nullptr;
    external_size_ = 0;
    return owned_;
  }
  void set_external(std::span<const uint8_t> view) {
    owned_.clear();
    external_ = view.data();
    external_size_ = view.size();
    if (external_ == nullptr) external_ = reinterpret_cast<const uint8_t*>("");
  }
  bool is_external() const { return external_ != nullptr; }

  // Checks that bytes() holds exactly ElementCount(shape) elements of datatype (for BYTES: that
  // the length prefixes tile the buffer exactly).
  Status Validate() const;

  // Bytes this tensor accounts for in memory (for cache sizing).
  size_t ByteSize() const { return name_.size() + shape_.size() * 8 + owned_.size() + 64; }

 private:
  std::string name_;
  DataType datatype_ = DataType::kInvalid;
  std::vector<int64_t> shape_;
  std::string owned_;
  const uint8_t* external_ = nullptr;
  size_t external_size_ = 0;
};

// Counts the BYTES elements in `bytes` (4-byte little-endian length + data each); InvalidArgument
// when a length runs past the end.
Result<uint64_t> CountByteElements(std::span<const uint8_t> bytes);

// Appends one BYTES element (length prefix + data).
void AppendByteElement(std::string& out, std::string_view element);

}  // namespace sluice::dataplane
