// Encoding of closed sessions for the sessions output topic: the
// SessionRecord proto (SPEC §5), as binary protobuf or canonical proto3 JSON.
#ifndef KPISTREAM_EXPORT_SESSION_RECORD_CODEC_H_
#define KPISTREAM_EXPORT_SESSION_RECORD_CODEC_H_

#include <string>

#include "aggregate/kpi_windows.h"
#include "aggregate/session.h"
#include "config/config.h"
#include "kpistream/v1/session_record.pb.h"

namespace kpistream {

void ToSessionRecord(const ClosedSession& session, v1::SessionRecord* record);

// Serialized record for the topic (key: visitor_id).
std::string EncodeSessionRecord(const ClosedSession& session,
                                OutputFormat format);

// Serialized KpiSnapshot for the kpi topic (key: site/channel/window start).
std::string EncodeKpiSnapshot(const WindowKpis& kpis,
                              const std::string& partition,
                              OutputFormat format);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_SESSION_RECORD_CODEC_H_
