#pragma once

#include <memory>
#include <vector>

#include "dataplane/features/source/source_file.h"
#include "dataplane/features/source/table_reader.h"

namespace sluice::features {

// Reads the header line and checks the requested columns are in it; the reader then returns
// `chunk_rows` records per Next (RFC 4180: quoted fields may hold commas, doubled quotes and line
// breaks).
Result<std::unique_ptr<TableReader>> OpenCsv(std::unique_ptr<SourceFile> file,
                                             const std::vector<ColumnRequest>& columns,
                                             size_t chunk_rows);

}  // namespace sluice::features
