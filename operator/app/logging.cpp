#include "app/logging.h"

#include <cctype>
#include <chrono>
#include <ctime>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace sluice::app {

namespace {

void AppendEscaped(spdlog::memory_buf_t& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          out.append(esc, esc + 6);
        } else {
          out.push_back(ch);
        }
    }
  }
}

void AppendField(spdlog::memory_buf_t& out, std::string_view key, std::string_view value) {
  out.append(std::string_view(",\""));
  AppendEscaped(out, key);
  out.append(std::string_view("\":\""));
  AppendEscaped(out, value);
  out.push_back('"');
}

bool IsKeyChar(char c) {
  return std::islower(static_cast<unsigned char>(c)) || c == '_' ||
         std::isdigit(static_cast<unsigned char>(c));
}

}  // namespace

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
  dest.append(std::string_view("{\"ts\":\""));
  dest.append(std::string_view(ts));
  dest.append(std::string_view("\",\"level\":\""));
  const auto level = spdlog::level::to_string_view(msg.level);
  dest.append(level.data(), level.data() + level.size());
  dest.push_back('"');
  if (msg.logger_name.size() > 0) {
    AppendField(dest, "logger", std::string_view(msg.logger_name.data(), msg.logger_name.size()));
  }
  const std::string_view text(msg.payload.data(), msg.payload.size());
  AppendField(dest, "msg", text);
  // key=value tokens: a lower-case key at the start of a word, a value up to the next space.
  size_t i = 0;
  int lifted = 0;
  while (i < text.size() && lifted < 8) {
    const size_t start = i;
    while (i < text.size() && IsKeyChar(text[i])) ++i;
    if (i > start && i < text.size() && text[i] == '=' &&
        (start == 0 || text[start - 1] == ' ')) {
      const std::string_view key = text.substr(start, i - start);
      const size_t vstart = ++i;
      while (i < text.size() && text[i] != ' ') ++i;
      std::string_view value = text.substr(vstart, i - vstart);
      while (!value.empty() && (value.back() == ',' || value.back() == ':')) value.remove_suffix(1);
      if (!value.empty() && key != "ts" && key != "level" && key != "msg" && key != "logger") {
        AppendField(dest, key, value);
        ++lifted;
      }
    } else {
      while (i < text.size() && text[i] != ' ') ++i;
    }
    while (i < text.size() && text[i] == ' ') ++i;
  }
  dest.append(std::string_view("}\n"));
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

Status SetUpLogging(const std::string& format, const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(
      "", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonLogFormatter>());
  } else if (format == "text") {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    return InvalidArgument("log format \"" + format + "\" is not json or text");
  }
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("log level \"" + level + "\" is unknown");
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

}  // namespace sluice::app
