#pragma once

// What a binary says about its build, for `--version`. Provided by the sluice_version library
// (lib/CMakeLists.txt), which only the binaries' mains link: its source is generated in the build
// tree from lib/base/version.cpp.in on every build and rewritten only when the revision changes,
// so a new commit recompiles that one file and relinks the binaries, nothing else.

#include <string>
#include <string_view>

namespace sluice {

// CMake's project(sluice VERSION x.y.z), e.g. "0.1.0".
std::string_view ProjectVersion();

// The git commit the binary was built from (40 hex digits), with "-dirty" appended when tracked
// files differed from it; "unknown" when the sources were not a git checkout (a Docker build
// context) and no -DSLUICE_REVISION was given.
std::string_view BuildRevision();

// The one line `--version` prints: "sluice-server 0.1.0 (revision 21bd498…)".
std::string VersionLine(std::string_view binary);

}  // namespace sluice
