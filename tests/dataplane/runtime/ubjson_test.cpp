#include "dataplane/runtime/ubjson.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace sluice::dataplane {
namespace {

using nlohmann::json;
using namespace std::string_literals;

// Big-endian encodings, written out by hand so the tests do not share code with the reader.
std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string Be64(uint64_t v) {
  return Be32(static_cast<uint32_t>(v >> 32)) + Be32(static_cast<uint32_t>(v));
}
std::string F32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return Be32(u);
}
std::string Key(const std::string& k) {
  return "L"s + Be64(k.size()) + k;
}

TEST(Ubjson, Scalars) {
  EXPECT_EQ(*ParseUbjson("Z"), json(nullptr));
  EXPECT_EQ(*ParseUbjson("T"), json(true));
  EXPECT_EQ(*ParseUbjson("F"), json(false));
  EXPECT_EQ(*ParseUbjson("i\xfe"s), json(-2));
  EXPECT_EQ(*ParseUbjson("U\xfe"s), json(254));
  EXPECT_EQ(*ParseUbjson("I\x01\x02"s), json(258));
  EXPECT_EQ(*ParseUbjson("l" + Be32(0xfffffffe)), json(-2));
  EXPECT_EQ(*ParseUbjson("L" + Be64(1ull << 40)), json(int64_t{1} << 40));
  EXPECT_EQ(ParseUbjson("d" + F32(0.1f))->get<double>(), static_cast<double>(0.1f));
  EXPECT_EQ(ParseUbjson("D\x3f\xf8\0\0\0\0\0\0"s)->get<double>(), 1.5);
  EXPECT_EQ(*ParseUbjson("Ca"), json("a"));
  EXPECT_EQ(*ParseUbjson("SU\x03"
                         "abc"s),
            json("abc"));
  EXPECT_EQ(ParseUbjson("HU\x04"
                        "-2.5"s)
                ->get<double>(),
            -2.5);
  EXPECT_EQ(*ParseUbjson("NNTN"), json(true));  // no-ops around the value
}

TEST(Ubjson, ContainersInEveryForm) {
  // Plain array and object, closed by their markers.
  EXPECT_EQ(*ParseUbjson("[i\x01U\x02"
                         "Z]"s),
            json::parse("[1,2,null]"));
  EXPECT_EQ(*ParseUbjson("{" + Key("a") + "i\x01" + Key("b") + "[]}"),
            json::parse(R"({"a":1,"b":[]})"));
  // Count only: elements keep their markers.
  EXPECT_EQ(*ParseUbjson("[#U\x02"
                         "TF"s),
            json::parse("[true,false]"));
  // Typed and counted: raw big-endian payloads, as xgboost writes float and int arrays.
  EXPECT_EQ(*ParseUbjson("[$d#L" + Be64(2) + F32(1.5f) + F32(-2.0f)), json::parse("[1.5,-2.0]"));
  EXPECT_EQ(*ParseUbjson("[$l#i\x02"s + Be32(7) + Be32(0xffffffff)), json::parse("[7,-1]"));
  EXPECT_EQ(*ParseUbjson("[$U#i\x03\x00\x01\xff"s), json::parse("[0,1,255]"));
  EXPECT_EQ(*ParseUbjson("[$T#i\x02"s), json::parse("[true,true]"));
  // Typed and counted object.
  EXPECT_EQ(*ParseUbjson("{$i#i\x02"s +
                         "i\x01"
                         "a\x05"s +
                         "i\x01"
                         "b\x06"s),
            json::parse(R"({"a":5,"b":6})"));
  // Nesting and empty containers.
  EXPECT_EQ(*ParseUbjson("[[[]]{}]"), json::parse("[[[]],{}]"));
  EXPECT_EQ(*ParseUbjson("[#i\x00"s), json::array());
}

TEST(Ubjson, MalformedInputIsAnErrorWithAnOffset) {
  const std::string cases[] = {
      ""s,       // empty
      "X"s,      // unknown marker
      "i"s,      // missing payload
      "I\x01"s,  // short int16
      "SU\x05"
      "abc"s,  // string longer than the input
      "Si\xff"
      "a"s,                            // negative length
      "S"s + "d" + F32(1.0f),          // length with a non-integer marker
      "[i\x01"s,                       // unterminated array
      "{"s + Key("a"),                 // key without value
      "{i\x01"s,                       // truncated key
      "[$d#L"s + Be64(1000) + F32(1),  // count beyond the input
      "[$Z#L"s + Be64(1ull << 40),     // count of payload-less elements too large
      "[$d]"s,                         // '$' without '#'
      "[#i\xff"s,                      // negative count
      "TT"s,                           // trailing bytes
      "HU\x03"
      "1x2"s,  // high-precision that is not a number
  };
  for (const std::string& c : cases) {
    Result<json> r = ParseUbjson(c);
    ASSERT_FALSE(r.ok()) << "accepted: " << ::testing::PrintToString(c);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ubjson:"), std::string::npos) << r.status();
  }
  EXPECT_NE(ParseUbjson("X").status().message().find("at byte 1"), std::string::npos);
}

TEST(Ubjson, NestingBeyondTheLimitIsRefusedNotRecursedInto) {
  std::string ok(kUbjsonMaxDepth, '[');
  ok += std::string(kUbjsonMaxDepth, ']');
  EXPECT_TRUE(ParseUbjson(ok).ok());
  std::string deep(1'000'000, '[');
  deep += std::string(1'000'000, ']');
  Result<json> r = ParseUbjson(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting"), std::string::npos);
}

TEST(Ubjson, ReadsWhatAnotherWriterProduces) {
  // nlohmann's writer picks the smallest integer markers and typed containers: a second,
  // independent encoder for the same documents.
  const json doc = json::parse(R"({
    "learner": {"objective": {"name": "binary:logistic"},
                "values": [0.5, -1.25, 3e10, 0], "ints": [1, 300, 70000, -5, 5000000000],
                "flags": [true, false], "nested": [[1, 2], {"k": "v"}], "empty": {}}})");
  for (bool use_size : {false, true}) {
    for (bool use_type : {false, true}) {
      if (use_type && !use_size) continue;
      std::vector<uint8_t> bytes = json::to_ubjson(doc, use_size, use_type);
      Result<json> back =
          ParseUbjson(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, doc) << "size=" << use_size << " type=" << use_type;
    }
  }
}

}  // namespace
}  // namespace sluice::dataplane
