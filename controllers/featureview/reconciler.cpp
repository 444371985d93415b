#include "controllers/featureview/reconciler.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "lib/api/duration.h"
#include "lib/api/model_deployment.h"
#include "lib/api/time.h"
#include "controllers/featureview/validation.h"

namespace sluice::controllers {

using nlohmann::json;

const kube::GroupVersionResource kFeatureViewsGvr{"sluice.dev", "v1alpha1", "featureviews", true,
                                                  "FeatureView"};

namespace {

constexpr char kApiVersionFv[] = "sluice.dev/v1alpha1";

const json* Path(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string StringAt(const json& j, std::initializer_list<const char*> path) {
  const json* v = Path(j, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// Standard base64 (Secret data); nullopt on malformed input.
std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : in) {
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) return std::nullopt;
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (padding > 2 || (in.size() % 4) != 0) return std::nullopt;
  return out;
}

FeatureViewCheck Fail(std::string reason, std::string message, bool retry_later = false) {
  return FeatureViewCheck{false, std::move(reason), std::move(message), retry_later};
}

// Typed defaults exactly (CEL compares 64-bit integers through doubles and cannot bound floats).
std::optional<std::string> CheckDefault(const std::string& type, const std::string& value) {
  if (type == "INT64" || type == "UNIX_TIMESTAMP") {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || ptr != value.data() + value.size()) {
      return "\"" + value + "\" is not a 64-bit integer";
    }
  } else if (type == "FLOAT" || type == "DOUBLE") {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(value.c_str(), &end);
    if (end != value.c_str() + value.size() || errno == ERANGE || !std::isfinite(v)) {
      return "\"" + value + "\" is not a finite number";
    }
    if (type == "FLOAT" && std::fabs(v) > 3.4028234663852886e38) {
      return "\"" + value + "\" is outside the range of a 32-bit float";
    }
  }
  return std::nullopt;
}

Condition MakeCondition(const std::string& type, bool status, const std::string& reason,
                        const std::string& message, int64_t generation, WallTime now) {
  Condition c;
  c.type = type;
  c.status = status ? "True" : "False";
  c.reason = reason;
  c.message = message;
  c.observed_generation = generation;
  c.last_transition_time = now;
  return c;
}

// metav1.Condition JSON, keeping lastTransitionTime from `previous` when the status is unchanged.
json ConditionJson(Condition c, const json* previous_conditions) {
  if (previous_conditions != nullptr && previous_conditions->is_array()) {
    for (const auto& p : *previous_conditions) {
      if (p.value("type", "") == c.type && p.value("status", "") == c.status) {
        if (auto t = ParseTime(p.value("lastTransitionTime", "")); t.ok()) {
          c.last_transition_time = *t;
        }
      }
    }
  }
  json j = c;
  return j;
}

}  // namespace

FeatureViewReconciler::FeatureViewReconciler(const ObjectReader& reader, SecretReader& secrets,
                                             ObjectWriter& writer, EventRecorder& events,
                                             FeatureViewReconcilerOptions options)
    : reader_(reader),
      secrets_(secrets),
      writer_(writer),
      events_(events),
      options_(options),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

Result<FeatureViewCheck> FeatureViewReconciler::Check(const json& fv) {
  const json* spec = Path(fv, {"spec"});
  if (spec == nullptr || !spec->is_object()) return Fail("InvalidSpec", "spec is missing");
  const std::string ns = MetaString(fv, "namespace");

  if (const json* ttl = Path(*spec, {"ttl"}); ttl != nullptr) {
    if (!ttl->is_string() || !ParseDuration(ttl->get<std::string>()).ok()) {
      return Fail("InvalidSpec", "spec.ttl is not a duration");
    }
  }
  if (const json* features = Path(*spec, {"features"}); features != nullptr && features->is_array()) {
    for (size_t i = 0; i < features->size(); ++i) {
      const json& f = (*features)[i];
      if (!f.contains("default") || !f["default"].is_string()) continue;
      if (auto why = CheckDefault(f.value("type", ""), f["default"].get<std::string>())) {
        return Fail("InvalidDefault", "spec.features[" + std::to_string(i) + "].default (" +
                                          f.value("name", "") + "): " + *why);
      }
    }
  }
  if (const json* schedule = Path(*spec, {"materialization", "schedule"});
      schedule != nullptr && schedule->is_string()) {
    if (Status s = ValidateCronSchedule(schedule->get<std::string>()); !s.ok()) {
      return Fail("InvalidSchedule", s.message());
    }
  }
  if (const json* key_ttl = Path(*spec, {"online", "redis", "keyTtl"});
      key_ttl != nullptr && (!key_ttl->is_string() || !ParseDuration(key_ttl->get<std::string>()).ok())) {
    return Fail("InvalidSpec", "spec.online.redis.keyTtl is not a duration");
  }

  const json* redis = Path(*spec, {"online", "redis"});
  if (redis == nullptr || !redis->is_object()) {
    return Fail("InvalidSpec", "spec.online.redis is missing");
  }
  if (const json* address = Path(*redis, {"address"}); address != nullptr && address->is_string()) {
    if (Status s = ValidateRedisConnection(address->get<std::string>()); !s.ok()) {
      return Fail("InvalidRedisAddress", "spec.online.redis.address: " + s.message());
    }
    return FeatureViewCheck{};
  }
  const std::string secret_name = StringAt(*redis, {"addressSecretRef", "name"});
  const std::string secret_key = StringAt(*redis, {"addressSecretRef", "key"});
  if (secret_name.empty() || secret_key.empty()) {
    return Fail("InvalidSpec", "spec.online.redis needs address or addressSecretRef{name, key}");
  }
  auto secret = secrets_.GetSecret(ns, secret_name);
  if (!secret.ok()) {
    if (secret.status().code() == StatusCode::kNotFound) {
      return Fail("SecretNotFound",
                  "spec.online.redis.addressSecretRef: Secret " + secret_name +
                      " does not exist in namespace " + ns,
                  /*retry_later=*/true);
    }
    if (secret.status().code() == StatusCode::kForbidden) {
      return Fail("SecretForbidden",
                  "spec.online.redis.addressSecretRef: the operator may not read Secret " +
                      secret_name + " in namespace " + ns,
                  /*retry_later=*/true);
    }
    return secret.status().Annotate("reading Secret " + ns + "/" + secret_name);
  }
  std::optional<std::string> value;
  if (const json* data = Path(*secret, {"data", secret_key.c_str()}); data != nullptr && data->is_string()) {
    value = DecodeBase64(data->get<std::string>());
    if (!value) {
      return Fail("InvalidSecret", "spec.online.redis.addressSecretRef: key " + secret_key +
                                       " of Secret " + secret_name + " is not valid base64",
                  true);
    }
  } else if (const json* sd = Path(*secret, {"stringData", secret_key.c_str()});
             sd != nullptr && sd->is_string()) {
    value = sd->get<std::string>();
  }
  if (!value) {
    return Fail("SecretKeyNotFound", "spec.online.redis.addressSecretRef: Secret " + secret_name +
                                         " has no key " + secret_key,
                true);
  }
  if (Status s = ValidateRedisConnection(*value); !s.ok()) {
    return Fail("InvalidRedisConnection", "spec.online.redis.addressSecretRef: key " + secret_key +
                                              " of Secret " + secret_name + ": " + s.message(),
                true);
  }
  return FeatureViewCheck{};
}

Result<Action> FeatureViewReconciler::Reconcile(const ObjectKey& key) {
  ObjectPtr object = reader_.Get(kFeatureViewsGvr, key.ns, key.name);
  if (object == nullptr || Path(*object, {"metadata", "deletionTimestamp"}) != nullptr) {
    return Action::WaitForChange();
  }
  const json& fv = *object;
  ASSIGN_OR_RETURN(FeatureViewCheck check, Check(fv));

  const int64_t generation = MetaGeneration(fv);
  const WallTime now = clock_.WallNow();
  const json* previous = Path(fv, {"status", "conditions"});
  const bool materialized = Path(fv, {"status", "lastMaterialized", "completionTime"}) != nullptr;

  json status = json::object();
  if (const json* old = Path(fv, {"status"}); old != nullptr && old->is_object()) status = *old;
  status["observedGeneration"] = generation;
  json conditions = json::array();
  if (!check.ok) {
    conditions.push_back(ConditionJson(
        MakeCondition("Ready", false, check.reason, check.message, generation, now), previous));
    conditions.push_back(ConditionJson(
        MakeCondition("Degraded", true, check.reason, check.message, generation, now), previous));
  } else {
    conditions.push_back(ConditionJson(
        materialized
            ? MakeCondition("Ready", true, "Materialized",
                            "the online store holds a complete materialization", generation, now)
            : MakeCondition("Ready", false, "NotMaterialized",
                            "the spec is valid; no materialization has completed yet", generation,
                            now),
        previous));
    conditions.push_back(ConditionJson(
        MakeCondition("Degraded", false, "AsExpected", "the spec and its Secret are valid",
                      generation, now),
        previous));
  }
  // Conditions of other types (written by a future materialization Job) are kept.
  if (previous != nullptr && previous->is_array()) {
    for (const auto& p : *previous) {
      const std::string type = p.value("type", "");
      if (type != "Ready" && type != "Degraded") conditions.push_back(p);
    }
  }
  status["conditions"] = std::move(conditions);

  const json* old_status = Path(fv, {"status"});
  if (old_status == nullptr || *old_status != status) {
    json intent = {{"apiVersion", kApiVersionFv},
                   {"kind", "FeatureView"},
                   {"metadata",
                    {{"name", key.name},
                     {"namespace", key.ns},
                     {"resourceVersion", MetaString(fv, "resourceVersion")}}},
                   {"status", status}};
    auto written = writer_.ApplyStatus(kFeatureViewsGvr, intent);
    if (!written.ok()) return written.status().Annotate("writing FeatureView status");

    // An Event when the view turns Degraded, changes why, or recovers.
    std::string old_reason;
    bool was_degraded = false;
    if (previous != nullptr && previous->is_array()) {
      for (const auto& p : *previous) {
        if (p.value("type", "") == "Degraded") {
          was_degraded = p.value("status", "") == "True";
          old_reason = p.value("reason", "");
        }
      }
    }
    const InvolvedObject involved = InvolvedObject::From(fv);
    if (!check.ok && (!was_degraded || old_reason != check.reason)) {
      events_.Record(involved, EventSeverity::kWarning, check.reason, check.message);
      spdlog::warn("fv={} degraded: {}: {}", key.String(), check.reason, check.message);
    } else if (check.ok && was_degraded) {
      events_.Record(involved, EventSeverity::kNormal, "Recovered",
                     "the spec and its Secret are valid again");
      spdlog::info("fv={} recovered", key.String());
    }
  }
  if (!check.ok && check.retry_later) return Action::RequeueAfter(options_.recheck_secret);
  return Action::WaitForChange();
}

}  // namespace sluice::controllers
