#pragma once

// What kubectl-sluice prints, computed from the objects as the API server returns them (JSON) and
// the current time. Pure: no I/O, so each view is tested on fixtures. Fields the status does not
// have yet (a ModelDeployment the operator has not seen) print as "-", never fail.

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sluice::kubectl_sluice {

using nlohmann::json;
using WallClock = std::chrono::system_clock::time_point;

// `kubectl sluice get`: one row per ModelDeployment; a NAMESPACE column first when
// `all_namespaces`. "No resources found." when the list is empty.
std::string RenderGetTable(const std::vector<json>& model_deployments, bool all_namespaces,
                           WallClock now);

// Everything `kubectl sluice status NAME` shows. The owned objects are those labelled
// sluice.dev/modeldeployment=NAME; the events those whose involvedObject is the
// ModelDeployment.
struct StatusInputs {
  json model_deployment;
  std::vector<json> deployments;
  std::vector<json> replica_sets;
  std::vector<json> pods;
  std::vector<json> events;
};
std::string RenderStatus(const StatusInputs& in, WallClock now);

// `kubectl sluice history NAME`: status.history, oldest first.
std::string RenderHistory(const json& model_deployment, WallClock now);

// Where `status --wait` stands. A phase counts only once status.observedGeneration has caught
// up with metadata.generation: before that it describes an older spec.
enum class WaitState { kPending, kHealthy, kDegraded, kRolledBack };
WaitState EvaluateWait(const json& model_deployment);
// One line for --wait's progress: phase and the Progressing condition's message.
std::string ProgressLine(const json& model_deployment);

// "5s", "3m", "2h", "4d": kubectl's short age.
std::string ShortAge(std::chrono::seconds age);

}  // namespace sluice::kubectl_sluice
