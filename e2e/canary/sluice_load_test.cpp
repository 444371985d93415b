// The real sluice-load binary against a real sluice-server on the committed fraud model: the
// status file counts what the server answered, by model version; the server's injected faults
// (deterministic: exactly P of every 100 requests) come out as failures; a signal stops an
// open-ended run cleanly; bad flags exit 1.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/dataplane/server/server_process.h"
#include "tests/support/process.h"

namespace sluice::canary {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::testing::RunCommand;
using sluice::testing::ServerProcess;
using sluice::testing::SpawnOptions;
using sluice::testing::Subprocess;

const std::string kModelDir = std::string(SLUICE_SOURCE_DIR) + "/bench/fraud/model";
constexpr char kModelVersion[] = "3";

class SluiceLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-load-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    status_file_ = (dir_ / "status.json").string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // sluice-server on 127.0.0.1 with the fraud model, ready; `env` goes to its environment.
  void StartServer(const std::vector<std::string>& env = {}) {
    ASSERT_TRUE(server_.Start(
        SLUICE_SERVER_BIN,
        {"--model-uri", kModelDir + "/fraud.json", "--model-name", "fraud", "--model-version",
         kModelVersion, "--io-threads", "1", "--drain-grace-ms", "0"},
        env))
        << server_.Log();
    ASSERT_TRUE(server_.WaitReady()) << server_.Log();
  }

  std::vector<std::string> LoadArgv(const std::vector<std::string>& extra) const {
    std::vector<std::string> argv = {
        SLUICE_LOAD_BIN,
        "--url=http://127.0.0.1:" + std::to_string(server_.port()) + "/v2/models/fraud/infer",
        "--body-file=" + kModelDir + "/sample_request.json", "--status-file=" + status_file_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // The status file as sluice-load last wrote it; discarded JSON when there is none yet.
  json Status() const {
    std::ifstream in(status_file_);
    return json::parse(std::string(std::istreambuf_iterator<char>(in), {}), nullptr, false);
  }

  // Runs sluice-load for 2 s at 50 requests/s and returns its final status.
  json RunTwoSeconds() {
    auto run = RunCommand(LoadArgv({"--rate=50", "--duration-s=2"}), 60s);
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return json();
    EXPECT_TRUE(run->status.success()) << run->status.ToString() << "\n" << run->output;
    // The per-second timeline on stdout.
    EXPECT_NE(run->output.find("t=0s ok="), std::string::npos) << run->output;
    EXPECT_NE(run->output.find("t=1s ok="), std::string::npos) << run->output;
    json s = Status();
    EXPECT_TRUE(s.is_object()) << "status file: " << s.dump();
    return s.is_object() ? s : json();
  }

  static void ExpectConsistent(const json& s) {
    ASSERT_TRUE(s.is_object());
    EXPECT_EQ(s["ok"].get<int64_t>() + s["failed"].get<int64_t>(), s["total"].get<int64_t>());
    int64_t by_version = 0;
    for (const auto& [version, n] : s["by_version"].items()) by_version += n.get<int64_t>();
    EXPECT_EQ(by_version, s["ok"].get<int64_t>()) << s.dump();
    const json& recent = s["recent"];
    EXPECT_EQ(recent["window_s"], 2);
    EXPECT_LE(recent["total"].get<int64_t>(), s["total"].get<int64_t>());
    EXPECT_LE(recent["failed"].get<int64_t>(), recent["total"].get<int64_t>());
  }

  ServerProcess server_;
  std::filesystem::path dir_;
  std::string status_file_;
};

TEST_F(SluiceLoadTest, CountsEveryAnswerByModelVersion) {
  StartServer();
  const json s = RunTwoSeconds();
  ASSERT_TRUE(s.is_object());
  SCOPED_TRACE(s.dump());
  ExpectConsistent(s);
  EXPECT_EQ(s["done"], true);
  EXPECT_GE(s["elapsed_s"].get<double>(), 2.0);
  // Open loop at 50/s for 2 s: about 100 requests, all answered by the model's version.
  EXPECT_GT(s["total"].get<int64_t>(), 0);
  EXPECT_GE(s["total"].get<int64_t>(), 80);
  EXPECT_LE(s["total"].get<int64_t>(), 101);
  EXPECT_EQ(s["failed"], 0);
  EXPECT_EQ(s["by_version"], json({{kModelVersion, s["total"]}}));
  EXPECT_TRUE(s["first_failure_s"].is_null());
  EXPECT_TRUE(s["last_failure_s"].is_null());
  const double last_ok = s["last_ok_s_by_version"][kModelVersion].get<double>();
  EXPECT_GT(last_ok, 1.5);
  EXPECT_LE(last_ok, s["elapsed_s"].get<double>());
  EXPECT_EQ(s["recent"]["failed"], 0);
  EXPECT_GT(s["recent"]["by_version"][kModelVersion].get<int64_t>(), 0);
}

TEST_F(SluiceLoadTest, InjectedFaultsAreFailures) {
  StartServer({"SLUICE_FAULT_ERROR_PERCENT=20"});
  const json s = RunTwoSeconds();
  ASSERT_TRUE(s.is_object());
  SCOPED_TRACE(s.dump());
  ExpectConsistent(s);
  const int64_t total = s["total"].get<int64_t>();
  ASSERT_GE(total, 80);
  // The server fails request n when floor((n+1)*20/100) > floor(n*20/100): of its first `total`
  // requests exactly floor(total/5), and sluice-load sent it no others.
  EXPECT_EQ(s["failed"].get<int64_t>(), total * 20 / 100);
  EXPECT_EQ(s["by_version"], json({{kModelVersion, total - total * 20 / 100}}));
  ASSERT_TRUE(s["first_failure_s"].is_number());
  ASSERT_TRUE(s["last_failure_s"].is_number());
  EXPECT_LE(s["first_failure_s"].get<double>(), s["last_failure_s"].get<double>());
  EXPECT_LE(s["last_failure_s"].get<double>(), s["elapsed_s"].get<double>());
  EXPECT_GT(s["recent"]["failed"].get<int64_t>(), 0);
}

TEST_F(SluiceLoadTest, RunsUntilSignalledWritingTheStatusMeanwhile) {
  StartServer();
  SpawnOptions spawn;
  spawn.argv = LoadArgv({"--rate=50"});  // --duration-s=0: until a stop signal
  spawn.log_path = (dir_ / "load.log").string();
  auto load = Subprocess::Spawn(spawn);
  ASSERT_TRUE(load.ok()) << load.status();

  // Status files of the running load, until one shows 10 answers.
  json running;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline && (*load)->Running()) {
    running = Status();
    if (running.is_object() && running["total"].get<int64_t>() >= 10) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(running.is_object()) << sluice::testing::TailFile(spawn.log_path);
  ASSERT_GE(running["total"].get<int64_t>(), 10) << running.dump();
  EXPECT_EQ(running["done"], false);
  ExpectConsistent(running);

  auto ended = (*load)->Stop(10s);  // SIGTERM
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->success()) << ended->ToString() << "\n"
                                << sluice::testing::TailFile(spawn.log_path);
  const json s = Status();
  ASSERT_TRUE(s.is_object());
  SCOPED_TRACE(s.dump());
  ExpectConsistent(s);
  EXPECT_EQ(s["done"], true);
  EXPECT_GE(s["total"].get<int64_t>(), running["total"].get<int64_t>());
  EXPECT_EQ(s["failed"], 0);
  EXPECT_NE(sluice::testing::TailFile(spawn.log_path).find("SIGTERM: stopping"), std::string::npos);
}

TEST_F(SluiceLoadTest, BadFlagsOrAnUnreadableBodyExitOne) {
  const std::string status = "--status-file=" + status_file_;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {SLUICE_LOAD_BIN},
           {SLUICE_LOAD_BIN, "--url=http://127.0.0.1:1/", "--body-file=/nonexistent/body.json",
            status},
           {SLUICE_LOAD_BIN, "--url=http://127.0.0.1:1/",
            "--body-file=" + kModelDir + "/sample_request.json", "--rate=0", status},
           {SLUICE_LOAD_BIN, "--url=http://127.0.0.1:1/",
            "--body-file=" + kModelDir + "/sample_request.json",
            "--status-file=/nonexistent/status.json"},
           {SLUICE_LOAD_BIN, "--no-such-flag"},
       }) {
    auto run = RunCommand(argv, 30s);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_TRUE(run->status.exited && run->status.code == 1)
        << argv.back() << ": " << run->status.ToString() << "\n"
        << run->output;
  }
  auto help = RunCommand({SLUICE_LOAD_BIN, "--help"}, 30s);
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->status.success());
  EXPECT_NE(help->output.find("--status-file=FILE"), std::string::npos) << help->output;
}

}  // namespace
}  // namespace sluice::canary
