#include "lib/kube/watcher.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace sluice::kube {

std::string_view WatcherStateName(WatcherState state) {
  switch (state) {
    case WatcherState::kInitialList:
      return "InitialList";
    case WatcherState::kWatching:
      return "Watching";
    case WatcherState::kBackoff:
      return "Backoff";
    case WatcherState::kStopped:
      return "Stopped";
  }
  return "Unknown";
}

std::string_view WatcherEventTypeName(WatcherEventType type) {
  switch (type) {
    case WatcherEventType::kAdded:
      return "Added";
    case WatcherEventType::kModified:
      return "Modified";
    case WatcherEventType::kDeleted:
      return "Deleted";
    case WatcherEventType::kRestarted:
      return "Restarted";
    case WatcherEventType::kBookmark:
      return "Bookmark";
  }
  return "Unknown";
}

namespace {

// The Status carried by a watch ERROR event ({"kind":"Status","code":410,...}).
Status StatusFromErrorEvent(const Json& object) {
  int code = 0;
  std::string message = "watch error event";
  std::string reason;
  if (object.is_object()) {
    if (auto c = object.find("code"); c != object.end() && c->is_number_integer()) {
      code = c->get<int>();
    }
    if (auto m = object.find("message"); m != object.end() && m->is_string()) {
      message = m->get<std::string>();
    }
    if (auto r = object.find("reason"); r != object.end() && r->is_string()) {
      reason = r->get<std::string>();
    }
  }
  Status status(code == 410 ? StatusCode::kGone : StatusCode::kUnavailable, message);
  status.WithHttpStatus(code);
  if (!reason.empty()) status.WithReason(reason);
  return status;
}

// List items carry no apiVersion/kind; fill them from the list so consumers see the same shape
// as in watch events.
void FillTypeMeta(Json& item, const std::string& api_version, const std::string& kind) {
  if (!item.is_object()) return;
  if (!api_version.empty() && !item.contains("apiVersion")) item["apiVersion"] = api_version;
  if (!kind.empty() && !item.contains("kind")) item["kind"] = kind;
}

std::string StringField(const Json& object, const char* field) {
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Watcher::Watcher(std::unique_ptr<ListerWatcher> source, WatcherSink sink, WatcherOptions options)
    : source_(std::move(source)),
      sink_(std::move(sink)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()),
      backoff_(options_.backoff),
      rng_(options_.backoff.seed != 0 ? options_.backoff.seed + 1 : std::random_device{}()) {}

Watcher::~Watcher() {
  Stop();
}

void Watcher::Run() {
  while (!stopping_.load()) {
    WatcherState state;
    {
      std::lock_guard<std::mutex> lock(mu_);
      state = state_;
    }
    switch (state) {
      case WatcherState::kInitialList:
        ListStep();
        break;
      case WatcherState::kWatching:
        WatchStep();
        break;
      case WatcherState::kBackoff:
        BackoffStep();
        break;
      case WatcherState::kStopped:
        return;
    }
  }
  Transition(WatcherState::kStopped, Cancelled("watcher stopped"));
}

void Watcher::Stop() {
  stopping_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  wake_.notify_all();
}

WatcherState Watcher::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

std::string Watcher::resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

void Watcher::SetResourceVersion(std::string rv) {
  if (rv.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  resource_version_ = std::move(rv);
}

ObjectPtr Watcher::Share(Json&& object) {
  if (options_.transform) options_.transform(object);
  return std::make_shared<const Json>(std::move(object));
}

void Watcher::Transition(WatcherState to, const Status& cause, std::chrono::nanoseconds backoff) {
  WatcherTransition t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    t = {state_, to, cause, backoff, resource_version_};
    state_ = to;
  }
  if (to == WatcherState::kBackoff) {
    spdlog::warn("watcher {}: {} -> Backoff for {} ms: {}", options_.name, WatcherStateName(t.from),
                 std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count(),
                 cause.ToString());
  } else if (!cause.ok() && to != WatcherState::kStopped) {
    spdlog::info("watcher {}: {} -> {} at rv {}: {}", options_.name, WatcherStateName(t.from),
                 WatcherStateName(to), t.resource_version, cause.ToString());
  } else {
    spdlog::debug("watcher {}: {} -> {} at rv {}", options_.name, WatcherStateName(t.from),
                  WatcherStateName(to), t.resource_version);
  }
  if (options_.on_transition) options_.on_transition(t);
}

void Watcher::FailTo(WatcherState next, const Status& cause) {
  const auto delay = backoff_.Next(clock_.Now());
  after_backoff_ = next;
  backoff_until_ = clock_.Now() + std::chrono::duration_cast<Clock::Steady::duration>(delay);
  Transition(WatcherState::kBackoff, cause, delay);
}

Result<Watcher::ListResult> Watcher::ListAllPages() {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  list_options.field_selector = options_.field_selector;
  list_options.limit = options_.page_size;
  ListResult result;
  while (true) {
    if (stopping_.load()) return Cancelled("watcher stopped");
    Result<Json> page = source_->List(list_options);
    if (!page.ok()) {
      // An expired continue token: the snapshot is gone, so start the whole list again.
      if (page.status().code() == StatusCode::kGone && !list_options.continue_token.empty()) {
        result = ListResult();
        list_options.continue_token.clear();
        continue;
      }
      return page.status();
    }
    Json& list = *page;
    std::string next_token;
    if (auto meta = list.find("metadata"); meta != list.end() && meta->is_object()) {
      // Every page is consistent with the first page's snapshot.
      if (result.resource_version.empty()) {
        result.resource_version = StringField(*meta, "resourceVersion");
      }
      next_token = StringField(*meta, "continue");
    }
    std::string kind = StringField(list, "kind");
    if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0) {
      kind.resize(kind.size() - 4);
    } else {
      kind.clear();
    }
    const std::string api_version = StringField(list, "apiVersion");
    if (auto items = list.find("items"); items != list.end() && items->is_array()) {
      result.objects.reserve(result.objects.size() + items->size());
      for (auto& item : *items) {
        FillTypeMeta(item, api_version, kind);
        result.objects.push_back(Share(std::move(item)));
      }
    }
    if (next_token.empty()) break;
    list_options.continue_token = std::move(next_token);
  }
  if (result.resource_version.empty()) {
    return Internal("list answer has no metadata.resourceVersion");
  }
  return result;
}

void Watcher::ListStep() {
  Result<ListResult> listed = ListAllPages();
  if (stopping_.load()) return;
  if (!listed.ok()) {
    FailTo(WatcherState::kInitialList, listed.status().Annotate("list"));
    return;
  }
  SetResourceVersion(listed->resource_version);
  WatcherEvent event{WatcherEventType::kRestarted, nullptr, std::move(listed->objects),
                     listed->resource_version};
  sink_(std::move(event));
  Transition(WatcherState::kWatching, Status::Ok());
}

void Watcher::WatchStep() {
  WatchOptions watch_options;
  watch_options.label_selector = options_.label_selector;
  watch_options.field_selector = options_.field_selector;
  watch_options.resource_version = resource_version();
  watch_options.allow_bookmarks = true;
  if (options_.watch_timeout.count() > 0) {
    std::uniform_int_distribution<int64_t> spread(0, options_.watch_timeout.count() - 1);
    watch_options.timeout = options_.watch_timeout + std::chrono::seconds(spread(rng_));
  }

  const auto started = clock_.Now();
  size_t delivered = 0;
  Status event_error;
  Status status = source_->Watch(
      watch_options,
      [&](WatchEvent&& event) {
        if (stopping_.load()) return false;
        if (event.type == WatchEventType::kError) {
          event_error = StatusFromErrorEvent(event.object);
          return false;
        }
        std::string rv = ResourceVersionOf(event.object);
        WatcherEvent out;
        switch (event.type) {
          case WatchEventType::kAdded:
            out.type = WatcherEventType::kAdded;
            break;
          case WatchEventType::kModified:
            out.type = WatcherEventType::kModified;
            break;
          case WatchEventType::kDeleted:
            out.type = WatcherEventType::kDeleted;
            break;
          case WatchEventType::kBookmark:
            out.type = WatcherEventType::kBookmark;
            break;
          case WatchEventType::kError:
            return false;
        }
        SetResourceVersion(rv);
        out.resource_version = resource_version();
        out.object = out.type == WatcherEventType::kBookmark
                         ? std::make_shared<const Json>(std::move(event.object))
                         : Share(std::move(event.object));
        ++delivered;
        gone_without_progress_ = 0;
        sink_(std::move(out));
        return true;
      },
      &stopping_);
  if (stopping_.load()) return;
  if (!event_error.ok()) status = event_error;

  if (status.code() == StatusCode::kGone) {
    // The resourceVersion is too old: only a relist can tell what changed. A second 410 with no
    // progress in between means relisting does not help right now, so back off first.
    if (gone_without_progress_++ == 0) {
      Transition(WatcherState::kInitialList, status);
    } else {
      FailTo(WatcherState::kInitialList, status);
    }
    return;
  }
  if (!status.ok()) {
    FailTo(WatcherState::kWatching, status.Annotate("watch"));
    return;
  }
  if (delivered == 0 && clock_.Now() - started < options_.min_watch_duration) {
    FailTo(WatcherState::kWatching, Unavailable("watch closed at once without events"));
    return;
  }
  // A clean close (server-side timeout): resume from the last resourceVersion.
  Transition(WatcherState::kWatching, Status::Ok());
}

void Watcher::BackoffStep() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_.load() && clock_.Now() < backoff_until_) {
      clock_.WaitUntil(wake_, lock, backoff_until_);
    }
  }
  if (stopping_.load()) return;
  Transition(after_backoff_, Status::Ok());
}

}  // namespace sluice::kube
