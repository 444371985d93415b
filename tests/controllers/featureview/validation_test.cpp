// Checks of a FeatureView beyond its CRD's CEL rules: cron field ranges and Redis connection
// strings.

#include "controllers/featureview/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::controllers {
namespace {

using ::testing::HasSubstr;

TEST(CronScheduleTest, AcceptsWhatCronAccepts) {
  for (const char* s : {"*/15 * * * *", "0 3 * * MON-FRI", "5,35 0-23/2 1 jan,jul ?",
                        "@hourly", "@daily", "@midnight", "0 0 1 1 0", "59 23 31 12 7",
                        "*  *  *  *  *"}) {
    EXPECT_TRUE(ValidateCronSchedule(s).ok()) << s << ": " << ValidateCronSchedule(s);
  }
}

TEST(CronScheduleTest, RefusesOutOfRangeFieldsNamingThem) {
  struct Case {
    const char* schedule;
    const char* names;
  };
  for (const Case& c : {Case{"60 * * * *", "minute"}, Case{"* 24 * * *", "hour"},
                        Case{"* * 0 * *", "day-of-month"}, Case{"* * 32 * *", "day-of-month"},
                        Case{"* * * 13 *", "month"}, Case{"* * * * 8", "day-of-week"},
                        Case{"*/0 * * * *", "step"}, Case{"5-1 * * * *", "start is after"},
                        Case{"? * * * *", "may not be '?'"}, Case{"* * * FOO *", "month"},
                        Case{"1,,2 * * * *", "empty"}}) {
    Status s = ValidateCronSchedule(c.schedule);
    ASSERT_FALSE(s.ok()) << c.schedule;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("spec.materialization.schedule")) << c.schedule;
    EXPECT_THAT(s.message(), HasSubstr(c.names)) << c.schedule << ": " << s.message();
  }
  EXPECT_THAT(ValidateCronSchedule("* * * *").message(), HasSubstr("five"));
  EXPECT_THAT(ValidateCronSchedule("@fortnightly").message(), HasSubstr("unknown macro"));
}

TEST(RedisConnectionTest, AcceptsFeastConnectionStrings) {
  for (const char* s : {"redis:6379", "redis.feast.svc.cluster.local:6379,password=s3cr3t,ssl=false",
                        "10.0.0.7:6380,db=3", "[::1]:6379", "redis:6379,username=u,password=p"}) {
    EXPECT_TRUE(ValidateRedisConnection(s).ok()) << s << ": " << ValidateRedisConnection(s);
  }
}

TEST(RedisConnectionTest, RefusesMalformedOnesWithoutEchoingThePassword) {
  EXPECT_THAT(ValidateRedisConnection("redis").message(), HasSubstr("host:port"));
  EXPECT_THAT(ValidateRedisConnection("redis:0").message(), HasSubstr("port"));
  EXPECT_THAT(ValidateRedisConnection("redis:99999").message(), HasSubstr("port"));
  EXPECT_THAT(ValidateRedisConnection("re dis:6379").message(), HasSubstr("host"));
  EXPECT_THAT(ValidateRedisConnection("redis:6379,ssl=maybe").message(), HasSubstr("ssl"));
  // The pods' Redis client speaks plain TCP, so a TLS connection string is refused up front.
  EXPECT_THAT(ValidateRedisConnection("redis:6379,password=p,ssl=true").message(),
              HasSubstr("ssl=true is not supported yet"));
  EXPECT_THAT(ValidateRedisConnection("redis:6379,db=16").message(), HasSubstr("db"));
  EXPECT_THAT(ValidateRedisConnection("redis:6379,colour=blue").message(),
              HasSubstr("unknown option"));
  const Status s = ValidateRedisConnection("redis:6379,hunter2");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("key=value"));
  const Status bad_port = ValidateRedisConnection("redis:x,password=hunter2");
  EXPECT_FALSE(bad_port.ok());
  EXPECT_THAT(bad_port.message(), ::testing::Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace sluice::controllers
