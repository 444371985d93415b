#include "dataplane/router/grpc_proxy.h"

#include <fmt/format.h>
#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/byte_buffer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <set>
#include <vector>

#include "dataplane/grpc/grpc_address.h"
#include "lib/api/metric_names.h"

namespace sluice::dataplane {

namespace {

// Keys gRPC sets itself or that belong to one HTTP/2 hop; everything else is the caller's.
bool ForwardedKey(std::string_view key) {
  if (key.empty() || key.front() == ':') return false;
  if (key.substr(0, 5) == "grpc-") return false;
  return key != "user-agent" && key != "te" && key != "content-type" && key != "host" &&
         key != "connection";
}

std::string_view View(const grpc::string_ref& s) {
  return {s.data(), s.size()};
}

std::string Lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void CopyCallerMetadata(const grpc::ServerContextBase& from, grpc::ClientContext& to) {
  for (const auto& [key, value] : from.client_metadata()) {
    if (ForwardedKey(View(key))) to.AddMetadata(std::string(View(key)), std::string(View(value)));
  }
}

// The upstream deadline: the caller's, capped at `timeout` from now.
std::chrono::system_clock::time_point UpstreamDeadline(const grpc::ServerContextBase& caller,
                                                       std::chrono::milliseconds timeout) {
  const auto capped = std::chrono::system_clock::now() + timeout;
  return std::min(caller.deadline(), capped);
}

}  // namespace

CodeClass ClassifyGrpcStatus(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return CodeClass::k2xx;
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return CodeClass::k4xx;
    default:
      return CodeClass::k5xx;
  }
}

// One forwarded call. Lives from CreateReactor to OnDone; OnDone comes after Finish, which comes
// after the upstream call completed (or was never started), so nothing outlives it.
class GrpcProxy::Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(GrpcProxy& proxy, grpc::GenericCallbackServerContext* context)
      : proxy_(proxy), context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      if (++messages_ == 1) {
        // Read on to the caller's half-close, which a unary call sends with its message.
        StartRead(&extra_);
        return;
      }
      Finish(grpc::Status(
          grpc::StatusCode::UNIMPLEMENTED,
          "sluice-router forwards unary calls only; " + context_->method() + " sent a stream"));
      return;
    }
    if (context_->IsCancelled()) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    if (messages_ == 0) {
      Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request message"));
      return;
    }
    Forward();
  }

  void OnCancel() override {
    // Thread-safe, and effective even before the upstream call has started. A retry's context
    // replaces the first one under mu_, so the cancellation reaches whichever is current.
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    upstream_context_->TryCancel();
  }

  void OnDone() override {
    // The upstream context holds a reference to its channel; it goes before the proxy hears that
    // the call is over, so no channel outlives the proxy's shutdown on a gRPC callback thread.
    GrpcProxy& proxy = proxy_;
    const bool counted = counted_;
    delete this;
    if (counted) proxy.CallFinished();
  }

  const grpc::ByteBuffer& request() const { return request_; }
  const grpc::GenericCallbackServerContext& context() const { return *context_; }

 private:
  void Forward() {
    if (!proxy_.CallStarted()) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "sluice-router is shutting down"));
      return;
    }
    counted_ = true;
    table_ = proxy_.state_.Load();
    const std::string& md = proxy_.options_.model_deployment;
    if (!table_ || !table_->routable()) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          fmt::format("no revision of {} has a ready endpoint", md)));
      return;
    }
    std::string_view sticky;
    if (!table_->sticky_header().empty()) {
      const auto& metadata = context_->client_metadata();
      auto it = metadata.find(Lowercase(table_->sticky_header()));
      if (it != metadata.end()) sticky = View(it->second);
    }
    revision_ = table_->Route(sticky);
    if (revision_ < 0) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          fmt::format("no revision of {} has a ready endpoint", md)));
      return;
    }
    const auto& rev = table_->revision(revision_);
    const Endpoint& endpoint = table_->PickEndpoint(revision_);
    proxy_.budget_->Deposit();
    if (endpoint.grpc_target.empty()) {
      if (rev.metrics != nullptr) rev.metrics->CountRequest(CodeClass::kError);
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          fmt::format("revision {} of {} has no gRPC port", rev.name, md)));
      return;
    }
    CopyCallerMetadata(*context_, *upstream_context_);
    upstream_context_->set_deadline(UpstreamDeadline(*context_, proxy_.options_.upstream_timeout));
    start_ = std::chrono::steady_clock::now();
    proxy_.metrics_.inflight().Increment();
    grpc::GenericStub stub(proxy_.ChannelFor(endpoint));
    stub.UnaryCall(upstream_context_.get(), context_->method(), grpc::StubOptions(), &request_,
                   &response_, [this](grpc::Status status) { OnUpstreamDone(std::move(status)); });
    // Copies go out after the primary is on its way, so they never delay it.
    proxy_.StartMirrors(table_, revision_, context_->method(), *this);
  }

  void OnUpstreamDone(grpc::Status status) {
    const auto& rev = table_->revision(revision_);
    const auto now = std::chrono::steady_clock::now();
    const std::chrono::duration<double> elapsed = now - start_;
    const CodeClass code = ClassifyGrpcStatus(status.error_code());
    const bool failed = code == CodeClass::k5xx;
    if (rev.metrics != nullptr) {
      rev.metrics->duration->Observe(elapsed.count());
      rev.metrics->CountRequest(code);
    }
    if (retried_from_ >= 0) {
      proxy_.metrics_.Retry(table_->revision(retried_from_).name, rev.name, CodeClassLabel(code))
          .Increment();
    } else {
      if (rev.guard && rev.guard->Record(failed, now)) {
        const auto [requests, errors] = rev.guard->Counts(now);
        spdlog::warn(
            "md={} rev={} canary guard tripped: {} errors in the last {} requests; its requests "
            "go to the stable revision until the weights change",
            proxy_.options_.model_deployment, rev.name, errors, requests);
      }
      if (failed && Retry(rev)) return;
    }
    proxy_.metrics_.inflight().Decrement();
    for (const auto& [key, value] : upstream_context_->GetServerInitialMetadata()) {
      if (ForwardedKey(View(key))) {
        context_->AddInitialMetadata(std::string(View(key)), std::string(View(value)));
      }
    }
    for (const auto& [key, value] : upstream_context_->GetServerTrailingMetadata()) {
      if (ForwardedKey(View(key))) {
        context_->AddTrailingMetadata(std::string(View(key)), std::string(View(value)));
      }
    }
    if (!proxy_.options_.revision_header.empty()) {
      context_->AddInitialMetadata(Lowercase(proxy_.options_.revision_header), rev.name);
    }
    if (!status.ok() && spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("md={} rev={} grpc {} {}: {}", proxy_.options_.model_deployment, rev.name,
                    context_->method(), static_cast<int>(status.error_code()),
                    status.error_message());
    }
    // The last use of `this`: OnDone (and its delete) may follow on another thread.
    if (status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(status);
    }
  }

  // The canary failed: the same request message goes once to the stable revision, on a fresh
  // upstream context, within the caller's deadline (capped as the first attempt was) and the
  // retry budget. True when the retry took over the call.
  bool Retry(const RoutingTable::Revision& rev) {
    const int target = table_->RetryTarget(revision_);
    if (target < 0) return false;
    const auto& stable = table_->revision(target);
    const Endpoint& endpoint = table_->PickEndpoint(target);
    if (endpoint.grpc_target.empty()) return false;
    const auto deadline = UpstreamDeadline(*context_, proxy_.options_.upstream_timeout);
    if (deadline - std::chrono::system_clock::now() < std::chrono::milliseconds(1)) {
      proxy_.metrics_.Retry(rev.name, stable.name, api::kRetryExpired).Increment();
      return false;
    }
    if (!proxy_.budget_->TryWithdraw()) {
      proxy_.metrics_.Retry(rev.name, stable.name, api::kRetryDenied).Increment();
      return false;
    }
    auto retry_context = std::make_unique<grpc::ClientContext>();
    CopyCallerMetadata(*context_, *retry_context);
    retry_context->set_deadline(deadline);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return false;  // the caller gave up: answer with the canary's failure
      // The first context's call is complete; it is kept until the call ends (OnCancel may hold
      // a pointer to it only under mu_).
      previous_context_ = std::move(upstream_context_);
      upstream_context_ = std::move(retry_context);
    }
    retried_from_ = revision_;
    revision_ = target;
    response_.Clear();
    start_ = std::chrono::steady_clock::now();
    grpc::GenericStub stub(proxy_.ChannelFor(endpoint));
    stub.UnaryCall(upstream_context_.get(), context_->method(), grpc::StubOptions(), &request_,
                   &response_, [this](grpc::Status status) { OnUpstreamDone(std::move(status)); });
    return true;
  }

  GrpcProxy& proxy_;
  grpc::GenericCallbackServerContext* const context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
  grpc::ByteBuffer response_;
  std::mutex mu_;
  bool cancelled_ = false;  // guarded by mu_
  // The current upstream attempt's context (replaced by a retry's under mu_), and the first
  // attempt's after a retry.
  std::unique_ptr<grpc::ClientContext> upstream_context_ =
      std::make_unique<grpc::ClientContext>();  // guarded by mu_ when replaced
  std::unique_ptr<grpc::ClientContext> previous_context_;
  std::shared_ptr<const RoutingTable> table_;
  int revision_ = -1;
  int retried_from_ = -1;  // >= 0: the attempt in flight is the retry of that revision's failure
  int messages_ = 0;       // touched by OnReadDone only, which gRPC never runs concurrently
  bool counted_ = false;   // CallStarted said yes; set before any reply
  std::chrono::steady_clock::time_point start_;
};

// A copy of a call to a mirrored revision; its answer is counted and dropped.
class GrpcProxy::MirrorCall {
 public:
  MirrorCall(GrpcProxy& proxy, std::shared_ptr<const RoutingTable> table, int revision)
      : proxy_(proxy), table_(std::move(table)), revision_(revision) {}

  void Start(std::shared_ptr<grpc::Channel> channel, const std::string& method,
             const grpc::GenericCallbackServerContext& caller, const grpc::ByteBuffer& request) {
    CopyCallerMetadata(caller, context_);
    context_.set_deadline(UpstreamDeadline(caller, proxy_.options_.upstream_timeout));
    request_ = request;  // shares the caller's slices, no copy of the bytes
    method_ = method;    // the copy may outlive the caller's call
    grpc::GenericStub stub(std::move(channel));
    stub.UnaryCall(&context_, method_, grpc::StubOptions(), &request_, &response_,
                   [this](grpc::Status status) {
                     const auto& rev = table_->revision(revision_);
                     if (rev.metrics != nullptr) {
                       rev.metrics->CountMirror(ClassifyGrpcStatus(status.error_code()));
                     }
                     proxy_.MirrorFinished(this);
                   });
  }

  void Cancel() { context_.TryCancel(); }

 private:
  GrpcProxy& proxy_;
  std::shared_ptr<const RoutingTable> table_;
  const int revision_;
  grpc::ClientContext context_;
  std::string method_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class GrpcProxy::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(GrpcProxy& proxy) : proxy_(proxy) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new Call(proxy_, context);
  }

 private:
  GrpcProxy& proxy_;
};

GrpcProxy::GrpcProxy(GrpcProxyOptions options, const RoutingState& state, RouterMetrics& metrics)
    : options_(std::move(options)),
      state_(state),
      metrics_(metrics),
      budget_(options_.retry_budget ? options_.retry_budget : std::make_shared<RetryBudget>()),
      service_(std::make_unique<Service>(*this)) {}

Result<std::unique_ptr<GrpcProxy>> GrpcProxy::Create(GrpcProxyOptions options,
                                                     const RoutingState& state,
                                                     RouterMetrics& metrics) {
  if (options.upstream_timeout.count() <= 0 || options.connect_timeout.count() <= 0) {
    return InvalidArgument("gRPC: the upstream and connect timeouts must be positive");
  }
  std::unique_ptr<GrpcProxy> proxy(new GrpcProxy(std::move(options), state, metrics));
  const GrpcProxyOptions& o = proxy->options_;
  ASSIGN_OR_RETURN(GrpcListener listener,
                   StartGrpcListener(
                       o.address, o.port, o.max_message_bytes,
                       [&](grpc::ServerBuilder& builder) {
                         builder.RegisterCallbackGenericService(proxy->service_.get());
                       },
                       o.credentials));
  proxy->server_ = std::move(listener.server);
  proxy->port_ = listener.port;
  return proxy;
}

GrpcProxy::~GrpcProxy() {
  if (server_) Shutdown(std::chrono::steady_clock::now());
  std::vector<std::shared_ptr<MirrorCall>> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [raw, call] : mirrors_) pending.push_back(call);
  }
  for (const auto& call : pending) call->Cancel();
  pending.clear();
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return mirrors_live_ == 0; });
}

bool GrpcProxy::CallStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return false;
  ++inflight_;
  return true;
}

void GrpcProxy::CallFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--inflight_ == 0) idle_cv_.notify_all();
}

bool GrpcProxy::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

int64_t GrpcProxy::inflight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return inflight_;
}

bool GrpcProxy::Shutdown(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (shut_down_) return clean_;
    shutting_down_ = true;
    idle_cv_.wait_until(lock, deadline, [&] { return inflight_ == 0; });
    clean_ = inflight_ == 0;
  }
  // Cancels whatever still runs (at a past deadline: at once) and waits for it to end.
  server_->Shutdown(GrpcDeadline(deadline));
  server_->Wait();
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  return clean_;
}

size_t GrpcProxy::channels() const {
  std::lock_guard<std::mutex> lock(channels_mu_);
  return channels_.size();
}

std::shared_ptr<grpc::Channel> GrpcProxy::ChannelFor(const Endpoint& endpoint) {
  std::shared_ptr<const RoutingTable> current = state_.Load();
  std::lock_guard<std::mutex> lock(channels_mu_);
  if (current && channels_table_.lock() != current) {
    channels_table_ = current;
    std::set<std::string_view> live;
    for (const auto& r : current->revisions()) {
      for (const Endpoint& e : r->endpoints) live.insert(e.grpc_target);
    }
    for (auto it = channels_.begin(); it != channels_.end();) {
      it = live.count(it->first) != 0 ? std::next(it) : channels_.erase(it);
    }
  }
  auto& channel = channels_[endpoint.grpc_target];
  if (!channel) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
    // One attempt per call: a retried inference could run twice.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    // A connection attempt gives up after connect_timeout, and a backend that went away and came
    // back (a restarted pod keeps its address rarely, but a flapping one does) is retried soon.
    const int connect_ms =
        static_cast<int>(std::min<int64_t>(options_.connect_timeout.count(), INT_MAX));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, connect_ms);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(connect_ms, 100));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, std::max(connect_ms, 1000));
    const bool tls = options_.upstream_credentials && (endpoint.tls || options_.upstream_tls_all);
    if (tls && !options_.upstream_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.upstream_server_name);
    }
    channel = grpc::CreateCustomChannel(
        endpoint.grpc_target,
        tls ? options_.upstream_credentials : grpc::InsecureChannelCredentials(), args);
  }
  return channel;
}

void GrpcProxy::StartMirrors(const std::shared_ptr<const RoutingTable>& table, int primary,
                             const std::string& method, const Call& call) {
  const auto& revisions = table->revisions();
  for (size_t i = 0; i < revisions.size(); ++i) {
    const RoutingTable::Revision& r = *revisions[i];
    if (static_cast<int>(i) == primary || !r.mirror || !r.mirror->Take()) continue;
    const Endpoint& endpoint = table->PickEndpoint(static_cast<int>(i));
    if (endpoint.grpc_target.empty()) {
      if (r.metrics != nullptr) r.metrics->CountMirror(CodeClass::kError);
      continue;
    }
    auto mirror = std::make_shared<MirrorCall>(*this, table, static_cast<int>(i));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (mirrors_.size() >= options_.max_mirror_inflight || shutting_down_) {
        if (r.metrics != nullptr) r.metrics->mirror_dropped->Increment();
        continue;
      }
      mirrors_.emplace(mirror.get(), mirror);
      ++mirrors_live_;
    }
    // The map keeps the copy alive until MirrorFinished; `mirror` may be its last owner after.
    MirrorCall* raw = mirror.get();
    mirror.reset();
    raw->Start(ChannelFor(endpoint), method, call.context(), call.request());
  }
}

void GrpcProxy::MirrorFinished(MirrorCall* call) {
  std::shared_ptr<MirrorCall> last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = mirrors_.find(call);
    if (it != mirrors_.end()) {
      last = std::move(it->second);
      mirrors_.erase(it);
    }
  }
  // Destroys the copy (unless the destructor holds it to cancel it) and with it its context's
  // channel reference, before the destructor may go on.
  last.reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (--mirrors_live_ == 0) idle_cv_.notify_all();
}

}  // namespace sluice::dataplane
