#include "operator/kubectl-sluice/commands.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "lib/api/object_labels.h"
#include "operator/kubectl-sluice/render.h"

namespace sluice::kubectl_sluice {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

const kube::GroupVersionResource kReplicaSets{"apps", "v1", "replicasets", true, "ReplicaSet"};

std::string Namespace(const Invocation& inv, const RunContext& ctx) {
  return inv.namespace_.value_or(ctx.default_namespace);
}

std::string Describe(const Invocation& inv, const std::string& ns) {
  return "modeldeployment \"" + inv.name + "\" in namespace \"" + ns + "\"";
}

int Fail(RunContext& ctx, const Status& s, const std::string& what) {
  if (s.code() == StatusCode::kNotFound) {
    ctx.err << "error: " << what << " not found\n";
    return kExitNotFound;
  }
  ctx.err << "error: " << what << ": " << s.message() << "\n";
  return kExitError;
}

std::vector<json> Items(const json& list) {
  std::vector<json> items;
  for (const json& i : list.value("items", json::array())) items.push_back(i);
  return items;
}

std::string AnnotationOf(const json& md, const char* key) {
  const json annotations =
      md.value("metadata", json::object()).value("annotations", json::object());
  auto it = annotations.find(key);
  return it != annotations.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string StatusString(const json& md, const char* key) {
  const json status = md.value("status", json::object());
  auto it = status.find(key);
  return it != status.end() && it->is_string() ? it->get<std::string>() : "";
}

// --- get ---

int RunGet(const Invocation& inv, RunContext& ctx) {
  const std::string ns = inv.all_namespaces ? "" : Namespace(inv, ctx);
  auto list = ctx.client.ListAll(api::kModelDeploymentsGvr, ns);
  if (!list.ok()) return Fail(ctx, list.status(), "listing modeldeployments");
  std::vector<json> items = Items(*list);
  std::sort(items.begin(), items.end(), [](const json& a, const json& b) {
    auto key = [](const json& o) {
      const json m = o.value("metadata", json::object());
      return std::make_pair(m.value("namespace", ""), m.value("name", ""));
    };
    return key(a) < key(b);
  });
  if (items.empty() && !inv.all_namespaces) {
    ctx.out << "No resources found in " << ns << " namespace.\n";
    return kExitOk;
  }
  ctx.out << RenderGetTable(items, inv.all_namespaces, std::chrono::system_clock::now());
  return kExitOk;
}

// --- status ---

// The owned objects and Events of `md`. An object kind that cannot be listed (RBAC) is left
// out with a warning: the ModelDeployment's own status is still worth showing.
StatusInputs Collect(RunContext& ctx, const std::string& ns, const json& md) {
  StatusInputs in;
  in.model_deployment = md;
  const std::string name = md["metadata"].value("name", "");
  const std::string uid = md["metadata"].value("uid", "");
  kube::ListOptions owned;
  owned.label_selector = std::string(api::kLabelModelDeployment) + "=" + name;
  auto list = [&](const kube::GroupVersionResource& gvr, const kube::ListOptions& options,
                  std::vector<json>& into) {
    auto r = ctx.client.ListAll(gvr, ns, options);
    if (!r.ok()) {
      ctx.err << "warning: listing " << gvr.resource << ": " << r.status().message() << "\n";
      return;
    }
    into = Items(*r);
  };
  list(kube::resources::kDeployments, owned, in.deployments);
  list(kReplicaSets, owned, in.replica_sets);
  list(kube::resources::kPods, owned, in.pods);
  kube::ListOptions events;
  events.field_selector = "involvedObject.kind=ModelDeployment,involvedObject.name=" + name;
  std::vector<json> all_events;
  list(kube::resources::kEvents, events, all_events);
  for (json& e : all_events) {
    // Events of an earlier object of the same name are not this one's.
    const std::string of = e.value("involvedObject", json::object()).value("uid", "");
    if (of.empty() || uid.empty() || of == uid) in.events.push_back(std::move(e));
  }
  return in;
}

std::optional<int> WaitExit(const json& md, RunContext& ctx) {
  switch (EvaluateWait(md)) {
    case WaitState::kHealthy:
      return kExitOk;
    case WaitState::kDegraded:
      ctx.err << "modeldeployment \"" << md["metadata"].value("name", "") << "\" is Degraded\n";
      return kExitDegraded;
    case WaitState::kRolledBack:
      ctx.err << "modeldeployment \"" << md["metadata"].value("name", "") << "\" was rolled back\n";
      return kExitRolledBack;
    case WaitState::kPending:
      return std::nullopt;
  }
  return std::nullopt;
}

int RunStatus(const Invocation& inv, RunContext& ctx) {
  const std::string ns = Namespace(inv, ctx);
  auto got = ctx.client.Get(api::kModelDeploymentsGvr, ns, inv.name);
  if (!got.ok()) return Fail(ctx, got.status(), Describe(inv, ns));
  json md = std::move(*got);
  if (!inv.watch && !inv.wait) {
    ctx.out << RenderStatus(Collect(ctx, ns, md), std::chrono::system_clock::now());
    return kExitOk;
  }

  std::string last_line;
  auto show = [&](const json& object) {
    if (inv.watch) {
      if (ctx.terminal) ctx.out << "\033[H\033[2J";
      ctx.out << RenderStatus(Collect(ctx, ns, object), std::chrono::system_clock::now());
      if (!ctx.terminal) ctx.out << "\n";
    } else {
      const std::string line = ProgressLine(object);
      if (line != last_line) ctx.out << line << "\n";
      last_line = line;
    }
    ctx.out.flush();
  };
  show(md);
  if (inv.wait) {
    if (auto code = WaitExit(md, ctx)) return *code;
  }

  const auto deadline = steady_clock::now() + inv.timeout;
  std::string rv = md["metadata"].value("resourceVersion", "");
  int transient_failures = 0;
  while (true) {
    if (inv.wait && steady_clock::now() >= deadline) {
      ctx.err << "timed out after " << std::chrono::duration_cast<seconds>(inv.timeout).count()
              << "s waiting for " << Describe(inv, ns) << ": " << ProgressLine(md) << "\n";
      return kExitTimeout;
    }
    kube::WatchOptions wo;
    wo.field_selector = "metadata.name=" + inv.name;
    wo.resource_version = rv;
    seconds window{60};
    if (inv.wait) {
      const auto left = std::chrono::ceil<seconds>(deadline - steady_clock::now());
      window = std::clamp(left, seconds(1), seconds(60));
    }
    wo.timeout = window;
    std::optional<int> result;
    bool deleted = false;
    Status s = ctx.client.Watch(
        api::kModelDeploymentsGvr, ns, wo,
        [&](kube::WatchEvent&& ev) {
          const json meta = ev.object.value("metadata", json::object());
          if (meta.contains("resourceVersion")) rv = meta.value("resourceVersion", rv);
          if (ev.type == kube::WatchEventType::kBookmark) return true;
          if (ev.type == kube::WatchEventType::kDeleted) {
            deleted = true;
            return false;
          }
          md = std::move(ev.object);
          show(md);
          if (inv.wait) result = WaitExit(md, ctx);
          return !result.has_value();
        },
        nullptr);
    if (deleted) {
      ctx.err << "error: " << Describe(inv, ns) << " was deleted\n";
      return kExitNotFound;
    }
    if (result) return *result;
    if (s.ok()) {
      transient_failures = 0;
      continue;  // the server ended the window; resume from rv
    }
    if (s.code() == StatusCode::kGone) {
      // Too old to resume: read it again and watch from there.
      auto again = ctx.client.Get(api::kModelDeploymentsGvr, ns, inv.name);
      if (!again.ok()) return Fail(ctx, again.status(), Describe(inv, ns));
      md = std::move(*again);
      rv = md["metadata"].value("resourceVersion", "");
      show(md);
      if (inv.wait) {
        if (auto code = WaitExit(md, ctx)) return *code;
      }
      continue;
    }
    if ((s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout ||
         s.code() == StatusCode::kTooManyRequests) &&
        ++transient_failures <= 5) {
      std::this_thread::sleep_for(seconds(transient_failures));  // a short backoff, then resume
      continue;
    }
    return Fail(ctx, s, "watching " + Describe(inv, ns));
  }
}

// --- history ---

int RunHistory(const Invocation& inv, RunContext& ctx) {
  const std::string ns = Namespace(inv, ctx);
  auto md = ctx.client.Get(api::kModelDeploymentsGvr, ns, inv.name);
  if (!md.ok()) return Fail(ctx, md.status(), Describe(inv, ns));
  ctx.out << RenderHistory(*md, std::chrono::system_clock::now());
  return kExitOk;
}

// --- the control annotations ---

int RunControl(const Invocation& inv, RunContext& ctx) {
  const std::string ns = Namespace(inv, ctx);
  auto got = ctx.client.Get(api::kModelDeploymentsGvr, ns, inv.name);
  if (!got.ok()) return Fail(ctx, got.status(), Describe(inv, ns));
  const json& md = *got;
  const std::string phase = StatusString(md, "phase");
  const std::string stable = StatusString(md, "stableRevision");
  const std::string canary = StatusString(md, "canaryRevision");
  const bool rollout_running =
      !canary.empty() && !stable.empty() && phase != "RolledBack" && phase != "Healthy";

  const char* key = nullptr;
  json value;
  std::string done;
  std::string note;
  switch (inv.command) {
    case Command::kPromote:
      key = api::kPromoteAnnotation;
      value = inv.full ? "full" : "true";
      done = inv.full ? "canary " + canary +
                            " goes to 100% now, skipping the remaining steps and "
                            "analysis"
                      : "the current step of canary " + canary + " ends now";
      if (!rollout_running)
        note = "no rollout is in progress (phase " + phase + "); the operator will ignore it";
      break;
    case Command::kAbort:
      key = api::kAbortAnnotation;
      value = "true";
      done = "canary " + canary + " rolls back to " + stable;
      if (!rollout_running)
        note = "no rollout is in progress (phase " + phase + "); the operator will ignore it";
      break;
    case Command::kPause:
      key = api::kPauseAnnotation;
      if (AnnotationOf(md, key) == "true") {
        ctx.out << "modeldeployment \"" << inv.name << "\" is already paused (" << key
                << "=true)\n";
        return kExitOk;
      }
      value = "true";
      done = "the rollout holds at its current step until resumed";
      break;
    case Command::kResume:
      key = api::kPauseAnnotation;
      if (AnnotationOf(md, key).empty()) {
        ctx.out << "modeldeployment \"" << inv.name << "\" is not paused (" << key
                << " is not set)\n";
        return kExitOk;
      }
      value = nullptr;
      done = "the rollout continues";
      break;
    case Command::kRetry:
      key = api::kRetryAnnotation;
      value = "true";
      done = "revision " + canary + " rolls out again from the first step";
      if (phase != "RolledBack")
        note = "nothing was rolled back (phase " + phase + "); the operator will ignore it";
      break;
    default:
      return kExitUsage;
  }
  const json patch = {{"metadata", {{"annotations", {{key, value}}}}}};
  auto patched = ctx.client.Patch(api::kModelDeploymentsGvr, ns, inv.name, kube::PatchType::kMerge,
                                  patch.dump());
  if (!patched.ok()) return Fail(ctx, patched.status(), Describe(inv, ns));
  static const std::map<Command, const char*> kVerb = {{Command::kPromote, "promoted"},
                                                       {Command::kAbort, "aborted"},
                                                       {Command::kPause, "paused"},
                                                       {Command::kResume, "resumed"},
                                                       {Command::kRetry, "retried"}};
  ctx.out << "modeldeployment \"" << inv.name << "\" " << kVerb.at(inv.command) << ": ";
  if (note.empty()) {
    ctx.out << done;
  } else {
    ctx.out << "annotation set";
  }
  ctx.out << " (" << key << (value.is_null() ? " removed" : "=" + value.get<std::string>())
          << ")\n";
  if (!note.empty()) ctx.err << "note: " << note << "\n";
  return kExitOk;
}

}  // namespace

int Run(const Invocation& inv, RunContext& ctx) {
  switch (inv.command) {
    case Command::kGet:
      return RunGet(inv, ctx);
    case Command::kStatus:
      return RunStatus(inv, ctx);
    case Command::kHistory:
      return RunHistory(inv, ctx);
    case Command::kPromote:
    case Command::kAbort:
    case Command::kPause:
    case Command::kResume:
    case Command::kRetry:
      return RunControl(inv, ctx);
    case Command::kVersion:  // main answers it: only binaries link the version library
    case Command::kNone:
      break;
  }
  ctx.err << HelpText(Command::kNone);
  return kExitUsage;
}

}  // namespace sluice::kubectl_sluice
