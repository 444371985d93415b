#pragma once

// The V2 codec's decoder of one tensor's `data` (internal; see v2_codec_internal.h).

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "dataplane/server/v2_codec_internal.h"

namespace sluice::dataplane::v2_internal {

// Decodes the `data` of one tensor, given its datatype and shape, straight into tensor bytes, and
// checks the nesting against the shape.
class DataDecoder {
 public:
  DataDecoder(DataType type, const std::vector<int64_t>& shape, uint64_t expected, std::string& out,
              size_t body_size)
      : type_(type), shape_(shape), expected_(expected), out_(out), counts_(shape.size() + 2, 0) {
    // Every element takes at least one byte of JSON, so the body bounds what is worth reserving.
    const uint64_t reserve_elems = std::min<uint64_t>(expected_, body_size / 2 + 1);
    const size_t elem = type == DataType::kBytes ? 8 : DataTypeSize(type);
    out_.reserve(reserve_elems * elem);
  }

  Status BeginArray() {
    if (depth_ == 0) {
      depth_ = 1;
      return Status::Ok();
    }
    if (mode_ == Mode::kFlat) return InvalidArgument("data mixes nested arrays and scalars");
    mode_ = Mode::kNested;
    if (depth_ >= shape_.size()) {
      return InvalidArgument("data is nested deeper than the rank of shape " +
                             ShapeToString(shape_));
    }
    ++counts_[depth_];
    ++depth_;
    counts_[depth_] = 0;
    return Status::Ok();
  }

  Status EndArray() {
    if (mode_ == Mode::kNested) {
      const int64_t want = shape_[depth_ - 1];
      if (static_cast<int64_t>(counts_[depth_]) != want) {
        return InvalidArgument("data dimension " + std::to_string(depth_ - 1) + " has " +
                               std::to_string(counts_[depth_]) + " elements; shape " +
                               ShapeToString(shape_) + " says " + std::to_string(want));
      }
    }
    --depth_;
    if (depth_ == 0 && total_ != expected_) {
      return InvalidArgument("data has " + std::to_string(total_) + " elements; shape " +
                             ShapeToString(shape_) + " needs " + std::to_string(expected_));
    }
    return Status::Ok();
  }

  bool done() const { return depth_ == 0; }

  Status Value(Scalar& v) {
    if (mode_ == Mode::kUnknown) mode_ = depth_ == 1 ? Mode::kFlat : Mode::kNested;
    if (mode_ == Mode::kNested && depth_ != shape_.size()) {
      return InvalidArgument("data has a scalar at depth " + std::to_string(depth_) + "; shape " +
                             ShapeToString(shape_) + " nests " + std::to_string(shape_.size()) +
                             " deep");
    }
    ++counts_[depth_];
    if (++total_ > expected_) {
      return InvalidArgument("data has more than the " + std::to_string(expected_) +
                             " elements of shape " + ShapeToString(shape_));
    }
    return Append(v);
  }

 private:
  enum class Mode { kUnknown, kFlat, kNested };

  Status TypeError(const Scalar& v) const {
    return InvalidArgument("element " + std::to_string(total_ - 1) + " is " +
                           ScalarKindName(v.kind) + ", not a " + std::string(DataTypeName(type_)) +
                           " value");
  }
  Status RangeError(const Scalar& v) const {
    std::string value = v.kind == Scalar::kInt    ? std::to_string(v.i)
                        : v.kind == Scalar::kUint ? std::to_string(v.u)
                                                  : std::to_string(v.d);
    return InvalidArgument("element " + std::to_string(total_ - 1) + " (" + value +
                           ") is out of range for " + std::string(DataTypeName(type_)));
  }

  template <typename T>
  Status AppendInt(const Scalar& v) {
    if (v.kind == Scalar::kInt) {
      if (v.i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (v.i > 0 && static_cast<uint64_t>(v.i) > std::numeric_limits<T>::max())) {
        return RangeError(v);
      }
      AppendPod<T>(out_, static_cast<T>(v.i));
      return Status::Ok();
    }
    if (v.kind == Scalar::kUint) {
      if (v.u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return RangeError(v);
      AppendPod<T>(out_, static_cast<T>(v.u));
      return Status::Ok();
    }
    return TypeError(v);
  }

  Status AppendFloat(const Scalar& v, double* out) {
    switch (v.kind) {
      case Scalar::kNull:
        *out = std::numeric_limits<double>::quiet_NaN();
        return Status::Ok();
      case Scalar::kInt:
        *out = static_cast<double>(v.i);
        return Status::Ok();
      case Scalar::kUint:
        *out = static_cast<double>(v.u);
        return Status::Ok();
      case Scalar::kFloat:
        *out = v.d;
        return Status::Ok();
      default:
        return TypeError(v);
    }
  }

  Status Append(Scalar& v) {
    switch (type_) {
      case DataType::kBool:
        if (v.kind != Scalar::kBool) return TypeError(v);
        out_.push_back(v.b ? 1 : 0);
        return Status::Ok();
      case DataType::kUint8:
        return AppendInt<uint8_t>(v);
      case DataType::kUint16:
        return AppendInt<uint16_t>(v);
      case DataType::kUint32:
        return AppendInt<uint32_t>(v);
      case DataType::kUint64:
        return AppendInt<uint64_t>(v);
      case DataType::kInt8:
        return AppendInt<int8_t>(v);
      case DataType::kInt16:
        return AppendInt<int16_t>(v);
      case DataType::kInt32:
        return AppendInt<int32_t>(v);
      case DataType::kInt64:
        return AppendInt<int64_t>(v);
      case DataType::kFp16: {
        double d = 0;
        RETURN_IF_ERROR(AppendFloat(v, &d));
        const uint16_t h = FloatToHalf(static_cast<float>(d));
        if (std::isfinite(d) && (h & 0x7c00u) == 0x7c00u) return RangeError(v);
        AppendPod<uint16_t>(out_, h);
        return Status::Ok();
      }
      case DataType::kFp32: {
        double d = 0;
        RETURN_IF_ERROR(AppendFloat(v, &d));
        if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
          return RangeError(v);
        }
        AppendPod<float>(out_, static_cast<float>(d));
        return Status::Ok();
      }
      case DataType::kFp64: {
        double d = 0;
        RETURN_IF_ERROR(AppendFloat(v, &d));
        AppendPod<double>(out_, d);
        return Status::Ok();
      }
      case DataType::kBytes:
        if (v.kind != Scalar::kString) return TypeError(v);
        if (v.s.size() > std::numeric_limits<uint32_t>::max()) return RangeError(v);
        AppendByteElement(out_, v.s);
        return Status::Ok();
      case DataType::kInvalid:
        break;
    }
    return InvalidArgument("unknown datatype");
  }

  const DataType type_;
  const std::vector<int64_t>& shape_;
  const uint64_t expected_;
  std::string& out_;
  std::vector<uint64_t> counts_;  // elements seen in the open array at each depth
  size_t depth_ = 0;
  uint64_t total_ = 0;
  Mode mode_ = Mode::kUnknown;
};

}  // namespace sluice::dataplane::v2_internal
