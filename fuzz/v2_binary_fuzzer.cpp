// libFuzzer target: the binary tensor extension. The first two bytes give the JSON header length
// (Inference-Header-Content-Length, taken modulo the body size + 1); the rest is the body.
#include <cstddef>
#include <cstdint>

#include "fuzz/roundtrip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t body_size = size - 2;
  const size_t json_length = (static_cast<size_t>(data[0]) << 8 | data[1]) % (body_size + 1);
  const std::string_view body(reinterpret_cast<const char*>(data + 2), body_size);
  auto req = sluice::dataplane::ParseInferRequest(body, json_length);
  if (req.ok()) {
    sluice::fuzz::CheckRequestRoundTrip(*req);
    sluice::fuzz::CheckResponseRoundTrip(*req);
  }
  // The header value itself comes from outside too.
  (void)sluice::dataplane::ParseInferenceHeaderLength(
      std::string_view(reinterpret_cast<const char*>(data), std::min<size_t>(size, 24)), body_size);
  return 0;
}
