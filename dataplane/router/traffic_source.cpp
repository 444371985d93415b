#include "dataplane/router/traffic_source.h"

#include <spdlog/spdlog.h>

#include "lib/api/canary_protection.h"
#include "lib/api/model_deployment.h"
#include "lib/api/object_labels.h"

namespace sluice::dataplane {

using nlohmann::json;

Result<TrafficConfig> TrafficConfigFromModelDeployment(const json& object) {
  auto md = controllers::ParseModelDeployment(object);
  if (!md.ok()) return InvalidArgument(md.status().message());
  TrafficConfig config;
  if (md->status) {
    for (const auto& t : md->status->traffic) {
      config.targets.push_back({t.revision, t.weight, t.mirror_percent.value_or(0)});
    }
  }
  if (md->spec.traffic && md->spec.traffic->sticky) {
    config.sticky_header = md->spec.traffic->sticky->header;
  }
  if (md->status && md->status->stable_revision)
    config.stable_revision = *md->status->stable_revision;
  config.retry_on_stable = api::RetryOnStable(md->spec);
  config.guard.max_error_rate = api::GuardMaxErrorRate(md->spec);
  config.guard.window = std::chrono::milliseconds(api::GuardWindowMs(md->spec));
  return config;
}

namespace {

std::vector<std::string> ServiceNameIndex(const json& object) {
  auto m = object.find("metadata");
  if (m == object.end()) return {};
  auto labels = m->find("labels");
  if (labels == m->end() || !labels->is_object()) return {};
  auto it = labels->find(api::kServiceNameLabel);
  if (it == labels->end() || !it->is_string()) return {};
  return {it->get<std::string>()};
}

}  // namespace

TrafficSource::TrafficSource(kube::Client& client, TrafficSourceOptions options,
                             RoutingState& state, RouterMetrics* metrics)
    : options_(std::move(options)), state_(state), metrics_(metrics) {
  kube::InformerOptions md_options;
  md_options.name = "modeldeployment " + options_.ns + "/" + options_.model_deployment;
  md_options.watcher.name = md_options.name;
  md_options.watcher.field_selector = "metadata.name=" + options_.model_deployment;
  md_options.watcher.transform = kube::StripManagedFields;
  md_informer_ =
      kube::Informer::ForResource(client, api::kModelDeploymentsGvr, options_.ns, md_options);

  kube::InformerOptions slice_options;
  slice_options.name = "endpointslices " + options_.ns;
  slice_options.watcher.name = slice_options.name;
  slice_options.watcher.label_selector = api::kServiceNameLabel;  // "has the label"
  slice_options.watcher.transform = kube::StripManagedFields;
  slice_options.indexers = {{api::kServiceNameLabel, ServiceNameIndex}};
  slice_informer_ =
      kube::Informer::ForResource(client, kEndpointSlicesResource, options_.ns, slice_options);

  for (kube::Informer* informer : {md_informer_.get(), slice_informer_.get()}) {
    auto handler = std::make_shared<kube::ResourceEventHandlerFuncs>();
    handler->on_add = [this](const kube::ObjectPtr&) { Rebuild(); };
    handler->on_update = [this](const kube::ObjectPtr&, const kube::ObjectPtr&) { Rebuild(); };
    handler->on_delete = [this](const kube::ObjectPtr&, bool) { Rebuild(); };
    informer->AddEventHandler(std::move(handler));
  }
}

TrafficSource::~TrafficSource() {
  Stop();
}

void TrafficSource::Start() {
  md_informer_->Start();
  slice_informer_->Start();
}

void TrafficSource::Stop() {
  md_informer_->Stop();
  slice_informer_->Stop();
}

bool TrafficSource::HasSynced() const {
  return md_informer_->HasSynced() && slice_informer_->HasSynced();
}

void TrafficSource::Rebuild() {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string md_key = options_.ns + "/" + options_.model_deployment;
  kube::ObjectPtr md = md_informer_->store()->Get(md_key);
  TrafficConfig config;
  if (md) {
    auto parsed = TrafficConfigFromModelDeployment(*md);
    if (!parsed.ok()) {
      spdlog::warn("md={} cannot read the ModelDeployment, keeping the current routing: {}", md_key,
                   parsed.status().message());
      return;
    }
    config = std::move(parsed).value();
    md_found_ = true;
  } else if (md_found_) {
    spdlog::warn("md={} the ModelDeployment is gone; no revision takes traffic", md_key);
    md_found_ = false;
  }

  std::vector<std::pair<std::string, std::vector<Endpoint>>> endpoints;
  auto slices = slice_informer_->store();
  for (const TrafficTarget& t : config.targets) {
    std::vector<kube::ObjectPtr> held = slices->ByIndex(api::kServiceNameLabel, t.revision);
    std::vector<const json*> raw;
    raw.reserve(held.size());
    for (const auto& s : held) raw.push_back(s.get());
    endpoints.emplace_back(t.revision, EndpointsFromSlices(raw, options_.upstream_port,
                                                              options_.upstream_grpc_port));
  }
  std::shared_ptr<const RoutingTable> previous = state_.Load();
  auto table = RoutingTable::Build(config, endpoints, metrics_, previous.get());
  const std::string description = table->Describe();
  state_.Publish(std::move(table));
  updates_.fetch_add(1, std::memory_order_relaxed);
  if (metrics_ != nullptr) metrics_->routing_updates().Increment();
  if (description != last_description_) {
    spdlog::info("md={} routing: {}", md_key, description);
    last_description_ = description;
  }
}

}  // namespace sluice::dataplane
