#pragma once

// The parts of Parquet's Thrift metadata (parquet.thrift) the reader uses: the footer's schema and
// row groups, and the page headers. Unknown fields are skipped, so files from newer writers parse.

#include <cstdint>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::features::parquet {

enum class PhysicalType : int32_t {
  kBoolean = 0,
  kInt32 = 1,
  kInt64 = 2,
  kInt96 = 3,
  kFloat = 4,
  kDouble = 5,
  kByteArray = 6,
  kFixedLenByteArray = 7,
};

enum class Repetition : int32_t { kRequired = 0, kOptional = 1, kRepeated = 2 };

enum class Codec : int32_t {
  kUncompressed = 0,
  kSnappy = 1,
  kGzip = 2,
  kLzo = 3,
  kBrotli = 4,
  kLz4 = 5,
  kZstd = 6,
  kLz4Raw = 7,
};

enum class Encoding : int32_t {
  kPlain = 0,
  kPlainDictionary = 2,
  kRle = 3,
  kBitPacked = 4,
  kDeltaBinaryPacked = 5,
  kDeltaLengthByteArray = 6,
  kDeltaByteArray = 7,
  kRleDictionary = 8,
  kByteStreamSplit = 9,
};

enum class PageType : int32_t {
  kDataPage = 0,
  kIndexPage = 1,
  kDictionaryPage = 2,
  kDataPageV2 = 3
};

// ConvertedType values used here (the legacy annotation).
namespace converted {
constexpr int32_t kUtf8 = 0, kEnum = 4, kDecimal = 5, kDate = 6, kTimeMillis = 7, kTimeMicros = 8,
                  kTimestampMillis = 9, kTimestampMicros = 10, kUint8 = 11, kUint16 = 12,
                  kUint32 = 13, kUint64 = 14, kInt8 = 15, kInt16 = 16, kInt32 = 17, kInt64 = 18,
                  kJson = 19;
}

// The LogicalType union, flattened to what matters for conversion.
enum class Logical : uint8_t {
  kNone,
  kString,
  kEnum,
  kJson,
  kDecimal,
  kDate,
  kTime,
  kTimestamp,
  kInteger,
  kUuid,
  kOther,
};

struct SchemaElement {
  bool has_type = false;
  PhysicalType type = PhysicalType::kBoolean;
  int32_t type_length = 0;
  bool has_repetition = false;
  Repetition repetition = Repetition::kRequired;
  std::string name;
  int32_t num_children = 0;
  int32_t converted_type = -1;  // -1: none
  Logical logical = Logical::kNone;
  // kTimestamp and kTime: the unit as nanoseconds per tick (1'000'000, 1'000 or 1), and whether
  // the value is UTC.
  int64_t time_unit_ns = 0;
  bool adjusted_to_utc = false;
  // kInteger.
  int8_t int_bits = 0;
  bool int_signed = true;
};

struct ColumnMetaData {
  PhysicalType type = PhysicalType::kBoolean;
  std::vector<std::string> path;
  Codec codec = Codec::kUncompressed;
  int64_t num_values = 0;
  int64_t total_uncompressed_size = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = -1;
  int64_t dictionary_page_offset = -1;
};

struct ColumnChunk {
  std::string file_path;  // non-empty: the data lives in another file (not supported)
  bool has_meta = false;
  ColumnMetaData meta;
};

struct RowGroup {
  std::vector<ColumnChunk> columns;
  int64_t num_rows = 0;
};

struct FileMetaData {
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
  std::string created_by;
};

struct DataPageHeader {
  int32_t num_values = 0;
  Encoding encoding = Encoding::kPlain;
  Encoding definition_level_encoding = Encoding::kRle;
};

struct DataPageHeaderV2 {
  int32_t num_values = 0;
  int32_t num_nulls = 0;
  int32_t num_rows = 0;
  Encoding encoding = Encoding::kPlain;
  int32_t definition_levels_byte_length = 0;
  int32_t repetition_levels_byte_length = 0;
  bool is_compressed = true;
};

struct DictionaryPageHeader {
  int32_t num_values = 0;
  Encoding encoding = Encoding::kPlain;
};

struct PageHeader {
  PageType type = PageType::kDataPage;
  int32_t uncompressed_page_size = 0;
  int32_t compressed_page_size = 0;
  bool has_data = false, has_data_v2 = false, has_dictionary = false;
  DataPageHeader data;
  DataPageHeaderV2 data_v2;
  DictionaryPageHeader dictionary;
};

// Parses the footer's FileMetaData (the bytes before the length and "PAR1").
Result<FileMetaData> ParseFileMetaData(const uint8_t* data, size_t size);
// Parses a page header at the start of `data`; `header_size` is set to its length in bytes.
Result<PageHeader> ParsePageHeader(const uint8_t* data, size_t size, size_t& header_size);

}  // namespace sluice::features::parquet
