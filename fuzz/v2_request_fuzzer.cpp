// libFuzzer target: a V2 REST request body as JSON (no binary section).
#include <cstddef>
#include <cstdint>

#include "fuzz/roundtrip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  // With an explicit header length the general (SAX) parser runs; without, the fast path first.
  auto general = sluice::dataplane::ParseInferRequest(body, body.size());
  auto fast = sluice::dataplane::ParseCommonInferRequest(body);
  if (fast) {
    sluice::fuzz::Check(general.ok(), "the fast path accepted a body the general parser refuses");
    sluice::fuzz::CheckSameRequest(*fast, *general);
  }
  if (general.ok()) {
    sluice::fuzz::CheckRequestRoundTrip(*general);
    sluice::fuzz::CheckResponseRoundTrip(*general);
  }
  return 0;
}
