#pragma once

// A gRPC client for tests: the generated inference.GRPCInferenceService stub on a loopback
// channel, with blocking calls and a ModelInfer that answers through a future (so a test can
// keep many calls in flight from one thread).

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/grpc/grpc_predict_v2.grpc.pb.h"

namespace sluice::testing {

struct InferResult {
  grpc::Status status;
  inference::ModelInferResponse response;
};

class GrpcTestClient {
 public:
  explicit GrpcTestClient(uint16_t port, int max_message_bytes = -1) {
    grpc::ChannelArguments args;
    // A fresh connection per client, never shared with another client in the same process.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (max_message_bytes >= 0) args.SetMaxSendMessageSize(max_message_bytes);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  // Waits until every InferAsync call's state is gone. A call's context holds a reference to the
  // channel; were the last one dropped on gRPC's callback thread (where the state dies, after the
  // future is set), gRPC 1.51 would tear down its shared callback queue from one of that queue's
  // own threads and free it under them.
  ~GrpcTestClient() {
    std::unique_lock<std::mutex> lock(live_->mu);
    live_->cv.wait(lock, [&] { return live_->count == 0; });
  }
  GrpcTestClient(const GrpcTestClient&) = delete;
  GrpcTestClient& operator=(const GrpcTestClient&) = delete;

  inference::GRPCInferenceService::Stub& stub() { return *stub_; }

  // Runs `method` on the stub with a fresh context and a deadline.
  template <typename Request, typename Response, typename Method>
  grpc::Status Call(Method method, const Request& request, Response* response,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    return ((*stub_).*method)(&ctx, request, response);
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return Call(&inference::GRPCInferenceService::Stub::ModelInfer, request, response, timeout);
  }

  std::future<InferResult> InferAsync(
      const inference::ModelInferRequest& request,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    struct State {
      explicit State(std::shared_ptr<Live> l) : alive(std::move(l)) {}
      Alive alive;  // first member: destroyed last, after the context
      grpc::ClientContext ctx;
      inference::ModelInferRequest request;
      InferResult result;
      std::promise<InferResult> done;
    };
    auto state = std::make_shared<State>(live_);
    state->request = request;
    state->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    auto future = state->done.get_future();
    stub_->async()->ModelInfer(&state->ctx, &state->request, &state->result.response,
                               [state](grpc::Status s) {
                                 state->result.status = std::move(s);
                                 state->done.set_value(std::move(state->result));
                               });
    return future;
  }

 private:
  struct Live {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;  // guarded by mu
  };
  // Counts one call state from construction to destruction.
  struct Alive {
    explicit Alive(std::shared_ptr<Live> l) : live(std::move(l)) {
      std::lock_guard<std::mutex> lock(live->mu);
      ++live->count;
    }
    ~Alive() {
      std::lock_guard<std::mutex> lock(live->mu);
      if (--live->count == 0) live->cv.notify_all();
    }
    Alive(const Alive&) = delete;
    Alive& operator=(const Alive&) = delete;
    std::shared_ptr<Live> live;
  };

  std::shared_ptr<Live> live_ = std::make_shared<Live>();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

// FP32 rows as one [n, width] input named `input`, typed or raw.
inline inference::ModelInferRequest Fp32Request(const std::string& model,
                                                const std::vector<std::vector<float>>& rows,
                                                bool raw, const std::string& input = "input-0") {
  inference::ModelInferRequest req;
  req.set_model_name(model);
  auto* in = req.add_inputs();
  in->set_name(input);
  in->set_datatype("FP32");
  in->add_shape(static_cast<int64_t>(rows.size()));
  in->add_shape(rows.empty() ? 0 : static_cast<int64_t>(rows[0].size()));
  std::string bytes;
  for (const auto& row : rows) {
    for (float v : row) {
      if (raw) {
        bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
      } else {
        in->mutable_contents()->add_fp32_contents(v);
      }
    }
  }
  if (raw) req.add_raw_input_contents(std::move(bytes));
  return req;
}

// The FP32 values of output `i`, from typed or raw contents, whichever the response used.
inline std::vector<float> Fp32Output(const inference::ModelInferResponse& res, int i = 0) {
  if (res.raw_output_contents_size() > 0) {
    const std::string& raw = res.raw_output_contents(i);
    std::vector<float> out(raw.size() / sizeof(float));
    std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
    return out;
  }
  const auto& f = res.outputs(i).contents().fp32_contents();
  return std::vector<float>(f.begin(), f.end());
}

}  // namespace sluice::testing
