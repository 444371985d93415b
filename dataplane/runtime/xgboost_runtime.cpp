#include "dataplane/runtime/xgboost_runtime.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <utility>

namespace sluice::dataplane {
namespace {

constexpr size_t kArgmaxScratch = 2048;

// The formulas xgboost uses, in float, so outputs match it to the last bit or two.
inline float Sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(std::min(-x, 88.7f)));
}

void SoftmaxInPlace(float* v, size_t n) {
  float max = v[0];
  for (size_t i = 1; i < n; ++i) max = std::fmax(v[i], max);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    v[i] = std::exp(v[i] - max);
    sum += v[i];
  }
  const auto fsum = static_cast<float>(sum);
  for (size_t i = 0; i < n; ++i) v[i] /= fsum;
}

size_t ArgMax(const float* v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

Result<ModelFormat> ResolveFormat(const ModelSource& source, std::string_view bytes) {
  ASSIGN_OR_RETURN(ModelFormat format, ParseModelFormat(source.format));
  if (format != ModelFormat::kAuto) return format;
  const std::string ext = UriExtension(source.uri);
  if (ext == "json") return ModelFormat::kJson;
  if (ext == "ubj" || ext == "ubjson") return ModelFormat::kUbjson;
  return DetectModelFormat(bytes);
}

}  // namespace

XGBoostRuntime::XGBoostRuntime(Forest forest, std::string objective, OutputTransform transform,
                               std::vector<std::string> feature_names)
    : forest_(std::move(forest)),
      objective_(std::move(objective)),
      transform_(transform),
      feature_names_(std::move(feature_names)) {}

Result<std::unique_ptr<XGBoostRuntime>> XGBoostRuntime::Build(const XGBoostModel& model,
                                                              const LoadOptions& options,
                                                              std::string default_name) {
  ForestOptions fo;
  fo.layout = options.layout;
  if (options.use_best_iteration && model.best_iteration >= 0) {
    const auto best = static_cast<size_t>(model.best_iteration);
    if (best >= model.iteration_end.size()) {
      return InvalidArgument("xgboost model: best_iteration " + std::to_string(best) +
                             " is beyond the " + std::to_string(model.iteration_end.size()) +
                             " boosting rounds in the model");
    }
    fo.num_trees = model.iteration_end[best];
  }
  ASSIGN_OR_RETURN(Forest forest, Forest::Compile(model, fo));
  OutputTransform transform = options.output_margin ? OutputTransform::kIdentity : model.transform;
  std::unique_ptr<XGBoostRuntime> rt(
      new XGBoostRuntime(std::move(forest), model.objective, transform, model.feature_names));
  rt->num_outputs_ = transform == OutputTransform::kArgmax ? 1 : model.num_groups;

  ModelMetadata& md = rt->metadata_;
  if (default_name.empty()) default_name = "model";
  md.name = options.name.empty() ? std::move(default_name) : options.name;
  md.version = options.version;
  md.platform = "xgboost";
  md.inputs.push_back(
      TensorMetadata{"input-0", "FP32", {-1, static_cast<int64_t>(model.num_feature)}});
  if (rt->num_outputs_ == 1) {
    md.outputs.push_back(TensorMetadata{"predict", "FP32", {-1}});
  } else {
    md.outputs.push_back(
        TensorMetadata{"predict", "FP32", {-1, static_cast<int64_t>(rt->num_outputs_)}});
  }
  return rt;
}

Result<std::unique_ptr<XGBoostRuntime>> XGBoostRuntime::FromBytes(std::string_view bytes,
                                                                  ModelFormat format,
                                                                  const LoadOptions& options) {
  ASSIGN_OR_RETURN(XGBoostModel model, ParseXGBoostModelBytes(bytes, format));
  return Build(model, options, "model");
}

Result<std::unique_ptr<XGBoostRuntime>> XGBoostRuntime::Load(const ModelSource& source,
                                                             const LoadOptions& options) {
  ASSIGN_OR_RETURN(std::string bytes, FetchUri(source.uri, options.fetch));
  RETURN_IF_ERROR(VerifySha256(bytes, source.sha256).Annotate(source.uri));
  ASSIGN_OR_RETURN(ModelFormat format, ResolveFormat(source, bytes));
  Result<XGBoostModel> model = ParseXGBoostModelBytes(bytes, format);
  if (!model.ok()) return model.status().Annotate(source.uri);
  bytes.clear();
  bytes.shrink_to_fit();
  ASSIGN_OR_RETURN(std::unique_ptr<XGBoostRuntime> rt, Build(*model, options, UriStem(source.uri)));

  // Reference predictions: an explicit URI must exist; the one beside the model is optional.
  std::optional<std::string> ref_bytes;
  if (!source.reference_uri.empty()) {
    Result<std::string> got = FetchUri(source.reference_uri, options.fetch);
    if (!got.ok()) return got.status().Annotate("reference " + source.reference_uri);
    ref_bytes = std::move(*got);
  } else {
    const std::string beside = ReferenceUriFor(source.uri);
    Result<std::string> got = FetchUri(beside, options.fetch);
    if (got.ok()) {
      ref_bytes = std::move(*got);
    } else if (got.status().code() != StatusCode::kNotFound &&
               got.status().code() != StatusCode::kForbidden &&
               got.status().code() != StatusCode::kUnauthorized) {
      return got.status().Annotate("reference " + beside);
    }
  }
  if (ref_bytes) {
    Result<ReferenceSet> ref = ParseReference(*ref_bytes);
    if (!ref.ok()) return ref.status().Annotate(source.uri);
    if (options.verify_reference) {
      RETURN_IF_ERROR(CheckReference(*rt, *ref).Annotate(source.uri));
    }
    rt->reference_ = std::move(*ref);
  }
  return rt;
}

Result<std::unique_ptr<Runtime>> XGBoostRuntime::Create(const ModelSource& source,
                                                        const LoadOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<XGBoostRuntime> rt, Load(source, options));
  return std::unique_ptr<Runtime>(std::move(rt));
}

void XGBoostRuntime::Transform(float* v, size_t n_rows) const {
  const size_t g = forest_.num_groups();
  switch (transform_) {
    case OutputTransform::kIdentity:
      return;
    case OutputTransform::kSigmoid:
      for (size_t i = 0; i < n_rows * g; ++i) v[i] = Sigmoid(v[i]);
      return;
    case OutputTransform::kExp:
      for (size_t i = 0; i < n_rows * g; ++i) v[i] = std::exp(v[i]);
      return;
    case OutputTransform::kHinge:
      for (size_t i = 0; i < n_rows * g; ++i) v[i] = v[i] > 0.0f ? 1.0f : 0.0f;
      return;
    case OutputTransform::kSoftmax:
      for (size_t r = 0; r < n_rows; ++r) SoftmaxInPlace(v + r * g, g);
      return;
    case OutputTransform::kArgmax:
      return;  // handled in Predict: it needs the margins of all classes
  }
}

Status XGBoostRuntime::Predict(std::span<const float> rows, size_t n_rows,
                               std::span<float> out) const {
  const size_t nf = forest_.num_features();
  if (n_rows > std::numeric_limits<size_t>::max() / std::max<size_t>(nf, num_outputs_)) {
    return InvalidArgument("too many rows");
  }
  if (rows.size() != n_rows * nf) {
    return InvalidArgument("expected " + std::to_string(n_rows) + " rows × " + std::to_string(nf) +
                           " features = " + std::to_string(n_rows * nf) + " values, got " +
                           std::to_string(rows.size()));
  }
  if (out.size() < n_rows * num_outputs_) {
    return InvalidArgument("output buffer holds " + std::to_string(out.size()) + " values, " +
                           std::to_string(n_rows * num_outputs_) + " needed");
  }
  if (n_rows == 0) return Status::Ok();
  if (transform_ != OutputTransform::kArgmax) {
    forest_.PredictMargin(rows.data(), n_rows, out.data());
    Transform(out.data(), n_rows);
    return Status::Ok();
  }
  const size_t g = forest_.num_groups();
  float stack[kArgmaxScratch];
  std::vector<float> heap;
  float* scratch = stack;
  size_t chunk = kArgmaxScratch / g;
  if (chunk == 0) {
    heap.resize(g);
    scratch = heap.data();
    chunk = 1;
  }
  for (size_t r0 = 0; r0 < n_rows; r0 += chunk) {
    const size_t n = std::min(chunk, n_rows - r0);
    forest_.PredictMargin(rows.data() + r0 * nf, n, scratch);
    for (size_t r = 0; r < n; ++r) out[r0 + r] = static_cast<float>(ArgMax(scratch + r * g, g));
  }
  return Status::Ok();
}

Status XGBoostRuntime::WarmUp() const {
  // Somewhere for the checksum of the node reads to go, so they are not optimized away; shared by
  // all runtimes and threads, hence atomic.
  static std::atomic<uint32_t> sink{0};
  sink.fetch_xor(forest_.Touch(), std::memory_order_relaxed);
  const size_t nf = forest_.num_features();
  std::vector<float> rows;
  if (reference_) {
    const size_t n = std::min<size_t>(reference_->num_rows, 64);
    rows.assign(reference_->inputs.begin(), reference_->inputs.begin() + n * nf);
  }
  rows.insert(rows.end(), nf, std::numeric_limits<float>::quiet_NaN());
  rows.insert(rows.end(), nf, 0.0f);
  // At least one full tile for the batch kernel.
  while (rows.size() < 16 * nf) rows.insert(rows.end(), rows.begin(), rows.begin() + nf);
  const size_t n_rows = rows.size() / nf;
  std::vector<float> out(n_rows * num_outputs_);
  RETURN_IF_ERROR(Predict(rows, n_rows, out).Annotate("warm-up"));
  return Predict(std::span<const float>(rows).first(nf), 1,
                 std::span<float>(out).first(num_outputs_))
      .Annotate("warm-up");
}

}  // namespace sluice::dataplane
