#include "dataplane/server/inference_service.h"

#include <cmath>
#include <cstring>
#include <future>
#include <limits>

namespace sluice::dataplane {

namespace {

template <typename T>
void ConvertRows(const uint8_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

// Checks the request against the model (one input of [n, F] or [F]) and exposes its rows as
// floats: a view of the request's bytes when they already are aligned FP32, else a converted copy
// in `storage`.
Status PrepareRows(const std::string& model, const Runtime& runtime, const InferRequest& request,
                   std::vector<float>& storage, std::span<const float>& rows, size_t& n_rows) {
  const ModelMetadata& md = runtime.metadata();
  const size_t want_inputs = md.inputs.empty() ? 1 : md.inputs.size();
  if (request.inputs.size() != want_inputs) {
    return InvalidArgument("model '" + model + "' takes " + std::to_string(want_inputs) +
                           " input tensor(s), the request has " +
                           std::to_string(request.inputs.size()));
  }
  const Tensor& in = request.inputs[0];
  if (!md.inputs.empty() && in.name() != md.inputs[0].name) {
    return InvalidArgument("unknown input '" + in.name() + "'; model '" + model +
                           "' takes '" + md.inputs[0].name + "'");
  }
  const size_t features = runtime.num_features();
  const auto& shape = in.shape();
  if (shape.size() == 2 && static_cast<uint64_t>(shape[1]) == features) {
    n_rows = static_cast<size_t>(shape[0]);
  } else if (shape.size() == 1 && static_cast<uint64_t>(shape[0]) == features) {
    n_rows = 1;
  } else {
    return InvalidArgument("input '" + in.name() + "' has shape " + ShapeToString(shape) +
                           "; model '" + model + "' takes [-1," + std::to_string(features) +
                           "] (or [" + std::to_string(features) + "] for one row)");
  }
  const size_t n = n_rows * features;
  const auto bytes = in.bytes();
  const uint8_t* src = bytes.data();
  switch (in.datatype()) {
    case DataType::kFp32:
      if (reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
        rows = std::span<const float>(reinterpret_cast<const float*>(src), n);
        return Status::Ok();
      }
      storage.resize(n);
      std::memcpy(storage.data(), src, n * sizeof(float));
      break;
    case DataType::kFp64: storage.resize(n); ConvertRows<double>(src, n, storage.data()); break;
    case DataType::kFp16:
      storage.resize(n);
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        storage[i] = HalfToFloat(h);
      }
      break;
    case DataType::kInt8: storage.resize(n); ConvertRows<int8_t>(src, n, storage.data()); break;
    case DataType::kInt16: storage.resize(n); ConvertRows<int16_t>(src, n, storage.data()); break;
    case DataType::kInt32: storage.resize(n); ConvertRows<int32_t>(src, n, storage.data()); break;
    case DataType::kInt64: storage.resize(n); ConvertRows<int64_t>(src, n, storage.data()); break;
    case DataType::kUint8:
    case DataType::kBool: storage.resize(n); ConvertRows<uint8_t>(src, n, storage.data()); break;
    case DataType::kUint16: storage.resize(n); ConvertRows<uint16_t>(src, n, storage.data()); break;
    case DataType::kUint32: storage.resize(n); ConvertRows<uint32_t>(src, n, storage.data()); break;
    case DataType::kUint64: storage.resize(n); ConvertRows<uint64_t>(src, n, storage.data()); break;
    case DataType::kBytes:
    case DataType::kInvalid:
      return InvalidArgument("input '" + in.name() + "' has datatype " +
                             std::string(DataTypeName(in.datatype())) + "; model '" + model +
                             "' takes numeric data (" +
                             (md.inputs.empty() ? std::string("FP32") : md.inputs[0].datatype) +
                             ")");
  }
  rows = storage;
  return Status::Ok();
}

Status CheckRequestedOutputs(const std::string& model, const ModelMetadata& md,
                             const InferRequest& request) {
  for (const auto& o : request.outputs) {
    if (md.outputs.empty() || o.name != md.outputs[0].name) {
      return InvalidArgument("unknown output '" + o.name + "'; model '" + model +
                             "' produces '" + (md.outputs.empty() ? "" : md.outputs[0].name) +
                             "'");
    }
  }
  return Status::Ok();
}

}  // namespace

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kBadRequest:
    case StatusCode::kInvalid: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
    case StatusCode::kCancelled:
    case StatusCode::kTooManyRequests: return 503;
    default: return 500;
  }
}

// The state of one inference between Infer and its callback.
class InferenceService::Pending final : public BatchCompletion {
 public:
  Pending(Model& model, InferRequest&& request, InferCallback&& done)
      : model_(model), request_(std::move(request)), done_(std::move(done)) {}

  Status Prepare() {
    RETURN_IF_ERROR(CheckRequestedOutputs(model_.name(), model_.runtime_->metadata(), request_));
    RETURN_IF_ERROR(PrepareRows(model_.name(), *model_.runtime_, request_, storage_, rows_, n_rows_));
    out_.resize(n_rows_ * model_.runtime_->num_outputs());
    return Status::Ok();
  }

  BatchTask Task() { return BatchTask{rows_, n_rows_, out_, this}; }
  InferRequest& request() { return request_; }
  std::string& cache_key() { return cache_key_; }

  void OnBatchDone(Status status, std::chrono::nanoseconds queue_time) override {
    model_.metrics().queue_duration->Observe(std::chrono::duration<double>(queue_time).count());
    Finish(std::move(status));
    delete this;
  }

  // Prepares and predicts on this thread.
  void RunInline() {
    Status s = Prepare();
    if (s.ok() && n_rows_ > 0) s = model_.runtime_->Predict(rows_, n_rows_, out_);
    Finish(std::move(s));
  }

  size_t rows() const { return n_rows_; }

  // Answers: the error, or the response built from the outputs (and caches it).
  void Finish(Status status) {
    if (!status.ok()) {
      done_(std::move(status));
      return;
    }
    const ModelMetadata& md = model_.runtime_->metadata();
    const size_t k = model_.runtime_->num_outputs();
    std::vector<int64_t> shape{static_cast<int64_t>(n_rows_)};
    if (k != 1) shape.push_back(static_cast<int64_t>(k));
    Tensor out(md.outputs.empty() ? "predict" : md.outputs[0].name, DataType::kFp32,
               std::move(shape));
    out.mutable_bytes().assign(reinterpret_cast<const char*>(out_.data()),
                               out_.size() * sizeof(float));
    InferResponse response;
    response.model_name = model_.name();
    response.model_version = model_.version();
    response.id = std::move(request_.id);
    response.outputs.push_back(std::move(out));
    if (model_.cache_ && !cache_key_.empty()) {
      model_.cache_->Insert(cache_key_, std::make_shared<const CachedOutputs>(response.outputs));
    }
    done_(std::move(response));
  }

 private:
  Model& model_;
  InferRequest request_;
  InferCallback done_;
  std::vector<float> storage_;
  std::span<const float> rows_;
  size_t n_rows_ = 0;
  std::vector<float> out_;
  std::string cache_key_;
};

Result<std::unique_ptr<InferenceService>> InferenceService::Create(
    const InferenceServiceOptions& options, std::shared_ptr<prometheus::Registry> registry,
    Clock& clock) {
  ASSIGN_OR_RETURN(auto metrics, ServerMetrics::Create(std::move(registry)));
  std::unique_ptr<FaultInjector> faults;
  if (options.faults.enabled()) {
    ASSIGN_OR_RETURN(faults, FaultInjector::Create(options.faults, clock));
  }
  return std::unique_ptr<InferenceService>(
      new InferenceService(options, std::move(metrics), std::move(faults), clock));
}

InferenceService::InferenceService(const InferenceServiceOptions& options,
                                   std::unique_ptr<ServerMetrics> metrics,
                                   std::unique_ptr<FaultInjector> faults, Clock& clock)
    : options_(options), metrics_(std::move(metrics)), clock_(clock), faults_(std::move(faults)) {}

InferenceService::~InferenceService() { Stop(); }

Result<Model*> InferenceService::AddModel(const ModelOptions& options) {
  if (options.name.empty()) return InvalidArgument("a model needs a name");
  if (options.version.empty()) return InvalidArgument("a model needs a version");
  auto& versions = models_[options.name];
  for (const auto& m : versions) {
    if (m->version() == options.version) {
      return Status(StatusCode::kAlreadyExists,
                    "model '" + options.name + "' version " + options.version + " exists");
    }
  }
  auto model = std::make_unique<Model>();
  model->options_ = options;
  model->metrics_ = &metrics_->ForModel(options.name, options.version);
  versions.push_back(std::move(model));
  return versions.back().get();
}

Status InferenceService::SetRuntime(Model& model, std::unique_ptr<Runtime> runtime) {
  if (!runtime) return InvalidArgument("no runtime");
  if (model.state_.load() != Model::kDeclared) {
    return FailedPrecondition("model '" + model.name() + "' already has a runtime");
  }
  const auto& opts = model.options_;
  if (opts.batching) {
    BatcherOptions b = opts.batcher;
    ServerMetrics::Model* m = model.metrics_;
    b.on_batch = [m](size_t rows, size_t) { m->batch_size->Observe(static_cast<double>(rows)); };
    auto batcher = Batcher::Create(*runtime, b, clock_);
    if (!batcher.ok()) return batcher.status().Annotate("model '" + model.name() + "'");
    model.batcher_ = std::move(batcher).value();
  }
  if (opts.cache) {
    auto cache = ResponseCache::Create(opts.cache_options, clock_);
    if (!cache.ok()) return cache.status().Annotate("model '" + model.name() + "'");
    model.cache_ = std::move(cache).value();
  }
  if (!opts.feature_views.empty()) {
    std::vector<std::string> names;
    for (const auto& v : opts.feature_views) names.push_back(v.name);
    model.feature_metrics_ = metrics_->ForFeatures(model.name(), model.version(), names);
    FeatureEnricherOptions fo;
    fo.views = opts.feature_views;
    fo.budget = opts.feature_budget;
    fo.model_name = model.name();
    const auto& md = runtime->metadata();
    if (!md.inputs.empty()) fo.model_input = md.inputs[0].name;
    auto enricher =
        FeatureEnricher::Create(fo, runtime->feature_names(), *model.feature_metrics_, clock_);
    if (!enricher.ok()) return enricher.status().Annotate("model '" + model.name() + "'");
    model.enricher_ = std::move(enricher).value();
  }
  model.runtime_ = std::move(runtime);
  model.state_.store(Model::kLoaded, std::memory_order_release);
  model.metrics_->loaded->Set(1);
  return Status::Ok();
}

Status InferenceService::WarmUpAndMarkReady(Model& model) {
  if (!model.loaded()) return FailedPrecondition("model '" + model.name() + "' is not loaded");
  RETURN_IF_ERROR(model.runtime_->WarmUp().Annotate("warming up model '" + model.name() + "'"));
  if (model.batcher_) {
    // One request through the batcher proves its worker runs before traffic is let in.
    struct Wait final : BatchCompletion {
      std::promise<Status> result;
      void OnBatchDone(Status s, std::chrono::nanoseconds) override { result.set_value(s); }
    } wait;
    std::vector<float> row(model.runtime_->num_features(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> out(model.runtime_->num_outputs());
    RETURN_IF_ERROR(model.batcher_->Submit(BatchTask{row, 1, out, &wait}));
    RETURN_IF_ERROR(wait.result.get_future().get().Annotate("warming up the batcher"));
  }
  int expected = Model::kLoaded;
  model.state_.compare_exchange_strong(expected, Model::kReady, std::memory_order_acq_rel);
  model.metrics_->ready->Set(1);
  return Status::Ok();
}

void InferenceService::RecordLoadTime(Model& model, std::chrono::duration<double> seconds) {
  model.metrics_->load_seconds->Set(seconds.count());
}

Result<Model*> InferenceService::FindModel(std::string_view name, std::string_view version) const {
  auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) {
    return NotFound("model '" + std::string(name) + "' is not served here");
  }
  if (version.empty()) return it->second.back().get();
  for (const auto& m : it->second) {
    if (m->version() == version) return m.get();
  }
  return NotFound("model '" + std::string(name) + "' has no version '" + std::string(version) +
                  "'");
}

std::vector<std::string> InferenceService::Versions(std::string_view name) const {
  std::vector<std::string> out;
  if (auto it = models_.find(name); it != models_.end()) {
    for (const auto& m : it->second) out.push_back(m->version());
  }
  return out;
}

bool InferenceService::ready() const {
  if (draining() || models_.empty()) return false;
  for (const auto& [name, versions] : models_) {
    for (const auto& m : versions) {
      if (!m->ready()) return false;
    }
  }
  return true;
}

void InferenceService::Infer(Model& model, InferRequest&& request, InferCallback done) {
  if (!faults_) {
    InferNow(model, std::move(request), std::move(done));
    return;
  }
  const bool fail = faults_->NextFails();
  if (faults_->options().delay.count() == 0) {
    if (fail) {
      done(Internal(kInjectedFaultMessage));
    } else {
      InferNow(model, std::move(request), std::move(done));
    }
    return;
  }
  // std::function must be copyable; the request and callback are moved in once and used once.
  struct Held {
    InferRequest request;
    InferCallback done;
  };
  auto held = std::make_shared<Held>(Held{std::move(request), std::move(done)});
  faults_->AfterDelay([this, &model, held, fail] {
    if (fail) {
      held->done(Internal(kInjectedFaultMessage));
    } else {
      InferNow(model, std::move(held->request), std::move(held->done));
    }
  });
}

void InferenceService::InferNow(Model& model, InferRequest&& request, InferCallback done) {
  if (stopped_.load(std::memory_order_acquire)) {
    done(Unavailable("the server is shutting down"));
    return;
  }
  if (!model.ready()) {
    done(FailedPrecondition("model '" + model.name() + "' version " + model.version() +
                            " is not ready"));
    return;
  }
  if (model.enricher_) {
    // Before the cache: it keys on the assembled rows, so a changed feature value is never
    // answered from an entry made with the old one.
    if (Status s = model.enricher_->Enrich(request); !s.ok()) {
      done(std::move(s));
      return;
    }
  }
  std::string key;
  if (model.cache_) {
    key = MakeCacheKey(model.name(), model.version(), request);
    if (auto hit = model.cache_->Lookup(key)) {
      model.metrics_->cache_hits->Increment();
      InferResponse response;
      response.model_name = model.name();
      response.model_version = model.version();
      response.id = std::move(request.id);
      response.outputs = *hit;
      done(std::move(response));
      return;
    }
    model.metrics_->cache_misses->Increment();
  }
  if (!model.batcher_) {
    Pending p(model, std::move(request), std::move(done));
    p.cache_key() = std::move(key);
    p.RunInline();
    return;
  }
  auto pending = std::make_unique<Pending>(model, std::move(request), std::move(done));
  pending->cache_key() = std::move(key);
  Status s = pending->Prepare();
  if (s.ok() && pending->rows() == 0) {
    pending->Finish(Status::Ok());
    return;
  }
  if (s.ok()) {
    // The completion deletes the Pending, so the batcher owns it while it may run.
    Pending* raw = pending.release();
    if (model.batcher_->TryRunInline(raw->Task())) return;
    s = model.batcher_->Submit(raw->Task());
    if (s.ok()) return;
    pending.reset(raw);
  }
  pending->Finish(std::move(s));
}

void InferenceService::Stop() {
  stopped_.store(true, std::memory_order_release);
  if (faults_) faults_->Stop();  // delayed requests are answered now, as Unavailable
  for (auto& [name, versions] : models_) {
    for (auto& m : versions) {
      if (m->batcher_) m->batcher_->Stop();
    }
  }
}

}  // namespace sluice::dataplane
