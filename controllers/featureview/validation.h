#pragma once

// Checks of a FeatureView that the API server's schema and CEL rules cannot make: the cron
// schedule's field ranges, and the Redis connection string held in a Secret. Pure functions.

#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace sluice::controllers {

// A five-field cron expression (minute hour day-of-month month day-of-week; lists, ranges,
// steps, '*', '?' in the day fields, month and weekday names) or one of @yearly, @annually,
// @monthly, @weekly, @daily, @midnight, @hourly. InvalidArgument names the field and the value.
Status ValidateCronSchedule(std::string_view schedule);

// A Feast Redis connection string: host:port[,password=...][,ssl=false][,db=N][,username=...].
// IPv6 hosts in brackets. ssl=true is refused (api::RedisConnection::Parse, which this delegates
// to: the pods have no TLS client yet). InvalidArgument says what is wrong without echoing a
// password.
Status ValidateRedisConnection(std::string_view connection);

}  // namespace sluice::controllers
