#include "dataplane/router/proxy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <unordered_map>

namespace sluice::dataplane {

namespace http = boost::beast::http;

namespace {

std::atomic<uint64_t> g_next_proxy_id{1};

template <typename Fields>
void EraseHopByHop(Fields& fields) {
  // Headers named by Connection are hop-by-hop too (RFC 9110 section 7.6.1).
  const std::string connection(fields[http::field::connection]);
  if (!connection.empty()) {
    size_t pos = 0;
    while (pos <= connection.size()) {
      size_t end = connection.find(',', pos);
      if (end == std::string::npos) end = connection.size();
      std::string_view token(connection.data() + pos, end - pos);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
        token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (!token.empty()) fields.erase(token);
      pos = end + 1;
    }
  }
  for (http::field f :
       {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
        http::field::proxy_authenticate, http::field::proxy_authorization, http::field::te,
        http::field::trailer, http::field::transfer_encoding, http::field::upgrade}) {
    fields.erase(f);
  }
}

}  // namespace

HttpRequest MakeUpstreamRequest(const HttpRequest& request) {
  HttpRequest up(request);
  EraseHopByHop(up);
  up.erase(http::field::expect);  // the router already answered 100-continue to its client
  up.erase(http::field::content_length);
  up.version(11);
  up.keep_alive(true);
  up.prepare_payload();
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

class Proxy::PrimaryCall final : public UpstreamCallback {
 public:
  PrimaryCall(Proxy& proxy, Responder responder, std::shared_ptr<const RoutingTable> table,
              int revision, const Endpoint& endpoint)
      : proxy_(proxy),
        responder_(std::move(responder)),
        table_(std::move(table)),
        revision_(revision),
        endpoint_(endpoint),
        start_(std::chrono::steady_clock::now()) {}

  void OnUpstreamDone(UpstreamOutcome&& outcome) override {
    const auto& rev = table_->revision(revision_);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    proxy_.inflight_.fetch_sub(1, std::memory_order_relaxed);
    proxy_.metrics_.inflight().Decrement();
    if (rev.metrics != nullptr) rev.metrics->duration->Observe(elapsed.count());
    if (outcome.failure == UpstreamFailure::kNone) {
      if (rev.metrics != nullptr) {
        rev.metrics->CountRequest(ClassifyStatus(static_cast<int>(outcome.response.result_int())));
      }
      HttpResponse response = std::move(outcome.response);
      StripHopByHop(response);
      if (!proxy_.options_.revision_header.empty()) {
        response.set(proxy_.options_.revision_header, rev.name);
      }
      responder_.Send(std::move(response));
      return;
    }
    if (rev.metrics != nullptr) rev.metrics->CountRequest(CodeClass::kError);
    HttpStatus status = HttpStatus::bad_gateway;
    if (outcome.failure == UpstreamFailure::kTimeout) status = HttpStatus::gateway_timeout;
    if (outcome.failure == UpstreamFailure::kShutdown) status = HttpStatus::service_unavailable;
    const std::string message =
        fmt::format("revision {} endpoint {}: {}", rev.name, endpoint_.key, outcome.detail);
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("md={} rev={} {} {}", proxy_.options_.model_deployment, rev.name,
                    static_cast<int>(status), message);
    }
    responder_.SendError(status, message);
  }

 private:
  Proxy& proxy_;
  Responder responder_;
  std::shared_ptr<const RoutingTable> table_;
  const int revision_;
  const Endpoint& endpoint_;  // in table_, which this call keeps alive
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
  const int revision = table->PickRevision(sticky);
  if (revision < 0) {
    responder.SendError(
        HttpStatus::service_unavailable,
        fmt::format("no revision of {} has a ready endpoint", options_.model_deployment));
    return;
  }
  const Endpoint& endpoint = table->PickEndpoint(revision);
  ThreadState& ts = StateFor(responder.executor());
  auto upstream = std::make_shared<const HttpRequest>(MakeUpstreamRequest(request));
  const bool head = request.method() == HttpVerb::head;

  inflight_.fetch_add(1, std::memory_order_relaxed);
  metrics_.inflight().Increment();
  ts.pool->Send(
      endpoint, upstream, head,
      std::make_unique<PrimaryCall>(*this, std::move(responder), table, revision, endpoint));

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
