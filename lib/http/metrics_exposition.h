#pragma once

// Prometheus text exposition of a prometheus-cpp registry, served through our own HttpServer
// (prometheus-cpp's civetweb exposer is not used). Shared by sluice-server, sluice-router and the
// operator.

#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "lib/http/http_server.h"

namespace sluice {

// Content type of the text format, version 0.0.4.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Collects every family in `registry` and renders it in the text format. Thread-safe: collection
// reads the metrics' atomics while other threads update them.
std::string RenderPrometheusText(const prometheus::Registry& registry);

// Registers GET `path` on `router`, answering RenderPrometheusText(*registry). The router keeps the
// registry alive.
void AddMetricsRoute(HttpRouter& router, std::shared_ptr<const prometheus::Registry> registry,
                     std::string path = "/metrics");

}  // namespace sluice
