#include "dataplane/server/v2_codec.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <variant>

#include "lib/base/json_escape.h"

namespace sluice::dataplane {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are stored in host order, which the protocol fixes as little-endian");

using json = nlohmann::json;

namespace {

constexpr size_t kMaxParameterDepth = 32;
constexpr size_t kMaxTensors = 4096;

// One JSON scalar as the SAX parser reports it.
struct Scalar {
  enum Kind { kNull, kBool, kInt, kUint, kFloat, kString };
  explicit Scalar(Kind k) : kind(k) {}
  Kind kind;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string s;
};

std::string ScalarKindName(Scalar::Kind k) {
  switch (k) {
    case Scalar::kNull: return "null";
    case Scalar::kBool: return "a boolean";
    case Scalar::kInt:
    case Scalar::kUint: return "an integer";
    case Scalar::kFloat: return "a number";
    case Scalar::kString: return "a string";
  }
  return "?";
}

json ScalarToJson(Scalar&& v) {
  switch (v.kind) {
    case Scalar::kNull: return json(nullptr);
    case Scalar::kBool: return json(v.b);
    case Scalar::kInt: return json(v.i);
    case Scalar::kUint: return json(v.u);
    case Scalar::kFloat: return json(v.d);
    case Scalar::kString: return json(std::move(v.s));
  }
  return json();
}

template <typename T>
void AppendPod(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

// Decodes the `data` of one tensor, given its datatype and shape, straight into tensor bytes, and
// checks the nesting against the shape.
class DataDecoder {
 public:
  DataDecoder(DataType type, const std::vector<int64_t>& shape, uint64_t expected, std::string& out,
              size_t body_size)
      : type_(type), shape_(shape), expected_(expected), out_(out), counts_(shape.size() + 2, 0) {
    // Every element takes at least one byte of JSON, so the body bounds what is worth reserving.
    const uint64_t reserve_elems = std::min<uint64_t>(expected_, body_size / 2 + 1);
    const size_t elem = type == DataType::kBytes ? 8 : DataTypeSize(type);
    out_.reserve(reserve_elems * elem);
  }

  Status BeginArray() {
    if (depth_ == 0) {
      depth_ = 1;
      return Status::Ok();
    }
    if (mode_ == Mode::kFlat) return InvalidArgument("data mixes nested arrays and scalars");
    mode_ = Mode::kNested;
    if (depth_ >= shape_.size()) {
      return InvalidArgument("data is nested deeper than the rank of shape " +
                             ShapeToString(shape_));
    }
    ++counts_[depth_];
    ++depth_;
    counts_[depth_] = 0;
    return Status::Ok();
  }

  Status EndArray() {
    if (mode_ == Mode::kNested) {
      const int64_t want = shape_[depth_ - 1];
      if (static_cast<int64_t>(counts_[depth_]) != want) {
        return InvalidArgument("data dimension " + std::to_string(depth_ - 1) + " has " +
                               std::to_string(counts_[depth_]) + " elements; shape " +
                               ShapeToString(shape_) + " says " + std::to_string(want));
      }
    }
    --depth_;
    if (depth_ == 0 && total_ != expected_) {
      return InvalidArgument("data has " + std::to_string(total_) + " elements; shape " +
                             ShapeToString(shape_) + " needs " + std::to_string(expected_));
    }
    return Status::Ok();
  }

  bool done() const { return depth_ == 0; }

  Status Value(Scalar& v) {
    if (mode_ == Mode::kUnknown) mode_ = depth_ == 1 ? Mode::kFlat : Mode::kNested;
    if (mode_ == Mode::kNested && depth_ != shape_.size()) {
      return InvalidArgument("data has a scalar at depth " + std::to_string(depth_) +
                             "; shape " + ShapeToString(shape_) + " nests " +
                             std::to_string(shape_.size()) + " deep");
    }
    ++counts_[depth_];
    if (++total_ > expected_) {
      return InvalidArgument("data has more than the " + std::to_string(expected_) +
                             " elements of shape " + ShapeToString(shape_));
    }
    return Append(v);
  }

 private:
  enum class Mode { kUnknown, kFlat, kNested };

  Status TypeError(const Scalar& v) const {
    return InvalidArgument("element " + std::to_string(total_ - 1) + " is " +
                           ScalarKindName(v.kind) + ", not a " +
                           std::string(DataTypeName(type_)) + " value");
  }
  Status RangeError(const Scalar& v) const {
    std::string value = v.kind == Scalar::kInt    ? std::to_string(v.i)
                        : v.kind == Scalar::kUint ? std::to_string(v.u)
                                                  : std::to_string(v.d);
    return InvalidArgument("element " + std::to_string(total_ - 1) + " (" + value +
                           ") is out of range for " + std::string(DataTypeName(type_)));
  }

  template <typename T>
  Status AppendInt(const Scalar& v) {
    if (v.kind == Scalar::kInt) {
      if (v.i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (v.i > 0 && static_cast<uint64_t>(v.i) > std::numeric_limits<T>::max())) {
        return RangeError(v);
      }
      AppendPod<T>(out_, static_cast<T>(v.i));
      return Status::Ok();
    }
    if (v.kind == Scalar::kUint) {
      if (v.u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return RangeError(v);
      AppendPod<T>(out_, static_cast<T>(v.u));
      return Status::Ok();
    }
    return TypeError(v);
  }

  Status AppendFloat(const Scalar& v, double* out) {
    switch (v.kind) {
      case Scalar::kNull: *out = std::numeric_limits<double>::quiet_NaN(); return Status::Ok();
      case Scalar::kInt: *out = static_cast<double>(v.i); return Status::Ok();
      case Scalar::kUint: *out = static_cast<double>(v.u); return Status::Ok();
      case Scalar::kFloat: *out = v.d; return Status::Ok();
      default: return TypeError(v);
    }
  }

  Status Append(Scalar& v) {
    switch (type_) {
      case DataType::kBool:
        if (v.kind != Scalar::kBool) return TypeError(v);
        out_.push_back(v.b ? 1 : 0);
        return Status::Ok();
      case DataType::kUint8: return AppendInt<uint8_t>(v);
      case DataType::kUint16: return AppendInt<uint16_t>(v);
      case DataType::kUint32: return AppendInt<uint32_t>(v);
      case DataType::kUint64: return AppendInt<uint64_t>(v);
      case DataType::kInt8: return AppendInt<int8_t>(v);
      case DataType::kInt16: return AppendInt<int16_t>(v);
      case DataType::kInt32: return AppendInt<int32_t>(v);
      case DataType::kInt64: return AppendInt<int64_t>(v);
      case DataType::kFp16: {
        double d = 0;
        RETURN_IF_ERROR(AppendFloat(v, &d));
        const uint16_t h = FloatToHalf(static_cast<float>(d));
        if (std::isfinite(d) && (h & 0x7c00u) == 0x7c00u) return RangeError(v);
        AppendPod<uint16_t>(out_, h);
        return Status::Ok();
      }
      case DataType::kFp32: {
        double d = 0;
        RETURN_IF_ERROR(AppendFloat(v, &d));
        if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
          return RangeError(v);
        }
        AppendPod<float>(out_, static_cast<float>(d));
        return Status::Ok();
      }
      case DataType::kFp64: {
        double d = 0;
        RETURN_IF_ERROR(AppendFloat(v, &d));
        AppendPod<double>(out_, d);
        return Status::Ok();
      }
      case DataType::kBytes:
        if (v.kind != Scalar::kString) return TypeError(v);
        if (v.s.size() > std::numeric_limits<uint32_t>::max()) return RangeError(v);
        AppendByteElement(out_, v.s);
        return Status::Ok();
      case DataType::kInvalid: break;
    }
    return InvalidArgument("unknown datatype");
  }

  const DataType type_;
  const std::vector<int64_t>& shape_;
  const uint64_t expected_;
  std::string& out_;
  std::vector<uint64_t> counts_;  // elements seen in the open array at each depth
  size_t depth_ = 0;
  uint64_t total_ = 0;
  Mode mode_ = Mode::kUnknown;
};

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

// Which document the parser reads: a request (inputs + requested outputs) or a response (outputs).
enum class DocKind { kRequest, kResponse };

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
      case In::kShape: return Fail("'shape' must be an array of integers");
      case In::kData: return Fail("'data' may hold only arrays and scalars, not objects");
      case In::kEnd: return Fail("trailing data after the body");
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
      default: return Fail("unexpected end of object");
    }
  }

  bool start_array(std::size_t) override {
    if (skip_depth_) return ++skip_depth_, true;
    if (!build_.empty()) return BuildOpen(json::array());
    switch (in_) {
      case In::kStart: return Fail("the body must be a JSON object");
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
      case In::kShape: return Fail("'shape' must be a flat array of integers");
      case In::kTensors:
      case In::kRequested: return Fail("'" + key_ + "' must be an array of objects");
      case In::kEnd: return Fail("trailing data after the body");
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
      default: return Fail("unexpected end of array");
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

  std::string_view TensorsKey() const {
    return kind_ == DocKind::kRequest ? "inputs" : "outputs";
  }
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
      case In::kData: return Check(decoder_->Value(v));
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
      case In::kStart: return Fail("the body must be a JSON object");
      case In::kTensors:
      case In::kRequested: return Fail("'" + key_ + "' must be an array of objects");
      case In::kEnd: return Fail("trailing data after the body");
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

// Splits the body, runs the SAX parser, then attaches binary tensors in order.
Status ParseDocument(DocKind kind, std::string_view body, std::optional<size_t> json_length,
                     std::string& id, json& parameters, std::vector<Tensor>& tensors,
                     std::vector<RequestedOutput>* requested, std::string* model_name,
                     std::string* model_version, bool copy_binary) {
  const size_t jlen = json_length.value_or(body.size());
  if (jlen > body.size()) {
    return InvalidArgument(std::string(kInferenceHeaderContentLength) + " " +
                           std::to_string(jlen) + " exceeds the body size " +
                           std::to_string(body.size()));
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
    auto view = std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(binary.data()) + offset, static_cast<size_t>(*size));
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

// --- encoding ---

void AppendString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendFloating(std::string& out, double v, bool single) {
  if (!std::isfinite(v)) {
    out += "null";  // JSON has no NaN or infinity; null reads back as NaN (a missing value)
    return;
  }
  if (v == 0 && std::signbit(v)) {
    out += "-0.0";  // "-0" would read back as the integer 0 and lose the sign
    return;
  }
  if (single) {
    AppendNumber(out, static_cast<float>(v));
  } else {
    AppendNumber(out, v);
  }
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void AppendFlatData(std::string& out, const Tensor& t) {
  const auto bytes = t.bytes();
  const uint8_t* p = bytes.data();
  out += '[';
  if (t.datatype() == DataType::kBytes) {
    size_t pos = 0;
    bool first = true;
    while (pos + 4 <= bytes.size()) {
      const uint32_t len = Load<uint32_t>(p + pos);
      pos += 4;
      if (len > bytes.size() - pos) break;
      if (!first) out += ',';
      first = false;
      AppendString(out, std::string_view(reinterpret_cast<const char*>(p + pos), len));
      pos += len;
    }
    out += ']';
    return;
  }
  const size_t size = DataTypeSize(t.datatype());
  const size_t n = size ? bytes.size() / size : 0;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    const uint8_t* e = p + i * size;
    switch (t.datatype()) {
      case DataType::kBool: out += (*e ? "true" : "false"); break;
      case DataType::kUint8: AppendNumber(out, Load<uint8_t>(e)); break;
      case DataType::kUint16: AppendNumber(out, Load<uint16_t>(e)); break;
      case DataType::kUint32: AppendNumber(out, Load<uint32_t>(e)); break;
      case DataType::kUint64: AppendNumber(out, Load<uint64_t>(e)); break;
      case DataType::kInt8: AppendNumber(out, Load<int8_t>(e)); break;
      case DataType::kInt16: AppendNumber(out, Load<int16_t>(e)); break;
      case DataType::kInt32: AppendNumber(out, Load<int32_t>(e)); break;
      case DataType::kInt64: AppendNumber(out, Load<int64_t>(e)); break;
      case DataType::kFp16: AppendFloating(out, HalfToFloat(Load<uint16_t>(e)), true); break;
      case DataType::kFp32: AppendFloating(out, Load<float>(e), true); break;
      case DataType::kFp64: AppendFloating(out, Load<double>(e), false); break;
      default: break;
    }
  }
  out += ']';
}

void AppendParameters(std::string& out, const json& params) {
  out += params.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Writes one tensor object; raw bytes go to `binary` when `as_binary`.
void AppendTensor(std::string& out, std::string& binary, const Tensor& t, bool as_binary,
                  const json* extra_params) {
  out += "{\"name\":";
  AppendString(out, t.name());
  out += ",\"datatype\":\"";
  out += DataTypeName(t.datatype());
  out += "\",\"shape\":[";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) out += ',';
    AppendNumber(out, t.shape()[i]);
  }
  out += ']';
  if (as_binary) {
    const auto bytes = t.bytes();
    out += ",\"parameters\":{\"binary_data_size\":";
    AppendNumber(out, bytes.size());
    out += '}';
    binary.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    if (extra_params && extra_params->is_object() && !extra_params->empty()) {
      out += ",\"parameters\":";
      AppendParameters(out, *extra_params);
    }
    out += ",\"data\":";
    AppendFlatData(out, t);
  }
  out += '}';
}

EncodedBody Finish(std::string&& json_part, std::string&& binary) {
  EncodedBody e;
  e.json_length = json_part.size();
  e.body = std::move(json_part);
  e.body += binary;
  return e;
}

}  // namespace

Result<std::optional<size_t>> ParseInferenceHeaderLength(std::string_view value,
                                                          size_t body_size) {
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

namespace {

// A cursor over the body for the fast path. Every method returns false on anything outside the
// narrow grammar it accepts; the caller then falls back to the general parser.
class FastCursor {
 public:
  explicit FastCursor(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    SkipSpace();
    return p_ == end_;
  }
  // A string of printable ASCII without escapes.
  bool String(std::string_view& out) {
    if (!Eat('"')) return false;
    const char* start = p_;
    while (p_ < end_ && *p_ != '"') {
      const auto u = static_cast<unsigned char>(*p_);
      if (u < 0x20 || u >= 0x80 || *p_ == '\\') return false;
      ++p_;
    }
    if (p_ == end_) return false;
    out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }
  // A non-negative JSON integer.
  bool Unsigned(uint64_t& out) {
    SkipSpace();
    const char* start = p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ == start || (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E'))) return false;
    auto [ptr, ec] = std::from_chars(start, p_, out);
    return ec == std::errc() && ptr == p_;
  }
  // A JSON number, read exactly as the general path reads it: the nearest double, where an
  // integer "-0" is the integer zero.
  bool Number(double& out) {
    SkipSpace();
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    const char* digits = p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ == digits) return false;
    bool integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      const char* frac = ++p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == frac) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      const char* exp = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == exp) return false;
    }
    auto [ptr, ec] = std::from_chars(start, p_, out);
    if (ec != std::errc() || ptr != p_) return false;  // out of range: let the general path say so
    if (integer && out == 0) out = 0.0;  // "-0" is an integer zero, without a sign
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

bool FastTensor(FastCursor& c, size_t body_size, Tensor& out) {
  if (!c.Eat('{')) return false;
  std::string_view name, datatype;
  std::vector<int64_t> shape;
  bool has_name = false, has_datatype = false, has_shape = false, has_data = false;
  std::string bytes;
  // `data` is decoded once the shape is known, so it must come after `shape`.
  do {
    std::string_view key;
    if (!c.String(key) || !c.Eat(':')) return false;
    if (key == "name" && !has_name) {
      if (!c.String(name)) return false;
      has_name = true;
    } else if (key == "datatype" && !has_datatype) {
      if (!c.String(datatype) || datatype != "FP32") return false;
      has_datatype = true;
    } else if (key == "shape" && !has_shape) {
      if (!c.Eat('[')) return false;
      if (!c.Eat(']')) {
        do {
          uint64_t d;
          if (!c.Unsigned(d) || d > kMaxTensorElements || shape.size() >= kMaxTensorRank) {
            return false;
          }
          shape.push_back(static_cast<int64_t>(d));
        } while (c.Eat(','));
        if (!c.Eat(']')) return false;
      }
      has_shape = true;
    } else if (key == "data" && !has_data && has_shape) {
      auto count = ElementCount(shape);
      if (!count.ok() || *count > body_size) return false;
      bytes.reserve(*count * sizeof(float));
      if (!c.Eat('[')) return false;
      if (!c.Eat(']')) {
        do {
          double d;
          if (!c.Number(d) || bytes.size() >= *count * sizeof(float)) return false;
          if (std::fabs(d) > std::numeric_limits<float>::max()) return false;
          AppendPod<float>(bytes, static_cast<float>(d));
        } while (c.Eat(','));
        if (!c.Eat(']')) return false;
      }
      if (bytes.size() != *count * sizeof(float)) return false;
      has_data = true;
    } else {
      return false;
    }
  } while (c.Eat(','));
  if (!c.Eat('}') || !has_name || !has_datatype || !has_data) return false;
  out = Tensor(std::string(name), DataType::kFp32, std::move(shape));
  out.mutable_bytes() = std::move(bytes);
  return true;
}

}  // namespace

std::optional<InferRequest> ParseCommonInferRequest(std::string_view json) {
  FastCursor c(json);
  InferRequest req;
  bool has_id = false, has_inputs = false;
  if (!c.Eat('{')) return std::nullopt;
  do {
    std::string_view key;
    if (!c.String(key) || !c.Eat(':')) return std::nullopt;
    if (key == "id" && !has_id) {
      std::string_view id;
      if (!c.String(id)) return std::nullopt;
      req.id = std::string(id);
      has_id = true;
    } else if (key == "inputs" && !has_inputs) {
      if (!c.Eat('[')) return std::nullopt;
      if (!c.Eat(']')) {
        do {
          Tensor t;
          if (req.inputs.size() >= kMaxTensors || !FastTensor(c, json.size(), t)) return std::nullopt;
          for (const Tensor& other : req.inputs) {
            if (other.name() == t.name()) return std::nullopt;
          }
          req.inputs.push_back(std::move(t));
        } while (c.Eat(','));
        if (!c.Eat(']')) return std::nullopt;
      }
      has_inputs = true;
    } else {
      return std::nullopt;
    }
  } while (c.Eat(','));
  if (!c.Eat('}') || !c.AtEnd() || !has_inputs) return std::nullopt;
  return req;
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

Result<InferResponse> ParseInferResponse(std::string_view body, std::optional<size_t> json_length) {
  InferResponse res;
  RETURN_IF_ERROR(ParseDocument(DocKind::kResponse, body, json_length, res.id, res.parameters,
                                res.outputs, nullptr, &res.model_name, &res.model_version,
                                /*copy_binary=*/true));
  return res;
}

OutputEncoding OutputEncoding::ForRequest(const InferRequest& request) {
  OutputEncoding e;
  e.binary_all = request.binary_data_output;
  for (const auto& o : request.outputs) {
    if (o.binary_data) e.binary_names.push_back(o.name);
  }
  return e;
}

bool OutputEncoding::IsBinary(std::string_view name) const {
  if (binary_all) return true;
  for (const auto& n : binary_names) {
    if (n == name) return true;
  }
  return false;
}

EncodedBody EncodeInferResponse(const InferResponse& response, const OutputEncoding& encoding) {
  std::string out;
  std::string binary;
  out.reserve(128 + response.outputs.size() * 64);
  out += "{\"model_name\":";
  AppendString(out, response.model_name);
  if (!response.model_version.empty()) {
    out += ",\"model_version\":";
    AppendString(out, response.model_version);
  }
  if (!response.id.empty()) {
    out += ",\"id\":";
    AppendString(out, response.id);
  }
  if (response.parameters.is_object() && !response.parameters.empty()) {
    out += ",\"parameters\":";
    AppendParameters(out, response.parameters);
  }
  out += ",\"outputs\":[";
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    if (i) out += ',';
    const Tensor& t = response.outputs[i];
    AppendTensor(out, binary, t, encoding.IsBinary(t.name()), nullptr);
  }
  out += "]}";
  return Finish(std::move(out), std::move(binary));
}

EncodedBody EncodeInferRequest(const InferRequest& request, bool binary_inputs) {
  std::string out;
  std::string binary;
  out += '{';
  if (!request.id.empty()) {
    out += "\"id\":";
    AppendString(out, request.id);
    out += ',';
  }
  // An empty `parameters` object is kept: a request re-encoded (mirrored, forwarded) must parse
  // back to the same request.
  json params = request.parameters.is_object() ? request.parameters : json::object();
  if (request.binary_data_output) params["binary_data_output"] = true;
  if (request.parameters.is_object() || !params.empty()) {
    out += "\"parameters\":";
    AppendParameters(out, params);
    out += ',';
  }
  out += "\"inputs\":[";
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    if (i) out += ',';
    AppendTensor(out, binary, request.inputs[i], binary_inputs, nullptr);
  }
  out += ']';
  if (!request.outputs.empty()) {
    out += ",\"outputs\":[";
    for (size_t i = 0; i < request.outputs.size(); ++i) {
      if (i) out += ',';
      const auto& o = request.outputs[i];
      json p = o.parameters.is_object() ? o.parameters : json::object();
      if (o.binary_data) p["binary_data"] = true;
      out += "{\"name\":";
      AppendString(out, o.name);
      if (!p.empty()) {
        out += ",\"parameters\":";
        AppendParameters(out, p);
      }
      out += '}';
    }
    out += ']';
  }
  out += '}';
  return Finish(std::move(out), std::move(binary));
}

namespace {

json TensorMetadataJson(const TensorMetadata& t) {
  return json{{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}};
}

}  // namespace

std::string EncodeServerMetadata(std::string_view name, std::string_view version,
                                 const std::vector<std::string>& extensions) {
  json j{{"name", name}, {"version", version}, {"extensions", extensions}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeModelMetadata(const ModelMetadata& metadata,
                                const std::vector<std::string>& versions) {
  json inputs = json::array();
  for (const auto& t : metadata.inputs) inputs.push_back(TensorMetadataJson(t));
  json outputs = json::array();
  for (const auto& t : metadata.outputs) outputs.push_back(TensorMetadataJson(t));
  json j{{"name", metadata.name},
         {"versions", versions},
         {"platform", metadata.platform},
         {"inputs", std::move(inputs)},
         {"outputs", std::move(outputs)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice::dataplane
