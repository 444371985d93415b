#pragma once

// What every gRPC listener and client here needs: addresses, deadlines, and starting a listener.

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "lib/base/status.h"

namespace sluice::dataplane {

// "host:port" for grpc::ServerBuilder::AddListeningPort; a bare IPv6 address gets its brackets.
std::string GrpcHostPort(const std::string& address, int port);

// gRPC takes wall-clock deadlines; this converts a steady-clock one. A deadline already past is
// "now"; one more than a day away is capped at a day (as good as forever here, and far from
// overflowing the conversion).
std::chrono::system_clock::time_point GrpcDeadline(std::chrono::steady_clock::time_point deadline);

struct GrpcListener {
  std::unique_ptr<grpc::Server> server;
  uint16_t port = 0;  // the bound port (the asked one, or a free one for 0)
};

// TLS for a gRPC listener from PEM files (a mounted kubernetes.io/tls Secret): gRPC itself
// re-reads them every `refresh_seconds` and keeps the old pair when a new one does not load.
// client_ca_file, when set, requires client certificates issued by it. InvalidArgument when a
// file cannot be read now.
struct GrpcServerTls {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  unsigned refresh_seconds = 2;
};
Result<std::shared_ptr<grpc::ServerCredentials>> MakeGrpcServerCredentials(const GrpcServerTls& tls);

// TLS to backends: the chain is verified against ca_file (empty: the system store); the host
// name only when `server_name` is set (backends are dialled by pod address, which a certificate
// rarely names). InvalidArgument when ca_file cannot be read.
Result<std::shared_ptr<grpc::ChannelCredentials>> MakeGrpcClientCredentials(
    const std::string& ca_file, const std::string& server_name);

// Starts a gRPC server on address:port (an IPv4/IPv6 address, brackets optional, or a host name;
// port 0 picks a free one) with messages up to max_message_bytes each way, after
// `register_services` has added the services to the builder. SO_REUSEPORT is off: a port in use is
// an error, never shared. InvalidArgument for bad options, Unavailable when the port cannot be
// bound.
Result<GrpcListener> StartGrpcListener(
    const std::string& address, int port, int64_t max_message_bytes,
    const std::function<void(grpc::ServerBuilder&)>& register_services,
    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);  // nullptr: plain text

}  // namespace sluice::dataplane
