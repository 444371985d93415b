#include "controllers/modeldeployment/status_metrics.h"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <utility>

#include "lib/api/object_labels.h"

namespace sluice::controllers {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;

constexpr Phase kPhases[] = {Phase::kProgressing, Phase::kHealthy, Phase::kPaused, Phase::kDegraded,
                             Phase::kRolledBack};
constexpr const char* kVerdicts[] = {"Pass", "Fail", "NoData"};

MetricFamily Gauge(std::string name, std::string help) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = prometheus::MetricType::Gauge;
  return f;
}

// One sample of `f` for ModelDeployment `md`, with `extra` labels after its own.
void Add(MetricFamily& f, const ModelDeployment& md,
         std::vector<std::pair<std::string, std::string>> extra, double value) {
  ClientMetric m;
  m.label.push_back({"namespace", md.Namespace()});
  m.label.push_back({"modeldeployment", md.Name()});
  for (auto& [k, v] : extra) m.label.push_back({std::move(k), std::move(v)});
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

}  // namespace

std::vector<MetricFamily> ModelDeploymentFamilies(const std::vector<ModelDeployment>& mds) {
  MetricFamily phase = Gauge("sluice_operator_modeldeployment_phase",
                             "1 for the ModelDeployment's status.phase, 0 for the other phases.");
  MetricFamily condition =
      Gauge("sluice_operator_modeldeployment_condition",
            "1 for each condition in the ModelDeployment's status, with its status and reason.");
  MetricFamily weight = Gauge("sluice_operator_modeldeployment_traffic_weight",
                              "Weight of a revision in the ModelDeployment's status.traffic.");
  MetricFamily step = Gauge("sluice_operator_modeldeployment_canary_step",
                            "The canary step the rollout is at (status.currentStep, from 0).");
  MetricFamily verdict =
      Gauge("sluice_operator_modeldeployment_analysis_verdict",
            "1 for the verdict of the last canary analysis (Pass, Fail, NoData), 0 for others.");
  MetricFamily value = Gauge("sluice_operator_modeldeployment_analysis_value",
                             "A measurement of the last canary analysis, by metric.");
  MetricFamily failures =
      Gauge("sluice_operator_modeldeployment_analysis_consecutive_failures",
            "Failed analyses in a row; failureThreshold of them roll the canary back.");
  MetricFamily analysed = Gauge("sluice_operator_modeldeployment_analysis_timestamp_seconds",
                                "Unix time of the last canary analysis.");
  MetricFamily replicas =
      Gauge("sluice_operator_modeldeployment_revision_replicas",
            "Replicas the operator wants for a revision (autoscaler or spec.replicas).");
  MetricFamily ready = Gauge("sluice_operator_modeldeployment_revision_ready_replicas",
                             "Ready replicas of a revision.");

  for (const ModelDeployment& md : mds) {
    if (!md.status) continue;
    const ModelDeploymentStatus& s = *md.status;
    if (s.phase) {
      for (Phase p : kPhases) {
        Add(phase, md, {{"phase", std::string(PhaseName(p))}}, p == *s.phase ? 1 : 0);
      }
    }
    for (const Condition& c : s.conditions) {
      Add(condition, md, {{"type", c.type}, {"status", c.status}, {"reason", c.reason}}, 1);
    }
    for (const TrafficTarget& t : s.traffic) {
      Add(weight, md, {{"revision", t.revision}}, t.weight);
    }
    if (s.current_step) Add(step, md, {}, *s.current_step);
    if (s.last_analysis) {
      const AnalysisStatus& a = *s.last_analysis;
      if (a.verdict) {
        for (const char* v : kVerdicts) Add(verdict, md, {{"verdict", v}}, *a.verdict == v ? 1 : 0);
      }
      if (a.values) {
        for (const auto& [metric, v] : *a.values) Add(value, md, {{"metric", metric}}, v);
      }
      if (a.consecutive_failures) Add(failures, md, {}, *a.consecutive_failures);
      if (a.time) {
        Add(analysed, md, {}, std::chrono::duration<double>(a.time->time_since_epoch()).count());
      }
    }
    for (const RevisionStatus& r : s.revisions) {
      if (r.replicas) Add(replicas, md, {{"revision", r.name}}, *r.replicas);
      if (r.ready_replicas) Add(ready, md, {{"revision", r.name}}, *r.ready_replicas);
    }
  }
  std::vector<MetricFamily> out;
  for (MetricFamily* f : {&phase, &condition, &weight, &step, &verdict, &value, &failures,
                          &analysed, &replicas, &ready}) {
    out.push_back(std::move(*f));
  }
  return out;
}

std::string RenderModelDeploymentMetrics(const ObjectReader& reader) {
  std::vector<ModelDeployment> mds;
  for (const ObjectPtr& object : reader.List(api::kModelDeploymentsGvr, "")) {
    auto md = ParseModelDeployment(*object);
    if (md.ok()) mds.push_back(std::move(*md));
  }
  std::vector<MetricFamily> families = ModelDeploymentFamilies(mds);
  // The text format has no use for a family without samples.
  std::erase_if(families, [](const MetricFamily& f) { return f.metric.empty(); });
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace sluice::controllers
