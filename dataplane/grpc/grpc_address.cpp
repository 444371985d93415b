#include "dataplane/grpc/grpc_address.h"

#include <grpc/grpc.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <climits>

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

Result<GrpcListener> StartGrpcListener(
    const std::string& address, int port, int64_t max_message_bytes,
    const std::function<void(grpc::ServerBuilder&)>& register_services) {
  if (address.empty()) return InvalidArgument("gRPC: an address to listen on is needed");
  if (port < 0 || port > 65535) {
    return InvalidArgument("gRPC: port " + std::to_string(port) + " is out of range");
  }
  if (max_message_bytes <= 0 || max_message_bytes > INT_MAX) {
    return InvalidArgument("gRPC: max message size " + std::to_string(max_message_bytes) +
                           " is outside [1, " + std::to_string(INT_MAX) + "]");
  }
  const std::string target = GrpcHostPort(address, port);
  int selected_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, grpc::InsecureServerCredentials(), &selected_port);
  register_services(builder);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  // gRPC sets SO_REUSEPORT by default, which would let a second server share a busy port and
  // take half its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  GrpcListener listener;
  listener.server = builder.BuildAndStart();
  if (!listener.server || selected_port == 0) return Unavailable("gRPC: cannot listen on " + target);
  listener.port = static_cast<uint16_t>(selected_port);
  return listener;
}

}  // namespace sluice::dataplane
