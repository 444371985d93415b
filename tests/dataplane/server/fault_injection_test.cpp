#include "dataplane/server/fault_injection.h"

#include <atomic>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/dataplane/server/fake_runtime.h"
#include "tests/lib/base/fake_clock.h"
#include "dataplane/server/inference_service.h"
#include "dataplane/server/server_flags.h"
#include "dataplane/server/v2_codec.h"

namespace sluice::dataplane {
namespace {

using namespace std::chrono_literals;
using sluice::testing::FakeClock;
using sluice::testing::FakeRuntime;

std::function<const char*(const char*)> Env(std::map<std::string, std::string> vars) {
  auto held = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [held](const char* name) -> const char* {
    auto it = held->find(name);
    return it == held->end() ? nullptr : it->second.c_str();
  };
}

std::vector<bool> Tickets(FaultInjector& f, size_t n) {
  std::vector<bool> out;
  for (size_t i = 0; i < n; ++i) out.push_back(f.NextFails());
  return out;
}

TEST(FaultInjection, EveryWindowOfAHundredRequestsHoldsExactlyThePercentage) {
  for (int percent = 0; percent <= 100; ++percent) {
    auto f = FaultInjector::Create(FaultOptions{percent, 0ms}, Clock::Real());
    ASSERT_TRUE(f.ok()) << f.status();
    const auto t = Tickets(**f, 400);
    for (size_t start = 0; start + 100 <= t.size(); ++start) {
      int failed = 0;
      for (size_t i = start; i < start + 100; ++i) failed += t[i];
      ASSERT_EQ(failed, percent) << "percent " << percent << ", window from request " << start;
    }
  }
}

TEST(FaultInjection, TwentyPercentIsEveryFifthRequest) {
  auto f = FaultInjector::Create(FaultOptions{20, 0ms}, Clock::Real());
  ASSERT_TRUE(f.ok());
  const auto t = Tickets(**f, 50);
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i], i % 5 == 4) << "request " << i;
}

TEST(FaultInjection, TicketsFromManyThreadsAddUp) {
  auto f = FaultInjector::Create(FaultOptions{30, 0ms}, Clock::Real());
  ASSERT_TRUE(f.ok());
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2500; ++i) failed += (*f)->NextFails();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 3000);
}

TEST(FaultInjection, OptionsFromTheEnvironment) {
  auto off = FaultOptionsFromEnv(Env({}));
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled());
  auto empty = FaultOptionsFromEnv(Env({{kFaultErrorPercentEnv, ""}}));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->enabled());

  auto on = FaultOptionsFromEnv(Env({{kFaultErrorPercentEnv, "20"}, {kFaultDelayMsEnv, "150"}}));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->error_percent, 20);
  EXPECT_EQ(on->delay, 150ms);
  EXPECT_TRUE(on->enabled());

  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {kFaultErrorPercentEnv, "101"},
           {kFaultErrorPercentEnv, "-1"},
           {kFaultErrorPercentEnv, "20%"},
           {kFaultErrorPercentEnv, "0.5"},
           {kFaultDelayMsEnv, "fast"},
           {kFaultDelayMsEnv, "600001"}}) {
    auto bad = FaultOptionsFromEnv(Env({{name, value}}));
    ASSERT_FALSE(bad.ok()) << name << "=" << value;
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find(name), std::string::npos) << bad.status().message();
  }
}

TEST(FaultInjection, FlagsOverrideTheEnvironment) {
  const auto env = Env({{kFaultErrorPercentEnv, "20"}, {kFaultDelayMsEnv, "7"}});
  auto from_env = ParseServerFlags({"--model-uri", "m.json"}, env);
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->ToFaultOptions().error_percent, 20);
  EXPECT_EQ(from_env->ToFaultOptions().delay, 7ms);

  auto flags = ParseServerFlags(
      {"--model-uri", "m.json", "--fault-error-percent", "0", "--fault-delay-ms=3"}, env);
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->ToFaultOptions().error_percent, 0);
  EXPECT_EQ(flags->ToFaultOptions().delay, 3ms);

  auto without_env = ParseServerFlags({"--model-uri", "m.json"});
  ASSERT_TRUE(without_env.ok());
  EXPECT_FALSE(without_env->ToFaultOptions().enabled());

  EXPECT_FALSE(ParseServerFlags({"--model-uri", "m.json", "--fault-error-percent", "101"}).ok());
  auto bad_env = ParseServerFlags({"--model-uri", "m.json"}, Env({{kFaultDelayMsEnv, "x"}}));
  ASSERT_FALSE(bad_env.ok());
  EXPECT_NE(bad_env.status().message().find(kFaultDelayMsEnv), std::string::npos);
}

TEST(FaultInjection, OnlyTheNamedModelVersionMisbehaves) {
  auto env = Env({{kFaultErrorPercentEnv, "50"}, {kFaultOnlyVersionEnv, "3"}});
  auto bad = ParseServerFlags({"--model-uri", "m.json", "--model-version", "3"}, env);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->ToFaultOptions().error_percent, 50);
  EXPECT_TRUE(bad->ToFaultOptions().enabled());
  auto good = ParseServerFlags({"--model-uri", "m.json", "--model-version", "2"}, env);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_FALSE(good->ToFaultOptions().enabled());
  // Without the filter every version gets the faults, as before.
  auto any = ParseServerFlags({"--model-uri", "m.json", "--model-version", "2"},
                              Env({{kFaultErrorPercentEnv, "50"}}));
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->ToFaultOptions().enabled());
}

TEST(FaultInjection, DelayedWorkRunsOnlyWhenTheDelayHasPassed) {
  FakeClock clock;
  auto f = FaultInjector::Create(FaultOptions{0, 100ms}, clock);
  ASSERT_TRUE(f.ok());
  std::promise<void> ran;
  (*f)->AfterDelay([&] { ran.set_value(); });
  auto done = ran.get_future();
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  clock.Advance(99ms);
  ASSERT_TRUE(clock.BlockUntilWaiters(1));  // woken or not, it waits again: not due yet
  EXPECT_EQ(done.wait_for(0s), std::future_status::timeout);
  clock.Advance(1ms);
  EXPECT_EQ(done.wait_for(30s), std::future_status::ready);
}

TEST(FaultInjection, StopRunsWhatIsStillWaiting) {
  FakeClock clock;
  auto f = FaultInjector::Create(FaultOptions{0, 1h}, clock);
  ASSERT_TRUE(f.ok());
  int ran = 0;
  for (int i = 0; i < 3; ++i) (*f)->AfterDelay([&] { ++ran; });
  (*f)->Stop();
  EXPECT_EQ(ran, 3);
  (*f)->AfterDelay([&] { ++ran; });  // after Stop: at once, on this thread
  EXPECT_EQ(ran, 4);
}

class FaultyServiceTest : public ::testing::Test {
 protected:
  void Build(FaultOptions faults, Clock& clock) {
    InferenceServiceOptions options;
    options.faults = faults;
    auto s = InferenceService::Create(options, std::make_shared<prometheus::Registry>(), clock);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(s).value();
    ModelOptions o;
    o.name = "m";
    auto m = service_->AddModel(o);
    ASSERT_TRUE(m.ok());
    model_ = *m;
    ASSERT_TRUE(service_->SetRuntime(*model_, std::make_unique<FakeRuntime>(3, 1)).ok());
    ASSERT_TRUE(service_->WarmUpAndMarkReady(*model_).ok());
  }

  std::future<Result<InferResponse>> Start() {
    auto req = ParseInferRequest(
        R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})",
        std::nullopt);
    EXPECT_TRUE(req.ok());
    auto p = std::make_shared<std::promise<Result<InferResponse>>>();
    auto f = p->get_future();
    service_->Infer(*model_, std::move(req).value(),
                    [p](Result<InferResponse> r) { p->set_value(std::move(r)); });
    return f;
  }

  std::unique_ptr<InferenceService> service_;
  Model* model_ = nullptr;
};

TEST_F(FaultyServiceTest, OneRequestInFiveFailsWithAnInjectedFault) {
  Build(FaultOptions{20, 0ms}, Clock::Real());
  for (int i = 0; i < 20; ++i) {
    auto r = Start().get();
    if (i % 5 == 4) {
      ASSERT_FALSE(r.ok()) << "request " << i;
      EXPECT_EQ(r.status().code(), StatusCode::kInternal);
      EXPECT_EQ(r.status().message(), kInjectedFaultMessage);
      EXPECT_EQ(HttpStatusFor(r.status()), 500);
    } else {
      ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.status();
      EXPECT_EQ(r->outputs.size(), 1u);
    }
  }
}

TEST_F(FaultyServiceTest, TheDelayHoldsTheAnswerBack) {
  FakeClock clock;
  Build(FaultOptions{50, 40ms}, clock);
  auto first = Start();
  auto second = Start();
  ASSERT_TRUE(clock.BlockUntilWaiterBy(clock.Now() + 40ms));
  EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(second.wait_for(0s), std::future_status::timeout);
  clock.Advance(40ms);
  ASSERT_EQ(first.wait_for(30s), std::future_status::ready);
  ASSERT_EQ(second.wait_for(30s), std::future_status::ready);
  auto a = first.get();
  auto b = second.get();
  EXPECT_TRUE(a.ok()) << a.status();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), kInjectedFaultMessage);
}

TEST_F(FaultyServiceTest, StopAnswersDelayedRequests) {
  FakeClock clock;
  Build(FaultOptions{0, 1h}, clock);
  auto pending = Start();
  service_->Stop();
  ASSERT_EQ(pending.wait_for(30s), std::future_status::ready);
  auto r = pending.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace sluice::dataplane
