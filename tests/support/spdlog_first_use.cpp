// Linked into every test binary (tests/CMakeLists.txt, sluice_test).
//
// spdlog's registry is a function-local static inside libspdlog, which is not built with
// ThreadSanitizer: when two threads of a test (two informers, say) log for the first time at
// once, the second one takes the registry through the static's uninstrumented fast path and
// ThreadSanitizer reports the registry's construction as a race with its use. Every binary of the
// project configures logging in main before it starts a thread; a test binary does it here,
// before main.
#include <spdlog/spdlog.h>

namespace {

const bool kRegistryBuilt = [] {
  spdlog::default_logger_raw();
  return true;
}();

}  // namespace
