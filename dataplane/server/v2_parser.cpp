// The streaming parser: V2 documents (requests and responses) read with a SAX parser in one pass,
// tensor data decoded as it streams by, binary tensors attached after the JSON part.

#include <bit>
#include <charconv>
#include <cstring>
#include <variant>

#include "dataplane/server/v2_codec.h"
#include "dataplane/server/v2_codec_internal.h"
#include "dataplane/server/v2_data_decoder.h"

namespace sluice::dataplane {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are stored in host order, which the protocol fixes as little-endian");

using json = nlohmann::json;

namespace v2_internal {

std::string ScalarKindName(Scalar::Kind k) {
  switch (k) {
    case Scalar::kNull:
      return "null";
    case Scalar::kBool:
      return "a boolean";
    case Scalar::kInt:
    case Scalar::kUint:
      return "an integer";
    case Scalar::kFloat:
      return "a number";
    case Scalar::kString:
      return "a string";
  }
  return "?";
}

json ScalarToJson(Scalar&& v) {
  switch (v.kind) {
    case Scalar::kNull:
      return json(nullptr);
    case Scalar::kBool:
      return json(v.b);
    case Scalar::kInt:
      return json(v.i);
    case Scalar::kUint:
      return json(v.u);
    case Scalar::kFloat:
      return json(v.d);
    case Scalar::kString:
      return json(std::move(v.s));
  }
  return json();
}

}  // namespace v2_internal

using namespace v2_internal;

namespace {

struct TensorState {
  Tensor tensor;
  std::string name;
  bool has_name = false, has_datatype = false, has_shape = false, has_data = false,
       has_parameters = false;
  bool deferred = false;  // data came before datatype/shape and was skipped
  std::string datatype_name;
  std::vector<int64_t> shape;
  std::optional<uint64_t> binary_size;
};

// Datatype and shape of each tensor, from a first pass over a body whose `data` came before them.
struct TensorHint {
  std::string datatype_name;
  std::vector<int64_t> shape;
};

class V2Sax final : public nlohmann::json_sax<json> {
 public:
  V2Sax(DocKind kind, size_t body_size, const std::vector<TensorHint>* hints, std::string& id,
        json& parameters, std::vector<Tensor>& tensors, std::vector<RequestedOutput>* requested,
        std::string* model_name, std::string* model_version)
      : kind_(kind),
        body_size_(body_size),
        hints_(hints),
        id_(id),
        parameters_(parameters),
        tensors_(tensors),
        requested_(requested),
        model_name_(model_name),
        model_version_(model_version) {}

  // Binary sizes of the tensors, in order (nullopt: JSON data).
  std::vector<std::optional<uint64_t>> binary_sizes;
  bool saw_tensors = false;
  // Some tensor's data was skipped because its datatype or shape came later: parse again with
  // hints.
  bool deferred = false;

  const Status& status() const { return status_; }

  bool null() override {
    Scalar s(Scalar::kNull);
    return OnScalar(s);
  }
  bool boolean(bool v) override {
    Scalar s(Scalar::kBool);
    s.b = v;
    return OnScalar(s);
  }
  bool number_integer(number_integer_t v) override {
    Scalar s(Scalar::kInt);
    s.i = v;
    return OnScalar(s);
  }
  bool number_unsigned(number_unsigned_t v) override {
    Scalar s(Scalar::kUint);
    s.u = v;
    return OnScalar(s);
  }
  bool number_float(number_float_t v, const string_t&) override {
    Scalar s(Scalar::kFloat);
    s.d = v;
    return OnScalar(s);
  }
  bool string(string_t& v) override {
    Scalar s(Scalar::kString);
    s.s = std::move(v);
    return OnScalar(s);
  }
  bool binary(binary_t&) override { return Fail("binary values are not JSON"); }

  bool start_object(std::size_t) override {
    if (skip_depth_) return ++skip_depth_, true;
    if (!build_.empty()) return BuildOpen(json::object());
    switch (in_) {
      case In::kStart:
        in_ = In::kTop;
        return true;
      case In::kTop:
        if (key_ == "parameters") return BeginBuild(&parameters_);
        if (IsTopKey(key_)) return WrongType("an object");
        return Skip();
      case In::kTensors:
        if (tensors_.size() >= kMaxTensors) return Fail("too many tensors");
        cur_ = TensorState{};
        in_ = In::kTensor;
        return true;
      case In::kTensor:
        if (key_ == "parameters") {
          if (cur_.has_parameters) return Fail("duplicate key 'parameters'");
          cur_.has_parameters = true;
          return BeginBuild(&tensor_params_);
        }
        if (IsTensorKey(key_)) return WrongType("an object");
        return Skip();
      case In::kRequested:
        if (requested_->size() >= kMaxTensors) return Fail("too many outputs");
        out_ = RequestedOutput{};
        out_has_name_ = false;
        in_ = In::kOutput;
        return true;
      case In::kOutput:
        if (key_ == "parameters") return BeginBuild(&out_.parameters);
        if (key_ == "name") return WrongType("an object");
        return Skip();
      case In::kShape:
        return Fail("'shape' must be an array of integers");
      case In::kData:
        return Fail("'data' may hold only arrays and scalars, not objects");
      case In::kEnd:
        return Fail("trailing data after the body");
    }
    return Fail("unexpected object");
  }

  bool key(string_t& k) override {
    if (skip_depth_) return true;
    if (!build_.empty()) {
      build_key_ = std::move(k);
      return true;
    }
    key_ = std::move(k);
    return true;
  }

  bool end_object() override {
    if (skip_depth_) return --skip_depth_, true;
    if (!build_.empty()) return BuildClose();
    switch (in_) {
      case In::kTop:
        in_ = In::kEnd;
        return true;
      case In::kTensor:
        in_ = In::kTensors;
        return FinishTensor();
      case In::kOutput:
        if (!out_has_name_) return Fail("an entry of 'outputs' has no name");
        for (const auto& o : *requested_) {
          if (o.name == out_.name) return Fail("output '" + out_.name + "' is requested twice");
        }
        if (out_.parameters.is_object()) {
          auto it = out_.parameters.find("binary_data");
          if (it != out_.parameters.end()) {
            if (!it->is_boolean()) return Fail("output parameter 'binary_data' must be a boolean");
            out_.binary_data = it->get<bool>();
          }
        }
        requested_->push_back(std::move(out_));
        in_ = In::kRequested;
        return true;
      default:
        return Fail("unexpected end of object");
    }
  }

  bool start_array(std::size_t) override {
    if (skip_depth_) return ++skip_depth_, true;
    if (!build_.empty()) return BuildOpen(json::array());
    switch (in_) {
      case In::kStart:
        return Fail("the body must be a JSON object");
      case In::kTop:
        if (key_ == TensorsKey()) {
          if (saw_tensors) return Fail("duplicate key '" + std::string(TensorsKey()) + "'");
          saw_tensors = true;
          in_ = In::kTensors;
          return true;
        }
        if (key_ == "outputs" && kind_ == DocKind::kRequest) {
          if (saw_requested_) return Fail("duplicate key 'outputs'");
          saw_requested_ = true;
          in_ = In::kRequested;
          return true;
        }
        if (IsTopKey(key_)) return WrongType("an array");
        return Skip();
      case In::kTensor:
        if (key_ == "shape") {
          if (cur_.has_shape) return Fail("duplicate key 'shape'");
          cur_.has_shape = true;
          in_ = In::kShape;
          return true;
        }
        if (key_ == "data") {
          if (cur_.has_data) return Fail("duplicate key 'data'");
          cur_.has_data = true;
          in_ = In::kData;
          data_depth_ = 1;
          return BeginData();
        }
        if (IsTensorKey(key_)) return WrongType("an array");
        return Skip();
      case In::kData:
        ++data_depth_;
        return Check(decoder_->BeginArray());
      case In::kOutput:
        if (key_ == "name" || key_ == "parameters") return WrongType("an array");
        return Skip();
      case In::kShape:
        return Fail("'shape' must be a flat array of integers");
      case In::kTensors:
      case In::kRequested:
        return Fail("'" + key_ + "' must be an array of objects");
      case In::kEnd:
        return Fail("trailing data after the body");
    }
    return Fail("unexpected array");
  }

  bool end_array() override {
    if (skip_depth_) return --skip_depth_, true;
    if (!build_.empty()) return BuildClose();
    switch (in_) {
      case In::kShape:
        in_ = In::kTensor;
        return true;
      case In::kData:
        if (!Check(decoder_->EndArray())) return false;
        if (--data_depth_ == 0) in_ = In::kTensor;
        return true;
      case In::kTensors:
      case In::kRequested:
        in_ = In::kTop;
        return true;
      default:
        return Fail("unexpected end of array");
    }
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    if (status_.ok()) {
      // nlohmann's messages start with "[json.exception.parse_error.101] "; keep what follows.
      std::string_view what = ex.what();
      if (auto p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
      status_ = InvalidArgument("malformed JSON at byte " + std::to_string(position) + ": " +
                                std::string(what));
    }
    return false;
  }

 private:
  enum class In { kStart, kTop, kTensors, kTensor, kShape, kData, kRequested, kOutput, kEnd };

  std::string_view TensorsKey() const { return kind_ == DocKind::kRequest ? "inputs" : "outputs"; }
  bool IsTopKey(std::string_view k) const {
    return k == "id" || k == "parameters" || k == "inputs" || k == "outputs" ||
           (kind_ == DocKind::kResponse && (k == "model_name" || k == "model_version"));
  }
  static bool IsTensorKey(std::string_view k) {
    return k == "name" || k == "datatype" || k == "shape" || k == "data" || k == "parameters";
  }

  bool Fail(std::string message) {
    if (status_.ok()) status_ = InvalidArgument(std::move(message));
    return false;
  }
  bool WrongType(std::string_view got) {
    std::string where = in_ == In::kTop ? "" : "tensor '" + cur_.name + "': ";
    return Fail(where + "'" + key_ + "' must not be " + std::string(got));
  }
  bool Skip() {
    skip_depth_ = 1;
    return true;
  }

  // --- generic JSON (parameters) ---
  bool BeginBuild(json* target) {
    *target = json::object();
    build_.push_back(target);
    return true;
  }
  bool BuildInsert(json&& v, json** inserted) {
    json* top = build_.back();
    if (top->is_object()) {
      json& slot = (*top)[build_key_];
      slot = std::move(v);
      if (inserted) *inserted = &slot;
    } else {
      top->push_back(std::move(v));
      if (inserted) *inserted = &top->back();
    }
    return true;
  }
  bool BuildOpen(json&& container) {
    if (build_.size() >= kMaxParameterDepth) return Fail("parameters are nested too deeply");
    json* child = nullptr;
    BuildInsert(std::move(container), &child);
    build_.push_back(child);
    return true;
  }
  bool BuildClose() {
    build_.pop_back();
    return true;
  }

  // --- tensor data ---
  bool BeginData() {
    if (cur_.has_datatype && cur_.has_shape) {
      if (!PrepareDecoder(cur_.datatype_name, cur_.shape)) return false;
    } else if (hints_ && tensors_.size() < hints_->size()) {
      const TensorHint& h = (*hints_)[tensors_.size()];
      if (!PrepareDecoder(h.datatype_name, h.shape)) return false;
    } else {
      cur_.deferred = true;
      deferred = true;
      data_depth_ = 0;
      in_ = In::kTensor;
      return Skip();
    }
    return Check(decoder_->BeginArray());
  }

  bool PrepareDecoder(const std::string& datatype_name, const std::vector<int64_t>& shape) {
    const DataType type = ParseDataType(datatype_name);
    if (type == DataType::kInvalid) {
      return Fail("tensor '" + cur_.name + "': unknown datatype '" + datatype_name + "'");
    }
    auto count = ElementCount(shape);
    if (!count.ok()) return Fail("tensor '" + cur_.name + "': " + count.status().message());
    if (*count > body_size_) {
      return Fail("tensor '" + cur_.name + "': shape " + ShapeToString(shape) + " has " +
                  std::to_string(*count) + " elements, more than the body can carry");
    }
    cur_.tensor.set_datatype(type);
    decoder_.emplace(type, shape, *count, cur_.tensor.mutable_bytes(), body_size_);
    return true;
  }

  bool Check(Status s) {
    if (s.ok()) return true;
    return Fail("tensor '" + cur_.name + "': " + s.message());
  }

  bool OnScalar(Scalar& v) {
    if (skip_depth_) return true;
    if (!build_.empty()) return BuildInsert(ScalarToJson(std::move(v)), nullptr);
    switch (in_) {
      case In::kTop:
        if (key_ == "id") {
          if (v.kind != Scalar::kString) return Fail("'id' must be a string");
          id_ = std::move(v.s);
          return true;
        }
        if (kind_ == DocKind::kResponse && (key_ == "model_name" || key_ == "model_version")) {
          if (v.kind != Scalar::kString) return Fail("'" + key_ + "' must be a string");
          (key_ == "model_name" ? *model_name_ : *model_version_) = std::move(v.s);
          return true;
        }
        if (key_ == "parameters" && v.kind == Scalar::kNull) return true;
        if (IsTopKey(key_)) return WrongType(ScalarKindName(v.kind));
        return true;
      case In::kTensor:
        if (key_ == "name") {
          if (v.kind != Scalar::kString) return Fail("a tensor 'name' must be a string");
          if (cur_.has_name) return Fail("duplicate key 'name'");
          cur_.has_name = true;
          cur_.name = std::move(v.s);
          return true;
        }
        if (key_ == "datatype") {
          if (v.kind != Scalar::kString) {
            return Fail("tensor '" + cur_.name + "': 'datatype' must be a string");
          }
          if (cur_.has_datatype) return Fail("duplicate key 'datatype'");
          cur_.has_datatype = true;
          cur_.datatype_name = std::move(v.s);
          return true;
        }
        if (key_ == "parameters" && v.kind == Scalar::kNull) return true;
        if (IsTensorKey(key_)) return WrongType(ScalarKindName(v.kind));
        return true;
      case In::kShape:
        if (v.kind == Scalar::kUint && v.u <= static_cast<uint64_t>(kMaxTensorElements)) {
          if (cur_.shape.size() >= kMaxTensorRank) return Fail("shape has too many dimensions");
          cur_.shape.push_back(static_cast<int64_t>(v.u));
          return true;
        }
        return Fail("tensor '" + cur_.name + "': shape dimensions must be non-negative integers");
      case In::kData:
        return Check(decoder_->Value(v));
      case In::kOutput:
        if (key_ == "name") {
          if (v.kind != Scalar::kString) return Fail("an output 'name' must be a string");
          out_.name = std::move(v.s);
          out_has_name_ = true;
          return true;
        }
        if (key_ == "parameters" && v.kind == Scalar::kNull) return true;
        if (key_ == "parameters") return WrongType(ScalarKindName(v.kind));
        return true;
      case In::kStart:
        return Fail("the body must be a JSON object");
      case In::kTensors:
      case In::kRequested:
        return Fail("'" + key_ + "' must be an array of objects");
      case In::kEnd:
        return Fail("trailing data after the body");
    }
    return Fail("unexpected value");
  }

  bool FinishTensor() {
    TensorState& t = cur_;
    if (!t.has_name) return Fail("a tensor has no 'name'");
    if (!t.has_datatype) return Fail("tensor '" + t.name + "' has no 'datatype'");
    if (!t.has_shape) return Fail("tensor '" + t.name + "' has no 'shape'");
    for (const Tensor& other : tensors_) {
      if (other.name() == t.name) return Fail("tensor '" + t.name + "' appears twice");
    }
    if (tensor_params_.is_object()) {
      auto it = tensor_params_.find("binary_data_size");
      if (it != tensor_params_.end()) {
        if (!it->is_number_unsigned()) {
          return Fail("tensor '" + t.name + "': 'binary_data_size' must be a non-negative integer");
        }
        t.binary_size = it->get<uint64_t>();
      }
    }
    tensor_params_ = json();
    if (t.has_data && t.binary_size) {
      return Fail("tensor '" + t.name + "' has both 'data' and 'binary_data_size'");
    }
    if (!t.has_data && !t.binary_size) {
      return Fail("tensor '" + t.name + "' has neither 'data' nor 'binary_data_size'");
    }
    if (t.binary_size || t.deferred) {
      const DataType type = ParseDataType(t.datatype_name);
      if (type == DataType::kInvalid) {
        return Fail("tensor '" + t.name + "': unknown datatype '" + t.datatype_name + "'");
      }
      t.tensor.set_datatype(type);
    }
    decoder_.reset();
    t.tensor.set_name(std::move(t.name));
    t.tensor.set_shape(std::move(t.shape));
    tensors_.push_back(std::move(t.tensor));
    binary_sizes.push_back(t.binary_size);
    return true;
  }

  const DocKind kind_;
  const size_t body_size_;
  const std::vector<TensorHint>* hints_;
  std::string& id_;
  json& parameters_;
  std::vector<Tensor>& tensors_;
  std::vector<RequestedOutput>* requested_;
  std::string* model_name_;
  std::string* model_version_;

  Status status_;
  In in_ = In::kStart;
  std::string key_;
  int skip_depth_ = 0;
  std::vector<json*> build_;
  std::string build_key_;
  TensorState cur_;
  std::optional<DataDecoder> decoder_;  // decodes cur_'s data while it is being read
  json tensor_params_;
  size_t data_depth_ = 0;
  RequestedOutput out_;
  bool out_has_name_ = false;
  bool saw_requested_ = false;
};

}  // namespace

namespace v2_internal {

// Splits the body, runs the SAX parser, then attaches binary tensors in order.
Status ParseDocument(DocKind kind, std::string_view body, std::optional<size_t> json_length,
                     std::string& id, json& parameters, std::vector<Tensor>& tensors,
                     std::vector<RequestedOutput>* requested, std::string* model_name,
                     std::string* model_version, bool copy_binary) {
  const size_t jlen = json_length.value_or(body.size());
  if (jlen > body.size()) {
    return InvalidArgument(std::string(kInferenceHeaderContentLength) + " " + std::to_string(jlen) +
                           " exceeds the body size " + std::to_string(body.size()));
  }
  const std::string_view json_part = body.substr(0, jlen);
  const std::string_view binary = body.substr(jlen);
  std::vector<TensorHint> hints;
  std::vector<std::optional<uint64_t>> binary_sizes;
  for (int pass = 0; pass < 2; ++pass) {
    V2Sax sax(kind, body.size(), pass ? &hints : nullptr, id, parameters, tensors, requested,
              model_name, model_version);
    const bool ok = json::sax_parse(json_part.begin(), json_part.end(), &sax,
                                    json::input_format_t::json, /*strict=*/true);
    if (!ok || !sax.status().ok()) {
      if (!sax.status().ok()) return sax.status();
      return InvalidArgument("malformed JSON");
    }
    if (!sax.saw_tensors) {
      return InvalidArgument(std::string("the body has no '") +
                             (kind == DocKind::kRequest ? "inputs" : "outputs") + "'");
    }
    binary_sizes = std::move(sax.binary_sizes);
    if (!sax.deferred) break;
    // Some `data` preceded its tensor's datatype or shape: decode it in a second pass that knows
    // them, instead of buffering unknown values.
    for (const Tensor& t : tensors) {
      hints.push_back({std::string(DataTypeName(t.datatype())), t.shape()});
    }
    id.clear();
    parameters = json();
    tensors.clear();
    if (requested) requested->clear();
  }
  size_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& size = binary_sizes[i];
    if (!size) continue;
    Tensor& t = tensors[i];
    if (*size > binary.size() - offset) {
      return InvalidArgument("truncated binary data: tensor '" + t.name() + "' needs " +
                             std::to_string(*size) + " bytes at offset " + std::to_string(offset) +
                             " but only " + std::to_string(binary.size() - offset) + " remain");
    }
    auto view = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(binary.data()) + offset,
                                         static_cast<size_t>(*size));
    if (copy_binary) {
      t.mutable_bytes().assign(reinterpret_cast<const char*>(view.data()), view.size());
    } else {
      t.set_external(view);
    }
    offset += *size;
  }
  if (offset != binary.size()) {
    return InvalidArgument(std::to_string(binary.size() - offset) +
                           " bytes of binary data follow the JSON but no tensor claims them");
  }
  for (const Tensor& t : tensors) RETURN_IF_ERROR(t.Validate());
  return Status::Ok();
}

}  // namespace v2_internal

Result<std::optional<size_t>> ParseInferenceHeaderLength(std::string_view value, size_t body_size) {
  if (value.empty()) return std::optional<size_t>();
  size_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return InvalidArgument(std::string(kInferenceHeaderContentLength) + " '" + std::string(value) +
                           "' is not a number");
  }
  if (n > body_size) {
    return InvalidArgument(std::string(kInferenceHeaderContentLength) + " " + std::to_string(n) +
                           " exceeds the body size " + std::to_string(body_size));
  }
  return std::optional<size_t>(n);
}

Result<InferRequest> ParseInferRequest(std::string_view body, std::optional<size_t> json_length) {
  if (!json_length) {
    if (auto fast = ParseCommonInferRequest(body)) return std::move(*fast);
  }
  InferRequest req;
  RETURN_IF_ERROR(ParseDocument(DocKind::kRequest, body, json_length, req.id, req.parameters,
                                req.inputs, &req.outputs, nullptr, nullptr,
                                /*copy_binary=*/false));
  if (req.parameters.is_object()) {
    auto it = req.parameters.find("binary_data_output");
    if (it != req.parameters.end()) {
      if (!it->is_boolean()) return InvalidArgument("'binary_data_output' must be a boolean");
      req.binary_data_output = it->get<bool>();
    }
  }
  return req;
}

}  // namespace sluice::dataplane
