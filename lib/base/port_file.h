#pragma once

// --port-file of sluice-server and sluice-router: a server started on port 0 tells whoever
// started it (tests, scripts) which port it bound.

#include <cstdint>
#include <string>

#include "lib/base/status.h"

namespace sluice {

// Writes "<port>\n" to `path` through a rename, so a reader never sees a half-written number.
Status WritePortFile(const std::string& path, uint16_t port);

}  // namespace sluice
