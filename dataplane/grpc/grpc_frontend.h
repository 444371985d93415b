#pragma once

// The gRPC frontend of the Open Inference Protocol: inference.GRPCInferenceService
// (grpc_predict_v2.proto) over InferenceService, the same core the REST frontend adapts.
//
//   ServerLive      live while the process serves
//   ServerReady     InferenceService::ready() (false while a model loads and while draining)
//   ModelReady      the model's ready state, false while draining; NOT_FOUND for an unknown model
//   ServerMetadata  name, version and extensions from the service's options
//   ModelMetadata   versions, platform and tensors; UNAVAILABLE while the model loads
//   ModelInfer      inference; errors as grpc_codec.h's GrpcCodeFor says; UNAVAILABLE once a
//                   shutdown has begun
//
// ModelReady for a model that is not served answers NOT_FOUND, as REST answers 404 and MLServer
// answers NOT_FOUND; Triton answers OK with ready=false instead. An error lets a client tell a
// wrong name from a model that is still loading (OK, ready=false).
//
// ModelInfer uses gRPC's callback API: the handler hands the request to InferenceService::Infer
// and returns at once, and the answer is sent from whichever thread completes the inference (the
// model's batcher thread), so no gRPC thread waits on a model. Input tensors view the request
// message, which gRPC keeps alive until the call is answered. Calls are counted in the same
// sluice_server_* series as REST requests (code label: the HTTP status of the same outcome), so
// the error rate and in-flight gauge cover both protocols.

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/status.h"
#include "dataplane/server/inference_service.h"

namespace sluice::dataplane {

struct GrpcFrontendOptions {
  // An IPv4 or IPv6 address (brackets optional) or a host name.
  std::string address = "0.0.0.0";
  int port = 0;  // 0 picks a free port; see GrpcFrontend::port()
  // Largest message accepted or sent. A larger request is refused by gRPC with
  // RESOURCE_EXHAUSTED before it is decoded. At most INT32_MAX (a gRPC limit).
  int64_t max_message_bytes = int64_t{64} << 20;
  // Listed by ServerMetadata.
  std::vector<std::string> extensions;
  // After BeginShutdown the frontend itself answers new ModelInfer calls with UNAVAILABLE, for at
  // least this long (never past the shutdown deadline) and until the accepted calls are answered;
  // only then does the gRPC server shut down. A call that reaches gRPC while it shuts down fails
  // with CANCELLED, which clients must not retry; UNAVAILABLE they may retry elsewhere.
  std::chrono::milliseconds refuse_period{500};
  // TLS (MakeGrpcServerCredentials); nullptr: plain text.
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

// Thread-safe. `service` must outlive the frontend; the frontend never calls Stop on it.
class GrpcFrontend {
 public:
  // Binds and starts serving. Unavailable when the address cannot be bound (a port in use is an
  // error: the listener never shares a port), InvalidArgument for bad options.
  static Result<std::unique_ptr<GrpcFrontend>> Create(const GrpcFrontendOptions& options,
                                                      InferenceService& service);
  // Shuts down with an immediate deadline unless already shut down.
  ~GrpcFrontend();

  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  uint16_t port() const { return port_; }

  // Stops accepting calls at once: new ModelInfer calls are answered UNAVAILABLE; calls already
  // accepted keep running until `deadline`, then gRPC cancels them. The gRPC server shuts down
  // (closes its port, refuses every call) once they are answered and options.refuse_period has
  // passed, or at `deadline`. Returns without waiting. A later call can only bring the deadline
  // closer (e.g. to now, on a second signal), until the gRPC server's own shutdown has started.
  void BeginShutdown(std::chrono::steady_clock::time_point deadline);
  // Waits until the shutdown has finished (starting one with an immediate deadline if none was
  // begun). True when every accepted call was answered before the deadline. Idempotent.
  bool WaitShutdown();
  bool Shutdown(std::chrono::steady_clock::time_point deadline) {
    BeginShutdown(deadline);
    return WaitShutdown();
  }

  // ModelInfer calls accepted and not yet answered.
  size_t inflight() const;

 private:
  class Service;

  GrpcFrontend(const GrpcFrontendOptions& options, InferenceService& service);
  // False once a shutdown has begun: the call is to be refused.
  bool CallStarted();
  void CallFinished();
  void ShutdownWhenIdle();

  const GrpcFrontendOptions options_;
  std::unique_ptr<Service> grpc_service_;
  // Declared after grpc_service_: the server goes first, and it references the service.
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;

  mutable std::mutex mu_;
  // Notified when inflight_ drops to 0 and when deadline_ moves closer.
  std::condition_variable idle_cv_;
  size_t inflight_ = 0;                             // guarded by mu_
  bool shutdown_begun_ = false;                     // guarded by mu_; calls are refused once set
  bool shutdown_waited_ = false;                    // guarded by mu_
  bool clean_ = true;                               // guarded by mu_
  std::chrono::steady_clock::time_point deadline_;  // guarded by mu_
  std::thread shutdown_thread_;  // started once under mu_; joined by WaitShutdown
  std::mutex wait_mu_;           // serialises WaitShutdown callers
};

}  // namespace sluice::dataplane
