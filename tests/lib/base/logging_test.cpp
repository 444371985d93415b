#include "lib/base/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace sluice {
namespace {

// Renders one line through JsonLogFormatter, as the logger named `name` would write it.
nlohmann::json JsonLine(const std::string& name, const std::string& text) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(std::make_unique<JsonLogFormatter>());
  spdlog::logger logger(name, sink);
  logger.info(text);
  const std::string line = out.str();
  EXPECT_EQ(line.back(), '\n');
  // Duplicate keys would be silently merged by a lenient parser; count them in the raw line.
  EXPECT_EQ(line.find("\"logger\""), line.rfind("\"logger\"")) << line;
  return nlohmann::json::parse(line);
}

TEST(LoggingTest, JsonCarriesTimeLevelMessageAndIdentityFields) {
  nlohmann::json j = JsonLine("model=fraud version=2", "loaded in 12 ms");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "loaded in 12 ms");
  EXPECT_EQ(j["model"], "fraud");
  EXPECT_EQ(j["version"], "2");
  EXPECT_EQ(j["ts"].get<std::string>().size(), std::string("2026-01-02T03:04:05.678Z").size());
}

TEST(LoggingTest, JsonLiftsKeyValueTokensOfTheMessage) {
  nlohmann::json j = JsonLine("", "md=ns/fraud rev=fraud-abc: phase Healthy, weight=100,");
  EXPECT_EQ(j["md"], "ns/fraud");
  EXPECT_EQ(j["rev"], "fraud-abc");
  EXPECT_EQ(j["weight"], "100");
  EXPECT_FALSE(j.contains("logger"));
}

TEST(LoggingTest, ReservedKeysAndPlainNamesNeverOverwriteTheLine) {
  nlohmann::json j = JsonLine("router level=x", "msg=spoofed ts=0 \"quoted\"\n");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "msg=spoofed ts=0 \"quoted\"\n");
  EXPECT_NE(j["ts"], "0");
  // Plain words and reserved keys of the logger's name are kept, once, under "logger".
  EXPECT_EQ(j["logger"], "router level=x");
}

TEST(LoggingTest, FormatAndLevelAreChecked) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
  EXPECT_FALSE(ConfigureLogging(LogFormat::kText, "loud").ok());
  ASSERT_TRUE(ConfigureLogging(LogFormat::kJson, "warn").ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  EXPECT_EQ(IdentityLogger("model=m")->level(), spdlog::level::warn);
}

}  // namespace
}  // namespace sluice
