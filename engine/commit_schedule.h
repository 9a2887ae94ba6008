// CommitSchedule: when a stream thread commits (config
// processing.commit_interval and min_commit_interval).
//
// A thread with a backlog commits every `interval`: fewer, larger
// transactions and checkpoints, the most events per CPU second. A thread
// that has caught up with its input (its last poll took everything there
// was) and processed something since its last commit commits sooner, once
// `min_interval` has passed since that commit started and at least as long
// as that commit took has passed since it ended: at moderate rates counts
// reach /metrics within a fraction of a second (they are published at each
// commit), while commits take at most about half of the thread's time. As
// the load rises the thread stops catching up and the schedule falls back
// to `interval` by itself. Flink's checkpoint interval with a minimum pause
// between checkpoints works alike; Kafka Streams commits every 100 ms under
// exactly-once.
#ifndef KPISTREAM_ENGINE_COMMIT_SCHEDULE_H_
#define KPISTREAM_ENGINE_COMMIT_SCHEDULE_H_

#include <algorithm>

#include "absl/time/time.h"

namespace kpistream {

class CommitSchedule {
 public:
  // `min_interval` > `interval` acts as `interval`.
  CommitSchedule(absl::Duration interval, absl::Duration min_interval)
      : interval_(interval), min_interval_(std::min(min_interval, interval)) {}

  // Whether to commit at `now`. `caught_up`: the last poll returned fewer
  // records than it asked for. `pending`: records were processed since the
  // last commit.
  bool Due(absl::Time now, bool caught_up, bool pending) const {
    const absl::Duration since = now - started_;
    if (since >= interval_) return true;
    return caught_up && pending && since >= min_interval_ &&
           now - ended_ >= ended_ - started_;
  }

  // A commit started at `started` and ended at `ended` (whatever its
  // outcome).
  void Committed(absl::Time started, absl::Time ended) {
    started_ = started;
    ended_ = std::max(started, ended);
  }

  absl::Duration interval() const { return interval_; }
  absl::Duration min_interval() const { return min_interval_; }

 private:
  absl::Duration interval_;
  absl::Duration min_interval_;
  absl::Time started_ = absl::InfinitePast();
  absl::Time ended_ = absl::InfinitePast();
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_COMMIT_SCHEDULE_H_
