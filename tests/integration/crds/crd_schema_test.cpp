// Static checks of the CRD files and samples that the API server does not make: every field is
// documented (kubectl explain is the API's reference), every list and string is bounded (so CEL
// cost stays under the server's budget as rules are added), every rule has a message, printer
// columns and scale paths point at fields that exist, and samples use only declared fields (the
// server would prune a misspelt field instead of refusing it when validation is not strict).

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kCrdDir = fs::path(SLUICE_SOURCE_DIR) / "crds";

YAML::Node LoadCrd(const std::string& file) {
  return YAML::LoadFile((kCrdDir / file).string());
}

YAML::Node SchemaOf(const YAML::Node& crd) {
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
}

// Calls visit(path, node) on every schema node reachable through properties, items and
// additionalProperties, the root included.
template <typename Visit>
void Walk(const YAML::Node& node, const std::string& path, Visit&& visit) {
  visit(path, node);
  if (node["properties"]) {
    for (const auto& kv : node["properties"]) {
      Walk(kv.second, path + "." + kv.first.as<std::string>(), visit);
    }
  }
  if (node["items"]) Walk(node["items"], path + "[]", visit);
  if (node["additionalProperties"] && node["additionalProperties"].IsMap()) {
    Walk(node["additionalProperties"], path + "{}", visit);
  }
}

// Resolves a printer-column or scale path such as .status.conditions[?(@.type=="Ready")].status
// against the schema; nullopt when a segment is not declared.
std::optional<YAML::Node> Resolve(const YAML::Node& schema, const std::string& path) {
  // [...] selectors index into an array's items.
  std::vector<std::string> segments;
  std::string current;
  int depth = 0;
  for (char c : path) {
    if (c == '[') {
      if (depth++ == 0) {
        if (!current.empty()) segments.push_back(current);
        current.clear();
        segments.push_back("[]");
      }
    } else if (c == ']') {
      --depth;
    } else if (depth == 0 && c == '.') {
      if (!current.empty()) segments.push_back(current);
      current.clear();
    } else if (depth == 0) {
      current += c;
    }
  }
  if (!current.empty()) segments.push_back(current);

  YAML::Node node = YAML::Clone(schema);
  // ObjectMeta is the server's, not declared in the CRD.
  if (!segments.empty() && segments[0] == "metadata")
    return YAML::Clone(schema["properties"]["metadata"]);
  for (const std::string& segment : segments) {
    const YAML::Node& view = node;  // const access never inserts missing keys
    if (segment == "[]") {
      if (!view["items"]) return std::nullopt;
      node = YAML::Clone(view["items"]);
    } else {
      if (!view["properties"] || !view["properties"][segment]) return std::nullopt;
      node = YAML::Clone(view["properties"][segment]);
    }
  }
  return node;
}

// Every field a sample sets must be declared in the schema (maps and preserved fields aside).
void ExpectDeclared(const YAML::Node& value, const YAML::Node& schema, const std::string& path,
                    std::vector<std::string>* undeclared) {
  if (value.IsMap()) {
    if (schema["additionalProperties"] && schema["additionalProperties"].IsMap()) {
      for (const auto& kv : value) {
        ExpectDeclared(kv.second, schema["additionalProperties"],
                       path + "." + kv.first.as<std::string>(), undeclared);
      }
      return;
    }
    for (const auto& kv : value) {
      const std::string key = kv.first.as<std::string>();
      if (path.empty() && key == "metadata") continue;
      if (!schema["properties"] || !schema["properties"][key]) {
        undeclared->push_back(path + "." + key);
        continue;
      }
      ExpectDeclared(kv.second, schema["properties"][key], path + "." + key, undeclared);
    }
  } else if (value.IsSequence()) {
    for (size_t i = 0; i < value.size(); ++i) {
      ExpectDeclared(value[i], schema["items"], path + "[" + std::to_string(i) + "]", undeclared);
    }
  }
}

class CrdFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrdFileTest, IsOneServedStoredVersionWithStatusAndSluiceCategory) {
  YAML::Node crd = LoadCrd(GetParam());
  EXPECT_EQ(crd["apiVersion"].as<std::string>(), "apiextensions.k8s.io/v1");
  EXPECT_EQ(crd["kind"].as<std::string>(), "CustomResourceDefinition");
  EXPECT_EQ(crd["spec"]["group"].as<std::string>(), "sluice.dev");
  EXPECT_EQ(crd["spec"]["scope"].as<std::string>(), "Namespaced");
  EXPECT_EQ(crd["metadata"]["name"].as<std::string>(),
            crd["spec"]["names"]["plural"].as<std::string>() + ".sluice.dev");
  ASSERT_EQ(crd["spec"]["versions"].size(), 1u);
  const YAML::Node version = crd["spec"]["versions"][0];
  EXPECT_EQ(version["name"].as<std::string>(), "v1alpha1");
  EXPECT_TRUE(version["served"].as<bool>());
  EXPECT_TRUE(version["storage"].as<bool>());
  EXPECT_TRUE(version["subresources"]["status"].IsMap());
  auto categories = crd["spec"]["names"]["categories"].as<std::vector<std::string>>();
  EXPECT_NE(std::find(categories.begin(), categories.end(), "sluice"), categories.end());
}

TEST_P(CrdFileTest, EveryFieldHasADescription) {
  std::vector<std::string> missing;
  Walk(SchemaOf(LoadCrd(GetParam())), "", [&](const std::string& path, const YAML::Node& node) {
    // The server owns ObjectMeta's schema and refuses anything but its type.
    if (path == ".metadata") return;
    if (!node["description"] || node["description"].as<std::string>().size() < 8) {
      missing.push_back(path.empty() ? "<root>" : path);
    }
  });
  EXPECT_TRUE(missing.empty()) << "fields without a description: "
                               << ::testing::PrintToString(missing);
}

// kubectl explain shows descriptions but not defaults, so a scalar default is written into the
// description too.
TEST_P(CrdFileTest, ScalarDefaultsAreDocumented) {
  int defaults = 0;
  std::vector<std::string> undocumented;
  Walk(SchemaOf(LoadCrd(GetParam())), "", [&](const std::string& path, const YAML::Node& node) {
    if (!node["default"] || !node["default"].IsScalar()) return;
    ++defaults;
    const std::string expected = "Defaults to " + node["default"].as<std::string>() + ".";
    if (node["description"].as<std::string>().find(expected) == std::string::npos) {
      undocumented.push_back(path + " (" + expected + ")");
    }
  });
  EXPECT_GE(defaults, 4);
  EXPECT_TRUE(undocumented.empty()) << ::testing::PrintToString(undocumented);
}

TEST_P(CrdFileTest, EveryListStringAndMapIsBounded) {
  std::vector<std::string> unbounded;
  Walk(SchemaOf(LoadCrd(GetParam())), "", [&](const std::string& path, const YAML::Node& node) {
    // apiVersion and kind are checked by the server before the schema applies.
    if (path == ".apiVersion" || path == ".kind") return;
    const std::string type = node["type"] ? node["type"].as<std::string>() : "";
    if (type == "array" && !node["maxItems"]) unbounded.push_back(path + " (maxItems)");
    if (type == "string" && !node["maxLength"] && !node["enum"] && !node["format"]) {
      unbounded.push_back(path + " (maxLength)");
    }
    if (type == "object" && node["additionalProperties"] && !node["maxProperties"]) {
      unbounded.push_back(path + " (maxProperties)");
    }
  });
  EXPECT_TRUE(unbounded.empty()) << ::testing::PrintToString(unbounded);
}

TEST_P(CrdFileTest, EveryRuleHasAMessageNamingAField) {
  int rules = 0;
  Walk(SchemaOf(LoadCrd(GetParam())), "", [&](const std::string& path, const YAML::Node& node) {
    if (!node["x-kubernetes-validations"]) return;
    for (const auto& rule : node["x-kubernetes-validations"]) {
      ++rules;
      ASSERT_TRUE(rule["message"]) << path << ": rule without message: " << rule["rule"];
      const std::string message = rule["message"].as<std::string>();
      EXPECT_TRUE(message.find("spec.") != std::string::npos ||
                  message.find("metadata.") != std::string::npos ||
                  message.find("thresholdRange") != std::string::npos ||
                  message.find("valueFrom") != std::string::npos ||
                  message.find("env entry") != std::string::npos)
          << path << ": message does not name the field: " << message;
    }
  });
  EXPECT_GE(rules, 10);
}

TEST_P(CrdFileTest, PrinterColumnsPointAtDeclaredFields) {
  YAML::Node crd = LoadCrd(GetParam());
  const YAML::Node schema = SchemaOf(crd);
  for (const auto& column : crd["spec"]["versions"][0]["additionalPrinterColumns"]) {
    const std::string path = column["jsonPath"].as<std::string>();
    EXPECT_TRUE(Resolve(schema, path).has_value()) << column["name"] << " -> " << path;
  }
}

INSTANTIATE_TEST_SUITE_P(Crds, CrdFileTest,
                         ::testing::Values("sluice.dev_modeldeployments.yaml",
                                           "sluice.dev_featureviews.yaml"));

TEST(ModelDeploymentCrd, NamesPrinterColumnsAndScaleSubresource) {
  YAML::Node crd = LoadCrd("sluice.dev_modeldeployments.yaml");
  EXPECT_EQ(crd["spec"]["names"]["kind"].as<std::string>(), "ModelDeployment");
  EXPECT_EQ(crd["spec"]["names"]["shortNames"].as<std::vector<std::string>>(),
            std::vector<std::string>{"md"});

  std::vector<std::string> shown;
  for (const auto& column : crd["spec"]["versions"][0]["additionalPrinterColumns"]) {
    if (!column["priority"] || column["priority"].as<int>() == 0) {
      shown.push_back(column["name"].as<std::string>());
    }
  }
  EXPECT_EQ(shown,
            (std::vector<std::string>{"Phase", "Stable", "Canary", "Weight", "Ready", "Age"}));

  const YAML::Node schema = SchemaOf(crd);
  const YAML::Node scale = crd["spec"]["versions"][0]["subresources"]["scale"];
  EXPECT_EQ(scale["specReplicasPath"].as<std::string>(), ".spec.replicas");
  EXPECT_EQ(scale["statusReplicasPath"].as<std::string>(), ".status.replicas");
  EXPECT_EQ(scale["labelSelectorPath"].as<std::string>(), ".status.selector");
  for (const auto& [path, type] :
       std::vector<std::pair<std::string, std::string>>{{".spec.replicas", "integer"},
                                                        {".status.replicas", "integer"},
                                                        {".status.selector", "string"}}) {
    std::optional<YAML::Node> field = Resolve(schema, path);
    ASSERT_TRUE(field.has_value()) << path;
    EXPECT_EQ((*field)["type"].as<std::string>(), type) << path;
  }
}

TEST(ModelDeploymentCrd, SpecDescriptionDocumentsTheControlAnnotations) {
  std::optional<YAML::Node> spec =
      Resolve(SchemaOf(LoadCrd("sluice.dev_modeldeployments.yaml")), ".spec");
  ASSERT_TRUE(spec.has_value());
  const std::string description = (*spec)["description"].as<std::string>();
  for (const char* annotation :
       {"sluice.dev/promote", "sluice.dev/abort", "sluice.dev/pause", "sluice.dev/retry"}) {
    EXPECT_NE(description.find(annotation), std::string::npos) << annotation;
  }
}

TEST(ModelDeploymentCrd, ConditionsAreAMapKeyedByType) {
  for (const char* file : {"sluice.dev_modeldeployments.yaml", "sluice.dev_featureviews.yaml"}) {
    std::optional<YAML::Node> found = Resolve(SchemaOf(LoadCrd(file)), ".status.conditions");
    ASSERT_TRUE(found.has_value()) << file;
    const YAML::Node& conditions = *found;
    EXPECT_EQ(conditions["x-kubernetes-list-type"].as<std::string>(), "map") << file;
    EXPECT_EQ(conditions["x-kubernetes-list-map-keys"].as<std::vector<std::string>>(),
              std::vector<std::string>{"type"})
        << file;
    EXPECT_EQ(
        conditions["items"]["required"].as<std::vector<std::string>>(),
        (std::vector<std::string>{"type", "status", "lastTransitionTime", "reason", "message"}))
        << file;
  }
}

TEST(Samples, UseOnlyDeclaredFieldsOfTheirKind) {
  const YAML::Node md_schema = SchemaOf(LoadCrd("sluice.dev_modeldeployments.yaml"));
  const YAML::Node fv_schema = SchemaOf(LoadCrd("sluice.dev_featureviews.yaml"));
  std::set<std::string> kinds;
  int documents = 0;
  for (const auto& entry : fs::directory_iterator(kCrdDir / "samples")) {
    if (entry.path().extension() != ".yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
      ++documents;
      const std::string kind = doc["kind"].as<std::string>();
      kinds.insert(kind);
      EXPECT_EQ(doc["apiVersion"].as<std::string>(), "sluice.dev/v1alpha1") << entry.path();
      ASSERT_TRUE(kind == "ModelDeployment" || kind == "FeatureView") << entry.path();
      std::vector<std::string> undeclared;
      ExpectDeclared(doc, kind == "ModelDeployment" ? md_schema : fv_schema, "", &undeclared);
      EXPECT_TRUE(undeclared.empty())
          << entry.path() << ": " << ::testing::PrintToString(undeclared);
    }
  }
  EXPECT_GE(documents, 5);
  EXPECT_EQ(kinds, (std::set<std::string>{"ModelDeployment", "FeatureView"}));
}

TEST(Samples, FraudSampleServesTheFraudModel) {
  const YAML::Node doc =
      YAML::LoadFile((kCrdDir / "samples" / "fraud-modeldeployment.yaml").string());
  EXPECT_EQ(doc["spec"]["model"]["uri"].as<std::string>(), "http://models.sluice-models.svc.cluster.local/fraud/1/fraud.json");
  EXPECT_EQ(doc["spec"]["rollout"]["strategy"].as<std::string>(), "Canary");
}

}  // namespace
