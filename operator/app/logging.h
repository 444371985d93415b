#pragma once

// Log set-up for sluice-operator: spdlog's default logger writing to stderr, either as text or as
// one JSON object per line ({"ts":..., "level":..., "msg":..., "md":"ns/name", ...}). Tokens of
// the form key=value in a message (md=ns/name, rev=fraud-abc) are also lifted into fields, so
// log pipelines can filter on them without parsing the message.

#include <memory>
#include <string>

#include <spdlog/formatter.h>

#include "base/status.h"

namespace sluice::app {

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Installs the default logger. `format` is "json" or "text"; `level` a spdlog level name.
Status SetUpLogging(const std::string& format, const std::string& level);

}  // namespace sluice::app
