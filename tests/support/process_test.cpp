#include "tests/support/process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/process_test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string ReadLog(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
};

TEST_F(ProcessTest, CapturesOutputAndExitCode) {
  SpawnOptions options;
  options.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  options.log_path = dir_ + "/log";
  auto child = Subprocess::Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  auto status = (*child)->Wait(seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 3);
  EXPECT_FALSE(status->success());
  EXPECT_EQ(ReadLog(options.log_path), "out\nerr\n");
}

TEST_F(ProcessTest, AppendLogKeepsEarlierOutput) {
  SpawnOptions options;
  options.log_path = dir_ + "/log";
  options.argv = {"sh", "-c", "echo first"};
  ASSERT_TRUE((*Subprocess::Spawn(options))->Wait(seconds(30)).ok());
  options.argv = {"sh", "-c", "echo second"};
  options.append_log = true;
  ASSERT_TRUE((*Subprocess::Spawn(options))->Wait(seconds(30)).ok());
  EXPECT_EQ(ReadLog(options.log_path), "first\nsecond\n");
}

TEST_F(ProcessTest, EnvironmentOverridesAndWorkingDir) {
  ::setenv("SLUICE_PROCESS_TEST_INHERITED", "from-parent", 1);
  SpawnOptions options;
  options.argv = {"sh", "-c", "echo $SLUICE_PROCESS_TEST_INHERITED $HOME $(pwd)"};
  options.env = {"HOME=/overridden"};
  options.working_dir = dir_;
  options.log_path = dir_ + "/log";
  auto child = Subprocess::Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE((*child)->Wait(seconds(30)).ok());
  EXPECT_EQ(ReadLog(options.log_path),
            "from-parent /overridden " + std::filesystem::canonical(dir_).string() + "\n");
  ::unsetenv("SLUICE_PROCESS_TEST_INHERITED");
}

TEST_F(ProcessTest, SpawnOfMissingProgramFails) {
  SpawnOptions options;
  options.argv = {dir_ + "/no-such-program"};
  auto child = Subprocess::Spawn(options);
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("no-such-program"), std::string::npos);

  options.argv = {"sluice-no-such-program-in-path"};
  EXPECT_EQ(Subprocess::Spawn(options).status().code(), StatusCode::kNotFound);
}

TEST_F(ProcessTest, WaitTimesOutOnRunningChild) {
  SpawnOptions options;
  options.argv = {"sleep", "60"};
  auto child = Subprocess::Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE((*child)->Running());
  EXPECT_EQ((*child)->Wait(milliseconds(50)).status().code(), StatusCode::kTimeout);
  auto stopped = (*child)->Stop(seconds(10));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_FALSE(stopped->exited);
  EXPECT_EQ(stopped->signal, SIGTERM);
  EXPECT_FALSE((*child)->Running());
  // Stopping again reports the same ending.
  EXPECT_EQ((*child)->Stop()->signal, SIGTERM);
}

TEST_F(ProcessTest, StopEscalatesToSigkill) {
  SpawnOptions options;
  // The shell ignores TERM and says so once it is ready, so the signal cannot arrive too early.
  options.argv = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"};
  options.log_path = dir_ + "/log";
  auto child = Subprocess::Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (ReadLog(options.log_path).find("ready") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "child never got ready";
    std::this_thread::sleep_for(milliseconds(5));
  }
  auto stopped = (*child)->Stop(milliseconds(200));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_FALSE(stopped->exited);
  EXPECT_EQ(stopped->signal, SIGKILL);
}

TEST_F(ProcessTest, DestructorKillsRunningChild) {
  pid_t pid;
  {
    SpawnOptions options;
    options.argv = {"sleep", "60"};
    auto child = Subprocess::Spawn(options);
    ASSERT_TRUE(child.ok()) << child.status();
    pid = (*child)->pid();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  // Reaped by the destructor, so the pid no longer names our child.
  const pid_t reaped = ::waitpid(pid, nullptr, WNOHANG);
  const int err = errno;
  EXPECT_EQ(reaped, -1);
  EXPECT_EQ(err, ECHILD);
}

TEST_F(ProcessTest, ChildDiesWithTheThreadThatSpawnedIt) {
  pid_t pid = -1;
  // Outlives the thread: only the death signal may end the child here, not the destructor.
  std::unique_ptr<Subprocess> kept;
  std::thread spawner([&] {
    SpawnOptions options;
    options.argv = {"sleep", "60"};
    auto child = Subprocess::Spawn(options);
    ASSERT_TRUE(child.ok()) << child.status();
    pid = (*child)->pid();
    kept = std::move(child).value();
  });
  spawner.join();
  ASSERT_GT(pid, 0);
  int status = 0;
  // Bounded: if the death signal never comes, `sleep 60` ends the wait and the asserts fail.
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(ProcessTest, RunCommandCapturesOutput) {
  auto result = RunCommand({"sh", "-c", "echo hello; echo oops >&2; exit 2"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->status.code, 2);
  EXPECT_EQ(result->output, "hello\noops\n");

  auto with_env = RunCommand({"sh", "-c", "echo $SLUICE_X"}, seconds(30), {"SLUICE_X=42"});
  ASSERT_TRUE(with_env.ok()) << with_env.status();
  EXPECT_EQ(with_env->output, "42\n");
}

TEST_F(ProcessTest, RunCommandKillsOnTimeout) {
  const auto start = std::chrono::steady_clock::now();
  auto result = RunCommand({"sleep", "60"}, milliseconds(200));
  EXPECT_EQ(result.status().code(), StatusCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(30));
}

TEST_F(ProcessTest, TailFileReturnsLastLines) {
  const std::string path = dir_ + "/lines";
  {
    std::ofstream out(path);
    for (int i = 1; i <= 100; ++i) out << "line " << i << "\n";
  }
  EXPECT_EQ(TailFile(path, 3), "line 98\nline 99\nline 100\n");
  EXPECT_EQ(TailFile(path, 1000).substr(0, 7), "line 1\n");
  EXPECT_EQ(TailFile(dir_ + "/missing"), "");
}

TEST_F(ProcessTest, PickFreePortIsBindable) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_GT(*port, 0);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(*port));
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
}

}  // namespace
}  // namespace sluice::testing
