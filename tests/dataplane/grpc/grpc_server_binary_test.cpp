// The real sluice-server binary with --grpc-port on the committed fraud model: Triton's own Python
// gRPC client (tritonclient, from PyPI, in a cached venv) calls every RPC and gets the reference
// predictions; and SIGTERM drains gRPC calls in flight.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "tests/dataplane/grpc/grpc_test_client.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::Fp32Output;
using sluice::testing::Fp32Request;
using sluice::testing::GrpcTestClient;
using json = nlohmann::json;
namespace fs = std::filesystem;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
const std::string kInteropDir = SLUICE_INTEROP_DIR;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A loopback port nobody listens on right now (the server binds it a moment later).
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// sluice-server as a child process on 127.0.0.1; killed by the destructor if still running.
class Server {
 public:
  explicit Server(std::vector<std::string> extra) {
    dir_ = fs::temp_directory_path() /
           ("sluice-grpc-binary-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    grpc_port_ = FreePort();
    std::vector<std::string> argv = {SLUICE_SERVER_BIN,
                                     "--http-address",
                                     "127.0.0.1",
                                     "--http-port",
                                     "0",
                                     "--port-file",
                                     (dir_ / "port").string(),
                                     "--grpc-port",
                                     std::to_string(grpc_port_),
                                     "--model-uri",
                                     kModelDir + "/fraud.json",
                                     "--model-name",
                                     "fraud",
                                     "--io-threads",
                                     "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string log = (dir_ / "server.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
  }

  ~Server() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  uint16_t grpc_port() const { return grpc_port_; }
  std::string Log() const { return ReadFile(dir_ / "server.log"); }
  void Signal(int sig) { ::kill(pid_, sig); }

  // Polls ServerReady over gRPC until true, the process exits, or the deadline passes.
  bool WaitReady(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && !Exited()) {
      GrpcTestClient client(grpc_port_);
      inference::ServerReadyResponse ready;
      grpc::Status s =
          client.Call(&inference::GRPCInferenceService::Stub::ServerReady,
                      inference::ServerReadyRequest{}, &ready, std::chrono::seconds(1));
      if (s.ok() && ready.ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // The exit code, or nullopt on timeout or death by a signal.
  std::optional<int> Wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!Exited() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!status_ || !WIFEXITED(*status_)) return std::nullopt;
    return WEXITSTATUS(*status_);
  }

  bool Exited() {
    if (status_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
    return status_.has_value();
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  pid_t pid_ = -1;
  uint16_t grpc_port_ = 0;
  std::optional<int> status_;
};

// The venv lives in the sluice cache when there is one (it outlives build directories), else
// beside the test binary; ensure_venv.sh installs into it only when it is missing or stale.
fs::path InteropVenv() {
  if (const char* cache = std::getenv("SLUICE_CACHE"); cache != nullptr && *cache != '\0') {
    return fs::path(cache) / "venv" / "grpc-interop";
  }
  return SLUICE_INTEROP_VENV_FALLBACK;
}

// Runs `command` through the shell; its stdout, and the exit code in `rc`.
std::string RunShell(const std::string& command, int& rc) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int st = ::pclose(pipe);
  rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(GrpcServerBinary, TritonClientGetsTheReferencePredictions) {
  const fs::path venv = InteropVenv();
  int rc = 0;
  const std::string setup = RunShell("bash '" + kInteropDir + "/ensure_venv.sh' '" + venv.string() +
                                         "' '" + kInteropDir + "/requirements.txt' 2>&1",
                                     rc);
  ASSERT_EQ(rc, 0) << setup;

  Server server({"--log-format", "json"});
  ASSERT_TRUE(server.WaitReady()) << server.Log();
  const std::string reference = kModelDir + "/fraud.reference.json";
  const fs::path stderr_file =
      fs::temp_directory_path() / ("sluice-triton-client-" + std::to_string(::getpid()) + ".err");
  const std::string out =
      RunShell("'" + (venv / "bin" / "python").string() + "' '" + kInteropDir +
                   "/triton_client.py' 127.0.0.1:" + std::to_string(server.grpc_port()) +
                   " fraud '" + reference + "' 2>'" + stderr_file.string() + "'",
               rc);
  const std::string err = ReadFile(stderr_file);
  fs::remove(stderr_file);
  ASSERT_EQ(rc, 0) << out << err << server.Log();
  const json got = json::parse(out, nullptr, false);
  ASSERT_FALSE(got.is_discarded()) << out;

  EXPECT_EQ(got["live"], true);
  EXPECT_EQ(got["ready"], true);
  EXPECT_EQ(got["model_ready"], true);
  EXPECT_EQ(got["model_ready_v1"], true);
  EXPECT_EQ(got["server"]["name"], "sluice-server");
  EXPECT_EQ(got["model"]["name"], "fraud");
  EXPECT_EQ(got["model"]["versions"], json::array({"1"}));
  EXPECT_EQ(got["model"]["platform"], "xgboost");
  EXPECT_EQ(got["model"]["inputs"][0]["name"], "input-0");
  EXPECT_EQ(got["model"]["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(got["model"]["inputs"][0]["shape"], json::array({-1, 12}));
  EXPECT_EQ(got["model"]["outputs"][0]["name"], "predict");

  const json ref = json::parse(ReadFile(reference));
  const double tolerance = ref.value("tolerance", 1e-6);
  const json& infer = got["infer"];
  EXPECT_EQ(infer["id"], "interop-1");
  EXPECT_EQ(infer["model_name"], "fraud");
  EXPECT_EQ(infer["model_version"], "1");
  EXPECT_EQ(infer["datatype"], "FP32");
  EXPECT_EQ(infer["parameters"]["tenant"], "string_param: \"blue\"");
  EXPECT_EQ(infer["parameters"]["attempt"], "int64_param: 2");
  const auto& expected = ref["outputs"];
  ASSERT_EQ(infer["shape"], json::array({expected.size()}));
  ASSERT_EQ(infer["predictions"].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const double want =
        expected[i].is_array() ? expected[i][0].get<double>() : expected[i].get<double>();
    EXPECT_NEAR(infer["predictions"][i].get<double>(), want, tolerance) << "row " << i;
  }

  const json& errors = got["errors"];
  EXPECT_EQ(errors["unknown_model"]["status"], "StatusCode.NOT_FOUND");
  EXPECT_EQ(errors["unknown_model"]["message"], "model 'nope' is not served here");
  EXPECT_EQ(errors["wrong_shape"]["status"], "StatusCode.INVALID_ARGUMENT");
  EXPECT_NE(errors["wrong_shape"]["message"].get<std::string>().find("takes [-1,12]"),
            std::string::npos)
      << errors["wrong_shape"];
  EXPECT_EQ(errors["unknown_output"]["status"], "StatusCode.INVALID_ARGUMENT");
  EXPECT_EQ(errors["model_ready_unknown"]["status"], "StatusCode.NOT_FOUND");

  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(std::chrono::seconds(30)), 0) << server.Log();
  EXPECT_NE(server.Log().find("(gRPC)"), std::string::npos) << server.Log();
}

// Clients call ModelInfer back to back; SIGTERM arrives. Calls keep succeeding through the grace
// period; after it, a call is either answered OK or refused with UNAVAILABLE by the frontend,
// which keeps the gRPC server up for the refuse period (--drain-idle-timeout-ms) so that no call
// races gRPC's own shutdown: a call that reaches gRPC while it shuts down fails with CANCELLED,
// which a client cannot tell from a cancelled inference. That no accepted call was dropped is
// the server's own account: its drain log line.
TEST(GrpcServerBinary, SigtermDrainsGrpcCalls) {
  Server server({"--drain-grace-ms", "300", "--drain-timeout-ms", "20000", "--max-batch-size", "16",
                 "--max-body-bytes", "65536", "--drain-idle-timeout-ms", "5000"});
  ASSERT_TRUE(server.WaitReady()) << server.Log();
  {
    // --max-body-bytes bounds gRPC messages too: 1400 rows of 12 FP32 are 67,200 bytes.
    GrpcTestClient client(server.grpc_port());
    inference::ModelInferResponse res;
    const auto big =
        Fp32Request("fraud", std::vector<std::vector<float>>(1400, std::vector<float>(12)), true);
    const grpc::Status s = client.Infer(big, &res);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  }
  const auto request = Fp32Request("fraud", {std::vector<float>(12, 1.0f)}, true);
  constexpr int kClients = 4;
  std::atomic<bool> stop{false}, signalled{false};
  std::atomic<int> ok{0}, ok_after_signal{0};
  std::mutex mu;
  std::map<std::string, int> failures;  // guarded by mu
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      GrpcTestClient client(server.grpc_port());
      while (!stop.load()) {
        const bool after = signalled.load();
        inference::ModelInferResponse res;
        grpc::Status s = client.Infer(request, &res, std::chrono::seconds(10));
        if (s.ok() && Fp32Output(res).size() == 1) {
          ++ok;
          if (after) ++ok_after_signal;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        ++failures[std::to_string(s.error_code()) + " " + s.error_message()];
        return;
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ok.load() < 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  signalled = true;
  server.Signal(SIGTERM);
  const auto code = server.Wait(std::chrono::seconds(40));
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_EQ(code, 0) << server.Log();
  EXPECT_GE(ok.load(), 200);
  EXPECT_GT(ok_after_signal.load(), 0) << "nothing was served during the grace period";
  for (const auto& [what, n] : failures) {
    EXPECT_EQ(what, std::to_string(grpc::StatusCode::UNAVAILABLE) + " the server is shutting down")
        << n << " x " << what;
  }
  EXPECT_NE(server.Log().find("drained; every in-flight request answered"), std::string::npos)
      << server.Log();
}

}  // namespace
}  // namespace sluice::dataplane
