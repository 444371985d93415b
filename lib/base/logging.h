#pragma once

// One log set-up for every Sluice binary: spdlog's default logger writing to stderr, as text
//   2026-01-02T03:04:05.678Z info [model=fraud version=1] loaded in 12 ms
// or as one JSON object per line, for log collectors
//   {"ts":"2026-01-02T03:04:05.678Z","level":"info","model":"fraud","version":"1","msg":"loaded in 12 ms"}
// Identity fields come from the logger's name ("model=fraud version=1", see IdentityLogger), so
// every line such a logger writes carries them. In JSON, tokens of the form key=value in a message
// (md=ns/name rev=fraud-abc) are lifted into fields too, so pipelines can filter on them without
// parsing the message.

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include "lib/base/status.h"

namespace sluice {

enum class LogFormat { kText, kJson };

// Parses "text" / "json".
Result<LogFormat> ParseLogFormat(std::string_view s);

// The JSON line formatter described above; exposed for tests.
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Installs the process-wide default logger (stderr) with `format` and `level` ("trace", "debug",
// "info", "warn", "error", "off"). Call once at start-up, before other threads log.
Status ConfigureLogging(LogFormat format, std::string_view level);

// A logger whose lines carry `fields`, written as space-separated key=value pairs
// ("model=fraud version=1"); values must not contain spaces. Shares the default logger's sinks,
// format and level.
std::shared_ptr<spdlog::logger> IdentityLogger(std::string fields);

}  // namespace sluice
