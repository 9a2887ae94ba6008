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
// The same into `*out`, through `*scratch`: both reused from one session to
// the next, they keep their strings' capacity (no allocation once warm).
void EncodeSessionRecord(const ClosedSession& session, OutputFormat format,
                         v1::SessionRecord* scratch, std::string* out);

// Serialized KpiSnapshot for the kpi topic (key: site/channel/window start).
std::string EncodeKpiSnapshot(const WindowKpis& kpis,
                              const std::string& partition,
                              OutputFormat format);
// The same into `*out`, through `*scratch` (both reused).
void EncodeKpiSnapshot(const WindowKpis& kpis, const std::string& partition,
                       OutputFormat format, v1::KpiSnapshot* scratch,
                       std::string* out);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_SESSION_RECORD_CODEC_H_
