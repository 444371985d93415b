#pragma once

// Feast's Redis online-store layout, byte for byte (feast/infra/online_stores/redis.py and
// key_encoding_utils.py, entity key serialization version 3):
//
//   key    = SerializeEntityKey(join keys and values, sorted by join key) + project
//   fields = murmur3_32("<view>:<feature>", seed 0) as 4 little-endian bytes → Value proto bytes
//            "_ts:<view>"                                                   → Timestamp proto bytes
//
// A missing value is an empty Value message (zero bytes), as Feast writes None and NaN. Decoding
// accepts what Feast writes and reports anything else as an error (a malformed value), so a reader
// can serve the default instead.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lib/api/feature_view.h"
#include "lib/base/status.h"

namespace sluice::features {

using api::FeastType;

// One scalar of a Feast Value. `type` unset (nullopt-like: present == false) is a missing value.
struct FeastValue {
  bool present = false;
  FeastType type = FeastType::kDouble;
  int64_t i = 0;    // INT32, INT64, UNIX_TIMESTAMP (seconds), BOOL (0/1)
  double d = 0;     // FLOAT, DOUBLE
  std::string s;    // STRING, BYTES

  static FeastValue Missing() { return {}; }
  // A missing value of a known type: Feast writes a missing UNIX_TIMESTAMP as the value
  // INT64_MIN (pandas' NaT) rather than as an empty Value, so the writer needs the type.
  static FeastValue MissingOf(FeastType type) {
    FeastValue v;
    v.type = type;
    return v;
  }
  static FeastValue Int32(int32_t v) { return {true, FeastType::kInt32, v, 0, {}}; }
  static FeastValue Int64(int64_t v) { return {true, FeastType::kInt64, v, 0, {}}; }
  static FeastValue UnixTimestamp(int64_t seconds) {
    return {true, FeastType::kUnixTimestamp, seconds, 0, {}};
  }
  static FeastValue Bool(bool v) { return {true, FeastType::kBool, v ? 1 : 0, 0, {}}; }
  static FeastValue Float(float v) { return {true, FeastType::kFloat, 0, v, {}}; }
  static FeastValue Double(double v) { return {true, FeastType::kDouble, 0, v, {}}; }
  static FeastValue String(std::string v) {
    return {true, FeastType::kString, 0, 0, std::move(v)};
  }
  static FeastValue Bytes(std::string v) { return {true, FeastType::kBytes, 0, 0, std::move(v)}; }

  // As the model sees it: numbers, bools (0/1) and timestamps (seconds) as float; NaN when
  // missing or a STRING/BYTES value.
  float AsFloat() const;
  friend bool operator==(const FeastValue&, const FeastValue&) = default;
};

// Appends the Value proto bytes of `v` as Feast writes them: nothing for a missing value and for
// a NaN float or double, except a missing UNIX_TIMESTAMP (MissingOf), which is INT64_MIN.
void EncodeValue(const FeastValue& v, std::string& out);
std::string EncodeValue(const FeastValue& v);
// A Value proto holding a scalar of the types above, or nothing (missing), or Feast's null_val,
// or a UNIX_TIMESTAMP of INT64_MIN (missing, as MissingOf(kUnixTimestamp)).
// Lists, maps and unknown fields are InvalidArgument.
Result<FeastValue> DecodeValue(std::string_view bytes);

// google.protobuf.Timestamp bytes.
std::string EncodeTimestamp(int64_t seconds, int32_t nanos);
// Nanoseconds since the epoch.
Result<int64_t> DecodeTimestampNanos(std::string_view bytes);

// murmur3_32 (x86, 32-bit) as Python's mmh3.hash(..., signed=False).
uint32_t Murmur3_32(std::string_view data, uint32_t seed = 0);
// The hash field of a feature: murmur3_32("<view>:<feature>") as 4 little-endian bytes.
std::string FeatureField(std::string_view view, std::string_view feature);
// "_ts:<view>".
std::string TimestampField(std::string_view view);

// An entity key part: a join key and its value (INT32, INT64, STRING, BYTES or UNIX_TIMESTAMP).
struct EntityKeyPart {
  std::string_view join_key;
  const FeastValue* value;
};
// The serialized entity key (version 3) followed by the project: the Redis key. The parts are
// sorted by join key here, as Feast sorts them. InvalidArgument for a missing value or a type
// Feast cannot key by (FLOAT, DOUBLE, BOOL).
Result<std::string> RedisKey(std::span<const EntityKeyPart> parts, std::string_view project);

// The typed default of a feature (FeatureField::default_value) as a FeastValue; Missing when
// there is none. InvalidArgument when the text is not a value of the type.
Result<FeastValue> ParseDefault(const api::FeatureField& field);

}  // namespace sluice::features
