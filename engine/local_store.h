// LocalStore: the engine's state on local disk (RocksDB), as Kafka Streams
// and Flink keep large state (SPEC §5; config processing.state_dir).
//
// It holds, per input partition:
//   - the days of the partition's long-lived memories (visitors' last days
//     with a session for 400 days, counted orders for 30): RocksDayStore,
//     so that RAM stays bounded (RocksDB's block cache and write buffers)
//     however many visitors a site has;
//   - a mirror of the partition's live checkpoint records in the changelog
//     (engine/checkpoint_log.h);
//   - how far in the changelog both go (v1::LocalPartitionMeta).
// The changelog stays the source of truth: every change is written there
// first, in the commit's transaction, and reaches the store only once that
// commit succeeded. The store keeps no write-ahead log: after a crash it
// holds an earlier point of its writes (its last memtable flush), and the
// restore reads the changelog on from there. A restore then reads the store and
// only the changelog records after its position, instead of the whole
// changelog; a store that is missing, of another cluster or topic, or ahead of
// the changelog is wiped and rebuilt from the changelog.
//
// A RocksDayStore keeps the changes since the last commit in RAM (what a
// commit that aborts must forget), writes them to the changelog as one day
// record per entry (checkpoint_log.h DayKey), and into the store when the
// commit succeeded (Committed()). Once a restore loaded it (LoadFilter()),
// a filter of the keys the store holds answers most lookups of keys it
// does not hold without reading RocksDB.
//
// Thread-safe (RocksDB is); a RocksDayStore has one owner.
#ifndef KPISTREAM_ENGINE_LOCAL_STORE_H_
#define KPISTREAM_ENGINE_LOCAL_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "aggregate/day_store.h"
#include "aggregate/fingerprint_filter.h"
#include "engine/checkpoint_log.h"
#include "kafka/record.h"
#include "kpistream/v1/state.pb.h"

namespace rocksdb {
class Cache;
class DB;
class Env;
struct WriteOptions;
class WriteBatch;
}  // namespace rocksdb

namespace kpistream {

class LocalStore {
 public:
  struct Options {
    std::string dir;
    // RAM: the block cache plus at most two write buffers.
    size_t block_cache_bytes = size_t{32} << 20;
    size_t write_buffer_bytes = size_t{8} << 20;
    // The environment RocksDB reads and writes files through; null: the
    // default one (tests give one whose reads fail).
    rocksdb::Env* env = nullptr;
  };

  // Opens (creating) the store in `options.dir`. An error names the
  // directory and the cause (e.g. another process holds it).
  static absl::StatusOr<std::unique_ptr<LocalStore>> Open(
      const Options& options);
  ~LocalStore();

  // One atomic write.
  class Batch {
   public:
    Batch();
    ~Batch();
    // A checkpoint record of `tp` as the changelog has it (nullopt: a
    // tombstone).
    void Mirror(const TopicPartition& tp, absl::string_view key,
                const std::optional<std::string>& value);
    void ClearMirror(const TopicPartition& tp);
    void SetMeta(const TopicPartition& tp, const v1::LocalPartitionMeta& meta);
    // A day entry; `committed` is the entry's day in the store before
    // (its index entry goes), nullopt when it has none.
    void PutDay(const TopicPartition& tp, char kind, uint64_t fingerprint,
                int32_t day, std::optional<int32_t> committed);
    void DeleteDay(const TopicPartition& tp, char kind, uint64_t fingerprint,
                   std::optional<int32_t> committed);
    // Many day entries of one partition and kind at once, as PutDay (`day`
    // set) or DeleteDay (`day` nullopt) each would write them, but in key
    // order: RocksDB inserts a batch's keys into its memtable in the order
    // given, and an insert next to the previous one skips most of the skip
    // list's comparisons. Reorders `changes`.
    struct DayChange {
      uint64_t fingerprint;
      std::optional<int32_t> day;
      std::optional<int32_t> committed;
    };
    void Days(const TopicPartition& tp, char kind,
              std::vector<DayChange>* changes);
    size_t count() const { return count_; }
    // Forgets what it holds (Write() does so after writing).
    void Clear();

   private:
    friend class LocalStore;
    std::unique_ptr<rocksdb::WriteBatch> batch_;
    size_t count_ = 0;
  };
  absl::Status Write(Batch* batch);

  // How far `tp`'s state in the store goes; nullopt when the store has none
  // (or one it cannot parse). A read error is an error.
  absl::StatusOr<std::optional<v1::LocalPartitionMeta>> Meta(
      const TopicPartition& tp);
  // Removes everything of `tp`.
  absl::Status Wipe(const TopicPartition& tp);
  // The mirrored checkpoint records of `tp`.
  absl::Status ForEachMirrored(
      const TopicPartition& tp,
      absl::FunctionRef<void(absl::string_view key, absl::string_view value)>
          record);

  // The entry's day; nullopt when there is none. A read error (a corrupt
  // file, an I/O error) is an error naming the directory, never "none": a
  // returning visitor would be counted as new, silently.
  absl::StatusOr<std::optional<int32_t>> GetDay(const TopicPartition& tp,
                                                char kind,
                                                uint64_t fingerprint);
  // The entries of `tp`'s `kind` with a day < `threshold`, oldest first.
  absl::Status ForEachDayBefore(
      const TopicPartition& tp, char kind, int32_t threshold,
      absl::FunctionRef<void(uint64_t fingerprint, int32_t day)> entry);
  // The fingerprint of every day entry of `tp`'s `kind`, in key order.
  absl::Status ForEachDay(const TopicPartition& tp, char kind,
                          absl::FunctionRef<void(uint64_t fingerprint)> entry);
  // Number of day entries of `tp`'s `kind` (a full scan: tests, benchmarks).
  size_t CountDays(const TopicPartition& tp, char kind);

  // RAM the store holds: block cache and write buffers.
  size_t MemoryBytes() const;
  const std::string& dir() const { return dir_; }

 private:
  LocalStore() = default;
  // How every write is made (no write-ahead log).
  static rocksdb::WriteOptions Writes();
  // Every entry with a key in [begin, end), in key order.
  absl::Status Scan(
      const std::string& begin, const std::string& end,
      absl::FunctionRef<void(absl::string_view key, absl::string_view value)>
          entry);
  std::string dir_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::unique_ptr<rocksdb::DB> db_;
};

// Applies the changelog's day records (checkpoint_log.h DayKey), in offset
// order, to a LocalStore: what a restore does with them. Writes a batch
// every 50,000 records. The changelog may hold several records of one entry
// (not compacted yet): within a batch the last one wins, and the entries
// are written in key order (LocalStore::Batch::Days), as a commit writes
// them. In the records' order, the fingerprints' randomness had RocksDB
// search its memtable from the top for every key (a cold rebuild of the
// store, state_bench: most of its time).
class DayRecordWriter {
 public:
  explicit DayRecordWriter(LocalStore* store) : store_(store) {}
  // `day` nullopt: a tombstone (the entry expired).
  void Apply(const TopicPartition& tp, char kind, uint64_t fingerprint,
             std::optional<int32_t> day);
  // Writes what is left; the first error of any write.
  absl::Status Finish();

 private:
  static constexpr size_t kBatchRecords = 50000;
  struct Record {
    uint32_t part;  // index into parts_
    char kind;
    uint64_t fingerprint;
    std::optional<int32_t> day;
  };
  void Flush();

  LocalStore* store_;
  LocalStore::Batch batch_;
  std::vector<TopicPartition> parts_;  // of the records, each once
  absl::flat_hash_map<TopicPartition, uint32_t> part_index_;  // in parts_
  uint32_t last_part_ = UINT32_MAX;  // of the last record
  std::vector<Record> records_;      // in the changelog's order
  std::vector<LocalStore::Batch::DayChange> changes_;  // Flush()'s, reused
  absl::Status error_;
};

// A partition's days of one kind ('v' visitors, 'o' orders) in a
// LocalStore.
class RocksDayStore final : public DayStore {
 public:
  // `store` outlives this.
  RocksDayStore(LocalStore* store, TopicPartition tp, char kind)
      : store_(store), tp_(std::move(tp)), kind_(kind) {}

  std::optional<int32_t> Get(uint64_t key) override;
  void Put(uint64_t key, int32_t day) override;
  void ExpireBefore(int32_t threshold) override;
  size_t ApproximateBytes() const override;

  // Reads every key of this partition and kind in the store into a filter
  // (aggregate/fingerprint_filter.h), which Get() asks first from then on:
  // a key it never held is answered without reading RocksDB. Call it once
  // nothing else writes this partition's entries any more (after a
  // restore); until then every Get() reads the store. A full scan of the
  // partition's entries.
  // ExpireBefore() builds it again once it holds more than twice the keys
  // of the entries left.
  absl::Status LoadFilter();
  bool filter_loaded() const { return filter_.has_value(); }
  size_t filter_keys() const { return filter_ ? filter_->keys() : 0; }

  // The changelog records of the changes since the last commit (entries
  // read since are remembered until then too, but write nothing).
  void ChangelogRecords(std::vector<ChangelogRecord>* out) const;
  // The commit holding those records succeeded: the changes go into
  // `batch` and are forgotten here.
  void Committed(LocalStore::Batch* batch);
  // Not OK once reading the store failed (a lookup or an expiry): what
  // was processed since is wrong, and must not be committed.
  const absl::Status& error() const { return error_; }

 private:
  static constexpr int32_t kDeleted = INT32_MIN;
  struct Change {
    int32_t day = kDeleted;            // kDeleted: forgotten
    std::optional<int32_t> committed;  // in the store before
  };
  Change& ChangeOf(uint64_t key);

  LocalStore* store_;
  TopicPartition tp_;
  char kind_;
  absl::flat_hash_map<uint64_t, Change> changes_;
  // Every key in the store (and more: deleted ones, uncommitted puts), once
  // loaded.
  std::optional<FingerprintFilter> filter_;
  size_t live_ = 0;  // entries in the store, once the filter is loaded
  std::vector<LocalStore::Batch::DayChange> sorted_;  // Committed()'s, reused
  absl::Status error_;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_LOCAL_STORE_H_
