#include "lib/api/materialize_command.h"

#include <limits>

namespace sluice::api {

void MaterializeCommand::Bind(FlagSet& f, MaterializeCommand& c) {
  f.Bool("help", &c.help, "print this help");
  f.Bool("version", &c.version, "print the version and revision, then exit");
  f.String("view", &c.view, "the feature view with its source, as JSON (required)");
  f.String("run-time", &c.run_time,
           "the run's time, RFC 3339; rows older than the view's ttl before it are skipped "
           "(default: now)");
  f.String("result-file", &c.result_file,
           "write the run's result as JSON here (the Job uses /dev/termination-log)");
  f.Int("batch-size", &c.batch_size, 1, 1 << 20, "entities per pipelined Redis round trip");
  f.Int("source-timeout-s", &c.source_timeout_s, 1, 86400,
        "longest a download of an http(s) source may take");
  f.Add("log-format", &c.log_format, FlagSet::OneOf("text|json", {"text", "json"}),
        "log lines as text or JSON");
  f.String("log-level", &c.log_level, "trace | debug | info | warn | error | off");
}

std::vector<std::string> MaterializeCommand::ToArgs() const {
  MaterializeCommand copy = *this;
  FlagSet flags;
  Bind(flags, copy);
  return flags.ToArgs();
}

Result<MaterializeCommand> MaterializeCommand::Parse(const std::vector<std::string>& args) {
  MaterializeCommand c;
  FlagSet flags;
  Bind(flags, c);
  RETURN_IF_ERROR(flags.Parse(args));
  return c;
}

std::string MaterializeCommand::Usage(const MaterializeCommand& shown) {
  MaterializeCommand copy = shown;
  copy.help.reset();
  copy.version.reset();
  FlagSet flags;
  Bind(flags, copy);
  return flags.Usage();
}

nlohmann::json MaterializeResult::ToJson() const {
  nlohmann::json j = {{"ok", ok},
                      {"runTime", run_time},
                      {"rowsRead", rows_read},
                      {"entitiesWritten", entities_written},
                      {"entitiesSkippedStale", entities_skipped_stale},
                      {"durationSeconds", duration_seconds}};
  if (!reason.empty()) j["reason"] = reason;
  // A termination message holds 4 KiB; the message is the part that may be long.
  if (!message.empty()) j["message"] = message.size() > 2048 ? message.substr(0, 2048) : message;
  if (!source_watermark.empty()) j["sourceWatermark"] = source_watermark;
  return j;
}

Result<MaterializeResult> MaterializeResult::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    return InvalidArgument("a materialization result is a JSON object with a boolean \"ok\"");
  }
  MaterializeResult r;
  try {
    r.ok = j["ok"].get<bool>();
    r.reason = j.value("reason", "");
    r.message = j.value("message", "");
    r.run_time = j.value("runTime", "");
    r.source_watermark = j.value("sourceWatermark", "");
    r.rows_read = j.value("rowsRead", int64_t{0});
    r.entities_written = j.value("entitiesWritten", int64_t{0});
    r.entities_skipped_stale = j.value("entitiesSkippedStale", int64_t{0});
    r.duration_seconds = j.value("durationSeconds", 0.0);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("a materialization result field has the wrong type: ") +
                           e.what());
  }
  return r;
}

}  // namespace sluice::api
