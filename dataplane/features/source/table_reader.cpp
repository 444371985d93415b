#include "dataplane/features/source/table_reader.h"

#include <algorithm>
#include <cctype>

#include "dataplane/features/source/csv_reader.h"
#include "dataplane/features/source/parquet_reader.h"
#include "dataplane/features/source/source_file.h"

namespace sluice::features {

std::string_view ColumnTypeName(ColumnType type) {
  switch (type) {
    case ColumnType::kInt32:
      return "INT32";
    case ColumnType::kInt64:
      return "INT64";
    case ColumnType::kFloat:
      return "FLOAT";
    case ColumnType::kDouble:
      return "DOUBLE";
    case ColumnType::kBool:
      return "BOOL";
    case ColumnType::kString:
      return "STRING";
    case ColumnType::kBytes:
      return "BYTES";
    case ColumnType::kTimestamp:
      return "UNIX_TIMESTAMP";
  }
  return "UNKNOWN";
}

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

}  // namespace

Result<std::unique_ptr<TableReader>> OpenSource(const SourceOptions& options) {
  std::string format = options.format;
  if (format.empty() || format == "file") {
    std::string path = UriPath(options.uri);
    if (EndsWith(path, ".parquet") || EndsWith(path, ".pq")) {
      format = "parquet";
    } else if (EndsWith(path, ".csv")) {
      format = "csv";
    } else {
      return InvalidArgument("source " + options.uri +
                             ": cannot tell the format from the name; it must end in .parquet or "
                             ".csv, or name the format (parquet or csv)");
    }
  }
  if (format != "parquet" && format != "csv") {
    return InvalidArgument("source format \"" + format + "\" is not one of parquet, csv, file");
  }
  for (size_t i = 0; i < options.columns.size(); ++i) {
    if (options.columns[i].name.empty()) {
      return InvalidArgument("source " + options.uri + ": column request " + std::to_string(i) +
                             " has no name");
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SourceFile> file,
                   SourceFile::Open(options.uri, options.http_timeout));
  if (format == "parquet") return OpenParquet(std::move(file), options.columns);
  return OpenCsv(std::move(file), options.columns, options.csv_chunk_rows);
}

}  // namespace sluice::features
