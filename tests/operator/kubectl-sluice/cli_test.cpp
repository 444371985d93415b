// The command line of kubectl-sluice: commands, kubectl-style flags in any position, errors.

#include "operator/kubectl-sluice/cli.h"

#include <gtest/gtest.h>

namespace sluice::kubectl_sluice {
namespace {

Invocation Parse(const std::vector<std::string>& args) {
  auto r = ParseCommandLine(args);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Invocation{};
}

std::string Error(const std::vector<std::string>& args) {
  auto r = ParseCommandLine(args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(CliTest, CommandsAndNames) {
  Invocation inv = Parse({"status", "fraud"});
  EXPECT_EQ(inv.command, Command::kStatus);
  EXPECT_EQ(inv.name, "fraud");
  EXPECT_FALSE(inv.namespace_.has_value());
  EXPECT_EQ(Parse({"get"}).command, Command::kGet);
  EXPECT_EQ(Parse({"history", "x"}).command, Command::kHistory);
  EXPECT_EQ(Parse({"retry", "x"}).command, Command::kRetry);
  EXPECT_EQ(Parse({"--version"}).command, Command::kVersion);
}

TEST(CliTest, KubectlFlagsInEveryPositionAndSpelling) {
  Invocation inv =
      Parse({"-n", "ml", "promote", "--kubeconfig=/k", "fraud", "--context", "c1", "--full"});
  EXPECT_EQ(inv.command, Command::kPromote);
  EXPECT_EQ(inv.name, "fraud");
  EXPECT_EQ(inv.namespace_, "ml");
  EXPECT_EQ(inv.kubeconfig, "/k");
  EXPECT_EQ(inv.context, "c1");
  EXPECT_TRUE(inv.full);
  EXPECT_EQ(Parse({"abort", "x", "--namespace=ml"}).namespace_, "ml");
  EXPECT_EQ(Parse({"abort", "x", "-nml"}).namespace_, "ml");
  EXPECT_TRUE(Parse({"get", "-A"}).all_namespaces);
  EXPECT_TRUE(Parse({"--all-namespaces", "get"}).all_namespaces);
}

TEST(CliTest, StatusWatchAndWaitWithTimeout) {
  Invocation inv = Parse({"status", "fraud", "--wait", "--timeout", "90s"});
  EXPECT_TRUE(inv.wait);
  EXPECT_FALSE(inv.watch);
  EXPECT_EQ(inv.timeout, std::chrono::seconds(90));
  EXPECT_EQ(Parse({"status", "fraud", "--wait"}).timeout, std::chrono::minutes(10));
  EXPECT_TRUE(Parse({"status", "fraud", "-w"}).watch);
  EXPECT_NE(Error({"status", "fraud", "--wait", "--timeout=soon"}).find("--timeout"),
            std::string::npos);
  EXPECT_NE(Error({"status", "fraud", "--wait", "--timeout=0s"}).find("positive"),
            std::string::npos);
}

TEST(CliTest, HelpNeedsNoName) {
  Invocation inv = Parse({"status", "--help"});
  EXPECT_TRUE(inv.help);
  EXPECT_EQ(inv.command, Command::kStatus);
  EXPECT_TRUE(Parse({"-h"}).help);
  EXPECT_NE(HelpText(Command::kStatus).find("4 Degraded"), std::string::npos);
  EXPECT_NE(HelpText(Command::kNone).find("Exit codes:"), std::string::npos);
  EXPECT_NE(HelpText(Command::kNone).find("promote"), std::string::npos);
}

TEST(CliTest, UsageErrorsSayWhatIsWrong) {
  EXPECT_EQ(Error({}), "no command given");
  EXPECT_EQ(Error({"deploy"}), "unknown command \"deploy\"");
  EXPECT_EQ(Error({"status"}), "status needs the ModelDeployment's NAME");
  EXPECT_EQ(Error({"status", "a", "b"}), "unexpected argument \"b\"");
  EXPECT_EQ(Error({"get", "--bogus"}), "unknown flag --bogus");
  EXPECT_EQ(Error({"get", "-n"}), "-n needs a value");
  EXPECT_EQ(Error({"abort", "x", "--full"}), "--full applies to promote only");
  EXPECT_EQ(Error({"get", "--wait"}), "--watch and --wait apply to status only");
  EXPECT_EQ(Error({"status", "x", "--timeout=5s"}), "--timeout applies to status --wait only");
  EXPECT_EQ(Error({"status", "x", "-A"}), "-A/--all-namespaces applies to get only");
  EXPECT_EQ(Error({"get", "-A", "-n", "ml"}), "-n and -A cannot be used together");
  EXPECT_EQ(Error({"get", "--watch=yes"}), "--watch takes no value");
}

}  // namespace
}  // namespace sluice::kubectl_sluice
