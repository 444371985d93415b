#pragma once

// What sluice-server and sluice-materialize need to know of a FeatureView, defined once: the
// operator builds a FeatureViewConfig from the FeatureView resource (FromResource) and writes it
// into the server's --feature-views flag and the materialization Job's --view flag (ToJson); the
// binaries read it back (FromJson). Neither binary talks to the API server.
//
// A Redis connection string that lives in a Secret never appears in the config: the pod gets it
// in an environment variable (a secretKeyRef) and the config names that variable.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/status.h"

namespace sluice::api {

// Feast's ValueType numbers (feast/types/Value.proto); they are also the type tags of Feast's
// serialized entity keys.
enum class FeastType : int32_t {
  kBytes = 1,
  kString = 2,
  kInt32 = 3,
  kInt64 = 4,
  kDouble = 5,
  kFloat = 6,
  kBool = 7,
  kUnixTimestamp = 8,
};
// "INT32" → kInt32, as the CRD spells the types; nullopt for anything else.
std::optional<FeastType> ParseFeastType(std::string_view name);
std::string_view FeastTypeName(FeastType type);

struct FeatureEntity {
  std::string name;
  std::string join_key;  // the source column and the request input; the CRD defaults it to name
  FeastType value_type = FeastType::kString;
  friend bool operator==(const FeatureEntity&, const FeatureEntity&) = default;
};

struct FeatureField {
  std::string name;
  FeastType type = FeastType::kDouble;
  // As the CRD writes it ("0", "0.5", "true", base64 for BYTES); absent: a missing value stays
  // missing (NaN for the model).
  std::optional<std::string> default_value;
  friend bool operator==(const FeatureField&, const FeatureField&) = default;
};

struct FeatureSource {
  std::string format;  // parquet | csv | file (by the path's extension)
  std::string path;    // absolute path, file:///path or http(s)://
  std::string timestamp_field;
  std::string created_timestamp_field;  // empty: none
  friend bool operator==(const FeatureSource&, const FeatureSource&) = default;
};

// A Feast Redis connection string: "host:port[,password=...][,username=...][,ssl=true|false]
// [,db=N]". `Parse` checks what the controller's validation checks and refuses ssl=true (no TLS
// client yet).
struct RedisConnection {
  std::string host;
  int32_t port = 6379;
  std::string username;
  std::string password;
  int32_t db = 0;
  static Result<RedisConnection> Parse(std::string_view text);
  // host:port/db, never the password.
  std::string Describe() const;
  friend bool operator==(const RedisConnection&, const RedisConnection&) = default;
};

struct FeatureViewConfig {
  std::string name;
  std::string project;
  std::vector<FeatureEntity> entities;
  // In order; for the server only the features the ModelDeployment selected.
  std::vector<FeatureField> features;
  std::chrono::milliseconds ttl{0};  // 0: values never go stale
  // Exactly one of the two: spec.online.redis.address (host:port), or the environment variable
  // that holds the connection string of spec.online.redis.addressSecretRef.
  std::string redis_address;
  std::string redis_connection_env;
  int32_t redis_db = 0;  // spec.online.redis.db; a db= in the connection string wins
  std::chrono::seconds key_ttl{0};       // 0: keys do not expire
  std::optional<FeatureSource> source;   // the materializer's; absent in the server's config

  // The Redis connection, resolving redis_connection_env from `getenv`; an error names the
  // variable (unset) or what is wrong with its value, never the value.
  Result<RedisConnection> ResolveRedis() const;

  nlohmann::json ToJson() const;
  // InvalidArgument naming the field for anything missing, mistyped or out of range.
  static Result<FeatureViewConfig> FromJson(const nlohmann::json& j);
  // From a FeatureView resource as the API server stores it (defaults applied). `connection_env`
  // is the variable the pod gets the addressSecretRef's value in (ignored when spec.online.redis
  // .address is set). `selected` picks and orders features (a ModelDeployment's
  // spec.features[].features); empty means all, in declared order. An unknown selected name is
  // InvalidArgument naming it. `with_source` keeps spec.source (the materializer's config).
  static Result<FeatureViewConfig> FromResource(const nlohmann::json& feature_view,
                                                const std::string& connection_env,
                                                const std::vector<std::string>& selected,
                                                bool with_source);

  friend bool operator==(const FeatureViewConfig&, const FeatureViewConfig&) = default;
};

// The server's --feature-views value: a JSON array of FeatureViewConfig, compact.
std::string FormatFeatureViews(const std::vector<FeatureViewConfig>& views);
Result<std::vector<FeatureViewConfig>> ParseFeatureViews(std::string_view text);

// The environment variable a pod holds the i-th view's Redis connection string in.
std::string RedisConnectionEnv(size_t index);

}  // namespace sluice::api
