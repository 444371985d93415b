// The router's gRPC proxy between a real gRPC client (the generated V2 stub) and real gRPC
// backends, all on 127.0.0.1.

#include "dataplane/router/grpc_proxy.h"

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/dataplane/router/grpc_test_backend.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::GrpcTestBackend;
using sluice::testing::GrpcTestClient;
using sluice::testing::InferResult;

constexpr auto kWait = std::chrono::seconds(20);

bool Eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class GrpcProxyHarness {
 public:
  explicit GrpcProxyHarness(GrpcProxyOptions options = {})
      : registry_(std::make_shared<prometheus::Registry>()), metrics_(registry_) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.model_deployment = "test/md";
    auto p = GrpcProxy::Create(options, state_, metrics_);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) proxy_ = std::move(p).value();
  }

  void Route(const TrafficConfig& config,
             const std::vector<std::pair<std::string, std::vector<Endpoint>>>& endpoints) {
    auto previous = state_.Load();
    state_.Publish(RoutingTable::Build(config, endpoints, &metrics_, previous.get()));
  }

  GrpcProxy& proxy() { return *proxy_; }
  uint16_t port() const { return proxy_->port(); }
  double Requests(const std::string& rev, CodeClass c) {
    return metrics_.ForRevision(rev).requests[static_cast<size_t>(c)]->Value();
  }
  double Mirrors(const std::string& rev, CodeClass c) {
    return metrics_.ForRevision(rev).mirror_requests[static_cast<size_t>(c)]->Value();
  }
  uint64_t DurationCount(const std::string& rev) {
    return metrics_.ForRevision(rev).duration->Collect().histogram.sample_count;
  }
  double Inflight() { return metrics_.inflight().Value(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  RouterMetrics metrics_;
  RoutingState state_;
  std::unique_ptr<GrpcProxy> proxy_;
};

Endpoint Grpc(const GrpcTestBackend& b) { return MakeEndpoint("127.0.0.1", 1, b.port()); }

TrafficConfig Weights(std::vector<TrafficTarget> targets, std::string sticky = "") {
  TrafficConfig c;
  c.targets = std::move(targets);
  c.sticky_header = std::move(sticky);
  return c;
}

inference::ModelInferRequest Request(const std::string& id) {
  inference::ModelInferRequest r;
  r.set_model_name("fraud");
  r.set_id(id);
  return r;
}

// The served-by backend of each call, and the metadata of the last one.
struct Answer {
  grpc::Status status;
  inference::ModelInferResponse response;
  std::multimap<std::string, std::string> initial;
  std::multimap<std::string, std::string> trailing;
};

Answer Call(uint16_t port, const inference::ModelInferRequest& request,
            std::multimap<std::string, std::string> metadata = {},
            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  GrpcTestClient client(port);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
  Answer a;
  a.status = client.stub().ModelInfer(&ctx, request, &a.response);
  for (const auto& [k, v] : ctx.GetServerInitialMetadata()) {
    a.initial.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  for (const auto& [k, v] : ctx.GetServerTrailingMetadata()) {
    a.trailing.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  return a;
}

std::string First(const std::multimap<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

TEST(ClassifyGrpcStatusTest, ByTheHttpStatusOfEachCode) {
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::OK), CodeClass::k2xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::INVALID_ARGUMENT), CodeClass::k4xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::NOT_FOUND), CodeClass::k4xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::RESOURCE_EXHAUSTED), CodeClass::k4xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::CANCELLED), CodeClass::k4xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::UNAVAILABLE), CodeClass::k5xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::INTERNAL), CodeClass::k5xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::DEADLINE_EXCEEDED), CodeClass::k5xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::UNIMPLEMENTED), CodeClass::k5xx);
  EXPECT_EQ(ClassifyGrpcStatus(grpc::StatusCode::UNKNOWN), CodeClass::k5xx);
}

TEST(GrpcProxyTest, SplitsByWeightExactlyAndPassesTheAnswerThrough) {
  GrpcTestBackend v1("v1"), v2("v2");
  GrpcProxyOptions options;
  options.revision_header = "X-Sluice-Revision";
  GrpcProxyHarness h(options);
  h.Route(Weights({{"rev-1", 75, 0}, {"rev-2", 25, 0}}),
          {{"rev-1", {Grpc(v1)}}, {"rev-2", {Grpc(v2)}}});
  std::map<std::string, int> served;
  for (int i = 0; i < 40; ++i) {
    Answer a = Call(h.port(), Request("req-" + std::to_string(i)), {{"x-caller", "c" + std::to_string(i)}});
    ASSERT_TRUE(a.status.ok()) << a.status.error_message();
    EXPECT_EQ(a.response.id(), "req-" + std::to_string(i));
    EXPECT_EQ(a.response.model_version(), "c" + std::to_string(i));  // caller metadata went up
    EXPECT_EQ(First(a.initial, "x-backend"), a.response.model_name());
    EXPECT_EQ(First(a.trailing, "x-trailer"), a.response.model_name());
    EXPECT_EQ(First(a.initial, "x-sluice-revision"), a.response.model_name() == "v1" ? "rev-1" : "rev-2");
    ++served[a.response.model_name()];
  }
  EXPECT_EQ(served["v1"], 30);
  EXPECT_EQ(served["v2"], 10);
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k2xx), 30);
  EXPECT_EQ(h.Requests("rev-2", CodeClass::k2xx), 10);
  EXPECT_EQ(h.DurationCount("rev-1"), 30u);
  EXPECT_EQ(h.Inflight(), 0);
  EXPECT_EQ(h.proxy().channels(), 2u);  // one shared channel per endpoint, not per call
}

TEST(GrpcProxyTest, BackendErrorsComeBackUnchangedAndAreCountedByClass) {
  GrpcTestBackend v1("v1");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 100, 0}}), {{"rev-1", {Grpc(v1)}}});
  v1.FailWith(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "input-0: want FP32", "details"));
  Answer bad = Call(h.port(), Request("a"));
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.status.error_message(), "input-0: want FP32");
  EXPECT_EQ(bad.status.error_details(), "details");
  EXPECT_EQ(First(bad.trailing, "x-trailer"), "v1");
  v1.FailWith(grpc::Status(grpc::StatusCode::INTERNAL, "model crashed"));
  Answer broken = Call(h.port(), Request("b"));
  EXPECT_EQ(broken.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(broken.status.error_message(), "model crashed");
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k4xx), 1);
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k5xx), 1);
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k2xx), 0);
}

TEST(GrpcProxyTest, StickyMetadataPinsACaller) {
  GrpcTestBackend v1("v1"), v2("v2");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 50, 0}, {"rev-2", 50, 0}}, "X-User"),
          {{"rev-1", {Grpc(v1)}}, {"rev-2", {Grpc(v2)}}});
  std::map<std::string, std::set<std::string>> seen;
  for (int round = 0; round < 4; ++round) {
    for (int user = 0; user < 16; ++user) {
      const std::string u = "user-" + std::to_string(user);
      Answer a = Call(h.port(), Request(u), {{"x-user", u}});
      ASSERT_TRUE(a.status.ok()) << a.status.error_message();
      seen[u].insert(a.response.model_name());
    }
  }
  std::set<std::string> backends;
  for (const auto& [user, served] : seen) {
    EXPECT_EQ(served.size(), 1u) << user << " moved between revisions";
    backends.insert(*served.begin());
  }
  EXPECT_EQ(backends.size(), 2u) << "16 callers should not all hash to one revision";
}

TEST(GrpcProxyTest, RouterErrorsAreUnavailableAndNameWhatIsMissing) {
  GrpcTestBackend v1("v1");
  GrpcProxyHarness h;
  Answer none = Call(h.port(), Request("a"));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(none.status.error_message().find("no revision of test/md has a ready endpoint"),
            std::string::npos)
      << none.status.error_message();
  // An endpoint whose slice has no gRPC port.
  h.Route(Weights({{"rev-1", 100, 0}}), {{"rev-1", {MakeEndpoint("127.0.0.1", v1.port())}}});
  Answer no_port = Call(h.port(), Request("b"));
  EXPECT_EQ(no_port.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(no_port.status.error_message().find("revision rev-1 of test/md has no gRPC port"),
            std::string::npos)
      << no_port.status.error_message();
  EXPECT_EQ(h.Requests("rev-1", CodeClass::kError), 1);
  EXPECT_EQ(v1.calls(), 0);
}

TEST(GrpcProxyTest, AnUnreachableBackendFailsFastAsUnavailable) {
  int closed_port = 0;
  {
    GrpcTestBackend gone("gone");
    closed_port = gone.port();
  }
  GrpcProxyOptions options;
  options.connect_timeout = std::chrono::milliseconds(500);
  GrpcProxyHarness h(options);
  h.Route(Weights({{"rev-1", 100, 0}}),
          {{"rev-1", {MakeEndpoint("127.0.0.1", 1, static_cast<uint16_t>(closed_port))}}});
  const auto start = std::chrono::steady_clock::now();
  Answer a = Call(h.port(), Request("a"), {}, std::chrono::seconds(30));
  EXPECT_EQ(a.status.error_code(), grpc::StatusCode::UNAVAILABLE) << a.status.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k5xx), 1);
}

TEST(GrpcProxyTest, TheCallersDeadlineGoesUpstreamCappedByTheUpstreamTimeout) {
  GrpcTestBackend v1("v1");
  GrpcProxyOptions options;
  options.upstream_timeout = std::chrono::milliseconds(400);
  GrpcProxyHarness h(options);
  h.Route(Weights({{"rev-1", 100, 0}}), {{"rev-1", {Grpc(v1)}}});

  // A caller deadline sooner than the cap arrives as it is (give or take the clock's reading).
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(Call(h.port(), Request("a"), {}, std::chrono::milliseconds(300)).status.ok());
  EXPECT_LE(v1.last_deadline(), before + std::chrono::milliseconds(300) + std::chrono::seconds(1));
  // A caller with a far deadline is cut at upstream_timeout: the backend holds, the call ends.
  v1.Hold();
  const auto start = std::chrono::steady_clock::now();
  Answer held = Call(h.port(), Request("b"), {}, std::chrono::seconds(60));
  EXPECT_EQ(held.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_TRUE(v1.WaitFor([](int, int cancelled, int) { return cancelled >= 1; }))
      << "the backend never saw its call end";
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k5xx), 1);
}

TEST(GrpcProxyTest, ACallerThatCancelsCancelsTheUpstreamCall) {
  GrpcTestBackend v1("v1");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 100, 0}}), {{"rev-1", {Grpc(v1)}}});
  v1.Hold();
  GrpcTestClient client(h.port());
  grpc::ClientContext ctx;
  const inference::ModelInferRequest request = Request("x");
  inference::ModelInferResponse response;
  std::promise<grpc::Status> done;
  client.stub().async()->ModelInfer(&ctx, &request, &response,
                                    [&done](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(v1.WaitFor([](int, int, int held) { return held == 1; }));
  ctx.TryCancel();
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(future.get().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(v1.WaitFor([](int, int cancelled, int) { return cancelled == 1; }))
      << "the upstream call kept running after its caller left";
  EXPECT_TRUE(Eventually([&] { return h.proxy().inflight() == 0; }));
}

TEST(GrpcProxyTest, MirrorsTheExactShareAndDiscardsItsAnswers) {
  GrpcTestBackend v1("v1"), shadow("shadow");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 100, 0}, {"shadow", 0, 50}}),
          {{"rev-1", {Grpc(v1)}}, {"shadow", {Grpc(shadow)}}});
  for (int i = 0; i < 20; ++i) {
    Answer a = Call(h.port(), Request(std::to_string(i)));
    ASSERT_TRUE(a.status.ok());
    EXPECT_EQ(a.response.model_name(), "v1");
  }
  ASSERT_TRUE(shadow.WaitFor([](int calls, int, int) { return calls >= 10; }));
  EXPECT_EQ(v1.calls(), 20);
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k2xx), 20);
  EXPECT_EQ(h.Requests("shadow", CodeClass::k2xx), 0);
  EXPECT_TRUE(Eventually([&] { return h.Mirrors("shadow", CodeClass::k2xx) == 10; }));
  EXPECT_EQ(shadow.calls(), 10);
}

TEST(GrpcProxyTest, ChannelsToEndpointsThatLeftAreDropped) {
  GrpcTestBackend v1("v1"), v2("v2");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 50, 0}, {"rev-2", 50, 0}}),
          {{"rev-1", {Grpc(v1)}}, {"rev-2", {Grpc(v2)}}});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Call(h.port(), Request("a")).status.ok());
  EXPECT_EQ(h.proxy().channels(), 2u);
  h.Route(Weights({{"rev-1", 100, 0}}), {{"rev-1", {Grpc(v1)}}});
  ASSERT_TRUE(Call(h.port(), Request("b")).status.ok());
  EXPECT_EQ(h.proxy().channels(), 1u);
}

TEST(GrpcProxyTest, ShutdownLetsCallsInFlightFinishAndRefusesNewOnes) {
  GrpcTestBackend v1("v1");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 100, 0}}), {{"rev-1", {Grpc(v1)}}});
  v1.Hold();
  GrpcTestClient client(h.port());
  auto inflight = client.InferAsync(Request("in-flight"));
  ASSERT_TRUE(v1.WaitFor([](int, int, int held) { return held == 1; }));
  std::future<bool> shutdown = std::async(std::launch::async, [&] {
    return h.proxy().Shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  });
  // A new call on the open connection is refused while the first one drains.
  ASSERT_TRUE(Eventually([&] { return h.proxy().shutting_down(); }));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ModelInferResponse r;
    const grpc::Status late = client.stub().ModelInfer(&ctx, Request("late"), &r);
    EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAVAILABLE) << late.error_message();
    EXPECT_EQ(late.error_message(), "sluice-router is shutting down");
  }
  EXPECT_EQ(v1.calls(), 1);
  v1.Release();
  ASSERT_EQ(inflight.wait_for(kWait), std::future_status::ready);
  InferResult r = inflight.get();
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.response.model_name(), "v1");
  ASSERT_EQ(shutdown.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(shutdown.get());
}

TEST(GrpcProxyTest, ManyConcurrentCallsAllAnsweredAndCounted) {
  GrpcTestBackend v1("v1"), v2("v2");
  GrpcProxyHarness h;
  h.Route(Weights({{"rev-1", 50, 0}, {"rev-2", 50, 0}}),
          {{"rev-1", {Grpc(v1)}}, {"rev-2", {Grpc(v2)}}});
  GrpcTestClient client(h.port());
  std::vector<std::future<InferResult>> calls;
  for (int i = 0; i < 200; ++i) calls.push_back(client.InferAsync(Request(std::to_string(i))));
  int ok = 0;
  for (auto& f : calls) {
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    ok += f.get().status.ok() ? 1 : 0;
  }
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(v1.calls(), 100);
  EXPECT_EQ(v2.calls(), 100);
  EXPECT_EQ(h.Requests("rev-1", CodeClass::k2xx) + h.Requests("rev-2", CodeClass::k2xx), 200);
}

}  // namespace
}  // namespace sluice::dataplane
