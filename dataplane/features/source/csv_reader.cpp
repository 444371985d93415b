#include "dataplane/features/source/csv_reader.h"

#include <algorithm>
#include <cstring>

#include "dataplane/features/source/value_parse.h"

namespace sluice::features {

namespace {

constexpr size_t kReadBlock = 1 << 20;
// A record longer than this is taken as a runaway quote rather than grown into without bound.
constexpr size_t kMaxRecordBytes = 64 << 20;

struct Field {
  size_t begin;
  size_t end;
  bool quoted;
  bool has_escapes;  // quoted and holds doubled quotes
};

class CsvReader : public TableReader {
 public:
  CsvReader(std::unique_ptr<SourceFile> file, std::vector<ColumnRequest> requests,
            size_t chunk_rows)
      : file_(std::move(file)),
        requests_(std::move(requests)),
        chunk_rows_(std::max<size_t>(chunk_rows, 1)) {}

  // Reads the header and maps the requested columns to its fields.
  Status Init();
  Result<bool> Next(Chunk& chunk) override;
  uint64_t rows_read() const override { return rows_read_; }

 private:
  // Parses the next record into fields_ (views valid until the next call); false at the end.
  Result<bool> ReadRecord();
  Status Refill();
  std::string_view FieldText(size_t i);
  Status Convert(size_t slot, std::string_view text, size_t row, Column& col);
  Status Error(const std::string& what) const {
    return InvalidArgument(file_->name() + " line " + std::to_string(record_line_) + ": " + what);
  }

  std::unique_ptr<SourceFile> file_;
  const std::vector<ColumnRequest> requests_;
  const size_t chunk_rows_;
  std::vector<size_t> slot_field_;  // request index -> header field index
  size_t num_fields_ = 0;

  std::string buf_;
  size_t pos_ = 0;         // start of the unread part of buf_
  uint64_t file_pos_ = 0;  // file offset of buf_'s end
  bool eof_ = false;
  uint64_t line_ = 1;         // line of the next record
  uint64_t record_line_ = 0;  // line of the record just read
  std::vector<Field> fields_;
  std::string scratch_;
  uint64_t rows_read_ = 0;
};

Status CsvReader::Refill() {
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (buf_.size() > kMaxRecordBytes) {
    return InvalidArgument(file_->name() + " line " + std::to_string(line_) +
                           ": a record longer than " + std::to_string(kMaxRecordBytes >> 20) +
                           " MiB (an unterminated quote?)");
  }
  size_t old = buf_.size();
  buf_.resize(old + kReadBlock);
  auto n = file_->ReadSome(file_pos_, buf_.data() + old, kReadBlock);
  if (!n.ok()) {
    buf_.resize(old);
    return n.status();
  }
  buf_.resize(old + *n);
  file_pos_ += *n;
  if (*n == 0) eof_ = true;
  return Status::Ok();
}

Result<bool> CsvReader::ReadRecord() {
  while (true) {
    const char* b = buf_.data();
    const size_t size = buf_.size();
    size_t p = pos_;
    if (p >= size) {
      if (eof_) return false;
      RETURN_IF_ERROR(Refill());
      continue;
    }
    fields_.clear();
    uint64_t newlines = 0;
    bool need_more = false;
    bool record_done = false;
    while (!record_done) {
      Field f{p, p, false, false};
      if (p < size && b[p] == '"') {
        f.quoted = true;
        size_t q = p + 1;
        bool closed = false;
        while (q < size) {
          const void* hit = std::memchr(b + q, '"', size - q);
          size_t quote =
              hit == nullptr ? size : static_cast<size_t>(static_cast<const char*>(hit) - b);
          newlines += static_cast<uint64_t>(std::count(b + q, b + quote, '\n'));
          if (quote >= size) {
            q = size;
            break;
          }
          if (quote + 1 < size && b[quote + 1] == '"') {
            f.has_escapes = true;
            q = quote + 2;
            continue;
          }
          if (quote + 1 >= size && !eof_) {
            q = size;  // cannot tell a closing quote from the first of a pair yet
            break;
          }
          f.begin = p + 1;
          f.end = quote;
          q = quote + 1;
          closed = true;
          break;
        }
        if (!closed) {
          if (!eof_) {
            need_more = true;
            break;
          }
          record_line_ = line_;
          return Error("a quoted field is not closed before the end of the file");
        }
        p = q;
        if (p < size && b[p] != ',' && b[p] != '\n' && b[p] != '\r') {
          record_line_ = line_;
          return Error("text after the closing quote of a field");
        }
      } else {
        size_t q = p;
        while (q < size && b[q] != ',' && b[q] != '\n' && b[q] != '\r') ++q;
        f.begin = p;
        f.end = q;
        p = q;
      }
      if (p >= size && !eof_) {
        need_more = true;
        break;
      }
      fields_.push_back(f);
      if (p >= size) {
        record_done = true;  // the last line has no line break
      } else if (b[p] == ',') {
        ++p;
      } else {
        if (b[p] == '\r') {
          if (p + 1 >= size && !eof_) {
            need_more = true;
            break;
          }
          if (p + 1 < size && b[p + 1] == '\n') ++p;
        }
        ++p;
        ++newlines;
        record_done = true;
      }
    }
    if (need_more) {
      RETURN_IF_ERROR(Refill());
      continue;
    }
    record_line_ = line_;
    line_ += newlines;
    pos_ = p;
    // A blank line is no record.
    if (fields_.size() == 1 && !fields_[0].quoted && fields_[0].begin == fields_[0].end) continue;
    return true;
  }
}

std::string_view CsvReader::FieldText(size_t i) {
  Field& f = fields_[i];
  if (f.has_escapes) {
    // Undo the doubled quotes in place; the text only gets shorter.
    char* b = buf_.data();
    size_t out = f.begin;
    for (size_t in = f.begin; in < f.end; ++in) {
      b[out++] = b[in];
      if (b[in] == '"') ++in;  // skip the second quote of the pair
    }
    f.end = out;
    f.has_escapes = false;
  }
  return std::string_view(buf_.data() + f.begin, f.end - f.begin);
}

Status CsvReader::Init() {
  ASSIGN_OR_RETURN(bool got, ReadRecord());
  if (!got)
    return InvalidArgument(file_->name() + ": the file is empty; a header line is required");
  num_fields_ = fields_.size();
  std::vector<std::string> header;
  for (size_t i = 0; i < num_fields_; ++i) {
    std::string_view t = FieldText(i);
    if (i == 0 && t.substr(0, 3) == "\xEF\xBB\xBF") t.remove_prefix(3);  // UTF-8 byte order mark
    header.emplace_back(t);
  }
  for (const ColumnRequest& req : requests_) {
    auto it = std::find(header.begin(), header.end(), req.name);
    if (it == header.end()) {
      std::string names;
      for (const auto& h : header) names += (names.empty() ? "" : ", ") + h;
      return InvalidArgument(file_->name() + ": column \"" + req.name +
                             "\" is not in the header; its columns are: " + names);
    }
    slot_field_.push_back(static_cast<size_t>(it - header.begin()));
  }
  return Status::Ok();
}

Status CsvReader::Convert(size_t slot, std::string_view text, size_t row, Column& col) {
  const ColumnType type = requests_[slot].type;
  auto bad = [&](std::string_view what) {
    std::string shown(text.substr(0, 64));
    return Error("column \"" + requests_[slot].name + "\": \"" + shown + "\" is not " +
                 std::string(what));
  };
  if (text.empty()) {
    col.valid[row] = 0;
    return Status::Ok();
  }
  col.valid[row] = 1;
  switch (type) {
    case ColumnType::kInt32:
    case ColumnType::kInt64: {
      int64_t v;
      if (!ParseIntegral(text, v)) {
        bool null;
        double d;
        if (ParseDouble(text, d, null) && null) {
          col.valid[row] = 0;
          return Status::Ok();
        }
        return bad(type == ColumnType::kInt32 ? "an INT32" : "an INT64");
      }
      if (type == ColumnType::kInt32 && (v < INT32_MIN || v > INT32_MAX)) {
        return Error("column \"" + requests_[slot].name + "\": value " + std::to_string(v) +
                     " does not fit INT32");
      }
      col.ints[row] = v;
      return Status::Ok();
    }
    case ColumnType::kFloat:
    case ColumnType::kDouble: {
      double v;
      bool null;
      if (!ParseDouble(text, v, null))
        return bad(type == ColumnType::kFloat ? "a FLOAT" : "a DOUBLE");
      if (null) {
        col.valid[row] = 0;
        return Status::Ok();
      }
      col.doubles[row] =
          type == ColumnType::kFloat ? static_cast<double>(static_cast<float>(v)) : v;
      return Status::Ok();
    }
    case ColumnType::kBool: {
      bool v;
      if (!ParseBool(text, v)) return bad("a BOOL (true/false/1/0)");
      col.ints[row] = v ? 1 : 0;
      return Status::Ok();
    }
    case ColumnType::kString:
      col.strings[row].assign(text);
      return Status::Ok();
    case ColumnType::kBytes:
      if (!DecodeBase64(text, col.strings[row])) return bad("base64 BYTES");
      return Status::Ok();
    case ColumnType::kTimestamp: {
      if (text == "NaT") {
        col.valid[row] = 0;
        return Status::Ok();
      }
      int64_t ns;
      if (!ParseTimestamp(text, ns)) {
        return bad("a timestamp (RFC 3339, e.g. 2026-12-06T10:00:00Z, or epoch seconds)");
      }
      col.ints[row] = ns;
      return Status::Ok();
    }
  }
  return Internal("unknown column type");
}

Result<bool> CsvReader::Next(Chunk& chunk) {
  chunk.columns.resize(requests_.size());
  auto grow = [&](size_t rows) {
    for (size_t i = 0; i < requests_.size(); ++i) {
      Column& c = chunk.columns[i];
      c.valid.resize(rows);
      switch (requests_[i].type) {
        case ColumnType::kFloat:
        case ColumnType::kDouble:
          c.doubles.resize(rows);
          break;
        case ColumnType::kString:
        case ColumnType::kBytes:
          c.strings.resize(rows);
          break;
        default:
          c.ints.resize(rows);
          break;
      }
    }
  };
  for (size_t i = 0; i < requests_.size(); ++i) {
    Column& c = chunk.columns[i];
    c.name = requests_[i].name;
    c.type = requests_[i].type;
    c.ints.clear();
    c.doubles.clear();
    if (c.type != ColumnType::kString && c.type != ColumnType::kBytes) c.strings.clear();
  }
  size_t capacity = std::min<size_t>(chunk_rows_, 1024);
  grow(capacity);
  size_t rows = 0;
  while (rows < chunk_rows_) {
    ASSIGN_OR_RETURN(bool got, ReadRecord());
    if (!got) break;
    if (fields_.size() != num_fields_) {
      return Error(std::to_string(fields_.size()) + " fields where the header has " +
                   std::to_string(num_fields_));
    }
    if (rows == capacity) {
      capacity = std::min(capacity * 2, chunk_rows_);
      grow(capacity);
    }
    for (size_t s = 0; s < slot_field_.size(); ++s) {
      Column& c = chunk.columns[s];
      // Ints and doubles of a null row are 0; strings are cleared (they may hold an old value).
      if (!c.ints.empty()) c.ints[rows] = 0;
      if (!c.doubles.empty()) c.doubles[rows] = 0;
      if (!c.strings.empty()) c.strings[rows].clear();
      RETURN_IF_ERROR(Convert(s, FieldText(slot_field_[s]), rows, c));
    }
    ++rows;
  }
  grow(rows);
  chunk.rows = rows;
  rows_read_ += rows;
  return rows > 0;
}

}  // namespace

Result<std::unique_ptr<TableReader>> OpenCsv(std::unique_ptr<SourceFile> file,
                                             const std::vector<ColumnRequest>& columns,
                                             size_t chunk_rows) {
  auto reader = std::make_unique<CsvReader>(std::move(file), columns, chunk_rows);
  RETURN_IF_ERROR(reader->Init());
  return std::unique_ptr<TableReader>(std::move(reader));
}

}  // namespace sluice::features
