#include "lib/controller/secret_reader.h"

#include "lib/base/base64.h"

namespace sluice::controllers {

Result<std::string> SecretValue(const nlohmann::json& secret, const std::string& key) {
  // stringData is write-only in the API; a Secret read back has data only. Tests' fakes may
  // hold stringData, which the API server would have merged into data.
  for (const char* field : {"data", "stringData"}) {
    auto f = secret.find(field);
    if (f == secret.end() || !f->is_object()) continue;
    auto v = f->find(key);
    if (v == f->end() || !v->is_string()) continue;
    if (std::string_view(field) == "stringData") return v->get<std::string>();
    std::optional<std::string> decoded = DecodeBase64(v->get<std::string>());
    if (!decoded) return InvalidArgument("key " + key + " is not valid base64");
    return *decoded;
  }
  return NotFound("no key " + key);
}

}  // namespace sluice::controllers
