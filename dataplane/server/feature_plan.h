#pragma once

// Online feature enrichment, the part without I/O: which model feature comes from where, how a
// request names its rows, and how Redis replies in Feast's layout become row values.
//
// Built once at start from the model's feature names (its row order) and the --feature-views
// configs. A model feature comes from the request input of that name when the request has one,
// else from the first view (in config order) that has it. A view is fetched only when it fills
// a column the request leaves out, and only then are its entity keys required.
//
// A request carries its rows columnar: one input per entity join key and one per model feature
// it provides, each of shape [n] or [n, 1]. An entity key may instead come as a request
// parameter (applies to every row); an input of the same name wins over the parameter. A request
// whose only input is the model's own (input-0, [n, F]) is taken as it is.
//
// Thread-safe: immutable after Create.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dataplane/features/redis_client.h"
#include "dataplane/server/inference.h"
#include "lib/api/feature_view.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

// What became of one feature value of one row.
enum class FeatureResult : uint8_t {
  kHit = 0,    // read, fresh, of the declared type
  kMissing,    // no key, no field, or an empty Value (Feast's None)
  kStale,      // older than the view's ttl at request time
  kMalformed,  // not a Value/Timestamp of the declared type
  kUnfetched,  // never read: Redis failed, timed out or the budget was spent
};
inline constexpr size_t kFeatureResults = 5;
// The metric label: hit, missing, stale, malformed, default (for kUnfetched: the value was
// served from its default without being read).
std::string_view FeatureResultLabel(FeatureResult r);

using FeatureCounts = std::array<uint64_t, kFeatureResults>;

class FeaturePlan {
 public:
  // One view as planned: the fields to HMGET and the model column each fills.
  struct Field {
    size_t column;           // index into the model's features
    std::string hash_field;  // murmur3("<view>:<feature>"), Feast's field name
    api::FeastType type;
    float fallback;  // the declared default as the model sees it, or NaN
  };
  struct View {
    api::FeatureViewConfig config;
    std::vector<Field> fields;  // in the view's order; may be empty (nothing the model takes)
    std::string ts_field;       // "_ts:<view>"
  };

  // InvalidArgument (the server refuses to start) for: a model without feature names, a model
  // feature a view declares as STRING or BYTES, a default that is not a value of its type, a
  // view without entities or with an entity type Feast cannot key by.
  static Result<FeaturePlan> Create(std::vector<std::string> model_features,
                                    std::vector<api::FeatureViewConfig> views,
                                    std::string model_input = "input-0");

  // A request bound to the plan.
  struct Bound {
    bool plain = false;  // the request already holds the model's input: nothing to do
    size_t rows = 0;
    // rows x columns, row-major: request columns filled in, view columns at their fallback.
    std::vector<float> values;
    std::vector<uint8_t> provided;  // per column: 1 when the request holds it
    // The views to fetch (indexes into views()) and, for each, the Redis key of every row.
    std::vector<size_t> fetch;
    std::vector<std::vector<std::string>> keys;  // [i in fetch][row]
  };
  // Checks the request against the plan and reads what it provides. InvalidArgument naming the
  // input, parameter or model feature that is wrong or missing.
  Result<Bound> Bind(const InferRequest& request) const;

  // HMGET arguments for `key` of view `v`: the command, the key, every field, the timestamp
  // field. Views into the plan and `key`.
  void AppendHmget(size_t v, std::string_view key, features::RedisCommand& out) const;

  // Writes the values of one HMGET reply of view `v` into `row` (one row of Bound::values),
  // except the columns the request provided, and counts what each was. `now` is the request's
  // wall time (for the ttl).
  void Fill(size_t v, const features::RedisReply& reply, std::chrono::system_clock::time_point now,
            std::span<const uint8_t> provided, std::span<float> row, FeatureCounts& counts) const;
  // Counts the view's fields of one row as not fetched (the row keeps its fallbacks).
  void Unfetched(size_t v, std::span<const uint8_t> provided, FeatureCounts& counts) const;

  const std::vector<std::string>& features() const { return features_; }
  const std::vector<View>& views() const { return views_; }

 private:
  std::vector<std::string> features_;
  std::vector<View> views_;
  std::string model_input_;
  // Per column: the view that fills it (index into views_) or npos when only the request can.
  std::vector<size_t> column_view_;
};

}  // namespace sluice::dataplane
