#pragma once

// Transport-independent inference requests and responses (the Open Inference Protocol's model),
// shared by the REST frontend and a gRPC frontend.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/server/tensor.h"

namespace sluice::dataplane {

struct RequestedOutput {
  std::string name;
  bool binary_data = false;  // REST binary extension: answer this output as raw bytes
  nlohmann::json parameters;  // null when absent
};

struct InferRequest {
  std::string model_name;
  std::string model_version;  // empty: the model's default version
  std::string id;
  nlohmann::json parameters;  // null when absent
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every output
  bool binary_data_output = false;       // REST binary extension: every output as raw bytes
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  nlohmann::json parameters;
  std::vector<Tensor> outputs;
};

}  // namespace sluice::dataplane
