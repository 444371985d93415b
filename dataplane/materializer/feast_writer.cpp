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

Status FeastWriter::Send(size_t reads, std::vector<RedisReply>& replies, WriteStats& stats) {
  const size_t total = pending_commands_ + reads;
  ASSIGN_OR_RETURN(replies, redis_.Pipeline(std::span(round_.data(), total), options_.timeout));
  for (size_t i = 0; i < pending_commands_; ++i) {
    if (replies[i].kind == RedisReply::Kind::kError) {
      return Internal("redis " + redis_.Describe() + ": " + std::string(round_[i][0]) + ": " +
                      replies[i].str);
    }
  }
  stats.written += pending_entities_;
  pending_commands_ = 0;
  pending_entities_ = 0;
  return Status::Ok();
}

Status FeastWriter::Flush(WriteStats& stats) {
  if (pending_commands_ == 0) return Status::Ok();
  std::vector<RedisReply> replies;
  return Send(0, replies, stats);
}

Status FeastWriter::Write(std::span<const EntityRecord* const> batch, WriteStats& stats) {
  const bool expire = options_.key_ttl.count() > 0;
  const size_t per_entity = expire ? 2 : 1;
  // Room for this round (pending writes, then reads) and for the writes decided after it.
  round_.resize(std::max(pending_commands_ + batch.size(), batch.size() * per_entity));
  size_t reads = 0;
  for (const EntityRecord* e : batch) {
    if (!e->fresh) continue;
    auto& cmd = round_[pending_commands_ + reads++];
    cmd.clear();
    cmd.push_back("HGET");
    cmd.push_back(e->redis_key());
    cmd.push_back(plan_.timestamp_field);
  }
  if (reads == 0) return Status::Ok();
  std::vector<RedisReply> replies;
  const size_t first_read = pending_commands_;
  RETURN_IF_ERROR(Send(reads, replies, stats));

  // The round trip is done: its commands and the timestamps they pointed at are free.
  timestamps_.resize(reads);
  size_t w = 0;
  size_t i = first_read;
  for (const EntityRecord* e : batch) {
    if (!e->fresh) continue;
    const RedisReply& reply = replies[i++];
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
    auto& cmd = round_[per_entity * w];
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
      auto& ex = round_[per_entity * w + 1];
      ex.clear();
      ex.push_back("EXPIRE");
      ex.push_back(e->redis_key());
      ex.push_back(ttl_text_);
    }
    ++w;
  }
  pending_commands_ = per_entity * w;
  pending_entities_ = w;
  return Status::Ok();
}

}  // namespace sluice::materializer
