#include "dataplane/router/routing_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace sluice::dataplane {

using nlohmann::json;

Endpoint MakeEndpoint(const std::string& ip, uint16_t port, uint16_t grpc_port) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(ip, ec);
  if (ec) return {};
  const std::string host = addr.to_string();
  Endpoint e;
  e.address = boost::asio::ip::tcp::endpoint(addr, port);
  e.key = addr.is_v6() ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
  if (grpc_port != 0) {
    e.grpc_port = grpc_port;
    e.grpc_target = addr.is_v6() ? fmt::format("ipv6:[{}]:{}", host, grpc_port)
                                 : fmt::format("ipv4:{}:{}", host, grpc_port);
  }
  return e;
}

namespace {

bool BoolCondition(const json& conditions, const char* name, bool absent) {
  auto it = conditions.find(name);
  if (it == conditions.end() || !it->is_boolean()) return absent;
  return it->get<bool>();
}

int NamedPort(const json& slice, std::string_view name, int fallback);

int SlicePort(const json& slice, uint16_t fallback) {
  if (int port = NamedPort(slice, "http", -1); port != -1) return port;
  auto ports = slice.find("ports");
  if (ports == slice.end() || !ports->is_array()) return fallback;
  if (ports->size() == 1) {
    const auto& p = (*ports)[0];
    if (p.is_object() && p.value("name", "").empty() && p.contains("port") &&
        p["port"].is_number_integer()) {
      return p["port"].get<int>();
    }
  }
  return fallback;
}

int NamedPort(const json& slice, std::string_view name, int fallback) {
  auto ports = slice.find("ports");
  if (ports == slice.end() || !ports->is_array()) return fallback;
  for (const auto& p : *ports) {
    if (p.is_object() && p.value("name", "") == name && p.contains("port") &&
        p["port"].is_number_integer()) {
      return p["port"].get<int>();
    }
  }
  return fallback;
}

// An endpoint listed twice (two slices while they are rebalanced) is kept once, with its gRPC
// port if either listing has one.
void Add(std::set<Endpoint>& endpoints, Endpoint e) {
  auto [it, inserted] = endpoints.insert(e);
  if (!inserted && it->grpc_port == 0 && e.grpc_port != 0) {
    endpoints.erase(it);
    endpoints.insert(std::move(e));
  }
}

bool HttpPortIsTls(const json& slice) {
  auto ports = slice.find("ports");
  if (ports == slice.end() || !ports->is_array()) return false;
  for (const auto& p : *ports) {
    if (p.is_object() && p.value("name", "") == "http") {
      return p.value("appProtocol", "") == "https";
    }
  }
  return false;
}

}  // namespace

std::vector<Endpoint> EndpointsFromSlices(const std::vector<const json*>& slices,
                                          uint16_t fallback_port, uint16_t fallback_grpc_port) {
  std::set<Endpoint> ready;
  std::set<Endpoint> terminating;
  for (const json* slice_ptr : slices) {
    if (slice_ptr == nullptr || !slice_ptr->is_object()) continue;
    const json& slice = *slice_ptr;
    const std::string type = slice.value("addressType", "");
    if (type != "IPv4" && type != "IPv6") continue;
    const int port = SlicePort(slice, fallback_port);
    if (port <= 0 || port > 65535) continue;
    int grpc_port = NamedPort(slice, "grpc", fallback_grpc_port);
    if (grpc_port < 0 || grpc_port > 65535) grpc_port = 0;
    const bool tls = HttpPortIsTls(slice);
    auto eps = slice.find("endpoints");
    if (eps == slice.end() || !eps->is_array()) continue;
    for (const auto& ep : *eps) {
      if (!ep.is_object()) continue;
      auto addrs = ep.find("addresses");
      if (addrs == ep.end() || !addrs->is_array() || addrs->empty() || !(*addrs)[0].is_string()) {
        continue;
      }
      Endpoint e = MakeEndpoint((*addrs)[0].get<std::string>(), static_cast<uint16_t>(port),
                                static_cast<uint16_t>(grpc_port));
      if (e.key.empty()) continue;
      e.tls = tls;
      static const json kNoConditions = json::object();
      auto cit = ep.find("conditions");
      const json& conditions = cit != ep.end() && cit->is_object() ? *cit : kNoConditions;
      const bool is_ready = BoolCondition(conditions, "ready", true);
      const bool serving = BoolCondition(conditions, "serving", is_ready);
      const bool is_terminating = BoolCondition(conditions, "terminating", false);
      if (is_ready) {
        Add(ready, std::move(e));
      } else if (serving && is_terminating) {
        Add(terminating, std::move(e));
      }
    }
  }
  const auto& chosen = ready.empty() ? terminating : ready;
  return std::vector<Endpoint>(chosen.begin(), chosen.end());
}

namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(sep, pos);
    if (end == std::string_view::npos) end = s.size();
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

bool ParseNumber(std::string_view s, int64_t min, int64_t max, int64_t& out) {
  if (s.empty() || s.size() > 9) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return false;
  out = v;
  return true;
}

}  // namespace

Result<StaticTraffic> ParseStaticTraffic(std::string_view spec) {
  StaticTraffic out;
  for (std::string_view entry : Split(spec, ';')) {
    const std::string e(entry);
    const size_t eq = entry.find('=');
    const size_t at = entry.find('@');
    if (eq == std::string_view::npos || eq == 0 || at == std::string_view::npos || at < eq) {
      return InvalidArgument("static traffic '" + e +
                             "': want NAME=WEIGHT[:MIRROR]@IP:PORT[+GRPCPORT],...");
    }
    TrafficTarget t;
    t.revision = std::string(entry.substr(0, eq));
    std::string_view shares = entry.substr(eq + 1, at - eq - 1);
    std::string_view mirror;
    if (size_t colon = shares.find(':'); colon != std::string_view::npos) {
      mirror = shares.substr(colon + 1);
      shares = shares.substr(0, colon);
    }
    int64_t weight = 0;
    int64_t mirror_percent = 0;
    if (!ParseNumber(shares, 0, 100, weight) ||
        (!mirror.empty() && !ParseNumber(mirror, 0, 100, mirror_percent))) {
      return InvalidArgument("static traffic '" + e + "': weight and mirror are 0..100");
    }
    t.weight = static_cast<int32_t>(weight);
    t.mirror_percent = static_cast<int32_t>(mirror_percent);
    std::vector<Endpoint> eps;
    for (std::string_view hp : Split(entry.substr(at + 1), ',')) {
      int64_t grpc_port = 0;
      std::string_view address = hp;
      if (const size_t plus = hp.find('+'); plus != std::string_view::npos) {
        address = hp.substr(0, plus);
        if (!ParseNumber(hp.substr(plus + 1), 1, 65535, grpc_port)) {
          return InvalidArgument("static traffic '" + e + "': bad gRPC port in '" +
                                 std::string(hp) + "', want IP:PORT+GRPCPORT");
        }
      }
      const size_t colon = address.rfind(':');
      int64_t port = 0;
      if (colon == std::string_view::npos ||
          !ParseNumber(address.substr(colon + 1), 1, 65535, port)) {
        return InvalidArgument("static traffic '" + e + "': bad endpoint '" + std::string(hp) +
                               "', want IP:PORT[+GRPCPORT]");
      }
      std::string host(address.substr(0, colon));
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      Endpoint ep =
          MakeEndpoint(host, static_cast<uint16_t>(port), static_cast<uint16_t>(grpc_port));
      if (ep.key.empty()) {
        return InvalidArgument("static traffic '" + e + "': '" + host + "' is not an IP address");
      }
      eps.push_back(std::move(ep));
    }
    out.config.targets.push_back(std::move(t));
    out.endpoints.emplace_back(out.config.targets.back().revision, std::move(eps));
  }
  if (out.config.targets.empty()) return InvalidArgument("static traffic: no revisions");
  return out;
}

std::shared_ptr<const RoutingTable> RoutingTable::Build(
    const TrafficConfig& config,
    const std::vector<std::pair<std::string, std::vector<Endpoint>>>& endpoints,
    RouterMetrics* metrics, const RoutingTable* previous) {
  std::shared_ptr<RoutingTable> table(new RoutingTable());
  table->sticky_header_ = config.sticky_header;
  for (const TrafficTarget& t : config.targets) {
    auto r = std::make_unique<Revision>();
    r->name = t.revision;
    r->weight = std::max<int32_t>(t.weight, 0);
    r->mirror_percent = std::clamp<int32_t>(t.mirror_percent.value_or(0), 0, 100);
    for (const auto& [name, eps] : endpoints) {
      if (name == t.revision) r->endpoints = eps;
    }
    if (metrics != nullptr) r->metrics = &metrics->ForRevision(t.revision);
    if (r->mirror_percent > 0 && !r->endpoints.empty()) {
      r->mirror = std::make_unique<MirrorShare>(r->mirror_percent);
    }
    table->effective_weights_.push_back(r->endpoints.empty() ? 0 : r->weight);
    if (r->name == config.stable_revision && !r->endpoints.empty() && table->stable_ < 0) {
      table->stable_ = static_cast<int>(table->revisions_.size());
    }
    table->revisions_.push_back(std::move(r));
  }
  table->retry_on_stable_ = config.retry_on_stable && table->stable_ >= 0;
  // Guards for the canaries; one whose weight and settings stay keeps its state (and a tripped
  // guard stays tripped until the operator changes the weights).
  for (auto& r : table->revisions_) {
    if (config.stable_revision.empty() || r->name == config.stable_revision || r->weight <= 0) {
      if (r->metrics != nullptr) r->metrics->guard_tripped->Set(0);
      continue;
    }
    if (previous != nullptr) {
      for (const auto& p : previous->revisions_) {
        if (p->name == r->name && p->weight == r->weight && p->guard &&
            previous->guard_options_ == config.guard) {
          r->guard = p->guard;
        }
      }
    }
    if (!r->guard) {
      r->guard = std::make_shared<CanaryGuard>(
          config.guard, r->metrics != nullptr ? r->metrics->guard_tripped : nullptr);
    }
  }
  table->guard_options_ = config.guard;
  table->schedule_ = WeightedSchedule(table->effective_weights_);
  if (previous != nullptr && previous->schedule_ == table->schedule_) {
    table->next_pick_.store(previous->next_pick_.load(std::memory_order_relaxed),
                            std::memory_order_relaxed);
  }
  if (metrics != nullptr) {
    std::vector<RouterMetrics::RevisionState> states;
    for (const auto& r : table->revisions_) {
      states.push_back(
          {r->name, static_cast<double>(r->weight), static_cast<double>(r->endpoints.size())});
    }
    metrics->SetRouting(states);
  }
  return table;
}

int RoutingTable::PickRevision(std::string_view sticky_value) const {
  if (!sticky_value.empty()) return schedule_.ForHash(StickyHash(sticky_value));
  return schedule_.At(next_pick_.fetch_add(1, std::memory_order_relaxed));
}

int RoutingTable::Route(std::string_view sticky_value) const {
  const int picked = PickRevision(sticky_value);
  if (picked < 0 || stable_ < 0 || picked == stable_) return picked;
  const Revision& r = *revisions_[static_cast<size_t>(picked)];
  if (!r.guard || !r.guard->tripped()) return picked;
  if (r.metrics != nullptr) r.metrics->guard_diverted->Increment();
  return stable_;
}

const Endpoint& RoutingTable::PickEndpoint(int revision) const {
  const Revision& r = *revisions_[static_cast<size_t>(revision)];
  const uint64_t n = r.next_endpoint.fetch_add(1, std::memory_order_relaxed);
  return r.endpoints[n % r.endpoints.size()];
}

std::string RoutingTable::Describe() const {
  std::string out;
  for (const auto& r : revisions_) {
    if (!out.empty()) out += ", ";
    const size_t n = r->endpoints.size();
    const std::string eps = fmt::format("{} endpoint{}", n, n == 1 ? "" : "s");
    if (r->weight > 0 || r->mirror_percent == 0) {
      out += fmt::format("{}={} ({})", r->name, r->weight, eps);
      if (r->mirror_percent > 0) out += fmt::format(" mirror {}%", r->mirror_percent);
    } else {
      out += fmt::format("mirror {} {}% ({})", r->name, r->mirror_percent, eps);
    }
  }
  if (out.empty()) out = "no revisions";
  if (!sticky_header_.empty()) out += ", sticky on " + sticky_header_;
  return out;
}

}  // namespace sluice::dataplane
