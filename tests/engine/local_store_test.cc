#include "engine/local_store.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace kpistream {
namespace {

// The entry's day (nullopt: none); a read error fails the test.
std::optional<int32_t> DayOf(LocalStore* store, const TopicPartition& tp,
                             char kind, uint64_t fingerprint) {
  auto day = store->GetDay(tp, kind, fingerprint);
  EXPECT_TRUE(day.ok()) << day.status();
  return day.value_or(std::nullopt);
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kpistream-store-XXXXXX")
            .string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string dir_;
};

// The persistent day store answers as the in-memory one does, through
// puts, expiries and commits, and again after the store is reopened; with
// its filter loaded (as a restore does: on the empty store, then on what
// the first round left) and without (the other partition's).
TEST_F(LocalStoreTest, DaysBehaveAsInMemoryThroughCommitsAndReopening) {
  const TopicPartition tp{"in", 3};
  MemoryDayStore memory, other_memory;
  std::mt19937_64 random(7);
  int32_t newest = 20000;
  for (int round = 0; round < 2; ++round) {
    auto store = LocalStore::Open({dir_});
    ASSERT_TRUE(store.ok()) << store.status();
    RocksDayStore days(store->get(), tp, 'v');
    RocksDayStore other(store->get(), TopicPartition{"in", 4}, 'v');
    ASSERT_TRUE(days.LoadFilter().ok());
    ASSERT_TRUE(days.filter_loaded());
    EXPECT_FALSE(other.filter_loaded());
    for (int step = 0; step < 20000; ++step) {
      const uint64_t key = random() % 2000;
      switch (random() % 10) {
        case 0:  // the newest day moves on
          newest += 1 + static_cast<int32_t>(random() % 3);
          memory.ExpireBefore(newest - 30);
          days.ExpireBefore(newest - 30);
          other_memory.ExpireBefore(newest - 30);
          other.ExpireBefore(newest - 30);
          break;
        case 1: {  // a commit
          LocalStore::Batch batch;
          days.Committed(&batch);
          other.Committed(&batch);
          ASSERT_TRUE((*store)->Write(&batch).ok());
          break;
        }
        default: {
          const int32_t day = newest - static_cast<int32_t>(random() % 25);
          memory.Put(key, day);
          days.Put(key, day);
          other.Put(key, day + 1);  // another partition: kept apart
          other_memory.Put(key, day + 1);
        }
      }
      ASSERT_EQ(days.Get(key), memory.Get(key)) << "step " << step;
      ASSERT_EQ(other.Get(key), other_memory.Get(key)) << "step " << step;
    }
    LocalStore::Batch batch;
    days.Committed(&batch);
    other.Committed(&batch);
    ASSERT_TRUE((*store)->Write(&batch).ok());
    size_t live = 0;
    for (uint64_t key = 0; key < 2000; ++key) {
      ASSERT_EQ(days.Get(key), memory.Get(key)) << "key " << key;
      live += memory.Get(key).has_value();
    }
    EXPECT_EQ((*store)->CountDays(tp, 'v'), live);
    // The day index holds one entry per live entry: stale ones were
    // removed when an entry's day moved.
    size_t indexed = 0;
    ASSERT_TRUE((*store)
                    ->ForEachDayBefore(tp, 'v', INT32_MAX,
                                       [&](uint64_t, int32_t) { ++indexed; })
                    .ok());
    EXPECT_EQ(indexed, live);
  }
}

// Batch::Days writes what PutDay and DeleteDay write one by one, whatever
// the order it is given: the same entries, the same index entries, the same
// count of changes (an unchanged day and an absent entry deleted again
// write nothing).
TEST_F(LocalStoreTest, DaysInKeyOrderWriteWhatOneByOneWrites) {
  const TopicPartition tp{"in", 5};
  auto one = LocalStore::Open({dir_ + "/one"});
  auto many = LocalStore::Open({dir_ + "/many"});
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(many.ok()) << many.status();
  std::mt19937_64 random(11);
  // What each store holds, as a commit's `committed` would say.
  std::map<uint64_t, int32_t> held;
  for (int round = 0; round < 30; ++round) {
    std::vector<LocalStore::Batch::DayChange> changes;
    std::map<uint64_t, std::optional<int32_t>> next;
    for (int i = 0; i < 300; ++i) {
      const uint64_t fp = random() % 500 * 0x9E3779B97F4A7C15ull;
      if (next.count(fp)) continue;  // one change per entry and commit
      std::optional<int32_t> committed;
      if (auto it = held.find(fp); it != held.end()) committed = it->second;
      std::optional<int32_t> day;
      switch (random() % 4) {
        case 0:
          break;  // deleted (or, absent, stays absent)
        case 1:
          day = committed;  // unchanged
          break;
        default:
          day = 20000 + static_cast<int32_t>(random() % 40) - 20;
      }
      changes.push_back({fp, day, committed});
      next[fp] = day;
    }
    LocalStore::Batch a, b;
    for (const auto& c : changes) {
      if (c.day.has_value()) {
        a.PutDay(tp, 'v', c.fingerprint, *c.day, c.committed);
      } else {
        a.DeleteDay(tp, 'v', c.fingerprint, c.committed);
      }
    }
    b.Days(tp, 'v', &changes);
    EXPECT_EQ(b.count(), a.count()) << "round " << round;
    ASSERT_TRUE((*one)->Write(&a).ok());
    ASSERT_TRUE((*many)->Write(&b).ok());
    for (const auto& [fp, day] : next) {
      if (day.has_value()) {
        held[fp] = *day;
      } else {
        held.erase(fp);
      }
    }
  }
  auto index = [&](LocalStore* store) {
    std::vector<std::pair<uint64_t, int32_t>> entries;
    EXPECT_TRUE(store
                    ->ForEachDayBefore(tp, 'v', INT32_MAX,
                                       [&](uint64_t fp, int32_t day) {
                                         entries.emplace_back(fp, day);
                                       })
                    .ok());
    return entries;
  };
  const auto from_one = index(one->get());
  EXPECT_EQ(from_one.size(), held.size());
  EXPECT_EQ(index(many->get()), from_one);
  EXPECT_EQ((*many)->CountDays(tp, 'v'), held.size());
  for (const auto& [fp, day] : held) {
    EXPECT_EQ(DayOf(many->get(), tp, 'v', fp), day);
    EXPECT_EQ(DayOf(one->get(), tp, 'v', fp), day);
  }
}

// An uncompacted changelog holds several records of one entry, within one
// batch and across batches: the store ends with the last one, and its day
// index with one entry per live entry.
TEST_F(LocalStoreTest, DayRecordsApplyInOrderWithinAndAcrossBatches) {
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  const TopicPartition tp{"in", 0};
  {
    DayRecordWriter writer(store->get());
    writer.Apply(tp, 'v', 1, 100);
    writer.Apply(tp, 'v', 1, 105);  // the same batch
    writer.Apply(tp, 'v', 2, 100);
    writer.Apply(tp, 'v', 2, std::nullopt);  // expired
    writer.Apply(tp, 'v', 3, 90);
    ASSERT_TRUE(writer.Finish().ok());
  }
  {
    DayRecordWriter writer(store->get());  // a later batch
    writer.Apply(tp, 'v', 3, 110);
    ASSERT_TRUE(writer.Finish().ok());
  }
  EXPECT_EQ(DayOf(store->get(), tp, 'v', 1), 105);
  EXPECT_EQ(DayOf(store->get(), tp, 'v', 2), std::nullopt);
  EXPECT_EQ(DayOf(store->get(), tp, 'v', 3), 110);
  std::vector<std::pair<uint64_t, int32_t>> index;
  ASSERT_TRUE((*store)
                  ->ForEachDayBefore(tp, 'v', INT32_MAX,
                                     [&](uint64_t key, int32_t day) {
                                       index.push_back({key, day});
                                     })
                  .ok());
  EXPECT_EQ(index,
            (std::vector<std::pair<uint64_t, int32_t>>{{1, 105}, {3, 110}}));
}

// A restore's day records in bulk: two input partitions and both kinds
// interleaved, entries written, rewritten, expired and written again within
// and across batches (the writer sorts each batch by entry). The store ends
// with each entry's last record, and each day index with exactly the live
// entries, as if the records had been applied one by one.
TEST_F(LocalStoreTest, DayRecordsInBulkEndAsAppliedOneByOne) {
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<TopicPartition> tps = {{"in", 0}, {"in", 7}};
  const std::vector<char> kinds = {'v', 'o'};
  // Held before the restore: some entries the records then change.
  std::map<std::tuple<size_t, char, uint64_t>, int32_t> model;
  {
    LocalStore::Batch batch;
    for (uint64_t f = 0; f < 300; f += 3) {
      batch.PutDay(tps[0], 'v', f, 20000, std::nullopt);
      model[{0, 'v', f}] = 20000;
    }
    ASSERT_TRUE((*store)->Write(&batch).ok());
  }
  std::mt19937_64 rng(5);
  size_t tombstones = 0;
  {
    DayRecordWriter writer(store->get());
    for (int i = 0; i < 120000; ++i) {  // more than two batches
      const size_t t = rng() % tps.size();
      const char kind = kinds[rng() % kinds.size()];
      const uint64_t f = rng() % 1000;
      if (rng() % 5 == 0) {
        writer.Apply(tps[t], kind, f, std::nullopt);
        tombstones += model.erase({t, kind, f});
      } else {
        const int32_t day = 20000 + static_cast<int32_t>(rng() % 400);
        writer.Apply(tps[t], kind, f, day);
        model[{t, kind, f}] = day;
      }
    }
    ASSERT_TRUE(writer.Finish().ok());
  }
  EXPECT_GT(tombstones, 1000u);
  for (size_t t = 0; t < tps.size(); ++t) {
    for (char kind : kinds) {
      std::vector<std::pair<uint64_t, int32_t>> expected, index;
      for (uint64_t f = 0; f < 1000; ++f) {
        auto it = model.find({t, kind, f});
        const std::optional<int32_t> want =
            it == model.end() ? std::nullopt
                              : std::optional<int32_t>(it->second);
        ASSERT_EQ(DayOf(store->get(), tps[t], kind, f), want) << t << kind << f;
        if (want.has_value()) expected.push_back({f, *want});
      }
      ASSERT_TRUE((*store)
                      ->ForEachDayBefore(tps[t], kind, INT32_MAX,
                                         [&](uint64_t key, int32_t day) {
                                           index.push_back({key, day});
                                         })
                      .ok());
      std::sort(index.begin(), index.end());
      EXPECT_EQ(index, expected) << t << kind;
      EXPECT_GT(expected.size(), 500u);
    }
  }
}

// Entries come and go (orders are kept 30 days): the filter of the stored
// keys is built again as it fills with expired ones, and answers as the
// in-memory store does throughout.
TEST_F(LocalStoreTest, TheKeyFilterFollowsTheEntriesLeft) {
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  const TopicPartition tp{"in", 1};
  RocksDayStore days(store->get(), tp, 'o');
  MemoryDayStore memory;
  ASSERT_TRUE(days.LoadFilter().ok());
  auto commit = [&] {
    LocalStore::Batch batch;
    days.Committed(&batch);
    ASSERT_TRUE((*store)->Write(&batch).ok());
  };
  constexpr uint64_t kPerRound = 5000;
  size_t most = 0;
  for (uint64_t round = 0; round < 20; ++round) {
    const int32_t day = 1000 + static_cast<int32_t>(round) * 40;
    for (uint64_t i = 0; i < kPerRound; ++i) {
      days.Put(round * kPerRound + i, day);
      memory.Put(round * kPerRound + i, day);
    }
    commit();
    // The round before falls out.
    days.ExpireBefore(day - 30);
    memory.ExpireBefore(day - 30);
    commit();
    most = std::max(most, days.filter_keys());
    for (uint64_t key = 0; key < (round + 1) * kPerRound; key += 7) {
      ASSERT_EQ(days.Get(key), memory.Get(key)) << "round " << round;
    }
    commit();
  }
  // 100,000 keys put, at most 10,000 stored at a time: never more than
  // twice that in the filter (100,000 if it were never built again).
  EXPECT_LE(most, 20000u);
  EXPECT_EQ((*store)->CountDays(tp, 'o'), kPerRound);
}

// A filter built again while the commit's changes are pending holds the
// stored keys and the pending puts, not the keys merely looked up (absent:
// each would be a "maybe" read from RocksDB again); a put of one of those
// after the build is found.
TEST_F(LocalStoreTest, TheKeyFilterHoldsNoKeyOnlyLookedUp) {
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  RocksDayStore days(store->get(), TopicPartition{"in", 2}, 'v');
  ASSERT_TRUE(days.LoadFilter().ok());
  for (uint64_t key = 0; key < 100; ++key) days.Put(key, 500);
  LocalStore::Batch batch;
  days.Committed(&batch);
  ASSERT_TRUE((*store)->Write(&batch).ok());
  for (uint64_t key = 1000; key < 1050; ++key) days.Put(key, 501);
  for (uint64_t key = 2000; key < 5000; ++key) {
    ASSERT_EQ(days.Get(key), std::nullopt);
  }
  ASSERT_TRUE(days.LoadFilter().ok());
  EXPECT_EQ(days.filter_keys(), 150u);
  days.Put(2001, 502);
  EXPECT_EQ(days.Get(2001), 502);
  EXPECT_EQ(days.Get(1049), 501);
  EXPECT_EQ(days.Get(99), 500);
}

TEST_F(LocalStoreTest, UncommittedChangesAreForgottenWithTheStore) {
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  const TopicPartition tp{"in", 0};
  {
    RocksDayStore days(store->get(), tp, 'o');
    days.Put(1, 100);
    LocalStore::Batch batch;
    days.Committed(&batch);
    ASSERT_TRUE((*store)->Write(&batch).ok());
    days.Put(2, 101);  // never committed (an aborted transaction)
    std::vector<ChangelogRecord> records;
    days.ChangelogRecords(&records);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].key, DayKey(tp, 'o', 2));
    EXPECT_EQ(records[0].value, "101");
  }
  RocksDayStore again(store->get(), tp, 'o');
  EXPECT_EQ(again.Get(1), 100);
  EXPECT_EQ(again.Get(2), std::nullopt);
}

TEST_F(LocalStoreTest, ASecondProcessOnTheDirectoryIsAClearError) {
  auto first = LocalStore::Open({dir_});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = LocalStore::Open({dir_});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(dir_), std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("processing.state_dir"),
            std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("another process uses this"),
            std::string::npos)
      << second.status();
}

// A store that cannot be read (here a file of it corrupted on disk) is an
// error naming the directory, never "no entry": a returning visitor would
// be counted as new, silently. The day store keeps the error, which the
// stream thread checks before it commits.
TEST_F(LocalStoreTest, AnUnreadableEntryIsAnErrorNotAMissingOne) {
  const TopicPartition tp{"in", 0};
  constexpr uint64_t kEntries = 2000;
  {
    auto store = LocalStore::Open({dir_});
    ASSERT_TRUE(store.ok()) << store.status();
    DayRecordWriter writer(store->get());
    for (uint64_t fp = 1; fp <= kEntries; ++fp) {
      writer.Apply(tp, 'v', fp, static_cast<int32_t>(100 + fp % 50));
    }
    ASSERT_TRUE(writer.Finish().ok());
  }  // closing flushes the entries into a table file
  int corrupted = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().extension() != ".sst") continue;
    // Its first half: data blocks (the index, filter and footer follow).
    std::fstream file(entry.path(),
                      std::ios::in | std::ios::out | std::ios::binary);
    const std::string garbage(entry.file_size() / 2, '\xA5');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    ASSERT_TRUE(file.good());
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0);
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  int errors = 0;
  for (uint64_t fp = 1; fp <= kEntries; ++fp) {
    auto day = (*store)->GetDay(tp, 'v', fp);
    if (!day.ok()) {
      ++errors;
      EXPECT_NE(day.status().message().find(dir_), std::string::npos)
          << day.status();
      // Damaged, not another process's ("block checksum mismatch" has
      // "lock" in it).
      EXPECT_EQ(day.status().message().find("another process"),
                std::string::npos)
          << day.status();
      continue;
    }
    EXPECT_EQ(*day, static_cast<int32_t>(100 + fp % 50)) << fp;
  }
  EXPECT_GT(errors, 0);
  RocksDayStore days(store->get(), tp, 'v');
  ASSERT_TRUE(days.error().ok());
  for (uint64_t fp = 1; fp <= kEntries; ++fp) days.Get(fp);
  EXPECT_FALSE(days.error().ok());
}

TEST_F(LocalStoreTest, WipeRemovesOnlyItsPartition) {
  auto store = LocalStore::Open({dir_});
  ASSERT_TRUE(store.ok()) << store.status();
  const TopicPartition a{"in", 1}, b{"in", 2};
  LocalStore::Batch batch;
  for (const TopicPartition& tp : {a, b}) {
    batch.PutDay(tp, 'v', 9, 500, std::nullopt);
    batch.Mirror(tp, "s/in/x", std::string("checkpoint"));
    v1::LocalPartitionMeta meta;
    meta.set_next_offset(7);
    batch.SetMeta(tp, meta);
  }
  ASSERT_TRUE((*store)->Write(&batch).ok());
  ASSERT_TRUE((*store)->Wipe(a).ok());
  ASSERT_TRUE((*store)->Meta(a).ok());
  EXPECT_FALSE((*store)->Meta(a)->has_value());
  EXPECT_EQ(DayOf(store->get(), a, 'v', 9), std::nullopt);
  ASSERT_TRUE((*store)->Meta(b).ok());
  ASSERT_TRUE((*store)->Meta(b)->has_value());
  EXPECT_EQ((**(*store)->Meta(b)).next_offset(), 7);
  EXPECT_EQ(DayOf(store->get(), b, 'v', 9), 500);
  int mirrored = 0;
  ASSERT_TRUE((*store)
                  ->ForEachMirrored(
                      b,
                      [&](absl::string_view key, absl::string_view value) {
                        EXPECT_EQ(key, "s/in/x");
                        EXPECT_EQ(value, "checkpoint");
                        ++mirrored;
                      })
                  .ok());
  EXPECT_EQ(mirrored, 1);
}

}  // namespace
}  // namespace kpistream
