#include "controllers/modeldeployment/status_metrics.h"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <utility>

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

// "namespace/name" of a ModelDeployment object.
std::string KeyOf(const nlohmann::json& object) {
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "/";
  return meta->value("namespace", "") + "/" + meta->value("name", "");
}

// The sample lines of `family` in the text format, without its # HELP and # TYPE lines.
std::string SampleLines(const MetricFamily& family) {
  const std::string text = prometheus::TextSerializer().Serialize({family});
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (end > at && text[at] != '#') out.append(text, at, end - at).push_back('\n');
    at = end + 1;
  }
  return out;
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

ModelDeploymentMetrics::ModelDeploymentMetrics() {
  for (const MetricFamily& f : ModelDeploymentFamilies({})) {
    families_.push_back({"# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " gauge\n"});
  }
}

std::shared_ptr<kube::ResourceEventHandler> ModelDeploymentMetrics::Handler() {
  auto handler = std::make_shared<kube::ResourceEventHandlerFuncs>();
  handler->on_add = [this](const kube::ObjectPtr& object) { Set(*object); };
  handler->on_update = [this](const kube::ObjectPtr&, const kube::ObjectPtr& object) {
    Set(*object);
  };
  handler->on_delete = [this](const kube::ObjectPtr& object, bool) { Remove(*object); };
  return handler;
}

void ModelDeploymentMetrics::Set(const nlohmann::json& object) {
  auto md = ParseModelDeployment(object);
  if (!md.ok()) {
    Remove(object);
    return;
  }
  Samples samples;
  for (const MetricFamily& f : ModelDeploymentFamilies({*md})) {
    if (!f.metric.empty()) samples.text += SampleLines(f);
    samples.ends.push_back(static_cast<uint32_t>(samples.text.size()));
  }
  samples.text.shrink_to_fit();
  std::lock_guard<std::mutex> lock(mu_);
  if (!samples.text.empty()) {
    samples_[KeyOf(object)] = std::move(samples);
  } else {
    samples_.erase(KeyOf(object));
  }
}

void ModelDeploymentMetrics::Remove(const nlohmann::json& object) {
  std::lock_guard<std::mutex> lock(mu_);
  samples_.erase(KeyOf(object));
}

std::string ModelDeploymentMetrics::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < families_.size(); ++i) {
    bool header = false;
    for (const auto& [key, samples] : samples_) {
      const uint32_t begin = i == 0 ? 0 : samples.ends[i - 1];
      if (samples.ends[i] == begin) continue;
      if (!header) out += families_[i].header;
      header = true;
      out.append(samples.text, begin, samples.ends[i] - begin);
    }
  }
  return out;
}

}  // namespace sluice::controllers
