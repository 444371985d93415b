#pragma once

// Structured logs for the data plane through spdlog. Text lines read
//   2026-01-02T03:04:05.678Z info [model=fraud version=1] loaded in 12 ms
// and JSON lines (one object per line, for log collectors)
//   {"ts":"2026-01-02T03:04:05.678Z","level":"info","model":"fraud","version":"1","msg":"loaded in 12 ms"}
// The identity fields come from the logger's name ("model=fraud version=1"), so every line a model
// logger writes carries them, and lines from plain spdlog calls still render as valid JSON.

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "base/status.h"

namespace sluice::dataplane {

enum class LogFormat { kText, kJson };

// Parses "text" / "json".
Result<LogFormat> ParseLogFormat(std::string_view s);

// Sets the process-wide format and level ("trace", "debug", "info", "warn", "error", "off") of
// spdlog's default logger and of loggers made by IdentityLogger. Call once at start-up, before
// other threads log.
Status ConfigureLogging(LogFormat format, std::string_view level);

// A logger whose lines carry `fields`, written as space-separated key=value pairs
// ("model=fraud version=1"); values must not contain spaces. Shares the default logger's sinks and
// level.
std::shared_ptr<spdlog::logger> IdentityLogger(std::string fields);

}  // namespace sluice::dataplane
