#!/usr/bin/env bash
# Writes the binary protobuf seeds of the protobuf_event and ad_cost_protobuf
# fuzz targets from the text protos below, with protoc --encode (a WebEvent
# of every type, valid and invalid ones; AdCost records). Run from anywhere
# when the protos change; the output is committed.
set -euo pipefail
cd "$(dirname "$0")"
root=../..
encode() {  # message type, output file; the text proto on stdin
  protoc --encode="kpistream.v1.$1" -I "$root/proto" -I /usr/include \
    "$root/proto/kpistream/v1/web_event.proto" >"$2"
}
events=corpus/protobuf_event
encode WebEvent $events/page_view <<'PB'
event_id: "e1" event_time { seconds: 1767261500 nanos: 250000000 }
site_id: "shop" visitor_id: "v1" user_id: "u1" session_id: "s1" type: PAGE_VIEW
page_url: "https://shop.example/products/1?utm_source=newsletter&utm_medium=email&utm_campaign=winter%20sale"
page_title: "Product 1" referrer: "https://www.google.com/"
device_category: "Mobile" country: "de" user_agent: "Mozilla/5.0 (iPhone)" session_number: 1
PB
encode WebEvent $events/engagement <<'PB'
event_id: "e2" event_time { seconds: 1767261520 } site_id: "shop" visitor_id: "v1"
type: ENGAGEMENT page_url: "https://shop.example/products/1" device_category: "desktop" country: "US"
PB
encode WebEvent $events/conversion <<'PB'
event_id: "e3" event_time { seconds: 1767261540 nanos: 123456789 } site_id: "shop" visitor_id: "v1"
type: CONVERSION page_url: "https://shop.example/thanks?gclid=abc"
conversion { goal: "purchase" value_micros: 12340000 currency: "eur" order_id: "o-1" }
PB
encode WebEvent $events/custom <<'PB'
event_id: "e4" event_time { seconds: 1767261000 nanos: 5 } site_id: "blog" visitor_id: "v2"
type: CUSTOM page_url: "/blog/post?fbclid=x" utm_source: "t.co" session_number: 2
PB
encode WebEvent $events/unknown_type_number <<'PB'
event_id: "e5" event_time { seconds: 1767261000 } site_id: "shop" visitor_id: "v3" type: 9
PB
encode WebEvent $events/missing_time <<'PB'
event_id: "e6" site_id: "shop" visitor_id: "v3" type: PAGE_VIEW
PB
encode WebEvent $events/time_out_of_range <<'PB'
event_id: "e7" event_time { seconds: 253402300800 } site_id: "shop" visitor_id: "v3" type: PAGE_VIEW
PB
encode WebEvent $events/missing_goal <<'PB'
event_id: "e8" event_time { seconds: 1767261000 } site_id: "shop" visitor_id: "v3" type: CONVERSION
conversion { value_micros: -5 }
PB

# Wire-level seeds for what text protos cannot write (ReadProtobufEvent is
# held to libprotobuf's parse there too): unknown field 99 of every wire
# type and a group of it, a second event_time that merges into the first,
# a type in a padded varint.
{ cat $events/page_view
  printf '\x98\x06\x01\x99\x06abcdefgh\x9a\x06\x02xy\x9b\x06\x08\x01\x9c\x06\x9d\x06abcd'
} >$events/unknown_fields
{ cat $events/engagement; printf '\x12\x02\x10\x05'; } >$events/merged_time
{ cat $events/custom; printf '\x38\x81\x80\x80\x80\x00'; } >$events/padded_varint

costs=corpus/ad_cost_protobuf
encode AdCost $costs/daily <<'PB'
site_id: "shop" date_start { seconds: 1767225600 } date_end { seconds: 1767312000 }
utm_source: "google" utm_medium: "cpc" utm_campaign: "brand" cost_micros: 125000000 currency: "EUR"
PB
encode AdCost $costs/instant <<'PB'
site_id: "shop" time { seconds: 1767261000 nanos: 1 } utm_source: "facebook" utm_medium: "paid_social"
cost_micros: 1 currency: "USD"
PB
encode AdCost $costs/missing_cost <<'PB'
site_id: "shop" time { seconds: 1767261000 } cost_micros: -1 currency: "USD"
PB
encode AdCost $costs/no_spend <<'PB'
site_id: "shop" time { seconds: 1767261000 } currency: "USD"
PB
encode AdCost $costs/bad_timestamp <<'PB'
site_id: "shop" date_start { seconds: 1767225600 nanos: -1 } cost_micros: 5 currency: "EUR"
PB
ls -l $events $costs
