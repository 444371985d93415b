#include "lib/api/feature_view.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "lib/api/duration.h"

namespace sluice::api {
namespace {

using nlohmann::json;
using controllers::FormatDuration;
using controllers::ParseDuration;

constexpr struct {
  const char* name;
  FeastType type;
} kTypes[] = {
    {"BYTES", FeastType::kBytes},   {"STRING", FeastType::kString},
    {"INT32", FeastType::kInt32},   {"INT64", FeastType::kInt64},
    {"DOUBLE", FeastType::kDouble}, {"FLOAT", FeastType::kFloat},
    {"BOOL", FeastType::kBool},     {"UNIX_TIMESTAMP", FeastType::kUnixTimestamp},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool ParseInt(std::string_view s, int32_t& out) {
  if (s.empty() || s.size() > 9) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// The string at `key` of `j`; InvalidArgument naming `where.key` when absent (and required) or
// not a string.
Result<std::string> StringField(const json& j, const char* key, const std::string& where,
                                bool required = true) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (!required) return std::string();
    return InvalidArgument(where + "." + key + " is missing");
  }
  if (!it->is_string()) return InvalidArgument(where + "." + key + " is not a string");
  return it->get<std::string>();
}

Result<FeastType> TypeField(const json& j, const char* key, const std::string& where) {
  ASSIGN_OR_RETURN(std::string name, StringField(j, key, where));
  auto type = ParseFeastType(name);
  if (!type) return InvalidArgument(where + "." + key + ": unknown type \"" + name + "\"");
  return *type;
}

Result<std::chrono::milliseconds> DurationField(const json& j, const char* key,
                                                const std::string& where) {
  ASSIGN_OR_RETURN(std::string text, StringField(j, key, where, /*required=*/false));
  if (text.empty()) return std::chrono::milliseconds(0);
  auto d = ParseDuration(text);
  if (!d.ok()) return InvalidArgument(where + "." + key + ": " + d.status().message());
  return *d;
}

}  // namespace

std::optional<FeastType> ParseFeastType(std::string_view name) {
  for (const auto& t : kTypes) {
    if (name == t.name) return t.type;
  }
  return std::nullopt;
}

std::string_view FeastTypeName(FeastType type) {
  for (const auto& t : kTypes) {
    if (type == t.type) return t.name;
  }
  return "INVALID";
}

Result<RedisConnection> RedisConnection::Parse(std::string_view text) {
  RedisConnection c;
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = text.find(',', start);
    parts.push_back(text.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  std::string_view address = Trim(parts[0]);
  auto colon = address.rfind(':');
  if (address.empty() || colon == std::string_view::npos || colon == 0) {
    return InvalidArgument("the connection string must start with host:port");
  }
  std::string_view host = address.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) {
      return InvalidArgument("the connection string's IPv6 host must be written [address]");
    }
    host = host.substr(1, host.size() - 2);
  } else {
    for (char ch : host) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.' && ch != '_') {
        return InvalidArgument("the connection string's host \"" + std::string(host) +
                               "\" is not a host name or address");
      }
    }
  }
  c.host = std::string(host);
  if (!ParseInt(address.substr(colon + 1), c.port) || c.port < 1 || c.port > 65535) {
    return InvalidArgument("the connection string's port \"" +
                           std::string(address.substr(colon + 1)) +
                           "\" is not a number from 1 to 65535");
  }
  for (size_t k = 1; k < parts.size(); ++k) {
    std::string_view option = Trim(parts[k]);
    auto eq = option.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("the connection string's option \"" +
                             std::string(option.substr(0, 32)) + "\" is not key=value");
    }
    std::string_view key = option.substr(0, eq);
    std::string_view value = option.substr(eq + 1);
    if (key == "password") {
      c.password = std::string(value);
    } else if (key == "username") {
      c.username = std::string(value);
    } else if (key == "ssl") {
      if (value == "true" || value == "True") {
        return InvalidArgument(
            "the connection string's ssl=true is not supported yet (Sluice's Redis client speaks "
            "plain TCP); use a TLS-terminating proxy or ssl=false");
      }
      if (value != "false" && value != "False") {
        return InvalidArgument("the connection string's ssl option must be true or false");
      }
    } else if (key == "db") {
      if (!ParseInt(value, c.db) || c.db < 0 || c.db > 15) {
        return InvalidArgument("the connection string's db option must be a number from 0 to 15");
      }
    } else {
      return InvalidArgument("the connection string has an unknown option \"" +
                             std::string(key) + "\" (known: password, username, ssl, db)");
    }
  }
  return c;
}

std::string RedisConnection::Describe() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Result<RedisConnection> FeatureViewConfig::ResolveRedis() const {
  if (!redis_address.empty()) {
    auto c = RedisConnection::Parse(redis_address);
    if (!c.ok()) return c.status().Annotate("feature view " + name + ": redis address");
    // spec.online.redis.address is host:port only; the db is a field of its own.
    c->db = redis_db;
    return c;
  }
  if (redis_connection_env.empty()) {
    return InvalidArgument("feature view " + name + " names no Redis address");
  }
  const char* value = std::getenv(redis_connection_env.c_str());
  if (value == nullptr || *value == '\0') {
    return InvalidArgument("feature view " + name + ": environment variable " +
                           redis_connection_env + " (the Redis connection string) is not set");
  }
  RedisConnection c;
  c.db = redis_db;
  const std::string_view text = value;
  auto parsed = RedisConnection::Parse(text);
  if (!parsed.ok()) {
    return InvalidArgument("feature view " + name + ": the Redis connection string in " +
                           redis_connection_env + ": " + parsed.status().message());
  }
  // A db= option in the connection string wins over spec.online.redis.db.
  if (text.find("db=") == std::string_view::npos) parsed->db = redis_db;
  return parsed;
}

json FeatureViewConfig::ToJson() const {
  json j = {{"name", name}, {"project", project}};
  json ents = json::array();
  for (const auto& e : entities) {
    ents.push_back({{"name", e.name},
                    {"joinKey", e.join_key},
                    {"valueType", std::string(FeastTypeName(e.value_type))}});
  }
  j["entities"] = std::move(ents);
  json feats = json::array();
  for (const auto& f : features) {
    json fj = {{"name", f.name}, {"type", std::string(FeastTypeName(f.type))}};
    if (f.default_value) fj["default"] = *f.default_value;
    feats.push_back(std::move(fj));
  }
  j["features"] = std::move(feats);
  if (ttl.count() != 0) j["ttl"] = FormatDuration(ttl);
  if (!redis_address.empty()) j["redisAddress"] = redis_address;
  if (!redis_connection_env.empty()) j["redisConnectionEnv"] = redis_connection_env;
  if (redis_db != 0) j["redisDb"] = redis_db;
  if (key_ttl.count() != 0) j["keyTtl"] = FormatDuration(key_ttl);
  if (source) {
    json s = {{"format", source->format},
              {"path", source->path},
              {"timestampField", source->timestamp_field}};
    if (!source->created_timestamp_field.empty()) {
      s["createdTimestampField"] = source->created_timestamp_field;
    }
    j["source"] = std::move(s);
  }
  return j;
}

Result<FeatureViewConfig> FeatureViewConfig::FromJson(const json& j) {
  if (!j.is_object()) return InvalidArgument("a feature view must be a JSON object");
  FeatureViewConfig c;
  ASSIGN_OR_RETURN(c.name, StringField(j, "name", "view"));
  const std::string where = "view " + c.name;
  ASSIGN_OR_RETURN(c.project, StringField(j, "project", where));
  auto ents = j.find("entities");
  if (ents == j.end() || !ents->is_array() || ents->empty()) {
    return InvalidArgument(where + ".entities must be a non-empty array");
  }
  for (size_t i = 0; i < ents->size(); ++i) {
    const json& e = (*ents)[i];
    const std::string at = where + ".entities[" + std::to_string(i) + "]";
    if (!e.is_object()) return InvalidArgument(at + " is not an object");
    FeatureEntity entity;
    ASSIGN_OR_RETURN(entity.name, StringField(e, "name", at));
    ASSIGN_OR_RETURN(entity.join_key, StringField(e, "joinKey", at, /*required=*/false));
    if (entity.join_key.empty()) entity.join_key = entity.name;
    ASSIGN_OR_RETURN(entity.value_type, TypeField(e, "valueType", at));
    c.entities.push_back(std::move(entity));
  }
  auto feats = j.find("features");
  if (feats == j.end() || !feats->is_array()) {
    return InvalidArgument(where + ".features must be an array");
  }
  for (size_t i = 0; i < feats->size(); ++i) {
    const json& f = (*feats)[i];
    const std::string at = where + ".features[" + std::to_string(i) + "]";
    if (!f.is_object()) return InvalidArgument(at + " is not an object");
    FeatureField field;
    ASSIGN_OR_RETURN(field.name, StringField(f, "name", at));
    ASSIGN_OR_RETURN(field.type, TypeField(f, "type", at));
    if (auto d = f.find("default"); d != f.end() && !d->is_null()) {
      if (!d->is_string()) return InvalidArgument(at + ".default is not a string");
      field.default_value = d->get<std::string>();
    }
    c.features.push_back(std::move(field));
  }
  ASSIGN_OR_RETURN(c.ttl, DurationField(j, "ttl", where));
  ASSIGN_OR_RETURN(c.redis_address, StringField(j, "redisAddress", where, false));
  ASSIGN_OR_RETURN(c.redis_connection_env, StringField(j, "redisConnectionEnv", where, false));
  if (c.redis_address.empty() == c.redis_connection_env.empty()) {
    return InvalidArgument(where + " needs exactly one of redisAddress and redisConnectionEnv");
  }
  if (auto db = j.find("redisDb"); db != j.end()) {
    if (!db->is_number_integer() || db->get<int64_t>() < 0 || db->get<int64_t>() > 15) {
      return InvalidArgument(where + ".redisDb must be an integer from 0 to 15");
    }
    c.redis_db = db->get<int32_t>();
  }
  ASSIGN_OR_RETURN(auto key_ttl, DurationField(j, "keyTtl", where));
  c.key_ttl = std::chrono::duration_cast<std::chrono::seconds>(key_ttl);
  if (auto s = j.find("source"); s != j.end() && !s->is_null()) {
    if (!s->is_object()) return InvalidArgument(where + ".source is not an object");
    FeatureSource src;
    ASSIGN_OR_RETURN(src.format, StringField(*s, "format", where + ".source"));
    ASSIGN_OR_RETURN(src.path, StringField(*s, "path", where + ".source"));
    ASSIGN_OR_RETURN(src.timestamp_field, StringField(*s, "timestampField", where + ".source"));
    ASSIGN_OR_RETURN(src.created_timestamp_field,
                     StringField(*s, "createdTimestampField", where + ".source", false));
    c.source = std::move(src);
  }
  return c;
}

Result<FeatureViewConfig> FeatureViewConfig::FromResource(const json& fv,
                                                          const std::string& connection_env,
                                                          const std::vector<std::string>& selected,
                                                          bool with_source) {
  const json* meta = fv.is_object() && fv.contains("metadata") ? &fv["metadata"] : nullptr;
  const json* spec = fv.is_object() && fv.contains("spec") ? &fv["spec"] : nullptr;
  if (meta == nullptr || spec == nullptr || !spec->is_object()) {
    return InvalidArgument("the FeatureView has no metadata or spec");
  }
  json j = json::object();
  j["name"] = meta->value("name", "");
  j["project"] = spec->value("project", "");
  j["entities"] = spec->value("entities", json::array());
  json all = spec->value("features", json::array());
  if (selected.empty()) {
    j["features"] = std::move(all);
  } else {
    json picked = json::array();
    for (const auto& name : selected) {
      const json* found = nullptr;
      for (const auto& f : all) {
        if (f.is_object() && f.value("name", "") == name) found = &f;
      }
      if (found == nullptr) {
        return InvalidArgument("FeatureView " + j["name"].get<std::string>() +
                               " has no feature \"" + name + "\"");
      }
      picked.push_back(*found);
    }
    j["features"] = std::move(picked);
  }
  // Descriptions are not part of the contract.
  for (auto& f : j["features"]) {
    if (f.is_object()) f.erase("description");
  }
  for (auto& e : j["entities"]) {
    if (e.is_object()) e.erase("description");
  }
  if (spec->contains("ttl")) j["ttl"] = (*spec)["ttl"];
  const json redis = spec->contains("online") && (*spec)["online"].is_object()
                         ? (*spec)["online"].value("redis", json::object())
                         : json::object();
  if (redis.contains("address")) {
    j["redisAddress"] = redis["address"];
  } else {
    j["redisConnectionEnv"] = connection_env;
  }
  if (redis.contains("db")) j["redisDb"] = redis["db"];
  if (redis.contains("keyTtl")) j["keyTtl"] = redis["keyTtl"];
  if (with_source && spec->contains("source")) {
    const json& s = (*spec)["source"];
    json src = {{"format", s.value("type", "file")},
                {"path", s.value("path", "")},
                {"timestampField", s.value("timestampField", "")}};
    if (s.contains("createdTimestampField")) {
      src["createdTimestampField"] = s["createdTimestampField"];
    }
    j["source"] = std::move(src);
  }
  return FromJson(j);
}

std::string FormatFeatureViews(const std::vector<FeatureViewConfig>& views) {
  json arr = json::array();
  for (const auto& v : views) arr.push_back(v.ToJson());
  return arr.dump();
}

Result<std::vector<FeatureViewConfig>> ParseFeatureViews(std::string_view text) {
  json arr = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (arr.is_discarded() || !arr.is_array()) {
    return InvalidArgument("feature views must be a JSON array of views");
  }
  std::vector<FeatureViewConfig> out;
  for (const auto& v : arr) {
    ASSIGN_OR_RETURN(FeatureViewConfig c, FeatureViewConfig::FromJson(v));
    out.push_back(std::move(c));
  }
  return out;
}

std::string RedisConnectionEnv(size_t index) {
  return "SLUICE_REDIS_CONNECTION_" + std::to_string(index);
}

}  // namespace sluice::api
