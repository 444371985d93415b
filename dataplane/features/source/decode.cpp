#include "dataplane/features/source/decode.h"

#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

namespace sluice::features::parquet {

namespace {

// Reads a ULEB128 varint; false when it does not end inside the buffer.
bool ReadUleb(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

inline uint64_t Load64(const uint8_t* p, const uint8_t* end) {
  uint64_t v = 0;
  size_t n = static_cast<size_t>(end - p);
  std::memcpy(&v, p, n >= 8 ? 8 : n);  // little-endian hosts only (x86-64, arm64)
  return v;
}

}  // namespace

template <typename T>
Status DecodeRleHybrid(const uint8_t* data, size_t size, int bit_width, size_t count, T* out) {
  if (bit_width < 0 || bit_width > 32) {
    return InvalidArgument("RLE bit width " + std::to_string(bit_width) + " is out of range");
  }
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  const uint64_t mask =
      bit_width == 0 ? 0 : (bit_width == 32 ? 0xffffffffULL : ((1ULL << bit_width) - 1));
  const size_t value_bytes = (static_cast<size_t>(bit_width) + 7) / 8;
  size_t done = 0;
  while (done < count) {
    uint64_t header;
    if (!ReadUleb(p, end, header)) return InvalidArgument("RLE data ends inside a run header");
    if (header & 1) {
      // Bit-packed: (header >> 1) groups of 8 values.
      uint64_t groups = header >> 1;
      uint64_t values = groups * 8;
      if (groups > (uint64_t{1} << 40)) return InvalidArgument("RLE bit-packed run is too long");
      size_t take = values < count - done ? static_cast<size_t>(values) : count - done;
      size_t need_bytes = (take * static_cast<size_t>(bit_width) + 7) / 8;
      if (need_bytes > static_cast<size_t>(end - p)) {
        return InvalidArgument("RLE bit-packed run is longer than the data left");
      }
      if (bit_width == 0) {
        for (size_t i = 0; i < take; ++i) out[done + i] = 0;
      } else {
        const uint8_t* run_end = p + need_bytes;
        const size_t w = static_cast<size_t>(bit_width);
        // Values whose 8-byte window ends inside the run load it whole; the last few load
        // what is left.
        size_t fast = need_bytes >= 8 ? ((need_bytes - 8) * 8) / w + 1 : 0;
        if (fast > take) fast = take;
        T* o = out + done;
        for (size_t i = 0; i < fast; ++i) {
          size_t bit = i * w;
          uint64_t word;
          std::memcpy(&word, p + bit / 8, 8);
          o[i] = static_cast<T>((word >> (bit % 8)) & mask);
        }
        for (size_t i = fast; i < take; ++i) {
          size_t bit = i * w;
          uint64_t word = Load64(p + bit / 8, run_end);
          o[i] = static_cast<T>((word >> (bit % 8)) & mask);
        }
      }
      done += take;
      // The whole run occupies groups * bit_width bytes; a final run may be cut short.
      uint64_t run_bytes = groups * static_cast<uint64_t>(bit_width);
      p += run_bytes <= static_cast<uint64_t>(end - p) ? run_bytes : static_cast<uint64_t>(end - p);
    } else {
      uint64_t run = header >> 1;
      if (value_bytes > static_cast<size_t>(end - p)) {
        return InvalidArgument("RLE data ends inside a repeated value");
      }
      uint64_t v = 0;
      std::memcpy(&v, p, value_bytes);
      p += value_bytes;
      if (run == 0) continue;
      size_t take = run < count - done ? static_cast<size_t>(run) : count - done;
      T tv = static_cast<T>(v & mask);
      for (size_t i = 0; i < take; ++i) out[done + i] = tv;
      done += take;
    }
  }
  return Status::Ok();
}

template Status DecodeRleHybrid<uint8_t>(const uint8_t*, size_t, int, size_t, uint8_t*);
template Status DecodeRleHybrid<uint32_t>(const uint8_t*, size_t, int, size_t, uint32_t*);

std::string_view CodecName(Codec codec) {
  switch (codec) {
    case Codec::kUncompressed:
      return "UNCOMPRESSED";
    case Codec::kSnappy:
      return "SNAPPY";
    case Codec::kGzip:
      return "GZIP";
    case Codec::kLzo:
      return "LZO";
    case Codec::kBrotli:
      return "BROTLI";
    case Codec::kLz4:
      return "LZ4";
    case Codec::kZstd:
      return "ZSTD";
    case Codec::kLz4Raw:
      return "LZ4_RAW";
  }
  return "UNKNOWN";
}

Status Decompress(Codec codec, const uint8_t* data, size_t size, size_t uncompressed_size,
                  std::string& out) {
  const char* in = reinterpret_cast<const char*>(data);
  switch (codec) {
    case Codec::kUncompressed:
      if (size != uncompressed_size) {
        return InvalidArgument("an uncompressed page's sizes disagree");
      }
      out.assign(in, size);
      return Status::Ok();
    case Codec::kSnappy: {
      size_t n = 0;
      if (!snappy::GetUncompressedLength(in, size, &n) || n != uncompressed_size) {
        return InvalidArgument("a SNAPPY page's length does not match its header");
      }
      out.resize(n);
      if (!snappy::RawUncompress(in, size, out.data())) {
        return InvalidArgument("a SNAPPY page is corrupt");
      }
      return Status::Ok();
    }
    case Codec::kZstd: {
      unsigned long long n = ZSTD_getFrameContentSize(in, size);
      if (n != ZSTD_CONTENTSIZE_UNKNOWN && n != uncompressed_size) {
        return InvalidArgument("a ZSTD page's length does not match its header");
      }
      // Deflate and zstd cannot expand more than about 1000 times; a larger claim is corrupt.
      if (uncompressed_size > size * 1100 + 4096) {
        return InvalidArgument("a ZSTD page claims an impossible uncompressed size");
      }
      out.resize(uncompressed_size);
      size_t r = ZSTD_decompress(out.data(), out.size(), in, size);
      if (ZSTD_isError(r) || r != uncompressed_size) {
        return InvalidArgument(std::string("a ZSTD page is corrupt (") +
                               (ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short") + ")");
      }
      return Status::Ok();
    }
    case Codec::kGzip: {
      if (uncompressed_size > size * 1100 + 4096) {
        return InvalidArgument("a GZIP page claims an impossible uncompressed size");
      }
      out.resize(uncompressed_size);
      z_stream z{};
      if (inflateInit2(&z, 15 + 32) != Z_OK) return Internal("inflateInit2 failed");
      z.next_in = const_cast<Bytef*>(data);
      z.avail_in = static_cast<uInt>(size);
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      int rc = inflate(&z, Z_FINISH);
      size_t produced = out.size() - z.avail_out;
      inflateEnd(&z);
      if (rc != Z_STREAM_END || produced != uncompressed_size) {
        return InvalidArgument("a GZIP page is corrupt or its length does not match its header");
      }
      return Status::Ok();
    }
    default:
      return Unimplemented("compression " + std::string(CodecName(codec)) +
                           " is not supported (UNCOMPRESSED, SNAPPY, GZIP and ZSTD are)");
  }
}

}  // namespace sluice::features::parquet
