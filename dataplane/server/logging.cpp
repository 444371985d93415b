#include "server/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "http/json_escape.h"

namespace sluice::dataplane {

namespace {

void Append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

// Renders `"k":"v",...,"msg":"..."` from the logger name's key=value pairs and the message.
class JsonFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string out;
    std::string_view fields(msg.logger_name.data(), msg.logger_name.size());
    while (!fields.empty()) {
      const size_t space = fields.find(' ');
      std::string_view pair = fields.substr(0, space);
      fields = space == std::string_view::npos ? std::string_view() : fields.substr(space + 1);
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      std::string_view key = eq == std::string_view::npos ? std::string_view("logger") : pair.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? pair : pair.substr(eq + 1);
      out += '"';
      AppendJsonEscaped(out, key);
      out += "\":\"";
      AppendJsonEscaped(out, value);
      out += "\",";
    }
    out += "\"msg\":\"";
    AppendJsonEscaped(out, std::string_view(msg.payload.data(), msg.payload.size()));
    out += '"';
    Append(dest, out);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonFieldsFlag>();
  }
};

// "[model=fraud version=1] " for identity loggers, nothing for the unnamed default logger.
class TextFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    if (msg.logger_name.size() == 0) return;
    dest.push_back('[');
    dest.append(msg.logger_name.data(), msg.logger_name.data() + msg.logger_name.size());
    Append(dest, "] ");
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TextFieldsFlag>();
  }
};

}  // namespace

Result<LogFormat> ParseLogFormat(std::string_view s) {
  if (s == "text") return LogFormat::kText;
  if (s == "json") return LogFormat::kJson;
  return InvalidArgument("log format must be 'text' or 'json', not '" + std::string(s) + "'");
}

Status ConfigureLogging(LogFormat format, std::string_view level) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + std::string(level) + "'");
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (format == LogFormat::kJson) {
    formatter->add_flag<JsonFieldsFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%*})");
  } else {
    formatter->add_flag<TextFieldsFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %*%v");
  }
  spdlog::set_formatter(std::move(formatter));
  spdlog::set_level(lvl);
  return Status::Ok();
}

std::shared_ptr<spdlog::logger> IdentityLogger(std::string fields) {
  auto base = spdlog::default_logger();
  auto logger = base->clone(std::move(fields));
  logger->set_level(base->level());
  return logger;
}

}  // namespace sluice::dataplane
