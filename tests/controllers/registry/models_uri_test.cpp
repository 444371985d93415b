// ParseModelsUri: every form the header documents, and malformed URIs naming the bad part.
#include <gtest/gtest.h>

#include "controllers/registry/model_registry.h"

namespace sluice::controllers {
namespace {

struct Valid {
  std::string uri;
  std::string name, version, alias, stage;
  bool moves;
};

TEST(ParseModelsUriTest, ValidForms) {
  const Valid cases[] = {
      {"models:/fraud/3", "fraud", "3", "", "", false},
      {"models:/fraud/12", "fraud", "12", "", "", false},
      {"models:/fraud@champion", "fraud", "", "champion", "", true},
      {"models:/fraud-v2_x.y@blue-green", "fraud-v2_x.y", "", "blue-green", "", true},
      {"models:/fraud/Production", "fraud", "", "", "Production", true},
      {"models:/fraud/production", "fraud", "", "", "Production", true},
      {"models:/fraud/STAGING", "fraud", "", "", "Staging", true},
      {"models:/fraud/Archived", "fraud", "", "", "Archived", true},
      {"models:/fraud/None", "fraud", "", "", "None", true},
      {"models:/fraud/latest", "fraud", "", "", "latest", true},
      {"MODELS:/fraud/1", "fraud", "1", "", "", false},
      {"models:/fraud detector/1", "fraud detector", "1", "", "", false},
  };
  for (const Valid& c : cases) {
    SCOPED_TRACE(c.uri);
    auto ref = ParseModelsUri(c.uri);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(ref->name, c.name);
    EXPECT_EQ(ref->version, c.version);
    EXPECT_EQ(ref->alias, c.alias);
    EXPECT_EQ(ref->stage, c.stage);
    EXPECT_EQ(ref->Moves(), c.moves);
  }
}

struct Malformed {
  std::string uri;
  std::string mentions;  // the message names the bad part
};

TEST(ParseModelsUriTest, MalformedIsInvalidArgumentNamingThePart) {
  const Malformed cases[] = {
      {"", "scheme"},
      {"models:/", "name is missing"},
      {"models:/fraud", "must follow the model name"},
      {"models:/@champion", "name is empty"},
      {"models:/fraud@", "alias after '@' is empty"},
      {"models:/fraud/", "version or stage after the name is empty"},
      {"models:/fraud/1/", "too many path segments"},
      {"models:/a/b/c", "too many path segments"},
      {"models:/fraud/1@x", "alias follows the model name directly"},
      {"models:/fraud@a@b", "contains '/' or '@'"},
      {"models:/fraud@a/b", "contains '/' or '@'"},
      {"models://profile/fraud/1", "registry authority"},
      {"model:/fraud/1", "scheme must be models:/"},
      {"runs:/abc/model", "scheme must be models:/"},
      {"s3://bucket/fraud", "scheme must be models:/"},
      {"fraud/1", "scheme must be models:/"},
      {"models:/fraud/0", "version 0"},
      {"models:/fraud/prod", "\"prod\" is neither a version number nor a stage"},
      {"models:/fraud/-1", "\"-1\" is neither"},
      {"models:/m-3f58f4f1854d4fbc9a02906365138330", "must follow the model name"},
  };
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.uri);
    auto ref = ParseModelsUri(c.uri);
    ASSERT_FALSE(ref.ok());
    EXPECT_EQ(ref.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ref.status().message().find(c.mentions), std::string::npos) << ref.status().message();
    EXPECT_NE(ref.status().message().find("\"" + c.uri + "\""), std::string::npos)
        << "the message quotes the URI: " << ref.status().message();
  }
}

}  // namespace
}  // namespace sluice::controllers
