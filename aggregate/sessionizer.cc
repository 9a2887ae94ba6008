#include "aggregate/sessionizer.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/chunked_vector.h"
#include "aggregate/compact_string.h"
#include "aggregate/label_values.h"
#include "aggregate/memory_estimate.h"
#include "aggregate/saturating.h"
#include "aggregate/stable_hash.h"
#include "aggregate/text_search.h"
#include "aggregate/unix_second.h"
#include "aggregate/visitor_recency.h"
#include "aggregate/wire_writer.h"

namespace kpistream {

bool GlobMatch(absl::string_view pattern, absl::string_view path) {
  // Iterative wildcard match with one backtrack point: linear in practice.
  size_t p = 0, s = 0, star = absl::string_view::npos, mark = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::string_view UrlPath(absl::string_view url) {
  const size_t scheme = FindSchemeEnd(url);
  if (scheme != absl::string_view::npos) {
    url.remove_prefix(scheme + 3);
    // The path starts at the first "/" after the host, if no query or
    // fragment comes first ("https://shop.example?next=/checkout" is "/").
    const size_t end = FindFirstOf(url, "/?#");
    if (end == absl::string_view::npos || url[end] != '/') return "/";
    url.remove_prefix(end);
  }
  return url.substr(0, FindFirstOf(url, "?#"));
}

absl::string_view WithoutPathParameters(absl::string_view path,
                                        std::string* buffer) {
  if (path.empty() || std::memchr(path.data(), ';', path.size()) == nullptr) {
    return path;
  }
  buffer->clear();
  bool parameter = false;
  for (const char c : path) {
    if (c == '/') parameter = false;
    if (c == ';') parameter = true;
    if (!parameter) buffer->push_back(c);
  }
  return *buffer;
}

bool IsEngaged(const SessionRules& rules, absl::Duration duration,
               uint32_t pageviews, bool converted) {
  return duration >= rules.engaged_min_duration ||
         pageviews >= static_cast<uint32_t>(rules.engaged_min_pageviews) ||
         converted;
}

namespace {

constexpr char kSeparator = '\x1f';

// Refcounted interning of strings shared by many sessions (sites, pages,
// attribution tuples): each distinct value is stored once, as a small id, and
// freed when the last session using it closes. Id 0 is "".
class InternPool {
 public:
  InternPool() : entries_(1) {}

  uint32_t Acquire(absl::string_view value) {
    if (value.empty()) return 0;
    auto it = ids_.find(value);
    if (it != ids_.end()) {
      ++entries_[it->second].refs;
      return it->second;
    }
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = static_cast<uint32_t>(entries_.size());
      entries_.emplace_back();
    }
    Entry& e = entries_[id];
    e.value.assign(value.data(), value.size());
    e.refs = 1;
    e.cache = 0;
    bytes_ += Footprint(e.value);
    ids_.emplace(e.value, id);
    return id;
  }
  // Another reference to an id held already.
  void AddRef(uint32_t id) {
    if (id != 0) ++entries_[id].refs;
  }
  void Release(uint32_t id) {
    if (id == 0) return;
    Entry& e = entries_[id];
    if (--e.refs > 0) return;
    ids_.erase(absl::string_view(e.value));
    bytes_ -= Footprint(e.value);
    e.value.clear();
    e.value.shrink_to_fit();
    free_.push_back(id);
  }
  absl::string_view Get(uint32_t id) const { return entries_[id].value; }
  uint32_t refs(uint32_t id) const { return entries_[id].refs; }
  // A value a user of the pool keeps for the string while it is interned
  // (0 when it was interned anew): Sessionizer::ForEachSiteOpen's cache.
  uint64_t& cache(uint32_t id) const { return entries_[id].cache; }
  size_t capacity() const { return entries_.size(); }
  size_t bytes() const { return bytes_ + ids_.capacity() * 25; }

 private:
  struct Entry {
    std::string value;
    uint32_t refs = 0;
    mutable uint64_t cache = 0;
  };
  static size_t Footprint(const std::string& s) {
    return sizeof(Entry) + StringHeapBytes(s);
  }
  std::deque<Entry> entries_;  // stable addresses: ids_ views their values
  absl::flat_hash_map<absl::string_view, uint32_t> ids_;
  std::vector<uint32_t> free_;
  size_t bytes_ = 0;
};

// A session's attribution (SPEC §3: of its first event): channel, source,
// medium, campaign, device, country, interned as one tuple whose parts are
// split once, when the tuple is first seen.
struct AttributionParts {
  absl::string_view channel, source, medium, campaign, device, country;
};

// Into `*key` (reused: a session start must not allocate once the key's
// capacity is there).
void AttributionKey(absl::string_view channel, absl::string_view source,
                    absl::string_view medium, absl::string_view campaign,
                    absl::string_view device, absl::string_view country,
                    std::string* key) {
  const char sep[] = {kSeparator, 0};
  key->clear();
  absl::StrAppend(key, channel, sep, source, sep, medium, sep, campaign, sep,
                  device, sep, country);
}

AttributionParts SplitAttribution(absl::string_view key) {
  absl::string_view parts[6];
  size_t start = 0;
  for (int i = 0; i < 6; ++i) {
    const size_t end = i < 5 ? key.find(kSeparator, start) : key.size();
    parts[i] = key.substr(start, end - start);
    start = end + 1;
  }
  return {parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]};
}

// A session's conversions, taken at its first (from spare_money when a
// closed session left one): one block for a session with up to two goals,
// one currency and one order, strings of up to 15 bytes (order ids 14)
// included, where four vectors took five blocks.
struct SessionMoney {
  // Per goal.
  absl::InlinedVector<std::pair<std::string, uint32_t>, 2> conversions;
  // Per currency.
  absl::InlinedVector<std::pair<std::string, int64_t>, 1> revenue;
  absl::InlinedVector<std::pair<std::string, uint32_t>, 1> orders;
  // Counted in this session, each with the goal it was counted under: the
  // id, then one byte (OrderByte). An id of two goals is here twice.
  absl::InlinedVector<std::string, 1> order_ids;
  // Indexes in `order_ids` of conversions that carried neither a value nor
  // a currency and took no order, each a base-128 varint (one byte below
  // 128: AppendPending, ForEachPending): their id counts as an order, under
  // no currency, at the session's close unless another conversion of it in
  // the session takes the order (SettlePendingOrders).
  std::string pending_orders;
};

// Counts and money add up differently: money saturates (saturating.h).
uint32_t Plus(uint32_t a, uint32_t b) { return a + b; }
int64_t Plus(int64_t a, int64_t b) { return SaturatingAdd(a, b); }

// What one session keeps of its conversions (goals, currencies, order ids
// of up to kMaxEventValueBytes each), so that its state and its record stay
// far within what a Kafka producer takes however many a hostile client
// sends: beyond kMaxSessionKeys goals (currencies), the others count under
// "(other)"; the first kMaxSessionOrderIds (order id, goal) entries keep
// the id, the next kMaxSessionOrderDigests only its digest (CompactOrderId:
// 12 bytes, in a std::string's own buffer). Past both, orders still count
// once (OrderOnce remembers them), an id kept already counts for no other
// goal, and the session keeps no more: a repeat of an id not kept is then
// taken for an order of an earlier session (an audit's 40 leads each
// followed by its purchase lost 8 purchases when the session kept only 64
// entries whole and nothing after).
constexpr size_t kMaxSessionKeys = 32;
constexpr size_t kMaxSessionOrderIds = 64;
constexpr size_t kMaxSessionOrderDigests = 4096;
constexpr size_t kMaxSessionOrderEntries =
    kMaxSessionOrderIds + kMaxSessionOrderDigests;

// pending_orders' indexes: base-128 varints, low 7 bits first (indexes
// below 128, all that checkpoints written before the digests held, one
// byte as they were).
void AppendPending(size_t index, std::string& pending) {
  for (; index >= 0x80; index >>= 7) {
    pending.push_back(static_cast<char>(0x80 | (index & 0x7f)));
  }
  pending.push_back(static_cast<char>(index));
}
template <typename F>
void ForEachPending(absl::string_view pending, F&& f) {
  size_t index = 0;
  int shift = 0;
  for (const char c : pending) {
    const uint8_t byte = static_cast<uint8_t>(c);
    if (shift < 28) index |= static_cast<size_t>(byte & 0x7f) << shift;
    if (byte & 0x80) {
      shift += 7;
      continue;
    }
    f(index);
    index = 0;
    shift = 0;
  }
}

// An order id as a session keeps it past kMaxSessionOrderIds entries: \x01
// and 11 characters of its 64-bit StableHash (valid UTF-8, as the state's
// `repeated string order_ids` must be; no collector's id looks like it).
std::string CompactOrderId(absl::string_view id) {
  static constexpr char kDigits[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
  uint64_t h = StableHash(id);
  std::string out(12, '\x01');
  for (size_t i = 1; i < out.size(); ++i, h >>= 6) out[i] = kDigits[h & 63];
  return out;
}

// The entry that counts `key` in a short list of (string, T) pairs: its
// own (the first of that name), or "(other)" once the list is full;
// list.end() when none does yet.
template <typename List>
auto EntryOf(List& list, absl::string_view key) {
  auto find = [&](absl::string_view k) {
    return std::find_if(list.begin(), list.end(),
                        [&](const auto& p) { return p.first == k; });
  };
  auto it = find(key);
  if (it == list.end() && list.size() >= kMaxSessionKeys) it = find(kOther);
  return it;
}

// Adds `n` to the entry of `key` (EntryOf), made when missing: a new key
// beyond kMaxSessionKeys adds to "(other)". Returns the entry's index.
template <typename List, typename T>
size_t Increment(List& list, absl::string_view key, T n) {
  auto it = EntryOf(list, key);
  if (it == list.end()) {
    list.emplace_back(
        std::string(list.size() >= kMaxSessionKeys ? kOther : key), n);
    return list.size() - 1;
  }
  it->second = Plus(it->second, n);
  return static_cast<size_t>(it - list.begin());
}

// An order_ids entry's last byte: the index in `conversions` of the goal
// it was counted under (kAnyGoal: every goal), kClaimed when this
// conversion counted the order, and kValued when it counted the id's value
// (its first conversion with a value: a `lead` of the id with a currency
// and no value claims the order, and the `purchase` after it still adds
// its revenue; review). An entry restored from a checkpoint written before
// goals were kept is all three (0xff): every goal, its order and value
// counted; one written before kValued was kept has it only with kAnyGoal
// (index bytes were below 0x40). A live session holds at most
// kMaxSessionKeys goals and "(other)"; a restored list may be longer: an
// index past kAnyGoal's is kAnyGoal.
constexpr uint8_t kAnyGoal = 0x3f;
constexpr uint8_t kValued = 0x40;
constexpr uint8_t kClaimed = 0x80;
static_assert(kMaxSessionKeys + 1 < kAnyGoal);
absl::string_view OrderIdOf(const std::string& entry) {
  return absl::string_view(entry).substr(0, entry.size() - 1);
}
uint8_t OrderByte(const std::string& entry) {
  return static_cast<uint8_t>(entry.back());
}
uint8_t GoalIndexOf(const std::string& entry) {
  return OrderByte(entry) & kAnyGoal;
}
bool ClaimedOrder(const std::string& entry) {
  return (OrderByte(entry) & kClaimed) != 0;
}
bool ValuedOrder(const std::string& entry) {
  return (OrderByte(entry) & kValued) != 0;
}
// An index in `conversions` as an entry's goal: kAnyGoal past it.
uint8_t GoalByte(size_t index) {
  return index < kAnyGoal ? static_cast<uint8_t>(index) : kAnyGoal;
}
// The goal byte of the `conversions` entry that counts `goal` (EntryOf),
// kAnyGoal if none does yet.
uint8_t GoalEntry(const SessionMoney& money, absl::string_view goal) {
  const auto& list = money.conversions;
  const auto it = EntryOf(list, goal);
  return it == list.end() ? kAnyGoal
                          : GoalByte(static_cast<size_t>(it - list.begin()));
}
void AddOrderId(absl::string_view id, uint8_t byte,
                absl::InlinedVector<std::string, 1>& ids) {
  std::string& entry = ids.emplace_back();
  entry.reserve(id.size() + 1);
  entry.append(id.data(), id.size());
  entry.push_back(static_cast<char>(byte));
}

// Data most sessions never need, allocated on first use: 48 bytes (a
// 64-byte chunk), and the conversions apart, so that a session with a
// user id alone holds 64 bytes and the id's block.
struct SessionExtra {
  CompactString user_id;
  std::unique_ptr<SessionMoney> money;
  std::vector<uint8_t> funnel_steps;  // per funnel: steps reached in order
  // The last event's time, when it is too far after the first for the
  // slot's 32-bit offset (71.6 minutes and more).
  int64_t last_us = 0;
};
static_assert(sizeof(SessionExtra) == 48);

// Whether `e` carries campaign parameters (a campaign split looks at those
// only).
bool HasCampaign(const EventView& e) {
  return !e.utm_source.empty() || !e.utm_medium.empty() ||
         !e.utm_campaign.empty() || !e.click_id.empty();
}

// The campaign as the labels tell it: source and medium in lower case (the
// channel grouping reads them so), a click id whatever its parameter name's
// tag (ClickIdValue). Raw, "gclid-X" from the page URL and the bare "X" a
// conversion carried were two campaigns, and split one visit in two (an
// audit); so were "nl / email" and "NL / Email", labelled alike.
uint64_t CampaignKey(const EventView& e) {
  const char sep[] = {kSeparator, 0};
  return StableHash(absl::StrCat(absl::AsciiStrToLower(e.utm_source), sep,
                                 absl::AsciiStrToLower(e.utm_medium), sep,
                                 e.utm_campaign, sep,
                                 ClickIdValue(e.click_id)));
}

// The key as builds before 2026-12-07 made it (raw values), which sessions
// restored from their checkpoints carry: the same campaign in either.
uint64_t RawCampaignKey(const EventView& e) {
  const char sep[] = {kSeparator, 0};
  return StableHash(absl::StrCat(e.utm_source, sep, e.utm_medium, sep,
                                 e.utm_campaign, sep, e.click_id));
}

// Whether `key` (a session's campaign) is `e`'s.
bool SameCampaign(uint64_t key, const EventView& e) {
  return key == CampaignKey(e) || key == RawCampaignKey(e);
}

// The key of a first event without campaign parameters.
uint64_t NoCampaignKey() {
  static const uint64_t key = CampaignKey(EventView{});
  return key;
}

}  // namespace

struct Sessionizer::Impl {
  enum Flags : uint8_t {
    kNewVisitor = 1,
    kDirty = 2,         // changed since the last checkpoint
    kCheckpointed = 4,  // its key has a session in the changelog
    kLive = 8,          // the slot holds an open session
  };
  // An open session: 56 bytes, with what most sessions need. The last
  // event's time is an offset from the first (Last(), SetLast()); the
  // campaign key, needed only by split_on_campaign_change, is in
  // campaign_keys.
  static constexpr uint32_t kLastInExtra = UINT32_MAX;
  struct Open {
    int64_t first_us = 0;
    CompactString visitor;
    std::unique_ptr<SessionExtra> extra;
    uint32_t last_offset_us = 0;  // kLastInExtra: in extra->last_us
    uint32_t site = 0;            // ids in the pools
    uint32_t attribution = 0;
    uint32_t landing = 0;
    uint32_t exit = 0;
    uint32_t pageviews = 0;
    uint32_t events = 0;
    // Bumped when the slot is freed. Only the dirty list holds a (slot,
    // generation) across a free, until the next checkpoint: 2^28 frees of
    // one slot in between cannot happen.
    uint32_t gen : 28;
    uint32_t flags : 4;
    Open() : gen(0), flags(0) {}
  };
  static_assert(sizeof(Open) == 56);
  // Expiry index entry: a slot as of a generation.
  struct Due {
    uint32_t slot;
    uint32_t gen;
  };

  SessionRules rules;
  int64_t timeout_us = 0;
  int64_t max_length_us = 0;
  SessionObserver* observer = nullptr;
  const SessionAttribution* attribution = nullptr;

  ChunkedVector<Open> slots;
  std::vector<uint32_t> free_slots;
  // By slot, with split_on_campaign_change only: the hash of the session's
  // first campaign (CampaignKey); 0: not known (restored from a checkpoint
  // written without the option), the next campaign becomes it.
  ChunkedVector<uint64_t> campaign_keys;
  // The same campaign's RawCampaignKey, which checkpoints carry where builds
  // before 2026-12-07 read it (SessionState.campaign_key): a rollback reads
  // the campaign it compares with (with the labels' key there, it split a
  // session landed from a gclid at its next event: a review).
  ChunkedVector<uint64_t> raw_campaign_keys;
  // By slot, with split_on_session_id only: the client session id of the
  // first of the session's events that carried one; empty: none yet (or
  // restored from a checkpoint written without the option), the next id
  // becomes it.
  ChunkedVector<CompactString> client_ids;
  size_t client_id_heap = 0;  // their heap blocks
  size_t live = 0;
  // A lookup key with its hash, computed once (AddAll prefetches with it,
  // then finds a candidate and the slot: three hashes of the same key
  // otherwise, ~4 % of the core's instructions).
  struct Probe {
    Probe() = default;
    Probe(absl::string_view s, absl::string_view v)
        : site(s), visitor(v), hash(absl::HashOf(s, v)) {}
    absl::string_view site;
    absl::string_view visitor;
    size_t hash = 0;
  };
  // The live slots, found by (site, visitor): a set of slot numbers (4
  // bytes each), hashed and compared by their full key, so that two keys of
  // one fingerprint (StableHash) are still told apart.
  // absl::Hash of the full key, salted per process, not the fingerprint:
  // StableHash (MurmurHash64A) is public and fixed, and visitor ids crafted
  // to share one fingerprint (its block mixing can be inverted) must not
  // pile up in one probe sequence.
  struct SlotHash {
    using is_transparent = void;
    const Impl* m;
    size_t operator()(uint32_t slot) const {
      const Open& s = m->slots[slot];
      return absl::HashOf(m->sites.Get(s.site), s.visitor.view());
    }
    size_t operator()(const Probe& p) const { return p.hash; }
  };
  struct SlotEq {
    using is_transparent = void;
    const Impl* m;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t slot, const Probe& p) const {
      if (m->any_candidate) return true;  // Candidate(): no key compared
      const Open& s = m->slots[slot];
      return s.visitor.view() == p.visitor && m->sites.Get(s.site) == p.site;
    }
    bool operator()(const Probe& p, uint32_t slot) const {
      return (*this)(slot, p);
    }
  };
  absl::flat_hash_set<uint32_t, SlotHash, SlotEq> lookup{0, SlotHash{this},
                                                         SlotEq{this}};
  size_t visitor_heap = 0;  // the live slots' visitor strings
  // Lazy expiry: every live slot has one current entry, in the bucket (unix
  // second) of its expiry as last scheduled; an entry whose session was
  // extended is rescheduled when it fires, one of a reused slot is stale.
  // A B-tree: a lookup touches a few cache lines where a red-black tree
  // of the same thousands of seconds touches a dozen (perf: 1.8 % of the
  // engine's samples in std::map's nodes, keyed JSON).
  absl::btree_map<int64_t, std::vector<Due>> expiry;
  InternPool sites, pages, attributions;
  std::string path_buffer;  // AdvanceFunnels' path without parameters
  std::vector<AttributionParts> parts;  // by attribution id
  std::string attribution_key;          // AcquireAttribution()'s, reused
  Acquisition acquisition;              // Start()'s, reused
  VisitorRecency visitors{absl::Hours(24 * 400)};
  OrderOnce orders;
  // Checkpoint bookkeeping.
  std::vector<Due> dirty;
  std::vector<std::pair<std::string, std::string>> removed;  // site, visitor
  // A session's revenue and orders per currency (EncodeWire()'s, reused).
  struct CurrencyTotals {
    absl::string_view currency;
    int64_t micros = 0;
    uint32_t orders = 0;
  };
  std::vector<CurrencyTotals> currency_totals;
  std::string goal_indexes;   // a session checkpoint's order_goal_indexes
  std::string funnel_hashes;  // a session checkpoint's funnel_hashes
  // Per configured funnel: StableHash of its name, and of each step's page
  // and goal (v1::SessionState.funnel_hashes).
  std::vector<uint64_t> funnel_name_hashes;
  std::vector<std::vector<uint64_t>> funnel_step_hashes;
  std::string wire;      // EncodeWire()'s buffer, reused
  ClosedSession closed;  // Close()'s, reused
  size_t extra_count = 0;
  size_t money_count = 0;
  // Blocks of closed sessions, emptied, for the next sessions that need
  // them: a warm sessionizer allocates none for a session's extra data or
  // money. At most kMaxSpares of each (memory the sessions held before).
  static constexpr size_t kMaxSpares = 256;
  std::vector<std::unique_ptr<SessionExtra>> spare_extras;
  std::vector<std::unique_ptr<SessionMoney>> spare_money;
  // (Cold: after the members every event uses.) By slot, only for a session
  // that a campaign or client session split started in the millisecond its
  // visitor's previous session started in: how many of the visitor's sessions
  // before it started there (its record's session_id says so:
  // "<visitor_id>:<start ms>-<n>").
  absl::flat_hash_map<uint32_t, uint32_t> start_repeats;
  // (Cold.) By slot, only for a session a split started close enough to
  // its visitor's previous session that a late event may move its start
  // into that one's millisecond (a campaign or client session split; after
  // a gap, a 1 ms window): that millisecond and the previous session's
  // start_repeats, so that such a move counts it (the ids repeated:
  // review). Not start_repeats' value: that is this session's own count.
  // Also, for a session a split within the inactivity timeout started, when
  // the previous session (the one split off) had its last event: a late
  // event before that cannot move this one's start (CanMoveStart; the two
  // would overlap: an audit).
  struct SplitFrom {
    int64_t ms = 0;
    uint32_t repeat = 0;
    int64_t last_us = 0;  // 0: none
  };
  absl::flat_hash_map<uint32_t, SplitFrom> split_from;

  // The time of the session's last event.
  static int64_t Last(const Open& s) {
    return s.last_offset_us != kLastInExtra ? s.first_us + s.last_offset_us
                                            : s.extra->last_us;
  }
  void SetLast(Open& s, int64_t last_us) {
    if (last_us >= s.first_us && last_us - s.first_us < kLastInExtra) {
      s.last_offset_us = static_cast<uint32_t>(last_us - s.first_us);
    } else {
      Extra(s).last_us = last_us;
      s.last_offset_us = kLastInExtra;
    }
  }

  int64_t ExpiryUs(const Open& s) const {
    return std::min(Last(s) + timeout_us, s.first_us + max_length_us);
  }

  // The slot of (site, visitor), or -1.
  int64_t Find(const Probe& probe) const {
    auto it = lookup.find(probe);
    return it == lookup.end() ? -1 : static_cast<int64_t>(*it);
  }

  // For prefetching only: the first slot in the lookup whose hash byte
  // matches (site, visitor)'s, without comparing keys, so without touching
  // the slot: the right one unless another key's byte matches first (a few
  // percent at the lookup's load), or -1. Always an index into `slots`.
  mutable bool any_candidate = false;
  int64_t Candidate(const Probe& probe) const {
    any_candidate = true;
    auto it = lookup.find(probe);
    any_candidate = false;
    return it == lookup.end() ? -1 : static_cast<int64_t>(*it);
  }

  // Sessionizer::Add() with the event's key already hashed.
  AddResult Add(const EventView& event, const Probe& probe);

  // A fresh live slot for (site, visitor), indexed.
  uint32_t NewSlot(absl::string_view site, absl::string_view visitor) {
    uint32_t index;
    if (!free_slots.empty()) {
      index = free_slots.back();
      free_slots.pop_back();
    } else {
      index = static_cast<uint32_t>(slots.size());
      slots.emplace_back();
      if (rules.split_on_campaign_change) {
        campaign_keys.emplace_back();
        raw_campaign_keys.emplace_back();
      }
      if (rules.split_on_session_id) client_ids.emplace_back();
    }
    Open& s = slots[index];
    s.visitor.assign(visitor);
    visitor_heap += s.visitor.HeapBytes();
    s.site = sites.Acquire(site);
    s.flags = kLive;
    ++live;
    lookup.insert(index);
    return index;
  }

  void FreeSlot(uint32_t index) {
    Open& s = slots[index];
    const absl::string_view site = sites.Get(s.site);
    lookup.erase(index);
    if (s.flags & kCheckpointed) removed.emplace_back(site, s.visitor.view());
    sites.Release(s.site);
    s.site = 0;
    visitor_heap -= s.visitor.HeapBytes();
    s.visitor.clear();
    if (rules.split_on_session_id) SetClientId(index, {});
    SetStartRepeat(index, 0);
    SetSplitFrom(index, {});
    s.flags = 0;
    s.last_offset_us = 0;
    ++s.gen;
    --live;
    free_slots.push_back(index);
  }

  void MarkDirty(uint32_t index) {
    Open& s = slots[index];
    if (s.flags & kDirty) return;
    s.flags |= kDirty;
    dirty.push_back({index, static_cast<uint32_t>(s.gen)});
  }

  SessionExtra& Extra(Open& s) {
    if (!s.extra) {
      s.extra = TakeSpare(spare_extras);
      ++extra_count;
    }
    return *s.extra;
  }
  void DropExtra(Open& s) {
    if (!s.extra) return;
    SessionExtra& x = *s.extra;
    if (x.money) {
      --money_count;
      SessionMoney& money = *x.money;
      money.conversions.clear();
      money.revenue.clear();
      money.orders.clear();
      money.order_ids.clear();
      money.pending_orders.clear();
      KeepSpare(std::move(x.money), spare_money);
    }
    x.user_id.clear();
    x.funnel_steps.clear();
    x.last_us = 0;
    KeepSpare(std::move(s.extra), spare_extras);
    --extra_count;
  }
  SessionMoney& Money(Open& s) {
    SessionExtra& x = Extra(s);
    if (!x.money) {
      x.money = TakeSpare(spare_money);
      ++money_count;
    }
    return *x.money;
  }
  template <typename T>
  static std::unique_ptr<T> TakeSpare(std::vector<std::unique_ptr<T>>& spares) {
    if (spares.empty()) return std::make_unique<T>();
    std::unique_ptr<T> block = std::move(spares.back());
    spares.pop_back();
    return block;
  }
  template <typename T>
  static void KeepSpare(std::unique_ptr<T> block,
                        std::vector<std::unique_ptr<T>>& spares) {
    if (spares.size() < kMaxSpares) spares.push_back(std::move(block));
  }

  uint32_t AcquireAttribution(absl::string_view channel,
                              absl::string_view source,
                              absl::string_view medium,
                              absl::string_view campaign,
                              absl::string_view device,
                              absl::string_view country) {
    AttributionKey(channel, source, medium, campaign, device, country,
                   &attribution_key);
    const uint32_t id = attributions.Acquire(attribution_key);
    if (id >= parts.size()) parts.resize(attributions.capacity());
    if (attributions.refs(id) == 1) {
      parts[id] = SplitAttribution(attributions.Get(id));
    }
    return id;
  }

  SessionAttributes Attributes(const Open& s) const {
    const AttributionParts& a = parts[s.attribution];
    SessionAttributes out;
    out.site_id = sites.Get(s.site);
    out.channel = a.channel;
    out.source = a.source;
    out.medium = a.medium;
    out.campaign = a.campaign;
    out.landing_page = pages.Get(s.landing);
    out.device_category = a.device;
    out.country = a.country;
    out.new_visitor = s.flags & kNewVisitor;
    return out;
  }

  // The interned attribution (acquired) of a session whose first event is
  // `e`.
  uint32_t AttributionOf(const EventView& e) {
    if (attribution != nullptr) {
      attribution->AttributeInto(e, &acquisition);
    } else {
      acquisition.channel.assign("(unassigned)");
      acquisition.source.assign(e.utm_source.data(), e.utm_source.size());
      acquisition.medium.assign(e.utm_medium.data(), e.utm_medium.size());
    }
    return AcquireAttribution(acquisition.channel, acquisition.source,
                              acquisition.medium, e.utm_campaign,
                              e.device_category, e.country);
  }

  // Opens a session in the live slot `index` with its first event `e`.
  // `continues_visit`: the visitor's previous session was split off within
  // the inactivity timeout of `e` (at midnight, on a campaign change, at the
  // maximum length): one visit to the visitor and the client, so not a new
  // visitor's first session whatever its session_number says (the client
  // numbers its own sessions, which the engine's splits are not).
  void Start(uint32_t index, const EventView& e, bool continues_visit = false) {
    Open& s = slots[index];
    DropExtra(s);
    s.first_us = absl::ToUnixMicros(e.time);
    s.last_offset_us = 0;
    s.attribution = AttributionOf(e);
    s.landing = e.type == EventType::kPageView ? pages.Acquire(e.page_url) : 0;
    s.exit = 0;
    s.pageviews = 0;
    s.events = 0;
    const bool new_visitor =
        visitors.StartSession(StableHash(e.site_id, e.visitor_id), e.time,
                              e.session_number) &&
        !continues_visit;
    s.flags = (s.flags & ~kNewVisitor) | (new_visitor ? kNewVisitor : 0);
    if (rules.split_on_campaign_change) SetCampaign(index, e);
    if (rules.split_on_session_id) SetClientId(index, e.session_id);
    MarkDirty(index);
    observer->OnSessionStarted(Attributes(s), e);
  }

  // Whether `e`, before the session's first event, may become its first:
  // within the inactivity timeout of it, with every event of the session
  // still within the maximum length of it (and the session's expiry no
  // earlier, so that its scheduled entry stays its first), on the same
  // local day where sessions split at midnight, without other campaign
  // parameters where they split on a campaign change, and without another
  // client session id where sessions split on it.
  bool CanMoveStart(uint32_t index, const EventView& e) {
    const Open& s = slots[index];
    const int64_t t = absl::ToUnixMicros(e.time);
    if (s.first_us - t > timeout_us) return false;
    if (Last(s) - t + timeout_us > max_length_us) return false;
    // Inside the session split off before this one: in event-time order it
    // would have split that one there, a split that can no longer be made
    // (at its last event's time it comes after that one: it may start this).
    if (t < SplitFromOf(index).last_us) return false;
    if (rules.split_at_midnight &&
        absl::ToCivilDay(e.time, rules.timezone) !=
            absl::ToCivilDay(absl::FromUnixMicros(s.first_us),
                             rules.timezone)) {
      return false;
    }
    // In event-time order `e` opens the session; a later event with
    // campaign parameters splits it unless they are e's (an event without
    // any never splits): a session whose first event had parameters takes
    // only an event with the same before it.
    if (rules.split_on_campaign_change) {
      const uint64_t key = campaign_keys[index];
      if (key != 0 && key != NoCampaignKey() && !SameCampaign(key, e)) {
        return false;
      }
    }
    if (rules.split_on_session_id) {
      const absl::string_view id = client_ids[index].view();
      if (!id.empty() && !e.session_id.empty() && e.session_id != id) {
        return false;
      }
    }
    return true;
  }

  // Makes `e` (CanMoveStart) the session's first event: its start, its
  // acquisition and device/country, its landing page if it is a page
  // view; then counts it in. The new-visitor flag stays (the visitor was
  // judged at the start, minutes later at most).
  void MoveStart(uint32_t index, const EventView& e) {
    Open& s = slots[index];
    // Copied: acquiring the new attribution may move the interned strings
    // that Attributes() views.
    const SessionAttributes viewed = Attributes(s);
    std::string site(viewed.site_id), channel(viewed.channel),
        source(viewed.source), medium(viewed.medium), campaign(viewed.campaign),
        landing(viewed.landing_page), device(viewed.device_category),
        country(viewed.country);
    SessionAttributes before = viewed;
    before.site_id = site;
    before.channel = channel;
    before.source = source;
    before.medium = medium;
    before.campaign = campaign;
    before.landing_page = landing;
    before.device_category = device;
    before.country = country;
    const absl::Time before_start = absl::FromUnixMicros(s.first_us);
    const uint32_t old_attribution = s.attribution;
    const uint32_t old_landing = s.landing;
    const int64_t last = Last(s);
    s.attribution = AttributionOf(e);
    const bool page = e.type == EventType::kPageView;
    if (page) s.landing = pages.Acquire(e.page_url);
    // Moved into another millisecond: the sessions before it that started
    // there are its previous session and those that one counted, when it
    // is the previous session's (a split with no time between), or none.
    const int64_t ms = absl::ToUnixMillis(e.time);
    if (ms != absl::ToUnixMillis(before_start)) {
      const SplitFrom from = SplitFromOf(index);
      SetStartRepeat(index,
                     from.ms != 0 && from.ms == ms ? from.repeat + 1 : 0);
    }
    s.first_us = absl::ToUnixMicros(e.time);
    SetLast(s, last);
    if (rules.split_on_campaign_change && HasCampaign(e)) {
      SetCampaign(index, e);  // the same, or none before
    }
    if (rules.split_on_session_id && !e.session_id.empty()) {
      SetClientId(index, e.session_id);  // the same, or none before
    }
    MarkDirty(index);
    observer->OnSessionStartMoved(before, before_start, Attributes(s), e);
    attributions.Release(old_attribution);
    if (page) pages.Release(old_landing);
    Apply(index, e, /*in_order=*/false);
  }

  // Counts `e` into the session; `in_order` when e is its latest event.
  void Apply(uint32_t index, const EventView& e, bool in_order) {
    Open& s = slots[index];
    ++s.events;
    if (e.type == EventType::kPageView) {
      ++s.pageviews;
      if (s.landing == 0) s.landing = pages.Acquire(e.page_url);
      // The exit page is the latest page view's; a late one is the exit
      // page only of a session without another (a late first event).
      if ((in_order || s.exit == 0) && pages.Get(s.exit) != e.page_url) {
        const uint32_t previous = s.exit;
        s.exit = pages.Acquire(e.page_url);
        pages.Release(previous);
      }
    }
    // A conversion of an order already counted is no conversion: it moves
    // no funnel either (a review found a funnel's purchase step counted
    // where web_sessions_converted_total was not).
    const bool counted = e.type != EventType::kConversion || Convert(s, e);
    if (!rules.funnels.empty() && in_order && counted) AdvanceFunnels(s, e);
    if (!e.user_id.empty() && in_order) {
      SessionExtra& x = Extra(s);
      if (x.user_id.view() != e.user_id) x.user_id.assign(e.user_id);
    }
    MarkDirty(index);
    observer->OnEvent(Attributes(s), e);
  }

  // Moves each funnel on when `e` matches its next step.
  void AdvanceFunnels(Open& s, const EventView& e) {
    const bool page = e.type == EventType::kPageView;
    if (!page && e.type != EventType::kConversion) return;
    // Without path parameters (WithoutPathParameters: an audit's
    // `/cart;jsessionid=…` reached no step).
    const absl::string_view path =
        page ? WithoutPathParameters(UrlPath(e.page_url), &path_buffer) : "";
    for (size_t f = 0; f < rules.funnels.size(); ++f) {
      const Funnel& funnel = rules.funnels[f];
      const uint8_t reached = s.extra && f < s.extra->funnel_steps.size()
                                  ? s.extra->funnel_steps[f]
                                  : 0;
      if (reached >= funnel.steps.size()) continue;
      const FunnelStep& next = funnel.steps[reached];
      const bool match = page ? !next.page.empty() && GlobMatch(next.page, path)
                              : !next.goal.empty() && next.goal == e.goal;
      if (!match) continue;
      SessionExtra& x = Extra(s);
      x.funnel_steps.resize(rules.funnels.size(), 0);
      x.funnel_steps[f] = reached + 1;
    }
  }

  // False: a conversion counted before (nothing changes). An order id
  // counts once per goal within its session (SPEC §3: conversions of goal
  // G, an order_id counted once): an order sent as `purchase` and as
  // `first_purchase` is a conversion of each. The order counts once, with
  // the id's first conversion that has a value (or a currency): a `lead` of
  // the id without either, before the `purchase`, took the order under no
  // currency and dropped the purchase's revenue. Its value counts once,
  // with the id's first conversion that has one: a `lead` with a currency
  // and no value that took the order dropped it too (review). In a later
  // session of the visitor (within OrderOnce's 30 days) the id counts for
  // no goal, as before goals were told apart.
  bool Convert(Open& s, const EventView& e) {
    SessionMoney& x = Money(s);
    bool claims = false;  // the order
    bool values = false;  // the id's value
    std::string compact;  // CompactOrderId(e.order_id), once needed
    if (!e.order_id.empty()) {
      const uint8_t goal = GoalEntry(x, e.goal);
      bool in_session = false;  // under any goal
      bool claimed = false;
      bool valued = false;
      std::string* again = nullptr;  // this goal's entry of the id
      // The id as entries past the first kMaxSessionOrderIds keep it.
      if (x.order_ids.size() > kMaxSessionOrderIds) {
        compact = CompactOrderId(e.order_id);
      }
      for (std::string& entry : x.order_ids) {
        const absl::string_view id = OrderIdOf(entry);
        if (id != e.order_id && (compact.empty() || id != compact)) continue;
        in_session = true;
        claimed |= ClaimedOrder(entry);
        valued |= ValuedOrder(entry);
        if (again == nullptr &&
            (GoalIndexOf(entry) == kAnyGoal || GoalIndexOf(entry) == goal)) {
          again = &entry;
        }
      }
      if (again != nullptr) {
        // This goal's, again in this session: no conversion. It still
        // brings the order and the value when no conversion of the id did
        // (a client tag's `purchase` without a value, then the server's
        // with it: the value was dropped; an audit).
        const bool claims_now =
            !claimed && (e.value_micros > 0 ||
                         (e.value_micros == 0 && !e.currency.empty()));
        const bool values_now = !valued && e.value_micros > 0;
        if (claims_now) Increment(x.orders, e.currency, 1u);
        if (values_now) Increment(x.revenue, e.currency, e.value_micros);
        again->back() =
            static_cast<char>(OrderByte(*again) | (claims_now ? kClaimed : 0) |
                              (values_now ? kValued : 0));
        return false;
      }
      // Past the cap this goal could not be kept, and would count again.
      if (in_session && x.order_ids.size() >= kMaxSessionOrderEntries) {
        return false;
      }
      // An order of an earlier session of the visitor (OrderOnce). Keyed
      // by the visitor too: by (site, order id) alone, another visitor's
      // order of the id counted or not as the two visitors shared a
      // partition or not (review).
      if (!in_session &&
          !orders.Count(StableHash(sites.Get(s.site), e.visitor_id, e.order_id),
                        e.time)) {
        return false;
      }
      // A refund (a negative value) is no order, though its id is
      // remembered as one: counted, it lowered the average order value,
      // whose revenue leaves refunds out (below).
      claims = !claimed && (e.value_micros > 0 ||
                            (e.value_micros == 0 && !e.currency.empty()));
      if (claims) Increment(x.orders, e.currency, 1u);
      values = !valued && e.value_micros > 0;
    }
    const size_t goal_index = Increment(x.conversions, e.goal, 1u);
    if (!e.order_id.empty() && x.order_ids.size() < kMaxSessionOrderEntries) {
      const bool whole = x.order_ids.size() < kMaxSessionOrderIds;
      // Neither a value nor a currency (a `lead` sent with the id, or a
      // purchase whose collector sends no value): an order still (SPEC §3:
      // orders are the conversions with an order_id, deduplicated), taken
      // at the close if nothing with a value or currency takes it first.
      if (!claims && e.value_micros == 0 && e.currency.empty()) {
        AppendPending(x.order_ids.size(), x.pending_orders);
      }
      if (!whole && compact.empty()) compact = CompactOrderId(e.order_id);
      AddOrderId(whole ? absl::string_view(e.order_id) : compact,
                 GoalByte(goal_index) | (claims ? kClaimed : 0) |
                     (values ? kValued : 0),
                 x.order_ids);
    } else if (!e.order_id.empty() && !claims && e.value_micros == 0 &&
               e.currency.empty()) {
      // No room to keep it pending: a new id (OrderOnce let it through;
      // a kept one returned above) is its order at once, under no currency
      // (a review: past the cap a value-less order was never counted).
      Increment(x.orders, absl::string_view(), 1u);
    }
    // Revenue is never negative (aggregate/KPIS.md): a refund's negative
    // value is not subtracted, in the session record, the KPI windows and
    // on /metrics alike. Without a currency it is kept under "" ("(not
    // set)" on /metrics), as the order is.
    if ((values || e.order_id.empty()) && e.value_micros > 0) {
      Increment(x.revenue, e.currency, e.value_micros);
    }
    return true;
  }

  // The optional UA-style splits, for an event at or after the session's
  // last.
  bool SplitsHere(uint32_t index, const EventView& e) {
    if (rules.split_at_midnight &&
        absl::ToCivilDay(absl::FromUnixMicros(Last(slots[index])),
                         rules.timezone) !=
            absl::ToCivilDay(e.time, rules.timezone)) {
      return true;
    }
    return OtherCampaign(index, e) || OtherClientSession(index, e);
  }

  // Where sessions split on the client's session id: whether `e` carries
  // another than the session's (one without an id yet has no other).
  bool OtherClientSession(uint32_t index, const EventView& e) const {
    if (!rules.split_on_session_id || e.session_id.empty()) return false;
    const absl::string_view id = client_ids[index].view();
    return !id.empty() && id != e.session_id;
  }

  // For an event the session takes (after OtherCampaign and
  // OtherClientSession said it splits nothing): a campaign or client
  // session id the session does not know yet becomes its own. (Taken
  // before the checks, an event then refused as late left its campaign
  // in the session.)
  void AdoptSplitKeys(uint32_t index, const EventView& e) {
    if (rules.split_on_campaign_change && campaign_keys[index] == 0 &&
        HasCampaign(e)) {
      SetCampaign(index, e);
    }
    if (rules.split_on_session_id && !e.session_id.empty() &&
        client_ids[index].view().empty()) {
      SetClientId(index, e.session_id);
    }
  }

  // Sessions of the slot's visitor before its session that started in the
  // same millisecond (start_repeats).
  uint32_t StartRepeat(uint32_t index) const {
    if (start_repeats.empty()) return 0;
    const auto it = start_repeats.find(index);
    return it == start_repeats.end() ? 0 : it->second;
  }
  SplitFrom SplitFromOf(uint32_t index) const {
    if (split_from.empty()) return {};
    const auto it = split_from.find(index);
    return it == split_from.end() ? SplitFrom{} : it->second;
  }
  void SetSplitFrom(uint32_t index, SplitFrom from) {
    if (from.ms != 0 || from.last_us != 0) {
      split_from[index] = from;
    } else if (!split_from.empty()) {
      split_from.erase(index);
    }
  }
  void SetStartRepeat(uint32_t index, uint32_t n) {
    if (n > 0) {
      start_repeats[index] = n;
    } else if (!start_repeats.empty()) {
      start_repeats.erase(index);
    }
  }

  // The slot's client session id (split_on_session_id), its heap counted.
  void SetClientId(uint32_t index, absl::string_view id) {
    CompactString& kept = client_ids[index];
    if (kept.view() == id) return;
    client_id_heap -= kept.HeapBytes();
    kept.assign(id);
    client_id_heap += kept.HeapBytes();
  }

  // The session's campaign is `e`'s (split_on_campaign_change).
  void SetCampaign(uint32_t index, const EventView& e) {
    campaign_keys[index] = CampaignKey(e);
    raw_campaign_keys[index] = RawCampaignKey(e);
  }

  // Where sessions split on a campaign change: whether `e` has campaign
  // parameters other than the session's (one not known, restored from a
  // checkpoint written without the option, has no other).
  bool OtherCampaign(uint32_t index, const EventView& e) const {
    if (!rules.split_on_campaign_change || !HasCampaign(e)) return false;
    const uint64_t key = campaign_keys[index];
    return key != 0 && !SameCampaign(key, e);
  }

  void Schedule(uint32_t index) {
    const Open& s = slots[index];
    expiry[SecondOf(ExpiryUs(s))].push_back(
        {index, static_cast<uint32_t>(s.gen)});
  }

  // Reports the session in `index` closed and releases its interned strings
  // (the slot stays live: the caller frees it or starts a new session in it).
  void Close(uint32_t index) {
    Open& s = slots[index];
    const AttributionParts& a = parts[s.attribution];
    // Reused: assigning keeps the strings' capacity (no allocation per
    // closed session once warm); every field is set below.
    ClosedSession& c = closed;
    auto set = [](std::string& field, absl::string_view v) {
      field.assign(v.data(), v.size());
    };
    set(c.site_id, sites.Get(s.site));
    set(c.visitor_id, s.visitor.view());
    c.start = absl::FromUnixMicros(s.first_us);
    c.end = absl::FromUnixMicros(Last(s));
    c.pageviews = s.pageviews;
    c.events = s.events;
    set(c.channel, a.channel);
    set(c.source, a.source);
    set(c.medium, a.medium);
    set(c.campaign, a.campaign);
    set(c.device_category, a.device);
    set(c.country, a.country);
    set(c.landing_page, pages.Get(s.landing));
    set(c.exit_page, pages.Get(s.exit));
    c.new_visitor = s.flags & kNewVisitor;
    c.start_repeat = StartRepeat(index);
    if (rules.split_on_session_id) {
      set(c.client_session_id, client_ids[index].view());
    } else {
      c.client_session_id.clear();
    }
    c.user_id.clear();
    c.conversions.clear();
    c.revenue.clear();
    c.orders = 0;
    c.orders_by_currency.clear();
    c.funnel_steps.clear();
    if (s.extra) {
      SessionExtra& x = *s.extra;
      set(c.user_id, x.user_id.view());
      c.funnel_steps.assign(x.funnel_steps.begin(), x.funnel_steps.end());
      if (x.money) {
        SessionMoney& money = *x.money;
        SettlePendingOrders(money);
        // Copied into the reused ClosedSession's vectors (no allocation
        // once warm, for short goals and currencies).
        c.conversions.assign(money.conversions.begin(),
                             money.conversions.end());
        c.revenue.assign(money.revenue.begin(), money.revenue.end());
        c.orders = 0;
        for (const auto& [currency, n] : money.orders) c.orders += n;
        c.orders_by_currency.assign(money.orders.begin(), money.orders.end());
        std::sort(c.conversions.begin(), c.conversions.end());
        std::sort(c.revenue.begin(), c.revenue.end());
        std::sort(c.orders_by_currency.begin(), c.orders_by_currency.end());
      }
      DropExtra(s);
    }
    c.engaged =
        IsEngaged(rules, c.duration(), c.pageviews, !c.conversions.empty());
    c.bounced = !c.engaged;
    c.single_page = c.pageviews == 1 && c.events == 1;
    c.long_session = c.duration() >= rules.long_min_duration;
    attributions.Release(s.attribution);
    pages.Release(s.landing);
    pages.Release(s.exit);
    s.attribution = s.landing = s.exit = 0;
    observer->OnSessionClosed(c);
  }

  // At a session's close: each id of `pending_orders` that no conversion
  // took the order of counts one, under no currency ("(not set)"). With
  // digests kept (past kMaxSessionOrderIds entries), ids compare as digests.
  static void SettlePendingOrders(SessionMoney& money) {
    std::vector<std::string> digests;
    if (money.order_ids.size() > kMaxSessionOrderIds) {
      digests.reserve(money.order_ids.size());
      for (size_t i = 0; i < money.order_ids.size(); ++i) {
        const absl::string_view id = OrderIdOf(money.order_ids[i]);
        digests.push_back(i < kMaxSessionOrderIds ? CompactOrderId(id)
                                                  : std::string(id));
      }
    }
    auto id_of = [&](size_t i) -> absl::string_view {
      return digests.empty() ? OrderIdOf(money.order_ids[i])
                             : absl::string_view(digests[i]);
    };
    // The ids whose order a conversion took (in one pass: a session may
    // hold thousands of entries).
    absl::flat_hash_set<absl::string_view> claimed;
    for (size_t j = 0; j < money.order_ids.size(); ++j) {
      if (ClaimedOrder(money.order_ids[j])) claimed.insert(id_of(j));
    }
    ForEachPending(money.pending_orders, [&](size_t i) {
      if (i >= money.order_ids.size() || !claimed.insert(id_of(i)).second) {
        return;
      }
      Increment(money.orders, absl::string_view(), 1u);
      money.order_ids[i].back() =
          static_cast<char>(OrderByte(money.order_ids[i]) | kClaimed);
    });
    money.pending_orders.clear();
  }

  // Closes the sessions of `due` slots (live, current entries) in order of
  // their last event, then frees them.
  size_t CloseSlots(std::vector<uint32_t>& closing) {
    std::sort(closing.begin(), closing.end(), [&](uint32_t a, uint32_t b) {
      const Open& x = slots[a];
      const Open& y = slots[b];
      const int64_t xl = Last(x), yl = Last(y);
      if (xl != yl) return xl < yl;
      const absl::string_view xs = sites.Get(x.site), ys = sites.Get(y.site);
      if (xs != ys) return xs < ys;
      return x.visitor.view() < y.visitor.view();
    });
    for (uint32_t index : closing) {
      Close(index);
      FreeSlot(index);
    }
    return closing.size();
  }

  // The session's revenue and orders per currency into `*out`, as
  // AddRevenues() (proto_sums.h) merges them into a message: summed
  // where a currency repeats (revenue saturating), sorted by currency.
  void MergeRevenues(const SessionMoney& money,
                     std::vector<CurrencyTotals>* out) const {
    out->clear();
    auto row = [&](absl::string_view currency) -> CurrencyTotals& {
      for (CurrencyTotals& r : *out) {
        if (r.currency == currency) return r;
      }
      out->push_back({currency, 0, 0});
      return out->back();
    };
    for (const auto& [currency, micros] : money.revenue) {
      CurrencyTotals& r = row(currency);
      r.micros = SaturatingAdd(r.micros, micros);
    }
    for (const auto& [currency, n] : money.orders) row(currency).orders += n;
    std::sort(out->begin(), out->end(),
              [](const CurrencyTotals& a, const CurrencyTotals& b) {
                return a.currency < b.currency;
              });
  }

  // A v1::SessionState of the session in `index`, serialized as libprotobuf
  // writes it, in `buffer` (valid until the next call): straight from the
  // slot, without filling a message (on every commit, filling, sizing and
  // serializing it walked each changed session three times; sessions with
  // money, filled into a message until 2026-12-01, were 3/4 of the
  // checkpoint's instructions on aggregate_bench's PartitionLifecycle).
  absl::string_view EncodeWire(uint32_t index, std::string* buffer) {
    const Open& s = slots[index];
    const AttributionParts& a = parts[s.attribution];
    const absl::string_view site = sites.Get(s.site);
    const absl::string_view visitor = s.visitor.view();
    const absl::string_view landing = pages.Get(s.landing);
    const absl::string_view exit = pages.Get(s.exit);
    absl::string_view user, funnels;
    const SessionMoney* money = nullptr;
    if (s.extra) {
      user = s.extra->user_id.view();
      funnels = absl::string_view(
          reinterpret_cast<const char*>(s.extra->funnel_steps.data()),
          s.extra->funnel_steps.size());
      money = s.extra->money.get();
    }
    size_t payload = site.size() + visitor.size() + a.channel.size() +
                     a.source.size() + a.medium.size() + a.campaign.size() +
                     a.device.size() + a.country.size() + landing.size() +
                     exit.size() + user.size() + funnels.size();
    size_t fields = 18;
    if (!funnels.empty()) {
      funnel_hashes.clear();
      for (size_t f = 0; f < funnels.size(); ++f) {
        AppendHash(funnel_name_hashes[f], &funnel_hashes);
        for (uint8_t step = 0; step < s.extra->funnel_steps[f]; ++step) {
          AppendHash(funnel_step_hashes[f][step], &funnel_hashes);
        }
      }
      payload += funnel_hashes.size();
      ++fields;
    }
    if (money != nullptr) {
      MergeRevenues(*money, &currency_totals);
      for (const auto& [goal, n] : money->conversions) payload += goal.size();
      for (const CurrencyTotals& r : currency_totals) {
        payload += r.currency.size();
      }
      goal_indexes.clear();
      for (const std::string& entry : money->order_ids) {
        payload += entry.size() - 1;
        goal_indexes.push_back(static_cast<char>(OrderByte(entry)));
      }
      payload += goal_indexes.size() + money->pending_orders.size();
      fields += 3 * money->conversions.size() + 4 * currency_totals.size() +
                money->order_ids.size() + 2;
    }
    absl::string_view client_id;
    if (rules.split_on_session_id) {
      client_id = client_ids[index].view();
      payload += client_id.size();
      ++fields;
    }
    const uint32_t start_repeat = StartRepeat(index);
    if (start_repeat > 0) ++fields;
    const SplitFrom from = SplitFromOf(index);
    if (from.ms != 0) fields += 2;
    if (from.last_us != 0) ++fields;
    if (rules.split_on_campaign_change) ++fields;  // 30
    WireWriter w(buffer, payload, fields);
    w.String(1, site);
    w.String(2, visitor);
    w.Number(3, static_cast<uint64_t>(s.first_us));
    w.Number(4, static_cast<uint64_t>(Last(s)));
    w.String(5, a.channel);
    w.String(6, a.source);
    w.String(7, a.medium);
    w.String(8, a.campaign);
    w.String(9, a.device);
    w.String(10, a.country);
    w.String(11, landing);
    w.String(12, exit);
    w.Number(13, s.pageviews);
    w.Number(14, s.events);
    w.Number(15, (s.flags & kNewVisitor) ? 1 : 0);
    if (rules.split_on_campaign_change) {
      w.Fixed64(16, raw_campaign_keys[index]);
    }
    w.String(17, user);
    if (money != nullptr) {
      for (const auto& [goal, n] : money->conversions) {  // GoalCount
        w.Message(
            18, WireWriter::StringSize(1, goal) + WireWriter::NumberSize(2, n));
        w.String(1, goal);
        w.Number(2, n);
      }
      for (const CurrencyTotals& r : currency_totals) {  // Revenue
        const uint64_t micros = static_cast<uint64_t>(r.micros);
        w.Message(19, WireWriter::StringSize(1, r.currency) +
                          WireWriter::NumberSize(2, micros) +
                          WireWriter::NumberSize(3, r.orders));
        w.String(1, r.currency);
        w.Number(2, micros);
        w.Number(3, r.orders);
      }
      for (const std::string& entry : money->order_ids) {
        w.Element(20, OrderIdOf(entry));
      }
    }
    w.String(21, funnels);
    if (money != nullptr) w.String(22, goal_indexes);
    if (!funnels.empty()) w.String(23, funnel_hashes);
    w.String(24, client_id);
    w.Number(25, start_repeat);
    w.Number(26, static_cast<uint64_t>(from.ms));
    w.Number(27, from.repeat);
    if (money != nullptr) w.String(28, money->pending_orders);
    w.Number(29, static_cast<uint64_t>(from.last_us));
    if (rules.split_on_campaign_change) w.Fixed64(30, campaign_keys[index]);
    return w.bytes();
  }

  static void AppendHash(uint64_t hash, std::string* out) {
    char bytes[8];
    absl::little_endian::Store64(bytes, hash);
    out->append(bytes, 8);
  }

  // A restored session's funnel progress, written under the funnels whose
  // hashes `hashes` holds (v1::SessionState.funnel_hashes): a configured
  // funnel of the same name gets the steps its own first steps share with
  // those reached. False when `hashes` does not fit `steps` (written before
  // hashes were: the progress is then the configured funnels', by position).
  bool MapFunnelProgress(absl::string_view steps, absl::string_view hashes,
                         std::vector<uint8_t>* out) const {
    size_t need = 0;
    for (char reached : steps) need += 8 * (1 + static_cast<uint8_t>(reached));
    if (hashes.empty() || hashes.size() != need) return false;
    out->assign(rules.funnels.size(), 0);
    const char* p = hashes.data();
    for (char byte : steps) {
      const uint8_t reached = static_cast<uint8_t>(byte);
      const uint64_t name = absl::little_endian::Load64(p);
      for (size_t f = 0; f < funnel_name_hashes.size(); ++f) {
        if (funnel_name_hashes[f] != name) continue;
        const std::vector<uint64_t>& mine = funnel_step_hashes[f];
        uint8_t same = 0;
        while (same < reached && same < mine.size() &&
               absl::little_endian::Load64(p + 8 * (1 + same)) == mine[same]) {
          ++same;
        }
        (*out)[f] = same;
        break;
      }
      p += 8 * (1 + reached);
    }
    return true;
  }
};

Sessionizer::Sessionizer(SessionRules rules, SessionObserver* observer,
                         const SessionAttribution* attribution)
    : impl_(std::make_unique<Impl>()) {
  impl_->rules = rules;
  impl_->timeout_us = absl::ToInt64Microseconds(rules.inactivity_timeout);
  impl_->max_length_us = absl::ToInt64Microseconds(rules.max_length);
  impl_->visitors = VisitorRecency(rules.visitor_retention);
  impl_->observer = observer;
  impl_->attribution = attribution;
  for (const Funnel& funnel : impl_->rules.funnels) {
    impl_->funnel_name_hashes.push_back(StableHash(funnel.name));
    std::vector<uint64_t>& steps = impl_->funnel_step_hashes.emplace_back();
    for (const FunnelStep& step : funnel.steps) {
      steps.push_back(StableHash(step.page, step.goal));
    }
  }
}

Sessionizer::~Sessionizer() = default;

Sessionizer::AddResult Sessionizer::Add(const EventView& event) {
  return impl_->Add(event, Impl::Probe(event.site_id, event.visitor_id));
}

Sessionizer::AddResult Sessionizer::Impl::Add(const EventView& event,
                                              const Probe& probe) {
  Impl& m = *this;
  const int64_t t = absl::ToUnixMicros(event.time);
  const int64_t found = m.Find(probe);
  if (found < 0) {
    const uint32_t index = m.NewSlot(event.site_id, event.visitor_id);
    m.Start(index, event);
    m.Apply(index, event, true);
    m.Schedule(index);
    return AddResult::kApplied;
  }
  const uint32_t index = static_cast<uint32_t>(found);
  Impl::Open& s = m.slots[index];
  if (t < s.first_us) {
    if (!m.CanMoveStart(index, event)) return AddResult::kLate;
    m.MoveStart(index, event);
    return AddResult::kApplied;
  }
  const int64_t last = Impl::Last(s);
  if (t < last) {
    // Inside the session (late, within the allowed lateness). In
    // event-time order other campaign parameters would have split it here,
    // and the events after would have followed: a split that can no
    // longer be made, so the event is late, as one kept from the session's
    // start by a split is (CanMoveStart).
    if (m.OtherCampaign(index, event) || m.OtherClientSession(index, event)) {
      return AddResult::kLate;
    }
    m.AdoptSplitKeys(index, event);
    m.Apply(index, event, /*in_order=*/false);
    return AddResult::kApplied;
  }
  // At the last event's time or after it: in event-time order it comes
  // after the last (ties go in the order the records came), so it may
  // split the session as a later one does.
  if (t - last > m.timeout_us || t - s.first_us > m.max_length_us ||
      m.SplitsHere(index, event)) {
    // A split with no time between (a campaign or client session split)
    // may start the next session in the millisecond the closing one
    // started in: counted, so that their records' ids differ.
    auto millis = [](int64_t us) {
      return absl::ToUnixMillis(absl::FromUnixMicros(us));
    };
    const int64_t previous_ms = millis(s.first_us);
    const uint32_t repeat = m.StartRepeat(index);
    // Another client session id is a new visit to the client, which numbers
    // it; any other split within the timeout continues the visit.
    const bool continues_visit =
        t - last <= m.timeout_us && !m.OtherClientSession(index, event);
    m.Close(index);
    m.Start(index, event, continues_visit);
    m.SetStartRepeat(index, millis(s.first_us) == previous_ms ? repeat + 1 : 0);
    // A late event may yet move its start back, as far as the inactivity
    // timeout before it: into the previous session's millisecond, when
    // that is as far (a split with no time between, almost never one after
    // a gap). Only the previous session is remembered: a move past its
    // start, into an earlier one's millisecond, is not counted.
    Impl::SplitFrom from;
    if (t - m.timeout_us < (previous_ms + 1) * 1000) {
      from = {previous_ms, repeat};
    }
    // And the previous session's last event, where a late event may come
    // before it and within the timeout of this start.
    if (t - m.timeout_us < last) from.last_us = last;
    m.SetSplitFrom(index, from);
    m.Apply(index, event, true);
    return AddResult::kApplied;  // its expiry entry is rescheduled lazily
  }
  m.AdoptSplitKeys(index, event);
  if (t > last) m.SetLast(s, t);
  m.Apply(index, event, true);
  return AddResult::kApplied;
}

void Sessionizer::AddAll(absl::Span<const EventView> events) {
  Impl& m = *impl_;
  // A lookup misses the cache three times in a row over many open sessions
  // (the lookup's group, the slot, the visitor id's block; perf put it at a
  // third of the core's time at 1 M sessions). So each is prefetched in its
  // own stage ahead of the event's Add: the group 2k events ahead, the slot
  // (a candidate found without comparing keys) k ahead, the id's block k/2
  // ahead. Hints only: Add finds the slot as it always does.
  // Each event's key is hashed once, in the first stage, and kept until its
  // Add (a ring of the 2k + 1 in flight).
  constexpr int kAhead = 8;
  constexpr int kRing = 4 * kAhead;
  const int n = static_cast<int>(events.size());
  int64_t candidate[kAhead];
  Impl::Probe probes[kRing];
  for (int i = -2 * kAhead; i < n; ++i) {
    if (int j = i + 2 * kAhead; j < n) {
      Impl::Probe& p = probes[j % kRing];
      p = Impl::Probe(events[j].site_id, events[j].visitor_id);
      m.lookup.prefetch(p);
    }
    if (int j = i + kAhead; j >= 0 && j < n) {
      const int64_t c = m.Candidate(probes[j % kRing]);
      candidate[j % kAhead] = c;
      if (c >= 0) __builtin_prefetch(&m.slots[c]);
    }
    if (int j = i + kAhead / 2; j >= 0 && j < n) {
      if (const int64_t c = candidate[j % kAhead]; c >= 0) {
        __builtin_prefetch(m.slots[c].visitor.block_address());
      }
    }
    if (i >= 0) m.Add(events[i], probes[i % kRing]);
  }
}

size_t Sessionizer::CloseUpTo(absl::Time frontier) {
  Impl& m = *impl_;
  if (frontier == absl::InfinitePast()) return 0;
  const int64_t frontier_us = frontier == absl::InfiniteFuture()
                                  ? INT64_MAX
                                  : absl::ToUnixMicros(frontier);
  const int64_t frontier_second = SecondOf(frontier_us);
  std::vector<Impl::Due> due;
  while (!m.expiry.empty() && m.expiry.begin()->first <= frontier_second) {
    std::vector<Impl::Due>& bucket = m.expiry.begin()->second;
    due.insert(due.end(), bucket.begin(), bucket.end());
    m.expiry.erase(m.expiry.begin());
  }
  std::vector<uint32_t> closing;
  for (const Impl::Due& d : due) {
    const Impl::Open& s = m.slots[d.slot];
    if (s.gen != d.gen || !(s.flags & Impl::kLive)) continue;  // stale
    if (m.ExpiryUs(s) < frontier_us) {
      closing.push_back(d.slot);
    } else {
      m.Schedule(d.slot);
    }
  }
  return m.CloseSlots(closing);
}

size_t Sessionizer::CloseAll() {
  Impl& m = *impl_;
  m.expiry.clear();
  std::vector<uint32_t> closing;
  for (uint32_t i = 0; i < m.slots.size(); ++i) {
    if (m.slots[i].flags & Impl::kLive) closing.push_back(i);
  }
  return m.CloseSlots(closing);
}

size_t Sessionizer::open_sessions() const { return impl_->live; }

void Sessionizer::ForEachSiteOpen(
    absl::FunctionRef<void(absl::string_view, int64_t, uint64_t*)> f) const {
  const Impl& m = *impl_;
  for (uint32_t id = 1; id < m.sites.capacity(); ++id) {
    if (m.sites.refs(id) > 0) {
      f(m.sites.Get(id), m.sites.refs(id), &m.sites.cache(id));
    }
  }
}

void Sessionizer::ForEachOpen(
    absl::FunctionRef<void(absl::Time, const SessionAttributes&)> f) const {
  const Impl& m = *impl_;
  for (uint32_t i = 0; i < m.slots.size(); ++i) {
    const Impl::Open& s = m.slots[i];
    if (s.flags & Impl::kLive) {
      f(absl::FromUnixMicros(s.first_us), m.Attributes(s));
    }
  }
}

size_t Sessionizer::ApproximateBytes() const {
  const Impl& m = *impl_;
  return m.slots.HeapBytes() + m.campaign_keys.HeapBytes() +
         m.raw_campaign_keys.HeapBytes() + m.client_ids.HeapBytes() +
         m.client_id_heap + m.visitor_heap +
         m.start_repeats.capacity() * (sizeof(uint64_t) + 1) +
         m.split_from.capacity() *
             (sizeof(std::pair<const uint32_t, Impl::SplitFrom>) + 1) +
         m.lookup.capacity() * (sizeof(uint32_t) + 1) +
         m.live * sizeof(Impl::Due) + m.expiry.size() * 64 +
         m.dirty.capacity() * sizeof(Impl::Due) +
         (m.extra_count + m.spare_extras.size()) * (sizeof(SessionExtra) + 16) +
         (m.money_count + m.spare_money.size()) * (sizeof(SessionMoney) + 16) +
         (m.spare_extras.capacity() + m.spare_money.capacity()) *
             sizeof(void*) +
         m.sites.bytes() + m.pages.bytes() + m.attributions.bytes() +
         m.parts.capacity() * sizeof(AttributionParts) +
         m.visitors.ApproximateBytes() + m.orders.ApproximateBytes();
}

void Sessionizer::Checkpoint(
    bool full,
    absl::FunctionRef<void(absl::string_view, absl::string_view)> closed,
    absl::FunctionRef<void(absl::string_view)> session) {
  Impl& m = *impl_;
  if (full) {
    for (uint32_t i = 0; i < m.slots.size(); ++i) {
      Impl::Open& s = m.slots[i];
      if (!(s.flags & Impl::kLive)) continue;
      session(m.EncodeWire(i, &m.wire));
      s.flags = (s.flags & ~Impl::kDirty) | Impl::kCheckpointed;
    }
  } else {
    for (const auto& [site, visitor] : m.removed) closed(site, visitor);
    for (const Impl::Due& d : m.dirty) {
      Impl::Open& s = m.slots[d.slot];
      if (s.gen != d.gen || !(s.flags & Impl::kLive)) continue;
      session(m.EncodeWire(d.slot, &m.wire));
      s.flags = (s.flags & ~Impl::kDirty) | Impl::kCheckpointed;
    }
  }
  // A burst (a restore, a warm-up) leaves the lists' capacity far above
  // what one commit interval needs: given back when a checkpoint uses a
  // quarter of it or less.
  const auto clear = [](auto& list) {
    if (list.capacity() > 4096 && list.size() < list.capacity() / 4) {
      std::remove_reference_t<decltype(list)>().swap(list);
    } else {
      list.clear();
    }
  };
  clear(m.removed);
  clear(m.dirty);
}

DayRetention& Sessionizer::visitors() { return impl_->visitors.days(); }
DayRetention& Sessionizer::orders() { return impl_->orders.days(); }

void Sessionizer::RestoreClosed(absl::string_view site,
                                absl::string_view visitor) {
  Impl& m = *impl_;
  const int64_t found = m.Find(Impl::Probe(site, visitor));
  if (found < 0) return;
  Impl::Open& s = m.slots[found];
  m.attributions.Release(s.attribution);
  m.pages.Release(s.landing);
  m.pages.Release(s.exit);
  s.attribution = s.landing = s.exit = 0;
  m.DropExtra(s);
  s.flags &= ~Impl::kCheckpointed;  // gone from the changelog too
  m.FreeSlot(static_cast<uint32_t>(found));
}

void Sessionizer::RestoreSession(const v1::SessionState& st) {
  Impl& m = *impl_;
  RestoreClosed(st.site_id(), st.visitor_id());  // an upsert replaces
  const uint32_t index = m.NewSlot(st.site_id(), st.visitor_id());
  Impl::Open& s = m.slots[index];
  s.first_us = st.first_us();
  s.attribution =
      m.AcquireAttribution(st.channel(), st.source(), st.medium(),
                           st.campaign(), st.device_category(), st.country());
  s.landing = m.pages.Acquire(st.landing_page());
  s.exit = m.pages.Acquire(st.exit_page());
  s.pageviews = st.pageviews();
  s.events = st.events();
  if (m.rules.split_on_campaign_change) {
    // Written before 2026-12-07: the raw key alone (SameCampaign takes it).
    m.campaign_keys[index] = st.campaign_labels_key() != 0
                                 ? st.campaign_labels_key()
                                 : st.campaign_key();
    m.raw_campaign_keys[index] = st.campaign_key();
  }
  if (m.rules.split_on_session_id) m.SetClientId(index, st.client_session_id());
  m.SetStartRepeat(index, st.start_repeat());
  m.SetSplitFrom(index, {st.split_from_ms(), st.split_from_repeat(),
                         st.split_from_last_us()});
  s.flags = Impl::kLive | Impl::kCheckpointed |
            (st.new_visitor() ? Impl::kNewVisitor : 0);
  if (!st.user_id().empty() || st.conversions_size() > 0 ||
      st.revenue_size() > 0 || st.order_ids_size() > 0 ||
      !st.funnel_steps().empty()) {
    SessionExtra& x = m.Extra(s);
    x.user_id.assign(st.user_id());
    if (st.conversions_size() > 0 || st.revenue_size() > 0 ||
        st.order_ids_size() > 0) {
      SessionMoney& money = m.Money(s);
      for (const v1::GoalCount& g : st.conversions()) {
        money.conversions.emplace_back(g.goal(), g.conversions());
      }
      for (const v1::Revenue& r : st.revenue()) {
        if (r.value_micros() != 0) {
          money.revenue.emplace_back(r.currency(), r.value_micros());
        }
        if (r.orders() != 0) {
          money.orders.emplace_back(r.currency(), r.orders());
        }
      }
      // Each id's goal, claim and value, unless the checkpoint has none
      // for it (written before goals were kept): then every goal, its order
      // and value counted, as before. An index that names no goal of the
      // session is every goal; one of a goal named twice (a restored list is
      // not capped), the first of that name, as GoalEntry() finds it.
      const std::string& bytes = st.order_goal_indexes();
      const bool have_bytes =
          bytes.size() == static_cast<size_t>(st.order_ids_size());
      for (int i = 0; i < st.order_ids_size(); ++i) {
        const uint8_t byte = have_bytes ? static_cast<uint8_t>(bytes[i])
                                        : (kAnyGoal | kClaimed | kValued);
        uint8_t goal = byte & kAnyGoal;
        goal = goal < money.conversions.size()
                   ? GoalEntry(money, money.conversions[goal].first)
                   : kAnyGoal;
        AddOrderId(st.order_ids(i), goal | (byte & (kClaimed | kValued)),
                   money.order_ids);
      }
      ForEachPending(st.order_pending(), [&](size_t index) {
        if (index < money.order_ids.size()) {
          AppendPending(index, money.pending_orders);
        }
      });
    }
    if (!m.MapFunnelProgress(st.funnel_steps(), st.funnel_hashes(),
                             &x.funnel_steps)) {
      x.funnel_steps.assign(st.funnel_steps().begin(), st.funnel_steps().end());
    }
    // Written under other funnels (the config changed since) without
    // hashes, or corrupt: no funnel beyond the configured ones, no step
    // beyond a funnel's last, as everything downstream indexes the
    // configured funnels' steps with it.
    if (x.funnel_steps.size() > m.rules.funnels.size()) {
      x.funnel_steps.resize(m.rules.funnels.size());
    }
    for (size_t f = 0; f < x.funnel_steps.size(); ++f) {
      x.funnel_steps[f] = static_cast<uint8_t>(
          std::min<size_t>(x.funnel_steps[f], m.rules.funnels[f].steps.size()));
    }
  }
  m.SetLast(s, st.last_us());
  // Scheduled by FinishRestore, once every checkpoint has been applied.
}

void Sessionizer::FinishRestore() {
  Impl& m = *impl_;
  m.expiry.clear();
  for (uint32_t i = 0; i < m.slots.size(); ++i) {
    if (m.slots[i].flags & Impl::kLive) m.Schedule(i);
  }
  m.removed.clear();
  m.dirty.clear();
  for (DayRetention* days : {&m.visitors.days(), &m.orders.days()}) {
    const int32_t newest = days->newest_day();
    if (newest != INT32_MIN) {
      days->store().ExpireBefore(newest - days->retention_days());
    }
  }
}

}  // namespace kpistream
