#include "export/session_record_codec.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "aggregate/label_values.h"
#include "aggregate/proto_sums.h"
#include "google/protobuf/util/json_util.h"

namespace kpistream {
namespace {

// Nanosecond precision; seconds round toward the infinite past so nanos stay
// in [0, 1e9) as google.protobuf.Timestamp requires.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) /
                                     absl::Nanoseconds(1)));
}

// Binary protobuf, or canonical proto3 JSON on one line: lowerCamel names,
// and every scalar (engaged: false, orders: 0) present so consumers need no
// defaults.
void Encode(const google::protobuf::Message& message, OutputFormat format,
            std::string* out) {
  out->clear();
  if (format == OutputFormat::kProtobuf) {
    message.AppendToString(out);
    return;
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = false;
  // Printing a fully built message of known type cannot fail.
  (void)google::protobuf::util::MessageToJsonString(message, out, options);
}

// A dimension as the labels name a missing value ("(not set)"), copied
// into the field's string (its capacity kept).
void SetDimension(absl::string_view value, std::string* field) {
  const absl::string_view v = OrNotSet(value);
  field->assign(v.data(), v.size());
}

// AddRevenues, a missing currency named as in the labels.
template <typename Revenues, typename Orders>
void SetRevenue(const Revenues& revenue, const Orders& orders,
                google::protobuf::RepeatedPtrField<v1::Revenue>* out) {
  AddRevenues(revenue, orders, out);
  for (v1::Revenue& v : *out)
    v.set_currency(std::string(OrNotSet(v.currency())));
}

}  // namespace

void ToSessionRecord(const ClosedSession& s, v1::SessionRecord* r) {
  r->Clear();
  r->set_site_id(s.site_id);
  r->set_visitor_id(s.visitor_id);
  r->set_user_id(s.user_id);
  r->set_client_session_id(s.client_session_id);
  std::string* id = r->mutable_session_id();
  id->clear();
  absl::StrAppend(id, s.visitor_id, ":", absl::ToUnixMillis(s.start));
  // Unique per visitor: a second session starting in the same millisecond
  // (a split with no time between) is "-2", a third "-3".
  if (s.start_repeat > 0) absl::StrAppend(id, "-", s.start_repeat + 1);
  SetTimestamp(s.start, r->mutable_start());
  SetTimestamp(s.end, r->mutable_end());
  r->set_duration_seconds(absl::ToDoubleSeconds(s.duration()));
  r->set_pageviews(s.pageviews);
  r->set_events(s.events);
  r->set_engaged(s.engaged);
  r->set_bounced(s.bounced);
  r->set_single_page(s.single_page);
  r->set_new_visitor(s.new_visitor);
  // Dimensions: a missing value is "(not set)", as in the metrics' labels.
  SetDimension(s.channel, r->mutable_channel());
  SetDimension(s.source, r->mutable_source());
  SetDimension(s.medium, r->mutable_medium());
  SetDimension(s.campaign, r->mutable_campaign());
  SetDimension(s.landing_page, r->mutable_landing_page());
  SetDimension(s.exit_page, r->mutable_exit_page());
  SetDimension(s.device_category, r->mutable_device_category());
  SetDimension(s.country, r->mutable_country());
  AddGoalCounts(s.conversions, r->mutable_conversions());
  SetRevenue(s.revenue, s.orders_by_currency, r->mutable_revenue());
  r->set_orders(s.orders);
}

std::string EncodeSessionRecord(const ClosedSession& session,
                                OutputFormat format) {
  v1::SessionRecord record;
  std::string out;
  EncodeSessionRecord(session, format, &record, &out);
  return out;
}

void EncodeSessionRecord(const ClosedSession& session, OutputFormat format,
                         v1::SessionRecord* scratch, std::string* out) {
  ToSessionRecord(session, scratch);
  Encode(*scratch, format, out);
}

std::string EncodeKpiSnapshot(const WindowKpis& k, const std::string& partition,
                              OutputFormat format) {
  v1::KpiSnapshot r;
  std::string out;
  EncodeKpiSnapshot(k, partition, format, &r, &out);
  return out;
}

void EncodeKpiSnapshot(const WindowKpis& k, const std::string& partition,
                       OutputFormat format, v1::KpiSnapshot* scratch,
                       std::string* out) {
  v1::KpiSnapshot& r = *scratch;
  r.Clear();
  r.set_site_id(k.site);
  r.set_channel(k.channel);
  SetTimestamp(k.start, r.mutable_window_start());
  SetTimestamp(k.end, r.mutable_window_end());
  r.set_final(k.final);
  r.set_sessions(k.sessions);
  r.set_sessions_closed(k.sessions_closed);
  r.set_engaged(k.engaged);
  r.set_bounced(k.bounced);
  r.set_pageviews(k.pageviews);
  r.set_duration_seconds_sum(k.duration_seconds_sum());
  AddGoalCounts(k.conversions, r.mutable_conversions());
  SetRevenue(k.revenue, k.orders_by_currency, r.mutable_revenue());
  r.set_orders(k.orders);
  r.set_partition(partition);
  Encode(r, format, out);
}

}  // namespace kpistream
