// sluice-kube-demo: shows the Kubernetes client at work against a real cluster. Lists namespaces
// and ConfigMaps, then watches ConfigMaps it creates, patches and deletes, printing each event,
// until it has seen --events of them.
//
//   sluice-kube-demo [--kubeconfig PATH] [--context NAME] [--namespace NS] [--create N]
//                    [--events N] [--timeout SECONDS]

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "kube/client.h"

namespace {

using sluice::Status;
using sluice::StatusCode;
using namespace sluice::kube;

struct Flags {
  std::string kubeconfig;
  std::string context;
  std::string ns;
  int create = 3;
  int events = 9;
  int timeout_seconds = 60;
};

const char* kLabel = "app.kubernetes.io/managed-by";
const char* kLabelValue = "sluice-kube-demo";

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--kubeconfig") {
      if (!value(&f->kubeconfig)) return false;
    } else if (a == "--context") {
      if (!value(&f->context)) return false;
    } else if (a == "--namespace" || a == "-n") {
      if (!value(&f->ns)) return false;
    } else if (a == "--create" || a == "--events" || a == "--timeout") {
      if (!value(&v)) return false;
      int n = std::atoi(v.c_str());
      if (n <= 0) return false;
      (a == "--create" ? f->create : a == "--events" ? f->events : f->timeout_seconds) = n;
    } else {
      return false;
    }
  }
  return true;
}

const char* TypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "?";
}

int Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "sluice-kube-demo: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: %s [--kubeconfig PATH] [--context NAME] [--namespace NS] [--create N] "
                 "[--events N] [--timeout SECONDS]\n",
                 argv[0]);
    return 2;
  }
  auto config = Config::Load(flags.kubeconfig, flags.context);
  if (!config.ok()) return Fail("loading config", config.status());
  const std::string ns = flags.ns.empty() ? config->default_namespace : flags.ns;
  auto created_client = Client::Create(*config);
  if (!created_client.ok()) return Fail("creating client", created_client.status());
  Client& client = **created_client;

  auto version = client.GetRaw("/version");
  if (!version.ok()) return Fail("GET /version", version.status());
  std::printf("server %s  version %s\n", config->server.c_str(),
              version->value("gitVersion", "?").c_str());

  auto namespaces = client.ListAll(resources::kNamespaces, "");
  if (!namespaces.ok()) return Fail("listing namespaces", namespaces.status());
  std::printf("namespaces (%zu):", (*namespaces)["items"].size());
  for (const auto& n : (*namespaces)["items"]) {
    std::printf(" %s", n["metadata"]["name"].get<std::string>().c_str());
  }
  std::printf("\n");

  ListOptions page;
  page.limit = 100;
  auto before = client.ListAll(resources::kConfigMaps, ns, page);
  if (!before.ok()) return Fail("listing configmaps in " + ns, before.status());
  std::printf("configmaps in %s (%zu):", ns.c_str(), (*before)["items"].size());
  for (const auto& c : (*before)["items"]) {
    std::printf(" %s", c["metadata"]["name"].get<std::string>().c_str());
  }
  std::printf("\nwatching configmaps in %s from resourceVersion %s\n", ns.c_str(),
              (*before)["metadata"]["resourceVersion"].get<std::string>().c_str());
  std::fflush(stdout);

  // Watch from the list's version, so every change after the list is seen even if the watch
  // connects after the first create.
  std::atomic<int> seen{0};
  CancelFlag cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  Status watch_status;      // guarded by mu
  bool watch_done = false;  // guarded by mu
  std::thread watcher([&] {
    Status result;
    WatchOptions w;
    w.label_selector = std::string(kLabel) + "=" + kLabelValue;
    w.resource_version = (*before)["metadata"]["resourceVersion"];
    w.timeout = std::chrono::seconds(flags.timeout_seconds);
    while (!cancel.load() && seen.load() < flags.events && result.ok()) {
      result = client.Watch(
          resources::kConfigMaps, ns, w,
          [&](WatchEvent&& e) {
            const std::string rv = e.object["metadata"].value("resourceVersion", "");
            w.resource_version = rv;
            if (e.type == WatchEventType::kBookmark) return true;
            std::printf("event %-8s configmap/%s rv=%s\n", TypeName(e.type),
                        e.object["metadata"].value("name", "").c_str(), rv.c_str());
            std::fflush(stdout);
            return ++seen < flags.events;
          },
          &cancel);
    }
    std::lock_guard<std::mutex> lock(mu);
    watch_status = result;
    watch_done = true;
    cv.notify_all();
  });

  const std::string prefix = "sluice-demo-" + std::to_string(::getpid()) + "-";
  Status work;
  for (int i = 0; i < flags.create && work.ok(); ++i) {
    Json cm = {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata", {{"name", prefix + std::to_string(i)}, {"labels", {{kLabel, kLabelValue}}}}},
        {"data", {{"step", "created"}}}};
    auto r = client.Create(resources::kConfigMaps, ns, cm);
    if (!r.ok()) work = r.status().Annotate("create");
  }
  for (int i = 0; i < flags.create && work.ok(); ++i) {
    auto r = client.Patch(resources::kConfigMaps, ns, prefix + std::to_string(i), PatchType::kMerge,
                          R"({"data":{"step":"patched"}})");
    if (!r.ok()) work = r.status().Annotate("patch");
  }
  for (int i = 0; i < flags.create; ++i) {
    Status s = client.Delete(resources::kConfigMaps, ns, prefix + std::to_string(i));
    if (!s.ok() && s.code() != StatusCode::kNotFound && work.ok()) work = s.Annotate("delete");
  }

  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(flags.timeout_seconds), [&] { return watch_done; });
  }
  cancel.store(true);
  watcher.join();
  if (!work.ok()) return Fail("writing configmaps", work);
  if (seen.load() < flags.events) {
    return Fail("watch", watch_status.ok()
                             ? sluice::Timeout("saw " + std::to_string(seen.load()) + " of " +
                                               std::to_string(flags.events) + " events")
                             : watch_status);
  }
  std::printf("saw %d events\n", seen.load());
  return 0;
}
