#include "dataplane/server/v2_codec.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

namespace sluice::dataplane {
namespace {

template <typename T>
std::vector<T> Values(const Tensor& t) {
  std::vector<T> v(t.bytes().size() / sizeof(T));
  std::memcpy(v.data(), t.bytes().data(), v.size() * sizeof(T));
  return v;
}

Result<InferRequest> Parse(std::string_view body) { return ParseInferRequest(body, std::nullopt); }

void ExpectInvalid(std::string_view body, std::string_view fragment) {
  auto r = Parse(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
  EXPECT_NE(r.status().message().find(fragment), std::string::npos)
      << "message: " << r.status().message() << "\nbody: " << body;
}

TEST(V2Codec, ParsesTheCommonFp32Request) {
  auto r = Parse(R"({"id":"r-1","inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32",)"
                 R"("data":[1,2.5,-3,4e2,0,0.125]}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "r-1");
  ASSERT_EQ(r->inputs.size(), 1u);
  const Tensor& t = r->inputs[0];
  EXPECT_EQ(t.name(), "input-0");
  EXPECT_EQ(t.datatype(), DataType::kFp32);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Values<float>(t), (std::vector<float>{1, 2.5f, -3, 400, 0, 0.125f}));
  EXPECT_FALSE(t.is_external());
  EXPECT_TRUE(r->outputs.empty());
  EXPECT_FALSE(r->binary_data_output);
}

TEST(V2Codec, NestedDataMustFollowTheShape) {
  auto ok = Parse(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3,4]]}]})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(Values<int32_t>(ok->inputs[0]), (std::vector<int32_t>{1, 2, 3, 4}));

  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2,3],[4]]}]})",
                "dimension 1 has 3 elements");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2]]}]})",
                "dimension 0 has 1 elements");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[4],"datatype":"INT32","data":[[1,2],[3,4]]}]})",
                "nested deeper");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[1,[2,3],4]}]})",
                "mixes nested arrays and scalars");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,[2]],[3,4]]}]})",
                "nested deeper");
  // A 3-d nested tensor.
  auto three = Parse(
      R"({"inputs":[{"name":"x","shape":[2,1,2],"datatype":"INT8","data":[[[1,2]],[[3,-4]]]}]})");
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(Values<int8_t>(three->inputs[0]), (std::vector<int8_t>{1, 2, 3, -4}));
}

TEST(V2Codec, FlatDataCountMustMatchTheShape) {
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5]}]})",
                "has 5 elements; shape [2,3] needs 6");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2,3]}]})",
                "more than the 2 elements");
  auto empty = Parse(R"({"inputs":[{"name":"x","shape":[0,3],"datatype":"FP32","data":[]}]})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->inputs[0].bytes().empty());
  auto scalar = Parse(R"({"inputs":[{"name":"x","shape":[],"datatype":"FP64","data":[2.5]}]})");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(Values<double>(scalar->inputs[0]), std::vector<double>{2.5});
}

TEST(V2Codec, EveryDatatypeParsesAndRangeChecks) {
  struct Case {
    std::string datatype;
    std::string good;
    std::string bad;
    std::string bad_fragment;
  };
  const std::vector<Case> cases = {
      {"BOOL", "[true,false]", "[1,0]", "is an integer, not a BOOL"},
      {"UINT8", "[0,255]", "[0,256]", "out of range for UINT8"},
      {"UINT16", "[0,65535]", "[-1,0]", "out of range for UINT16"},
      {"UINT32", "[0,4294967295]", "[0,4294967296]", "out of range for UINT32"},
      {"UINT64", "[0,18446744073709551615]", "[0,1.5]", "is a number, not a UINT64"},
      {"INT8", "[-128,127]", "[-129,0]", "out of range for INT8"},
      {"INT16", "[-32768,32767]", "[0,32768]", "out of range for INT16"},
      {"INT32", "[-2147483648,2147483647]", "[0,2147483648]", "out of range for INT32"},
      {"INT64", "[-9223372036854775808,9223372036854775807]", "[0,9223372036854775808]",
       "out of range for INT64"},
      {"FP16", "[1.5,-65504]", "[0,70000]", "out of range for FP16"},
      {"FP32", "[1.5,3e38]", "[0,1e39]", "out of range for FP32"},
      {"FP64", "[1e300,-2]", "[0,\"x\"]", "is a string, not a FP64"},
      {"BYTES", R"(["ab",""])", R"(["ab",1])", "is an integer, not a BYTES"},
  };
  for (const auto& c : cases) {
    const std::string prefix =
        R"({"inputs":[{"name":"x","shape":[2],"datatype":")" + c.datatype + R"(","data":)";
    auto r = Parse(prefix + c.good + "}]}");
    ASSERT_TRUE(r.ok()) << c.datatype << ": " << r.status();
    EXPECT_EQ(r->inputs[0].datatype(), ParseDataType(c.datatype));
    EXPECT_TRUE(r->inputs[0].Validate().ok()) << c.datatype;
    ExpectInvalid(prefix + c.bad + "}]}", c.bad_fragment);
  }
  auto u64 = Parse(R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]})");
  ASSERT_TRUE(u64.ok());
  EXPECT_EQ(Values<uint64_t>(u64->inputs[0])[0], std::numeric_limits<uint64_t>::max());
  auto i64 = Parse(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[-9223372036854775808]}]})");
  ASSERT_TRUE(i64.ok());
  EXPECT_EQ(Values<int64_t>(i64->inputs[0])[0], std::numeric_limits<int64_t>::min());
  auto fp16 = Parse(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP16","data":[1.5,-65504]}]})");
  ASSERT_TRUE(fp16.ok());
  auto halves = Values<uint16_t>(fp16->inputs[0]);
  EXPECT_EQ(HalfToFloat(halves[0]), 1.5f);
  EXPECT_EQ(HalfToFloat(halves[1]), -65504.0f);
  auto bytes = Parse(R"({"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","data":["ab","\u00e9"]}]})");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(CountByteElements(bytes->inputs[0].bytes()).value(), 2u);
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT32","data":[1]}]})",
                "unknown datatype 'FLOAT32'");
}

TEST(V2Codec, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -26)), 0x0001);
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even stays
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive half survives the round trip
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(V2Codec, KeysInAnyOrder) {
  auto r = Parse(R"({"inputs":[{"data":[[1,2],[3,4]],"datatype":"FP32","name":"x","shape":[2,2]},)"
                 R"({"shape":[1],"data":["q"],"name":"y","datatype":"BYTES"}],"id":"z"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "z");
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(Values<float>(r->inputs[0]), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(r->inputs[1].name(), "y");
  EXPECT_EQ(CountByteElements(r->inputs[1].bytes()).value(), 1u);
  // Data first, and wrong for the shape that follows, is still caught.
  ExpectInvalid(R"({"inputs":[{"data":[1,2,3],"datatype":"FP32","name":"x","shape":[2]}]})",
                "more than the 2 elements");
}

TEST(V2Codec, StructuralErrorsAreInvalidArgument) {
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}])",
                "malformed JSON");
  ExpectInvalid(R"([1,2])", "must be a JSON object");
  ExpectInvalid(R"({"id":"x"})", "no 'inputs'");
  ExpectInvalid(R"({"inputs":{}})", "'inputs' must not be an object");
  ExpectInvalid(R"({"inputs":[1]})", "must be an array of objects");
  ExpectInvalid(R"({"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]})", "has no 'name'");
  ExpectInvalid(R"({"inputs":[{"name":"x","datatype":"FP32","data":[1]}]})", "has no 'shape'");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})", "has no 'datatype'");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]})",
                "neither 'data' nor 'binary_data_size'");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]})",
                "non-negative integers");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1.5],"datatype":"FP32","data":[1]}]})",
                "non-negative integers");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"shape":[1],"datatype":"FP32","data":[1]}]})",
                "duplicate key 'shape'");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},)"
                R"({"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
                "appears twice");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[{"a":1}]}]})",
                "not objects");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1000000000000],"datatype":"FP32","data":[]}]})",
                "more than the body can carry");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} x)",
                "malformed JSON");
  ExpectInvalid("", "malformed JSON");
  ExpectInvalid(R"({"inputs":[],"id":5})", "'id' must be a string");
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e999]}]})",
                "malformed JSON");
}

TEST(V2Codec, UnknownKeysAreSkippedAndParametersKept) {
  auto r = Parse(R"({"extra":{"a":[1,{"b":2}]},"parameters":{"p":{"q":[1,"two",null,true]},)"
                 R"("binary_data_output":true},"inputs":[{"name":"x","shape":[1],"datatype":"FP32",)"
                 R"("future":[[{}]],"parameters":{"note":"hi"},"data":[1]}],)"
                 R"("outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":true}}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->binary_data_output);
  EXPECT_EQ(r->parameters["p"]["q"][1], "two");
  EXPECT_TRUE(r->parameters["p"]["q"][2].is_null());
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "a");
  EXPECT_FALSE(r->outputs[0].binary_data);
  EXPECT_TRUE(r->outputs[1].binary_data);
  ExpectInvalid(R"({"inputs":[],"outputs":[{"name":"a","parameters":{"binary_data":1}}]})",
                "'binary_data' must be a boolean");
  ExpectInvalid(R"({"inputs":[],"outputs":[{"parameters":{}}]})", "has no name");
  ExpectInvalid(R"({"inputs":[],"outputs":[{"name":"a"},{"name":"a"}]})", "requested twice");
  ExpectInvalid(R"({"inputs":[],"parameters":{"binary_data_output":"yes"}})",
                "'binary_data_output' must be a boolean");
  std::string deep = R"({"inputs":[],"parameters":{"a":)";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}}";
  ExpectInvalid(deep, "nested too deeply");
}

std::string BinaryBody(const std::string& json, const std::string& binary) { return json + binary; }

TEST(V2Codec, BinaryTensorExtension) {
  const float floats[3] = {1.5f, -2.0f, 3.25f};
  std::string bin(reinterpret_cast<const char*>(floats), sizeof(floats));
  std::string bytes_elems;
  AppendByteElement(bytes_elems, "hello");
  AppendByteElement(bytes_elems, "");
  const std::string json =
      R"({"inputs":[{"name":"a","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":12}},)"
      R"({"name":"b","shape":[1],"datatype":"INT32","data":[7]},)"
      R"({"name":"c","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":13}}]})";
  const std::string body = BinaryBody(json, bin + bytes_elems);
  auto r = ParseInferRequest(body, json.size());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->inputs.size(), 3u);
  EXPECT_TRUE(r->inputs[0].is_external());
  EXPECT_EQ(Values<float>(r->inputs[0]), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  EXPECT_EQ(Values<int32_t>(r->inputs[1]), std::vector<int32_t>{7});
  EXPECT_EQ(CountByteElements(r->inputs[2].bytes()).value(), 2u);

  // Truncated: one byte short.
  auto truncated = ParseInferRequest(std::string_view(body).substr(0, body.size() - 1), json.size());
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("truncated binary data"), std::string::npos)
      << truncated.status();
  // Extra bytes nobody claims.
  auto extra = ParseInferRequest(body + "zz", json.size());
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find("no tensor claims them"), std::string::npos);
  // Size that does not fit the shape.
  const std::string bad_json =
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":12}}]})";
  auto mismatch = ParseInferRequest(bad_json + bin, bad_json.size());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("shape [2] of FP32 needs 8"), std::string::npos)
      << mismatch.status();
  // Both data and binary size.
  ExpectInvalid(R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],)"
                R"("parameters":{"binary_data_size":4}}]})",
                "both 'data' and 'binary_data_size'");
  // BYTES element running past the end of its section.
  std::string bad_elems;
  AppendByteElement(bad_elems, "abc");
  bad_elems[0] = 9;
  const std::string bytes_json =
      R"({"inputs":[{"name":"c","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":7}}]})";
  auto overrun = ParseInferRequest(bytes_json + bad_elems, bytes_json.size());
  ASSERT_FALSE(overrun.ok());
  EXPECT_NE(overrun.status().message().find("claims 9 bytes"), std::string::npos);
}

TEST(V2Codec, BinaryBoolMustBeZeroOrOne) {
  const std::string json =
      R"({"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","parameters":{"binary_data_size":2}}]})";
  EXPECT_TRUE(ParseInferRequest(json + std::string("\x01\x00", 2), json.size()).ok());
  auto bad = ParseInferRequest(json + std::string("\x01\x02", 2), json.size());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("BOOL element 1 is 2"), std::string::npos) << bad.status();
}

TEST(V2Codec, NegativeZeroSurvivesJson) {
  auto r = Parse(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[-0.0,0]}]})");
  ASSERT_TRUE(r.ok());
  auto enc = EncodeInferRequest(*r, false);
  EXPECT_NE(enc.body.find("[-0.0,0]"), std::string::npos) << enc.body;
  auto again = ParseInferRequest(enc.body, std::nullopt);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(std::signbit(Values<float>(again->inputs[0])[0]));
  EXPECT_FALSE(std::signbit(Values<float>(again->inputs[0])[1]));
}

TEST(V2Codec, EmptyParametersObjectSurvivesReencoding) {
  // A general-parser body (the tensor carries an unknown key) with an empty parameters object.
  auto r = ParseInferRequest(R"({"parameters":{},"inputs":[{"name":"x","shape":[1],)"
                             R"("datatype":"FP32","data":[1],"extra":{}}]})",
                             std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->parameters.is_object());
  for (bool binary : {false, true}) {
    auto enc = EncodeInferRequest(*r, binary);
    auto again = ParseInferRequest(enc.body, enc.json_length);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->parameters, r->parameters) << enc.body;
  }
  InferRequest absent;
  EXPECT_EQ(EncodeInferRequest(absent, false).body.find("parameters"), std::string::npos);
}

TEST(V2Codec, NullIsAMissingFloat) {
  auto r = Parse(R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,null,2]},)"
                 R"({"name":"h","shape":[1],"datatype":"FP16","data":[null]}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  auto v = Values<float>(r->inputs[0]);
  EXPECT_EQ(v[0], 1);
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_TRUE(std::isnan(HalfToFloat(Values<uint16_t>(r->inputs[1])[0])));
  auto enc = EncodeInferRequest(*r, false);
  EXPECT_NE(enc.body.find("[1,null,2]"), std::string::npos) << enc.body;
  ExpectInvalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[null]}]})",
                "is null, not a INT32 value");
}

TEST(V2Codec, FastPathAgreesWithTheGeneralParser) {
  const std::vector<std::string> common = {
      R"({"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32","data":[1,2.5,-3,4e2,0,0.125]}]})",
      R"( { "id" : "x" , "inputs" : [ { "datatype" : "FP32" , "name" : "a" , "shape" : [ 2 ] ,)"
      R"( "data" : [ -0 , -0.0 ] } , {"name":"b","shape":[],"datatype":"FP32","data":[1E-3]} ] } )",
      R"({"inputs":[]})",
      R"({"inputs":[{"name":"e","shape":[0],"datatype":"FP32","data":[]}]})",
      R"({"inputs":[{"name":"big","shape":[1],"datatype":"FP32","data":[16777217]}]})",
  };
  for (const auto& body : common) {
    auto fast = ParseCommonInferRequest(body);
    ASSERT_TRUE(fast.has_value()) << body;
    auto general = ParseInferRequest(body, body.size());  // an explicit length skips the fast path
    ASSERT_TRUE(general.ok()) << general.status();
    EXPECT_EQ(fast->id, general->id);
    ASSERT_EQ(fast->inputs.size(), general->inputs.size());
    for (size_t i = 0; i < fast->inputs.size(); ++i) {
      const auto a = fast->inputs[i].bytes();
      const auto b = general->inputs[i].bytes();
      EXPECT_EQ(fast->inputs[i].name(), general->inputs[i].name());
      EXPECT_EQ(fast->inputs[i].shape(), general->inputs[i].shape());
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << body;
    }
  }
  // "-0" is the integer zero (no sign bit) on both paths; "-0.0" keeps its sign.
  auto zeros = ParseCommonInferRequest(
      R"({"inputs":[{"name":"z","shape":[2],"datatype":"FP32","data":[-0,-0.0]}]})");
  ASSERT_TRUE(zeros);
  EXPECT_FALSE(std::signbit(Values<float>(zeros->inputs[0])[0]));
  EXPECT_TRUE(std::signbit(Values<float>(zeros->inputs[0])[1]));
  // Everything else goes to the general parser, which also reports the errors.
  const std::vector<std::string> other = {
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]})",
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[[1],[2]]}]})",
      R"({"inputs":[{"data":[1],"name":"x","shape":[1],"datatype":"FP32"}]})",
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[]})",
      R"({"inputs":[{"name":"é","shape":[1],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]})",
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[01]}]})",
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} x)",
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[null]}]})",
  };
  for (const auto& body : other) EXPECT_FALSE(ParseCommonInferRequest(body).has_value()) << body;
}

TEST(V2Codec, InferenceHeaderLength) {
  EXPECT_EQ(ParseInferenceHeaderLength("", 10).value(), std::nullopt);
  EXPECT_EQ(ParseInferenceHeaderLength("7", 10).value(), std::optional<size_t>(7));
  EXPECT_FALSE(ParseInferenceHeaderLength("11", 10).ok());
  EXPECT_FALSE(ParseInferenceHeaderLength("-1", 10).ok());
  EXPECT_FALSE(ParseInferenceHeaderLength("7x", 10).ok());
}

TEST(V2Codec, ResponseEncodingJsonAndBinary) {
  InferResponse res;
  res.model_name = "fraud";
  res.model_version = "1";
  res.id = "q\"1";
  Tensor out("predict", DataType::kFp32, {2});
  const float v[2] = {0.25f, 0.1f};
  out.mutable_bytes().assign(reinterpret_cast<const char*>(v), sizeof(v));
  res.outputs.push_back(out);

  auto plain = EncodeInferResponse(res, OutputEncoding{});
  EXPECT_FALSE(plain.has_binary());
  EXPECT_EQ(plain.body,
            R"({"model_name":"fraud","model_version":"1","id":"q\"1","outputs":[{"name":"predict",)"
            R"("datatype":"FP32","shape":[2],"data":[0.25,0.1]}]})");
  auto parsed = ParseInferResponse(plain.body, std::nullopt);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->model_name, "fraud");
  EXPECT_EQ(parsed->id, "q\"1");
  EXPECT_EQ(Values<float>(parsed->outputs[0]), (std::vector<float>{0.25f, 0.1f}));

  OutputEncoding enc;
  enc.binary_names = {"predict"};
  auto binary = EncodeInferResponse(res, enc);
  ASSERT_TRUE(binary.has_binary());
  EXPECT_EQ(binary.body.size() - binary.json_length, 8u);
  EXPECT_NE(binary.body.substr(0, binary.json_length).find(R"("binary_data_size":8)"),
            std::string::npos);
  auto parsed_bin = ParseInferResponse(binary.body, binary.json_length);
  ASSERT_TRUE(parsed_bin.ok()) << parsed_bin.status();
  EXPECT_EQ(Values<float>(parsed_bin->outputs[0]), (std::vector<float>{0.25f, 0.1f}));
}

TEST(V2Codec, RequestRoundTripsThroughTheEncoder) {
  auto first = Parse(
      R"({"id":"7","parameters":{"k":1},"inputs":[{"name":"a","shape":[2],"datatype":"FP16","data":[0.5,2]},)"
      R"({"name":"b","shape":[1,2],"datatype":"BYTES","data":[["x","\n"]]},)"
      R"({"name":"c","shape":[3],"datatype":"BOOL","data":[true,false,true]}],)"
      R"("outputs":[{"name":"o","parameters":{"binary_data":true}}]})");
  ASSERT_TRUE(first.ok()) << first.status();
  for (bool binary : {false, true}) {
    auto enc = EncodeInferRequest(*first, binary);
    auto again = ParseInferRequest(enc.body, enc.json_length);
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << enc.body;
    EXPECT_EQ(again->id, first->id);
    EXPECT_EQ(again->parameters, first->parameters);
    ASSERT_EQ(again->inputs.size(), first->inputs.size());
    for (size_t i = 0; i < first->inputs.size(); ++i) {
      const auto& a = first->inputs[i];
      const auto& b = again->inputs[i];
      EXPECT_EQ(a.name(), b.name());
      EXPECT_EQ(a.datatype(), b.datatype());
      EXPECT_EQ(a.shape(), b.shape());
      EXPECT_TRUE(std::equal(a.bytes().begin(), a.bytes().end(), b.bytes().begin(), b.bytes().end()))
          << a.name();
    }
    ASSERT_EQ(again->outputs.size(), 1u);
    EXPECT_TRUE(again->outputs[0].binary_data);
  }
}

TEST(V2Codec, MetadataDocuments) {
  ModelMetadata md{"fraud", "1", "xgboost", {{"input-0", "FP32", {-1, 30}}}, {{"predict", "FP32", {-1}}}};
  auto j = nlohmann::json::parse(EncodeModelMetadata(md, {"1"}));
  EXPECT_EQ(j["name"], "fraud");
  EXPECT_EQ(j["versions"][0], "1");
  EXPECT_EQ(j["inputs"][0]["shape"][1], 30);
  auto s = nlohmann::json::parse(EncodeServerMetadata("sluice", "0.1.0", {"binary_tensor_data"}));
  EXPECT_EQ(s["extensions"][0], "binary_tensor_data");
}

}  // namespace
}  // namespace sluice::dataplane
