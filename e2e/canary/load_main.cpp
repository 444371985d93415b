// sluice-load: the canary scenarios' LoadDriver (load_driver.h) as a command, so a shell script
// can put steady open-loop load on a model and watch what answers it.
//
//   sluice-load --url=URL --body-file=FILE --status-file=FILE [--rate=100] [--workers=16]
//               [--timeout-ms=5000] [--duration-s=0]
//
// Every 250 ms the status file is replaced (written beside it, then renamed, so a reader never
// sees half a file) with the counts so far and over the last 2 s:
//
//   {"elapsed_s": 12.3, "total": 1230, "ok": 1228, "failed": 2,
//    "by_version": {"1": 1100, "2": 128}, "first_failure_s": 7.012, "last_failure_s": 7.25,
//    "last_ok_s_by_version": {"1": 12.29, "2": 12.3},
//    "recent": {"window_s": 2, "total": 200, "failed": 0, "by_version": {"1": 180, "2": 20}},
//    "done": false}
//
// Times are seconds since the load started, of the answer. "by_version" counts successful
// answers by the V2 response's model_version ("" when an answer has none); a failure is a non-2xx
// status or no answer at all. The load runs for --duration-s, or until SIGTERM or SIGINT when it
// is 0; then requests in flight are answered, the final status is written once more (with
// "done": true), the per-second timeline goes to stdout and the exit code is 0. Bad flags, an
// unreadable body file or a status file that cannot be written at the start exit 1.

#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/canary/load_driver.h"
#include "lib/base/flags.h"
#include "lib/base/logging.h"
#include "lib/base/signals.h"
#include "lib/base/status.h"
#include "lib/base/version.h"

namespace sluice::canary {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;

constexpr auto kStatusPeriod = 250ms;
constexpr auto kRecentWindow = 2s;

struct LoadFlags {
  bool help = false;
  bool version = false;
  std::string url;
  std::string body_file;
  std::string status_file;
  double rate = 100;
  int32_t workers = 16;
  int64_t timeout_ms = 5000;
  double duration_s = 0;
  std::string log_level = "info";
};

// A decimal number in [min, max] ("100", "0.5").
FlagSet::Codec<double> NumberCodec(double min, double max) {
  return {
      "NUMBER",
      [min, max](const std::string& v) -> Result<double> {
        double out = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size() || !std::isfinite(out)) {
          return InvalidArgument("\"" + v + "\" is not a number");
        }
        if (out < min || out > max) {
          return InvalidArgument(fmt::format("{} is outside [{}, {}]", v, min, max));
        }
        return out;
      },
      [](const double& v) { return fmt::format("{}", v); }};
}

// A string flag whose usage line says what it holds (--url=URL).
FlagSet::Codec<std::string> Text(std::string value_name) {
  FlagSet::Codec<std::string> codec = FlagSet::StringCodec();
  codec.value_name = std::move(value_name);
  return codec;
}

void Bind(FlagSet& f, LoadFlags& o) {
  f.Bool("help", &o.help, "print this help");
  f.Bool("version", &o.version, "print the version and revision, then exit");
  f.Add("url", &o.url, Text("URL"),
        "where to POST, e.g. http://127.0.0.1:8080/v2/models/fraud/infer");
  f.Add("body-file", &o.body_file, Text("FILE"),
        "the JSON request body, sent as it is with every request");
  f.Add("status-file", &o.status_file, Text("FILE"),
        "replaced every 250 ms with the status JSON (written beside it, then renamed)");
  f.Add("rate", &o.rate, NumberCodec(0.01, 1e6), "requests per second, open loop");
  f.Int("workers", &o.workers, 1, 4096, "concurrent connections (keep-alive)");
  f.Int("timeout-ms", &o.timeout_ms, 1, 3'600'000, "per request; no answer by then is a failure");
  f.Add("duration-s", &o.duration_s, NumberCodec(0, 1e7),
        "seconds of load; 0: until SIGTERM or SIGINT");
  f.Add("log-level", &o.log_level,
        FlagSet::OneOf("LEVEL", {"trace", "debug", "info", "warn", "error", "off"}),
        "of the log on stderr");
}

std::string Usage() {
  LoadFlags defaults;
  FlagSet flags;
  Bind(flags, defaults);
  return "sluice-load: steady open-loop HTTP load that records which model version answers.\n\n"
         "Flags (--flag=value or --flag value; booleans also --flag and --no-flag):\n" +
         flags.Usage();
}

Result<LoadFlags> ParseLoadFlags(const std::vector<std::string>& args) {
  LoadFlags o;
  FlagSet flags;
  Bind(flags, o);
  RETURN_IF_ERROR(flags.Parse(args));
  if (o.help || o.version) return o;
  if (o.url.empty()) return InvalidArgument("--url is required");
  if (o.body_file.empty()) return InvalidArgument("--body-file is required");
  if (o.status_file.empty()) return InvalidArgument("--status-file is required");
  return o;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read --body-file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return InvalidArgument("cannot read --body-file " + path);
  return text;
}

// Replaces `path` through a rename, so a reader sees the old file or the new one, never a mix.
Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out.good()) return Unavailable("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Unavailable("cannot rename " + tmp + " to " + path);
  }
  return Status::Ok();
}

// Seconds from the start of the load, to the millisecond.
double SecondsSince(SteadyTime start, SteadyTime t) {
  return std::round(std::chrono::duration<double>(t - start).count() * 1000) / 1000;
}

json VersionCounts(const LoadSummary& s) {
  json out = json::object();
  for (const auto& [version, n] : s.by_version) out[version] = n;
  return out;
}

json StatusJson(const LoadDriver& driver, SteadyTime now, bool done) {
  const SteadyTime start = driver.started();
  // The recent window first: records are only ever added, so it stays a subset of the totals.
  const LoadSummary recent = driver.Summarize(now - kRecentWindow, SteadyTime::max());
  const LoadSummary all = driver.Summarize(SteadyTime::min(), SteadyTime::max());
  auto at = [&](const std::optional<SteadyTime>& t) {
    return t ? json(SecondsSince(start, *t)) : json(nullptr);
  };
  json last_ok = json::object();
  for (const auto& [version, t] : all.last_ok_by_version) last_ok[version] = SecondsSince(start, t);
  return {{"elapsed_s", SecondsSince(start, now)},
          {"total", all.total},
          {"ok", all.total - all.failed},
          {"failed", all.failed},
          {"by_version", VersionCounts(all)},
          {"first_failure_s", at(all.first_failure)},
          {"last_failure_s", at(all.last_failure)},
          {"last_ok_s_by_version", last_ok},
          {"recent",
           {{"window_s", std::chrono::seconds(kRecentWindow).count()},
            {"total", recent.total},
            {"failed", recent.failed},
            {"by_version", VersionCounts(recent)}}},
          {"done", done}};
}

Status WriteStatus(const LoadFlags& flags, const LoadDriver& driver, bool done) {
  return WriteAtomically(flags.status_file,
                         StatusJson(driver, std::chrono::steady_clock::now(), done).dump() + "\n");
}

int Run(const LoadFlags& flags, StopSignalWatch& signals) {
  auto body = ReadFile(flags.body_file);
  if (!body.ok()) {
    std::cerr << "sluice-load: " << body.status().message() << "\n";
    return 1;
  }
  LoadOptions options;
  options.url = flags.url;
  options.body = std::move(*body);
  options.rate = flags.rate;
  options.workers = flags.workers;
  options.timeout = std::chrono::milliseconds(flags.timeout_ms);
  LoadDriver driver(std::move(options));
  driver.Start();
  if (Status s = WriteStatus(flags, driver, false); !s.ok()) {
    std::cerr << "sluice-load: --status-file: " << s.message() << "\n";
    driver.Stop();
    return 1;
  }
  spdlog::info("{} requests/s to {} with {} workers, {}", flags.rate, flags.url, flags.workers,
               flags.duration_s > 0 ? fmt::format("for {} s", flags.duration_s)
                                    : std::string("until SIGTERM or SIGINT"));

  const SteadyTime start = driver.started();
  const SteadyTime end =
      flags.duration_s > 0
          ? start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(flags.duration_s))
          : SteadyTime::max();
  for (SteadyTime tick = start + kStatusPeriod;; tick += kStatusPeriod) {
    if (signals.WaitFor(1, std::min(tick, end))) {
      spdlog::info("{}: stopping", StopSignalName(signals.last()));
      break;
    }
    if (std::chrono::steady_clock::now() >= end) break;
    if (Status s = WriteStatus(flags, driver, false); !s.ok()) spdlog::warn("{}", s.message());
  }

  driver.Stop();  // waits for the requests in flight
  const SteadyTime stopped = std::chrono::steady_clock::now();
  const json last = StatusJson(driver, stopped, true);
  if (Status s = WriteAtomically(flags.status_file, last.dump() + "\n"); !s.ok()) {
    spdlog::error("final status: {}", s.message());
  }
  for (const std::string& line : driver.Timeline()) std::cout << line << "\n";
  std::cout.flush();
  spdlog::info("done after {} s: {} requests, {} failed, by version {}", last["elapsed_s"].dump(),
               last["total"].dump(), last["failed"].dump(), last["by_version"].dump());
  return 0;
}

}  // namespace
}  // namespace sluice::canary

int main(int argc, char** argv) {
  using namespace sluice::canary;
  // Before any thread starts, so only the watcher's sigwait sees the stop signals.
  sluice::BlockStopSignals();

  auto flags = ParseLoadFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::cerr << "sluice-load: " << flags.status().message() << "\n\n" << Usage();
    return 1;
  }
  if (flags->help) {
    std::cout << Usage();
    return 0;
  }
  if (flags->version) {
    std::cout << sluice::VersionLine("sluice-load") << "\n";
    return 0;
  }
  if (auto s = sluice::ConfigureLogging(sluice::LogFormat::kText, flags->log_level); !s.ok()) {
    std::cerr << "sluice-load: " << s.message() << "\n";
    return 1;
  }
  // libcurl's global state, before the workers make their handles.
  curl_global_init(CURL_GLOBAL_DEFAULT);
  sluice::StopSignalWatch& signals = sluice::StopSignalWatch::Start();
  const int rc = Run(*flags, signals);
  spdlog::default_logger()->flush();
  curl_global_cleanup();
  return rc;
}
