#include "dataplane/router/proxy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <vector>

#include "lib/api/metric_names.h"
#include "lib/http/wire.h"

namespace sluice::dataplane {

namespace http = boost::beast::http;

namespace {

std::atomic<uint64_t> g_next_proxy_id{1};

constexpr http::field kHopByHop[] = {http::field::connection,
                                     http::field::keep_alive,
                                     http::field::proxy_connection,
                                     http::field::proxy_authenticate,
                                     http::field::proxy_authorization,
                                     http::field::te,
                                     http::field::trailer,
                                     http::field::transfer_encoding,
                                     http::field::upgrade};

// The field names a Connection header lists (views into `connection`): hop-by-hop too (RFC 9110
// section 7.6.1).
std::vector<std::string_view> ConnectionTokens(std::string_view connection) {
  std::vector<std::string_view> tokens;
  size_t pos = 0;
  while (!connection.empty() && pos <= connection.size()) {
    size_t end = connection.find(',', pos);
    if (end == std::string_view::npos) end = connection.size();
    std::string_view token = connection.substr(pos, end - pos);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (!token.empty()) tokens.push_back(token);
    pos = end + 1;
  }
  return tokens;
}

template <typename Fields>
void EraseHopByHop(Fields& fields) {
  // A copy: erasing a field the value names could free the value itself.
  const std::string connection(fields[http::field::connection]);
  for (std::string_view token : ConnectionTokens(connection)) fields.erase(token);
  for (http::field f : kHopByHop) fields.erase(f);
}

}  // namespace

// The client's request as it goes to a backend, formatted once: method, target and fields as
// they came, minus the hop-by-hop ones, Expect (the router already answered 100-continue) and
// Content-Length (set from the body as read, which also replaces a chunked encoding); HTTP/1.1,
// whose default keeps the connection alive.
UpstreamRequest MakeUpstreamRequest(const HttpRequest& request) {
  const std::vector<std::string_view> tokens = ConnectionTokens(request[http::field::connection]);
  UpstreamRequest up;
  std::string& out = up.bytes;
  out.reserve(512 + request.target().size() + request.body().size());
  AppendRequestLine(request.method_string(), request.target(), 11, out);
  for (const auto& f : request) {
    const http::field name = f.name();
    if (name == http::field::expect || name == http::field::content_length) continue;
    if (std::find(std::begin(kHopByHop), std::end(kHopByHop), name) != std::end(kHopByHop))
      continue;
    const std::string_view n = f.name_string();
    if (std::any_of(tokens.begin(), tokens.end(),
                    [&](std::string_view t) { return boost::beast::iequals(t, n); })) {
      continue;
    }
    AppendField(n, f.value(), out);
  }
  // As Beast's prepare_payload: a length when there is a body or the method expects one.
  const HttpVerb m = request.method();
  if (!request.body().empty() || m == HttpVerb::post || m == HttpVerb::put ||
      m == HttpVerb::patch || m == HttpVerb::options) {
    AppendField("Content-Length", std::to_string(request.body().size()), out);
  }
  out.append("\r\n");
  out.append(request.body());
  return up;
}

void StripHopByHop(HttpResponse& response) {
  EraseHopByHop(response);
  response.erase(http::field::content_length);
}

// Per io thread: the upstream pool and the count of mirrored copies in flight.
struct Proxy::ThreadState {
  std::shared_ptr<UpstreamPool> pool;
  size_t mirror_inflight = 0;
};

std::unordered_map<uint64_t, std::unique_ptr<Proxy::ThreadState>>& Proxy::ThreadStates() {
  thread_local std::unordered_map<uint64_t, std::unique_ptr<Proxy::ThreadState>> states;
  return states;
}

Proxy::ThreadState& Proxy::StateFor(const boost::asio::any_io_executor& executor) {
  auto& states = ThreadStates();
  auto it = states.find(id_);
  if (it != states.end()) return *it->second;
  auto st = std::make_unique<ThreadState>();
  st->pool = UpstreamPool::Create(executor, options_.upstream);
  return *states.emplace(id_, std::move(st)).first->second;
}

// One primary request: the attempt on the picked revision and, when that was a canary that
// failed, the one retry on the stable revision (a second PrimaryCall that takes over the
// responder). Counts each attempt in its revision's series; answers the caller once.
class Proxy::PrimaryCall final : public UpstreamCallback {
 public:
  struct Attempt {
    std::shared_ptr<const RoutingTable> table;
    int revision = -1;
    const Endpoint* endpoint = nullptr;  // in table, which the call keeps alive
    int retried_from = -1;               // >= 0: this is the retry of that revision's failure
    bool reconnected = false;            // sent again after a kept-alive connection was closed
  };

  PrimaryCall(Proxy& proxy, ThreadState& state, Responder responder, Attempt attempt,
              std::shared_ptr<const UpstreamRequest> request, bool head,
              std::chrono::steady_clock::time_point request_start)
      : proxy_(proxy),
        state_(state),
        responder_(std::move(responder)),
        attempt_(std::move(attempt)),
        request_(std::move(request)),
        head_(head),
        request_start_(request_start),
        start_(std::chrono::steady_clock::now()) {}

  void OnUpstreamDone(UpstreamOutcome&& outcome) override {
    const RoutingTable& table = *attempt_.table;
    const auto& rev = table.revision(attempt_.revision);
    const auto now = std::chrono::steady_clock::now();
    // The backend had closed the connection the request went on and never saw it: not an answer
    // of the revision's, so it is sent again, once, on a new connection before anything counts.
    if (outcome.closed_before_answer && !attempt_.reconnected && Reconnect(table, rev, now)) return;
    const std::chrono::duration<double> elapsed = now - start_;
    const CodeClass code = outcome.failure == UpstreamFailure::kNone
                               ? ClassifyStatus(static_cast<int>(outcome.response.result_int()))
                               : CodeClass::kError;
    const bool failed = code == CodeClass::k5xx || code == CodeClass::kError;
    if (rev.metrics != nullptr) {
      rev.metrics->duration->Observe(elapsed.count());
      rev.metrics->CountRequest(code);
    }
    if (attempt_.retried_from >= 0) {
      proxy_.metrics_
          .Retry(table.revision(attempt_.retried_from).name, rev.name, CodeClassLabel(code))
          .Increment();
    } else {
      if (rev.guard && rev.guard->Record(failed, now)) LogTripped(rev);
      if (failed && outcome.failure != UpstreamFailure::kShutdown && Retry(table, rev, now)) {
        return;
      }
    }
    proxy_.inflight_.fetch_sub(1, std::memory_order_relaxed);
    proxy_.metrics_.inflight().Decrement();
    if (outcome.failure == UpstreamFailure::kNone) {
      HttpResponse response = std::move(outcome.response);
      StripHopByHop(response);
      if (!proxy_.options_.revision_header.empty()) {
        response.set(proxy_.options_.revision_header, rev.name);
      }
      responder_.Send(std::move(response));
      return;
    }
    HttpStatus status = HttpStatus::bad_gateway;
    if (outcome.failure == UpstreamFailure::kTimeout) status = HttpStatus::gateway_timeout;
    if (outcome.failure == UpstreamFailure::kShutdown) status = HttpStatus::service_unavailable;
    const std::string message = fmt::format("revision {} endpoint {}: {}", rev.name,
                                            attempt_.endpoint->key, outcome.detail);
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("md={} rev={} {} {}", proxy_.options_.model_deployment, rev.name,
                    static_cast<int>(status), message);
    }
    responder_.SendError(status, message);
  }

 private:
  void LogTripped(const RoutingTable::Revision& rev) const {
    const auto [requests, errors] = rev.guard->Counts(std::chrono::steady_clock::now());
    spdlog::warn(
        "md={} rev={} canary guard tripped: {} errors in the last {} requests; its requests go "
        "to the stable revision until the weights change",
        proxy_.options_.model_deployment, rev.name, errors, requests);
  }

  bool Reconnect(const RoutingTable& table, const RoutingTable::Revision& rev,
                 std::chrono::steady_clock::time_point now) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        proxy_.options_.upstream.request_timeout - (now - request_start_));
    if (left.count() < 1) return false;
    if (rev.metrics != nullptr) rev.metrics->reconnects->Increment();
    Attempt again = attempt_;
    again.endpoint = &table.PickEndpoint(attempt_.revision);
    again.reconnected = true;
    const Endpoint& endpoint = *again.endpoint;
    state_.pool->Send(
        endpoint, request_, head_,
        std::make_unique<PrimaryCall>(proxy_, state_, std::move(responder_), std::move(again),
                                      request_, head_, request_start_),
        left, /*new_connection=*/true);
    return true;
  }

  // Sends the request once more to the stable revision when this attempt was a canary's and the
  // budget and the time left allow; true when the retry took over the answer.
  bool Retry(const RoutingTable& table, const RoutingTable::Revision& rev,
             std::chrono::steady_clock::time_point now) {
    const int target = table.RetryTarget(attempt_.revision);
    if (target < 0) return false;
    const std::string& to = table.revision(target).name;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        proxy_.options_.upstream.request_timeout - (now - request_start_));
    if (left.count() < 1) {
      proxy_.metrics_.Retry(rev.name, to, api::kRetryExpired).Increment();
      return false;
    }
    if (!proxy_.budget_->TryWithdraw()) {
      proxy_.metrics_.Retry(rev.name, to, api::kRetryDenied).Increment();
      return false;
    }
    Attempt retry{attempt_.table, target, &table.PickEndpoint(target), attempt_.revision};
    const Endpoint& endpoint = *retry.endpoint;
    state_.pool->Send(
        endpoint, request_, head_,
        std::make_unique<PrimaryCall>(proxy_, state_, std::move(responder_), std::move(retry),
                                      request_, head_, request_start_),
        left);
    return true;
  }

  Proxy& proxy_;
  ThreadState& state_;
  Responder responder_;
  Attempt attempt_;
  std::shared_ptr<const UpstreamRequest> request_;  // kept for a retry; shared, never copied
  const bool head_;
  const std::chrono::steady_clock::time_point request_start_;
  const std::chrono::steady_clock::time_point start_;
};

class Proxy::MirrorCall final : public UpstreamCallback {
 public:
  MirrorCall(ThreadState& state, std::shared_ptr<const RoutingTable> table, int revision)
      : state_(state), table_(std::move(table)), revision_(revision) {}

  void OnUpstreamDone(UpstreamOutcome&& outcome) override {
    --state_.mirror_inflight;
    const auto& rev = table_->revision(revision_);
    if (rev.metrics == nullptr) return;
    rev.metrics->CountMirror(outcome.failure == UpstreamFailure::kNone
                                 ? ClassifyStatus(static_cast<int>(outcome.response.result_int()))
                                 : CodeClass::kError);
  }

 private:
  ThreadState& state_;
  std::shared_ptr<const RoutingTable> table_;
  const int revision_;
};

Proxy::Proxy(ProxyOptions options, const RoutingState& state, RouterMetrics& metrics)
    : options_(std::move(options)),
      state_(state),
      metrics_(metrics),
      budget_(options_.retry_budget ? options_.retry_budget : std::make_shared<RetryBudget>()),
      id_(g_next_proxy_id.fetch_add(1)) {}

Proxy::~Proxy() = default;

void Proxy::Register(HttpRouter& router) {
  for (HttpVerb verb : {HttpVerb::get, HttpVerb::head, HttpVerb::post, HttpVerb::put,
                        HttpVerb::patch, HttpVerb::delete_, HttpVerb::options}) {
    router.HandlePrefix(verb, "/", [this](const HttpRequest& request, Responder responder) {
      Handle(request, std::move(responder));
    });
  }
}

void Proxy::Handle(const HttpRequest& request, Responder responder) {
  std::shared_ptr<const RoutingTable> table = state_.Load();
  if (!table || !table->routable()) {
    responder.SendError(
        HttpStatus::service_unavailable,
        fmt::format("no revision of {} has a ready endpoint", options_.model_deployment));
    return;
  }
  std::string_view sticky;
  if (!table->sticky_header().empty()) sticky = request[table->sticky_header()];
  const int revision = table->Route(sticky);
  if (revision < 0) {
    responder.SendError(
        HttpStatus::service_unavailable,
        fmt::format("no revision of {} has a ready endpoint", options_.model_deployment));
    return;
  }
  const Endpoint& endpoint = table->PickEndpoint(revision);
  ThreadState& ts = StateFor(responder.executor());
  auto upstream = std::make_shared<const UpstreamRequest>(MakeUpstreamRequest(request));
  const bool head = request.method() == HttpVerb::head;

  inflight_.fetch_add(1, std::memory_order_relaxed);
  metrics_.inflight().Increment();
  budget_->Deposit();
  ts.pool->Send(endpoint, upstream, head,
                std::make_unique<PrimaryCall>(*this, ts, std::move(responder),
                                              PrimaryCall::Attempt{table, revision, &endpoint, -1},
                                              upstream, head, std::chrono::steady_clock::now()));

  // Copies go out after the primary is on its way, so they never delay it.
  const auto& revisions = table->revisions();
  for (size_t i = 0; i < revisions.size(); ++i) {
    const RoutingTable::Revision& r = *revisions[i];
    if (static_cast<int>(i) == revision || !r.mirror || !r.mirror->Take()) continue;
    if (ts.mirror_inflight >= options_.max_mirror_inflight) {
      if (r.metrics != nullptr) r.metrics->mirror_dropped->Increment();
      continue;
    }
    ++ts.mirror_inflight;
    ts.pool->Send(table->PickEndpoint(static_cast<int>(i)), upstream, head,
                  std::make_unique<MirrorCall>(ts, table, static_cast<int>(i)));
  }
}

void Proxy::OnIoThreadStop() {
  auto& states = ThreadStates();
  auto it = states.find(id_);
  if (it == states.end()) return;
  it->second->pool->Shutdown();
  // The state stays until the thread ends: mirror calls still queued refer to it.
}

}  // namespace sluice::dataplane
