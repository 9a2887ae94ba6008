// ReadChangelog: reads given partitions of a (compacted) changelog topic from
// the beginning to their end as of now, read_committed, without a consumer
// group: what the engine restores its state from when it is assigned input
// partitions (SPEC §5: "state changelog").
#ifndef KPISTREAM_INGEST_CHANGELOG_READER_H_
#define KPISTREAM_INGEST_CHANGELOG_READER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

struct ChangelogReadOptions {
  std::string brokers;
  std::map<std::string, std::string> properties;  // librdkafka, as-is
  std::string topic;
  std::vector<int32_t> partitions;
  absl::Duration timeout = absl::Seconds(60);
};

// The partition count of the changelog topic; NotFoundError naming it when
// it does not exist. Asks with a consumer handle, which never makes the
// broker auto-create the topic (it would not be compacted).
absl::StatusOr<int> ChangelogPartitionCount(const ChangelogReadOptions& options);

// Calls `record(key, value, tombstone)` for every committed record of the
// partitions, in offset order per partition. An error names the topic (and
// says whether it timed out or the topic is missing).
absl::Status ReadChangelog(
    const ChangelogReadOptions& options,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value,
                           bool tombstone)>
        record);

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_CHANGELOG_READER_H_
