// The two long-lived memories of a partition's visitors, each a small type
// over a FingerprintStore (checkpointed with the partition's state):
//
//   VisitorRecency  "new vs returning" (SPEC §3): a session is a new
//                   visitor's when the partition has not seen the visitor
//                   start a session within the retention (default 400
//                   days) and the client, if it numbers its sessions, says
//                   1 (session_number past 1: returning; 1 again after the
//                   visitor was seen: not new, its first session was).
//                   Key: StableHash(site, visitor). (A
//                   session split off a visit is not new either: the
//                   Sessionizer's rule, which knows the visit.)
//   OrderOnce       an order_id counts once across the visitor's sessions
//                   within 30 days of event time (a reloaded thank-you page
//                   the next day is not a second order). Key:
//                   StableHash(site, visitor, order_id): another visitor's
//                   order of the same id counts, wherever the two visitors'
//                   partitions are (keyed by (site, order_id) before
//                   2026-12-04: ids remembered then are not found after).
//
// Days are unix days of event time, kept in a DayStore (aggregate/day_store.h):
// in RAM by default (~16 bytes per remembered visitor or order, checkpointed
// with the partition's state), or in the engine's local store on disk
// (engine/local_store.h), which bounds RAM whatever their number. Entries older
// than the newest day seen minus the retention are forgotten when the newest
// day moves, and not kept at all when they are that old already (a session or
// an order that far behind the newest one): a restore forgets them too, and a
// restored state must behave as the one that wrote the checkpoint. Not
// thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_VISITOR_RECENCY_H_
#define KPISTREAM_AGGREGATE_VISITOR_RECENCY_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "aggregate/day_store.h"

namespace kpistream {

int32_t UnixDay(absl::Time t);

// A FingerprintStore of days that forgets entries older than `retention_days`
// before the newest day it was told about.
class DayRetention {
 public:
  explicit DayRetention(int32_t retention_days)
      : store_(std::make_unique<MemoryDayStore>()),
        retention_days_(retention_days) {}
  DayStore& store() { return *store_; }
  const DayStore& store() const { return *store_; }
  // Keeps the days in `store` from now on (before any is remembered).
  void set_store(std::unique_ptr<DayStore> store) { store_ = std::move(store); }
  int32_t newest_day() const { return newest_day_; }
  int32_t retention_days() const { return retention_days_; }
  // Moves the newest day forward (expiring what falls out).
  void SeeDay(int32_t day);
  // Remembers `day` for `key`, unless it is already older than the
  // retention before the newest day: such an entry would be forgotten by
  // the next move of the newest day, and by a restore (FinishRestore), so
  // a state that kept it would behave otherwise than its restored copy.
  void Remember(uint64_t key, int32_t day);
  // Adds a checkpoint's entries (to a persistent store too: checkpoints
  // written before the days moved to one) and its newest day.
  void Restore(const v1::FingerprintMap& in, int32_t newest_day);

 private:
  std::unique_ptr<DayStore> store_;
  int32_t retention_days_;
  int32_t newest_day_ = INT32_MIN;
};

class VisitorRecency {
 public:
  explicit VisitorRecency(absl::Duration retention)
      : days_(static_cast<int32_t>(retention / absl::Hours(24))) {}

  // A session of the visitor with fingerprint `visitor` starts at `t`;
  // returns whether it is a new visitor's, and remembers the day. New: the
  // visitor has started no session within the retention (as far as this
  // store knows) and the client's `session_number`, if any, is 1. A client
  // that numbers a session after others 1 is believed as far as a visitor
  // seen for the first time goes, not beyond: its first visit split by the
  // engine after a gap (a client timeout longer than the engine's, or the
  // same client session id after one) was two new visitors (an audit).
  bool StartSession(uint64_t visitor, absl::Time t, uint32_t session_number);

  DayRetention& days() { return days_; }
  size_t ApproximateBytes() const { return days_.store().ApproximateBytes(); }

 private:
  DayRetention days_;
};

class OrderOnce {
 public:
  static constexpr int32_t kRetentionDays = 30;
  OrderOnce() : days_(kRetentionDays) {}

  // Whether the order with fingerprint `order` counts now, at `t`; remembers
  // it when it does.
  bool Count(uint64_t order, absl::Time t);

  DayRetention& days() { return days_; }
  size_t ApproximateBytes() const { return days_.store().ApproximateBytes(); }

 private:
  DayRetention days_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_VISITOR_RECENCY_H_
