// Events as the API receives them: the core/v1 shape, aggregation of repeats into one Event's
// count, a new Event once the old one expired, and failures that never reach the reconciler.

#include "lib/controller/events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/controller/reconciler.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/kube/fake_transport.h"

namespace sluice::controllers {
namespace {

using kube::testing::FakeTransport;
using kube::testing::Reply;
using nlohmann::json;

InvolvedObject Fraud() {
  return InvolvedObject::From(
      {{"apiVersion", "sluice.dev/v1alpha1"},
       {"kind", "ModelDeployment"},
       {"metadata",
        {{"name", "fraud"}, {"namespace", "ml"}, {"uid", "u-1"}, {"resourceVersion", "7"}}}});
}

class EventsTest : public ::testing::Test {
 protected:
  EventsTest() {
    auto transport = std::make_unique<FakeTransport>();
    transport_ = transport.get();
    kube::Config config;
    config.server = "https://127.0.0.1:6443";
    kube::ClientOptions options;
    options.clock = &clock_;
    client_ = *kube::Client::Create(config, std::move(transport), options);
    KubeEventRecorderOptions eo;
    eo.instance = "operator-0";
    recorder_ = std::make_unique<KubeEventRecorder>(*client_, clock_, eo);
  }

  sluice::testing::FakeClock clock_;
  FakeTransport* transport_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<KubeEventRecorder> recorder_;
};

TEST_F(EventsTest, FirstOccurrenceCreatesACoreV1Event) {
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "create",
                     Reply(201, json::object()));
  recorder_->Record(Fraud(), EventSeverity::kWarning, "AnalysisFailed", "error-rate 0.03 > 0.01");
  recorder_->Flush();
  ASSERT_TRUE(transport_->pending().empty());
  const json e = json::parse(transport_->requests().at(0).body);
  EXPECT_EQ(e["apiVersion"], "v1");
  EXPECT_EQ(e["kind"], "Event");
  EXPECT_EQ(e["metadata"]["namespace"], "ml");
  EXPECT_THAT(e["metadata"]["name"].get<std::string>(), ::testing::StartsWith("fraud."));
  EXPECT_EQ(e["involvedObject"], (json{{"apiVersion", "sluice.dev/v1alpha1"},
                                       {"kind", "ModelDeployment"},
                                       {"name", "fraud"},
                                       {"namespace", "ml"},
                                       {"uid", "u-1"},
                                       {"resourceVersion", "7"}}));
  EXPECT_EQ(e["reason"], "AnalysisFailed");
  EXPECT_EQ(e["message"], "error-rate 0.03 > 0.01");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["source"]["component"], "sluice-operator");
  EXPECT_EQ(e["reportingComponent"], "sluice-operator");
  EXPECT_EQ(e["reportingInstance"], "operator-0");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["firstTimestamp"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(e["lastTimestamp"], "2024-01-01T00:00:00Z");
}

TEST_F(EventsTest, RepeatsBumpTheCountOfOneEvent) {
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "create",
                     Reply(201, json::object()));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "PhaseHealthy", "phase Healthy");
  recorder_->Flush();
  const std::string name =
      json::parse(transport_->requests().at(0).body)["metadata"]["name"].get<std::string>();
  transport_->Expect(FakeTransport::Is("PATCH", "/api/v1/namespaces/ml/events/" + name), "bump",
                     Reply(200, json::object()));
  clock_.Advance(std::chrono::seconds(90));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "PhaseHealthy", "phase Healthy");
  recorder_->Flush();
  ASSERT_TRUE(transport_->pending().empty());
  const kube::Request patch = transport_->requests().at(1);
  EXPECT_EQ(json::parse(patch.body),
            (json{{"count", 2}, {"lastTimestamp", "2024-01-01T00:01:30Z"}}));

  // A different message is a different Event.
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "create other",
                     Reply(201, json::object()));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "PhaseHealthy", "phase Healthy again");
  recorder_->Flush();
  EXPECT_TRUE(transport_->pending().empty());
  EXPECT_TRUE(transport_->unexpected().empty());
}

TEST_F(EventsTest, AnExpiredEventStartsANewSeries) {
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "create",
                     Reply(201, json::object()));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "Promoted", "canary promoted");
  recorder_->Flush();
  const std::string name =
      json::parse(transport_->requests().at(0).body)["metadata"]["name"].get<std::string>();
  transport_->Expect(FakeTransport::Is("PATCH", "/api/v1/namespaces/ml/events/" + name), "gone",
                     Reply(404, kube::testing::StatusObject(404, "NotFound", "not found")));
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "recreate",
                     Reply(201, json::object()));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "Promoted", "canary promoted");
  recorder_->Flush();
  EXPECT_TRUE(transport_->pending().empty());
  EXPECT_EQ(json::parse(transport_->requests().at(2).body)["count"], 1);
  // Outside the aggregation window a repeat also starts over.
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "late",
                     Reply(201, json::object()));
  clock_.Advance(std::chrono::minutes(11));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "Promoted", "canary promoted");
  recorder_->Flush();
  EXPECT_TRUE(transport_->pending().empty());
}

TEST_F(EventsTest, AFailedWriteIsDroppedQuietly) {
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "refused",
                     Reply(403, kube::testing::StatusObject(403, "Forbidden", "no")));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "X", "y");
  recorder_->Flush();
  // Not remembered as a series: the next one tries to create again.
  transport_->Expect(FakeTransport::Is("POST", "/api/v1/namespaces/ml/events"), "again",
                     Reply(201, json::object()));
  recorder_->Record(Fraud(), EventSeverity::kNormal, "X", "y");
  recorder_->Flush();
  EXPECT_TRUE(transport_->pending().empty());
  EXPECT_TRUE(transport_->unexpected().empty());
}

TEST(ReconcilerContractTest, KeysAndActions) {
  EXPECT_EQ(ObjectKey::Parse("ml/fraud")->ns, "ml");
  EXPECT_EQ(ObjectKey::Parse("ml/fraud")->name, "fraud");
  EXPECT_EQ(ObjectKey::Parse("node-1")->ns, "");
  EXPECT_EQ(ObjectKey::Parse("node-1")->String(), "node-1");
  EXPECT_FALSE(ObjectKey::Parse("ml/").ok());
  EXPECT_FALSE(ObjectKey::Parse("a/b/c").ok());
  EXPECT_FALSE(Action::WaitForChange().requeue());
  EXPECT_EQ(Action::RequeueAfter(std::chrono::seconds(3)).requeue_after(), std::chrono::seconds(3));
  // A zero delay still requeues (at once), it never silently becomes "wait for change".
  EXPECT_TRUE(Action::RequeueAfter(std::chrono::milliseconds(0)).requeue());
  EXPECT_EQ(Action::Sooner(Action::WaitForChange(), Action::RequeueAfter(std::chrono::seconds(5))),
            Action::RequeueAfter(std::chrono::seconds(5)));
  EXPECT_EQ(Action::Sooner(Action::RequeueAfter(std::chrono::seconds(2)),
                           Action::RequeueAfter(std::chrono::seconds(5))),
            Action::RequeueAfter(std::chrono::seconds(2)));
  Status terminal = TerminalError(sluice::Status(StatusCode::kInvalid, "bad"));
  EXPECT_TRUE(IsTerminal(terminal));
  EXPECT_EQ(terminal.code(), StatusCode::kInvalid);
  EXPECT_FALSE(IsTerminal(sluice::Status(StatusCode::kInvalid, "bad")));
  EXPECT_FALSE(IsTerminal(Status::Ok()));
}

}  // namespace
}  // namespace sluice::controllers
