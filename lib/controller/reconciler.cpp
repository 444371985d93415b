#include "lib/controller/reconciler.h"

#include <algorithm>

namespace sluice::controllers {

Result<ObjectKey> ObjectKey::Parse(std::string_view key) {
  ObjectKey out;
  auto slash = key.find('/');
  if (slash == std::string_view::npos) {
    out.name = std::string(key);
  } else {
    if (key.find('/', slash + 1) != std::string_view::npos) {
      return InvalidArgument("object key \"" + std::string(key) + "\" has more than one '/'");
    }
    out.ns = std::string(key.substr(0, slash));
    out.name = std::string(key.substr(slash + 1));
  }
  if (out.name.empty()) {
    return InvalidArgument("object key \"" + std::string(key) + "\" has no name");
  }
  return out;
}

Action Action::Sooner(const Action& a, const Action& b) {
  if (!a.requeue()) return b;
  if (!b.requeue()) return a;
  return a.after_ <= b.after_ ? a : b;
}

Status TerminalError(Status status) {
  if (status.ok()) return status;
  status.WithReason(std::string(kTerminalReason));
  return status;
}

bool IsTerminal(const Status& status) {
  return !status.ok() && status.reason() == kTerminalReason;
}

}  // namespace sluice::controllers
