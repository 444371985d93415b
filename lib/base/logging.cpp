#include "lib/base/logging.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "lib/base/json_escape.h"

namespace sluice {

namespace {

void Append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

void AppendField(spdlog::memory_buf_t& dest, std::string_view key, std::string_view value) {
  std::string out = ",\"";
  AppendJsonEscaped(out, key);
  out += "\":\"";
  AppendJsonEscaped(out, value);
  out += '"';
  Append(dest, out);
}

bool IsKeyChar(char c) {
  return std::islower(static_cast<unsigned char>(c)) || c == '_' ||
         std::isdigit(static_cast<unsigned char>(c));
}

bool IsReserved(std::string_view key) {
  return key == "ts" || key == "level" || key == "msg" || key == "logger";
}

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

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const auto secs = duration_cast<seconds>(since_epoch);
  const auto millis = duration_cast<milliseconds>(since_epoch - secs).count();
  const std::time_t t = secs.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  Append(dest, "{\"ts\":\"");
  Append(dest, ts);
  Append(dest, "\",\"level\":\"");
  const auto level = spdlog::level::to_string_view(msg.level);
  dest.append(level.data(), level.data() + level.size());
  dest.push_back('"');

  // Identity fields from the logger's name; a word without '=' is the logger's plain name.
  std::string_view fields(msg.logger_name.data(), msg.logger_name.size());
  while (!fields.empty()) {
    const size_t space = fields.find(' ');
    const std::string_view pair = fields.substr(0, space);
    fields = space == std::string_view::npos ? std::string_view() : fields.substr(space + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || IsReserved(pair.substr(0, eq))) {
      AppendField(dest, "logger", pair);
    } else {
      AppendField(dest, pair.substr(0, eq), pair.substr(eq + 1));
    }
  }

  const std::string_view text(msg.payload.data(), msg.payload.size());
  AppendField(dest, "msg", text);
  // key=value tokens: a lower-case key at the start of a word, a value up to the next space.
  size_t i = 0;
  int lifted = 0;
  while (i < text.size() && lifted < 8) {
    const size_t start = i;
    while (i < text.size() && IsKeyChar(text[i])) ++i;
    if (i > start && i < text.size() && text[i] == '=' && (start == 0 || text[start - 1] == ' ')) {
      const std::string_view key = text.substr(start, i - start);
      const size_t vstart = ++i;
      while (i < text.size() && text[i] != ' ') ++i;
      std::string_view value = text.substr(vstart, i - vstart);
      while (!value.empty() && (value.back() == ',' || value.back() == ':')) value.remove_suffix(1);
      if (!value.empty() && !IsReserved(key)) {
        AppendField(dest, key, value);
        ++lifted;
      }
    } else {
      while (i < text.size() && text[i] != ' ') ++i;
    }
    while (i < text.size() && text[i] == ' ') ++i;
  }
  Append(dest, "}\n");
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

Status ConfigureLogging(LogFormat format, std::string_view level) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + std::string(level) + "'");
  }
  auto logger =
      std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonLogFormatter>());
  } else {
    auto text = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    text->add_flag<TextFieldsFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %*%v");
    logger->set_formatter(std::move(text));
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

std::shared_ptr<spdlog::logger> IdentityLogger(std::string fields) {
  auto base = spdlog::default_logger();
  auto logger = base->clone(std::move(fields));
  logger->set_level(base->level());
  return logger;
}

}  // namespace sluice
