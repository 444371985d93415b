#pragma once

#include <memory>
#include <vector>

#include "dataplane/features/source/source_file.h"
#include "dataplane/features/source/table_reader.h"

namespace sluice::features {

// Reads the footer and checks the requested columns; the reader then returns one row group per
// Next, reading only the requested columns' chunks, each with one read.
Result<std::unique_ptr<TableReader>> OpenParquet(std::unique_ptr<SourceFile> file,
                                                 const std::vector<ColumnRequest>& columns);

}  // namespace sluice::features
