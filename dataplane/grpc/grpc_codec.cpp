#include "dataplane/grpc/grpc_codec.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <set>
#include <string_view>
#include <utility>

namespace sluice::dataplane {

namespace {

// Typed contents are viewed in place as tensor bytes, which are little-endian by definition.
static_assert(std::endian::native == std::endian::little,
              "typed contents are viewed in place as little-endian tensor bytes");
static_assert(sizeof(bool) == 1, "BOOL contents are viewed in place as one byte per element");

using Contents = inference::InferTensorContents;
template <typename T>
using Repeated = google::protobuf::RepeatedField<T>;

// The field of InferTensorContents that carries a datatype's elements.
enum class Field { kNone, kBool, kInt, kInt64, kUint, kUint64, kFp32, kFp64, kBytes };

constexpr Field kAllFields[] = {Field::kBool,   Field::kInt,  Field::kInt64, Field::kUint,
                                Field::kUint64, Field::kFp32, Field::kFp64,  Field::kBytes};

Field FieldFor(DataType type) {
  switch (type) {
    case DataType::kBool:
      return Field::kBool;
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
      return Field::kInt;
    case DataType::kInt64:
      return Field::kInt64;
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
      return Field::kUint;
    case DataType::kUint64:
      return Field::kUint64;
    case DataType::kFp32:
      return Field::kFp32;
    case DataType::kFp64:
      return Field::kFp64;
    case DataType::kBytes:
      return Field::kBytes;
    case DataType::kFp16:
    case DataType::kInvalid:
      return Field::kNone;
  }
  return Field::kNone;
}

std::string_view FieldName(Field f) {
  switch (f) {
    case Field::kBool:
      return "bool_contents";
    case Field::kInt:
      return "int_contents";
    case Field::kInt64:
      return "int64_contents";
    case Field::kUint:
      return "uint_contents";
    case Field::kUint64:
      return "uint64_contents";
    case Field::kFp32:
      return "fp32_contents";
    case Field::kFp64:
      return "fp64_contents";
    case Field::kBytes:
      return "bytes_contents";
    case Field::kNone:
      break;
  }
  return "no field";
}

int FieldSize(const Contents& c, Field f) {
  switch (f) {
    case Field::kBool:
      return c.bool_contents_size();
    case Field::kInt:
      return c.int_contents_size();
    case Field::kInt64:
      return c.int64_contents_size();
    case Field::kUint:
      return c.uint_contents_size();
    case Field::kUint64:
      return c.uint64_contents_size();
    case Field::kFp32:
      return c.fp32_contents_size();
    case Field::kFp64:
      return c.fp64_contents_size();
    case Field::kBytes:
      return c.bytes_contents_size();
    case Field::kNone:
      break;
  }
  return 0;
}

// The first populated field other than `want`, or kNone.
Field StrayField(const Contents& c, Field want) {
  for (Field f : kAllFields) {
    if (f != want && FieldSize(c, f) > 0) return f;
  }
  return Field::kNone;
}

std::string Quoted(const std::string& name) {
  return "'" + name + "'";
}

template <typename T>
void View(const Repeated<T>& field, Tensor& t) {
  t.set_external({reinterpret_cast<const uint8_t*>(field.data()), field.size() * sizeof(T)});
}

// Typed fields carry INT8/INT16 as int32 and UINT8/UINT16 as uint32: narrow with a range check.
template <typename Dst, typename Src>
Status Narrow(const Repeated<Src>& field, const std::string& input, Tensor& t) {
  std::string& out = t.mutable_bytes();
  out.resize(static_cast<size_t>(field.size()) * sizeof(Dst));
  for (int i = 0; i < field.size(); ++i) {
    const Src v = field.Get(i);
    if (!std::in_range<Dst>(v)) {
      return InvalidArgument("input " + Quoted(input) + " element " + std::to_string(i) + ": " +
                             std::to_string(v) + " is out of range for " +
                             std::string(DataTypeName(t.datatype())));
    }
    const Dst d = static_cast<Dst>(v);
    std::memcpy(out.data() + static_cast<size_t>(i) * sizeof(Dst), &d, sizeof(Dst));
  }
  return Status::Ok();
}

Status DecodeTyped(const inference::ModelInferRequest::InferInputTensor& input, uint64_t count,
                   Tensor& t) {
  const std::string& name = input.name();
  const std::string type_name(DataTypeName(t.datatype()));
  const Field want = FieldFor(t.datatype());
  if (want == Field::kNone) {
    return InvalidArgument("input " + Quoted(name) + " is " + type_name +
                           ", which has no typed contents; send it in raw_input_contents");
  }
  const Contents& c = input.contents();
  if (Field stray = StrayField(c, want); stray != Field::kNone) {
    return InvalidArgument("input " + Quoted(name) + " of datatype " + type_name +
                           " carries values in " + std::string(FieldName(stray)) + "; " +
                           type_name + " values go in " + std::string(FieldName(want)));
  }
  const int have = FieldSize(c, want);
  if (static_cast<uint64_t>(have) != count) {
    return InvalidArgument("input " + Quoted(name) + " has " + std::to_string(have) +
                           " values in " + std::string(FieldName(want)) + "; shape " +
                           ShapeToString(t.shape()) + " needs " + std::to_string(count));
  }
  switch (t.datatype()) {
    case DataType::kBool:
      View(c.bool_contents(), t);
      break;
    case DataType::kInt8:
      return Narrow<int8_t>(c.int_contents(), name, t);
    case DataType::kInt16:
      return Narrow<int16_t>(c.int_contents(), name, t);
    case DataType::kInt32:
      View(c.int_contents(), t);
      break;
    case DataType::kInt64:
      View(c.int64_contents(), t);
      break;
    case DataType::kUint8:
      return Narrow<uint8_t>(c.uint_contents(), name, t);
    case DataType::kUint16:
      return Narrow<uint16_t>(c.uint_contents(), name, t);
    case DataType::kUint32:
      View(c.uint_contents(), t);
      break;
    case DataType::kUint64:
      View(c.uint64_contents(), t);
      break;
    case DataType::kFp32:
      View(c.fp32_contents(), t);
      break;
    case DataType::kFp64:
      View(c.fp64_contents(), t);
      break;
    case DataType::kBytes: {
      std::string& out = t.mutable_bytes();
      size_t total = 0;
      for (const std::string& e : c.bytes_contents()) total += 4 + e.size();
      out.reserve(total);
      for (const std::string& e : c.bytes_contents()) {
        if (e.size() > UINT32_MAX) {
          return InvalidArgument("input " + Quoted(name) + " has a BYTES element over 4 GiB");
        }
        AppendByteElement(out, e);
      }
      break;
    }
    case DataType::kFp16:
    case DataType::kInvalid:
      break;  // refused above
  }
  return Status::Ok();
}

template <typename T>
void CopyInto(std::span<const uint8_t> bytes, Repeated<T>* field) {
  const int n = static_cast<int>(bytes.size() / sizeof(T));
  field->Resize(n, T{});
  if (n > 0) std::memcpy(field->mutable_data(), bytes.data(), static_cast<size_t>(n) * sizeof(T));
}

template <typename Src, typename Dst>
void WidenInto(std::span<const uint8_t> bytes, Repeated<Dst>* field) {
  const int n = static_cast<int>(bytes.size() / sizeof(Src));
  field->Reserve(n);
  for (int i = 0; i < n; ++i) {
    Src v;
    std::memcpy(&v, bytes.data() + static_cast<size_t>(i) * sizeof(Src), sizeof(Src));
    field->AddAlreadyReserved(static_cast<Dst>(v));
  }
}

Status EncodeTyped(const Tensor& t, Contents& c) {
  const auto bytes = t.bytes();
  switch (t.datatype()) {
    case DataType::kBool: {
      auto* f = c.mutable_bool_contents();
      f->Reserve(static_cast<int>(bytes.size()));
      for (uint8_t b : bytes) f->AddAlreadyReserved(b != 0);
      return Status::Ok();
    }
    case DataType::kInt8:
      WidenInto<int8_t>(bytes, c.mutable_int_contents());
      break;
    case DataType::kInt16:
      WidenInto<int16_t>(bytes, c.mutable_int_contents());
      break;
    case DataType::kInt32:
      CopyInto(bytes, c.mutable_int_contents());
      break;
    case DataType::kInt64:
      CopyInto(bytes, c.mutable_int64_contents());
      break;
    case DataType::kUint8:
      WidenInto<uint8_t>(bytes, c.mutable_uint_contents());
      break;
    case DataType::kUint16:
      WidenInto<uint16_t>(bytes, c.mutable_uint_contents());
      break;
    case DataType::kUint32:
      CopyInto(bytes, c.mutable_uint_contents());
      break;
    case DataType::kUint64:
      CopyInto(bytes, c.mutable_uint64_contents());
      break;
    case DataType::kFp32:
      CopyInto(bytes, c.mutable_fp32_contents());
      break;
    case DataType::kFp64:
      CopyInto(bytes, c.mutable_fp64_contents());
      break;
    case DataType::kBytes: {
      // Validate() has checked that the length prefixes tile the buffer.
      size_t pos = 0;
      while (pos + 4 <= bytes.size()) {
        uint32_t len;
        std::memcpy(&len, bytes.data() + pos, 4);
        pos += 4;
        c.add_bytes_contents()->assign(reinterpret_cast<const char*>(bytes.data() + pos), len);
        pos += len;
      }
      break;
    }
    case DataType::kFp16:
    case DataType::kInvalid:
      return Internal("output " + Quoted(t.name()) + " of datatype " +
                      std::string(DataTypeName(t.datatype())) + " has no typed contents");
  }
  return Status::Ok();
}

// Indexes of the response tensors to send: those the request names, in its order, or all.
Result<std::vector<size_t>> SelectOutputs(const inference::ModelInferRequest& request,
                                          const InferResponse& response) {
  std::vector<size_t> out;
  if (request.outputs_size() == 0) {
    for (size_t i = 0; i < response.outputs.size(); ++i) out.push_back(i);
    return out;
  }
  for (const auto& wanted : request.outputs()) {
    size_t i = 0;
    while (i < response.outputs.size() && response.outputs[i].name() != wanted.name()) ++i;
    if (i == response.outputs.size()) {
      return Internal("the model produced no output " + Quoted(wanted.name()));
    }
    out.push_back(i);
  }
  return out;
}

bool AnyWithoutTypedForm(const InferResponse& response, const std::vector<size_t>& selected) {
  for (size_t i : selected) {
    if (FieldFor(response.outputs[i].datatype()) == Field::kNone) return true;
  }
  return false;
}

void SetParameter(const nlohmann::json& v, inference::InferParameter& p) {
  switch (v.type()) {
    case nlohmann::json::value_t::boolean:
      p.set_bool_param(v.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
      p.set_int64_param(v.get<int64_t>());
      break;
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) {
        p.set_int64_param(static_cast<int64_t>(u));
      } else {
        p.set_uint64_param(u);
      }
      break;
    }
    case nlohmann::json::value_t::number_float:
      p.set_double_param(v.get<double>());
      break;
    case nlohmann::json::value_t::string:
      p.set_string_param(v.get<std::string>());
      break;
    default:
      p.set_string_param(v.dump());
      break;
  }
}

}  // namespace

Result<InferRequest> FromGrpcRequest(const inference::ModelInferRequest& message) {
  InferRequest r;
  r.model_name = message.model_name();
  r.model_version = message.model_version();
  r.id = message.id();
  r.parameters = ParametersToJson(message.parameters());
  const bool raw = message.raw_input_contents_size() > 0;
  if (raw && message.raw_input_contents_size() != message.inputs_size()) {
    return InvalidArgument("the request has " + std::to_string(message.raw_input_contents_size()) +
                           " raw_input_contents entries for " +
                           std::to_string(message.inputs_size()) +
                           " inputs; raw contents need one entry per input, in input order");
  }
  r.inputs.reserve(static_cast<size_t>(message.inputs_size()));
  for (int i = 0; i < message.inputs_size(); ++i) {
    const auto& input = message.inputs(i);
    const DataType type = ParseDataType(input.datatype());
    if (type == DataType::kInvalid) {
      return InvalidArgument("input " + Quoted(input.name()) +
                             (input.datatype().empty()
                                  ? std::string(" has no datatype")
                                  : " has unknown datatype " + Quoted(input.datatype())));
    }
    Tensor& t = r.inputs.emplace_back(
        input.name(), type, std::vector<int64_t>(input.shape().begin(), input.shape().end()));
    auto count = ElementCount(t.shape());
    if (!count.ok()) return count.status().Annotate("input " + Quoted(input.name()));
    if (raw) {
      if (Field stray = StrayField(input.contents(), Field::kNone); stray != Field::kNone) {
        return InvalidArgument("input " + Quoted(input.name()) + " carries typed contents (" +
                               std::string(FieldName(stray)) +
                               ") in a request that uses raw_input_contents; use one or the other");
      }
      const std::string& bytes = message.raw_input_contents(i);
      t.set_external({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
      RETURN_IF_ERROR(t.Validate().Annotate("raw_input_contents[" + std::to_string(i) + "]"));
    } else {
      RETURN_IF_ERROR(DecodeTyped(input, *count, t));
    }
  }
  std::set<std::string_view> requested;
  r.outputs.reserve(static_cast<size_t>(message.outputs_size()));
  for (const auto& o : message.outputs()) {
    if (!requested.insert(o.name()).second) {
      return InvalidArgument("output " + Quoted(o.name()) + " is requested twice");
    }
    r.outputs.push_back(RequestedOutput{o.name(), false, ParametersToJson(o.parameters())});
  }
  return r;
}

bool AnswerRaw(const inference::ModelInferRequest& request, const InferResponse& response) {
  if (request.raw_input_contents_size() > 0) return true;
  auto selected = SelectOutputs(request, response);
  return selected.ok() && AnyWithoutTypedForm(response, *selected);
}

Status ToGrpcResponse(InferResponse&& response, const inference::ModelInferRequest& request,
                      inference::ModelInferResponse& out) {
  out.set_model_name(response.model_name);
  out.set_model_version(response.model_version);
  out.set_id(response.id);
  *out.mutable_parameters() = request.parameters();
  if (response.parameters.is_object())
    JsonToParameters(response.parameters, *out.mutable_parameters());
  ASSIGN_OR_RETURN(std::vector<size_t> selected, SelectOutputs(request, response));
  const bool raw = request.raw_input_contents_size() > 0 || AnyWithoutTypedForm(response, selected);
  for (size_t i : selected) {
    Tensor* t = &response.outputs[i];
    if (Status s = t->Validate(); !s.ok()) {
      return Internal("the model produced a malformed output: " + s.message());
    }
    auto* o = out.add_outputs();
    o->set_name(t->name());
    o->set_datatype(std::string(DataTypeName(t->datatype())));
    o->mutable_shape()->Add(t->shape().begin(), t->shape().end());
    if (raw) {
      std::string* dst = out.add_raw_output_contents();
      if (t->is_external()) {
        const auto b = t->bytes();
        dst->assign(reinterpret_cast<const char*>(b.data()), b.size());
      } else {
        *dst = std::move(t->mutable_bytes());
      }
    } else if (t->bytes().size() / std::max<size_t>(1, DataTypeSize(t->datatype())) > INT_MAX) {
      return Internal("output " + Quoted(t->name()) + " is too large for typed contents");
    } else {
      RETURN_IF_ERROR(EncodeTyped(*t, *o->mutable_contents()));
    }
  }
  return Status::Ok();
}

void ToGrpcMetadata(const ModelMetadata& metadata, const std::string& name,
                    const std::vector<std::string>& versions,
                    inference::ModelMetadataResponse& out) {
  out.set_name(name);
  for (const auto& v : versions) out.add_versions(v);
  out.set_platform(metadata.platform);
  auto fill = [](const TensorMetadata& t, inference::ModelMetadataResponse::TensorMetadata& o) {
    o.set_name(t.name);
    o.set_datatype(t.datatype);
    o.mutable_shape()->Add(t.shape.begin(), t.shape.end());
  };
  for (const auto& t : metadata.inputs) fill(t, *out.add_inputs());
  for (const auto& t : metadata.outputs) fill(t, *out.add_outputs());
}

nlohmann::json ParametersToJson(const GrpcParameters& parameters) {
  if (parameters.empty()) return nullptr;
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, p] : parameters) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam:
        out[key] = p.bool_param();
        break;
      case inference::InferParameter::kInt64Param:
        out[key] = p.int64_param();
        break;
      case inference::InferParameter::kStringParam:
        out[key] = p.string_param();
        break;
      case inference::InferParameter::kDoubleParam:
        out[key] = p.double_param();
        break;
      case inference::InferParameter::kUint64Param:
        out[key] = p.uint64_param();
        break;
      case inference::InferParameter::PARAMETER_CHOICE_NOT_SET:
        out[key] = nullptr;
        break;
    }
  }
  return out;
}

void JsonToParameters(const nlohmann::json& object, GrpcParameters& out) {
  if (!object.is_object()) return;
  for (const auto& [key, value] : object.items()) {
    inference::InferParameter p;
    SetParameter(value, p);
    out[key] = std::move(p);
  }
}

grpc::StatusCode GrpcCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kBadRequest:
    case StatusCode::kInvalid:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
    case StatusCode::kConflict:
      return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kUnauthorized:
      return grpc::StatusCode::UNAUTHENTICATED;
    case StatusCode::kForbidden:
      return grpc::StatusCode::PERMISSION_DENIED;
    // Not ready yet, shutting down, or interrupted by the shutdown: another replica can answer.
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kResourceExhausted:
    case StatusCode::kTooManyRequests:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kTimeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kGone:
    case StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(GrpcCodeFor(status.code()), status.message());
}

}  // namespace sluice::dataplane
