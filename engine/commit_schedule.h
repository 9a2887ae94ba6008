// CommitSchedule: when a stream thread commits (config
// processing.commit_interval, min_commit_interval and max_commit_interval).
//
// A thread with a backlog commits every `interval`: fewer, larger
// transactions and checkpoints, the most events per CPU second. One that
// stays behind its input (no poll since its last commit caught up, below)
// with more left than it processed since that commit (a backlog that
// outlasts another interval, not a burst) waits twice as long before each
// further commit, up to `max_interval`: part of a commit's cost does not
// grow with its size (the transaction's round trips, among others), so
// while a backlog lasts longer intervals drain it sooner, and its counts
// are behind by the backlog anyway. Once a poll catches up, or the backlog
// is down to an interval's work, the interval is `interval` again, so a
// burst is committed as often as before.
//
// A thread that has caught up with its input (its last poll took everything
// there was, and the input topics hold less than another poll's worth
// beyond it: StreamThread) and processed something since its last commit
// commits sooner, once `min_interval` has passed since that commit started
// and at least as long as that commit took has passed since it ended: at
// moderate rates counts reach /metrics within a fraction of a second (they
// are published at each commit), while commits take at most about half of
// the thread's time. As the load rises the thread stops catching up and
// the schedule falls back to `interval` by itself. Flink's checkpoint
// interval with a minimum pause between checkpoints works alike; Kafka
// Streams commits every 100 ms under exactly-once.
#ifndef KPISTREAM_ENGINE_COMMIT_SCHEDULE_H_
#define KPISTREAM_ENGINE_COMMIT_SCHEDULE_H_

#include <algorithm>

#include "absl/time/time.h"

namespace kpistream {

class CommitSchedule {
 public:
  // `min_interval` > `interval` acts as `interval`, `max_interval` <
  // `interval` as `interval` (a fixed interval).
  CommitSchedule(absl::Duration interval, absl::Duration min_interval,
                 absl::Duration max_interval)
      : interval_(interval),
        min_interval_(std::min(min_interval, interval)),
        max_interval_(std::max(max_interval, interval)),
        current_(interval) {}

  // Whether to commit at `now`, asked after every poll. `caught_up`: the
  // poll caught up with the input (above). `pending`: records were
  // processed since the last commit.
  bool Due(absl::Time now, bool caught_up, bool pending) {
    if (caught_up) {
      caught_up_ = true;
      current_ = interval_;
    }
    const absl::Duration since = now - started_;
    if (since >= current_) return true;
    return caught_up && pending && since >= min_interval_ &&
           now - ended_ >= ended_ - started_;
  }

  // A commit started at `started` and ended at `ended` (whatever its
  // outcome). `deep_backlog`: the input holds more than the thread
  // processed since the commit before it, so the backlog outlasts another
  // interval; with no poll caught up since that commit, the next waits
  // twice as long (up to max_interval), otherwise `interval`.
  void Committed(absl::Time started, absl::Time ended,
                 bool deep_backlog = false) {
    current_ = deep_backlog && !caught_up_ && started_ != absl::InfinitePast()
                   ? std::min(current_ * 2, max_interval_)
                   : interval_;
    caught_up_ = false;
    started_ = started;
    ended_ = std::max(started, ended);
  }

  absl::Duration interval() const { return interval_; }
  absl::Duration min_interval() const { return min_interval_; }
  absl::Duration max_interval() const { return max_interval_; }
  // The wait from the last commit's start to the next under a backlog.
  absl::Duration current_interval() const { return current_; }

 private:
  absl::Duration interval_;
  absl::Duration min_interval_;
  absl::Duration max_interval_;
  absl::Duration current_;
  bool caught_up_ = false;  // a poll caught up since the last commit
  absl::Time started_ = absl::InfinitePast();
  absl::Time ended_ = absl::InfinitePast();
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_COMMIT_SCHEDULE_H_
