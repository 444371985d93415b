#pragma once

// Per-ModelDeployment series for dashboards and alerts, from each ModelDeployment's status as the
// operator's cache holds it. ModelDeploymentMetrics renders a ModelDeployment's series when its
// object changes and drops them when it is deleted, so a scrape joins text instead of parsing
// every ModelDeployment. The leader writes the status; only the leader exports these, so two
// replicas never export the same series.
//
// Names (gauges; labels namespace and modeldeployment on every series):
//   sluice_operator_modeldeployment_phase{phase}                 1 for status.phase, 0 for others
//   sluice_operator_modeldeployment_condition{type,status,reason}  1 per status.conditions entry
//   sluice_operator_modeldeployment_traffic_weight{revision}     status.traffic weights
//   sluice_operator_modeldeployment_canary_step                  status.currentStep (0-based)
//   sluice_operator_modeldeployment_analysis_verdict{verdict}    1 for the last verdict
//                                                                (Pass | Fail | NoData), 0 others
//   sluice_operator_modeldeployment_analysis_value{metric}       the last analysis' measurements
//   sluice_operator_modeldeployment_analysis_consecutive_failures
//   sluice_operator_modeldeployment_analysis_timestamp_seconds   when the last analysis ran
//   sluice_operator_modeldeployment_revision_replicas{revision}   replicas the operator wants
//                                                                (autoscaler or spec.replicas)
//   sluice_operator_modeldeployment_revision_ready_replicas{revision}

#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/api/model_deployment.h"
#include "lib/kube/informer.h"

namespace sluice::controllers {

// The families for `mds`. Pure; every family is present (maybe empty) so names are stable.
std::vector<prometheus::MetricFamily> ModelDeploymentFamilies(
    const std::vector<ModelDeployment>& mds);

// The families above for every ModelDeployment it was told of, in the text exposition format,
// kept up to date by Handler() on the cache's ModelDeployment informers. Thread-safe.
class ModelDeploymentMetrics {
 public:
  ModelDeploymentMetrics();

  // Set on add and update, Remove on delete.
  std::shared_ptr<kube::ResourceEventHandler> Handler();
  // A ModelDeployment as it is now; one that does not parse has no series (the reconciler
  // reports it).
  void Set(const nlohmann::json& object);
  void Remove(const nlohmann::json& object);

  // Every family with at least one sample, its samples in namespace/name order.
  std::string Render() const;

 private:
  struct Family {
    std::string header;  // # HELP and # TYPE lines
  };
  std::vector<Family> families_;  // in ModelDeploymentFamilies' order
  mutable std::mutex mu_;
  // One ModelDeployment's sample lines, family after family; family i is
  // text[ends[i - 1], ends[i]) (from 0 for the first).
  struct Samples {
    std::string text;
    std::vector<uint32_t> ends;
  };
  std::map<std::string, Samples> samples_;  // "namespace/name"; guarded by mu_
};

}  // namespace sluice::controllers
