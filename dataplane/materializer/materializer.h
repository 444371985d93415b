#pragma once

// One materialization run of a FeatureView, from the command line to the result the operator
// reads: check Redis, open the source (its schema checked before any row is read), keep the
// newest row of each entity in the ttl window (LatestRows), write those in Feast's layout
// (FeastWriter), and say what happened as a MaterializeResult.
//
// A run is idempotent, so the Job's own retry (backoffLimit) is the retry: nothing here retries.
// A failure names its cause with one of the reasons below.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dataplane/features/redis_client.h"
#include "dataplane/features/source/table_reader.h"
#include "dataplane/materializer/latest_rows.h"
#include "lib/api/materialize_command.h"
#include "lib/base/status.h"

namespace spdlog {
class logger;
}

namespace sluice::materializer {

// MaterializeResult.reason on failure.
inline constexpr std::string_view kInvalidView = "InvalidView";
inline constexpr std::string_view kInvalidCommand = "InvalidCommand";
inline constexpr std::string_view kSourceNotFound = "SourceNotFound";
inline constexpr std::string_view kSourceUnreadable = "SourceUnreadable";
inline constexpr std::string_view kSchemaMismatch = "SchemaMismatch";
inline constexpr std::string_view kRedisUnavailable = "RedisUnavailable";
inline constexpr std::string_view kRedisError = "RedisError";

// The reason of a source reader's error: the reader's own (Status::reason) when it gives one;
// else NotFound is SourceNotFound, a missing or unconvertible column SchemaMismatch, the rest
// SourceUnreadable.
std::string_view SourceFailureReason(const Status& status);

struct MaterializeOptions {
  std::chrono::system_clock::time_point run_time;
  size_t batch_size = 1000;
  // Budget of one pipelined Redis round trip, and of connecting.
  std::chrono::milliseconds redis_timeout{30000};
  std::chrono::milliseconds redis_connect_timeout{2000};
  std::chrono::seconds source_timeout{60};
  // A progress line every this many rows read and entities written.
  uint64_t progress_every = 1'000'000;
};

// Opens the batch source; features::OpenSource in the binary, a fake in tests.
using SourceOpener =
    std::function<Result<std::unique_ptr<features::TableReader>>(const features::SourceOptions&)>;

// The whole run for a parsed view. Never throws; every failure is a result with ok == false.
api::MaterializeResult Materialize(const api::FeatureViewConfig& view,
                                   const MaterializeOptions& options, const SourceOpener& open);

// The run as the command line asks for it (the view's JSON, --run-time, --batch-size, ...): a
// malformed view is InvalidView, a malformed flag InvalidCommand.
api::MaterializeResult MaterializeFromCommand(const api::MaterializeCommand& command,
                                              const SourceOpener& open,
                                              std::chrono::system_clock::time_point now);

// "2024-05-01T12:00:00.5Z": RFC 3339 in UTC, with as many fraction digits as needed.
std::string FormatNanos(int64_t nanos_since_epoch);

}  // namespace sluice::materializer
