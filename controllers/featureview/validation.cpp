#include "controllers/featureview/validation.h"

#include <array>
#include <cctype>
#include <charconv>
#include <vector>

#include "lib/api/feature_view.h"

namespace sluice::controllers {

namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

bool ParseInt(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

struct CronField {
  const char* name;
  int min;
  int max;
  std::array<const char*, 12> names;  // names[i] stands for min + i (months, weekdays)
  bool question_mark;                 // '?' allowed (day-of-month, day-of-week)
};

constexpr CronField kFields[] = {
    {"minute", 0, 59, {}, false},
    {"hour", 0, 23, {}, false},
    {"day-of-month", 1, 31, {}, true},
    {"month",
     1,
     12,
     {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
     false},
    // 7 is Sunday too, as in most cron dialects.
    {"day-of-week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, true},
};

bool ParseValue(const CronField& f, std::string_view s, int& out) {
  if (ParseInt(s, out)) return true;
  if (s.size() != 3) return false;
  for (size_t i = 0; i < f.names.size() && f.names[i] != nullptr; ++i) {
    std::string_view name = f.names[i];
    bool eq = true;
    for (size_t k = 0; k < 3; ++k) {
      if (std::toupper(static_cast<unsigned char>(s[k])) != name[k]) eq = false;
    }
    if (eq) {
      out = f.min + static_cast<int>(i);
      return true;
    }
  }
  return false;
}

Status CronError(const CronField& f, std::string_view value, const std::string& why) {
  return InvalidArgument("spec.materialization.schedule: " + std::string(f.name) + " field \"" +
                         std::string(value) + "\" " + why);
}

Status ValidateCronField(const CronField& f, std::string_view field) {
  for (std::string_view item : Split(field, ',')) {
    if (item.empty()) return CronError(f, field, "has an empty list item");
    std::string_view range = item;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      int step = 0;
      if (!ParseInt(item.substr(slash + 1), step) || step < 1 || step > f.max) {
        return CronError(f, item,
                         "has a step that is not a number from 1 to " + std::to_string(f.max));
      }
      range = item.substr(0, slash);
    }
    if (range == "*") continue;
    if (range == "?") {
      if (!f.question_mark) return CronError(f, item, "may not be '?'");
      continue;
    }
    int lo = 0, hi = 0;
    if (auto dash = range.find('-'); dash != std::string_view::npos && dash > 0) {
      if (!ParseValue(f, range.substr(0, dash), lo) || !ParseValue(f, range.substr(dash + 1), hi)) {
        return CronError(f, item, "is not a range of values");
      }
      if (lo > hi) return CronError(f, item, "is a range whose start is after its end");
    } else {
      if (!ParseValue(f, range, lo)) return CronError(f, item, "is not a value");
      hi = lo;
    }
    if (lo < f.min || hi > f.max) {
      return CronError(f, item,
                       "is out of range " + std::to_string(f.min) + "-" + std::to_string(f.max));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateCronSchedule(std::string_view schedule) {
  if (!schedule.empty() && schedule.front() == '@') {
    for (std::string_view macro :
         {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}) {
      if (schedule == macro) return Status::Ok();
    }
    return InvalidArgument("spec.materialization.schedule: unknown macro \"" +
                           std::string(schedule) + "\"");
  }
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < schedule.size()) {
    while (i < schedule.size() && schedule[i] == ' ') ++i;
    size_t start = i;
    while (i < schedule.size() && schedule[i] != ' ') ++i;
    if (i > start) fields.push_back(schedule.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return InvalidArgument("spec.materialization.schedule: \"" + std::string(schedule) + "\" has " +
                           std::to_string(fields.size()) + " fields; a cron schedule has five");
  }
  for (size_t k = 0; k < 5; ++k) RETURN_IF_ERROR(ValidateCronField(kFields[k], fields[k]));
  return Status::Ok();
}

Status ValidateRedisConnection(std::string_view connection) {
  // One parser for the operator, the server and the materializer: what passes here is what the
  // pods can connect with.
  return api::RedisConnection::Parse(connection).status();
}

}  // namespace sluice::controllers
