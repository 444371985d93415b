#pragma once

// A gRPC backend for the router's tests: a real grpc::Server on 127.0.0.1 serving
// inference.GRPCInferenceService, whose ModelInfer answers with its own name and echoes what the
// router passed along, or fails, or holds the call until released or cancelled.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "dataplane/grpc/grpc_predict_v2.grpc.pb.h"

namespace sluice::testing {

class GrpcTestBackend {
 public:
  // Answers: model_name = name, id = the request's id, model_version = the caller's "x-caller"
  // metadata; initial metadata x-backend: name, trailing metadata x-trailer: name.
  explicit GrpcTestBackend(std::string name) : service_(*this), name_(std::move(name)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~GrpcTestBackend() { Stop(); }

  void Stop() {
    Release();
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
  }

  uint16_t port() const { return static_cast<uint16_t>(port_); }
  const std::string& name() const { return name_; }

  // From now on, ModelInfer fails with this status (OK: answers normally).
  void FailWith(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  // From now on, ModelInfer waits until Release() or until the call is cancelled.
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    AnswerHeld();
  }

  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  int cancelled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }
  // Waits until `pred(calls, cancelled, held)` holds; false after `within`.
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds within = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, within, [&] { return pred(calls_, cancelled_, held_); });
  }
  // The deadline the last call arrived with (system clock; max when none).
  std::chrono::system_clock::time_point last_deadline() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_deadline_;
  }

 private:
  // The callback API: a held call occupies no thread, and its cancellation is a reaction rather
  // than something to poll for.
  class Call final : public grpc::ServerUnaryReactor {
   public:
    Call(GrpcTestBackend& owner, grpc::CallbackServerContext* context,
         const inference::ModelInferRequest* request, inference::ModelInferResponse* response)
        : owner_(owner), context_(context), request_(request), response_(response) {}
    void OnCancel() override { owner_.Cancelled(this); }
    void OnDone() override { delete this; }

    // Answers as the backend is told to; the last use of `this`.
    void Answer(const grpc::Status& fail) {
      context_->AddInitialMetadata("x-backend", owner_.name_);
      context_->AddTrailingMetadata("x-trailer", owner_.name_);
      if (!fail.ok()) {
        Finish(fail);
        return;
      }
      response_->set_model_name(owner_.name_);
      response_->set_id(request_->id());
      auto it = context_->client_metadata().find("x-caller");
      if (it != context_->client_metadata().end()) {
        response_->set_model_version(std::string(it->second.data(), it->second.size()));
      }
      Finish(grpc::Status::OK);
    }

   private:
    GrpcTestBackend& owner_;
    grpc::CallbackServerContext* const context_;
    const inference::ModelInferRequest* const request_;
    inference::ModelInferResponse* const response_;
  };

  class Service final : public inference::GRPCInferenceService::CallbackService {
   public:
    explicit Service(GrpcTestBackend& owner) : owner_(owner) {}
    grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                         const inference::ModelInferRequest* request,
                                         inference::ModelInferResponse* response) override {
      auto* call = new Call(owner_, context, request, response);
      owner_.Arrived(call, context->deadline());
      return call;
    }

   private:
    GrpcTestBackend& owner_;
  };

  void Arrived(Call* call, std::chrono::system_clock::time_point deadline) {
    grpc::Status fail;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      last_deadline_ = deadline;
      cv_.notify_all();
      if (hold_) {
        held_calls_.insert(call);
        held_ = static_cast<int>(held_calls_.size());
        return;
      }
      fail = fail_;
    }
    call->Answer(fail);
  }

  void Cancelled(Call* call) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (held_calls_.erase(call) == 0) return;  // answered already
      held_ = static_cast<int>(held_calls_.size());
      ++cancelled_;
      cv_.notify_all();
    }
    call->Finish(grpc::Status::CANCELLED);
  }

  void AnswerHeld() {
    std::set<Call*> release;
    grpc::Status fail;
    {
      std::lock_guard<std::mutex> lock(mu_);
      release.swap(held_calls_);
      held_ = 0;
      fail = fail_;
      cv_.notify_all();
    }
    for (Call* call : release) call->Answer(fail);
  }

  Service service_;
  const std::string name_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  grpc::Status fail_;  // guarded by mu_
  bool hold_ = false;  // guarded by mu_
  int held_ = 0;       // guarded by mu_; held_calls_.size()
  std::set<Call*> held_calls_;  // guarded by mu_
  int calls_ = 0;      // guarded by mu_
  int cancelled_ = 0;  // guarded by mu_
  std::chrono::system_clock::time_point last_deadline_;  // guarded by mu_
};

}  // namespace sluice::testing
