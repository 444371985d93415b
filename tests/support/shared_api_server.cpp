#include <gtest/gtest.h>

#include "tests/support/api_server.h"

namespace sluice::testing {
namespace {

// Linked into a test binary only when it calls SharedApiServer(); registering from a static
// initializer is what lets that call alone opt the binary in.
class SharedApiServerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto started = TestApiServer::Start();
    if (!started.ok()) {
      // Not fatal: a fatal failure here would mark every test "skipped". Each test that asks
      // for the server fails instead (see SharedApiServer).
      start_error_ = started.status();
      ADD_FAILURE() << "cannot start the shared test API server: " << start_error_;
      return;
    }
    server_ = std::move(started).value();
  }
  void TearDown() override { server_.reset(); }

  TestApiServer* server() { return server_.get(); }
  const Status& start_error() const { return start_error_; }

 private:
  std::unique_ptr<TestApiServer> server_;
  Status start_error_;
};

// NOLINTNEXTLINE(cert-err58-cpp): only allocation can throw, and then nothing could run anyway
SharedApiServerEnvironment* const g_environment = static_cast<SharedApiServerEnvironment*>(
    ::testing::AddGlobalTestEnvironment(new SharedApiServerEnvironment));

}  // namespace

TestApiServer& SharedApiServer() {
  if (TestApiServer* server = g_environment->server()) return *server;
  // Once per test, so the reason leads each failing test's output.
  static const ::testing::TestInfo* reported = nullptr;
  const ::testing::TestInfo* current = ::testing::UnitTest::GetInstance()->current_test_info();
  if (current != reported) {
    reported = current;
    ADD_FAILURE() << "the shared test API server is not running: "
                  << (g_environment->start_error().ok()
                          ? Status(FailedPrecondition("used outside a test"))
                          : g_environment->start_error());
  }
  // A server with no processes: URLs point at port 0 and every operation fails.
  static TestApiServer* const unstarted = new TestApiServer(ApiServerOptions{});
  return *unstarted;
}

}  // namespace sluice::testing
