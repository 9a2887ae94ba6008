#include "engine/checkpoint_log.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <random>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace kpistream {
namespace {

int64_t MicrosOf(absl::Time t) {
  return t == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(t);
}

absl::Time TimeOf(int64_t us) {
  return us == INT64_MIN || us == 0 ? absl::InfinitePast()
                                    : absl::FromUnixMicros(us);
}

// The chunk being filled, one per thread, reused: a cleared message keeps
// its repeated elements and their strings' capacity, so filling it again
// does not allocate once warm (at most one chunk's worth stays allocated).
v1::PartitionCheckpoint& ReusedChunk() {
  thread_local v1::PartitionCheckpoint chunk;
  return chunk;
}

// Collects a checkpoint's chunks as records.
class ChunkSink : public CheckpointSink {
 public:
  ChunkSink(const TopicPartition& tp, uint64_t seq, bool full,
            bool without_transaction, uint64_t lineage, size_t chunk_bytes,
            const std::string& group_id)
      : tp_(tp),
        seq_(seq),
        full_(full),
        without_transaction_(without_transaction),
        lineage_(lineage),
        group_id_(group_id),
        chunk_bytes_(chunk_bytes),
        current_(ReusedChunk()) {
    Start();
  }

  v1::PartitionCheckpoint* chunk() override { return &current_; }
  // Appended to the chunk's bytes as they come: copying a session into
  // the message first, then serializing that, walked every session twice
  // more. A message's fields may come in any order, so the chunk parses as
  // if the sessions were in current_.sessions().
  void AddSession(absl::string_view session) override {
    const size_t size = session.size();
    uint8_t head[1 + 5];  // the tag (field 10) and a varint32
    uint8_t* end = google::protobuf::internal::WireFormatLite::WriteTagToArray(
        v1::PartitionCheckpoint::kSessionsFieldNumber,
        google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED,
        head);
    end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
        static_cast<uint32_t>(size), end);
    sessions_.append(reinterpret_cast<const char*>(head), end - head);
    sessions_.append(session.data(), size);
    Added(size + (end - head));
  }
  void Added(size_t bytes) override {
    current_bytes_ += bytes;
    ++elements_;
    if (current_bytes_ >= chunk_bytes_) Cut(/*last=*/false);
  }

  // Closes the last chunk (already filled with the clocks by the caller).
  std::vector<ChangelogRecord> Finish() {
    Cut(/*last=*/true);
    return std::move(records_);
  }
  size_t elements() const { return elements_; }
  size_t bytes() const { return bytes_; }
  uint32_t chunks() const { return next_chunk_; }

 private:
  void Start() {
    current_.Clear();
    current_.set_seq(seq_);
    current_.set_full(full_);
    current_.set_chunk(next_chunk_);
    current_.set_without_transaction(without_transaction_);
    current_.set_lineage(lineage_);
    current_.set_group_id(group_id_);
    current_bytes_ = 0;
  }
  void Cut(bool last) {
    current_.set_last(last);
    // The sessions first, then the rest of the chunk after them (any order
    // parses alike): the sessions' bytes, most of a chunk, are not copied.
    std::string value = std::move(sessions_);
    sessions_ = std::string();
    current_.AppendToString(&value);
    bytes_ += value.size();
    records_.push_back(
        {CheckpointKey(tp_, seq_, next_chunk_), std::move(value)});
    ++next_chunk_;
    if (!last) {
      // The clocks set on the chunk so far belong to the last one.
      const int64_t frontier = current_.frontier_us();
      const int32_t visitors = current_.visitors_newest_day();
      const int32_t orders = current_.orders_newest_day();
      Start();
      current_.set_frontier_us(frontier);
      current_.set_visitors_newest_day(visitors);
      current_.set_orders_newest_day(orders);
    }
  }

  const TopicPartition& tp_;
  uint64_t seq_;
  bool full_;
  bool without_transaction_;
  uint64_t lineage_;
  const std::string& group_id_;
  size_t chunk_bytes_;
  v1::PartitionCheckpoint& current_;
  std::string sessions_;  // the chunk's sessions, serialized (AddSession)
  size_t current_bytes_ = 0;
  uint32_t next_chunk_ = 0;
  size_t elements_ = 0;
  size_t bytes_ = 0;
  std::vector<ChangelogRecord> records_;
};

}  // namespace

uint64_t CheckpointLineage(absl::string_view value) {
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(value.data()),
      static_cast<int>(value.size()));
  uint64_t lineage = 0;
  while (uint32_t tag = in.ReadTag()) {
    using Wire = google::protobuf::internal::WireFormatLite;
    if (Wire::GetTagFieldNumber(tag) ==
            v1::PartitionCheckpoint::kLineageFieldNumber &&
        Wire::GetTagWireType(tag) == Wire::WIRETYPE_FIXED64) {
      if (!in.ReadLittleEndian64(&lineage)) return 0;
      continue;  // the last occurrence wins, as in a parse
    }
    if (!Wire::SkipField(&in, tag)) return 0;
  }
  return lineage;
}

namespace {

// What a restore needs of a checkpoint chunk before it applies any: its
// flags, lineage and group, read without parsing its state (a parsed chunk
// takes ~5x its bytes: a partition's parsed at once was a restore's peak).
struct ChunkHeader {
  bool full = false;
  bool last = false;
  bool without_transaction = false;
  uint64_t lineage = 0;
  std::string group_id;
};

// False when `value` is not a well-formed message on the wire. The last
// occurrence of a field wins, as in a parse.
bool ReadChunkHeader(absl::string_view value, ChunkHeader* header) {
  using Wire = google::protobuf::internal::WireFormatLite;
  using v1::PartitionCheckpoint;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(value.data()),
      static_cast<int>(value.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = Wire::GetTagFieldNumber(tag);
    const auto type = Wire::GetTagWireType(tag);
    uint64_t v = 0;
    if (type == Wire::WIRETYPE_VARINT &&
        (field == PartitionCheckpoint::kFullFieldNumber ||
         field == PartitionCheckpoint::kLastFieldNumber ||
         field == PartitionCheckpoint::kWithoutTransactionFieldNumber)) {
      if (!in.ReadVarint64(&v)) return false;
      bool& flag = field == PartitionCheckpoint::kFullFieldNumber ? header->full
                   : field == PartitionCheckpoint::kLastFieldNumber
                       ? header->last
                       : header->without_transaction;
      flag = v != 0;
    } else if (type == Wire::WIRETYPE_FIXED64 &&
               field == PartitionCheckpoint::kLineageFieldNumber) {
      if (!in.ReadLittleEndian64(&header->lineage)) return false;
    } else if (type == Wire::WIRETYPE_LENGTH_DELIMITED &&
               field == PartitionCheckpoint::kGroupIdFieldNumber) {
      if (!Wire::ReadString(&in, &header->group_id)) return false;
    } else if (!Wire::SkipField(&in, tag)) {
      return false;
    }
  }
  // A clean end (ReadTag's 0 at the end, between fields), not a bad or
  // truncated tag.
  return in.ConsumedEntireMessage();
}

// Splits `key` at each '/' into exactly as many parts as `parts` holds;
// false when it has more or fewer. No allocation: a restore parses every
// changelog record's key (absl::StrSplit's vector was one allocation each).
template <size_t N>
bool SplitKey(absl::string_view key, std::array<absl::string_view, N>* parts) {
  for (size_t i = 0; i + 1 < N; ++i) {
    const size_t slash = key.find('/');
    if (slash == absl::string_view::npos) return false;
    (*parts)[i] = key.substr(0, slash);
    key.remove_prefix(slash + 1);
  }
  if (key.find('/') != absl::string_view::npos) return false;
  (*parts)[N - 1] = key;
  return true;
}

}  // namespace

std::string CheckpointKey(const TopicPartition& tp, uint64_t seq,
                          uint32_t chunk) {
  return absl::StrFormat("s/%s/%d/%016x/%06x", tp.topic, tp.partition, seq,
                         chunk);
}

bool ParseCheckpointKey(absl::string_view key, TopicPartition* tp,
                        uint64_t* seq, uint32_t* chunk) {
  // Topic names hold no '/' (Kafka allows [a-zA-Z0-9._-]).
  std::array<absl::string_view, 5> parts;
  if (!SplitKey(key, &parts) || parts[0] != "s" || parts[3].size() != 16 ||
      parts[4].size() != 6) {
    return false;
  }
  int32_t partition = 0;
  uint64_t s = 0, c = 0;
  if (!absl::SimpleAtoi(parts[2], &partition) ||
      !absl::SimpleHexAtoi(parts[3], &s) ||
      !absl::SimpleHexAtoi(parts[4], &c)) {
    return false;
  }
  tp->topic.assign(parts[1].data(), parts[1].size());
  tp->partition = partition;
  *seq = s;
  *chunk = static_cast<uint32_t>(c);
  return true;
}

std::string DayKey(const TopicPartition& tp, char kind, uint64_t fingerprint) {
  // StrCat, not StrFormat: a record per changed visitor at every commit
  // (StrFormat's parsing of the format was 0.4 % of the engine's samples).
  return absl::StrCat("v/", tp.topic, "/", tp.partition, "/",
                      absl::string_view(&kind, 1), "/",
                      absl::Hex(fingerprint, absl::kZeroPad16));
}

bool ParseDayKey(absl::string_view key, TopicPartition* tp, char* kind,
                 uint64_t* fingerprint) {
  std::array<absl::string_view, 5> parts;
  if (!SplitKey(key, &parts) || parts[0] != "v" || parts[3].size() != 1 ||
      (parts[3][0] != 'v' && parts[3][0] != 'o') || parts[4].size() != 16) {
    return false;
  }
  int32_t partition = 0;
  uint64_t f = 0;
  if (!absl::SimpleAtoi(parts[2], &partition) ||
      !absl::SimpleHexAtoi(parts[4], &f)) {
    return false;
  }
  tp->topic.assign(parts[1].data(), parts[1].size());
  tp->partition = partition;
  *kind = parts[3][0];
  *fingerprint = f;
  return true;
}

bool ParseDayValue(absl::string_view value, int32_t* day) {
  return absl::SimpleAtoi(value, day) && IsDayInRange(*day);
}

size_t CheckpointChunkBytes(size_t max_record_bytes) {
  return std::clamp<size_t>(max_record_bytes / 2, 16 << 10, 512 << 10);
}

CheckpointWriter::CheckpointWriter(TopicPartition tp, size_t chunk_bytes,
                                   size_t min_full_interval_bytes)
    : tp_(std::move(tp)),
      chunk_bytes_(chunk_bytes),
      min_full_interval_bytes_(min_full_interval_bytes) {}

std::vector<ChangelogRecord> CheckpointWriter::Write(
    PartitionState& state, int64_t next_offset, absl::Time max_event_time,
    bool force_full, const std::map<TopicPartition, absl::Time>& upstream,
    absl::Time last_event_at) {
  CheckpointPosition& p = position_;
  const bool upstream_changed = upstream != p.upstream;
  // A source dropped (PartitionPipeline::ExpireIdleSources): a delta cannot
  // say so, and a restore, which merges every checkpoint's sources since
  // the last full snapshot, would bring it back (review).
  bool upstream_shrank = false;
  if (upstream_changed) {
    for (const auto& [source, at] : p.upstream) {
      upstream_shrank |= upstream.count(source) == 0;
    }
  }
  const bool full =
      force_full || p.needs_full || p.next_seq == 0 || upstream_shrank ||
      p.delta_bytes > std::max(p.full_bytes, min_full_interval_bytes_);
  if (p.lineage == 0) {
    std::random_device random;
    while (p.lineage == 0) {
      p.lineage = (uint64_t{random()} << 32) ^ uint64_t { random() };
    }
  }
  ChunkSink sink(tp_, p.next_seq, full, without_transaction_, p.lineage,
                 chunk_bytes_, group_id_);
  state.Checkpoint(full, &sink);
  v1::PartitionCheckpoint* last = sink.chunk();
  last->set_next_offset(next_offset);
  last->set_max_event_time_us(MicrosOf(max_event_time));
  if (last_event_at != absl::InfinitePast()) {
    last->set_last_event_at_us(absl::ToUnixMicros(last_event_at));
  }
  if (full || upstream_changed) {
    for (const auto& [source, watermark] : upstream) {
      v1::SourceWatermark* w = last->add_upstream();
      w->set_topic(source.topic);
      w->set_partition(source.partition);
      w->set_watermark_us(MicrosOf(watermark));
    }
  }
  // An idle partition's frontier moves with its thread's watermark: said
  // too, else a restart judged its next events against an older frontier
  // (up to the hourly full snapshot's) and took some that were late
  // (review). Once it is 10 s on, not at every commit (a caught-up thread
  // commits every 100 ms, and each partition written adds a transaction
  // marker): a restart takes at most what was less than 10 s too late.
  const int64_t frontier_us = last->frontier_us();
  const bool frontier_moved =
      frontier_judges_ && frontier_us > p.frontier_us &&
      (p.frontier_us <= 0 || frontier_us - p.frontier_us >= kFrontierStepUs);
  if (!full && sink.elements() == 0 && next_offset == p.next_offset &&
      max_event_time == p.max_event_time && !upstream_changed &&
      !frontier_moved && last_event_at == p.last_event_at) {
    return {};  // nothing to say
  }
  std::vector<ChangelogRecord> records = sink.Finish();
  if (full) {
    // Everything before this snapshot is superseded: tombstoned after it,
    // so that a writer stopped midway (at-least-once has no transaction)
    // leaves the earlier snapshot whole.
    records.reserve(records.size() + p.live.size());
    for (const auto& [seq, chunk] : p.live) {
      records.push_back({CheckpointKey(tp_, seq, chunk), std::nullopt});
    }
    p.live.clear();
    p.needs_full = false;
    p.full_bytes = sink.bytes();
    p.delta_bytes = 0;
  } else {
    p.delta_bytes += sink.bytes();
  }
  for (uint32_t c = 0; c < sink.chunks(); ++c)
    p.live.push_back({p.next_seq, c});
  ++p.next_seq;
  p.next_offset = next_offset;
  p.max_event_time = max_event_time;
  p.last_event_at = last_event_at;
  p.frontier_us = frontier_us;
  p.upstream = upstream;
  return records;
}

void CheckpointReader::Add(absl::string_view key, absl::string_view value,
                           bool tombstone) {
  TopicPartition tp;
  uint64_t seq = 0;
  uint32_t chunk = 0;
  if (!ParseCheckpointKey(key, &tp, &seq, &chunk)) return;
  ++records_;
  auto& chunks = chunks_[tp];
  if (tombstone) {
    chunks.erase({seq, chunk});
    return;
  }
  bytes_ += value.size();
  chunks[{seq, chunk}] = std::string(value);
}

void CheckpointReader::Release(const TopicPartition& tp) { chunks_.erase(tp); }

void CheckpointReader::ForEachLive(
    const TopicPartition& tp,
    absl::FunctionRef<void(const std::string&, const std::string&)> record)
    const {
  auto found = chunks_.find(tp);
  if (found == chunks_.end()) return;
  for (const auto& [id, value] : found->second) {
    record(CheckpointKey(tp, id.first, id.second), value);
  }
}

absl::StatusOr<CheckpointPosition> CheckpointReader::RestoreInto(
    const TopicPartition& tp, PartitionState* state) const {
  CheckpointPosition position;
  auto found = chunks_.find(tp);
  if (found == chunks_.end() || found->second.empty()) return position;
  const auto& chunks = found->second;
  const std::string where =
      absl::StrCat("the checkpoints of ", tp.topic, "[", tp.partition, "]");
  // Group by seq, check completeness: the chunks' headers first, each
  // chunk parsed only when it is applied (one at a time).
  struct Checkpoint {
    std::vector<const std::string*> chunks;  // values in `chunks`
    bool complete = false;
    bool full = false;
    bool without_transaction = false;  // any chunk's flag
    size_t bytes = 0;
    uint64_t lineage = 0;  // any chunk's
    std::string group_id;  // any chunk's
  };
  const auto undecodable = [&](uint64_t seq, size_t chunk) {
    return absl::DataLossError(absl::StrCat(
        where, ": checkpoint ", seq, " chunk ", chunk, " cannot be decoded"));
  };
  std::map<uint64_t, Checkpoint> by_seq;
  for (const auto& [id, value] : chunks) {
    const auto [seq, chunk] = id;
    Checkpoint& c = by_seq[seq];
    ChunkHeader header;
    if (!ReadChunkHeader(value, &header)) return undecodable(seq, chunk);
    // Any chunk says so (chunk 0 may be the one not delivered).
    c.without_transaction |= header.without_transaction;
    if (header.lineage != 0) c.lineage = header.lineage;
    if (!header.group_id.empty()) c.group_id = std::move(header.group_id);
    // A gap: incomplete. After the last chunk: none belongs to it.
    if (c.complete || chunk != c.chunks.size()) continue;
    c.full = c.full || header.full;
    c.complete = header.last;
    c.bytes += value.size();
    c.chunks.push_back(&value);
  }
  // The newest checkpoints, incomplete, written without a transaction
  // (at-least-once): their writer stopped midway (a crash during its flush,
  // a record of it not delivered). Not data loss: the state is the one
  // before them, and the next checkpoint is a full snapshot under a new seq
  // (keys are never written twice). A checkpoint of a transaction is
  // complete or not there at all (read_committed): one incomplete is loss.
  auto tail = by_seq.end();
  while (tail != by_seq.begin() && !std::prev(tail)->second.complete &&
         std::prev(tail)->second.without_transaction) {
    --tail;
  }
  const size_t skipped = std::distance(tail, by_seq.end());
  if (skipped > 0 && by_seq.rbegin()->first == UINT64_MAX) {
    return absl::DataLossError(absl::StrCat(where, ": checkpoint ", UINT64_MAX,
                                            " cannot be followed by another"));
  }
  // The newest complete full snapshot before them.
  auto start = tail;
  for (auto it = by_seq.begin(); it != tail; ++it) {
    if (it->second.full && it->second.complete) start = it;
  }
  if (start == tail && tail == by_seq.begin() && tail->first == 0) {
    // Only the first checkpoint(s), incomplete: no state yet. Their keys
    // are live until the next full snapshot replaces them.
    for (const auto& [id, value] : chunks) position.live.push_back(id);
    position.lineage = tail->second.lineage;
    position.group_id = tail->second.group_id;
    position.next_seq = by_seq.rbegin()->first + 1;
    position.needs_full = true;
    position.skipped = skipped;
    return position;
  }
  if (start == tail) {
    return absl::DataLossError(absl::StrCat(
        where, " hold no complete full snapshot (", by_seq.size(),
        " checkpoint(s), newest ", by_seq.rbegin()->first,
        "): the changelog lost records (the embedded broker keeps only about "
        "5 MB per partition; a topic that deletes old records instead of "
        "compacting them loses them too)"));
  }
  uint64_t expected = start->first;
  v1::PartitionCheckpoint parsed;  // one chunk at a time
  for (auto it = start; it != tail; ++it) {
    const auto& [seq, c] = *it;
    if (seq != expected || !c.complete) {
      return absl::DataLossError(
          absl::StrCat(where, ": checkpoint ", expected,
                       seq != expected ? " is missing" : " is incomplete",
                       " after the snapshot ", start->first,
                       "; the changelog lost records"));
    }
    for (size_t i = 0; i < c.chunks.size(); ++i) {
      if (!parsed.ParseFromString(*c.chunks[i])) return undecodable(seq, i);
      const v1::PartitionCheckpoint& chunk = parsed;
      absl::Status status = state->Restore(chunk);
      if (!status.ok()) {
        return absl::DataLossError(
            absl::StrCat(where, ": checkpoint ", seq, ": ", status.message()));
      }
      if (chunk.last()) {
        const int64_t max_us = chunk.max_event_time_us();
        if (max_us != 0 && max_us != INT64_MIN && !IsEventTimeInRange(max_us)) {
          return absl::DataLossError(absl::StrCat(
              where, ": checkpoint ", seq, ": the max event time (", max_us,
              " us) is out of range"));
        }
        position.next_offset = chunk.next_offset();
        position.max_event_time = TimeOf(max_us);
        position.last_event_at =
            chunk.last_event_at_us() > 0
                ? absl::FromUnixMicros(chunk.last_event_at_us())
                : absl::InfinitePast();
        position.frontier_us = chunk.frontier_us();
        for (const v1::SourceWatermark& w : chunk.upstream()) {
          const int64_t us = w.watermark_us();
          if (us != 0 && us != INT64_MIN && !IsEventTimeInRange(us)) {
            return absl::DataLossError(absl::StrCat(
                where, ": checkpoint ", seq, ": the watermark of ", w.topic(),
                "[", w.partition(), "] (", us, " us) is out of range"));
          }
          absl::Time& at =
              position.upstream
                  .try_emplace({w.topic(), w.partition()}, absl::InfinitePast())
                  .first->second;
          at = std::max(at, TimeOf(us));
        }
      }
    }
    if (c.lineage != 0) position.lineage = c.lineage;
    if (!c.group_id.empty()) position.group_id = c.group_id;
    if (it == start) {
      position.full_bytes = c.bytes;
    } else {
      position.delta_bytes += c.bytes;
    }
    ++expected;
  }
  position.next_seq = expected;
  if (skipped > 0) {
    if (tail->first != expected) {
      return absl::DataLossError(absl::StrCat(
          where, ": checkpoint ", expected, " is missing after the snapshot ",
          start->first, "; the changelog lost records"));
    }
    position.next_seq = by_seq.rbegin()->first + 1;
    position.needs_full = true;
    position.skipped = skipped;
  }
  // Every key present stays until the next full snapshot tombstones it.
  for (const auto& [id, value] : chunks) position.live.push_back(id);
  state->FinishRestore();
  return position;
}

}  // namespace kpistream
