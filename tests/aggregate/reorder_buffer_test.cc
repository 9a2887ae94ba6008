#include "aggregate/reorder_buffer.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

// These tests' events have no record offsets: none is checkpointed by
// reference (PartitionState's tests cover those).
void NoReferences(int64_t offset, int64_t) {
  ADD_FAILURE() << "a reference to offset " << offset;
}

// What the buffer must hand out, as plain values.
struct Held {
  int64_t time_us;
  std::string id;
  std::string visitor;
  std::string page;
  int64_t value;
  std::string session;  // the client's session id
  bool operator<(const Held& o) const {
    return std::tie(time_us, id) < std::tie(o.time_us, o.id);
  }
  bool operator==(const Held& o) const {
    return std::tie(time_us, id, visitor, page, value, session) ==
           std::tie(o.time_us, o.id, o.visitor, o.page, o.value, o.session);
  }
};

Held Copy(const EventView& e) {
  return {absl::ToUnixMicros(e.time),
          std::string(e.event_id),
          std::string(e.visitor_id),
          std::string(e.page_url),
          e.value_micros,
          std::string(e.session_id)};
}

// A release's sink that copies every event of each batch into `out`.
auto Into(std::vector<Held>& out) {
  return [&out](absl::Span<const EventView> batch) {
    for (const EventView& e : batch) out.push_back(Copy(e));
  };
}

EventView View(const Held& h) {
  EventView e;
  e.time = absl::FromUnixMicros(h.time_us);
  e.event_id = h.id;
  e.visitor_id = h.visitor;
  e.page_url = h.page;
  e.value_micros = h.value;
  e.session_id = h.session;
  return e;
}

// Differential test against a sorted list: random pushes of events spread
// over `spread_us` ahead of the watermark (sparse buckets, so that released
// buckets are reused for later seconds), releases at random watermarks
// (inside a second too), incremental and full checkpoints restored into a
// second buffer, and DropBefore. Every release must hand out exactly the
// events before the watermark, in (time, id) order, with their own strings.
void MatchesASortedList(uint64_t seed, int64_t spread_us) {
  std::mt19937_64 rng(seed);
  ReorderBuffer buffer;
  std::vector<Held> model;         // what is buffered
  std::vector<Held> checkpointed;  // the buffer's events as checkpointed
  int64_t watermark_us = 1'700'000'000'000'000;
  uint64_t id = 0;
  for (int step = 0; step < 20000; ++step) {
    const int action = static_cast<int>(rng() % 10);
    if (action < 7) {
      // An event at or after the watermark, random strings of random
      // lengths (so that arenas of reused buckets differ).
      Held h;
      h.time_us = watermark_us + static_cast<int64_t>(
                                     rng() % static_cast<uint64_t>(spread_us));
      h.id = absl::StrCat("e", rng() % 1000, "-", id++);
      h.visitor =
          std::string(1 + rng() % 40, static_cast<char>('a' + rng() % 26));
      h.page = absl::StrCat("/p/", rng() % 100);
      h.value = static_cast<int64_t>(rng() % 1000);
      if (rng() % 2) h.session = absl::StrCat("s-", rng() % 100);
      buffer.Push(View(h));
      model.push_back(h);
    } else if (action < 9) {
      watermark_us += static_cast<int64_t>(rng() % 1'500'000);
      std::vector<Held> got;
      buffer.ReleaseBefore(absl::FromUnixMicros(watermark_us), Into(got));
      std::sort(model.begin(), model.end());
      auto split = std::partition_point(
          model.begin(), model.end(),
          [&](const Held& h) { return h.time_us < watermark_us; });
      std::vector<Held> want(model.begin(), split);
      model.erase(model.begin(), split);
      ASSERT_EQ(got, want) << "step " << step;
      ASSERT_EQ(buffer.size(), model.size());
    } else {
      ASSERT_EQ(buffer.ApproximateBytes(), buffer.RecountBytes())
          << "step " << step;
      // A full checkpoint restored into a fresh buffer holds the same.
      std::vector<Held> all;
      buffer.Checkpoint(/*full=*/true,
                        [&](const EventView& e) { all.push_back(Copy(e)); },
                        NoReferences);
      ReorderBuffer restored;
      for (const Held& h : all) restored.Restore(View(h));
      std::vector<Held> got;
      restored.ReleaseAll(Into(got));
      std::sort(model.begin(), model.end());
      ASSERT_EQ(got, model) << "step " << step;
      // Nothing new since: an incremental checkpoint is empty.
      EXPECT_EQ(buffer.Checkpoint(/*full=*/false, [](const EventView&) {},
                                  NoReferences),
                0u);
    }
  }
  // DropBefore forgets without handing out; the rest is still released.
  watermark_us += 2'000'000;
  buffer.DropBefore(absl::FromUnixMicros(watermark_us));
  std::sort(model.begin(), model.end());
  model.erase(
      model.begin(),
      std::partition_point(model.begin(), model.end(), [&](const Held& h) {
        return h.time_us < watermark_us;
      }));
  EXPECT_EQ(buffer.ApproximateBytes(), buffer.RecountBytes());
  std::vector<Held> rest;
  buffer.ReleaseAll(Into(rest));
  EXPECT_EQ(rest, model);
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.ApproximateBytes(), buffer.RecountBytes());
  // Dropping everything frees all but the spare buckets: at most 32 are
  // kept, so at least 68 of these 100 buckets' nodes (96 bytes each, and
  // their vectors) go.
  for (int i = 0; i < 100; ++i) {
    Held h;
    h.time_us = watermark_us + i * 1'000'000;
    h.id = absl::StrCat("late-", i);
    buffer.Push(View(h));
  }
  const size_t before = buffer.ApproximateBytes();
  EXPECT_GT(before, 100u * 96);
  buffer.DropBefore(absl::InfiniteFuture());
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.ApproximateBytes(), buffer.RecountBytes());
  EXPECT_GE(before - buffer.ApproximateBytes(), 68u * 96);
}

TEST(ReorderBufferTest, MatchesASortedListAcrossReusedBuckets) {
  MatchesASortedList(11, 5'000'000);
}

// Over 300 s the buffered seconds outnumber the bucket lookup cache's
// entries: seconds that share an entry take turns in it, and a released
// second's bucket (a spare, or another second's by then) must not be found
// through it again.
TEST(ReorderBufferTest, MatchesASortedListOverManySeconds) {
  MatchesASortedList(12, 300'000'000);
}

// A second of many events is released in order, in batches of at most 64,
// none left out at a batch's edge.
TEST(ReorderBufferTest, ABusySecondIsReleasedInBatchesInOrder) {
  ReorderBuffer buffer;
  std::vector<Held> want;
  for (int i = 0; i < 200; ++i) {
    Held h;
    h.time_us = 1'767'225'600'000'000 + (199 - i) * 1000;  // one second
    h.id = absl::StrCat("e", i);
    buffer.Push(View(h));
    want.push_back(h);
  }
  std::sort(want.begin(), want.end());
  std::vector<Held> got;
  std::vector<size_t> sizes;
  buffer.ReleaseAll([&](absl::Span<const EventView> batch) {
    sizes.push_back(batch.size());
    for (const EventView& e : batch) got.push_back(Copy(e));
  });
  EXPECT_EQ(got, want);
  EXPECT_EQ(sizes, (std::vector<size_t>{64, 64, 64, 8}));
}

// Seconds of one or two events each are released in batches that run on
// across the seconds (up to 64 events), with the released part of the
// watermark's own second last: the sink (Sessionizer::AddAll) looks ahead
// within a batch only.
TEST(ReorderBufferTest, BatchesRunOnAcrossSeconds) {
  ReorderBuffer buffer;
  const int64_t t0 = 1'767'225'600'000'000;
  std::vector<Held> want;
  for (int i = 0; i < 100; ++i) {  // seconds 99 .. 0, 2 events each
    for (int k = 0; k < 2; ++k) {
      Held h;
      h.time_us = t0 + (99 - i) * 1'000'000 + k * 600'000;
      h.id = absl::StrCat("e", i, "-", k);
      buffer.Push(View(h));
      // Up to the middle of second 90: its first event goes, not its second.
      if (h.time_us < t0 + 90'500'000) want.push_back(h);
    }
  }
  std::sort(want.begin(), want.end());
  ASSERT_EQ(want.size(), 181u);
  std::vector<Held> got;
  std::vector<size_t> sizes;
  buffer.ReleaseBefore(absl::FromUnixMicros(t0 + 90'500'000),
                       [&](absl::Span<const EventView> batch) {
                         sizes.push_back(batch.size());
                         for (const EventView& e : batch) {
                           got.push_back(Copy(e));
                         }
                       });
  EXPECT_EQ(got, want);
  EXPECT_EQ(sizes, (std::vector<size_t>{64, 64, 53}));
  EXPECT_EQ(buffer.size(), 19u);
  got.clear();
  sizes.clear();
  buffer.ReleaseAll([&](absl::Span<const EventView> batch) {
    sizes.push_back(batch.size());
    for (const EventView& e : batch) got.push_back(Copy(e));
  });
  EXPECT_EQ(sizes, (std::vector<size_t>{19}));
  ASSERT_EQ(got.size(), 19u);
  EXPECT_EQ(got.front().id, "e9-1");  // second 90's second event first
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
}

// Events of one time are ordered by their whole event_id, compared as
// unsigned bytes (std::string's order), whatever its length: ids that share
// their first 8 bytes or are shorter, bytes 0x00 and >= 0x80. Strings of any
// length survive (one larger than an arena block among them).
TEST(ReorderBufferTest, TiesAreOrderedByTheWholeEventId) {
  std::mt19937_64 rng(5);
  const std::string alphabet("\x00a\x7f\x80\xff", 5);
  ReorderBuffer buffer;
  std::vector<Held> want;
  for (int i = 0; i < 3000; ++i) {
    Held h;
    h.time_us = 1'767'225'600'000'000 + static_cast<int64_t>(rng() % 2);
    const size_t length = rng() % 13;
    for (size_t k = 0; k < length; ++k) h.id += alphabet[rng() % 5];
    h.visitor = absl::StrCat("v", i);
    if (i == 1000) h.page = std::string(200'000, 'p');
    buffer.Push(View(h));
    want.push_back(h);
  }
  std::stable_sort(want.begin(), want.end());
  std::vector<Held> got;
  buffer.ReleaseAll(Into(got));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    // Equal (time, id) pairs may come in either order: compare keys, then
    // that every event came out once.
    ASSERT_EQ(got[i].time_us, want[i].time_us) << i;
    ASSERT_EQ(got[i].id, want[i].id) << i;
  }
  auto by_visitor = [](const Held& a, const Held& b) {
    return a.visitor < b.visitor;
  };
  std::sort(got.begin(), got.end(), by_visitor);
  std::sort(want.begin(), want.end(), by_visitor);
  EXPECT_EQ(got, want);
  EXPECT_EQ(buffer.ApproximateBytes(), buffer.RecountBytes());
}

// Events of one time come out in the order their records came (offsets),
// whatever their ids: an access log's lines carry whole seconds, and a
// visitor's landing page and next page in one second keep the log's order
// (a QA pass: ordered by the ids, hashes of the lines, they swapped two real
// sessions' landing and exit pages). Without offsets, by id.
TEST(ReorderBufferTest, TiesComeOutInTheOrderTheRecordsCame) {
  ReorderBuffer buffer;
  const absl::Time t = absl::FromUnixSeconds(1767225600);
  const std::vector<std::pair<std::string, int64_t>> pushed = {
      {"l-ff", 7}, {"l-01", 9}, {"l-80", 8}, {"b", -1}, {"a", -1}};
  for (const auto& [id, offset] : pushed) {
    EventView e;
    e.time = t;
    e.event_id = id;
    e.record_offset = offset;
    buffer.Push(e);
  }
  std::vector<std::string> order;
  buffer.ReleaseAll([&](absl::Span<const EventView> batch) {
    for (const EventView& e : batch) {
      order.push_back(absl::StrCat(e.event_id, "@", e.record_offset));
    }
  });
  EXPECT_EQ(order, (std::vector<std::string>{"a@-1", "b@-1", "l-ff@7", "l-80@8",
                                             "l-01@9"}));
}

}  // namespace
}  // namespace kpistream
