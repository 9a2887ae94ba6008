#include "engine/local_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <tuple>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "aggregate/memory_estimate.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace kpistream {
namespace {

// Key layout: one letter for what it is, then the partition, then the rest:
//   m<tp>                          -> LocalPartitionMeta
//   c<tp><changelog key>           -> the checkpoint record's value
//   v<tp><kind><fingerprint>       -> day (4 bytes, big-endian, biased)
//   d<tp><kind><day><fingerprint>  -> "" (days in order: expiry scans)
// <tp> is the topic, a NUL, and the partition (4 bytes big-endian).
std::string PartKey(char what, const TopicPartition& tp) {
  std::string key;
  key.reserve(tp.topic.size() + 6 + 13);
  key.push_back(what);
  key.append(tp.topic);
  key.push_back('\0');
  char be[4];
  absl::big_endian::Store32(be, static_cast<uint32_t>(tp.partition));
  key.append(be, 4);
  return key;
}

// Days sort as unsigned big-endian numbers once biased.
void AppendDay(std::string* key, int32_t day) {
  char be[4];
  absl::big_endian::Store32(be, static_cast<uint32_t>(day) ^ 0x80000000u);
  key->append(be, 4);
}

int32_t ReadDay(const char* p) {
  return static_cast<int32_t>(absl::big_endian::Load32(p) ^ 0x80000000u);
}

void AppendFingerprint(std::string* key, uint64_t fingerprint) {
  char be[8];
  absl::big_endian::Store64(be, fingerprint);
  key->append(be, 8);
}

std::string DayEntryKey(const TopicPartition& tp, char kind,
                        uint64_t fingerprint) {
  std::string key = PartKey('v', tp);
  key.push_back(kind);
  AppendFingerprint(&key, fingerprint);
  return key;
}

std::string DayIndexKey(const TopicPartition& tp, char kind, int32_t day,
                        uint64_t fingerprint) {
  std::string key = PartKey('d', tp);
  key.push_back(kind);
  AppendDay(&key, day);
  AppendFingerprint(&key, fingerprint);
  return key;
}

// The first key after every key that starts with `prefix`.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;  // every key: no bound (not reached: prefixes start with a
                  // letter)
}

absl::Status FromRocks(absl::string_view what, const std::string& dir,
                       const rocksdb::Status& s) {
  std::string message =
      absl::StrCat(what, " the local state in \"", dir,
                   "\" (processing.state_dir): ", s.ToString());
  // An I/O error on the store's LOCK file, which another process holds
  // ("While lock file: <dir>/LOCK: Resource temporarily unavailable"; "lock
  // hold by current process ... <dir>/LOCK" within one); not "lock" alone,
  // which a damaged table's "block checksum mismatch" has too (an audit: a
  // corrupted store was said to be another process's).
  if (s.IsIOError() && absl::StrContains(s.ToString(), "/LOCK")) {
    absl::StrAppend(&message,
                    " (another process uses this directory: every instance "
                    "needs its own processing.state_dir)");
  }
  return absl::UnavailableError(message);
}

// A read that failed: a damaged store's error says what to do about it.
absl::Status ReadError(const std::string& dir, const rocksdb::Status& s) {
  absl::Status status = FromRocks("cannot read", dir, s);
  if (!s.IsCorruption() && !s.IsIOError()) return status;
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(),
                   " (a damaged store: stop the instance, delete the "
                   "directory, and start it again; the state is rebuilt from "
                   "the changelog)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalStore>> LocalStore::Open(
    const Options& options) {
  std::unique_ptr<LocalStore> store(new LocalStore());
  store->dir_ = options.dir;
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the local state directory \"", options.dir,
                     "\" (processing.state_dir): ", ec.message()));
  }
  // Few shards: a shard smaller than a file's filter block (about 1.2 MB
  // per million keys) cannot cache it, and every lookup would read it again.
  store->cache_ = rocksdb::NewLRUCache(options.block_cache_bytes,
                                       /*num_shard_bits=*/1);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = store->cache_;
  // Most lookups are of visitors never seen: a bloom filter answers them
  // without reading a block.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::Options db;
  if (options.env != nullptr) db.env = options.env;
  db.create_if_missing = true;
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db.write_buffer_size = options.write_buffer_bytes;
  // A bloom filter over the memtables' keys: a session start looks up a
  // visitor's day, and most are absent from memtables that are mostly
  // checkpoint mirror records; without it every lookup searched each
  // memtable's skip list (perf: 2.9 % of the engine's samples, keyed JSON).
  db.memtable_whole_key_filtering = true;
  db.memtable_prefix_bloom_size_ratio = 0.05;
  db.max_write_buffer_number = 2;
  // Uncompressed in the levels that take every flush and most compactions
  // (RocksDB's tuning guide; most of what is written here is checkpoint
  // mirror records soon deleted again); the default (snappy) below them.
  db.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression,
                              db.compression};
  db.max_open_files = 256;
  db.keep_log_file_num = 2;
  db.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db, options.dir, &raw);
  if (!s.ok()) return FromRocks("cannot open", options.dir, s);
  store->db_.reset(raw);
  return store;
}

LocalStore::~LocalStore() {
  // Writes skip RocksDB's write-ahead log (Writes()): what the memtables
  // hold goes to disk here, so that a restart after a clean stop reads
  // nothing from the changelog. (RocksDB would flush on close too; said
  // here, where the reason is.) A failure only means a longer restore.
  if (db_ != nullptr) db_->Flush(rocksdb::FlushOptions());
}

LocalStore::Batch::Batch() : batch_(std::make_unique<rocksdb::WriteBatch>()) {}
LocalStore::Batch::~Batch() = default;

void LocalStore::Batch::Mirror(const TopicPartition& tp, absl::string_view key,
                               const std::optional<std::string>& value) {
  std::string k = PartKey('c', tp);
  k.append(key.data(), key.size());
  if (value.has_value()) {
    batch_->Put(k, *value);
  } else {
    batch_->Delete(k);
  }
  ++count_;
}

void LocalStore::Batch::ClearMirror(const TopicPartition& tp) {
  const std::string begin = PartKey('c', tp);
  batch_->DeleteRange(begin, PrefixEnd(begin));
  ++count_;
}

void LocalStore::Batch::SetMeta(const TopicPartition& tp,
                                const v1::LocalPartitionMeta& meta) {
  batch_->Put(PartKey('m', tp), meta.SerializeAsString());
  ++count_;
}

void LocalStore::Batch::PutDay(const TopicPartition& tp, char kind,
                               uint64_t fingerprint, int32_t day,
                               std::optional<int32_t> committed) {
  if (committed == day) return;
  if (committed.has_value()) {
    batch_->Delete(DayIndexKey(tp, kind, *committed, fingerprint));
  }
  std::string value;
  AppendDay(&value, day);
  batch_->Put(DayEntryKey(tp, kind, fingerprint), value);
  batch_->Put(DayIndexKey(tp, kind, day, fingerprint), "");
  ++count_;
}

void LocalStore::Batch::DeleteDay(const TopicPartition& tp, char kind,
                                  uint64_t fingerprint,
                                  std::optional<int32_t> committed) {
  if (!committed.has_value()) return;
  batch_->Delete(DayIndexKey(tp, kind, *committed, fingerprint));
  batch_->Delete(DayEntryKey(tp, kind, fingerprint));
  ++count_;
}

void LocalStore::Batch::Days(const TopicPartition& tp, char kind,
                             std::vector<DayChange>* changes) {
  // The entries ('v' keys) by fingerprint, then the index entries ('d'
  // keys) by (day, fingerprint): the old days' deletes and the new days'
  // puts are distinct keys (an unchanged day writes nothing), so their
  // order does not matter to the result.
  std::sort(changes->begin(), changes->end(),
            [](const DayChange& a, const DayChange& b) {
              return a.fingerprint < b.fingerprint;
            });
  std::string key = PartKey('v', tp);
  key.push_back(kind);
  const size_t entry_prefix = key.size();
  std::string value;
  std::vector<std::pair<int32_t, uint64_t>> deleted, added;  // (day, fp)
  for (const DayChange& c : *changes) {
    if (c.day == c.committed) continue;
    key.resize(entry_prefix);
    AppendFingerprint(&key, c.fingerprint);
    if (c.day.has_value()) {
      value.clear();
      AppendDay(&value, *c.day);
      batch_->Put(key, value);
      added.emplace_back(*c.day, c.fingerprint);
    } else {
      batch_->Delete(key);
    }
    if (c.committed.has_value()) {
      deleted.emplace_back(*c.committed, c.fingerprint);
    }
    ++count_;
  }
  std::sort(deleted.begin(), deleted.end());
  std::sort(added.begin(), added.end());
  key = PartKey('d', tp);
  key.push_back(kind);
  const size_t index_prefix = key.size();
  auto index_key = [&](const std::pair<int32_t, uint64_t>& e) {
    key.resize(index_prefix);
    AppendDay(&key, e.first);
    AppendFingerprint(&key, e.second);
    return absl::string_view(key);
  };
  // Both lists merged in key order (big-endian biased days and
  // fingerprints sort as the pairs do).
  size_t d = 0, a = 0;
  while (d < deleted.size() || a < added.size()) {
    if (a == added.size() || (d < deleted.size() && deleted[d] < added[a])) {
      const absl::string_view k = index_key(deleted[d++]);
      batch_->Delete(rocksdb::Slice(k.data(), k.size()));
    } else {
      const absl::string_view k = index_key(added[a++]);
      batch_->Put(rocksdb::Slice(k.data(), k.size()), rocksdb::Slice());
    }
  }
}

rocksdb::WriteOptions LocalStore::Writes() {
  // No write-ahead log, as Kafka Streams' RocksDB stores: the changelog is
  // the source of truth, and the store only saves reading it. After a
  // crash the store holds what its last memtable flush wrote: an earlier
  // point of the same sequence of writes (a batch is never split; its meta
  // says how far in the changelog it goes), as if the process had stopped
  // then, and the restore reads the changelog on from there. The log cost
  // its writes and a software CRC32C of every byte (perf: ~1.5 % of the
  // engine's samples, keyed protobuf).
  rocksdb::WriteOptions options;
  options.disableWAL = true;
  return options;
}

absl::Status LocalStore::Write(Batch* batch) {
  if (batch->count_ == 0) return absl::OkStatus();
  rocksdb::Status s = db_->Write(Writes(), batch->batch_.get());
  if (!s.ok()) return FromRocks("cannot write", dir_, s);
  batch->Clear();
  return absl::OkStatus();
}

void LocalStore::Batch::Clear() {
  // A batch reused keeps its buffer: a commit's batch holds megabytes of
  // checkpoint records, and a new buffer that size is mapped afresh and
  // faulted in page by page (perf: the largest single source of the
  // engine's page faults). One grown by a full snapshot is let go.
  constexpr size_t kRetainedBytes = size_t{16} << 20;
  if (batch_->GetDataSize() > kRetainedBytes) {
    batch_ = std::make_unique<rocksdb::WriteBatch>();
  } else {
    batch_->Clear();
  }
  count_ = 0;
}

absl::StatusOr<std::optional<v1::LocalPartitionMeta>> LocalStore::Meta(
    const TopicPartition& tp) {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), PartKey('m', tp), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return ReadError(dir_, s);
  v1::LocalPartitionMeta meta;
  if (!meta.ParseFromString(value)) return std::nullopt;  // rebuilt
  return meta;
}

absl::Status LocalStore::Wipe(const TopicPartition& tp) {
  rocksdb::WriteBatch batch;
  for (char what : {'m', 'c', 'v', 'd'}) {
    const std::string begin = PartKey(what, tp);
    batch.DeleteRange(begin, PrefixEnd(begin));
  }
  rocksdb::Status s = db_->Write(Writes(), &batch);
  if (!s.ok()) return FromRocks("cannot clear", dir_, s);
  return absl::OkStatus();
}

absl::Status LocalStore::Scan(
    const std::string& begin, const std::string& end,
    absl::FunctionRef<void(absl::string_view, absl::string_view)> entry) {
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read));
  for (it->Seek(begin); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    const rocksdb::Slice value = it->value();
    entry(absl::string_view(key.data(), key.size()),
          absl::string_view(value.data(), value.size()));
  }
  if (!it->status().ok()) return ReadError(dir_, it->status());
  return absl::OkStatus();
}

absl::Status LocalStore::ForEachMirrored(
    const TopicPartition& tp,
    absl::FunctionRef<void(absl::string_view, absl::string_view)> record) {
  const std::string begin = PartKey('c', tp);
  return Scan(begin, PrefixEnd(begin),
              [&](absl::string_view key, absl::string_view value) {
                record(key.substr(begin.size()), value);
              });
}

absl::StatusOr<std::optional<int32_t>> LocalStore::GetDay(
    const TopicPartition& tp, char kind, uint64_t fingerprint) {
  std::string value;
  const rocksdb::Status s = db_->Get(
      rocksdb::ReadOptions(), DayEntryKey(tp, kind, fingerprint), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return ReadError(dir_, s);
  if (value.size() != 4) {
    return ReadError(dir_,
                     rocksdb::Status::Corruption(absl::StrCat(
                         "a day entry of ", value.size(), " bytes, not 4")));
  }
  return ReadDay(value.data());
}

absl::Status LocalStore::ForEachDayBefore(
    const TopicPartition& tp, char kind, int32_t threshold,
    absl::FunctionRef<void(uint64_t, int32_t)> entry) {
  std::string begin = PartKey('d', tp);
  begin.push_back(kind);
  std::string end = begin;
  AppendDay(&end, threshold);
  return Scan(begin, end, [&](absl::string_view key, absl::string_view) {
    if (key.size() != begin.size() + 12) return;
    const char* p = key.data() + begin.size();
    entry(absl::big_endian::Load64(p + 4), ReadDay(p));
  });
}

absl::Status LocalStore::ForEachDay(
    const TopicPartition& tp, char kind,
    absl::FunctionRef<void(uint64_t fingerprint)> entry) {
  std::string begin = PartKey('v', tp);
  begin.push_back(kind);
  return Scan(begin, PrefixEnd(begin),
              [&](absl::string_view key, absl::string_view) {
                if (key.size() != begin.size() + 8) return;
                entry(absl::big_endian::Load64(key.data() + begin.size()));
              });
}

size_t LocalStore::CountDays(const TopicPartition& tp, char kind) {
  size_t n = 0;
  (void)ForEachDay(tp, kind, [&](uint64_t) { ++n; });
  return n;
}

size_t LocalStore::MemoryBytes() const {
  uint64_t memtables = 0;
  db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &memtables);
  return cache_->GetUsage() + static_cast<size_t>(memtables);
}

void DayRecordWriter::Apply(const TopicPartition& tp, char kind,
                            uint64_t fingerprint, std::optional<int32_t> day) {
  // Records come in runs of one partition: the last one's index first.
  if (last_part_ >= parts_.size() ||
      parts_[last_part_].partition != tp.partition ||
      parts_[last_part_].topic != tp.topic) {
    auto [it, added] =
        part_index_.try_emplace(tp, static_cast<uint32_t>(parts_.size()));
    if (added) parts_.push_back(tp);
    last_part_ = it->second;
  }
  records_.push_back({last_part_, kind, fingerprint, day});
  if (records_.size() >= kBatchRecords) Flush();
}

void DayRecordWriter::Flush() {
  const auto entry = [](const Record& r) {
    return std::tie(r.part, r.kind, r.fingerprint);
  };
  // By entry; a stable sort keeps one entry's records in the changelog's
  // order, so the last of each run is the one that stands.
  std::stable_sort(
      records_.begin(), records_.end(),
      [&](const Record& a, const Record& b) { return entry(a) < entry(b); });
  for (size_t i = 0; i < records_.size();) {
    const Record& first = records_[i];
    changes_.clear();
    for (; i < records_.size() && records_[i].part == first.part &&
           records_[i].kind == first.kind;
         ++i) {
      const Record& r = records_[i];
      if (i + 1 < records_.size() && entry(records_[i + 1]) == entry(r)) {
        continue;  // a later record of the entry follows
      }
      std::optional<int32_t> committed;
      if (auto day = store_->GetDay(parts_[r.part], r.kind, r.fingerprint);
          day.ok()) {
        committed = *day;
      } else if (error_.ok()) {
        error_ = day.status();
      }
      changes_.push_back({r.fingerprint, r.day, committed});
    }
    batch_.Days(parts_[first.part], first.kind, &changes_);
  }
  records_.clear();
  if (absl::Status s = store_->Write(&batch_); !s.ok() && error_.ok()) {
    error_ = s;
  }
}

absl::Status DayRecordWriter::Finish() {
  Flush();
  return error_;
}

absl::Status RocksDayStore::LoadFilter() {
  // One pass over the store (8 bytes a key meanwhile), then a filter with
  // room for as many again before its first new layer.
  std::vector<uint64_t> keys;
  if (absl::Status s = store_->ForEachDay(
          tp_, kind_, [&](uint64_t key) { keys.push_back(key); });
      !s.ok()) {
    return s;
  }
  live_ = keys.size();
  // Puts of keys the store does not hold yet (the others were read from
  // it, and are in the scan); a key only looked up since, and absent, needs
  // no place (a Put adds it then).
  for (const auto& [key, c] : changes_) {
    if (!c.committed.has_value() && c.day != kDeleted) keys.push_back(key);
  }
  FingerprintFilter filter(2 * keys.size());
  for (uint64_t key : keys) filter.Add(key);
  filter_.emplace(std::move(filter));
  return absl::OkStatus();
}

RocksDayStore::Change& RocksDayStore::ChangeOf(uint64_t key) {
  auto [it, inserted] = changes_.try_emplace(key);
  if (inserted) {
    if (!filter_.has_value() || filter_->MayContain(key)) {
      auto day = store_->GetDay(tp_, kind_, key);
      if (day.ok()) {
        it->second.committed = *day;
      } else if (error_.ok()) {
        error_ = day.status();  // the commit fails on it (StreamThread)
      }
    }
    it->second.day = it->second.committed.value_or(kDeleted);
  }
  return it->second;
}

std::optional<int32_t> RocksDayStore::Get(uint64_t key) {
  // Remembered until the commit (unchanged entries write nothing): the
  // Put that usually follows a Get reads the store no second time.
  const Change& c = ChangeOf(key);
  if (c.day == kDeleted) return std::nullopt;
  return c.day;
}

void RocksDayStore::Put(uint64_t key, int32_t day) {
  Change& c = ChangeOf(key);
  // In the store once committed: in the filter from now on (unless it was
  // there already: a key in the store answered "maybe").
  if (filter_.has_value() && !c.committed.has_value() && c.day == kDeleted) {
    filter_->Add(key);
  }
  c.day = day;
}

void RocksDayStore::ExpireBefore(int32_t threshold) {
  // Committed entries that fall out (unless changed since), then the
  // changes that do.
  absl::Status s = store_->ForEachDayBefore(tp_, kind_, threshold,
                                            [&](uint64_t key, int32_t) {
                                              Change& c = ChangeOf(key);
                                              if (c.day < threshold)
                                                c.day = kDeleted;
                                            });
  if (!s.ok() && error_.ok()) error_ = s;
  for (auto& [key, c] : changes_) {
    if (c.day < threshold) c.day = kDeleted;
  }
  // The filter keeps the keys of expired entries: built again once it
  // holds more than twice the keys of the committed entries, at most as
  // often as it doubled, so that its RAM follows the store's entries, not
  // every key put since the restore.
  if (filter_.has_value() &&
      filter_->keys() > 2 * std::max(live_, FingerprintFilter::kMinCapacity)) {
    if (absl::Status load = LoadFilter(); !load.ok() && error_.ok()) {
      error_ = load;
    }
  }
}

size_t RocksDayStore::ApproximateBytes() const {
  return FlatMapBytes<uint64_t, Change>(changes_.capacity()) +
         sorted_.capacity() * sizeof(LocalStore::Batch::DayChange) +
         (filter_.has_value() ? filter_->ApproximateBytes() : 0);
}

void RocksDayStore::ChangelogRecords(std::vector<ChangelogRecord>* out) const {
  for (const auto& [key, c] : changes_) {
    if (c.day == kDeleted) {
      if (c.committed.has_value()) {
        out->push_back({DayKey(tp_, kind_, key), std::nullopt});
      }
    } else if (c.committed != c.day) {
      out->push_back({DayKey(tp_, kind_, key), absl::StrCat(c.day)});
    }
  }
}

void RocksDayStore::Committed(LocalStore::Batch* batch) {
  sorted_.clear();
  sorted_.reserve(changes_.size());
  for (const auto& [key, c] : changes_) {
    const bool was = c.committed.has_value(), is = c.day != kDeleted;
    sorted_.push_back(
        {key, is ? std::optional<int32_t>(c.day) : std::nullopt, c.committed});
    // The store's entries after this commit (the filter's rebuild point).
    if (is && !was) ++live_;
    if (was && !is && live_ > 0) --live_;
  }
  batch->Days(tp_, kind_, &sorted_);
  changes_.clear();
}

}  // namespace kpistream
