#include "dataplane/grpc/grpc_address.h"

#include <grpc/grpc.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <sstream>

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

namespace {

Status Readable(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) return InvalidArgument(std::string("gRPC TLS: cannot read the ") + what + " " + path);
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> MakeGrpcServerCredentials(const GrpcServerTls& tls) {
  RETURN_IF_ERROR(Readable(tls.cert_file, "certificate"));
  RETURN_IF_ERROR(Readable(tls.key_file, "key"));
  if (!tls.client_ca_file.empty()) RETURN_IF_ERROR(Readable(tls.client_ca_file, "client CA"));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, std::max(1u, tls.refresh_seconds));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (!creds) return InvalidArgument("gRPC TLS: cannot build server credentials");
  return creds;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> MakeGrpcClientCredentials(
    const std::string& ca_file, const std::string& server_name) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  if (!ca_file.empty()) {
    RETURN_IF_ERROR(Readable(ca_file, "CA"));
    options.set_certificate_provider(
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(ca_file, 10));
    options.watch_root_certs();
  }
  options.set_verify_server_certs(true);
  if (server_name.empty()) {
    // The chain is still verified; only the name is not compared with the dialled address.
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    options.set_check_call_host(false);
  } else {
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  }
  auto creds = grpc::experimental::TlsCredentials(options);
  if (!creds) return InvalidArgument("gRPC TLS: cannot build channel credentials");
  return creds;
}

Result<GrpcListener> StartGrpcListener(
    const std::string& address, int port, int64_t max_message_bytes,
    const std::function<void(grpc::ServerBuilder&)>& register_services,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
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
  builder.AddListeningPort(target, credentials ? credentials : grpc::InsecureServerCredentials(),
                           &selected_port);
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
