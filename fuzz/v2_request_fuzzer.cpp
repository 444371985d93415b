// libFuzzer target: a V2 REST request body as JSON (no binary section).
#include <cstddef>
#include <cstdint>

#include "fuzz/roundtrip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto req = sluice::dataplane::ParseInferRequest(body, std::nullopt);
  if (req.ok()) {
    sluice::fuzz::CheckRequestRoundTrip(*req);
    sluice::fuzz::CheckResponseRoundTrip(*req);
  }
  return 0;
}
