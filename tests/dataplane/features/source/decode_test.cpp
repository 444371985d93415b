#include "dataplane/features/source/decode.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace sluice::features::parquet {
namespace {

// Writes values as the RLE/bit-packed hybrid: a repeated run, then one bit-packed run (LSB first).
std::vector<uint8_t> Encode(uint32_t repeated, size_t repeats, const std::vector<uint32_t>& packed,
                            int width) {
  std::vector<uint8_t> out;
  auto uleb = [&](uint64_t v) {
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      out.push_back(static_cast<uint8_t>(b | (v ? 0x80 : 0)));
    } while (v);
  };
  uleb(repeats << 1);
  for (int i = 0; i < (width + 7) / 8; ++i)
    out.push_back(static_cast<uint8_t>(repeated >> (8 * i)));
  size_t groups = (packed.size() + 7) / 8;
  uleb((groups << 1) | 1);
  std::vector<uint8_t> bits(groups * static_cast<size_t>(width), 0);
  for (size_t i = 0; i < packed.size(); ++i) {
    for (int b = 0; b < width; ++b) {
      if ((packed[i] >> b) & 1) {
        size_t bit = i * static_cast<size_t>(width) + static_cast<size_t>(b);
        bits[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
      }
    }
  }
  out.insert(out.end(), bits.begin(), bits.end());
  return out;
}

TEST(RleHybrid, DecodesEveryWidthIncludingLongPackedRuns) {
  std::mt19937 rng(3);
  for (int width : {1, 2, 3, 5, 8, 13, 17, 24, 31, 32}) {
    for (size_t n : {size_t{5}, size_t{8}, size_t{64}, size_t{1001}}) {
      const uint64_t limit = width == 32 ? 0xffffffffULL : (1ULL << width) - 1;
      std::vector<uint32_t> packed(n);
      for (auto& v : packed) v = static_cast<uint32_t>(rng() & limit);
      uint32_t repeated = static_cast<uint32_t>(limit / 3);
      auto data = Encode(repeated, 9, packed, width);
      std::vector<uint32_t> out(9 + n);
      ASSERT_TRUE(DecodeRleHybrid(data.data(), data.size(), width, out.size(), out.data()).ok())
          << "width " << width << " n " << n;
      for (size_t i = 0; i < 9; ++i) ASSERT_EQ(out[i], repeated);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[9 + i], packed[i]) << width << " " << i;
      // Any cut short of the last byte a value uses is an error, never a read past the buffer
      // (the padding after it may go).
      const size_t used = data.size() - ((n + 7) / 8 * static_cast<size_t>(width) -
                                         (n * static_cast<size_t>(width) + 7) / 8);
      for (size_t cut : {size_t{0}, size_t{1}, used / 2, used - 1}) {
        std::vector<uint8_t> part(data.begin(), data.begin() + static_cast<long>(cut));
        EXPECT_FALSE(DecodeRleHybrid(part.data(), part.size(), width, out.size(), out.data()).ok());
      }
    }
  }
}

TEST(Decompress, RefusesSizesThatDisagree) {
  std::string out;
  const uint8_t data[4] = {1, 2, 3, 4};
  EXPECT_FALSE(Decompress(Codec::kUncompressed, data, 4, 5, out).ok());
  EXPECT_FALSE(Decompress(Codec::kGzip, data, 4, 1u << 30, out).ok());
  EXPECT_FALSE(Decompress(Codec::kSnappy, data, 4, 4, out).ok());
  EXPECT_FALSE(Decompress(Codec::kZstd, data, 4, 4, out).ok());
  Status s = Decompress(Codec::kLzo, data, 4, 4, out);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("LZO"), std::string::npos);
}

}  // namespace
}  // namespace sluice::features::parquet
