#pragma once

// Page-level decoding shared by the Parquet reader: the RLE/bit-packed hybrid (definition levels
// and dictionary indices) and decompression. Every function checks its input against the buffer
// it was given and returns an error instead of reading past it.

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/features/source/parquet_format.h"
#include "lib/base/status.h"

namespace sluice::features::parquet {

// Decodes `count` values of `bit_width` bits (0..32) from the RLE/bit-packed hybrid in
// [data, data + size) into `out`.
template <typename T>
Status DecodeRleHybrid(const uint8_t* data, size_t size, int bit_width, size_t count, T* out);

// Decompresses `size` bytes into `out`, which ends up exactly `uncompressed_size` bytes long.
Status Decompress(Codec codec, const uint8_t* data, size_t size, size_t uncompressed_size,
                  std::string& out);

std::string_view CodecName(Codec codec);

}  // namespace sluice::features::parquet
