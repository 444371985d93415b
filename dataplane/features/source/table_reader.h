#pragma once

// Reads the batch source of a FeatureView (a Parquet or CSV file) column by column, chunk by chunk,
// converting each requested column to the type the caller asks for. The materializer turns the
// chunks into Redis writes.
//
// Contract: OpenSource checks the location, the format and the schema (every requested column is
// present and convertible) before it returns, so a bad FeatureView fails before any row is read.
// A TableReader is used from one thread. Errors are Status values naming the file, the column and,
// for CSV, the line; a malformed file is an error, never a crash.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace sluice::features {

// kTimestamp: int64 nanoseconds since the Unix epoch, UTC.
enum class ColumnType { kInt32, kInt64, kFloat, kDouble, kBool, kString, kBytes, kTimestamp };

// The FeatureView's name of a type (INT32, ..., UNIX_TIMESTAMP), used in error messages.
std::string_view ColumnTypeName(ColumnType type);

// One column the caller wants, converted to `type`.
struct ColumnRequest {
  std::string name;
  ColumnType type;
};

// One chunk of one column. Exactly one of the value vectors is filled (size == rows); a null row
// holds 0, 0.0 or "" there and 0 in `valid`.
struct Column {
  std::string name;
  ColumnType type;
  std::vector<int64_t> ints;         // kInt32, kInt64, kBool (0/1), kTimestamp
  std::vector<double> doubles;       // kFloat, kDouble (kFloat values are exact floats)
  std::vector<std::string> strings;  // kString, kBytes
  std::vector<uint8_t> valid;        // 1 = present, 0 = null; size == rows
};

// Columns are in request order. Next() reuses the vectors of the chunk it is given, so a caller
// that keeps one Chunk across calls allocates little after the first.
struct Chunk {
  size_t rows = 0;
  std::vector<Column> columns;
};

// Reads the requested columns a chunk at a time: one Parquet row group, or csv_chunk_rows CSV
// records.
class TableReader {
 public:
  virtual ~TableReader() = default;
  // Fills `chunk` and returns true, or returns false at the end (chunk.rows == 0 then).
  virtual Result<bool> Next(Chunk& chunk) = 0;
  // Rows returned so far.
  virtual uint64_t rows_read() const = 0;
};

struct SourceOptions {
  // "parquet", "csv", or "file" (chosen by the extension: .parquet/.pq or .csv).
  std::string format = "file";
  // An absolute path, file:///path, or http(s)://. An http(s) source is downloaded to an unlinked
  // temporary file first. s3:// and the rest are refused as not supported yet.
  std::string uri;
  std::vector<ColumnRequest> columns;
  size_t csv_chunk_rows = 65536;
  std::chrono::seconds http_timeout{60};
};

Result<std::unique_ptr<TableReader>> OpenSource(const SourceOptions& options);

}  // namespace sluice::features
