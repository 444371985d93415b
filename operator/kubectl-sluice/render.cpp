#include "operator/kubectl-sluice/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "lib/api/object_labels.h"
#include "lib/api/time.h"

namespace sluice::kubectl_sluice {
namespace {

using std::chrono::seconds;

// --- reading JSON that may lack anything ---

const json* Find(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end() || it->is_null()) return nullptr;
    at = &*it;
  }
  return at;
}

std::string Str(const json& j, std::initializer_list<const char*> path,
                const std::string& fallback = "") {
  const json* v = Find(j, path);
  if (v == nullptr) return fallback;
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

std::optional<int64_t> Int(const json& j, std::initializer_list<const char*> path) {
  const json* v = Find(j, path);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<int64_t>();
}

std::optional<double> Number(const json& j, std::initializer_list<const char*> path) {
  const json* v = Find(j, path);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

const json& Array(const json& j, std::initializer_list<const char*> path) {
  static const json kEmpty = json::array();
  const json* v = Find(j, path);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

std::optional<WallClock> Time(const json& j, std::initializer_list<const char*> path) {
  const json* v = Find(j, path);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  auto t = controllers::ParseTime(v->get<std::string>());
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::string Ago(std::optional<WallClock> t, WallClock now) {
  if (!t) return "-";
  return ShortAge(std::chrono::duration_cast<seconds>(now - *t));
}

std::string Percent(int64_t v) {
  return std::to_string(v) + "%";
}

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Columns padded to their widest cell, three spaces apart, as kubectl prints them.
std::string Table(const std::vector<std::vector<std::string>>& rows,
                  const std::string& indent = "") {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// --- the ModelDeployment ---

std::optional<std::string> ModelVersionOf(const json& md, const std::string& revision) {
  for (const json& r : Array(md, {"status", "revisions"})) {
    if (Str(r, {"name"}) == revision) {
      const std::string v = Str(r, {"modelVersion"});
      if (!v.empty()) return v;
    }
  }
  return std::nullopt;
}

std::string RevisionWithVersion(const json& md, const std::string& revision) {
  if (revision.empty()) return "-";
  if (auto v = ModelVersionOf(md, revision)) return revision + " (" + *v + ")";
  return revision;
}

std::map<std::string, int64_t> Weights(const json& md) {
  std::map<std::string, int64_t> out;
  for (const json& t : Array(md, {"status", "traffic"})) {
    out[Str(t, {"revision"})] = Int(t, {"weight"}).value_or(0);
  }
  return out;
}

size_t StepCount(const json& md) {
  const json* steps = Find(md, {"spec", "rollout", "canary", "steps"});
  return steps != nullptr && steps->is_array() ? steps->size() : 3;  // the CRD's default: 3
}

const json* FindCondition(const json& md, const std::string& type) {
  for (const json& c : Array(md, {"status", "conditions"})) {
    if (Str(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

std::string TrafficCell(const json& md) {
  const std::map<std::string, int64_t> weights = Weights(md);
  if (weights.empty()) return "-";
  const std::string stable = Str(md, {"status", "stableRevision"});
  const std::string canary = Str(md, {"status", "canaryRevision"});
  if (!canary.empty() && !stable.empty()) {
    auto w = [&](const std::string& r) {
      auto it = weights.find(r);
      return it == weights.end() ? int64_t{0} : it->second;
    };
    return std::to_string(w(stable)) + "/" + std::to_string(w(canary));
  }
  std::string out;
  for (const auto& [rev, w] : weights) out += (out.empty() ? "" : "/") + std::to_string(w);
  return out;
}

std::string StepCell(const json& md) {
  auto step = Int(md, {"status", "currentStep"});
  if (!step) return "-";
  return std::to_string(std::min<int64_t>(*step + 1, StepCount(md))) + "/" +
         std::to_string(StepCount(md));
}

// --- owned objects ---

bool OwnedBy(const json& object, const std::string& uid) {
  for (const json& ref : Array(object, {"metadata", "ownerReferences"})) {
    if (Str(ref, {"uid"}) == uid) return true;
  }
  return false;
}

std::string ReadyOf(const json& workload) {
  return std::to_string(Int(workload, {"status", "readyReplicas"}).value_or(0)) + "/" +
         std::to_string(Int(workload, {"spec", "replicas"}).value_or(0));
}

std::string PodLine(const json& pod) {
  int ready = 0, total = 0, restarts = 0;
  std::string waiting;
  for (const json& c : Array(pod, {"status", "containerStatuses"})) {
    ++total;
    if (c.value("ready", false)) ++ready;
    restarts += static_cast<int>(Int(c, {"restartCount"}).value_or(0));
    const std::string reason = Str(c, {"state", "waiting", "reason"});
    if (!reason.empty() && waiting.empty()) waiting = reason;
  }
  if (total == 0) total = static_cast<int>(Array(pod, {"spec", "containers"}).size());
  std::string state = Str(pod, {"status", "phase"}, "Pending");
  if (Find(pod, {"metadata", "deletionTimestamp"}) != nullptr) state = "Terminating";
  if (!waiting.empty()) state = waiting;
  std::string line = "Pod " + Str(pod, {"metadata", "name"}) + "  " + state + "  ready " +
                     std::to_string(ready) + "/" + std::to_string(total);
  if (restarts > 0) line += "  restarts " + std::to_string(restarts);
  return line;
}

// Appends a tree of `lines` (each with its children) under `prefix`.
struct Node {
  std::string text;
  std::vector<Node> children;
};

void DrawTree(const std::vector<Node>& nodes, const std::string& prefix, std::string& out) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    const bool last = i + 1 == nodes.size();
    out += prefix + (last ? "└─ " : "├─ ") + nodes[i].text + "\n";
    DrawTree(nodes[i].children, prefix + (last ? "   " : "│  "), out);
  }
}

Node DeploymentNode(const json& deployment, const StatusInputs& in) {
  Node node{
      "Deployment " + Str(deployment, {"metadata", "name"}) + "  ready " + ReadyOf(deployment), {}};
  const std::string uid = Str(deployment, {"metadata", "uid"});
  for (const json& rs : in.replica_sets) {
    if (!OwnedBy(rs, uid)) continue;
    const std::string rs_uid = Str(rs, {"metadata", "uid"});
    Node rs_node{"ReplicaSet " + Str(rs, {"metadata", "name"}) + "  ready " + ReadyOf(rs), {}};
    for (const json& pod : in.pods) {
      if (OwnedBy(pod, rs_uid)) rs_node.children.push_back({PodLine(pod), {}});
    }
    // Old ReplicaSets scaled to zero with no pods left say nothing.
    if (rs_node.children.empty() && Int(rs, {"spec", "replicas"}).value_or(0) == 0) continue;
    node.children.push_back(std::move(rs_node));
  }
  return node;
}

std::string Label(const json& object, const char* key) {
  const json* labels = Find(object, {"metadata", "labels"});
  if (labels == nullptr || !labels->is_object()) return "";
  auto it = labels->find(key);
  return it != labels->end() && it->is_string() ? it->get<std::string>() : "";
}

std::string StepLine(const json& md, WallClock now) {
  auto step = Int(md, {"status", "currentStep"});
  if (!step) return "";
  const size_t n = StepCount(md);
  std::string line = std::to_string(std::min<int64_t>(*step + 1, n)) + "/" + std::to_string(n);
  const json* steps = Find(md, {"spec", "rollout", "canary", "steps"});
  std::optional<std::string> pause;
  if (steps != nullptr && steps->is_array() && *step >= 0 &&
      static_cast<size_t>(*step) < steps->size()) {
    const json& s = (*steps)[*step];
    line += "  weight " + Percent(Int(s, {"weight"}).value_or(0));
    if (Find(s, {"pause"}) != nullptr) pause = Str(s, {"pause"});
  }
  const auto started = Time(md, {"status", "currentStepStartTime"});
  if (pause) {
    line += "  pause " + *pause;
  } else {
    line += "  pause: until sluice.dev/promote";
  }
  if (started) line += "  (started " + Ago(started, now) + " ago)";
  return line;
}

std::string ThresholdText(const json& metric) {
  auto min = Number(metric, {"thresholdRange", "min"});
  auto max = Number(metric, {"thresholdRange", "max"});
  if (min && max) return "[" + FormatNumber(*min) + ", " + FormatNumber(*max) + "]";
  if (max) return "max " + FormatNumber(*max);
  if (min) return "min " + FormatNumber(*min);
  return "-";
}

std::string AnalysisBlock(const json& md, WallClock now) {
  const json* a = Find(md, {"status", "lastAnalysis"});
  if (a == nullptr) return "Analysis:    -\n";
  std::string out = "Analysis:    " + Str(*a, {"verdict"}, "-");
  if (auto t = Time(*a, {"time"})) out += "  " + Ago(t, now) + " ago";
  if (auto r = Int(*a, {"requests"})) out += "  requests " + std::to_string(*r);
  if (auto f = Int(*a, {"consecutiveFailures"})) {
    out += "  failures in a row " + std::to_string(*f);
    if (auto th = Int(md, {"spec", "rollout", "canary", "analysis", "failureThreshold"})) {
      out += "/" + std::to_string(*th);
    }
  }
  out += "\n";
  const std::string message = Str(*a, {"message"});
  if (!message.empty()) out += "             " + message + "\n";
  // Each metric of the spec with its measured value, against its threshold.
  std::vector<std::vector<std::string>> rows;
  std::set<std::string> shown;
  const json* values = Find(*a, {"values"});
  for (const json& m : Array(md, {"spec", "rollout", "canary", "analysis", "metrics"})) {
    const std::string name = Str(m, {"name"});
    shown.insert(name);
    std::optional<double> value;
    if (values != nullptr && values->contains(name) && (*values)[name].is_number()) {
      value = (*values)[name].get<double>();
    }
    std::string verdict = "no data";
    if (value) {
      auto min = Number(m, {"thresholdRange", "min"});
      auto max = Number(m, {"thresholdRange", "max"});
      const bool bad = (min && *value < *min) || (max && *value > *max);
      verdict = bad ? "FAIL" : "ok";
    }
    rows.push_back({name, value ? FormatNumber(*value) : "-", ThresholdText(m), verdict});
  }
  if (values != nullptr && values->is_object()) {
    for (const auto& [name, v] : values->items()) {
      if (shown.count(name) || !v.is_number()) continue;
      rows.push_back({name, FormatNumber(v.get<double>()), "-", ""});
    }
  }
  if (!rows.empty()) {
    rows.insert(rows.begin(), {"METRIC", "VALUE", "THRESHOLD", ""});
    out += Table(rows, "             ");
  }
  return out;
}

std::optional<WallClock> EventTime(const json& e) {
  if (auto t = Time(e, {"lastTimestamp"})) return t;
  if (auto t = Time(e, {"eventTime"})) return t;
  if (auto t = Time(e, {"firstTimestamp"})) return t;
  return Time(e, {"metadata", "creationTimestamp"});
}

}  // namespace

std::string ShortAge(seconds age) {
  const int64_t s = std::max<int64_t>(0, age.count());
  if (s < 120) return std::to_string(s) + "s";
  if (s < 120 * 60) return std::to_string(s / 60) + "m";
  if (s < 48 * 3600) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string RenderGetTable(const std::vector<json>& mds, bool all_namespaces, WallClock now) {
  if (mds.empty()) return "No resources found.\n";
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"NAME",    "PHASE", "STABLE",   "CANARY",
                                     "TRAFFIC", "STEP",  "ANALYSIS", "AGE"};
  if (all_namespaces) header.insert(header.begin(), "NAMESPACE");
  rows.push_back(header);
  for (const json& md : mds) {
    std::vector<std::string> row = {Str(md, {"metadata", "name"}),
                                    Str(md, {"status", "phase"}, "-"),
                                    RevisionWithVersion(md, Str(md, {"status", "stableRevision"})),
                                    RevisionWithVersion(md, Str(md, {"status", "canaryRevision"})),
                                    TrafficCell(md),
                                    StepCell(md),
                                    Str(md, {"status", "lastAnalysis", "verdict"}, "-"),
                                    Ago(Time(md, {"metadata", "creationTimestamp"}), now)};
    if (all_namespaces) row.insert(row.begin(), Str(md, {"metadata", "namespace"}));
    rows.push_back(std::move(row));
  }
  return Table(rows);
}

std::string RenderStatus(const StatusInputs& in, WallClock now) {
  const json& md = in.model_deployment;
  std::string out;
  const std::string phase = Str(md, {"status", "phase"}, "-");
  out += "Name:        " + Str(md, {"metadata", "name"}) + "\n";
  out += "Namespace:   " + Str(md, {"metadata", "namespace"}) + "\n";
  out += "Phase:       " + phase;
  if (const json* p = FindCondition(md, "Progressing")) {
    const std::string message = Str(*p, {"message"});
    if (!message.empty()) out += "  (" + message + ")";
  }
  out += "\n";
  const auto generation = Int(md, {"metadata", "generation"});
  const auto observed = Int(md, {"status", "observedGeneration"});
  if (generation && observed && *observed < *generation) {
    out += "             status describes generation " + std::to_string(*observed) + " of " +
           std::to_string(*generation) + ": the operator has not acted on the latest spec yet\n";
  } else if (!observed) {
    out += "             the operator has not reported a status yet\n";
  }
  out += "Strategy:    " + Str(md, {"spec", "rollout", "strategy"}, "Canary");
  const json& steps = Array(md, {"spec", "rollout", "canary", "steps"});
  if (Str(md, {"spec", "rollout", "strategy"}, "Canary") == "Canary" && !steps.empty()) {
    std::string plan;
    for (const json& s : steps) {
      plan += (plan.empty() ? "" : " → ") + Percent(Int(s, {"weight"}).value_or(0));
      if (Find(s, {"pause"}) != nullptr) plan += " " + Str(s, {"pause"});
    }
    out += "  " + plan;
  }
  out += "\n";
  if (const std::string step = StepLine(md, now); !step.empty()) {
    out += "Step:        " + step + "\n";
  }

  // Traffic, in the order the status lists it.
  std::string traffic;
  for (const json& t : Array(md, {"status", "traffic"})) {
    traffic += (traffic.empty() ? "" : "  ") + Str(t, {"revision"}) + " " +
               Percent(Int(t, {"weight"}).value_or(0));
    if (auto m = Int(t, {"mirrorPercent"})) traffic += " (+" + Percent(*m) + " mirrored)";
  }
  out += "Traffic:     " +
         (traffic.empty() ? std::string("- (no revision has Ready pods)") : traffic) + "\n";
  out += AnalysisBlock(md, now);

  // Revisions, then the router, each with its Deployment → ReplicaSets → Pods.
  const std::string stable = Str(md, {"status", "stableRevision"});
  const std::string canary = Str(md, {"status", "canaryRevision"});
  const std::map<std::string, int64_t> weights = Weights(md);
  std::vector<Node> revisions;
  std::set<std::string> listed;
  auto deployments_of = [&](const std::string& revision) {
    std::vector<const json*> found;
    for (const json& d : in.deployments) {
      if (Label(d, api::kLabelRevision) == revision) found.push_back(&d);
    }
    return found;
  };
  auto revision_node = [&](const std::string& name, const json* status_entry) {
    std::string role = "retired";
    if (name == stable) role = "stable";
    if (name == canary) role = phase == "RolledBack" ? "canary, rolled back" : "canary";
    std::string text = name + "  " + role;
    if (auto v = ModelVersionOf(md, name)) text += "  model " + *v;
    auto w = weights.find(name);
    text += "  weight " + Percent(w == weights.end() ? 0 : w->second);
    if (status_entry != nullptr) {
      text += "  ready " + std::to_string(Int(*status_entry, {"readyReplicas"}).value_or(0)) + "/" +
              std::to_string(Int(*status_entry, {"replicas"}).value_or(0));
      if (auto t = Time(*status_entry, {"scaleDownTime"})) {
        text += t > now
                    ? "  scales down in " + ShortAge(std::chrono::duration_cast<seconds>(*t - now))
                    : "  scaling down";
      }
    }
    Node node{text, {}};
    for (const json* d : deployments_of(name)) node.children.push_back(DeploymentNode(*d, in));
    listed.insert(name);
    return node;
  };
  for (const json& r : Array(md, {"status", "revisions"})) {
    revisions.push_back(revision_node(Str(r, {"name"}), &r));
  }
  for (const std::string& name : {stable, canary}) {
    if (!name.empty() && !listed.count(name)) revisions.push_back(revision_node(name, nullptr));
  }
  for (const json& d : in.deployments) {
    const std::string rev = Label(d, api::kLabelRevision);
    if (!rev.empty() && !listed.count(rev)) revisions.push_back(revision_node(rev, nullptr));
  }
  out += "Revisions:\n";
  if (revisions.empty()) {
    out += "  -\n";
  } else {
    DrawTree(revisions, "  ", out);
  }
  std::vector<Node> router;
  for (const json& d : in.deployments) {
    if (Label(d, api::kLabelComponent) == "router") router.push_back(DeploymentNode(d, in));
  }
  if (!router.empty()) {
    out += "Router:\n";
    DrawTree(router, "  ", out);
  }

  out += "Conditions:\n";
  const json& conditions = Array(md, {"status", "conditions"});
  if (conditions.empty()) {
    out += "  -\n";
  } else {
    std::vector<std::vector<std::string>> rows = {{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"}};
    for (const json& c : conditions) {
      rows.push_back({Str(c, {"type"}), Str(c, {"status"}), Str(c, {"reason"}),
                      Ago(Time(c, {"lastTransitionTime"}), now), Str(c, {"message"})});
    }
    out += Table(rows, "  ");
  }

  out += "Events:\n";
  std::vector<const json*> events;
  for (const json& e : in.events) events.push_back(&e);
  std::stable_sort(events.begin(), events.end(), [](const json* a, const json* b) {
    return EventTime(*a).value_or(WallClock{}) < EventTime(*b).value_or(WallClock{});
  });
  constexpr size_t kMaxEvents = 10;
  if (events.size() > kMaxEvents) events.erase(events.begin(), events.end() - kMaxEvents);
  if (events.empty()) {
    out += "  -\n";
  } else {
    std::vector<std::vector<std::string>> rows = {{"AGE", "TYPE", "REASON", "MESSAGE"}};
    for (const json* e : events) {
      std::string message = Str(*e, {"message"});
      if (auto n = Int(*e, {"count"}); n && *n > 1) message += " (x" + std::to_string(*n) + ")";
      rows.push_back({Ago(EventTime(*e), now), Str(*e, {"type"}), Str(*e, {"reason"}), message});
    }
    out += Table(rows, "  ");
  }
  return out;
}

std::string RenderHistory(const json& md, WallClock now) {
  const json& history = Array(md, {"status", "history"});
  if (history.empty()) {
    return "No finished rollouts recorded for " + Str(md, {"metadata", "name"}) + ".\n";
  }
  std::vector<std::vector<std::string>> rows = {
      {"#", "REVISION", "MODEL", "RESULT", "REASON", "FINISHED", "MESSAGE"}};
  int n = 0;
  for (const json& e : history) {
    rows.push_back({std::to_string(++n), Str(e, {"revision"}), Str(e, {"modelVersion"}, "-"),
                    Str(e, {"result"}), Str(e, {"reason"}, "-"),
                    Ago(Time(e, {"time"}), now) + " ago", Str(e, {"message"})});
  }
  return Table(rows);
}

WaitState EvaluateWait(const json& md) {
  const auto observed = Int(md, {"status", "observedGeneration"});
  if (!observed || *observed < Int(md, {"metadata", "generation"}).value_or(0)) {
    return WaitState::kPending;
  }
  const std::string phase = Str(md, {"status", "phase"});
  if (phase == "Healthy") return WaitState::kHealthy;
  if (phase == "Degraded") return WaitState::kDegraded;
  if (phase == "RolledBack") return WaitState::kRolledBack;
  return WaitState::kPending;
}

std::string ProgressLine(const json& md) {
  const std::string phase = Str(md, {"status", "phase"}, "-");
  std::string line = Str(md, {"metadata", "name"}) + ": " + phase;
  const char* type = phase == "Degraded" || phase == "RolledBack" ? "Degraded" : "Progressing";
  if (const json* c = FindCondition(md, type)) {
    const std::string message = Str(*c, {"message"});
    if (!message.empty()) line += " - " + message;
  }
  if (EvaluateWait(md) == WaitState::kPending && phase != "-") {
    const auto observed = Int(md, {"status", "observedGeneration"});
    const auto generation = Int(md, {"metadata", "generation"});
    if (observed && generation && *observed < *generation) {
      line += " (status of generation " + std::to_string(*observed) + " of " +
              std::to_string(*generation) + ")";
    }
  }
  return line;
}

}  // namespace sluice::kubectl_sluice
