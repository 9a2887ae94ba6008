// Sessionizer: event-time session windows for the visitors of one input
// partition (SPEC §3).
//
// A session is the events of one (site, visitor) with no gap longer than
// `inactivity_timeout` between consecutive events (a gap of exactly the
// timeout continues it) and no event more than `max_length` after its first
// event. Attributes (channel, source/medium/campaign, landing page, device,
// country) are those of the session's first event.
//
// Ordering contract. Events are expected in event-time order per visitor; the
// ReorderBuffer in front of it guarantees that for disorder up to the
// watermark's max out-of-orderness, which makes every session exact. An event
// that arrives later than that (behind the watermark, but within the allowed
// lateness) is still applied when it falls at or after the start of the
// visitor's open session (inside it, not with other campaign parameters
// where sessions split on a campaign change: that split can no longer be
// made), or before it within the inactivity timeout: it then becomes the
// session's first event (its start, landing page and acquisition;
// OnSessionStartMoved), unless that would break the maximum length, a
// midnight split or a campaign split. Anything else (an event of a session
// already closed, or one these rules keep apart) is refused as late, and the
// caller dead-letters it. Nothing is silently dropped. What a late event
// applied inside the session does not change (no time of them is kept): the
// funnels it would advance, and the landing and exit pages where the session
// has them already (a late page view earlier than the landing page's, or
// later than the exit page's, is counted but becomes neither).
//
// Closing. CloseUpTo(frontier) closes every session that no accepted event can
// change any more: those with last + inactivity_timeout < frontier, or
// first + max_length < frontier. The caller passes frontier = watermark -
// allowed_lateness. A session also closes when the visitor's next event in
// order starts a new one (after a longer gap, past the maximum length, at a
// split): a late event between the two can then join only the new one.
//
// Time is passed in; nothing here reads a clock. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_SESSIONIZER_H_
#define KPISTREAM_AGGREGATE_SESSIONIZER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "aggregate/event.h"
#include "aggregate/session.h"
#include "aggregate/visitor_recency.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {

// An ordered funnel (SPEC §3): a session reaches step i when it matched
// steps 0..i in that order. A step matches a page view whose URL path fits
// `page` (a glob: '*' matches any run of characters), or a conversion of
// `goal`.
struct FunnelStep {
  std::string name;
  std::string page;  // glob on the path, e.g. "/products/*"; or empty
  std::string goal;  // or a goal name
};
struct Funnel {
  std::string name;
  std::vector<FunnelStep> steps;
};

// Whether `path` matches `pattern`, where '*' matches any run of characters.
bool GlobMatch(absl::string_view pattern, absl::string_view path);

// The path of a URL: "https://shop.example/a/b?x=1#y" -> "/a/b"; a bare
// path loses its query and fragment.
absl::string_view UrlPath(absl::string_view url);

// `path` without its path parameters, which name no page
// ("/cart;jsessionid=8F3A/x" -> "/cart/x": Java servers add the session id
// to the links of a visitor's first page): `path` itself when it has none,
// else a view of `*buffer`. Funnel steps and skip_paths match this.
absl::string_view WithoutPathParameters(absl::string_view path,
                                        std::string* buffer);

struct SessionRules {
  absl::Duration inactivity_timeout = absl::Minutes(30);
  absl::Duration max_length = absl::Hours(24);
  absl::Duration engaged_min_duration = absl::Seconds(10);
  int engaged_min_pageviews = 2;
  // A closed session lasting at least this is long (long_session_rate).
  absl::Duration long_min_duration = absl::Minutes(3);
  // A visitor is new when the engine has not seen them start a session
  // within this long (per partition) and the client's session_number, if
  // any, is 1 (VisitorRecency).
  absl::Duration visitor_retention = absl::Hours(24 * 400);
  // UA-style splits: a session also ends at local midnight of `timezone`,
  // and/or when an event arrives with other campaign parameters (utm_source,
  // utm_medium, utm_campaign or a click id) than the session's first event.
  bool split_at_midnight = false;
  absl::TimeZone timezone = absl::UTCTimeZone();
  bool split_on_campaign_change = false;
  // sessions.session_source: client: a session also ends where an event
  // carries another client session_id than the session's (the first one
  // its events carried; an event without one never splits).
  bool split_on_session_id = false;
  std::vector<Funnel> funnels;
};

// What the Sessionizer knows about an open session when it reports an event
// or a start: the session's attribution, valid only during the callback.
struct SessionAttributes {
  absl::string_view site_id;
  absl::string_view channel;
  absl::string_view source;
  absl::string_view medium;
  absl::string_view campaign;
  absl::string_view landing_page;
  absl::string_view device_category;
  absl::string_view country;
  bool new_visitor = false;
};

// Receives what happens, synchronously, on the Sessionizer's thread.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  // A session was opened by `first`.
  virtual void OnSessionStarted(const SessionAttributes& session,
                                const EventView& first) = 0;
  // `event` was applied to the open session `session` (also called for the
  // first event, after OnSessionStarted).
  virtual void OnEvent(const SessionAttributes& session,
                       const EventView& event) = 0;
  // A session closed; the Sessionizer forgets it after this call.
  virtual void OnSessionClosed(const ClosedSession& session) = 0;
  // A late event `first`, before the open session's start `before_start`,
  // became its first event: the session now starts at first.time with the
  // attributes `after` (it started with `before`). OnEvent(after, first)
  // follows. What was counted at the start stays as counted; an observer
  // that keeps state by the session's start moves it here.
  virtual void OnSessionStartMoved(const SessionAttributes& before,
                                   absl::Time before_start,
                                   const SessionAttributes& after,
                                   const EventView& first) {}
};

// A session's acquisition: its default channel group and the source and
// medium it is reported under.
struct Acquisition {
  std::string channel;
  std::string source;
  std::string medium;
};

// Derives a session's acquisition from its first event. Without one
// (nullptr), source/medium are the utm values as given and the channel is
// "(unassigned)"; the ChannelClassifier plugs in here.
class SessionAttribution {
 public:
  virtual ~SessionAttribution() = default;
  virtual Acquisition Attribute(const EventView& first) const = 0;
  // The same into `out`, whose strings keep their capacity (the
  // Sessionizer's call at every session start, which then allocates
  // nothing); by default from Attribute().
  virtual void AttributeInto(const EventView& first, Acquisition* out) const {
    *out = Attribute(first);
  }
};

class Sessionizer {
 public:
  enum class AddResult { kApplied, kLate };

  // `observer` must outlive the Sessionizer; `attribution` may be null.
  Sessionizer(SessionRules rules, SessionObserver* observer,
              const SessionAttribution* attribution = nullptr);
  ~Sessionizer();
  Sessionizer(const Sessionizer&) = delete;
  Sessionizer& operator=(const Sessionizer&) = delete;

  // Applies one event (see the ordering contract above). Copies what it
  // keeps.
  AddResult Add(const EventView& event);
  // Add() for each event in turn, with the same effects; faster over many
  // open sessions, as each event's lookup is prefetched a few events ahead
  // (the reorder buffer releases events this way).
  void AddAll(absl::Span<const EventView> events);

  // Closes every session that can no longer change (see above), reporting each
  // to the observer in order of their end time. Returns how many closed.
  size_t CloseUpTo(absl::Time frontier);

  // Closes every open session now, whatever its end (used by tests and when a
  // partition's state must be handed over whole).
  size_t CloseAll();

  size_t open_sessions() const;
  // Calls `f` for every site with open sessions, with their number and a
  // value the caller may keep for the site while it has open sessions (0 at
  // first; KpiCounters::AddOpenSessions' cache).
  void ForEachSiteOpen(
      absl::FunctionRef<void(absl::string_view, int64_t, uint64_t*)> f) const;
  // Calls `f` for every open session, with its start.
  void ForEachOpen(
      absl::FunctionRef<void(absl::Time start, const SessionAttributes&)> f)
      const;
  // Approximate heap bytes held by open-session state, the visitor and the
  // order memories included.
  size_t ApproximateBytes() const;

  // Checkpointing (SPEC §5). Checkpoint() hands out, in this order, the keys
  // of checkpointed sessions that are gone since the last call (`closed`),
  // then every session opened or changed since (`session`, a
  // v1::SessionState's bytes as libprotobuf serializes it, valid during the
  // call) — with `full`, every open session and no keys. The visitor and
  // order memories are checkpointed through visitors() and orders().
  // Restoring applies checkpoints in order (RestoreClosed / RestoreSession
  // per entry), then FinishRestore() once. Nothing is reported to the
  // observer while restoring. A restored session's funnel progress is cut
  // to the configured funnels and their steps (the config may have
  // changed).
  void Checkpoint(
      bool full,
      absl::FunctionRef<void(absl::string_view site, absl::string_view visitor)>
          closed,
      absl::FunctionRef<void(absl::string_view serialized)> session);
  void RestoreClosed(absl::string_view site, absl::string_view visitor);
  void RestoreSession(const v1::SessionState& state);
  void FinishRestore();
  DayRetention& visitors();
  DayRetention& orders();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether a closed session counts as engaged under `rules`.
bool IsEngaged(const SessionRules& rules, absl::Duration duration,
               uint32_t pageviews, bool converted);

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_SESSIONIZER_H_
