#include "dataplane/features/source/parquet_format.h"

#include "dataplane/features/source/thrift_compact.h"

namespace sluice::features::parquet {

namespace {

using thrift::CompactDecoder;
using thrift::Type;

// Reads a struct, handing each field to `on_field(id, type)`; it returns false for fields it does
// not read, which are skipped.
template <typename F>
void ReadStruct(CompactDecoder& d, F&& on_field) {
  d.BeginStruct();
  int16_t id;
  Type type;
  while (d.ReadField(id, type)) {
    if (!on_field(id, type)) d.Skip(type);
  }
  d.EndStruct();
}

// Reads a list whose elements are structs (or anything `on_elem` reads).
template <typename F>
void ReadList(CompactDecoder& d, F&& on_elem) {
  Type elem;
  uint32_t n = d.ReadListHeader(elem);
  for (uint32_t i = 0; i < n && d.ok(); ++i) on_elem(elem);
}

bool IsInt(Type t) {
  return t == Type::kI32 || t == Type::kI16 || t == Type::kByte;
}

// TimeUnit is a union of empty structs: 1 MILLIS, 2 MICROS, 3 NANOS.
int64_t ReadTimeUnit(CompactDecoder& d) {
  int64_t unit = 0;
  ReadStruct(d, [&](int16_t id, Type t) {
    if (t != Type::kStruct) return false;
    if (id == 1) unit = 1'000'000;
    if (id == 2) unit = 1'000;
    if (id == 3) unit = 1;
    return false;  // the empty struct itself is skipped
  });
  return unit;
}

void ReadLogicalType(CompactDecoder& d, SchemaElement& e) {
  ReadStruct(d, [&](int16_t id, Type t) {
    if (t != Type::kStruct) return false;
    switch (id) {
      case 1:
        e.logical = Logical::kString;
        return false;
      case 4:
        e.logical = Logical::kEnum;
        return false;
      case 5:
        e.logical = Logical::kDecimal;
        return false;
      case 6:
        e.logical = Logical::kDate;
        return false;
      case 12:
        e.logical = Logical::kJson;
        return false;
      case 14:
        e.logical = Logical::kUuid;
        return false;
      case 7:
      case 8:  // TimeType and TimestampType: 1 isAdjustedToUTC, 2 unit
        e.logical = id == 7 ? Logical::kTime : Logical::kTimestamp;
        ReadStruct(d, [&](int16_t fid, Type ft) {
          if (fid == 1 && (ft == Type::kBoolTrue || ft == Type::kBoolFalse)) {
            e.adjusted_to_utc = d.ReadBool(ft);
            return true;
          }
          if (fid == 2 && ft == Type::kStruct) {
            e.time_unit_ns = ReadTimeUnit(d);
            return true;
          }
          return false;
        });
        return true;
      case 10:  // IntType: 1 bitWidth (i8), 2 isSigned
        e.logical = Logical::kInteger;
        ReadStruct(d, [&](int16_t fid, Type ft) {
          if (fid == 1 && IsInt(ft)) {
            e.int_bits = static_cast<int8_t>(d.ReadI64());
            return true;
          }
          if (fid == 2 && (ft == Type::kBoolTrue || ft == Type::kBoolFalse)) {
            e.int_signed = d.ReadBool(ft);
            return true;
          }
          return false;
        });
        return true;
      default:
        e.logical = Logical::kOther;
        return false;
    }
  });
}

void ReadSchemaElement(CompactDecoder& d, SchemaElement& e) {
  ReadStruct(d, [&](int16_t id, Type t) {
    switch (id) {
      case 1:
        if (!IsInt(t)) return false;
        e.has_type = true;
        e.type = static_cast<PhysicalType>(d.ReadI32());
        return true;
      case 2:
        if (!IsInt(t)) return false;
        e.type_length = d.ReadI32();
        return true;
      case 3:
        if (!IsInt(t)) return false;
        e.has_repetition = true;
        e.repetition = static_cast<Repetition>(d.ReadI32());
        return true;
      case 4:
        if (t != Type::kBinary) return false;
        e.name = std::string(d.ReadBinary());
        return true;
      case 5:
        if (!IsInt(t)) return false;
        e.num_children = d.ReadI32();
        return true;
      case 6:
        if (!IsInt(t)) return false;
        e.converted_type = d.ReadI32();
        return true;
      case 10:
        if (t != Type::kStruct) return false;
        ReadLogicalType(d, e);
        return true;
      default:
        return false;
    }
  });
}

void ReadColumnMetaData(CompactDecoder& d, ColumnMetaData& m) {
  ReadStruct(d, [&](int16_t id, Type t) {
    switch (id) {
      case 1:
        if (!IsInt(t)) return false;
        m.type = static_cast<PhysicalType>(d.ReadI32());
        return true;
      case 3:
        if (t != Type::kList) return false;
        ReadList(d, [&](Type et) {
          if (et != Type::kBinary) {
            d.Fail("thrift: path_in_schema is not a list of strings");
            return;
          }
          m.path.emplace_back(d.ReadBinary());
        });
        return true;
      case 4:
        if (!IsInt(t)) return false;
        m.codec = static_cast<Codec>(d.ReadI32());
        return true;
      case 5:
      case 6:
      case 7:
      case 9:
      case 11: {
        if (t != Type::kI64 && !IsInt(t)) return false;
        int64_t v = d.ReadI64();
        if (id == 5) m.num_values = v;
        if (id == 6) m.total_uncompressed_size = v;
        if (id == 7) m.total_compressed_size = v;
        if (id == 9) m.data_page_offset = v;
        if (id == 11) m.dictionary_page_offset = v;
        return true;
      }
      default:
        return false;
    }
  });
}

void ReadRowGroup(CompactDecoder& d, RowGroup& rg) {
  ReadStruct(d, [&](int16_t id, Type t) {
    if (id == 1 && t == Type::kList) {
      ReadList(d, [&](Type et) {
        if (et != Type::kStruct) {
          d.Fail("thrift: columns is not a list of structs");
          return;
        }
        ColumnChunk& c = rg.columns.emplace_back();
        ReadStruct(d, [&](int16_t cid, Type ct) {
          if (cid == 1 && ct == Type::kBinary) {
            c.file_path = std::string(d.ReadBinary());
            return true;
          }
          if (cid == 3 && ct == Type::kStruct) {
            c.has_meta = true;
            ReadColumnMetaData(d, c.meta);
            return true;
          }
          return false;
        });
      });
      return true;
    }
    if (id == 3 && (t == Type::kI64 || IsInt(t))) {
      rg.num_rows = d.ReadI64();
      return true;
    }
    return false;
  });
}

}  // namespace

Result<FileMetaData> ParseFileMetaData(const uint8_t* data, size_t size) {
  CompactDecoder d(data, size);
  FileMetaData md;
  ReadStruct(d, [&](int16_t id, Type t) {
    switch (id) {
      case 2:
        if (t != Type::kList) return false;
        ReadList(d, [&](Type et) {
          if (et != Type::kStruct) {
            d.Fail("thrift: schema is not a list of structs");
            return;
          }
          ReadSchemaElement(d, md.schema.emplace_back());
        });
        return true;
      case 3:
        if (t != Type::kI64 && !IsInt(t)) return false;
        md.num_rows = d.ReadI64();
        return true;
      case 4:
        if (t != Type::kList) return false;
        ReadList(d, [&](Type et) {
          if (et != Type::kStruct) {
            d.Fail("thrift: row_groups is not a list of structs");
            return;
          }
          ReadRowGroup(d, md.row_groups.emplace_back());
        });
        return true;
      case 6:
        if (t != Type::kBinary) return false;
        md.created_by = std::string(d.ReadBinary());
        return true;
      default:
        return false;
    }
  });
  if (!d.ok()) return InvalidArgument("the footer is corrupt (" + d.error() + ")");
  return md;
}

Result<PageHeader> ParsePageHeader(const uint8_t* data, size_t size, size_t& header_size) {
  CompactDecoder d(data, size);
  PageHeader h;
  ReadStruct(d, [&](int16_t id, Type t) {
    switch (id) {
      case 1:
        if (!IsInt(t)) return false;
        h.type = static_cast<PageType>(d.ReadI32());
        return true;
      case 2:
        if (!IsInt(t)) return false;
        h.uncompressed_page_size = d.ReadI32();
        return true;
      case 3:
        if (!IsInt(t)) return false;
        h.compressed_page_size = d.ReadI32();
        return true;
      case 5:
        if (t != Type::kStruct) return false;
        h.has_data = true;
        ReadStruct(d, [&](int16_t fid, Type ft) {
          if (!IsInt(ft)) return false;
          if (fid == 1)
            h.data.num_values = d.ReadI32();
          else if (fid == 2)
            h.data.encoding = static_cast<Encoding>(d.ReadI32());
          else if (fid == 3)
            h.data.definition_level_encoding = static_cast<Encoding>(d.ReadI32());
          else
            return false;
          return true;
        });
        return true;
      case 7:
        if (t != Type::kStruct) return false;
        h.has_dictionary = true;
        ReadStruct(d, [&](int16_t fid, Type ft) {
          if (!IsInt(ft)) return false;
          if (fid == 1)
            h.dictionary.num_values = d.ReadI32();
          else if (fid == 2)
            h.dictionary.encoding = static_cast<Encoding>(d.ReadI32());
          else
            return false;
          return true;
        });
        return true;
      case 8:
        if (t != Type::kStruct) return false;
        h.has_data_v2 = true;
        ReadStruct(d, [&](int16_t fid, Type ft) {
          if (fid == 7 && (ft == Type::kBoolTrue || ft == Type::kBoolFalse)) {
            h.data_v2.is_compressed = d.ReadBool(ft);
            return true;
          }
          if (!IsInt(ft)) return false;
          switch (fid) {
            case 1:
              h.data_v2.num_values = d.ReadI32();
              return true;
            case 2:
              h.data_v2.num_nulls = d.ReadI32();
              return true;
            case 3:
              h.data_v2.num_rows = d.ReadI32();
              return true;
            case 4:
              h.data_v2.encoding = static_cast<Encoding>(d.ReadI32());
              return true;
            case 5:
              h.data_v2.definition_levels_byte_length = d.ReadI32();
              return true;
            case 6:
              h.data_v2.repetition_levels_byte_length = d.ReadI32();
              return true;
            default:
              return false;
          }
        });
        return true;
      default:
        return false;
    }
  });
  if (!d.ok()) return InvalidArgument("a page header is corrupt (" + d.error() + ")");
  header_size = d.consumed();
  return h;
}

}  // namespace sluice::features::parquet
