#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "dataplane/runtime/model_source.h"

namespace sluice::dataplane::testing {

// Files of the source tree (test data, the committed fraud model).
inline std::string RepoPath(const std::string& relative) {
  return std::string(SLUICE_REPO_DIR) + "/" + relative;
}

inline std::string TestData(const std::string& name) {
  return RepoPath("tests/dataplane/runtime/testdata/" + name);
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline ModelSource Source(std::string uri) {
  ModelSource s;
  s.uri = std::move(uri);
  return s;
}

}  // namespace sluice::dataplane::testing
