// A real grpc::Server carrying the frontend over InferenceService and a fake runtime, driven by
// the generated C++ stub on 127.0.0.1.

#include "dataplane/grpc/grpc_frontend.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <thread>

#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/dataplane/server/fake_runtime.h"
#include "tests/lib/base/fake_clock.h"

namespace sluice::dataplane {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using sluice::testing::FakeRuntime;
using sluice::testing::Fp32Output;
using sluice::testing::Fp32Request;
using sluice::testing::GrpcTestClient;
using sluice::testing::InferResult;
using Stub = GRPCInferenceService::Stub;

constexpr auto kWait = std::chrono::seconds(20);

// A fake clock that also counts Now() calls, so a test can tell that the batcher has stamped a
// request's arrival without sleeping.
class CountingClock final : public Clock {
 public:
  // Reads the time before counting the call: a test that advances the clock once it sees the
  // count must not move the time this call returns.
  Steady::time_point Now() const override {
    const Steady::time_point now = fake_.Now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++now_calls_;
    }
    cv_.notify_all();
    return now;
  }
  Wall::time_point WallNow() const override { return fake_.WallNow(); }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 Steady::time_point deadline) override {
    return fake_.WaitUntil(cv, lock, deadline);
  }
  size_t now_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return now_calls_;
  }
  bool WaitNowCalls(size_t n) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return now_calls_ >= n; });
  }
  void Advance(std::chrono::nanoseconds d) { fake_.Advance(d); }

 private:
  sluice::testing::FakeClock fake_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable size_t now_calls_ = 0;  // guarded by mu_
};

template <typename T>
bool Ready(std::future<T>& f, std::chrono::milliseconds within = kWait) {
  return f.wait_for(within) == std::future_status::ready;
}

class GrpcFrontendTest : public ::testing::Test {
 protected:
  void Start(ModelOptions model = {}, bool load = true, GrpcFrontendOptions grpc = {},
             Clock& clock = Clock::Real()) {
    registry_ = std::make_shared<prometheus::Registry>();
    auto s = InferenceService::Create({"sluice-test", "9.8.7"}, registry_, clock);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(s).value();
    model.name = "m";
    model.version = "1";
    auto m = service_->AddModel(model);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *m;
    grpc.address = "127.0.0.1";
    grpc.port = 0;
    auto f = GrpcFrontend::Create(grpc, *service_);
    ASSERT_TRUE(f.ok()) << f.status();
    frontend_ = std::move(f).value();
    ASSERT_GT(frontend_->port(), 0);
    client_ = std::make_unique<GrpcTestClient>(frontend_->port());
    if (load) Load();
  }

  void Load() {
    auto rt = std::make_unique<FakeRuntime>(3);
    runtime_ = rt.get();
    ASSERT_TRUE(service_->SetRuntime(*model_, std::move(rt)).ok());
    ASSERT_TRUE(service_->WarmUpAndMarkReady(*model_).ok());
  }

  void TearDown() override {
    if (runtime_) runtime_->Open();
    client_.reset();
    frontend_.reset();
    service_.reset();
  }

  grpc::Status Infer(const ModelInferRequest& req, ModelInferResponse* res) {
    return client_->Infer(req, res);
  }

  // Closes the model's gate and sends one request, which then holds the batcher's worker.
  std::future<InferResult> HoldWorker(float v = 1) {
    runtime_->Close();
    const size_t before = runtime_->calls().size();
    auto f = client_->InferAsync(Fp32Request("m", {{v, v, v}}, false));
    EXPECT_TRUE(runtime_->WaitEntered(before + 1));
    return f;
  }

  ServerMetrics::Model& Metrics() { return service_->metrics().ForModel("m", "1"); }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<InferenceService> service_;
  Model* model_ = nullptr;
  FakeRuntime* runtime_ = nullptr;
  // Destroyed before the service it serves.
  std::unique_ptr<GrpcFrontend> frontend_;
  std::unique_ptr<GrpcTestClient> client_;
};

TEST_F(GrpcFrontendTest, HealthAndMetadata) {
  Start();
  inference::ServerLiveResponse live;
  ASSERT_TRUE(client_->Call(&Stub::ServerLive, inference::ServerLiveRequest{}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(client_->Call(&Stub::ServerReady, inference::ServerReadyRequest{}, &ready).ok());
  EXPECT_TRUE(ready.ready());

  inference::ModelReadyRequest mr;
  mr.set_name("m");
  inference::ModelReadyResponse mready;
  ASSERT_TRUE(client_->Call(&Stub::ModelReady, mr, &mready).ok());
  EXPECT_TRUE(mready.ready());
  mr.set_version("1");
  ASSERT_TRUE(client_->Call(&Stub::ModelReady, mr, &mready).ok());
  EXPECT_TRUE(mready.ready());
  mr.set_version("2");
  grpc::Status s = client_->Call(&Stub::ModelReady, mr, &mready);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "model 'm' has no version '2'");
  mr.set_name("nope");
  mr.clear_version();
  s = client_->Call(&Stub::ModelReady, mr, &mready);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "model 'nope' is not served here");

  inference::ServerMetadataResponse sm;
  ASSERT_TRUE(client_->Call(&Stub::ServerMetadata, inference::ServerMetadataRequest{}, &sm).ok());
  EXPECT_EQ(sm.name(), "sluice-test");
  EXPECT_EQ(sm.version(), "9.8.7");

  inference::ModelMetadataRequest mm;
  mm.set_name("m");
  inference::ModelMetadataResponse md;
  ASSERT_TRUE(client_->Call(&Stub::ModelMetadata, mm, &md).ok());
  EXPECT_EQ(md.name(), "m");
  ASSERT_EQ(md.versions_size(), 1);
  EXPECT_EQ(md.versions(0), "1");
  EXPECT_EQ(md.platform(), "fake");
  ASSERT_EQ(md.inputs_size(), 1);
  EXPECT_EQ(md.inputs(0).name(), "input-0");
  EXPECT_EQ(md.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(md.inputs(0).shape().begin(), md.inputs(0).shape().end()),
            (std::vector<int64_t>{-1, 3}));
  ASSERT_EQ(md.outputs_size(), 1);
  EXPECT_EQ(md.outputs(0).name(), "predict");
  mm.set_name("nope");
  EXPECT_EQ(client_->Call(&Stub::ModelMetadata, mm, &md).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcFrontendTest, NotReadyWhileTheModelLoads) {
  Start({}, /*load=*/false);
  inference::ServerLiveResponse live;
  ASSERT_TRUE(client_->Call(&Stub::ServerLive, inference::ServerLiveRequest{}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(client_->Call(&Stub::ServerReady, inference::ServerReadyRequest{}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  inference::ModelReadyRequest mr;
  mr.set_name("m");
  inference::ModelReadyResponse mready;
  ASSERT_TRUE(client_->Call(&Stub::ModelReady, mr, &mready).ok());
  EXPECT_FALSE(mready.ready());
  inference::ModelMetadataRequest mm;
  mm.set_name("m");
  inference::ModelMetadataResponse md;
  grpc::Status s = client_->Call(&Stub::ModelMetadata, mm, &md);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "model 'm' version 1 is still loading");

  ModelInferResponse res;
  s = Infer(Fp32Request("m", {{1, 2, 3}}, false), &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "model 'm' version 1 is not ready");

  Load();
  ASSERT_TRUE(client_->Call(&Stub::ServerReady, inference::ServerReadyRequest{}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  ASSERT_TRUE(Infer(Fp32Request("m", {{1, 2, 3}}, false), &res).ok());
  EXPECT_EQ(Fp32Output(res), (std::vector<float>{6}));
}

TEST_F(GrpcFrontendTest, DrainingIsNotReadyButStillAnswers) {
  Start();
  service_->SetDraining();
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(client_->Call(&Stub::ServerReady, inference::ServerReadyRequest{}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  inference::ModelReadyRequest mr;
  mr.set_name("m");
  inference::ModelReadyResponse mready;
  ASSERT_TRUE(client_->Call(&Stub::ModelReady, mr, &mready).ok());
  EXPECT_FALSE(mready.ready());
  ModelInferResponse res;
  ASSERT_TRUE(Infer(Fp32Request("m", {{1, 1, 1}}, true), &res).ok());
  EXPECT_EQ(Fp32Output(res), (std::vector<float>{3}));
}

TEST_F(GrpcFrontendTest, TypedAndRawInferenceEchoIdAndParameters) {
  Start();
  for (bool raw : {false, true}) {
    SCOPED_TRACE(raw ? "raw" : "typed");
    ModelInferRequest req = Fp32Request("m", {{1, 2, 3}, {4, 5, 6}}, raw);
    req.set_id("req-42");
    (*req.mutable_parameters())["priority"].set_int64_param(3);
    (*req.mutable_parameters())["tenant"].set_string_param("blue");
    ModelInferResponse res;
    grpc::Status s = Infer(req, &res);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(res.model_name(), "m");
    EXPECT_EQ(res.model_version(), "1");
    EXPECT_EQ(res.id(), "req-42");
    EXPECT_EQ(res.parameters().at("priority").int64_param(), 3);
    EXPECT_EQ(res.parameters().at("tenant").string_param(), "blue");
    ASSERT_EQ(res.outputs_size(), 1);
    EXPECT_EQ(res.outputs(0).name(), "predict");
    EXPECT_EQ(res.outputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<int64_t>(res.outputs(0).shape().begin(), res.outputs(0).shape().end()),
              (std::vector<int64_t>{2}));
    // Raw in, raw out; typed in, typed out.
    EXPECT_EQ(res.raw_output_contents_size(), raw ? 1 : 0);
    EXPECT_EQ(res.outputs(0).contents().fp32_contents_size(), raw ? 0 : 2);
    EXPECT_EQ(Fp32Output(res), (std::vector<float>{6, 15}));
  }
}

TEST_F(GrpcFrontendTest, EveryNumericDatatypeReachesTheModel) {
  Start();
  struct Case {
    std::string datatype;
    std::function<void(inference::InferTensorContents&)> fill;  // typed contents, or
    std::string raw;                                            // raw bytes when non-empty
    float want;
  };
  auto raw16 = [](std::initializer_list<float> v) {
    std::string out;
    for (float f : v) {
      uint16_t h = FloatToHalf(f);
      out.append(reinterpret_cast<const char*>(&h), 2);
    }
    return out;
  };
  const std::vector<Case> cases = {
      {"BOOL",
       [](auto& c) {
         for (bool v : {true, false, true}) c.add_bool_contents(v);
       },
       "", 2},
      {"INT8",
       [](auto& c) {
         for (int v : {-1, 2, 3}) c.add_int_contents(v);
       },
       "", 4},
      {"INT16",
       [](auto& c) {
         for (int v : {-300, 2, 3}) c.add_int_contents(v);
       },
       "", -295},
      {"INT32",
       [](auto& c) {
         for (int v : {100000, 2, 3}) c.add_int_contents(v);
       },
       "", 100005},
      {"INT64",
       [](auto& c) {
         for (int64_t v : {-5, 2, 3}) c.add_int64_contents(v);
       },
       "", 0},
      {"UINT8",
       [](auto& c) {
         for (uint32_t v : {255u, 1u, 0u}) c.add_uint_contents(v);
       },
       "", 256},
      {"UINT16",
       [](auto& c) {
         for (uint32_t v : {60000u, 1u, 0u}) c.add_uint_contents(v);
       },
       "", 60001},
      {"UINT32",
       [](auto& c) {
         for (uint32_t v : {7u, 1u, 0u}) c.add_uint_contents(v);
       },
       "", 8},
      {"UINT64",
       [](auto& c) {
         for (uint64_t v : {9u, 1u, 0u}) c.add_uint64_contents(v);
       },
       "", 10},
      {"FP64",
       [](auto& c) {
         for (double v : {0.5, 0.25, 1.0}) c.add_fp64_contents(v);
       },
       "", 1.75},
      {"FP16", nullptr, raw16({0.5f, 1.5f, -1.0f}), 1.0f},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.datatype);
    ModelInferRequest req;
    req.set_model_name("m");
    auto* in = req.add_inputs();
    in->set_name("input-0");
    in->set_datatype(c.datatype);
    in->add_shape(1);
    in->add_shape(3);
    if (c.fill) {
      c.fill(*in->mutable_contents());
    } else {
      req.add_raw_input_contents(c.raw);
    }
    ModelInferResponse res;
    grpc::Status s = Infer(req, &res);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(Fp32Output(res), (std::vector<float>{c.want}));
  }
}

TEST_F(GrpcFrontendTest, OutputSelection) {
  Start();
  ModelInferRequest req = Fp32Request("m", {{1, 2, 3}}, false);
  req.add_outputs()->set_name("predict");
  ModelInferResponse res;
  ASSERT_TRUE(Infer(req, &res).ok());
  ASSERT_EQ(res.outputs_size(), 1);
  EXPECT_EQ(res.outputs(0).name(), "predict");
  EXPECT_EQ(Fp32Output(res), (std::vector<float>{6}));

  req.mutable_outputs(0)->set_name("nope");
  grpc::Status s = Infer(req, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "unknown output 'nope'; model 'm' produces 'predict'");
}

TEST_F(GrpcFrontendTest, ErrorsMapToGrpcCodes) {
  Start();
  struct Case {
    std::string name;
    ModelInferRequest req;
    grpc::StatusCode code;
    std::string fragment;
  };
  ModelInferRequest unknown_model = Fp32Request("nope", {{1, 2, 3}}, false);
  ModelInferRequest unknown_version = Fp32Request("m", {{1, 2, 3}}, false);
  unknown_version.set_model_version("7");
  ModelInferRequest raw_short = Fp32Request("m", {{1, 2, 3}}, true);
  raw_short.mutable_raw_input_contents(0)->resize(8);
  ModelInferRequest wrong_input = Fp32Request("m", {{1, 2, 3}}, false, "features");
  ModelInferRequest typed_short = Fp32Request("m", {{1, 2, 3}}, false);
  typed_short.mutable_inputs(0)->mutable_contents()->mutable_fp32_contents()->RemoveLast();
  const std::vector<Case> cases = {
      {"unknown model", unknown_model, grpc::StatusCode::NOT_FOUND,
       "model 'nope' is not served here"},
      {"unknown version", unknown_version, grpc::StatusCode::NOT_FOUND,
       "model 'm' has no version '7'"},
      {"wrong shape", Fp32Request("m", {{1, 2, 3, 4}}, false), grpc::StatusCode::INVALID_ARGUMENT,
       "input 'input-0' has shape [1,4]; model 'm' takes [-1,3]"},
      {"raw contents of the wrong byte size", raw_short, grpc::StatusCode::INVALID_ARGUMENT,
       "raw_input_contents[0]: tensor 'input-0' has 8 bytes; shape [1,3] of FP32 needs 12"},
      {"typed contents of the wrong count", typed_short, grpc::StatusCode::INVALID_ARGUMENT,
       "input 'input-0' has 2 values in fp32_contents; shape [1,3] needs 3"},
      {"unknown input", wrong_input, grpc::StatusCode::INVALID_ARGUMENT,
       "unknown input 'features'; model 'm' takes 'input-0'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ModelInferResponse res;
    grpc::Status s = Infer(c.req, &res);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_NE(s.error_message().find(c.fragment), std::string::npos) << s.error_message();
  }
  // Each bad request left the server serving.
  ModelInferResponse res;
  ASSERT_TRUE(Infer(Fp32Request("m", {{1, 2, 3}}, false), &res).ok());

  runtime_->FailWith(Internal("model exploded"));
  grpc::Status s = Infer(Fp32Request("m", {{1, 2, 3}}, false), &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(s.error_message(), "model exploded");

  // Counted like REST requests: by the HTTP status of the same outcome.
  EXPECT_EQ(Metrics().Requests(200).Value(), 1);
  EXPECT_EQ(Metrics().Requests(400).Value(), 4);
  EXPECT_EQ(Metrics().Requests(500).Value(), 1);
  EXPECT_EQ(service_->metrics().Unknown().Requests(404).Value(), 2);
  EXPECT_EQ(Metrics().inflight->Value(), 0);
  EXPECT_EQ(frontend_->inflight(), 0u);
}

TEST_F(GrpcFrontendTest, QueueFullIsResourceExhausted) {
  ModelOptions model;
  model.batcher.max_queue_size = 1;
  model.batcher.max_batch_size = 1;
  Start(model);
  auto first = HoldWorker();
  // The queue has room for one of these two; the other is refused at once, whichever it is.
  auto a = client_->InferAsync(Fp32Request("m", {{2, 2, 2}}, false));
  auto b = client_->InferAsync(Fp32Request("m", {{3, 3, 3}}, false));
  std::future<InferResult>* refused = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (refused == nullptr && std::chrono::steady_clock::now() < deadline) {
    if (Ready(a, std::chrono::milliseconds(5)))
      refused = &a;
    else if (Ready(b, std::chrono::milliseconds(5)))
      refused = &b;
  }
  ASSERT_NE(refused, nullptr);
  std::future<InferResult>& queued = refused == &a ? b : a;
  InferResult r = refused->get();
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(r.status.error_message(), "queue full: 1 requests waiting");
  runtime_->Open();
  ASSERT_TRUE(Ready(first));
  ASSERT_TRUE(Ready(queued));
  EXPECT_TRUE(first.get().status.ok());
  InferResult q = queued.get();
  ASSERT_TRUE(q.status.ok()) << q.status.error_message();
  EXPECT_EQ(Fp32Output(q.response), (std::vector<float>{refused == &a ? 9.0f : 6.0f}));
}

TEST_F(GrpcFrontendTest, QueuedTooLongIsDeadlineExceeded) {
  CountingClock clock;
  ModelOptions model;
  model.batcher.max_batch_size = 1;
  model.batcher.request_timeout = std::chrono::seconds(1);
  Start(model, true, {}, clock);
  auto first = HoldWorker();
  const size_t before = clock.now_calls();
  auto late = client_->InferAsync(Fp32Request("m", {{2, 2, 2}}, false));
  // The batcher stamps the arrival with Now(); only then does the queue wait start.
  ASSERT_TRUE(clock.WaitNowCalls(before + 1));
  clock.Advance(std::chrono::seconds(2));
  runtime_->Open();
  ASSERT_TRUE(Ready(first));
  ASSERT_TRUE(Ready(late));
  EXPECT_TRUE(first.get().status.ok());
  InferResult r = late.get();
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(r.status.error_message(), "request waited longer than the 1000000 us request timeout");
}

TEST_F(GrpcFrontendTest, MessagesOverTheLimitAreRefused) {
  GrpcFrontendOptions grpc;
  grpc.max_message_bytes = 4096;
  Start({}, true, grpc);
  std::vector<std::vector<float>> rows(400, std::vector<float>{1, 2, 3});  // 4800 raw bytes
  ModelInferResponse res;
  grpc::Status s = Infer(Fp32Request("m", rows, true), &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  rows.resize(300);  // 3600 bytes
  s = Infer(Fp32Request("m", rows, true), &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Fp32Output(res).size(), 300u);
}

TEST_F(GrpcFrontendTest, InferenceWaitsOnTheBatcherNotOnGrpcThreads) {
  Start();
  runtime_->Close();
  std::vector<std::future<InferResult>> calls;
  for (int i = 0; i < 24; ++i) {
    calls.push_back(client_->InferAsync(Fp32Request("m", {{float(i), 0, 0}}, false)));
  }
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (frontend_->inflight() < 24 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(frontend_->inflight(), 24u);
  // Every call is parked while the model is held; other RPCs are still served at once.
  inference::ServerLiveResponse live;
  ASSERT_TRUE(
      client_
          ->Call(&Stub::ServerLive, inference::ServerLiveRequest{}, &live, std::chrono::seconds(5))
          .ok());
  inference::ModelMetadataRequest mm;
  mm.set_name("m");
  inference::ModelMetadataResponse md;
  ASSERT_TRUE(client_->Call(&Stub::ModelMetadata, mm, &md, std::chrono::seconds(5)).ok());
  EXPECT_EQ(Metrics().inflight->Value(), 24);
  runtime_->Open();
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(Ready(calls[i]));
    InferResult r = calls[i].get();
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(Fp32Output(r.response), (std::vector<float>{float(i)}));
  }
  EXPECT_EQ(frontend_->inflight(), 0u);
}

TEST_F(GrpcFrontendTest, ShutdownLetsAcceptedCallsFinishAndRefusesNewOnes) {
  GrpcFrontendOptions grpc;
  grpc.refuse_period = std::chrono::milliseconds(0);
  Start({}, true, grpc);
  auto accepted = HoldWorker(2);
  frontend_->BeginShutdown(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  // While an accepted call runs, the frontend answers new calls itself: always UNAVAILABLE,
  // never gRPC's CANCELLED for calls that race its shutdown. Other RPCs are still answered.
  for (int i = 0; i < 20; ++i) {
    GrpcTestClient fresh(frontend_->port());
    ModelInferResponse res;
    grpc::Status refused = fresh.Infer(Fp32Request("m", {{1, 2, 3}}, true), &res);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
    EXPECT_EQ(refused.error_message(), "the server is shutting down");
    inference::ServerLiveResponse live;
    EXPECT_TRUE(fresh.Call(&Stub::ServerLive, inference::ServerLiveRequest{}, &live).ok());
  }
  EXPECT_EQ(Metrics().Requests(503).Value(), 20);
  EXPECT_FALSE(Ready(accepted, std::chrono::milliseconds(0)));
  runtime_->Open();
  ASSERT_TRUE(Ready(accepted));
  InferResult r = accepted.get();
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(Fp32Output(r.response), (std::vector<float>{6}));
  EXPECT_TRUE(frontend_->WaitShutdown());
  EXPECT_TRUE(frontend_->WaitShutdown());  // idempotent
  // Shut down: the port is closed.
  GrpcTestClient after(frontend_->port());
  inference::ServerLiveResponse live;
  EXPECT_EQ(after.Call(&Stub::ServerLive, inference::ServerLiveRequest{}, &live,
                       std::chrono::seconds(2))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcFrontendTest, RefusesForTheRefusePeriodBeforeTheServerShutsDown) {
  GrpcFrontendOptions grpc;
  grpc.refuse_period = std::chrono::seconds(30);
  Start({}, true, grpc);
  frontend_->BeginShutdown(std::chrono::steady_clock::now() + std::chrono::seconds(60));
  // Nothing is in flight, yet the server keeps routing calls to the frontend, which refuses them
  // cleanly, until the period ends; a closer deadline cuts it short.
  GrpcTestClient fresh(frontend_->port());
  for (int i = 0; i < 5; ++i) {
    ModelInferResponse res;
    grpc::Status refused = fresh.Infer(Fp32Request("m", {{1, 2, 3}}, true), &res);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(refused.error_message(), "the server is shutting down");
  }
  frontend_->BeginShutdown(std::chrono::steady_clock::now());
  auto waited = std::async(std::launch::async, [&] { return frontend_->WaitShutdown(); });
  ASSERT_TRUE(Ready(waited));
  EXPECT_TRUE(waited.get());
}

TEST_F(GrpcFrontendTest, ShutdownDeadlineCancelsWhatIsStillRunning) {
  Start();
  auto stuck = HoldWorker();
  auto clean = std::async(std::launch::async, [&] {
    return frontend_->Shutdown(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
  });
  // The client hears of the cancellation while the model still holds the request.
  ASSERT_TRUE(Ready(stuck));
  InferResult r = stuck.get();
  EXPECT_FALSE(r.status.ok());
  EXPECT_FALSE(Ready(clean, std::chrono::milliseconds(0)));  // waits for the model to let go
  runtime_->Open();
  ASSERT_TRUE(Ready(clean));
  EXPECT_FALSE(clean.get());
  EXPECT_EQ(frontend_->inflight(), 0u);
}

TEST_F(GrpcFrontendTest, APortInUseIsAnError) {
  Start();
  GrpcFrontendOptions again;
  again.address = "127.0.0.1";
  again.port = frontend_->port();
  auto second = GrpcFrontend::Create(again, *service_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos);

  GrpcFrontendOptions bad;
  bad.max_message_bytes = 0;
  EXPECT_EQ(GrpcFrontend::Create(bad, *service_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::dataplane
