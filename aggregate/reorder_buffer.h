// ReorderBuffer: holds events until the watermark passes them, then hands
// them out in event-time order (ties broken by record offset, i.e. the
// order they came in, then by event_id), so that the
// Sessionizer sees each visitor's events in order whenever the input's
// disorder stays within the watermark's max out-of-orderness.
//
// Storage: one bucket per second of event time; an event's strings are
// packed into its bucket's byte arena (one append, no allocation per event
// once the arenas have grown), so Push is O(1) and a release sorts only the
// buckets it empties. The user agent is not kept.
//
// Checkpoints: Checkpoint() hands out the events pushed since the last call
// that are still buffered (every buffered event with `full`); Restore()
// pushes an event from a checkpoint, and DropBefore(frontier) then forgets
// those the watermark had released since (release is exactly "time <
// watermark", so the frontier decides).
// Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_REORDER_BUFFER_H_
#define KPISTREAM_AGGREGATE_REORDER_BUFFER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "aggregate/event.h"

namespace kpistream {

class ReorderBuffer {
 public:
  ReorderBuffer() = default;
  // The lookup cache points into the buckets' nodes.
  ReorderBuffer(const ReorderBuffer&) = delete;
  ReorderBuffer& operator=(const ReorderBuffer&) = delete;

  using Sink = absl::FunctionRef<void(const EventView&)>;
  // Consecutive events at once (a few dozen), so that the sink can look
  // ahead (Sessionizer::AddAll prefetches).
  using BatchSink = absl::FunctionRef<void(absl::Span<const EventView>)>;

  // Copies the event's fields (views may die after the call).
  void Push(const EventView& event);

  // Hands every buffered event with time < `watermark` to `sink`, in
  // (time, record_offset, event_id) order, in batches of up to 64, and
  // forgets them. The views passed to `sink` are valid during the call
  // only.
  void ReleaseBefore(absl::Time watermark, BatchSink sink);

  // Releases everything, in order.
  void ReleaseAll(BatchSink sink);

  // An event with a record offset, by reference: (record_offset, time_us).
  using RefSink = absl::FunctionRef<void(int64_t, int64_t)>;

  // Passes the events pushed since the last call and still buffered (all of
  // them with `full`) to `write_ref` when they have a record offset (not
  // unpacked), to `write` when not; counts them as checkpointed.
  size_t Checkpoint(bool full, Sink write, RefSink write_ref);
  // Pushes an event read from a checkpoint (already checkpointed).
  void Restore(const EventView& event);
  // Forgets every event with time < `frontier` without releasing it.
  void DropBefore(absl::Time frontier);

  size_t size() const { return size_; }
  // O(1): kept up to date as buckets come, grow and go.
  size_t ApproximateBytes() const { return bytes_; }
  // The same, counted over every bucket (for tests).
  size_t RecountBytes() const;

 private:
  struct Packed {
    int64_t time_us;
    // The event_id's first 8 bytes, big-endian, zero-padded: ties of time
    // are mostly told apart without reading the arena.
    uint64_t id_prefix;
    int64_t value_micros;
    int64_t record_offset;
    const char* strings;  // in the bucket's arena
    uint32_t session_number;
    EventType type;
  };
  // Bytes in blocks that never move (what was appended stays where it is,
  // so a bucket that grows copies nothing: doubling one buffer copied 2 %
  // of the core's instructions on a partition of many events a second),
  // not zero-filled (a std::string's resize wrote every byte twice).
  class Arena {
   public:
    // The bytes it holds: its blocks and their list.
    size_t capacity() const {
      return capacity_ + blocks_.capacity() * sizeof(Block);
    }
    // Forgets the contents, keeping the newest (largest) block.
    void clear();
    // `n` more bytes, contiguous, left for the caller to write.
    char* Append(size_t n);

   private:
    struct Block {
      std::unique_ptr<char[]> data;
      size_t size = 0;
      size_t capacity = 0;
    };
    std::vector<Block> blocks_;
    size_t capacity_ = 0;  // of every block
  };
  struct Bucket {
    std::vector<Packed> events;
    Arena arena;
    size_t checkpointed = 0;  // the first `checkpointed` events are
  };

  using Buckets = std::map<int64_t, Bucket>;

  // The buckets of recent lookups, direct-mapped by second: an event
  // behind the newest second found its bucket by a walk down the tree, a
  // few cache misses each (BucketOf was 2.0 % of the engine's samples on
  // the end-to-end benchmark). An entry points into its bucket's map node,
  // which stays put while it is in the map; Erase() clears it.
  struct Cached {
    int64_t second = 0;
    Bucket* bucket = nullptr;
  };
  static constexpr size_t kCached = 64;
  static size_t CacheIndex(int64_t second) {
    return static_cast<uint64_t>(second) % kCached;
  }

  // The bucket of `second`, made from a spare node when there is one:
  // from the cache, else FindOrMake().
  Bucket& BucketOf(int64_t second);
  Bucket& FindOrMake(int64_t second);
  // Erases the bucket at `it`, keeping its node (and the capacity of its
  // events and arena) as a spare: at a few events per partition and second,
  // a new bucket per event would cost three allocations each.
  Buckets::iterator Erase(Buckets::iterator it);

  // What a bucket holds: its map node and its vectors' capacity.
  static size_t Held(const Bucket& bucket);
  void Append(const EventView& event, Bucket& bucket);
  static EventView Unpack(const Packed& packed);
  // The same into `*out`, every field of it written.
  static void UnpackInto(const Packed& packed, EventView* out);
  static absl::string_view EventId(const Packed& packed);
  // Sorts the first `n` events of `bucket`.
  static void SortFirst(Bucket& bucket, size_t n);
  // Emits, in order and in batches that run on across buckets, every event
  // of the buckets before `end` and the first `partial` events of `end`'s
  // (`total` events in all).
  void EmitSorted(Buckets::iterator end, size_t partial, size_t total,
                  BatchSink sink);

  Buckets buckets_;                        // key: floor(unix seconds)
  std::vector<Buckets::node_type> spare_;  // at most kMaxSpare, small ones
  std::array<Cached, kCached> cached_;
  size_t size_ = 0;
  size_t bytes_ = 0;  // ApproximateBytes(): Held() of every bucket and spare
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_REORDER_BUFFER_H_
