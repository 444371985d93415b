#include "dataplane/server/server_flags.h"

#include <charconv>
#include <functional>
#include <limits>
#include <map>

namespace sluice::dataplane {

namespace {

struct Flag {
  std::string help;
  bool is_bool = false;
  std::function<Status(const std::string&)> set;
};

Status ParseInt(const std::string& name, const std::string& value, int64_t min, int64_t max,
                int64_t& out) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return InvalidArgument("--" + name + ": '" + value + "' is not an integer");
  }
  if (v < min || v > max) {
    return InvalidArgument("--" + name + ": " + value + " is outside [" + std::to_string(min) +
                           ", " + std::to_string(max) + "]");
  }
  out = v;
  return Status::Ok();
}

Status ParseBool(const std::string& name, const std::string& value, bool& out) {
  if (value == "true" || value == "1" || value == "on" || value == "yes") {
    out = true;
  } else if (value == "false" || value == "0" || value == "off" || value == "no") {
    out = false;
  } else {
    return InvalidArgument("--" + name + ": '" + value + "' is not a boolean");
  }
  return Status::Ok();
}

std::map<std::string, Flag> Flags(ServerFlags& f) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::map<std::string, Flag> m;
  auto str = [&](const char* name, std::string& dst, const char* help) {
    m[name] = Flag{help, false, [&dst](const std::string& v) {
                     dst = v;
                     return Status::Ok();
                   }};
  };
  auto num = [&](const char* name, int64_t& dst, int64_t min, int64_t max, const char* help) {
    m[name] = Flag{help, false, [name = std::string(name), &dst, min, max](const std::string& v) {
                     return ParseInt(name, v, min, max, dst);
                   }};
  };
  auto num32 = [&](const char* name, int& dst, int min, int max, const char* help) {
    m[name] = Flag{help, false, [name = std::string(name), &dst, min, max](const std::string& v) {
                     int64_t x = 0;
                     RETURN_IF_ERROR(ParseInt(name, v, min, max, x));
                     dst = static_cast<int>(x);
                     return Status::Ok();
                   }};
  };
  auto boolean = [&](const char* name, bool& dst, const char* help) {
    m[name] = Flag{help, true, [name = std::string(name), &dst](const std::string& v) {
                     return ParseBool(name, v, dst);
                   }};
  };
  boolean("help", f.help, "print this help");
  str("http-address", f.http_address, "address to listen on for HTTP (default 0.0.0.0)");
  num32("http-port", f.http_port, 0, 65535, "HTTP port; 0 picks a free one (default 8080)");
  str("port-file", f.port_file, "write the bound HTTP port to this file once listening");
  num32("grpc-port", f.grpc_port, 0, 65535,
        "gRPC port on --http-address; 0 = no gRPC (default); --max-body-bytes bounds messages");
  num32("io-threads", f.io_threads, 0, 1024, "HTTP io threads; 0 = one per core (default)");
  str("model-name", f.model_name, "model name (default: the model file name)");
  str("model-version", f.model_version, "model version (default 1)");
  str("model-uri", f.model_uri, "model location: file://, a path, http(s):// (required)");
  str("model-format", f.model_format, "xgboost-json | xgboost-ubj | auto (default)");
  str("model-sha256", f.model_sha256, "optional sha256:<hex> the model bytes must match");
  boolean("batching", f.batching, "dynamic batching (default on)");
  num("max-batch-size", f.max_batch_size, 1, 1 << 20, "rows per batch (default 32)");
  num("max-queue-delay-us", f.max_queue_delay_us, 0, 10'000'000,
      "longest a request waits for a batch to fill; 0 = never waits (default 0)");
  boolean("batch-inline-when-idle", f.batch_inline_when_idle,
          "with no queue delay, a request that finds the batcher idle runs on the io thread "
          "(default on)");
  num("max-queue-size", f.max_queue_size, 1, 1 << 24,
      "requests that may wait; more get 503 (default 1024)");
  num("request-timeout-ms", f.request_timeout_ms, 0, kMax,
      "a request queued longer fails with 503; 0 = no limit (default 0)");
  boolean("cache", f.cache, "response cache (default off)");
  num("cache-capacity-bytes", f.cache_capacity_bytes, 1, kMax, "cache size (default 64 MiB)");
  num("cache-ttl-ms", f.cache_ttl_ms, 0, kMax, "cache entry lifetime; 0 = no expiry (default 60000)");
  num("max-body-bytes", f.max_body_bytes, 1, kMax, "larger bodies get 413 (default 64 MiB)");
  num("max-header-bytes", f.max_header_bytes, 256, 1 << 24,
      "larger headers get 431 (default 16 KiB)");
  num("header-timeout-ms", f.header_timeout_ms, 1, kMax, "request header read timeout (default 10000)");
  num("body-timeout-ms", f.body_timeout_ms, 1, kMax, "request body read timeout (default 30000)");
  num("idle-timeout-ms", f.idle_timeout_ms, 1, kMax, "keep-alive idle timeout (default 120000)");
  num("drain-grace-ms", f.drain_grace_ms, 0, kMax,
      "after SIGTERM: not ready but still serving for this long (default 5000)");
  num("drain-timeout-ms", f.drain_timeout_ms, 0, kMax,
      "then: time for in-flight requests to finish (default 30000)");
  num("drain-idle-timeout-ms", f.drain_idle_timeout_ms, 1, kMax,
      "while draining, idle keep-alive connections close after this (default 500)");
  num("fault-error-percent", f.fault_error_percent, 0, 100,
      "answer this share of inference requests with 500 'injected fault', spread evenly (1 in 5 "
      "for 20); default $SLUICE_FAULT_ERROR_PERCENT, else 0");
  num("fault-delay-ms", f.fault_delay_ms, 0, 600'000,
      "add this latency to every inference request; default $SLUICE_FAULT_DELAY_MS, else 0");
  m["log-format"] = Flag{"text | json (default text)", false, [&f](const std::string& v) {
                           ASSIGN_OR_RETURN(f.log_format, ParseLogFormat(v));
                           return Status::Ok();
                         }};
  str("log-level", f.log_level, "trace | debug | info | warn | error (default info)");
  return m;
}

}  // namespace

Result<ServerFlags> ParseServerFlags(const std::vector<std::string>& args,
                                     const std::function<const char*(const char*)>& getenv) {
  ServerFlags f;
  if (getenv) {
    ASSIGN_OR_RETURN(FaultOptions env, FaultOptionsFromEnv(getenv));
    f.fault_error_percent = env.error_percent;
    f.fault_delay_ms = env.delay.count();
  }
  auto flags = Flags(f);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) return InvalidArgument("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = flags.find(name);
    if (it == flags.end() && !value && name.rfind("no-", 0) == 0) {
      auto negated = flags.find(name.substr(3));
      if (negated != flags.end() && negated->second.is_bool) {
        RETURN_IF_ERROR(negated->second.set("false"));
        continue;
      }
    }
    if (it == flags.end()) return InvalidArgument("unknown flag --" + name);
    if (!value) {
      if (it->second.is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return InvalidArgument("--" + name + " needs a value");
      }
    }
    RETURN_IF_ERROR(it->second.set(*value));
  }
  if (!f.help && f.model_uri.empty()) return InvalidArgument("--model-uri is required");
  return f;
}

std::string ServerUsage() {
  ServerFlags f;
  std::string out =
      "sluice-server: serves a model over the Open Inference Protocol (V2) REST API.\n\n"
      "Flags:\n";
  for (const auto& [name, flag] : Flags(f)) {
    out += "  --" + name + (flag.is_bool ? "" : "=VALUE");
    out.append(name.size() + (flag.is_bool ? 0 : 6) < 28 ? 28 - name.size() - (flag.is_bool ? 0 : 6) : 1, ' ');
    out += flag.help + "\n";
  }
  return out;
}

HttpServerOptions ServerFlags::ToHttpOptions() const {
  HttpServerOptions o;
  o.address = http_address;
  o.port = static_cast<uint16_t>(http_port);
  o.io_threads = io_threads;
  o.max_body_bytes = static_cast<size_t>(max_body_bytes);
  o.max_header_bytes = static_cast<size_t>(max_header_bytes);
  o.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  o.body_timeout = std::chrono::milliseconds(body_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  o.drain_idle_timeout = std::chrono::milliseconds(drain_idle_timeout_ms);
  o.server_name = "sluice-server";
  return o;
}

FaultOptions ServerFlags::ToFaultOptions() const {
  FaultOptions o;
  o.error_percent = static_cast<int>(fault_error_percent);
  o.delay = std::chrono::milliseconds(fault_delay_ms);
  return o;
}

ModelOptions ServerFlags::ToModelOptions() const {
  ModelOptions m;
  m.name = model_name;
  m.version = model_version;
  m.batching = batching;
  m.batcher.max_batch_size = static_cast<size_t>(max_batch_size);
  m.batcher.max_queue_delay = std::chrono::microseconds(max_queue_delay_us);
  m.batcher.max_queue_size = static_cast<size_t>(max_queue_size);
  m.batcher.run_inline_when_idle = batch_inline_when_idle;
  m.batcher.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  m.cache = cache;
  m.cache_options.capacity_bytes = static_cast<size_t>(cache_capacity_bytes);
  m.cache_options.ttl = std::chrono::milliseconds(cache_ttl_ms);
  return m;
}

}  // namespace sluice::dataplane
