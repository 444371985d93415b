#include "dataplane/materializer/feast_writer.h"

namespace sluice::materializer {

using features::RedisReply;

bool ShouldOverwrite(std::optional<int64_t> stored_nanos, int64_t new_nanos) {
  return !stored_nanos || *stored_nanos == 0 || new_nanos > *stored_nanos;
}

FeastWriter::FeastWriter(features::RedisClient& redis, const SourcePlan& plan,
                         FeastWriterOptions options)
    : redis_(redis),
      plan_(plan),
      options_(options),
      ttl_text_(std::to_string(options.key_ttl.count())) {}

Status FeastWriter::Write(std::span<const EntityRecord* const> batch, WriteStats& stats) {
  reads_.resize(batch.size());
  size_t n = 0;
  for (const EntityRecord* e : batch) {
    if (!e->fresh) continue;
    auto& cmd = reads_[n++];
    cmd.clear();
    cmd.push_back("HGET");
    cmd.push_back(e->redis_key());
    cmd.push_back(plan_.timestamp_field);
  }
  if (n == 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<RedisReply> stored,
                   redis_.Pipeline(std::span(reads_.data(), n), options_.timeout));

  const bool expire = options_.key_ttl.count() > 0;
  writes_.resize(n * (expire ? 2 : 1));
  timestamps_.resize(n);
  size_t w = 0;
  size_t i = 0;
  for (const EntityRecord* e : batch) {
    if (!e->fresh) continue;
    const RedisReply& reply = stored[i++];
    std::optional<int64_t> stored_nanos;
    if (reply.kind == RedisReply::Kind::kString) {
      // A timestamp we cannot read is not a newer record: overwrite it.
      auto decoded = features::DecodeTimestampNanos(reply.str);
      if (decoded.ok()) stored_nanos = *decoded;
    } else if (reply.kind == RedisReply::Kind::kError) {
      return Internal("redis " + redis_.Describe() + ": HGET " + plan_.timestamp_field + ": " +
                      reply.str);
    }
    if (!ShouldOverwrite(stored_nanos, e->event_nanos)) {
      ++stats.not_newer;
      continue;
    }
    std::string& ts = timestamps_[w];
    ts = EncodeEventTimestamp(e->event_nanos);
    FeatureValues(*e, values_);
    auto& cmd = writes_[expire ? 2 * w : w];
    cmd.clear();
    cmd.push_back("HSET");
    cmd.push_back(e->redis_key());
    for (size_t f = 0; f < plan_.features.size(); ++f) {
      cmd.push_back(plan_.features[f].field);
      cmd.push_back(values_[f]);
    }
    cmd.push_back(plan_.timestamp_field);
    cmd.push_back(ts);
    if (expire) {
      auto& ex = writes_[2 * w + 1];
      ex.clear();
      ex.push_back("EXPIRE");
      ex.push_back(e->redis_key());
      ex.push_back(ttl_text_);
    }
    ++w;
  }
  if (w == 0) return Status::Ok();
  const size_t commands = expire ? 2 * w : w;
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   redis_.Pipeline(std::span(writes_.data(), commands), options_.timeout));
  for (const RedisReply& r : replies) {
    if (r.kind == RedisReply::Kind::kError) {
      return Internal("redis " + redis_.Describe() + ": HSET: " + r.str);
    }
  }
  stats.written += w;
  return Status::Ok();
}

}  // namespace sluice::materializer
