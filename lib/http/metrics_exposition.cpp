#include "lib/http/metrics_exposition.h"

#include <prometheus/text_serializer.h>

namespace sluice {

std::string RenderPrometheusText(const prometheus::Registry& registry) {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry.Collect());
}

void AddMetricsRoute(HttpRouter& router, std::shared_ptr<const prometheus::Registry> registry,
                     std::string path) {
  router.Handle(HttpVerb::get, std::move(path),
                [registry = std::move(registry)](const HttpRequest&, Responder responder) {
                  responder.SendBody(HttpStatus::ok, kPrometheusContentType,
                                     RenderPrometheusText(*registry));
                });
}

}  // namespace sluice
