#include "lib/base/flags.h"

#include <gtest/gtest.h>

#include "lib/base/duration.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

struct Settings {
  bool help = false;
  std::string name = "default";
  int64_t count = 7;
  int32_t port = 8080;
  bool fast = true;
  std::chrono::microseconds delay{1000};
  std::chrono::seconds period{30};
  std::optional<std::string> label;
  std::optional<int64_t> limit;
  std::optional<bool> verbose;
  std::optional<std::chrono::milliseconds> ttl;
};

void Bind(FlagSet& f, Settings& s) {
  f.Bool("help", &s.help, "print this help");
  f.String("name", &s.name, "a name");
  f.Int("count", &s.count, 1, 100, "a count");
  f.Int("port", &s.port, 0, 65535, "a port");
  f.Bool("fast", &s.fast, "go fast");
  f.Duration("delay", &s.delay, 0ns, 1s, "a delay");
  f.Duration("period", &s.period, 1s, 24h, "a period");
  f.String("label", &s.label, "a label");
  f.Int("limit", &s.limit, 0, 10, "a limit");
  f.Bool("verbose", &s.verbose, "say more");
  f.Duration("ttl", &s.ttl, 0ns, 1h, "a ttl");
}

Result<Settings> Parse(const std::vector<std::string>& args) {
  Settings s;
  FlagSet f;
  Bind(f, s);
  RETURN_IF_ERROR(f.Parse(args));
  return s;
}

TEST(FlagSetTest, BothValueFormsBareBooleansAndNegation) {
  auto s = Parse({"--name=a", "--count", "12", "--no-fast", "--verbose", "--delay=500us",
                  "--period", "1m30s", "--label", "x=y", "--ttl=1.5s"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "a");
  EXPECT_EQ(s->count, 12);
  EXPECT_FALSE(s->fast);
  EXPECT_EQ(s->verbose, true);
  EXPECT_EQ(s->delay, 500us);
  EXPECT_EQ(s->period, 90s);
  EXPECT_EQ(s->label, "x=y");  // only the first '=' splits
  EXPECT_EQ(s->ttl, 1500ms);
  EXPECT_FALSE(s->limit.has_value());  // absent stays absent
  EXPECT_EQ(s->port, 8080);

  auto again = Parse({"--fast=off", "--fast=on", "--name", "--x", "-h"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->fast);       // the last one wins
  EXPECT_EQ(again->name, "--x");  // a value may look like a flag
  EXPECT_TRUE(again->help);
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus=1"}, "unknown flag --bogus"},
      {{"--no-name"}, "unknown flag --no-name"},  // only booleans negate
      {{"--count"}, "--count needs a value"},
      {{"--count=x"}, "--count: \"x\" is not an integer"},
      {{"--count=101"}, "--count: 101 is outside [1, 100]"},
      {{"--port=-1"}, "--port: -1 is outside [0, 65535]"},
      {{"--fast=maybe"}, "--fast: \"maybe\" is not a boolean"},
      {{"--delay=2s"}, "--delay: 2s is outside [0s, 1s]"},
      {{"--delay=5"}, "--delay: missing or unknown unit"},
      {{"--period=-1s"}, "--period: negative duration"},
      {{"stray"}, "unexpected argument \"stray\""},
  };
  for (const auto& [args, message] : cases) {
    auto s = Parse(args);
    ASSERT_FALSE(s.ok()) << args[0];
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(message), std::string::npos)
        << s.status().message() << " / wanted: " << message;
  }
}

TEST(FlagSetTest, ToArgsWritesWhatParseReads) {
  Settings s;
  s.name = "b c";
  s.count = 3;
  s.fast = false;
  s.delay = 1500us;
  s.label = "";
  s.limit = 0;
  s.verbose = false;
  s.ttl = 60s;
  FlagSet f;
  Bind(f, s);
  const std::vector<std::string> args = f.ToArgs();
  EXPECT_EQ(args,
            (std::vector<std::string>{"--help=false", "--name=b c", "--count=3", "--port=8080",
                                      "--fast=false", "--delay=1.5ms", "--period=30s",
                                      "--label=", "--limit=0", "--verbose=false", "--ttl=1m"}));
  auto back = Parse(args);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, s.name);
  EXPECT_EQ(back->delay, s.delay);
  EXPECT_EQ(back->label, s.label);
  EXPECT_EQ(back->limit, s.limit);
  EXPECT_EQ(back->verbose, s.verbose);
  EXPECT_EQ(back->ttl, s.ttl);
  EXPECT_FALSE(back->fast);
}

TEST(FlagSetTest, UsageListsEveryFlagWithItsDefault) {
  Settings s;
  FlagSet f;
  Bind(f, s);
  const std::string usage = f.Usage();
  EXPECT_NE(usage.find("--count=N"), std::string::npos) << usage;
  EXPECT_NE(usage.find("a count (default: 7)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--delay=DURATION"), std::string::npos) << usage;
  EXPECT_NE(usage.find("a delay (default: 1ms)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--fast "), std::string::npos) << usage;     // booleans take no VALUE
  EXPECT_NE(usage.find("say more\n"), std::string::npos) << usage;  // absent: no default shown
}

TEST(FlagSetTest, OneOfTakesOnlyTheListedValues) {
  std::string format = "text";
  FlagSet f;
  f.Add("log-format", &format, FlagSet::OneOf("text|json", {"text", "json"}), "how");
  EXPECT_TRUE(f.Parse({"--log-format=json"}).ok());
  EXPECT_EQ(format, "json");
  const Status bad = f.Parse({"--log-format=xml"});
  EXPECT_EQ(bad.message(), "--log-format: \"xml\" is not one of text, json");
  EXPECT_EQ(format, "json");
  EXPECT_NE(f.Usage().find("--log-format=text|json"), std::string::npos);
}

TEST(DurationTest, FormatIsTheShortestTextThatParsesBack) {
  for (auto [d, text] :
       std::vector<std::pair<std::chrono::nanoseconds, std::string>>{{0ns, "0s"},
                                                                     {250ns, "250ns"},
                                                                     {1500ns, "1.5us"},
                                                                     {500us, "500us"},
                                                                     {1ms, "1ms"},
                                                                     {250ms, "250ms"},
                                                                     {1s, "1s"},
                                                                     {90s, "1m30s"},
                                                                     {2h, "2h"},
                                                                     {3600s + 500ms, "1h0.5s"},
                                                                     {1s + 500us, "1.0005s"}}) {
    EXPECT_EQ(FormatGoDuration(d), text);
    auto back = ParseGoDuration(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, d) << text;
  }
  EXPECT_EQ(*ParseGoDuration("1.001s"), 1001ms);
  EXPECT_EQ(*ParseGoDuration("2\xC2\xB5s"), 2us);
  EXPECT_FALSE(ParseGoDuration("10").ok());
  EXPECT_FALSE(ParseGoDuration("1x").ok());
  EXPECT_FALSE(ParseGoDuration("").ok());
  EXPECT_FALSE(ParseGoDuration("999999999h").ok());
}

}  // namespace
}  // namespace sluice
