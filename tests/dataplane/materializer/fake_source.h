#pragma once

// Sources for materializer tests without files: chunks built column by column, and a
// TableReader that hands out given chunks (or an error at a given point).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/features/source/table_reader.h"

namespace sluice::materializer::testing {

using features::Chunk;
using features::Column;
using features::ColumnType;

constexpr int64_t kSecond = 1'000'000'000;

// A column of `type`; std::nullopt entries are nulls.
inline Column Ints(std::string name, ColumnType type, std::vector<std::optional<int64_t>> v) {
  Column c{std::move(name), type, {}, {}, {}, {}};
  for (const auto& x : v) {
    c.ints.push_back(x.value_or(0));
    c.valid.push_back(x ? 1 : 0);
  }
  return c;
}
inline Column Doubles(std::string name, ColumnType type, std::vector<std::optional<double>> v) {
  Column c{std::move(name), type, {}, {}, {}, {}};
  for (const auto& x : v) {
    c.doubles.push_back(x.value_or(0));
    c.valid.push_back(x ? 1 : 0);
  }
  return c;
}
inline Column Strings(std::string name, ColumnType type,
                      std::vector<std::optional<std::string>> v) {
  Column c{std::move(name), type, {}, {}, {}, {}};
  for (const auto& x : v) {
    c.strings.push_back(x.value_or(""));
    c.valid.push_back(x ? 1 : 0);
  }
  return c;
}
inline Chunk MakeChunk(std::vector<Column> columns) {
  Chunk c;
  c.rows = columns.empty() ? 0 : columns[0].valid.size();
  c.columns = std::move(columns);
  return c;
}

class FakeReader final : public features::TableReader {
 public:
  explicit FakeReader(std::vector<Chunk> chunks, std::optional<Status> fail_after = std::nullopt)
      : chunks_(std::move(chunks)), fail_after_(std::move(fail_after)) {}

  Result<bool> Next(Chunk& chunk) override {
    if (next_ == chunks_.size()) {
      if (fail_after_) return *fail_after_;
      chunk.rows = 0;
      return false;
    }
    chunk = chunks_[next_++];
    rows_ += chunk.rows;
    return true;
  }
  uint64_t rows_read() const override { return rows_; }

 private:
  std::vector<Chunk> chunks_;
  std::optional<Status> fail_after_;
  size_t next_ = 0;
  uint64_t rows_ = 0;
};

}  // namespace sluice::materializer::testing
