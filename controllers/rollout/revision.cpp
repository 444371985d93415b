#include "controllers/rollout/revision.h"

#include <cstdint>

#include "lib/api/duration.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;

std::string CanonicalDuration(const std::optional<std::string>& text, const char* fallback) {
  const std::string raw = text.value_or(fallback);
  Result<std::chrono::milliseconds> d = ParseDuration(raw);
  return d.ok() ? FormatDuration(*d) : raw;
}

// The pod-affecting part of the spec, with CRD defaults filled in and durations in one spelling.
json PodAffecting(const ModelDeploymentSpec& spec) {
  json model = json::object();
  model["uri"] = spec.model.uri;
  model["format"] = spec.model.format.value_or("auto");
  if (spec.model.version) model["version"] = *spec.model.version;
  if (spec.model.sha256) model["sha256"] = *spec.model.sha256;
  // Only when set, so revisions of ModelDeployments without them keep their names.
  if (spec.model.credentials && spec.model.credentials->secret_ref) {
    model["credentials"] = spec.model.credentials->secret_ref->name;
  }
  if (const auto& s3 = spec.model.s3) {
    json j = json::object();
    if (s3->endpoint) j["endpoint"] = *s3->endpoint;
    if (s3->region) j["region"] = *s3->region;
    if (s3->addressing_style && *s3->addressing_style != "auto") {
      j["addressingStyle"] = *s3->addressing_style;
    }
    if (!j.empty()) model["s3"] = j;
  }
  // A revision resolved from a registry: its tracking server is in the pod's command line.
  if (spec.model.registry && spec.model.registry->tracking_uri) {
    model["trackingUri"] = *spec.model.registry->tracking_uri;
  }

  json runtime = json::object();
  if (spec.runtime) {
    const RuntimeSpec& rt = *spec.runtime;
    if (rt.image && !rt.image->empty()) runtime["image"] = *rt.image;
    if (rt.resources && !rt.resources->empty()) runtime["resources"] = *rt.resources;
    if (rt.batching) {
      runtime["batching"] = {
          {"maxBatchSize", rt.batching->max_batch_size.value_or(32)},
          {"maxQueueDelay", CanonicalDuration(rt.batching->max_queue_delay, "1ms")},
          {"maxQueueSize", rt.batching->max_queue_size.value_or(1024)},
      };
    }
    if (rt.cache) {
      runtime["cache"] = {
          {"enabled", rt.cache->enabled.value_or(true)},
          {"capacity", rt.cache->capacity.value_or(10000)},
          {"ttl", CanonicalDuration(rt.cache->ttl, "60s")},
      };
    }
    if (rt.env && !rt.env->empty()) runtime["env"] = *rt.env;
    if (rt.args && !rt.args->empty()) runtime["args"] = *rt.args;
    // Only when set, so revisions of ModelDeployments without it keep their names.
    if (rt.feature_budget) runtime["featureBudget"] = CanonicalDuration(rt.feature_budget, "2ms");
  }
  json out = {{"model", model}, {"runtime", runtime}};
  // Only when set, so revisions of ModelDeployments without it keep their names.
  if (spec.tls) out["tls"] = spec.tls->secret_name;
  return out;
}

uint64_t Fnv1a64(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

std::string RevisionHash(const ModelDeploymentSpec& spec, const std::string& features) {
  // json objects keep their keys sorted, so dump() is a canonical form.
  json affecting = PodAffecting(spec);
  if (!features.empty()) affecting["features"] = features;
  uint64_t h = Fnv1a64(affecting.dump());
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out.push_back(kAlphabet[h % kAlphabet.size()]);
    h /= kAlphabet.size();
  }
  return out;
}

std::string RevisionName(const std::string& model_deployment_name,
                         const ModelDeploymentSpec& spec, const std::string& features) {
  return model_deployment_name + "-" + RevisionHash(spec, features);
}

}  // namespace sluice::controllers
