// The `combined_log` input format (SPEC §8): one Apache/nginx "combined"
// access-log line per Kafka message,
//
//   %h %l %u [%d/%b/%Y:%H:%M:%S %z] "%r" %>s %b "%{Referer}i" "%{User-agent}i"
//
// or Apache's vhost_combined, the same after a leading "%v:%p" (virtual
// host and port; Debian's other_vhosts_access.log), whose host is then the
// site's host where the input names none (`host` below),
// becomes a PAGE_VIEW when it is a GET or HEAD answered 2xx or 304 for a
// path that is not a static asset (styles, scripts, images, fonts, source
// maps, feeds, robots.txt, favicons). Other lines that parse are rejected
// with reason "not_pageview" (counted and dead-lettered like any rejected
// record); lines that do not parse are "malformed", and so are lines
// dated outside google.protobuf.Timestamp's range (years 1 to 9999), which
// no other format can carry.
//
// visitor_id = "h-" + a stable 64-bit hash of client address + user agent;
// event_id = a stable hash of the whole line, so a replayed log deduplicates;
// page_url = the request target (path and query) as logged; utm_source,
// utm_medium, utm_campaign and a click id come from its query string
// (FillCampaignFromPageUrl); the device from the user agent.
#ifndef KPISTREAM_INGEST_COMBINED_LOG_H_
#define KPISTREAM_INGEST_COMBINED_LOG_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "aggregate/event.h"
#include "ingest/event_decoder.h"

namespace kpistream {

// `host` (may be empty): the site's own host; page_url is then
// "https://<host><target>" so that the site's own referrers are internal
// (without it, a vhost_combined line's virtual host serves).
DecodeResult ParseCombinedLogLine(absl::string_view line,
                                  absl::string_view site, absl::Time now,
                                  absl::Duration max_future_skew, Event* event,
                                  absl::string_view host = "");

// FNV-1a, 64 bit: stable across processes and versions (absl::Hash is not).
uint64_t StableHash64(absl::string_view bytes);

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_COMBINED_LOG_H_
