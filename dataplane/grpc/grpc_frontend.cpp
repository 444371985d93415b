#include "dataplane/grpc/grpc_frontend.h"

#include <grpc/grpc.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>

#include "dataplane/grpc/grpc_address.h"
#include "dataplane/grpc/grpc_codec.h"
#include "dataplane/grpc/grpc_predict_v2.grpc.pb.h"

namespace sluice::dataplane {

namespace {

grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace

class GrpcFrontend::Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  Service(GrpcFrontend& owner, InferenceService& service) : owner_(owner), service_(service) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return Answer(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(service_.ready());
    return Answer(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    auto found = service_.FindModel(request->name(), request->version());
    if (!found.ok()) return Answer(context, ToGrpcStatus(found.status()));
    response->set_ready((*found)->ready() && !service_.draining());
    return Answer(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    response->set_name(service_.options().server_name);
    response->set_version(service_.options().server_version);
    for (const auto& e : owner_.options_.extensions) response->add_extensions(e);
    return Answer(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    auto found = service_.FindModel(request->name(), request->version());
    if (!found.ok()) return Answer(context, ToGrpcStatus(found.status()));
    const Model& model = **found;
    const dataplane::ModelMetadata* md = model.metadata();
    if (md == nullptr) {
      return Answer(context, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                          "model '" + model.name() + "' version " +
                                              model.version() + " is still loading"));
    }
    ToGrpcMetadata(*md, model.name(), service_.Versions(model.name()), *response);
    return Answer(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto found = service_.FindModel(request->model_name(), request->model_version());
    if (!found.ok()) {
      service_.metrics().Unknown().Requests(HttpStatusFor(found.status())).Increment();
      reactor->Finish(ToGrpcStatus(found.status()));
      return reactor;
    }
    Model& model = **found;
    ServerMetrics::Model* metrics = &model.metrics();
    if (!owner_.CallStarted()) {
      const Status refused = Unavailable("the server is shutting down");
      metrics->Requests(HttpStatusFor(refused)).Increment();
      reactor->Finish(ToGrpcStatus(refused));
      return reactor;
    }
    metrics->inflight->Increment();
    const auto start = std::chrono::steady_clock::now();
    GrpcFrontend* owner = &owner_;
    // Runs exactly once. The frontend outlives the call (its shutdown waits for every call to be
    // answered), but nothing may touch it after Finish, which can let that shutdown complete.
    auto finish = [owner, reactor, metrics, start](const Status& status) {
      metrics->Requests(HttpStatusFor(status)).Increment();
      metrics->request_duration->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      metrics->inflight->Decrement();
      owner->CallFinished();
      reactor->Finish(ToGrpcStatus(status));
    };

    auto decoded = FromGrpcRequest(*request);
    if (!decoded.ok()) {
      SPDLOG_LOGGER_DEBUG(spdlog::default_logger_raw(), "model={} version={} bad gRPC request: {}",
                          model.name(), model.version(), decoded.status().message());
      finish(decoded.status());
      return reactor;
    }
    decoded->model_name = model.name();
    decoded->model_version = model.version();
    // The decoded tensors view `request`, which gRPC keeps until Finish; Infer answers first.
    service_.Infer(model, std::move(decoded).value(),
                   [request, response, finish](Result<InferResponse> result) {
                     finish(result.ok()
                                ? ToGrpcResponse(std::move(result).value(), *request, *response)
                                : result.status());
                   });
    return reactor;
  }

 private:
  GrpcFrontend& owner_;
  InferenceService& service_;
};

GrpcFrontend::GrpcFrontend(const GrpcFrontendOptions& options, InferenceService& service)
    : options_(options), grpc_service_(std::make_unique<Service>(*this, service)) {}

Result<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Create(const GrpcFrontendOptions& options,
                                                           InferenceService& service) {
  std::unique_ptr<GrpcFrontend> frontend(new GrpcFrontend(options, service));
  ASSIGN_OR_RETURN(GrpcListener listener,
                   StartGrpcListener(options.address, options.port, options.max_message_bytes,
                                     [&](grpc::ServerBuilder& builder) {
                                       builder.RegisterService(frontend->grpc_service_.get());
                                     },
                                     options.credentials));
  frontend->server_ = std::move(listener.server);
  frontend->port_ = listener.port;
  return frontend;
}

GrpcFrontend::~GrpcFrontend() {
  if (server_) WaitShutdown();
}

bool GrpcFrontend::CallStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutdown_begun_) return false;
  ++inflight_;
  return true;
}

void GrpcFrontend::CallFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--inflight_ == 0) idle_cv_.notify_all();
}

size_t GrpcFrontend::inflight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return inflight_;
}

void GrpcFrontend::BeginShutdown(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!server_) return;
  if (shutdown_begun_) {
    if (deadline < deadline_) {
      deadline_ = deadline;
      idle_cv_.notify_all();
    }
    return;
  }
  shutdown_begun_ = true;
  deadline_ = deadline;
  // On its own thread, so the HTTP side drains at the same time.
  shutdown_thread_ = std::thread([this] { ShutdownWhenIdle(); });
}

void GrpcFrontend::ShutdownWhenIdle() {
  using std::chrono::steady_clock;
  const auto refuse_until = steady_clock::now() + options_.refuse_period;
  steady_clock::time_point deadline;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (inflight_ != 0 && steady_clock::now() < deadline_) idle_cv_.wait_until(lock, deadline_);
    clean_ = inflight_ == 0;
    // Keep answering late callers ourselves for the rest of the refuse period.
    while (steady_clock::now() < std::min(refuse_until, deadline_)) {
      idle_cv_.wait_until(lock, std::min(refuse_until, deadline_));
    }
    deadline = deadline_;
  }
  // Blocks until every call has finished; cancels what is still running at the deadline.
  server_->Shutdown(GrpcDeadline(deadline));
}

bool GrpcFrontend::WaitShutdown() {
  std::lock_guard<std::mutex> waiting(wait_mu_);
  bool begun = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_waited_ || !server_) return clean_;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    begun = shutdown_begun_;
  }
  if (!begun) BeginShutdown(std::chrono::steady_clock::now());
  shutdown_thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_waited_ = true;
  return clean_;
}

}  // namespace sluice::dataplane
