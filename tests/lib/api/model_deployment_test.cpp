#include "lib/api/model_deployment.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>

#include "tests/lib/api/yaml_json.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using testing::LoadYamlDocuments;

json LoadCrdSchema() { return testing::LoadCrdSchema(SLUICE_CRD_DIR "/sluice.dev_modeldeployments.yaml"); }

const std::string kCrdDir = SLUICE_CRD_DIR;


// A value for every property the schema declares, so a round trip shows which ones the typed
// view would drop.
json Instance(const json& schema) {
  if (schema.value("x-kubernetes-int-or-string", false)) return 3;
  if (schema.contains("enum")) return schema["enum"][0];
  const std::string type = schema.value("type", "");
  if (type == "string") {
    return schema.value("format", "") == "date-time" ? json("2024-01-02T03:04:05Z") : json("x");
  }
  if (type == "integer") return 3;
  if (type == "number") return 0.5;
  if (type == "boolean") return true;
  if (type == "array") return json::array({Instance(schema.at("items"))});
  json out = json::object();
  if (schema.contains("properties")) {
    for (const auto& [name, sub] : schema["properties"].items()) out[name] = Instance(sub);
  }
  if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
    out["key"] = Instance(schema["additionalProperties"]);
  }
  return out;
}

// Every key path of `value` must be declared by `schema`; otherwise the API server prunes it.
void ExpectDeclared(const json& schema, const json& value, const std::string& path,
                    std::vector<std::string>* undeclared) {
  if (schema.value("x-kubernetes-preserve-unknown-fields", false)) return;
  if (value.is_array() && schema.contains("items")) {
    for (const json& item : value) ExpectDeclared(schema["items"], item, path + "[]", undeclared);
    return;
  }
  if (!value.is_object()) return;
  for (const auto& [key, sub] : value.items()) {
    if (schema.contains("properties") && schema["properties"].contains(key)) {
      ExpectDeclared(schema["properties"][key], sub, path + "." + key, undeclared);
    } else if (schema.contains("additionalProperties") &&
               schema["additionalProperties"].is_object()) {
      ExpectDeclared(schema["additionalProperties"], sub, path + "." + key, undeclared);
    } else {
      undeclared->push_back(path + "." + key);
    }
  }
}

TEST(ModelDeploymentTest, SamplesRoundTripUnchanged) {
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kCrdDir + "/samples")) {
    if (entry.path().extension() != ".yaml") continue;
    for (const json& doc : LoadYamlDocuments(entry.path().string())) {
      if (doc.value("kind", "") != "ModelDeployment") continue;
      ++found;
      Result<ModelDeployment> md = ParseModelDeployment(doc);
      ASSERT_TRUE(md.ok()) << entry.path() << ": " << md.status();
      EXPECT_EQ(ToJson(*md), doc) << entry.path() << "\n--- parsed and serialized:\n"
                                  << ToJson(*md).dump(2) << "\n--- sample:\n"
                                  << doc.dump(2);
    }
  }
  // fraud, autoscaled and rolling at the least.
  EXPECT_GE(found, 3);
}

TEST(ModelDeploymentTest, EverySpecFieldOfTheCrdSurvivesARoundTrip) {
  const json schema = LoadCrdSchema();
  json spec = Instance(schema.at("properties").at("spec"));
  ASSERT_TRUE(spec.contains("rollout"));
  Result<ModelDeploymentSpec> parsed = ParseModelDeploymentSpec(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  json back = *parsed;
  EXPECT_EQ(back, spec) << "typed view:\n"
                        << back.dump(2) << "\nschema instance:\n"
                        << spec.dump(2);
}

TEST(ModelDeploymentTest, EveryStatusFieldOfTheCrdSurvivesARoundTrip) {
  const json schema = LoadCrdSchema();
  json status = Instance(schema.at("properties").at("status"));
  ASSERT_TRUE(status.contains("conditions"));
  Result<ModelDeploymentStatus> parsed = ParseModelDeploymentStatus(status);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  json back = *parsed;
  EXPECT_EQ(back, status) << "typed view:\n"
                          << back.dump(2) << "\nschema instance:\n"
                          << status.dump(2);
}

// The status the operator writes must be what the API server keeps: a field the schema does not
// declare is pruned on write, and the engine would lose the state it carries in it.
TEST(ModelDeploymentTest, EveryStatusFieldTheOperatorWritesIsDeclared) {
  const json schema = LoadCrdSchema();
  ModelDeploymentStatus s;
  const WallTime t = WallTime(std::chrono::seconds(1704067200));
  s.observed_generation = 4;
  s.phase = Phase::kProgressing;
  s.stable_revision = "fraud-bbbbbbbbbb";
  s.canary_revision = "fraud-cccccccccc";
  s.canary_weight = 10;
  s.revisions = {{"fraud-bbbbbbbbbb", "1", "file:///m/1.json", 2, 2, std::nullopt},
                 {"fraud-cccccccccc", "2", "file:///m/2.json", 1, 1, std::nullopt},
                 {"fraud-dddddddddd", "0", "file:///m/0.json", 2, 2, t}};
  s.traffic = {{"fraud-bbbbbbbbbb", 90, std::nullopt}, {"fraud-cccccccccc", 10, 5}};
  s.current_step = 0;
  s.current_step_start_time = t;
  s.last_progress_time = t;
  s.last_analysis =
      AnalysisStatus{t,   "Pass", std::map<std::string, double>{{"error-rate", 0.001}},
                     120, 0,      "error-rate 0.001 within [-, 0.01]"};
  s.replicas = 5;
  s.ready_replicas = 5;
  s.selector = "app.kubernetes.io/instance=fraud";
  s.conditions = {{"Ready", "True", 4, t, "StableAvailable", "2/2 pods Ready"}};
  s.history = {{"fraud-aaaaaaaaaa", "0", "Deployed", "RolloutComplete", "first revision", t},
               {"fraud-eeeeeeeeee", std::nullopt, "RolledBack", "AnalysisFailed",
                "error-rate 0.2 > max 0.01", t}};
  std::vector<std::string> undeclared;
  ExpectDeclared(schema.at("properties").at("status"), json(s), "status", &undeclared);
  EXPECT_TRUE(undeclared.empty()) << "not in the CRD's status schema: " << json(undeclared).dump();
}

TEST(ModelDeploymentTest, MalformedInputIsAnErrorNamingTheField) {
  json doc = {
      {"apiVersion", "sluice.dev/v1alpha1"},
      {"kind", "ModelDeployment"},
      {"metadata", {{"name", "fraud"}}},
      {"spec",
       {{"model", {{"uri", "file:///m.json"}}},
        {"replicas", 2},
        {"rollout", {{"canary", {{"steps", {{{"weight", 10}}, {{"weight", "fifty"}}}}}}}}}}};
  Result<ModelDeployment> md = ParseModelDeployment(doc);
  ASSERT_FALSE(md.ok());
  EXPECT_EQ(md.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(md.status().message().find("spec.rollout.canary.steps[1].weight"), std::string::npos)
      << md.status();

  json no_uri = {{"spec", {{"model", json::object()}}}};
  md = ParseModelDeployment(no_uri);
  ASSERT_FALSE(md.ok());
  EXPECT_NE(md.status().message().find("spec.model.uri: is required"), std::string::npos)
      << md.status();

  Result<ModelDeploymentStatus> st =
      ParseModelDeploymentStatus({{"phase", "Exploded"}, {"replicas", 1}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("phase"), std::string::npos) << st.status();

  st = ParseModelDeploymentStatus({{"currentStepStartTime", "yesterday"}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("currentStepStartTime"), std::string::npos) << st.status();

  EXPECT_FALSE(ParseModelDeploymentSpec(json::array()).ok());
  EXPECT_FALSE(ParseModelDeploymentSpec(
                   {{"model", {{"uri", "x"}}}, {"rollout", {{"rolling", {{"maxSurge", "25"}}}}}})
                   .ok());
}

TEST(ModelDeploymentTest, StatusRoundTripKeepsTimesAndConditions) {
  json status = {{"phase", "Progressing"},
                 {"stableRevision", "fraud-aaaa"},
                 {"canaryRevision", "fraud-bbbb"},
                 {"canaryWeight", 10},
                 {"currentStep", 0},
                 {"currentStepStartTime", "2024-01-01T00:00:05Z"},
                 {"traffic",
                  {{{"revision", "fraud-aaaa"}, {"weight", 90}},
                   {{"revision", "fraud-bbbb"}, {"weight", 10}, {"mirrorPercent", 5}}}},
                 {"lastAnalysis",
                  {{"time", "2024-01-01T00:00:10Z"},
                   {"verdict", "Fail"},
                   {"values", {{"error-rate", 0.25}}},
                   {"requests", 40},
                   {"consecutiveFailures", 1},
                   {"message", "error-rate 0.25 > max 0.01"}}},
                 {"conditions",
                  {{{"type", "Ready"},
                    {"status", "True"},
                    {"observedGeneration", 2},
                    {"lastTransitionTime", "2024-01-01T00:00:00Z"},
                    {"reason", "StableAvailable"},
                    {"message", "2/2"}}}}};
  Result<ModelDeploymentStatus> st = ParseModelDeploymentStatus(status);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->phase, Phase::kProgressing);
  EXPECT_EQ(st->current_step_start_time, WallTime(std::chrono::seconds(1704067205)));
  ASSERT_NE(st->FindCondition("Ready"), nullptr);
  EXPECT_EQ(st->FindCondition("Ready")->last_transition_time,
            WallTime(std::chrono::seconds(1704067200)));
  EXPECT_EQ(st->FindCondition("Progressing"), nullptr);
  EXPECT_EQ(st->last_analysis->values->at("error-rate"), 0.25);
  EXPECT_EQ(json(*st), status);
}

TEST(ModelDeploymentTest, MetadataAccessors) {
  json doc = {{"metadata",
               {{"name", "fraud"},
                {"namespace", "ml"},
                {"generation", 7},
                {"annotations", {{"sluice.dev/pause", "true"}}}}},
              {"spec", {{"model", {{"uri", "file:///m.json"}}}}}};
  Result<ModelDeployment> md = ParseModelDeployment(doc);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->Name(), "fraud");
  EXPECT_EQ(md->Namespace(), "ml");
  EXPECT_EQ(md->Generation(), 7);
  EXPECT_EQ(md->Annotation("sluice.dev/pause"), "true");
  EXPECT_EQ(md->Annotation("sluice.dev/abort"), std::nullopt);
  EXPECT_FALSE(md->status.has_value());
}

TEST(IntOrPercentTest, ParsesAndResolves) {
  IntOrPercent a = json("25%").get<IntOrPercent>();
  EXPECT_TRUE(a.percent);
  EXPECT_EQ(a.value, 25);
  EXPECT_EQ(a.Resolve(10, /*round_up=*/true), 3);
  EXPECT_EQ(a.Resolve(10, /*round_up=*/false), 2);
  EXPECT_EQ(a.Resolve(4, true), 1);
  EXPECT_EQ(a.Resolve(4, false), 1);
  IntOrPercent b = json(2).get<IntOrPercent>();
  EXPECT_FALSE(b.percent);
  EXPECT_EQ(b.Resolve(100, true), 2);
  EXPECT_EQ(json(a), "25%");
  EXPECT_EQ(json(b), 2);
  EXPECT_THROW(json("x%").get<IntOrPercent>(), std::invalid_argument);
  EXPECT_THROW(json(1.5).get<IntOrPercent>(), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::controllers
