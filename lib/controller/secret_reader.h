#pragma once

// Reading a Secret the operator is pointed at (a FeatureView's Redis address, a
// ModelDeployment's registry token). One GET per call, never a cache of Secrets: the operator
// reads only the Secrets a resource names, so it needs no list or watch on them.

#include <nlohmann/json.hpp>
#include <string>

#include "lib/base/status.h"
#include "lib/kube/client.h"

namespace sluice::controllers {

class SecretReader {
 public:
  virtual ~SecretReader() = default;
  // The Secret as the API returns it; NotFound when absent; Forbidden when the operator may not
  // read it.
  virtual Result<nlohmann::json> GetSecret(const std::string& ns, const std::string& name) = 0;
};

class KubeSecretReader final : public SecretReader {
 public:
  explicit KubeSecretReader(kube::Client& client) : client_(client) {}
  Result<nlohmann::json> GetSecret(const std::string& ns, const std::string& name) override {
    return client_.Get(kube::resources::kSecrets, ns, name);
  }

 private:
  kube::Client& client_;
};

// The decoded value of `key` of a Secret as the API returns it (data is base64): NotFound when
// the key is absent, InvalidArgument when it is not valid base64.
Result<std::string> SecretValue(const nlohmann::json& secret, const std::string& key);

}  // namespace sluice::controllers
