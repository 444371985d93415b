#include "lib/api/duration.h"

#include "lib/base/duration.h"

namespace sluice::controllers {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  ASSIGN_OR_RETURN(std::chrono::nanoseconds d, ParseGoDuration(text));
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  return FormatGoDuration(d);
}

}  // namespace sluice::controllers
