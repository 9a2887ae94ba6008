// RejectionReporter: the records an input rejects as invalid
// (kpistream_events_invalid_total), its late events (reason "late", in
// kpistream_events_late_total), and the conversions it takes for bots
// (reason "bot", in kpistream_bot_events_total: PartitionPipeline::CountBot),
// summarised for the log at most once per topic per interval, so that a
// wrong `format` or a broken producer is seen at once without a line per
// record (SPEC §7):
//
//   402/402 records on web.events rejected in the last 10 s: 402 malformed
//   (not a valid JSON WebEvent: ...); the input format of web.events is json
//
// Nothing is reported for an interval without rejections. Time is passed in;
// not thread-safe (one owner: the thread that consumes).
#ifndef KPISTREAM_ENGINE_REJECTION_REPORTER_H_
#define KPISTREAM_ENGINE_REJECTION_REPORTER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cmd/log.h"
#include "config/config.h"

namespace kpistream {

class RejectionReporter {
 public:
  struct Options {
    absl::Duration interval = absl::Seconds(10);
    // Input topic -> its configured format ("json"), named in the line.
    std::map<std::string, std::string> input_formats;
  };

  // One topic's rejections over one interval.
  struct Summary {
    struct Reason {
      std::string reason;
      int64_t count = 0;
      std::string example;  // the first record's detail, sanitised
    };
    std::string topic;
    int64_t records = 0;  // consumed from the topic in the interval
    int64_t rejected = 0;
    absl::Duration interval;
    std::vector<Reason> reasons;  // most frequent first
    std::string format;           // empty: the topic is not an input
                                  // (then the line names none)

    // The line above (without the level and component).
    std::string Text() const;
    // Whether every rejection is one the input has by nature, no fault: an
    // access log's lines that are no page view (assets, POSTs, errors: most
    // of a log's lines). The engine logs such a summary at INFO, others at
    // WARN.
    bool OnlyExpected() const;
    // For json logs: topic, records, rejected, interval_seconds, format and
    // rejected_<reason> per reason.
    std::vector<LogField> Fields() const;
  };

  // The first interval starts at `now`.
  RejectionReporter(Options options, absl::Time now);

  // Every record read from `topic`, rejected or not.
  void Consumed(absl::string_view topic);
  // A record of `topic` rejected for `reason`; `detail` is the decoder's
  // message (DecodeResult::detail).
  void Rejected(absl::string_view topic, absl::string_view reason,
                absl::string_view detail);

  // Once the interval has passed since the last interval started: a summary
  // per topic with rejections in it (by topic name), and a new interval
  // starts at `now`. Before that: nothing.
  std::vector<Summary> Take(absl::Time now);
  // The same, whether or not the interval has passed (e.g. when stopping).
  std::vector<Summary> Flush(absl::Time now);

 private:
  struct ReasonCount {
    int64_t count = 0;
    std::string example;
  };
  struct TopicCounts {
    int64_t records = 0;
    int64_t rejected = 0;
    absl::flat_hash_map<std::string, ReasonCount> reasons;
  };

  Options options_;
  absl::Time started_;
  absl::flat_hash_map<std::string, TopicCounts> topics_;
};

// The reporter's options for `config`'s inputs.
RejectionReporter::Options RejectionReporterOptions(const Config& config);

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_REJECTION_REPORTER_H_
