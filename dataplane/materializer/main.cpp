// sluice-materialize: one materialization run of a FeatureView, as the operator's Job runs it.
// Reads the view's batch source, writes the newest row of each entity within the ttl to Redis in
// Feast's layout, and leaves the outcome as one JSON object in --result-file (the Job's
// /dev/termination-log, which the operator reads from the Pod's status). Exit 0 on success, 1 on
// a failed run, 2 on a malformed command line.

#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>

#include "dataplane/features/source/table_reader.h"
#include "dataplane/materializer/materializer.h"
#include "lib/api/materialize_command.h"
#include "lib/base/logging.h"
#include "lib/base/version.h"

namespace {

bool WriteResult(const std::string& path, const sluice::api::MaterializeResult& result) {
  std::ofstream out(path, std::ios::trunc);
  out << result.ToJson().dump() << "\n";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  using sluice::api::MaterializeCommand;
  auto command = MaterializeCommand::Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!command.ok()) {
    std::cerr << "sluice-materialize: " << command.status().message() << "\n\n"
              << MaterializeCommand::Usage({});
    return 2;
  }
  if (command->help.value_or(false)) {
    std::cout << MaterializeCommand::Usage({});
    return 0;
  }
  if (command->version.value_or(false)) {
    std::cout << sluice::VersionLine("sluice-materialize") << "\n";
    return 0;
  }
  auto format = sluice::ParseLogFormat(command->log_format.value_or("text"));
  if (!format.ok()) {
    std::cerr << "sluice-materialize: " << format.status().message() << "\n";
    return 2;
  }
  if (auto s = sluice::ConfigureLogging(*format, command->log_level.value_or("info")); !s.ok()) {
    std::cerr << "sluice-materialize: " << s.message() << "\n";
    return 2;
  }

  const sluice::api::MaterializeResult result = sluice::materializer::MaterializeFromCommand(
      *command, &sluice::features::OpenSource, std::chrono::system_clock::now());
  int rc = result.ok ? 0 : 1;
  if (command->result_file && !command->result_file->empty()) {
    if (!WriteResult(*command->result_file, result)) {
      spdlog::error("cannot write the result to {}", *command->result_file);
      rc = 1;
    }
  } else {
    std::cout << result.ToJson().dump() << "\n";
  }
  spdlog::default_logger()->flush();
  return rc;
}
