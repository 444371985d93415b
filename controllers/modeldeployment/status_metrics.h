#pragma once

// Per-ModelDeployment series for dashboards and alerts, read from each ModelDeployment's status as
// the operator's cache holds it, at scrape time (nothing is kept between scrapes, so a deleted
// ModelDeployment's series go with it). The leader writes the status; only the leader exports
// these, so two replicas never export the same series.
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

#include <string>
#include <vector>

#include "lib/api/model_deployment.h"
#include "lib/controller/object_io.h"

namespace sluice::controllers {

// The families for `mds`. Pure; every family is present (maybe empty) so names are stable.
std::vector<prometheus::MetricFamily> ModelDeploymentFamilies(
    const std::vector<ModelDeployment>& mds);

// The same for every ModelDeployment `reader` holds, in the text exposition format. Objects that
// do not parse are skipped (the reconciler reports them).
std::string RenderModelDeploymentMetrics(const ObjectReader& reader);

}  // namespace sluice::controllers
