#pragma once

// The command line of sluice-materialize, defined once: the operator writes it into the
// materialization Job and CronJob of a FeatureView (ToArgs); the materializer reads it (Parse).
//
// The run's outcome goes to `result_file` as one JSON object (MaterializeResult), which is the
// container's termination message: the operator reads it from the Pod's status, so the Job
// needs no API access.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/flags.h"
#include "lib/base/status.h"

namespace sluice::api {

struct MaterializeCommand {
  std::optional<bool> help;
  std::optional<bool> version;
  // The FeatureViewConfig (lib/api/feature_view.h) as JSON, with its source.
  std::optional<std::string> view;
  // The run's time (RFC 3339); values older than the view's ttl before it are not written.
  // Absent: now.
  std::optional<std::string> run_time;
  // Where the result JSON goes; the Job sets /dev/termination-log.
  std::optional<std::string> result_file;
  std::optional<int64_t> batch_size;  // entities per pipelined Redis round trip
  std::optional<int64_t> source_timeout_s;
  std::optional<std::string> log_format;  // text | json
  std::optional<std::string> log_level;

  std::vector<std::string> ToArgs() const;
  static Result<MaterializeCommand> Parse(const std::vector<std::string>& args);
  static std::string Usage(const MaterializeCommand& shown);

  friend bool operator==(const MaterializeCommand&, const MaterializeCommand&) = default;

 private:
  static void Bind(FlagSet& flags, MaterializeCommand& c);
};

// What one run did, as the materializer writes it and the operator reads it. Kept well under the
// 4 KiB a termination message may hold.
struct MaterializeResult {
  bool ok = false;
  std::string reason;   // CamelCase on failure: SourceNotFound, SchemaMismatch, RedisUnavailable...
  std::string message;  // on failure: what went wrong, naming the column, file or address
  std::string run_time;         // RFC 3339
  std::string source_watermark;  // RFC 3339: the newest event timestamp read; empty if none
  int64_t rows_read = 0;
  int64_t entities_written = 0;
  int64_t entities_skipped_stale = 0;  // older than ttl at the run time
  double duration_seconds = 0;

  nlohmann::json ToJson() const;
  static Result<MaterializeResult> FromJson(const nlohmann::json& j);
  friend bool operator==(const MaterializeResult&, const MaterializeResult&) = default;
};

}  // namespace sluice::api
