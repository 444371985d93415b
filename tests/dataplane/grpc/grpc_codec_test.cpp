#include "dataplane/grpc/grpc_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace sluice::dataplane {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using json = nlohmann::json;

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest& req, const std::string& name,
                                              const std::string& datatype,
                                              std::vector<int64_t> shape) {
  auto* in = req.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

template <typename T>
std::vector<T> ValuesOf(const Tensor& t) {
  std::vector<T> out(t.bytes().size() / sizeof(T));
  std::memcpy(out.data(), t.bytes().data(), out.size() * sizeof(T));
  return out;
}

template <typename T>
std::string BytesOf(std::initializer_list<T> values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), std::data(values), out.size());
  return out;
}

template <typename T>
Tensor MakeTensor(const std::string& name, DataType type, std::vector<int64_t> shape,
                  std::initializer_list<T> values) {
  Tensor t(name, type, std::move(shape));
  t.mutable_bytes() = BytesOf(values);
  return t;
}

std::string ErrorOf(const ModelInferRequest& req) {
  auto r = FromGrpcRequest(req);
  if (r.ok()) return "<decoded>";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  return r.status().message();
}

TEST(GrpcCodec, TypedContentsOfEveryDatatype) {
  ModelInferRequest req;
  req.set_model_name("m");
  req.set_model_version("2");
  req.set_id("req-1");
  auto* b = AddInput(req, "b", "BOOL", {3});
  for (bool v : {true, false, true}) b->mutable_contents()->add_bool_contents(v);
  auto* i8 = AddInput(req, "i8", "INT8", {3});
  for (int v : {-128, 0, 127}) i8->mutable_contents()->add_int_contents(v);
  auto* i16 = AddInput(req, "i16", "INT16", {2});
  for (int v : {-32768, 32767}) i16->mutable_contents()->add_int_contents(v);
  auto* i32 = AddInput(req, "i32", "INT32", {2});
  for (int v : {std::numeric_limits<int32_t>::min(), 7})
    i32->mutable_contents()->add_int_contents(v);
  auto* i64 = AddInput(req, "i64", "INT64", {1, 2});
  for (int64_t v : {int64_t{1} << 40, int64_t{-3}}) i64->mutable_contents()->add_int64_contents(v);
  auto* u8 = AddInput(req, "u8", "UINT8", {2});
  for (uint32_t v : {0u, 255u}) u8->mutable_contents()->add_uint_contents(v);
  auto* u16 = AddInput(req, "u16", "UINT16", {1});
  u16->mutable_contents()->add_uint_contents(65535);
  auto* u32 = AddInput(req, "u32", "UINT32", {1});
  u32->mutable_contents()->add_uint_contents(4000000000u);
  auto* u64 = AddInput(req, "u64", "UINT64", {1});
  u64->mutable_contents()->add_uint64_contents(uint64_t{1} << 63);
  auto* f32 = AddInput(req, "f32", "FP32", {2, 2});
  for (float v : {1.5f, -2.0f, std::numeric_limits<float>::quiet_NaN(), 4.0f}) {
    f32->mutable_contents()->add_fp32_contents(v);
  }
  auto* f64 = AddInput(req, "f64", "FP64", {2});
  for (double v : {0.25, -1e300}) f64->mutable_contents()->add_fp64_contents(v);
  auto* by = AddInput(req, "by", "BYTES", {3});
  for (const char* v : {"ab", "", "xyz"}) by->mutable_contents()->add_bytes_contents(v);

  auto r = FromGrpcRequest(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name, "m");
  EXPECT_EQ(r->model_version, "2");
  EXPECT_EQ(r->id, "req-1");
  EXPECT_TRUE(r->parameters.is_null());
  EXPECT_TRUE(r->outputs.empty());
  ASSERT_EQ(r->inputs.size(), 12u);
  const auto& in = r->inputs;
  for (const Tensor& t : in) EXPECT_TRUE(t.Validate().ok()) << t.name() << ": " << t.Validate();

  EXPECT_EQ(ValuesOf<uint8_t>(in[0]), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(ValuesOf<int8_t>(in[1]), (std::vector<int8_t>{-128, 0, 127}));
  EXPECT_EQ(ValuesOf<int16_t>(in[2]), (std::vector<int16_t>{-32768, 32767}));
  EXPECT_EQ(ValuesOf<int32_t>(in[3]),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 7}));
  EXPECT_EQ(ValuesOf<int64_t>(in[4]), (std::vector<int64_t>{int64_t{1} << 40, -3}));
  EXPECT_EQ(in[4].shape(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ValuesOf<uint8_t>(in[5]), (std::vector<uint8_t>{0, 255}));
  EXPECT_EQ(ValuesOf<uint16_t>(in[6]), (std::vector<uint16_t>{65535}));
  EXPECT_EQ(ValuesOf<uint32_t>(in[7]), (std::vector<uint32_t>{4000000000u}));
  EXPECT_EQ(ValuesOf<uint64_t>(in[8]), (std::vector<uint64_t>{uint64_t{1} << 63}));
  auto fp32 = ValuesOf<float>(in[9]);
  ASSERT_EQ(fp32.size(), 4u);
  EXPECT_EQ(fp32[0], 1.5f);
  EXPECT_EQ(fp32[1], -2.0f);
  EXPECT_TRUE(std::isnan(fp32[2]));
  EXPECT_EQ(fp32[3], 4.0f);
  EXPECT_EQ(ValuesOf<double>(in[10]), (std::vector<double>{0.25, -1e300}));
  std::string bytes;
  AppendByteElement(bytes, "ab");
  AppendByteElement(bytes, "");
  AppendByteElement(bytes, "xyz");
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(in[11].bytes().data()), in[11].bytes().size()),
      bytes);

  // Types whose typed field already has the tensor's layout are views of the message, not copies.
  auto points_into = [](const Tensor& t, const void* field_data) {
    return t.is_external() && static_cast<const void*>(t.bytes().data()) == field_data;
  };
  EXPECT_TRUE(points_into(in[0], b->contents().bool_contents().data()));
  EXPECT_TRUE(points_into(in[3], i32->contents().int_contents().data()));
  EXPECT_TRUE(points_into(in[4], i64->contents().int64_contents().data()));
  EXPECT_TRUE(points_into(in[7], u32->contents().uint_contents().data()));
  EXPECT_TRUE(points_into(in[8], u64->contents().uint64_contents().data()));
  EXPECT_TRUE(points_into(in[9], f32->contents().fp32_contents().data()));
  EXPECT_TRUE(points_into(in[10], f64->contents().fp64_contents().data()));
  // Narrow integers and BYTES are converted.
  EXPECT_FALSE(in[1].is_external());
  EXPECT_FALSE(in[11].is_external());
}

TEST(GrpcCodec, RawContentsAreViewedInPlace) {
  ModelInferRequest req;
  AddInput(req, "x", "FP32", {2, 3});
  AddInput(req, "h", "FP16", {2});
  AddInput(req, "s", "BYTES", {2});
  req.add_raw_input_contents(BytesOf<float>({1, 2, 3, 4, 5, 6}));
  req.add_raw_input_contents(BytesOf<uint16_t>({FloatToHalf(1.0f), FloatToHalf(-0.5f)}));
  std::string s;
  AppendByteElement(s, "hello");
  AppendByteElement(s, "w");
  req.add_raw_input_contents(s);
  auto r = FromGrpcRequest(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->inputs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const Tensor& t = r->inputs[static_cast<size_t>(i)];
    EXPECT_TRUE(t.is_external());
    EXPECT_EQ(static_cast<const void*>(t.bytes().data()),
              static_cast<const void*>(req.raw_input_contents(i).data()));
    EXPECT_EQ(t.bytes().size(), req.raw_input_contents(i).size());
  }
  EXPECT_EQ(ValuesOf<float>(r->inputs[0]), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r->inputs[1].datatype(), DataType::kFp16);
  EXPECT_EQ(HalfToFloat(ValuesOf<uint16_t>(r->inputs[1])[1]), -0.5f);
}

TEST(GrpcCodec, MalformedRequestsAreRefusedWithAReason) {
  struct Case {
    std::string name;
    std::function<void(ModelInferRequest&)> build;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {"unknown datatype", [](ModelInferRequest& r) { AddInput(r, "x", "FP8", {1}); },
       "input 'x' has unknown datatype 'FP8'"},
      {"no datatype", [](ModelInferRequest& r) { AddInput(r, "x", "", {1}); },
       "input 'x' has no datatype"},
      {"negative dimension",
       [](ModelInferRequest& r) {
         AddInput(r, "x", "FP32", {-1, 3});
       },
       "input 'x': shape [-1,3] has a negative dimension"},
      {"too few values",
       [](ModelInferRequest& r) {
         auto* in = AddInput(r, "x", "FP32", {1, 4});
         for (float v : {1.f, 2.f, 3.f}) in->mutable_contents()->add_fp32_contents(v);
       },
       "input 'x' has 3 values in fp32_contents; shape [1,4] needs 4"},
      {"no contents", [](ModelInferRequest& r) { AddInput(r, "x", "INT64", {2}); },
       "input 'x' has 0 values in int64_contents; shape [2] needs 2"},
      {"wrong field",
       [](ModelInferRequest& r) {
         auto* in = AddInput(r, "x", "FP32", {1});
         in->mutable_contents()->add_int64_contents(1);
       },
       "input 'x' of datatype FP32 carries values in int64_contents; FP32 values go in "
       "fp32_contents"},
      {"INT8 out of range",
       [](ModelInferRequest& r) {
         auto* in = AddInput(r, "x", "INT8", {2});
         in->mutable_contents()->add_int_contents(1);
         in->mutable_contents()->add_int_contents(200);
       },
       "input 'x' element 1: 200 is out of range for INT8"},
      {"UINT16 out of range",
       [](ModelInferRequest& r) {
         auto* in = AddInput(r, "x", "UINT16", {1});
         in->mutable_contents()->add_uint_contents(70000);
       },
       "70000 is out of range for UINT16"},
      {"FP16 typed",
       [](ModelInferRequest& r) {
         auto* in = AddInput(r, "x", "FP16", {1});
         in->mutable_contents()->add_fp32_contents(1);
       },
       "input 'x' is FP16, which has no typed contents; send it in raw_input_contents"},
      {"raw entries do not match inputs",
       [](ModelInferRequest& r) {
         AddInput(r, "x", "FP32", {1});
         AddInput(r, "y", "FP32", {1});
         r.add_raw_input_contents(BytesOf<float>({1}));
       },
       "the request has 1 raw_input_contents entries for 2 inputs"},
      {"raw and typed mixed",
       [](ModelInferRequest& r) {
         auto* in = AddInput(r, "x", "FP32", {1});
         in->mutable_contents()->add_fp32_contents(1);
         r.add_raw_input_contents(BytesOf<float>({1}));
       },
       "input 'x' carries typed contents (fp32_contents) in a request that uses "
       "raw_input_contents"},
      {"raw of the wrong byte size",
       [](ModelInferRequest& r) {
         AddInput(r, "x", "FP32", {1, 12});
         r.add_raw_input_contents(std::string(40, '\0'));
       },
       "raw_input_contents[0]: tensor 'x' has 40 bytes; shape [1,12] of FP32 needs 48"},
      {"raw BYTES with a broken length",
       [](ModelInferRequest& r) {
         AddInput(r, "s", "BYTES", {1});
         r.add_raw_input_contents(std::string("\x09\0\0\0abc", 7));
       },
       "claims 9 bytes but only 3 remain"},
      {"output requested twice",
       [](ModelInferRequest& r) {
         r.add_outputs()->set_name("out");
         r.add_outputs()->set_name("out");
       },
       "output 'out' is requested twice"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ModelInferRequest req;
    c.build(req);
    EXPECT_NE(ErrorOf(req).find(c.fragment), std::string::npos) << ErrorOf(req);
  }
}

TEST(GrpcCodec, ParametersRoundTripThroughJson) {
  GrpcParameters p;
  p["b"].set_bool_param(true);
  p["i"].set_int64_param(-5);
  p["s"].set_string_param("text");
  p["d"].set_double_param(0.5);
  p["u"].set_uint64_param(uint64_t{1} << 63);
  p["unset"];
  const json j = ParametersToJson(p);
  EXPECT_EQ(j, json::parse(R"({"b":true,"i":-5,"s":"text","d":0.5,"u":9223372036854775808,
                                "unset":null})"));
  EXPECT_TRUE(ParametersToJson(GrpcParameters{}).is_null());

  GrpcParameters back;
  back["s"].set_string_param("replaced");
  back["kept"].set_int64_param(1);
  JsonToParameters(json::parse(R"({"b":false,"i":7,"u":18446744073709551615,"d":1.25,
                                   "s":"new","a":[1,2],"o":{"k":1}})"),
                   back);
  EXPECT_FALSE(back["b"].bool_param());
  EXPECT_EQ(back["b"].parameter_choice_case(), InferParameter::kBoolParam);
  EXPECT_EQ(back["i"].int64_param(), 7);
  EXPECT_EQ(back["u"].uint64_param(), 18446744073709551615ull);
  EXPECT_EQ(back["d"].double_param(), 1.25);
  EXPECT_EQ(back["s"].string_param(), "new");
  EXPECT_EQ(back["a"].string_param(), "[1,2]");
  EXPECT_EQ(back["o"].string_param(), R"({"k":1})");
  EXPECT_EQ(back["kept"].int64_param(), 1);
}

TEST(GrpcCodec, RequestedOutputsCarryTheirParameters) {
  ModelInferRequest req;
  auto* o = req.add_outputs();
  o->set_name("probabilities");
  (*o->mutable_parameters())["classification"].set_int64_param(3);
  req.add_outputs()->set_name("label");
  auto r = FromGrpcRequest(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "probabilities");
  EXPECT_EQ(r->outputs[0].parameters, json::parse(R"({"classification":3})"));
  EXPECT_EQ(r->outputs[1].name, "label");
  EXPECT_TRUE(r->outputs[1].parameters.is_null());
}

InferResponse EveryDatatypeResponse() {
  InferResponse res;
  res.model_name = "m";
  res.model_version = "3";
  res.id = "id-9";
  res.outputs.push_back(MakeTensor<uint8_t>("b", DataType::kBool, {2}, {1, 0}));
  res.outputs.push_back(MakeTensor<int8_t>("i8", DataType::kInt8, {2}, {-7, 100}));
  res.outputs.push_back(MakeTensor<int16_t>("i16", DataType::kInt16, {1}, {-300}));
  res.outputs.push_back(MakeTensor<int32_t>("i32", DataType::kInt32, {1}, {123456}));
  res.outputs.push_back(MakeTensor<int64_t>("i64", DataType::kInt64, {1}, {-(int64_t{1} << 50)}));
  res.outputs.push_back(MakeTensor<uint8_t>("u8", DataType::kUint8, {1}, {250}));
  res.outputs.push_back(MakeTensor<uint16_t>("u16", DataType::kUint16, {1}, {60000}));
  res.outputs.push_back(MakeTensor<uint32_t>("u32", DataType::kUint32, {1}, {4000000000u}));
  res.outputs.push_back(MakeTensor<uint64_t>("u64", DataType::kUint64, {1}, {uint64_t{1} << 63}));
  res.outputs.push_back(MakeTensor<float>("f32", DataType::kFp32, {1, 2}, {0.75f, -1.0f}));
  res.outputs.push_back(MakeTensor<double>("f64", DataType::kFp64, {1}, {1e-300}));
  Tensor s("s", DataType::kBytes, {2});
  AppendByteElement(s.mutable_bytes(), "yes");
  AppendByteElement(s.mutable_bytes(), "");
  res.outputs.push_back(std::move(s));
  return res;
}

TEST(GrpcCodec, TypedResponseForTypedRequest) {
  ModelInferRequest req;
  (*req.mutable_parameters())["echo"].set_string_param("me");
  (*req.mutable_parameters())["over"].set_int64_param(1);
  InferResponse res = EveryDatatypeResponse();
  res.parameters = json::parse(R"({"over":2,"added":true})");
  EXPECT_FALSE(AnswerRaw(req, res));
  ModelInferResponse out;
  ASSERT_TRUE(ToGrpcResponse(std::move(res), req, out).ok());
  EXPECT_EQ(out.model_name(), "m");
  EXPECT_EQ(out.model_version(), "3");
  EXPECT_EQ(out.id(), "id-9");
  EXPECT_EQ(out.parameters().at("echo").string_param(), "me");
  EXPECT_EQ(out.parameters().at("over").int64_param(), 2);
  EXPECT_TRUE(out.parameters().at("added").bool_param());
  EXPECT_EQ(out.raw_output_contents_size(), 0);
  ASSERT_EQ(out.outputs_size(), 12);
  auto c = [&](int i) -> const inference::InferTensorContents& {
    return out.outputs(i).contents();
  };
  EXPECT_EQ(out.outputs(0).datatype(), "BOOL");
  EXPECT_EQ(std::vector<bool>(c(0).bool_contents().begin(), c(0).bool_contents().end()),
            (std::vector<bool>{true, false}));
  EXPECT_EQ(std::vector<int>(c(1).int_contents().begin(), c(1).int_contents().end()),
            (std::vector<int>{-7, 100}));
  EXPECT_EQ(c(2).int_contents(0), -300);
  EXPECT_EQ(c(3).int_contents(0), 123456);
  EXPECT_EQ(c(4).int64_contents(0), -(int64_t{1} << 50));
  EXPECT_EQ(c(5).uint_contents(0), 250u);
  EXPECT_EQ(c(6).uint_contents(0), 60000u);
  EXPECT_EQ(c(7).uint_contents(0), 4000000000u);
  EXPECT_EQ(c(8).uint64_contents(0), uint64_t{1} << 63);
  EXPECT_EQ(out.outputs(9).name(), "f32");
  EXPECT_EQ(out.outputs(9).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(out.outputs(9).shape().begin(), out.outputs(9).shape().end()),
            (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(std::vector<float>(c(9).fp32_contents().begin(), c(9).fp32_contents().end()),
            (std::vector<float>{0.75f, -1.0f}));
  EXPECT_EQ(c(10).fp64_contents(0), 1e-300);
  ASSERT_EQ(c(11).bytes_contents_size(), 2);
  EXPECT_EQ(c(11).bytes_contents(0), "yes");
  EXPECT_EQ(c(11).bytes_contents(1), "");
  // Exactly one typed field per output.
  for (int i = 0; i < out.outputs_size(); ++i) {
    const auto& k = c(i);
    const int fields = (k.bool_contents_size() > 0) + (k.int_contents_size() > 0) +
                       (k.int64_contents_size() > 0) + (k.uint_contents_size() > 0) +
                       (k.uint64_contents_size() > 0) + (k.fp32_contents_size() > 0) +
                       (k.fp64_contents_size() > 0) + (k.bytes_contents_size() > 0);
    EXPECT_EQ(fields, 1) << out.outputs(i).name();
  }
}

TEST(GrpcCodec, RawResponseForRawRequestMovesTheBytes) {
  ModelInferRequest req;
  AddInput(req, "x", "FP32", {1});
  req.add_raw_input_contents(BytesOf<float>({1}));
  InferResponse res;
  Tensor big("predict", DataType::kFp32, {1000});
  big.mutable_bytes().assign(4000, '\x01');
  const char* buffer = big.mutable_bytes().data();
  res.outputs.push_back(std::move(big));
  EXPECT_TRUE(AnswerRaw(req, res));
  ModelInferResponse out;
  ASSERT_TRUE(ToGrpcResponse(std::move(res), req, out).ok());
  ASSERT_EQ(out.raw_output_contents_size(), 1);
  EXPECT_EQ(out.raw_output_contents(0).size(), 4000u);
  EXPECT_EQ(out.raw_output_contents(0).data(), buffer);  // moved, not copied
  ASSERT_EQ(out.outputs_size(), 1);
  EXPECT_EQ(out.outputs(0).contents().fp32_contents_size(), 0);
  EXPECT_EQ(out.outputs(0).datatype(), "FP32");
}

TEST(GrpcCodec, Fp16OutputTurnsTheWholeResponseRaw) {
  ModelInferRequest req;  // typed
  InferResponse res;
  res.outputs.push_back(MakeTensor<float>("a", DataType::kFp32, {1}, {2.0f}));
  res.outputs.push_back(MakeTensor<uint16_t>("h", DataType::kFp16, {1}, {FloatToHalf(0.5f)}));
  EXPECT_TRUE(AnswerRaw(req, res));
  ModelInferResponse out;
  ASSERT_TRUE(ToGrpcResponse(std::move(res), req, out).ok());
  ASSERT_EQ(out.raw_output_contents_size(), 2);
  EXPECT_EQ(out.raw_output_contents(0), BytesOf<float>({2.0f}));
  EXPECT_EQ(out.raw_output_contents(1), BytesOf<uint16_t>({FloatToHalf(0.5f)}));
  EXPECT_EQ(out.outputs(0).contents().fp32_contents_size(), 0);
}

TEST(GrpcCodec, OnlyTheRequestedOutputsInTheRequestedOrder) {
  ModelInferRequest req;
  req.add_outputs()->set_name("f64");
  req.add_outputs()->set_name("b");
  ModelInferResponse out;
  ASSERT_TRUE(ToGrpcResponse(EveryDatatypeResponse(), req, out).ok());
  ASSERT_EQ(out.outputs_size(), 2);
  EXPECT_EQ(out.outputs(0).name(), "f64");
  EXPECT_EQ(out.outputs(0).contents().fp64_contents(0), 1e-300);
  EXPECT_EQ(out.outputs(1).name(), "b");

  ModelInferRequest missing;
  missing.add_outputs()->set_name("nope");
  ModelInferResponse ignored;
  Status s = ToGrpcResponse(EveryDatatypeResponse(), missing, ignored);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "the model produced no output 'nope'");
}

TEST(GrpcCodec, MalformedOutputIsInternal) {
  InferResponse res;
  res.outputs.push_back(MakeTensor<float>("a", DataType::kFp32, {3}, {1.0f}));
  ModelInferResponse out;
  Status s = ToGrpcResponse(std::move(res), ModelInferRequest{}, out);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("malformed output"), std::string::npos) << s;
}

TEST(GrpcCodec, MetadataOfAModel) {
  ModelMetadata md{
      "ignored", "1", "xgboost", {{"input-0", "FP32", {-1, 12}}}, {{"predict", "FP32", {-1}}}};
  inference::ModelMetadataResponse out;
  ToGrpcMetadata(md, "fraud", {"1", "2"}, out);
  EXPECT_EQ(out.name(), "fraud");
  EXPECT_EQ(std::vector<std::string>(out.versions().begin(), out.versions().end()),
            (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(out.platform(), "xgboost");
  ASSERT_EQ(out.inputs_size(), 1);
  EXPECT_EQ(out.inputs(0).name(), "input-0");
  EXPECT_EQ(out.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(out.inputs(0).shape().begin(), out.inputs(0).shape().end()),
            (std::vector<int64_t>{-1, 12}));
  ASSERT_EQ(out.outputs_size(), 1);
  EXPECT_EQ(out.outputs(0).name(), "predict");
}

TEST(GrpcCodec, StatusCodes) {
  const std::vector<std::pair<StatusCode, grpc::StatusCode>> table = {
      {StatusCode::kOk, grpc::StatusCode::OK},
      {StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {StatusCode::kBadRequest, grpc::StatusCode::INVALID_ARGUMENT},
      {StatusCode::kInvalid, grpc::StatusCode::INVALID_ARGUMENT},
      {StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {StatusCode::kFailedPrecondition, grpc::StatusCode::UNAVAILABLE},
      {StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {StatusCode::kCancelled, grpc::StatusCode::UNAVAILABLE},
      {StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {StatusCode::kTooManyRequests, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {StatusCode::kTimeout, grpc::StatusCode::DEADLINE_EXCEEDED},
      {StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
  };
  for (const auto& [core, want] : table) {
    EXPECT_EQ(GrpcCodeFor(core), want) << StatusCodeName(core);
  }
  const grpc::Status g = ToGrpcStatus(Timeout("queued too long"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(g.error_message(), "queued too long");
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
}

}  // namespace
}  // namespace sluice::dataplane
