#include "grpc/grpc_address.h"

#include <algorithm>

namespace sluice::dataplane {

std::string GrpcHostPort(const std::string& address, int port) {
  const bool bare_ipv6 = address.find(':') != std::string::npos && address.front() != '[';
  return (bare_ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

std::chrono::system_clock::time_point GrpcDeadline(std::chrono::steady_clock::time_point deadline) {
  auto remaining = deadline - std::chrono::steady_clock::now();
  remaining = std::clamp<std::chrono::steady_clock::duration>(remaining, std::chrono::seconds(0),
                                                              std::chrono::hours(24));
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining);
}

}  // namespace sluice::dataplane
