// sluice-bench-fetch URI DEST [--s3-endpoint=URL] [--s3-region=R] [--s3-addressing-style=S]
//                   [--sha256=sha256:HEX]
// One FetchToFile (the code sluice-server --model-dir runs), timed; prints one JSON line:
// {"bytes":..,"seconds":..,"mb_per_s":..,"attempts":..,"sha256":".."}. Credentials come from the
// environment, as in the server.

#include <chrono>
#include <cstdio>
#include <string>

#include "dataplane/runtime/model_source.h"

int main(int argc, char** argv) {
  using namespace sluice::dataplane;
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: sluice-bench-fetch URI DEST [--s3-endpoint=URL] [--s3-region=R] "
                 "[--s3-addressing-style=auto|path|virtual] [--sha256=sha256:HEX]\n");
    return 2;
  }
  FetchOptions o;
  o.max_bytes = size_t{16} << 30;
  o.timeout = std::chrono::hours(1);
  std::string sha;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& flag) { return a.substr(flag.size()); };
    if (a.rfind("--s3-endpoint=", 0) == 0)
      o.s3.endpoint = value("--s3-endpoint=");
    else if (a.rfind("--s3-region=", 0) == 0)
      o.s3.region = value("--s3-region=");
    else if (a.rfind("--s3-addressing-style=", 0) == 0)
      o.s3.addressing_style = value("--s3-addressing-style=");
    else if (a.rfind("--sha256=", 0) == 0)
      sha = value("--sha256=");
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  auto r = FetchToFile(argv[1], argv[2], o, sha);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r.ok()) {
    std::fprintf(stderr, "sluice-bench-fetch: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"bytes\":%llu,\"seconds\":%.4f,\"mb_per_s\":%.1f,\"attempts\":%d,\"sha256\":\"%s\"}\n",
      static_cast<unsigned long long>(r->bytes), s, r->bytes / 1e6 / s, r->attempts,
      r->sha256.c_str());
  return 0;
}
