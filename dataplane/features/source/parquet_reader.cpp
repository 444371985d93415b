#include "dataplane/features/source/parquet_reader.h"

#include <cstring>
#include <string_view>

#include "dataplane/features/source/decode.h"
#include "dataplane/features/source/parquet_format.h"

namespace sluice::features {

namespace {

using namespace parquet;  // NOLINT(google-build-using-namespace): the format's many names

// More rows than this in one file is taken as a corrupt count, so no forged count can make the
// reader allocate without bound.
constexpr int64_t kMaxRows = int64_t{1} << 31;
constexpr int64_t kNanosPerDay = 86'400'000'000'000;
// Julian day number of 1970-01-01, for INT96 timestamps.
constexpr int64_t kJulianEpochDay = 2'440'588;

// What a file column holds, as far as conversion cares.
enum class Kind { kBool, kInt, kFloat, kDouble, kTimestamp, kInt96, kDate, kBinary, kUnsupported };

std::string_view PhysicalName(PhysicalType t) {
  switch (t) {
    case PhysicalType::kBoolean:
      return "BOOLEAN";
    case PhysicalType::kInt32:
      return "INT32";
    case PhysicalType::kInt64:
      return "INT64";
    case PhysicalType::kInt96:
      return "INT96";
    case PhysicalType::kFloat:
      return "FLOAT";
    case PhysicalType::kDouble:
      return "DOUBLE";
    case PhysicalType::kByteArray:
      return "BYTE_ARRAY";
    case PhysicalType::kFixedLenByteArray:
      return "FIXED_LEN_BYTE_ARRAY";
  }
  return "UNKNOWN";
}

std::string_view EncodingName(Encoding e) {
  switch (e) {
    case Encoding::kPlain:
      return "PLAIN";
    case Encoding::kPlainDictionary:
      return "PLAIN_DICTIONARY";
    case Encoding::kRle:
      return "RLE";
    case Encoding::kBitPacked:
      return "BIT_PACKED";
    case Encoding::kDeltaBinaryPacked:
      return "DELTA_BINARY_PACKED";
    case Encoding::kDeltaLengthByteArray:
      return "DELTA_LENGTH_BYTE_ARRAY";
    case Encoding::kDeltaByteArray:
      return "DELTA_BYTE_ARRAY";
    case Encoding::kRleDictionary:
      return "RLE_DICTIONARY";
    case Encoding::kByteStreamSplit:
      return "BYTE_STREAM_SPLIT";
  }
  return "UNKNOWN";
}

bool IsString(const SchemaElement& e) {
  return e.logical == Logical::kString || e.logical == Logical::kEnum ||
         e.logical == Logical::kJson || e.converted_type == converted::kUtf8 ||
         e.converted_type == converted::kEnum || e.converted_type == converted::kJson;
}

bool IsUnsigned(const SchemaElement& e) {
  if (e.logical == Logical::kInteger) return !e.int_signed;
  return e.converted_type >= converted::kUint8 && e.converted_type <= converted::kUint64;
}

int64_t TimestampUnit(const SchemaElement& e) {
  if (e.logical == Logical::kTimestamp) return e.time_unit_ns;
  if (e.converted_type == converted::kTimestampMillis) return 1'000'000;
  if (e.converted_type == converted::kTimestampMicros) return 1'000;
  return 0;
}

Kind Classify(const SchemaElement& e) {
  bool decimal = e.logical == Logical::kDecimal || e.converted_type == converted::kDecimal;
  bool time = e.logical == Logical::kTime || e.converted_type == converted::kTimeMillis ||
              e.converted_type == converted::kTimeMicros;
  if (decimal || time) return Kind::kUnsupported;
  switch (e.type) {
    case PhysicalType::kBoolean:
      return Kind::kBool;
    case PhysicalType::kInt32:
      if (e.logical == Logical::kDate || e.converted_type == converted::kDate) return Kind::kDate;
      return Kind::kInt;
    case PhysicalType::kInt64:
      if (TimestampUnit(e) != 0) return Kind::kTimestamp;
      if (e.logical == Logical::kTimestamp) return Kind::kUnsupported;  // unknown unit
      return Kind::kInt;
    case PhysicalType::kInt96:
      return Kind::kInt96;
    case PhysicalType::kFloat:
      return Kind::kFloat;
    case PhysicalType::kDouble:
      return Kind::kDouble;
    case PhysicalType::kByteArray:
      return Kind::kBinary;
    case PhysicalType::kFixedLenByteArray:
      return e.logical == Logical::kOther ? Kind::kUnsupported : Kind::kBinary;
  }
  return Kind::kUnsupported;
}

// "a string (BYTE_ARRAY/UTF8)", "a timestamp (INT64/TIMESTAMP(MICROS, UTC))", ...
std::string Describe(const SchemaElement& e) {
  std::string annotation;
  int64_t unit = TimestampUnit(e);
  if (unit != 0) {
    annotation = std::string("TIMESTAMP(") +
                 (unit == 1'000'000 ? "MILLIS"
                  : unit == 1'000   ? "MICROS"
                                    : "NANOS") +
                 (e.logical != Logical::kTimestamp || e.adjusted_to_utc ? ", UTC)" : ", local)");
  } else if (IsString(e)) {
    annotation = "UTF8";
  } else if (e.logical == Logical::kDate || e.converted_type == converted::kDate) {
    annotation = "DATE";
  } else if (e.logical == Logical::kDecimal || e.converted_type == converted::kDecimal) {
    annotation = "DECIMAL";
  } else if (e.logical == Logical::kTime || e.converted_type == converted::kTimeMillis ||
             e.converted_type == converted::kTimeMicros) {
    annotation = "TIME";
  } else if (IsUnsigned(e)) {
    annotation = "UNSIGNED";
  } else if (e.logical == Logical::kUuid) {
    annotation = "UUID";
  }
  std::string noun;
  switch (Classify(e)) {
    case Kind::kBool:
      noun = "a boolean";
      break;
    case Kind::kInt:
      noun = "an integer";
      break;
    case Kind::kFloat:
      noun = "a float";
      break;
    case Kind::kDouble:
      noun = "a double";
      break;
    case Kind::kTimestamp:
    case Kind::kInt96:
      noun = "a timestamp";
      break;
    case Kind::kDate:
      noun = "a date";
      break;
    case Kind::kBinary:
      noun = IsString(e) ? "a string" : "bytes";
      break;
    case Kind::kUnsupported:
      noun = "of an unsupported type";
      break;
  }
  std::string s = noun + " (" + std::string(PhysicalName(e.type));
  if (!annotation.empty()) s += "/" + annotation;
  return s + ")";
}

bool Convertible(Kind from, ColumnType to) {
  switch (to) {
    case ColumnType::kInt32:
    case ColumnType::kInt64:
      return from == Kind::kInt;
    case ColumnType::kFloat:
    case ColumnType::kDouble:
      return from == Kind::kInt || from == Kind::kFloat || from == Kind::kDouble;
    case ColumnType::kBool:
      return from == Kind::kBool;
    case ColumnType::kString:
    case ColumnType::kBytes:
      return from == Kind::kBinary;
    case ColumnType::kTimestamp:
      return from == Kind::kTimestamp || from == Kind::kInt96 || from == Kind::kDate;
  }
  return false;
}

bool IntOutput(ColumnType t) {
  return t == ColumnType::kInt32 || t == ColumnType::kInt64 || t == ColumnType::kBool ||
         t == ColumnType::kTimestamp;
}

// One requested column and how to read it.
struct Plan {
  ColumnRequest request;
  size_t leaf = 0;  // index of its ColumnChunk in every row group
  SchemaElement element;
  Kind kind = Kind::kUnsupported;
  bool optional = false;
  bool is_unsigned = false;
  int64_t ts_unit = 0;  // kTimestamp: nanoseconds per stored tick
};

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

class ParquetReader : public TableReader {
 public:
  ParquetReader(std::unique_ptr<SourceFile> file, FileMetaData md, std::vector<Plan> plans,
                uint64_t data_end)
      : file_(std::move(file)), md_(std::move(md)), plans_(std::move(plans)), data_end_(data_end) {}

  Result<bool> Next(Chunk& chunk) override {
    while (next_rg_ < md_.row_groups.size() && md_.row_groups[next_rg_].num_rows == 0) ++next_rg_;
    if (next_rg_ >= md_.row_groups.size()) {
      chunk.rows = 0;
      chunk.columns.clear();
      return false;
    }
    const RowGroup& rg = md_.row_groups[next_rg_];
    size_t rows = static_cast<size_t>(rg.num_rows);
    chunk.columns.resize(plans_.size());
    for (size_t i = 0; i < plans_.size(); ++i) {
      Status s = ReadColumn(plans_[i], rg, rows, chunk.columns[i]);
      if (!s.ok()) {
        return Status(s.code(), file_->name() + ": column \"" + plans_[i].request.name +
                                    "\", row group " + std::to_string(next_rg_) + ": " +
                                    s.message());
      }
    }
    chunk.rows = rows;
    rows_read_ += rows;
    ++next_rg_;
    return true;
  }

  uint64_t rows_read() const override { return rows_read_; }

 private:
  Status ReadColumn(const Plan& p, const RowGroup& rg, size_t rows, Column& out);
  Status ReadDictionary(const Plan& p, const PageHeader& h, const uint8_t* page, size_t size);
  Status ReadDataPage(const Plan& p, const PageHeader& h, const uint8_t* page, size_t size,
                      size_t row, size_t rows, Column& out, size_t& page_rows);
  Status DecodeValues(const Plan& p, Encoding encoding, const uint8_t* data, size_t size, size_t n,
                      size_t row, Column& out);
  Status DecodePlainFixed(const Plan& p, const uint8_t* data, size_t size, size_t nn, bool to_dict);
  Status Store(const Plan& p, size_t row, size_t n, Column& out);

  std::unique_ptr<SourceFile> file_;
  const FileMetaData md_;
  const std::vector<Plan> plans_;
  const uint64_t data_end_;  // where the footer starts
  size_t next_rg_ = 0;
  uint64_t rows_read_ = 0;

  // Reused across pages and chunks.
  std::string chunk_buf_;
  std::string page_buf_;
  std::vector<uint32_t> indices_;
  std::vector<int64_t> ints_;  // the page's non-null values, as stored (INT96 already in ns)
  std::vector<double> doubles_;
  // The current chunk's dictionary.
  Codec codec_ = Codec::kUncompressed;  // the current chunk's
  bool has_dict_ = false;
  std::string dict_buf_;
  std::vector<int64_t> dict_ints_;
  std::vector<double> dict_doubles_;
  std::vector<std::string_view> dict_strings_;  // views into dict_buf_
};

Status ParquetReader::ReadColumn(const Plan& p, const RowGroup& rg, size_t rows, Column& out) {
  const ColumnChunk& cc = rg.columns[p.leaf];
  if (!cc.file_path.empty()) {
    return Unimplemented("the column chunk is in another file (" + cc.file_path + ")");
  }
  if (!cc.has_meta) return InvalidArgument("the column chunk has no metadata");
  const ColumnMetaData& m = cc.meta;
  if (m.type != p.element.type) {
    return InvalidArgument("the column chunk's type disagrees with the schema");
  }
  int64_t start = m.data_page_offset;
  if (m.dictionary_page_offset > 0 && m.dictionary_page_offset < start) {
    start = m.dictionary_page_offset;
  }
  int64_t len = m.total_compressed_size;
  if (start < 4 || len <= 0 || static_cast<uint64_t>(start) > data_end_ ||
      static_cast<uint64_t>(len) > data_end_ - static_cast<uint64_t>(start)) {
    return InvalidArgument("the column chunk (offset " + std::to_string(start) + ", " +
                           std::to_string(len) +
                           " bytes) lies outside the file's data; the file is corrupt");
  }
  RETURN_IF_ERROR(
      file_->ReadAt(static_cast<uint64_t>(start), static_cast<uint64_t>(len), chunk_buf_));

  out.name = p.request.name;
  out.type = p.request.type;
  out.valid.resize(rows);
  out.ints.clear();
  out.doubles.clear();
  if (IntOutput(p.request.type)) {
    out.ints.resize(rows);
  } else if (p.request.type == ColumnType::kFloat || p.request.type == ColumnType::kDouble) {
    out.doubles.resize(rows);
  }
  if (p.kind == Kind::kBinary) {
    out.strings.resize(rows);
  } else {
    out.strings.clear();
  }

  has_dict_ = false;
  codec_ = m.codec;
  const auto* buf = reinterpret_cast<const uint8_t*>(chunk_buf_.data());
  const size_t size = chunk_buf_.size();
  size_t pos = 0;
  size_t row = 0;
  while (row < rows) {
    if (pos >= size) {
      return InvalidArgument("the column chunk ends after " + std::to_string(row) + " of " +
                             std::to_string(rows) + " rows");
    }
    size_t header_size = 0;
    ASSIGN_OR_RETURN(PageHeader h, ParsePageHeader(buf + pos, size - pos, header_size));
    pos += header_size;
    if (h.compressed_page_size < 0 || h.uncompressed_page_size < 0 ||
        static_cast<size_t>(h.compressed_page_size) > size - pos) {
      return InvalidArgument("a page's size runs past the column chunk");
    }
    const uint8_t* page = buf + pos;
    const size_t page_size = static_cast<size_t>(h.compressed_page_size);
    pos += page_size;
    switch (h.type) {
      case PageType::kDictionaryPage:
        RETURN_IF_ERROR(ReadDictionary(p, h, page, page_size));
        break;
      case PageType::kDataPage:
      case PageType::kDataPageV2: {
        size_t page_rows = 0;
        RETURN_IF_ERROR(ReadDataPage(p, h, page, page_size, row, rows, out, page_rows));
        row += page_rows;
        break;
      }
      default:
        break;  // index pages and unknown kinds carry no values
    }
  }
  return Status::Ok();
}

Status ParquetReader::ReadDictionary(const Plan& p, const PageHeader& h, const uint8_t* page,
                                     size_t size) {
  if (!h.has_dictionary) return InvalidArgument("a dictionary page has no dictionary header");
  if (h.dictionary.encoding != Encoding::kPlain &&
      h.dictionary.encoding != Encoding::kPlainDictionary) {
    return Unimplemented("dictionary encoding " + std::string(EncodingName(h.dictionary.encoding)) +
                         " is not supported");
  }
  RETURN_IF_ERROR(
      Decompress(codec_, page, size, static_cast<size_t>(h.uncompressed_page_size), dict_buf_));
  int32_t n = h.dictionary.num_values;
  // Every entry takes at least one byte (four for a string's length), so a larger count is corrupt.
  if (n < 0 || static_cast<size_t>(n) > dict_buf_.size()) {
    return InvalidArgument("the dictionary's value count " + std::to_string(n) +
                           " does not fit its page");
  }
  const auto* data = reinterpret_cast<const uint8_t*>(dict_buf_.data());
  if (p.kind == Kind::kBinary) {
    dict_strings_.clear();
    dict_strings_.reserve(static_cast<size_t>(n));
    size_t pos = 0;
    for (int32_t i = 0; i < n; ++i) {
      size_t len;
      if (p.element.type == PhysicalType::kFixedLenByteArray) {
        len = static_cast<size_t>(p.element.type_length);
      } else {
        if (dict_buf_.size() - pos < 4) return InvalidArgument("the dictionary page is truncated");
        len = LoadU32(data + pos);
        pos += 4;
      }
      if (len > dict_buf_.size() - pos) return InvalidArgument("the dictionary page is truncated");
      dict_strings_.emplace_back(dict_buf_.data() + pos, len);
      pos += len;
    }
  } else {
    RETURN_IF_ERROR(DecodePlainFixed(p, data, dict_buf_.size(), static_cast<size_t>(n), true));
  }
  has_dict_ = true;
  return Status::Ok();
}

Status ParquetReader::ReadDataPage(const Plan& p, const PageHeader& h, const uint8_t* page,
                                   size_t size, size_t row, size_t rows, Column& out,
                                   size_t& page_rows) {
  const bool v2 = h.type == PageType::kDataPageV2;
  if (v2 ? !h.has_data_v2 : !h.has_data) return InvalidArgument("a data page has no data header");
  int32_t n = v2 ? h.data_v2.num_values : h.data.num_values;
  if (n < 0 || static_cast<size_t>(n) > rows - row) {
    return InvalidArgument("a data page holds " + std::to_string(n) + " values where " +
                           std::to_string(rows - row) + " rows are left in the row group");
  }
  const size_t count = static_cast<size_t>(n);
  uint8_t* valid = out.valid.data() + row;

  const uint8_t* values;
  size_t values_size;
  Encoding encoding;
  if (!v2) {
    RETURN_IF_ERROR(
        Decompress(codec_, page, size, static_cast<size_t>(h.uncompressed_page_size), page_buf_));
    const auto* data = reinterpret_cast<const uint8_t*>(page_buf_.data());
    size_t left = page_buf_.size();
    if (p.optional) {
      if (h.data.definition_level_encoding != Encoding::kRle) {
        return Unimplemented("definition level encoding " +
                             std::string(EncodingName(h.data.definition_level_encoding)) +
                             " is not supported");
      }
      if (left < 4) return InvalidArgument("a data page is truncated before its levels");
      uint32_t len = LoadU32(data);
      if (len > left - 4) return InvalidArgument("a data page's levels run past the page");
      RETURN_IF_ERROR(DecodeRleHybrid(data + 4, len, 1, count, valid));
      data += 4 + len;
      left -= 4 + len;
    }
    values = data;
    values_size = left;
    encoding = h.data.encoding;
  } else {
    const DataPageHeaderV2& d = h.data_v2;
    if (d.repetition_levels_byte_length < 0 || d.definition_levels_byte_length < 0 ||
        static_cast<uint64_t>(d.repetition_levels_byte_length) +
                static_cast<uint64_t>(d.definition_levels_byte_length) >
            size ||
        static_cast<uint64_t>(d.repetition_levels_byte_length) +
                static_cast<uint64_t>(d.definition_levels_byte_length) >
            static_cast<uint64_t>(h.uncompressed_page_size)) {
      return InvalidArgument("a data page's level lengths run past the page");
    }
    size_t levels = static_cast<size_t>(d.repetition_levels_byte_length) +
                    static_cast<size_t>(d.definition_levels_byte_length);
    if (p.optional) {
      RETURN_IF_ERROR(DecodeRleHybrid(page + d.repetition_levels_byte_length,
                                      static_cast<size_t>(d.definition_levels_byte_length), 1,
                                      count, valid));
    }
    size_t raw = static_cast<size_t>(h.uncompressed_page_size) - levels;
    if (d.is_compressed) {
      RETURN_IF_ERROR(Decompress(codec_, page + levels, size - levels, raw, page_buf_));
    } else {
      page_buf_.assign(reinterpret_cast<const char*>(page + levels), size - levels);
    }
    values = reinterpret_cast<const uint8_t*>(page_buf_.data());
    values_size = page_buf_.size();
    encoding = d.encoding;
  }
  if (!p.optional) std::memset(valid, 1, count);
  for (size_t i = 0; i < count; ++i) {
    if (valid[i] > 1) return InvalidArgument("a definition level is out of range");
  }
  RETURN_IF_ERROR(DecodeValues(p, encoding, values, values_size, count, row, out));
  page_rows = count;
  return Status::Ok();
}

Status ParquetReader::DecodePlainFixed(const Plan& p, const uint8_t* data, size_t size, size_t nn,
                                       bool to_dict) {
  std::vector<int64_t>& ints = to_dict ? dict_ints_ : ints_;
  std::vector<double>& doubles = to_dict ? dict_doubles_ : doubles_;
  auto need = [&](size_t width) -> Status {
    if (nn > size / width) {
      return InvalidArgument(std::to_string(nn) + " values need more than the page's " +
                             std::to_string(size) + " bytes");
    }
    return Status::Ok();
  };
  switch (p.element.type) {
    case PhysicalType::kBoolean:
      if (nn > size * 8) return need(1);
      ints.resize(nn);
      for (size_t i = 0; i < nn; ++i) ints[i] = (data[i / 8] >> (i % 8)) & 1;
      return Status::Ok();
    case PhysicalType::kInt32:
      RETURN_IF_ERROR(need(4));
      ints.resize(nn);
      if (p.is_unsigned) {
        for (size_t i = 0; i < nn; ++i) ints[i] = LoadU32(data + 4 * i);
      } else {
        for (size_t i = 0; i < nn; ++i) {
          int32_t v;
          std::memcpy(&v, data + 4 * i, 4);
          ints[i] = v;
        }
      }
      return Status::Ok();
    case PhysicalType::kInt64:
      RETURN_IF_ERROR(need(8));
      ints.resize(nn);
      if (nn > 0) std::memcpy(ints.data(), data, nn * 8);
      return Status::Ok();
    case PhysicalType::kInt96:
      RETURN_IF_ERROR(need(12));
      ints.resize(nn);
      for (size_t i = 0; i < nn; ++i) {
        int64_t nanos_of_day;
        std::memcpy(&nanos_of_day, data + 12 * i, 8);
        int64_t julian = LoadU32(data + 12 * i + 8);
        // Both parts are bounded (a 32-bit day), so this cannot overflow past what int64 holds
        // for any real date; a corrupt day lands far away, not in undefined behaviour.
        ints[i] = static_cast<int64_t>(static_cast<uint64_t>(julian - kJulianEpochDay) *
                                           static_cast<uint64_t>(kNanosPerDay) +
                                       static_cast<uint64_t>(nanos_of_day));
      }
      return Status::Ok();
    case PhysicalType::kFloat:
      RETURN_IF_ERROR(need(4));
      doubles.resize(nn);
      for (size_t i = 0; i < nn; ++i) {
        float v;
        std::memcpy(&v, data + 4 * i, 4);
        doubles[i] = v;
      }
      return Status::Ok();
    case PhysicalType::kDouble:
      RETURN_IF_ERROR(need(8));
      doubles.resize(nn);
      if (nn > 0) std::memcpy(doubles.data(), data, nn * 8);
      return Status::Ok();
    default:
      return Internal("not a fixed-width type");
  }
}

Status ParquetReader::DecodeValues(const Plan& p, Encoding encoding, const uint8_t* data,
                                   size_t size, size_t n, size_t row, Column& out) {
  const uint8_t* valid = out.valid.data() + row;
  size_t nn = 0;
  for (size_t i = 0; i < n; ++i) nn += valid[i];

  if (encoding == Encoding::kPlainDictionary || encoding == Encoding::kRleDictionary) {
    if (!has_dict_) return InvalidArgument("a dictionary-encoded page comes without a dictionary");
    if (size < 1) return InvalidArgument("a dictionary-encoded page is empty");
    indices_.resize(nn);
    RETURN_IF_ERROR(DecodeRleHybrid(data + 1, size - 1, data[0], nn, indices_.data()));
    size_t dict_size =
        p.kind == Kind::kBinary ? dict_strings_.size()
        : (p.element.type == PhysicalType::kFloat || p.element.type == PhysicalType::kDouble)
            ? dict_doubles_.size()
            : dict_ints_.size();
    for (size_t k = 0; k < nn; ++k) {
      if (indices_[k] >= dict_size) {
        return InvalidArgument("dictionary index " + std::to_string(indices_[k]) +
                               " is past the dictionary's " + std::to_string(dict_size) +
                               " entries");
      }
    }
    if (p.kind == Kind::kBinary) {
      size_t k = 0;
      for (size_t i = 0; i < n; ++i) {
        if (valid[i]) {
          out.strings[row + i].assign(dict_strings_[indices_[k++]]);
        } else {
          out.strings[row + i].clear();
        }
      }
      return Status::Ok();
    }
    if (p.element.type == PhysicalType::kFloat || p.element.type == PhysicalType::kDouble) {
      doubles_.resize(nn);
      for (size_t k = 0; k < nn; ++k) doubles_[k] = dict_doubles_[indices_[k]];
    } else {
      ints_.resize(nn);
      for (size_t k = 0; k < nn; ++k) ints_[k] = dict_ints_[indices_[k]];
    }
    return Store(p, row, n, out);
  }

  if (encoding == Encoding::kRle && p.element.type == PhysicalType::kBoolean) {
    if (size < 4) return InvalidArgument("an RLE boolean page is truncated");
    uint32_t len = LoadU32(data);
    if (len > size - 4) return InvalidArgument("an RLE boolean page's length runs past the page");
    indices_.resize(nn);
    RETURN_IF_ERROR(DecodeRleHybrid(data + 4, len, 1, nn, indices_.data()));
    ints_.resize(nn);
    for (size_t k = 0; k < nn; ++k) ints_[k] = indices_[k];
    return Store(p, row, n, out);
  }

  if (encoding != Encoding::kPlain) {
    return Unimplemented("encoding " + std::string(EncodingName(encoding)) +
                         " is not supported (PLAIN and dictionary encodings are; write the file "
                         "with dictionary or plain encoding)");
  }
  if (p.kind == Kind::kBinary) {
    size_t pos = 0;
    const bool fixed = p.element.type == PhysicalType::kFixedLenByteArray;
    for (size_t i = 0; i < n; ++i) {
      std::string& s = out.strings[row + i];
      if (!valid[i]) {
        s.clear();
        continue;
      }
      size_t len;
      if (fixed) {
        len = static_cast<size_t>(p.element.type_length);
      } else {
        if (size - pos < 4) return InvalidArgument("a page's strings run past its end");
        len = LoadU32(data + pos);
        pos += 4;
      }
      if (len > size - pos) return InvalidArgument("a page's strings run past its end");
      s.assign(reinterpret_cast<const char*>(data + pos), len);
      pos += len;
    }
    return Status::Ok();
  }
  RETURN_IF_ERROR(DecodePlainFixed(p, data, size, nn, false));
  return Store(p, row, n, out);
}

// Scatters the page's non-null values (ints_ or doubles_) into rows [row, row + n) of `out`,
// converting them to the requested type.
Status ParquetReader::Store(const Plan& p, size_t row, size_t n, Column& out) {
  const uint8_t* valid = out.valid.data() + row;
  const ColumnType to = p.request.type;
  auto row_error = [&](size_t i, const std::string& what) {
    return InvalidArgument("row " + std::to_string(rows_read_ + row + i) + ": " + what);
  };
  size_t k = 0;
  if (p.kind == Kind::kFloat || p.kind == Kind::kDouble) {
    double* dst = out.doubles.data() + row;
    const bool narrow = to == ColumnType::kFloat && p.kind == Kind::kDouble;
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i]) {
        dst[i] = 0;
        continue;
      }
      double v = doubles_[k++];
      dst[i] = narrow ? static_cast<double>(static_cast<float>(v)) : v;
    }
    return Status::Ok();
  }
  if (to == ColumnType::kFloat || to == ColumnType::kDouble) {
    double* dst = out.doubles.data() + row;
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i]) {
        dst[i] = 0;
        continue;
      }
      int64_t v = ints_[k++];
      double d = p.is_unsigned && p.element.type == PhysicalType::kInt64
                     ? static_cast<double>(static_cast<uint64_t>(v))
                     : static_cast<double>(v);
      dst[i] = to == ColumnType::kFloat ? static_cast<double>(static_cast<float>(d)) : d;
    }
    return Status::Ok();
  }
  int64_t* dst = out.ints.data() + row;
  switch (p.kind) {
    case Kind::kInt: {
      const bool u64 = p.is_unsigned && p.element.type == PhysicalType::kInt64;
      const bool to32 = to == ColumnType::kInt32;
      for (size_t i = 0; i < n; ++i) {
        if (!valid[i]) {
          dst[i] = 0;
          continue;
        }
        int64_t v = ints_[k++];
        if (u64 && v < 0) {
          return row_error(
              i, "value " + std::to_string(static_cast<uint64_t>(v)) + " does not fit INT64");
        }
        if (to32 && (v < INT32_MIN || v > INT32_MAX)) {
          return row_error(i, "value " + std::to_string(v) + " does not fit INT32");
        }
        dst[i] = v;
      }
      return Status::Ok();
    }
    case Kind::kTimestamp:
    case Kind::kDate: {
      const int64_t unit = p.kind == Kind::kDate ? kNanosPerDay : p.ts_unit;
      for (size_t i = 0; i < n; ++i) {
        if (!valid[i]) {
          dst[i] = 0;
          continue;
        }
        int64_t v = ints_[k++];
        if (__builtin_mul_overflow(v, unit, &dst[i])) {
          return row_error(i, "timestamp " + std::to_string(v) +
                                  " is outside the nanosecond range (years 1677 to 2262)");
        }
      }
      return Status::Ok();
    }
    default:  // kBool, kInt96: stored as they are
      for (size_t i = 0; i < n; ++i) dst[i] = valid[i] ? ints_[k++] : 0;
      return Status::Ok();
  }
}

}  // namespace

Result<std::unique_ptr<TableReader>> OpenParquet(std::unique_ptr<SourceFile> file,
                                                 const std::vector<ColumnRequest>& columns) {
  const std::string& name = file->name();
  const uint64_t size = file->size();
  if (size < 12) {
    return InvalidArgument(name + ": " + std::to_string(size) +
                           " bytes is too small for a Parquet file");
  }
  std::string buf;
  RETURN_IF_ERROR(file->ReadAt(0, 4, buf));
  if (buf != "PAR1") return InvalidArgument(name + ": not a Parquet file (no PAR1 magic)");
  RETURN_IF_ERROR(file->ReadAt(size - 8, 8, buf));
  if (buf.compare(4, 4, "PAR1") != 0) {
    return InvalidArgument(name + ": not a Parquet file or truncated (no PAR1 at the end)");
  }
  uint32_t meta_len = LoadU32(reinterpret_cast<const uint8_t*>(buf.data()));
  if (meta_len > size - 12) {
    return InvalidArgument(name + ": the footer length " + std::to_string(meta_len) +
                           " is larger than the file; the file is truncated or corrupt");
  }
  const uint64_t data_end = size - 8 - meta_len;
  RETURN_IF_ERROR(file->ReadAt(data_end, meta_len, buf));
  auto parsed = ParseFileMetaData(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  if (!parsed.ok()) return parsed.status().Annotate(name);
  FileMetaData md = std::move(parsed).value();

  // Top-level columns: a primitive is one leaf; a group (nested) covers all the leaves under it.
  struct TopColumn {
    size_t element;
    size_t leaf;
    bool nested;
  };
  std::vector<std::pair<std::string, TopColumn>> top;
  if (md.schema.empty() || md.schema[0].num_children < 0) {
    return InvalidArgument(name + ": the footer has no schema");
  }
  size_t idx = 1;
  size_t leaves = 0;
  for (int32_t c = 0; c < md.schema[0].num_children; ++c) {
    if (idx >= md.schema.size()) return InvalidArgument(name + ": the schema is corrupt");
    const SchemaElement& e = md.schema[idx];
    TopColumn col{idx, leaves, e.num_children > 0 || e.repetition == Repetition::kRepeated};
    // Walk the subtree: `pending` elements are still to be visited.
    uint64_t pending = 1;
    while (pending > 0) {
      if (idx >= md.schema.size()) return InvalidArgument(name + ": the schema is corrupt");
      const SchemaElement& s = md.schema[idx++];
      --pending;
      if (s.num_children > 0) {
        pending += static_cast<uint64_t>(s.num_children);
        if (pending > md.schema.size()) return InvalidArgument(name + ": the schema is corrupt");
      } else {
        ++leaves;
      }
    }
    top.emplace_back(e.name, col);
  }

  if (md.num_rows < 0 || md.num_rows > kMaxRows) {
    return InvalidArgument(name + ": the row count " + std::to_string(md.num_rows) + " is corrupt");
  }
  int64_t total = 0;
  for (size_t i = 0; i < md.row_groups.size(); ++i) {
    const RowGroup& rg = md.row_groups[i];
    if (rg.columns.size() != leaves || rg.num_rows < 0 || rg.num_rows > md.num_rows - total) {
      return InvalidArgument(name + ": row group " + std::to_string(i) +
                             " disagrees with the schema or the row count; the footer is corrupt");
    }
    total += rg.num_rows;
  }
  if (total != md.num_rows) {
    return InvalidArgument(name + ": the row groups hold " + std::to_string(total) +
                           " rows where the footer says " + std::to_string(md.num_rows));
  }

  std::vector<Plan> plans;
  for (const ColumnRequest& req : columns) {
    const TopColumn* found = nullptr;
    for (const auto& [n, col] : top) {
      if (n == req.name) {
        found = &col;
        break;
      }
    }
    if (found == nullptr) {
      std::string names;
      for (const auto& [n, col] : top) names += (names.empty() ? "" : ", ") + n;
      return InvalidArgument(name + ": column \"" + req.name +
                             "\" is not in the file; its columns are: " + names);
    }
    const SchemaElement& e = md.schema[found->element];
    if (found->nested) {
      return InvalidArgument(name + ": column \"" + req.name +
                             "\" is nested or repeated; only flat columns can be read");
    }
    if (!e.has_type) return InvalidArgument(name + ": column \"" + req.name + "\" has no type");
    Plan p;
    p.request = req;
    p.leaf = found->leaf;
    p.element = e;
    p.kind = Classify(e);
    p.optional = e.repetition == Repetition::kOptional;
    p.is_unsigned = IsUnsigned(e);
    p.ts_unit = TimestampUnit(e);
    if (e.type == PhysicalType::kFixedLenByteArray && e.type_length < 0) {
      return InvalidArgument(name + ": column \"" + req.name + "\" has a negative length");
    }
    if (!Convertible(p.kind, req.type)) {
      return InvalidArgument(name + ": column \"" + req.name + "\" is " + Describe(e) +
                             "; the FeatureView declares " + std::string(ColumnTypeName(req.type)));
    }
    plans.push_back(std::move(p));
  }
  return std::unique_ptr<TableReader>(
      new ParquetReader(std::move(file), std::move(md), std::move(plans), data_end));
}

}  // namespace sluice::features
