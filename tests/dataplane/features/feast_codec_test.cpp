// Feast's Redis layout, byte for byte. The expected bytes were produced by Feast 0.67's own
// functions (_redis_key, _mmh3, Value.SerializeToString, Timestamp.SerializeToString); the
// Feast SDK tests (tests/integration/features) check the same against a live Feast on every run.
#include "dataplane/features/feast_codec.h"

#include <cmath>

#include <gtest/gtest.h>

namespace sluice::features {
namespace {

using namespace std::literals;

TEST(FeastCodecTest, RedisKeyOfOneStringEntity) {
  const FeastValue card = FeastValue::String("c-42");
  const EntityKeyPart parts[] = {{"card_id", &card}};
  auto key = RedisKey(parts, "fraud");
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(*key,
            "\x01\x00\x00\x00\x02\x00\x00\x00\x07\x00\x00\x00\x63\x61\x72\x64\x5f\x69\x64\x02\x00"
            "\x00\x00\x04\x00\x00\x00\x63\x2d\x34\x32\x66\x72\x61\x75\x64"s);
}

TEST(FeastCodecTest, RedisKeySortsJoinKeys) {
  const FeastValue merchant = FeastValue::Int64(-7);
  const FeastValue card = FeastValue::String("c1");
  const EntityKeyPart parts[] = {{"merchant_id", &merchant}, {"card_id", &card}};
  auto key = RedisKey(parts, "fraud");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key,
            "\x02\x00\x00\x00\x02\x00\x00\x00\x07\x00\x00\x00\x63\x61\x72\x64\x5f\x69\x64\x02\x00"
            "\x00\x00\x0b\x00\x00\x00\x6d\x65\x72\x63\x68\x61\x6e\x74\x5f\x69\x64\x02\x00\x00\x00"
            "\x02\x00\x00\x00\x63\x31\x04\x00\x00\x00\x08\x00\x00\x00\xf9\xff\xff\xff\xff\xff\xff"
            "\xff\x66\x72\x61\x75\x64"s);
}

TEST(FeastCodecTest, RedisKeyOfInt32AndBytes) {
  const FeastValue i32 = FeastValue::Int32(-3);
  const EntityKeyPart a[] = {{"k", &i32}};
  EXPECT_EQ(*RedisKey(a, "p"),
            "\x01\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x6b\x03\x00\x00\x00\x04\x00\x00\x00"
            "\xfd\xff\xff\xff\x70"s);
  const FeastValue bytes = FeastValue::Bytes("\x00\xff"s);
  const EntityKeyPart b[] = {{"k", &bytes}};
  EXPECT_EQ(*RedisKey(b, "p"),
            "\x01\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x6b\x01\x00\x00\x00\x02\x00\x00\x00"
            "\x00\xff\x70"s);
}

TEST(FeastCodecTest, RedisKeyRefusesWhatFeastCannotKeyBy) {
  const FeastValue d = FeastValue::Double(1.0);
  const EntityKeyPart a[] = {{"k", &d}};
  EXPECT_FALSE(RedisKey(a, "p").ok());
  const FeastValue missing = FeastValue::Missing();
  const EntityKeyPart b[] = {{"k", &missing}};
  auto r = RedisKey(b, "p");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("k has no value"), std::string::npos);
}

TEST(FeastCodecTest, FeatureFieldIsMurmur3LittleEndian) {
  EXPECT_EQ(FeatureField("card-features", "velocity_last_24h"), "\x05\x48\xe7\xef"s);
  EXPECT_EQ(FeatureField("v", "f"), "\xf1\x6c\xb6\x0a"s);
  EXPECT_EQ(Murmur3_32(""), 0u);
  EXPECT_EQ(Murmur3_32("abcde"), 0xe89b9af6u);
  EXPECT_EQ(TimestampField("card-features"), "_ts:card-features");
}

TEST(FeastCodecTest, ValuesEncodeAsFeastDoes) {
  EXPECT_EQ(EncodeValue(FeastValue::Int32(-5)), "\x18\xfb\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
  EXPECT_EQ(EncodeValue(FeastValue::Int32(0)), "\x18\x00"s);
  EXPECT_EQ(EncodeValue(FeastValue::Int64(int64_t{1} << 40)), "\x20\x80\x80\x80\x80\x80\x20"s);
  EXPECT_EQ(EncodeValue(FeastValue::Int64(-1)), "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
  EXPECT_EQ(EncodeValue(FeastValue::Float(1.5f)), "\x35\x00\x00\xc0\x3f"s);
  EXPECT_EQ(EncodeValue(FeastValue::Double(-2.25)), "\x29\x00\x00\x00\x00\x00\x00\x02\xc0"s);
  EXPECT_EQ(EncodeValue(FeastValue::String("h\xc3\xa9llo")), "\x12\x06\x68\xc3\xa9\x6c\x6c\x6f"s);
  EXPECT_EQ(EncodeValue(FeastValue::Bytes("\x01\x02")), "\x0a\x02\x01\x02"s);
  EXPECT_EQ(EncodeValue(FeastValue::Bool(true)), "\x38\x01"s);
  EXPECT_EQ(EncodeValue(FeastValue::Bool(false)), "\x38\x00"s);
  EXPECT_EQ(EncodeValue(FeastValue::UnixTimestamp(1700000000)), "\x40\x80\xe2\xcf\xaa\x06"s);
  // Feast writes None and NaN as an empty Value.
  EXPECT_EQ(EncodeValue(FeastValue::Missing()), "");
  EXPECT_EQ(EncodeValue(FeastValue::Double(std::nan(""))), "");
  // ... except a missing timestamp, which Feast writes as pandas' NaT (INT64_MIN).
  EXPECT_EQ(EncodeValue(FeastValue::MissingOf(FeastType::kUnixTimestamp)),
            "\x40\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"s);
  EXPECT_EQ(EncodeValue(FeastValue::MissingOf(FeastType::kInt32)), "");
}

TEST(FeastCodecTest, ValuesRoundTrip) {
  const FeastValue values[] = {
      FeastValue::Int32(-5),         FeastValue::Int32(2147483647),
      FeastValue::Int64(-1),         FeastValue::Int64(int64_t{1} << 62),
      FeastValue::Float(1.5f),       FeastValue::Double(-2.25),
      FeastValue::String("h\xc3\xa9llo"), FeastValue::Bytes("\x00\x01"s),
      FeastValue::Bool(true),        FeastValue::Bool(false),
      FeastValue::UnixTimestamp(-1), FeastValue::Missing(),
      FeastValue::MissingOf(FeastType::kUnixTimestamp),
  };
  for (const auto& v : values) {
    auto decoded = DecodeValue(EncodeValue(v));
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(*decoded, v);
  }
}

TEST(FeastCodecTest, DecodeAcceptsNullAndRefusesWhatIsNotAScalar) {
  auto null_val = DecodeValue("\x98\x01\x00"s);  // null_val = NULL (field 19)
  ASSERT_TRUE(null_val.ok());
  EXPECT_FALSE(null_val->present);
  EXPECT_FALSE(DecodeValue("\x5a\x00"s).ok());          // int32_list_val (field 11)
  EXPECT_FALSE(DecodeValue("\x18"s).ok());              // truncated varint
  EXPECT_FALSE(DecodeValue("\x12\x05\x61"s).ok());      // string longer than the bytes
  EXPECT_FALSE(DecodeValue("\x29\x00\x00"s).ok());      // truncated double
  EXPECT_FALSE(DecodeValue("\x1a\x00"s).ok());          // int32 with the wrong wire type
}

TEST(FeastCodecTest, Timestamps) {
  EXPECT_EQ(EncodeTimestamp(1765000000, 123000), "\x08\xc0\x86\xcf\xc9\x06\x10\xf8\xc0\x07"s);
  EXPECT_EQ(*DecodeTimestampNanos("\x08\xc0\x86\xcf\xc9\x06\x10\xf8\xc0\x07"s),
            int64_t{1765000000} * 1'000'000'000 + 123000);
  EXPECT_EQ(*DecodeTimestampNanos(""), 0);
  EXPECT_FALSE(DecodeTimestampNanos("\x08"s).ok());
  EXPECT_FALSE(DecodeTimestampNanos("\x10\xff\xff\xff\xff\x0f"s).ok());  // nanos out of range
}

TEST(FeastCodecTest, AsFloat) {
  EXPECT_EQ(FeastValue::Int32(7).AsFloat(), 7.0f);
  EXPECT_EQ(FeastValue::Bool(true).AsFloat(), 1.0f);
  EXPECT_EQ(FeastValue::Double(0.25).AsFloat(), 0.25f);
  EXPECT_TRUE(std::isnan(FeastValue::Missing().AsFloat()));
  EXPECT_TRUE(std::isnan(FeastValue::String("x").AsFloat()));
}

TEST(FeastCodecTest, Defaults) {
  auto d = [](api::FeastType t, std::optional<std::string> text) {
    return ParseDefault(api::FeatureField{"f", t, std::move(text)});
  };
  EXPECT_EQ(*d(api::FeastType::kInt32, "40"), FeastValue::Int32(40));
  EXPECT_EQ(*d(api::FeastType::kDouble, "0.002"), FeastValue::Double(0.002));
  EXPECT_EQ(*d(api::FeastType::kFloat, "-1.5"), FeastValue::Float(-1.5f));
  EXPECT_EQ(*d(api::FeastType::kBool, "true"), FeastValue::Bool(true));
  EXPECT_EQ(*d(api::FeastType::kBytes, "AQI="), FeastValue::Bytes("\x01\x02"));
  EXPECT_EQ(*d(api::FeastType::kString, std::nullopt), FeastValue::Missing());
  EXPECT_FALSE(d(api::FeastType::kInt32, "2147483648").ok());
  EXPECT_FALSE(d(api::FeastType::kDouble, "inf").ok());
  EXPECT_FALSE(d(api::FeastType::kBool, "yes").ok());
  EXPECT_FALSE(d(api::FeastType::kBytes, "A").ok());
}

}  // namespace
}  // namespace sluice::features
