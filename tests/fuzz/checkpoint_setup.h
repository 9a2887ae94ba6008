// What the checkpoint fuzz target (checkpoint_fuzzer.cc) and the generator of
// its seed corpus (checkpoint_corpus.cc) share: the partition state's
// configuration (a shop's: funnels, goals, targets of every kind, dedup),
// the events they offer it, and the input format.
//
// Input format of checkpoint_fuzzer (each part ends early where the input
// does):
//
//   changelog records, each:
//     u8 op (bit 7 clear; a byte with bit 7 set ends the records)
//       bit 0: a tombstone (the value is read and ignored)
//       bit 1: a raw key: u8 length, then the key's bytes; otherwise the key
//              is CheckpointKey({"web.events", partition}, seq, chunk) of
//              three bytes: partition (mod 4; the target restores
//              partition 0), seq, chunk
//       bit 2: a structured value: the value bytes as a PartitionCheckpoint
//              (empty if they do not parse), with seq and chunk of the key,
//              full = bit 3, last = bit 4, then tweaked (below); otherwise
//              the raw bytes
//     u16 value length (little-endian), then the value's bytes
//     structured values only: u8 n, then n tweaks of 10 bytes: u8 field
//       (Tweak), u8 index (of the repeated element, mod its size), u64
//       value (little-endian), which sets that field (cast to its type):
//       edge values in real checkpoints, which byte mutations of the
//       encoded message seldom reach
//   then a script that drives the restored state, one step per byte
//   (ScriptStep), with its operand bytes; at most kMaxScriptSteps steps.
#ifndef KPISTREAM_TESTS_FUZZ_CHECKPOINT_SETUP_H_
#define KPISTREAM_TESTS_FUZZ_CHECKPOINT_SETUP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "aggregate/event.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "aggregate/target_tracker.h"
#include "engine/checkpoint_log.h"

namespace kpistream {
namespace fuzz {

// The partition restored; records of other partitions share its changelog.
inline const TopicPartition kPartition{"web.events", 0};
inline constexpr int kPartitions = 4;
// Event time of the generated traffic: 2026-01-01T00:00:00Z.
inline const absl::Time kStart = absl::FromUnixSeconds(1767225600);

inline constexpr uint8_t kEndOfRecords = 0x80;
enum RecordOp : uint8_t {
  kTombstone = 1,
  kRawKey = 2,
  kStructured = 4,
  kFull = 8,
  kLast = 16,
  kWithoutTransaction = 32,  // at-least-once's (v1::PartitionCheckpoint)
};

// The fields a tweak sets: the byte's value mod kTweakFields.
enum Tweak : uint8_t {
  kFrontier,
  kMaxEventTime,
  kNextOffset,
  kVisitorsNewestDay,
  kOrdersNewestDay,
  kSessionFirst,
  kSessionLast,
  kSessionPageviews,
  kSessionEvents,
  kSessionFunnelSteps,  // the value's low (index mod 9) bytes
  kSessionRevenue,
  kSessionConversions,
  kBufferedTime,
  kBufferedType,
  kBufferedValue,
  kDedupMinute,
  kVisitorDay,
  kOrderDay,
  kWindowStart,
  kWindowOpen,
  kWindowSessions,
  kTargetBucket,
  kTargetNumerator,  // the value's bits as a double
  kTargetSample,
  kTweakFields,
};

inline constexpr int kMaxScriptSteps = 256;

// Steps of the script: the byte's value mod kScriptSteps.
enum ScriptStep : uint8_t {
  kOfferPageView,    // operands: an EventSpec (4 bytes)
  kOfferEngagement,  // same
  kOfferConversion,  // same
  kOfferCustom,      // same
  kAdvance,          // u8 lag: watermark = max event time - lag * 10 s
  kCheckpoint,       // u8: odd = a full snapshot
  kCollect,          // KPI windows, target sums, counters
  kAdCost,           // u8 micros / 1e5
  kScriptSteps,
};

// Four operand bytes of an offered event.
struct EventSpec {
  uint8_t who = 0;    // visitor (low 4 bits), site (bit 4), device (bit 5-6)
  int8_t delta = 0;   // event time: the max seen so far + delta * 7 s
  uint8_t what = 0;   // page (low 3 bits), utm set (bit 3-4), user (bit 5)
  uint8_t extra = 0;  // event id (low 4 bits: repeats are duplicates),
                      // conversion goal (bits 4-5), currency (bit 4),
                      // order and value (bits 6-7)
};

// An event as EventDecoder accepts it (normalized, a valid time, any
// conversion value).
Event MakeEvent(EventType type, const EventSpec& spec, absl::Time time);

PartitionState::Options StateOptions();
KpiCounters::Options CounterOptions();
const std::vector<TargetSpec>& Targets();

// The fuzz input's encoding of one changelog record (a structured key when
// it is one of kPartition's topic with seq and chunk below 256, else raw).
std::string EncodeRecord(const ChangelogRecord& record);

}  // namespace fuzz
}  // namespace kpistream

#endif  // KPISTREAM_TESTS_FUZZ_CHECKPOINT_SETUP_H_
