#include "aggregate/reorder_buffer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/container/fixed_array.h"
#include "aggregate/unix_second.h"

namespace kpistream {
namespace {

int64_t MicrosOf(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixMicros(t);
}

size_t VarintSize(uint32_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes `s` length-prefixed at `p`; returns the end.
char* PutString(absl::string_view s, char* p) {
  uint32_t v = static_cast<uint32_t>(s.size());
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Reads a length-prefixed string at `*p` (packed by Append, so well formed).
absl::string_view GetString(const char*& p) {
  uint32_t len = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t b = static_cast<uint8_t>(*p++);
    len |= static_cast<uint32_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  absl::string_view s(p, len);
  p += len;
  return s;
}

// Spare buckets kept for reuse per partition, and the most a spare may keep
// (at most ~50 KB per partition in all; bigger buckets are freed). A
// partition's second holds a few events when many partitions share the
// input, and a release frees many seconds at once: with 8 spares most
// buckets were allocated afresh (malloc and free 2.5 % of the engine's
// samples, keyed JSON on 128 partitions).
constexpr size_t kMaxSpare = 32;
constexpr size_t kMaxSpareArena = 1 << 10;
constexpr size_t kMaxSpareEvents = 16;

// The first 8 bytes of `id` as a big-endian number, zero-padded: ordered as
// the strings are where they differ in those bytes (std::string_view
// compares bytes as unsigned, as this does).
uint64_t IdPrefix(absl::string_view id) {
  if (id.size() >= 8) return absl::big_endian::Load64(id.data());
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) |
             (i < id.size() ? static_cast<unsigned char>(id[i]) : 0u);
  }
  return prefix;
}

// A bucket's first block, and the most a later one holds unless one event
// needs more.
constexpr size_t kFirstBlock = 256;
constexpr size_t kMaxBlock = 64 << 10;

}  // namespace

char* ReorderBuffer::Arena::Append(size_t n) {
  if (blocks_.empty() || blocks_.back().size + n > blocks_.back().capacity) {
    const size_t capacity = std::max(
        n, blocks_.empty() ? kFirstBlock
                           : std::min(2 * blocks_.back().capacity, kMaxBlock));
    Block block;
    block.data.reset(new char[capacity]);  // not zero-filled
    block.capacity = capacity;
    blocks_.push_back(std::move(block));
    capacity_ += capacity;
  }
  Block& b = blocks_.back();
  char* at = b.data.get() + b.size;
  b.size += n;
  return at;
}

void ReorderBuffer::Arena::clear() {
  if (blocks_.size() > 1) {
    blocks_.erase(blocks_.begin(), blocks_.end() - 1);
    capacity_ = blocks_.back().capacity;
  }
  if (!blocks_.empty()) blocks_.back().size = 0;
}

ReorderBuffer::Bucket& ReorderBuffer::BucketOf(int64_t second) {
  Cached& cached = cached_[CacheIndex(second)];
  if (cached.bucket != nullptr && cached.second == second) {
    return *cached.bucket;
  }
  Bucket& bucket = FindOrMake(second);
  cached = {second, &bucket};  // after the lookup, which may throw
  return bucket;
}

ReorderBuffer::Bucket& ReorderBuffer::FindOrMake(int64_t second) {
  // An event of the newest second or a later one (in-order input) finds,
  // or places, its bucket at the end without a walk down the tree.
  auto it = buckets_.end();
  if (!buckets_.empty()) {
    auto newest = std::prev(it);
    if (newest->first == second) return newest->second;
    if (newest->first > second) {
      it = buckets_.lower_bound(second);
      if (it->first == second) return it->second;
    }
  }
  if (spare_.empty()) {
    Bucket& made = buckets_.emplace_hint(it, second, Bucket())->second;
    bytes_ += Held(made);
    return made;
  }
  Buckets::node_type node = std::move(spare_.back());
  spare_.pop_back();
  node.key() = second;
  return buckets_.insert(it, std::move(node))->second;
}

ReorderBuffer::Buckets::iterator ReorderBuffer::Erase(Buckets::iterator it) {
  auto next = std::next(it);
  Cached& cached = cached_[CacheIndex(it->first)];
  if (cached.bucket == &it->second) cached.bucket = nullptr;
  Buckets::node_type node = buckets_.extract(it);
  if (spare_.size() < kMaxSpare &&
      node.mapped().arena.capacity() <= kMaxSpareArena &&
      node.mapped().events.capacity() <= kMaxSpareEvents) {
    Bucket& b = node.mapped();
    const size_t held = Held(b);
    b.events.clear();
    b.arena.clear();  // may free blocks
    b.checkpointed = 0;
    bytes_ -= held - Held(b);
    spare_.push_back(std::move(node));
  } else {
    bytes_ -= Held(node.mapped());  // freed with the node
  }
  return next;
}

void ReorderBuffer::Append(const EventView& e, Bucket& bucket) {
  Packed packed;
  packed.time_us = absl::ToUnixMicros(e.time);
  packed.id_prefix = IdPrefix(e.event_id);
  packed.value_micros = e.value_micros;
  packed.record_offset = e.record_offset;
  packed.session_number = e.session_number;
  packed.type = e.type;
  // One resize, then the fields written in place (appending each length
  // and string checked the capacity ~30 times per event).
  size_t bytes = 0;
#define KPISTREAM_FIELD_BYTES(f) \
  bytes += VarintSize(static_cast<uint32_t>(e.f.size())) + e.f.size();
  KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_FIELD_BYTES)
#undef KPISTREAM_FIELD_BYTES
  const size_t held = Held(bucket);
  char* p = bucket.arena.Append(bytes);
  packed.strings = p;
#define KPISTREAM_PACK_FIELD(f) p = PutString(e.f, p);
  KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_PACK_FIELD)
#undef KPISTREAM_PACK_FIELD
  bucket.events.push_back(packed);
  bytes_ += Held(bucket) - held;  // capacities only grow here
}

EventView ReorderBuffer::Unpack(const Packed& packed) {
  EventView e;
  UnpackInto(packed, &e);
  return e;
}

// UnpackInto() writes each of these fields: a field added to EventView must
// be added there (and this size with it).
static_assert(sizeof(EventView) == sizeof(absl::Time) + 3 * sizeof(int64_t) +
                                       17 * sizeof(absl::string_view),
              "EventView changed: update ReorderBuffer::UnpackInto");

void ReorderBuffer::UnpackInto(const Packed& packed, EventView* out) {
  EventView& e = *out;
  e.time = absl::FromUnixMicros(packed.time_us);
  e.type = packed.type;
  e.session_number = packed.session_number;
  e.value_micros = packed.value_micros;
  e.record_offset = packed.record_offset;
  const char* p = packed.strings;
#define KPISTREAM_UNPACK_FIELD(f) e.f = GetString(p);
  KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_UNPACK_FIELD)
#undef KPISTREAM_UNPACK_FIELD
  e.user_agent = {};  // not kept
}

absl::string_view ReorderBuffer::EventId(const Packed& packed) {
  const char* p = packed.strings;
  return GetString(p);  // event_id is the first packed field
}

void ReorderBuffer::Push(const EventView& event) {
  Append(event, BucketOf(SecondOf(absl::ToUnixMicros(event.time))));
  ++size_;
}

void ReorderBuffer::Restore(const EventView& event) {
  Bucket& bucket = BucketOf(SecondOf(absl::ToUnixMicros(event.time)));
  Append(event, bucket);
  // Restored events are checkpointed already; they come before anything
  // pushed later, so the checkpointed prefix grows with them.
  if (bucket.checkpointed + 1 == bucket.events.size()) ++bucket.checkpointed;
  ++size_;
}

void ReorderBuffer::SortFirst(Bucket& bucket, size_t n) {
  const auto before = [&](const Packed& a, const Packed& b) {
    if (a.time_us != b.time_us) return a.time_us < b.time_us;
    // Ties in the order the records came (their offsets in the partition):
    // an access log's lines carry whole seconds, and a visitor's two page
    // views in one second are its landing and next page in the log's
    // order. Events without an offset (restored by value) by event_id.
    if (a.record_offset != b.record_offset) {
      return a.record_offset < b.record_offset;
    }
    if (a.id_prefix != b.id_prefix) return a.id_prefix < b.id_prefix;
    return EventId(a) < EventId(b);
  };
  const auto end = bucket.events.begin() + n;
  if (!std::is_sorted(bucket.events.begin(), end, before)) {
    std::sort(bucket.events.begin(), end, before);
  }
}

void ReorderBuffer::EmitSorted(Buckets::iterator end, size_t partial,
                               size_t total, BatchSink sink) {
  // Batches run on across buckets (their seconds are in order): at a few
  // events per partition and second a batch per bucket held one or two
  // events, and the sink's look-ahead (Sessionizer::AddAll prefetches 8
  // and 16 events on) had nothing to look at. Only as many views as the
  // release needs are made: 64 views are 18 KB to initialise.
  constexpr size_t kBatch = 64;
  absl::FixedArray<EventView, kBatch> batch(std::min(kBatch, total));
  std::array<const Packed*, kBatch> pending;
  size_t m = 0;
  const auto flush = [&] {
    // The arena bytes were written when the events came, seconds ago, and
    // have mostly left the caches: the batch's first lines are fetched
    // together, not one miss per event in turn (UnpackInto was the
    // engine's top function of its own on the end-to-end benchmark, 2.9 %
    // of the samples, keyed protobuf).
    for (size_t k = 0; k < m; ++k) {
      // The second line's address as a number: an event near its block's
      // end has no byte 64 bytes on (a hint, never read).
      const uintptr_t at = reinterpret_cast<uintptr_t>(pending[k]->strings);
      __builtin_prefetch(reinterpret_cast<const void*>(at));
      __builtin_prefetch(reinterpret_cast<const void*>(at + 64));
    }
    for (size_t k = 0; k < m; ++k) UnpackInto(*pending[k], &batch[k]);
    sink(absl::MakeConstSpan(batch.data(), m));
    m = 0;
  };
  const auto emit = [&](Bucket& bucket, size_t n) {
    SortFirst(bucket, n);
    for (size_t i = 0; i < n; ++i) {
      pending[m++] = &bucket.events[i];
      if (m == kBatch) flush();
    }
  };
  for (auto it = buckets_.begin(); it != end; ++it) {
    emit(it->second, it->second.events.size());
  }
  if (partial > 0) emit(end->second, partial);
  if (m > 0) flush();
}

void ReorderBuffer::ReleaseBefore(absl::Time watermark, BatchSink sink) {
  if (watermark == absl::InfinitePast()) return;
  if (watermark == absl::InfiniteFuture()) return ReleaseAll(sink);
  const int64_t watermark_us = absl::ToUnixMicros(watermark);
  const int64_t last = SecondOf(watermark_us);
  // The buckets of seconds before the watermark's go whole, in one run.
  auto end = buckets_.begin();
  size_t total = 0;
  for (; end != buckets_.end() && end->first < last; ++end) {
    total += end->second.events.size();
  }
  // The watermark's own second: only what is strictly before it goes. A
  // stable partition keeps the checkpointed events first among those that
  // stay.
  size_t partial = 0;
  size_t released_checkpointed = 0;
  if (end != buckets_.end() && end->first == last) {
    Bucket& bucket = end->second;
    for (size_t i = 0; i < bucket.checkpointed; ++i) {
      released_checkpointed += bucket.events[i].time_us < watermark_us;
    }
    auto keep = std::stable_partition(
        bucket.events.begin(), bucket.events.end(),
        [&](const Packed& p) { return p.time_us < watermark_us; });
    partial = static_cast<size_t>(keep - bucket.events.begin());
    total += partial;
  }
  if (total == 0) return;
  EmitSorted(end, partial, total, sink);
  size_ -= total;
  while (buckets_.begin() != end) Erase(buckets_.begin());
  if (partial > 0) {
    Bucket& bucket = end->second;
    bucket.events.erase(bucket.events.begin(), bucket.events.begin() + partial);
    bucket.checkpointed -= released_checkpointed;
    if (bucket.events.empty()) Erase(end);
  }
}

void ReorderBuffer::ReleaseAll(BatchSink sink) {
  // Counted over the buckets: the batch is sized by it.
  size_t total = 0;
  for (const auto& [second, bucket] : buckets_) total += bucket.events.size();
  if (total > 0) EmitSorted(buckets_.end(), 0, total, sink);
  while (!buckets_.empty()) Erase(buckets_.begin());
  size_ = 0;
}

size_t ReorderBuffer::Checkpoint(bool full, Sink write, RefSink write_ref) {
  size_t written = 0;
  for (auto& [second, bucket] : buckets_) {
    for (size_t i = full ? 0 : bucket.checkpointed; i < bucket.events.size();
         ++i) {
      const Packed& p = bucket.events[i];
      if (p.record_offset >= 0) {
        write_ref(p.record_offset, p.time_us);
      } else {
        write(Unpack(p));
      }
      ++written;
    }
    bucket.checkpointed = bucket.events.size();
  }
  return written;
}

void ReorderBuffer::DropBefore(absl::Time frontier) {
  if (frontier == absl::InfinitePast()) return;
  if (frontier == absl::InfiniteFuture()) {
    while (!buckets_.empty()) Erase(buckets_.begin());
    size_ = 0;
    return;
  }
  const int64_t frontier_us = MicrosOf(frontier);
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Bucket& bucket = it->second;
    if (SecondOf(frontier_us) < it->first) break;
    size_t checkpointed_dropped = 0;
    for (size_t i = 0; i < bucket.checkpointed; ++i) {
      checkpointed_dropped += bucket.events[i].time_us < frontier_us;
    }
    auto keep = std::stable_partition(
        bucket.events.begin(), bucket.events.end(),
        [&](const Packed& p) { return p.time_us < frontier_us; });
    const size_t n = static_cast<size_t>(keep - bucket.events.begin());
    bucket.events.erase(bucket.events.begin(), keep);
    bucket.checkpointed -= checkpointed_dropped;
    size_ -= n;
    if (bucket.events.empty()) {
      it = Erase(it);
    } else {
      ++it;
    }
  }
}

size_t ReorderBuffer::Held(const Bucket& b) {
  return 96 /* map node + Bucket */ + b.events.capacity() * sizeof(Packed) +
         b.arena.capacity();
}

size_t ReorderBuffer::RecountBytes() const {
  size_t bytes = 0;
  for (const auto& [second, bucket] : buckets_) bytes += Held(bucket);
  for (const Buckets::node_type& node : spare_) bytes += Held(node.mapped());
  return bytes;
}

}  // namespace kpistream
