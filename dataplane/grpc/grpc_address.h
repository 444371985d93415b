#pragma once

// Small conversions every gRPC listener and client here needs.

#include <chrono>
#include <string>

namespace sluice::dataplane {

// "host:port" for grpc::ServerBuilder::AddListeningPort; a bare IPv6 address gets its brackets.
std::string GrpcHostPort(const std::string& address, int port);

// gRPC takes wall-clock deadlines; this converts a steady-clock one. A deadline already past is
// "now"; one more than a day away is capped at a day (as good as forever here, and far from
// overflowing the conversion).
std::chrono::system_clock::time_point GrpcDeadline(std::chrono::steady_clock::time_point deadline);

}  // namespace sluice::dataplane
