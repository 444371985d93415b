#include "dataplane/server/feature_enricher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "dataplane/features/redis_client.h"

namespace sluice::dataplane {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::atomic<uint64_t> next_enricher_id{1};

// The Redis clients of the calling thread, per enricher and connection. Each thread talks to
// Redis on its own connection, so a request never waits for another thread.
struct ThreadClients {
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<features::RedisClient>>> by_enricher;
};
thread_local ThreadClients tls_clients;

}  // namespace

Result<std::unique_ptr<FeatureEnricher>> FeatureEnricher::Create(
    const FeatureEnricherOptions& options, std::vector<std::string> model_features,
    ServerMetrics::Features& metrics, Clock& clock) {
  if (options.budget.count() < 0) return InvalidArgument("the feature budget must not be negative");
  if (metrics.views.size() != options.views.size()) {
    return InvalidArgument("feature metrics: one series per view is required");
  }
  std::vector<api::RedisConnection> connections;
  std::vector<size_t> view_conn;
  for (const auto& v : options.views) {
    auto c = v.ResolveRedis();
    if (!c.ok()) return c.status().Annotate("feature view " + v.name);
    auto it = std::find(connections.begin(), connections.end(), *c);
    view_conn.push_back(static_cast<size_t>(it - connections.begin()));
    if (it == connections.end()) connections.push_back(std::move(c).value());
  }
  ASSIGN_OR_RETURN(FeaturePlan plan, FeaturePlan::Create(std::move(model_features), options.views,
                                                         options.model_input));
  return std::unique_ptr<FeatureEnricher>(new FeatureEnricher(
      options, std::move(plan), std::move(connections), std::move(view_conn), metrics, clock));
}

FeatureEnricher::FeatureEnricher(const FeatureEnricherOptions& options, FeaturePlan plan,
                                 std::vector<api::RedisConnection> connections,
                                 std::vector<size_t> view_conn, ServerMetrics::Features& metrics,
                                 Clock& clock)
    : options_(options),
      plan_(std::move(plan)),
      connections_(std::move(connections)),
      views_(new ViewState[view_conn.size()]),
      metrics_(metrics),
      clock_(clock),
      id_(next_enricher_id.fetch_add(1)) {
  for (size_t v = 0; v < view_conn.size(); ++v) views_[v].connection = view_conn[v];
}

// Clients other threads made for this enricher stay with those threads until they exit (the
// server has one enricher for its whole life); the id keeps a later enricher from using them.
FeatureEnricher::~FeatureEnricher() {
  tls_clients.by_enricher.erase(id_);
}

void FeatureEnricher::LogTrouble(size_t view, const std::string& what) {
  ViewState& s = views_[view];
  const int64_t now = SteadyClock::now().time_since_epoch().count();
  int64_t next = s.next_log_ns.load(std::memory_order_relaxed);
  if (now < next || !s.next_log_ns.compare_exchange_strong(
                        next, now + std::chrono::nanoseconds(std::chrono::seconds(1)).count())) {
    s.suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint64_t more = s.suppressed.exchange(0, std::memory_order_relaxed);
  spdlog::warn(
      "model={} view={} online features: {}; serving defaults ({} more since the last "
      "line)",
      options_.model_name, plan_.views()[view].config.name, what, more);
}

void FeatureEnricher::Fetch(FeaturePlan::Bound& bound, std::vector<FeatureCounts>& counts) {
  const size_t columns = plan_.features().size();
  const auto deadline = SteadyClock::now() + options_.budget;
  const auto now_wall = clock_.WallNow();
  auto& clients = tls_clients.by_enricher[id_];
  if (clients.empty()) {
    for (const auto& c : connections_) {
      clients.push_back(std::make_unique<features::RedisClient>(c));
    }
  }
  std::vector<features::RedisCommand> commands;
  // (index into bound.fetch, row) of each command of the exchange in progress.
  std::vector<std::pair<size_t, size_t>> slots;
  for (size_t c = 0; c < connections_.size(); ++c) {
    commands.clear();
    slots.clear();
    for (size_t i = 0; i < bound.fetch.size(); ++i) {
      const size_t v = bound.fetch[i];
      if (views_[v].connection != c) continue;
      for (size_t r = 0; r < bound.rows; ++r) {
        commands.emplace_back();
        plan_.AppendHmget(v, bound.keys[i][r], commands.back());
        slots.emplace_back(i, r);
      }
    }
    if (commands.empty()) continue;
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - SteadyClock::now());
    Result<std::vector<features::RedisReply>> replies =
        left.count() > 0 ? clients[c]->Pipeline(commands, left)
                         : Result<std::vector<features::RedisReply>>(
                               Unavailable("the feature budget was spent before this fetch"));
    if (!replies.ok()) {
      const bool timed_out = SteadyClock::now() >= deadline;
      for (size_t i = 0; i < bound.fetch.size(); ++i) {
        const size_t v = bound.fetch[i];
        if (views_[v].connection != c) continue;
        auto& m = metrics_.views[v];
        (timed_out ? m.redis_timeouts : m.redis_errors)->Increment();
        for (size_t r = 0; r < bound.rows; ++r) plan_.Unfetched(v, bound.provided, counts[v]);
        LogTrouble(v, std::string(timed_out ? "timed out: " : "") + replies.status().message());
      }
      continue;
    }
    for (size_t k = 0; k < slots.size(); ++k) {
      const auto [i, r] = slots[k];
      const size_t v = bound.fetch[i];
      std::span<float> row(bound.values.data() + r * columns, columns);
      const uint64_t malformed_before = counts[v][static_cast<size_t>(FeatureResult::kMalformed)];
      plan_.Fill(v, (*replies)[k], now_wall, bound.provided, row, counts[v]);
      if (counts[v][static_cast<size_t>(FeatureResult::kMalformed)] != malformed_before) {
        LogTrouble(v, "malformed value or reply for a key in Redis " + connections_[c].Describe());
      }
    }
  }
}

Status FeatureEnricher::Enrich(InferRequest& request) {
  ASSIGN_OR_RETURN(FeaturePlan::Bound bound, plan_.Bind(request));
  if (bound.plain) return Status::Ok();
  if (!bound.fetch.empty() && bound.rows > 0) {
    std::vector<FeatureCounts> counts(plan_.views().size(), FeatureCounts{});
    const auto start = SteadyClock::now();
    if (options_.budget.count() > 0) {
      Fetch(bound, counts);
    } else {
      for (size_t v : bound.fetch) {
        for (size_t r = 0; r < bound.rows; ++r) plan_.Unfetched(v, bound.provided, counts[v]);
      }
    }
    metrics_.fetch_duration->Observe(
        std::chrono::duration<double>(SteadyClock::now() - start).count());
    for (size_t v : bound.fetch) {
      for (size_t k = 0; k < kFeatureResults; ++k) {
        if (counts[v][k] != 0)
          metrics_.views[v].values[k]->Increment(static_cast<double>(counts[v][k]));
      }
    }
  }
  const size_t columns = plan_.features().size();
  Tensor rows(options_.model_input, DataType::kFp32,
              {static_cast<int64_t>(bound.rows), static_cast<int64_t>(columns)});
  rows.mutable_bytes().assign(reinterpret_cast<const char*>(bound.values.data()),
                              bound.values.size() * sizeof(float));
  request.inputs.clear();
  request.inputs.push_back(std::move(rows));
  return Status::Ok();
}

}  // namespace sluice::dataplane
