#include "lib/kube/transport.h"

namespace sluice::kube {

std::string_view Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

}  // namespace sluice::kube
