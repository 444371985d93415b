#include "dataplane/server/inference_service.h"

#include <cstring>
#include <future>

#include <gtest/gtest.h>

#include "tests/dataplane/server/fake_runtime.h"
#include "dataplane/server/v2_codec.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::FakeRuntime;

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v(t.bytes().size() / 4);
  std::memcpy(v.data(), t.bytes().data(), v.size() * 4);
  return v;
}

class InferenceServiceTest : public ::testing::TestWithParam<bool> {
 protected:
  // batching: GetParam()
  void SetUp() override { Build(/*cache=*/false); }

  void Build(bool cache, size_t outputs = 1) {
    if (service_) service_->Stop();
    registry_ = std::make_shared<prometheus::Registry>();
    auto s = InferenceService::Create({}, registry_, Clock::Real());
    ASSERT_TRUE(s.ok());
    service_ = std::move(s).value();
    ModelOptions o;
    o.name = "m";
    o.version = "1";
    o.batching = GetParam();
    o.cache = cache;
    auto m = service_->AddModel(o);
    ASSERT_TRUE(m.ok());
    model_ = *m;
    auto rt = std::make_unique<FakeRuntime>(3, outputs);
    runtime_ = rt.get();
    ASSERT_TRUE(service_->SetRuntime(*model_, std::move(rt)).ok());
    ASSERT_TRUE(service_->WarmUpAndMarkReady(*model_).ok());
  }

  Result<InferResponse> Run(std::string_view body) {
    auto req = ParseInferRequest(body, std::nullopt);
    if (!req.ok()) return req.status();
    std::promise<Result<InferResponse>> p;
    auto f = p.get_future();
    service_->Infer(*model_, std::move(req).value(),
                    [&p](Result<InferResponse> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  void ExpectInvalid(std::string_view body, std::string_view fragment) {
    auto r = Run(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
    EXPECT_EQ(HttpStatusFor(r.status()), 400);
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<InferenceService> service_;
  Model* model_ = nullptr;
  FakeRuntime* runtime_ = nullptr;
};

TEST_P(InferenceServiceTest, PredictsAndEchoesTheId) {
  auto r = Run(R"({"id":"abc","inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32",)"
               R"("data":[1,2,3,4,5,6]}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "abc");
  EXPECT_EQ(r->model_name, "m");
  EXPECT_EQ(r->model_version, "1");
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].name(), "predict");
  EXPECT_EQ(r->outputs[0].shape(), std::vector<int64_t>{2});
  EXPECT_EQ(Floats(r->outputs[0]), (std::vector<float>{6, 15}));
}

TEST_P(InferenceServiceTest, ConvertsNumericInputsAndAcceptsOneRowShape) {
  auto fp64 = Run(R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[0.5,1,2]}]})");
  ASSERT_TRUE(fp64.ok()) << fp64.status();
  EXPECT_EQ(Floats(fp64->outputs[0]), std::vector<float>{3.5f});
  auto i32 = Run(R"({"inputs":[{"name":"input-0","shape":[3],"datatype":"INT32","data":[-1,2,3]}]})");
  ASSERT_TRUE(i32.ok()) << i32.status();
  EXPECT_EQ(i32->outputs[0].shape(), std::vector<int64_t>{1});
  EXPECT_EQ(Floats(i32->outputs[0]), std::vector<float>{4});
  auto empty = Run(R"({"inputs":[{"name":"input-0","shape":[0,3],"datatype":"FP32","data":[]}]})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->outputs[0].shape(), std::vector<int64_t>{0});
}

TEST_P(InferenceServiceTest, InputsThatDoNotFitTheModelAreInvalid) {
  const size_t before = runtime_->calls().size();
  ExpectInvalid(R"({"inputs":[]})", "takes 1 input tensor(s), the request has 0");
  ExpectInvalid(R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]},)"
                R"({"name":"extra","shape":[1],"datatype":"FP32","data":[1]}]})",
                "the request has 2");
  ExpectInvalid(R"({"inputs":[{"name":"wrong","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})",
                "unknown input 'wrong'");
  ExpectInvalid(R"({"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})",
                "has shape [1,4]; model 'm' takes [-1,3]");
  ExpectInvalid(R"({"inputs":[{"name":"input-0","shape":[1,1,3],"datatype":"FP32","data":[1,2,3]}]})",
                "has shape [1,1,3]");
  ExpectInvalid(R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"BYTES","data":["a","b","c"]}]})",
                "datatype BYTES");
  ExpectInvalid(R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],)"
                R"("outputs":[{"name":"nope"}]})",
                "unknown output 'nope'");
  EXPECT_EQ(runtime_->calls().size(), before);  // nothing invalid reached the runtime
}

TEST_P(InferenceServiceTest, MultiOutputModelsAnswerRowsByOutputs) {
  Build(false, /*outputs=*/3);
  auto r = Run(R"({"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32","data":[1,1,1,2,2,2]}],)"
               R"("outputs":[{"name":"predict"}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Floats(r->outputs[0]), (std::vector<float>{3, 4, 5, 6, 7, 8}));
}

TEST_P(InferenceServiceTest, CacheAnswersRepeatsWithoutThePredict) {
  Build(/*cache=*/true);
  const size_t before = runtime_->calls().size();
  const std::string body =
      R"({"id":"one","inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})";
  auto first = Run(body);
  ASSERT_TRUE(first.ok());
  auto second = Run(R"({"id":"two","inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->id, "two");  // the id is the request's, not the cached one
  EXPECT_EQ(Floats(second->outputs[0]), std::vector<float>{6});
  auto other = Run(R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,4]}]})");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Floats(other->outputs[0]), std::vector<float>{7});
  EXPECT_EQ(runtime_->calls().size() - before, 2u);
  EXPECT_EQ(model_->metrics().cache_hits->Value(), 1);
  EXPECT_EQ(model_->metrics().cache_misses->Value(), 2);
}

TEST_P(InferenceServiceTest, ReadinessFollowsLoadWarmUpAndDrain) {
  auto s = InferenceService::Create({}, std::make_shared<prometheus::Registry>(), Clock::Real());
  ASSERT_TRUE(s.ok());
  auto& service = **s;
  EXPECT_FALSE(service.ready());  // no models
  ModelOptions o;
  o.name = "late";
  o.batching = GetParam();
  Model* m = *service.AddModel(o);
  EXPECT_FALSE(service.ready());
  EXPECT_EQ(m->metadata(), nullptr);
  std::promise<Result<InferResponse>> p;
  InferRequest req;
  service.Infer(*m, std::move(req), [&](Result<InferResponse> r) { p.set_value(std::move(r)); });
  auto not_ready = p.get_future().get();
  EXPECT_EQ(not_ready.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(HttpStatusFor(not_ready.status()), 503);
  ASSERT_TRUE(service.SetRuntime(*m, std::make_unique<FakeRuntime>(2)).ok());
  EXPECT_TRUE(m->loaded());
  EXPECT_FALSE(service.ready());
  EXPECT_EQ(m->metrics().loaded->Value(), 1);
  EXPECT_EQ(m->metrics().ready->Value(), 0);
  EXPECT_EQ(service.SetRuntime(*m, std::make_unique<FakeRuntime>(2)).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(service.WarmUpAndMarkReady(*m).ok());
  EXPECT_TRUE(service.ready());
  EXPECT_EQ(m->metrics().ready->Value(), 1);
  service.SetDraining();
  EXPECT_FALSE(service.ready());
  EXPECT_TRUE(m->ready());  // the model itself still serves while draining
}

TEST_P(InferenceServiceTest, FindsModelsByNameAndVersion) {
  ModelOptions o;
  o.name = "m";
  o.version = "2";
  auto v2 = service_->AddModel(o);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(service_->AddModel(o).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*service_->FindModel("m", "1"), model_);
  EXPECT_EQ(*service_->FindModel("m", "2"), *v2);
  EXPECT_EQ(*service_->FindModel("m", ""), *v2);  // the last version added
  EXPECT_EQ(service_->FindModel("m", "3").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->FindModel("x", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Versions("m"), (std::vector<std::string>{"1", "2"}));
  EXPECT_FALSE(service_->ready());  // version 2 has no runtime yet
}

TEST_P(InferenceServiceTest, StoppedServiceRefuses) {
  service_->Stop();
  auto r = Run(R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

INSTANTIATE_TEST_SUITE_P(BatchingOnOff, InferenceServiceTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Batched" : "Inline"; });

TEST(HttpStatusFor, MapsTheErrorModel) {
  EXPECT_EQ(HttpStatusFor(Status::Ok()), 200);
  EXPECT_EQ(HttpStatusFor(InvalidArgument("x")), 400);
  EXPECT_EQ(HttpStatusFor(NotFound("x")), 404);
  EXPECT_EQ(HttpStatusFor(ResourceExhausted("x")), 503);
  EXPECT_EQ(HttpStatusFor(Timeout("x")), 503);
  EXPECT_EQ(HttpStatusFor(FailedPrecondition("x")), 503);
  EXPECT_EQ(HttpStatusFor(Internal("x")), 500);
}

}  // namespace
}  // namespace sluice::dataplane
