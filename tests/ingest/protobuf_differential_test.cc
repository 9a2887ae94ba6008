// Differential tests of the binary protobuf WebEvent decoder
// (ReadProtobufEvent, behind EventDecoder with format protobuf) against the
// reference it replaces: libprotobuf 3.21's WebEvent::ParseFromString
// followed by the same validation (EventDecoder::DecodeMessage). For every
// input both must accept with equal Events (every field) and equal
// DecodeResult.time, or reject with the same reason.
//
// Inputs: hand-written edge cases of the wire format (unknown fields of every
// wire type, groups, tags, varints and lengths at and beyond libprotobuf's
// limits, UTF-8 in every string field), random events as libprotobuf writes
// them, concatenated (protobuf's merge) and with unknown fields, and the same
// mutated byte by byte (KPISTREAM_DIFF_CASES sets how many, KPISTREAM_DIFF_SEED
// the seed). The counts of accepted and rejected inputs are printed, to show
// what the comparison covered.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"
#include "kpistream/v1/web_event.pb.h"
#include "tests/ingest/json_differential.h"

namespace kpistream {
namespace {

using namespace std::string_literals;  // "\x80\x00"s keeps its NUL
using json_differential::Decoded;
using json_differential::Describe;
using json_differential::kNow;
using json_differential::kSkew;
using json_differential::SameEvent;

struct Counts {
  int accepted = 0, malformed = 0, rejected_otherwise = 0;
};

class ProtobufDifferentialTest : public ::testing::Test {
 protected:
  // libprotobuf logs every string that is not UTF-8.
  static void SetUpTestSuite() {
    log_handler_ = google::protobuf::SetLogHandler(nullptr);
  }
  static void TearDownTestSuite() {
    google::protobuf::SetLogHandler(log_handler_);
  }
  static inline google::protobuf::LogHandler* log_handler_ = nullptr;

  // One decoder for every input, as the engine reuses one per thread.
  Decoded ViaReader(const std::string& bytes) {
    Decoded d;
    d.result = reader_.Decode(bytes, kNow, &d.event);
    return d;
  }

  Decoded ViaLibprotobuf(const std::string& bytes) {
    Decoded d;
    v1::WebEvent message;
    if (!message.ParseFromString(bytes)) {
      d.result.reason = "malformed";
      return d;
    }
    d.result = reference_.DecodeMessage(&message, kNow, &d.event);
    return d;
  }

  void ExpectSame(const std::string& bytes, Counts* counts = nullptr) {
    const Decoded a = ViaReader(bytes);
    const Decoded b = ViaLibprotobuf(bytes);
    const bool same = a.result.ok == b.result.ok &&
                      a.result.reason == b.result.reason &&
                      a.result.time == b.result.time &&
                      (!a.result.ok || SameEvent(a.event, b.event));
    EXPECT_TRUE(same) << "input: \"" << absl::CHexEscape(bytes)
                      << "\"\n  reader:      " << Describe(a)
                      << "\n  libprotobuf: " << Describe(b);
    if (a.result.ok) {
      EXPECT_TRUE(a.result.detail.empty());
    } else {
      EXPECT_FALSE(a.result.detail.empty()) << absl::CHexEscape(bytes);
    }
    if (counts == nullptr) return;
    if (b.result.ok) {
      ++counts->accepted;
    } else if (b.result.reason == "malformed") {
      ++counts->malformed;
    } else {
      ++counts->rejected_otherwise;
    }
  }

  EventDecoder reader_{InputFormat::kProtobuf, kSkew};
  EventDecoder reference_{InputFormat::kProtobuf, kSkew};
};

// ---- Writing the wire format by hand ---------------------------------------

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

std::string Key(uint32_t field, uint32_t wire) {
  return Varint((uint64_t{field} << 3) | wire);
}

std::string Len(uint32_t field, const std::string& bytes) {
  return absl::StrCat(Key(field, 2), Varint(bytes.size()), bytes);
}

std::string Int(uint32_t field, uint64_t v) {
  return absl::StrCat(Key(field, 0), Varint(v));
}

// `n` groups of field 50 nested in one another.
std::string Groups(int n, const std::string& inside = "") {
  std::string out = inside;
  for (int i = 0; i < n; ++i) {
    out = absl::StrCat(Key(50, 3), out, Key(50, 4));
  }
  return out;
}

const int64_t kSeconds = absl::ToUnixSeconds(kNow) - 60;

std::string Time(int64_t seconds = kSeconds, int64_t nanos = 5) {
  return Len(2, absl::StrCat(Int(1, static_cast<uint64_t>(seconds)),
                             Int(2, static_cast<uint64_t>(nanos))));
}

// A page view that is valid, before what a case adds.
std::string Valid() {
  return absl::StrCat(Len(1, "e-1"), Time(), Len(3, "shop"), Len(4, "v-1"),
                      Int(7, 1));
}

TEST_F(ProtobufDifferentialTest, EdgeCasesOfTheWireFormat) {
  const std::string v = Valid();
  const std::vector<std::string> cases = {
      "",
      v,
      // Tags.
      absl::StrCat(v, std::string(1, '\0')),  // tag 0
      absl::StrCat(v, Key(0, 2), Varint(0)),  // field number 0
      absl::StrCat(v, Key(0, 0), Varint(1)),
      absl::StrCat(v, Key(0, 3), Key(0, 4)),
      absl::StrCat(v, Key(9, 6)),
      absl::StrCat(v, Key(9, 7)),  // wire 6, 7
      absl::StrCat(v, Key(1, 4)),  // end group, no group
      absl::StrCat(v, "\x8a\x80\x80\x80\x00"s, Varint(1), "x"),  // 5-byte tag
      absl::StrCat(v, "\x8a\x80\x80\x80\x80\x00"s, Varint(1), "x"),  // 6 bytes
      absl::StrCat(v, "\x8a\x80\x80\x80\x10", Varint(1), "x"),  // bits > 32
      absl::StrCat(v, "\x8a\x80\x80\x80\x7f", Varint(1), "x"),
      absl::StrCat(v, "\x8a\x80"),                    // tag runs out
      absl::StrCat(v, Key(536870911, 0), Varint(7)),  // largest field number
      // Unknown fields of every wire type, and known numbers with another
      // wire type (unknown too).
      absl::StrCat(v, Int(99, 12345678901234ull)),
      absl::StrCat(v, Key(99, 1), std::string(8, 'x')),
      absl::StrCat(v, Key(99, 1), std::string(7, 'x')),
      absl::StrCat(v, Key(99, 5), std::string(4, 'x')),
      absl::StrCat(v, Key(99, 5), std::string(3, 'x')),
      absl::StrCat(v, Len(99, "\xff\xfe not UTF-8 is fine here")),
      absl::StrCat(v, Int(4, 7)),  // visitor_id as varint
      absl::StrCat(v, Key(4, 5), "abcd"),
      absl::StrCat(v, Len(7, "x")),  // type as a string
      absl::StrCat(v, Int(2, 5)),    // event_time as varint
      absl::StrCat(v, Int(21, 5)),
      absl::StrCat(v, Key(20, 1), std::string(8, '\1')),
      absl::StrCat(v, Len(20, "\xff")),
      // Groups.
      absl::StrCat(v, Groups(1)),
      absl::StrCat(v, Groups(1, absl::StrCat(Int(1, 5), Len(2, "\xff"),
                                             Key(3, 5), "abcd"))),
      absl::StrCat(v, Groups(100)),
      absl::StrCat(v, Groups(101)),
      absl::StrCat(v, Key(50, 3), Key(51, 4)),  // another's end tag
      absl::StrCat(v, Key(50, 3)),              // never closed
      absl::StrCat(v, Key(50, 3), Int(1, 1)),
      absl::StrCat(v, Key(50, 3), std::string(1, '\0'), Key(50, 4)),
      absl::StrCat(v, Key(4, 3), Key(4, 4)),  // visitor_id as group
      absl::StrCat(Valid(), Len(2, Groups(99))),
      absl::StrCat(Valid(), Len(2, Groups(100))),
      absl::StrCat(Valid(), Len(21, Groups(99)), Len(21, Len(1, "signup"))),
      absl::StrCat(Valid(), Len(21, Groups(100))),
      // Varints.
      absl::StrCat(v, Key(7, 0), "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x00"s),
      absl::StrCat(v, Key(7, 0),
                   "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"s),
      absl::StrCat(v, Key(7, 0), "\x83\x80\x80\x80\x80\x80\x80\x80\x80\x7f"),
      absl::StrCat(v, Int(7, (uint64_t{1} << 32) | 3)),  // type: low 32 bits
      absl::StrCat(v, Int(7, static_cast<uint64_t>(-1))),
      absl::StrCat(v, Int(7, 0)),
      absl::StrCat(v, Int(7, 9)),
      absl::StrCat(v, Key(20, 0), "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x00"s),
      absl::StrCat(v, Key(20, 0),
                   "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"s),
      absl::StrCat(v, Len(2, "\x10\x81\x80\x80\x80\x80\x80\x80\x80\x80\x00"s)),
      absl::StrCat(v,
                   Len(2, "\x10\x81\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"s)),
      absl::StrCat(v, Int(20, (uint64_t{1} << 32) | 2)),  // session_number
      absl::StrCat(v, Int(20, static_cast<uint64_t>(-1))),
      absl::StrCat(v, Key(20, 0)),  // varint runs out
      absl::StrCat(v, Key(20, 0), "\x80"),
      // Lengths.
      absl::StrCat(v, Key(1, 2), "\x80\x00"s),  // padded 0
      absl::StrCat(v, Key(99, 2), "\x80\x80\x80\x80\x00"s),
      absl::StrCat(v, Key(99, 2), "\x80\x80\x80\x80\x07"),
      absl::StrCat(v, Key(99, 2), "\x80\x80\x80\x80\x08"),
      absl::StrCat(v, Key(99, 2), "\x80\x80\x80\x80\x80\x00"s),
      absl::StrCat(v, Key(1, 2), Varint(4), "abc"),  // runs past the end
      absl::StrCat(v, Key(1, 2), Varint(3), "abc"),  // ends at the end
      absl::StrCat(v, Key(1, 2), Varint(1)),         // nothing after it
      absl::StrCat(v, Key(1, 2)),                    // no length
      absl::StrCat(Valid(), Key(2, 2), Varint(30), Int(1, 5)),
      // Nested messages: what ends them, merging, presence.
      absl::StrCat(Valid(), Len(2, std::string(1, '\0'))),
      absl::StrCat(Valid(), Len(2, Key(3, 4))),
      absl::StrCat(Valid(), Len(2, Int(1, kSeconds))),  // merged: nanos stay
      absl::StrCat(Valid(), Len(2, Int(2, 7))),
      absl::StrCat(Valid(), Len(2, "")),
      absl::StrCat(Len(3, "shop"), Len(4, "v"), Int(7, 1), Len(2, "")),
      absl::StrCat(Len(3, "shop"), Len(4, "v"), Int(7, 1)),
      absl::StrCat(v, Len(2, Int(2, static_cast<uint64_t>(-1)))),  // nanos -1
      absl::StrCat(v, Len(2, Int(2, 1000000000))),
      absl::StrCat(v, Len(2, Int(2, (uint64_t{1} << 32) | 9))),
      absl::StrCat(v, Len(2, Int(1, static_cast<uint64_t>(-62135596801)))),
      absl::StrCat(v, Len(2, Int(1, 253402300800ull))),
      absl::StrCat(v, Len(2, Len(1, "x"))),  // seconds as a string
      absl::StrCat(Valid(), Int(7, 3)),      // conversion, no goal
      absl::StrCat(Valid(), Int(7, 3), Len(21, "")),
      absl::StrCat(Valid(), Int(7, 3), Len(21, Len(1, "signup"))),
      absl::StrCat(Valid(), Int(7, 3), Len(21, Len(1, "purchase")),
                   Len(21, absl::StrCat(Int(2, 1990000), Len(3, "EUR"),
                                        Len(4, "o-1"))),
                   Len(21, Len(3, "usd"))),
      absl::StrCat(Valid(), Len(21, Int(2, static_cast<uint64_t>(-5)))),
      absl::StrCat(Valid(), Len(21, Len(1, "x")), Int(7, 3)),
      // Repeated fields: the last wins.
      absl::StrCat(v, Len(4, "v-2"), Len(3, "other"), Len(4, "v-3")),
      absl::StrCat(v, Len(3, "")),
      absl::StrCat(v, Len(4, "")),
      absl::StrCat(v, Len(1, "")),
      absl::StrCat(v, Int(7, 2), Int(7, 4)),
  };
  for (const std::string& c : cases) ExpectSame(c);
}

TEST_F(ProtobufDifferentialTest, Utf8InEveryStringField) {
  const std::vector<std::string> texts = {
      "",
      "plain",
      std::string("nul\0in", 6),
      "\xc3\xa9t\xc3\xa9",  // é
      "\xf0\x9f\x98\x80",   // U+1F600
      "\xef\xbf\xbf",       // U+FFFF
      "\xf4\x8f\xbf\xbf",   // U+10FFFF
      "\xed\x9f\xbf",       // U+D7FF
      "\xee\x80\x80",       // U+E000
      "\xed\xa0\x80",       // a surrogate
      "\xed\xbf\xbf",
      "\xc0\x80",  // overlong
      "\xc1\xbf",
      "\xe0\x80\x80",
      "\xe0\x9f\xbf",
      "\xf0\x80\x80\x80",
      "\xf0\x8f\xbf\xbf",
      "\xf4\x90\x80\x80",  // beyond U+10FFFF
      "\xf5\x80\x80\x80",
      "\xf8\x88\x80\x80\x80",
      "\xff",
      "\x80",                  // a lone continuation byte
      "\xe2\x82",              // cut short
      "abcdefgh\xe2\x82\xac",  // after a word of ASCII
      "abcdefg\xe2\x82\xac",
      "abcdefghijklmnop\xe2\x82",
  };
  // Every string field of WebEvent (those Event does not keep too), and of
  // Conversion.
  const std::vector<uint32_t> fields = {1,  3,  4,  5,  6,  8,  9,  10, 11,
                                        12, 13, 14, 15, 16, 17, 18, 19};
  for (const std::string& text : texts) {
    for (uint32_t field : fields) {
      ExpectSame(absl::StrCat(Valid(), Len(field, text)));
      // Overwritten by a valid one: each occurrence counts.
      ExpectSame(absl::StrCat(Valid(), Len(field, text), Len(field, "ok")));
    }
    for (uint32_t field : {1, 3, 4}) {
      ExpectSame(absl::StrCat(
          Valid(), Int(7, 3),
          Len(21, absl::StrCat(Len(1, "purchase"), Len(field, text)))));
    }
  }
}

// ---- Random events ---------------------------------------------------------

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  uint64_t Below(uint64_t n) {
    return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_);
  }
  bool OneIn(int n) { return Below(n) == 0; }
  std::string Text() {
    static const std::vector<std::string> pieces = {"a",
                                                    "shop",
                                                    "v-",
                                                    "https://example.com/p?q=1",
                                                    "\xc3\xa9",
                                                    "\xf0\x9f\x98\x80",
                                                    " ",
                                                    "0",
                                                    "Mozilla/5.0",
                                                    "EUR",
                                                    "cpc",
                                                    "google",
                                                    "\xed\xa0\x80",
                                                    "\xff"};
    std::string out;
    const int n = static_cast<int>(Below(5));
    for (int i = 0; i < n; ++i) {
      // Invalid UTF-8 rarely, so that most events are read in full.
      const size_t k = Below(OneIn(40) ? pieces.size() : pieces.size() - 2);
      out += pieces[k];
    }
    return out;
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

v1::WebEvent RandomEvent(Random& r) {
  v1::WebEvent e;
  auto maybe = [&](auto set) {
    if (!r.OneIn(3)) set(r.Text());
  };
  if (!r.OneIn(10)) e.set_event_id(absl::StrCat("e-", r.Below(1000)));
  if (!r.OneIn(20)) e.set_site_id(r.OneIn(2) ? "shop" : "blog");
  if (!r.OneIn(20)) e.set_visitor_id(absl::StrCat("v-", r.Below(100)));
  maybe([&](std::string s) { e.set_user_id(s); });
  maybe([&](std::string s) { e.set_session_id(s); });
  maybe([&](std::string s) { e.set_page_url(s); });
  maybe([&](std::string s) { e.set_page_title(s); });
  maybe([&](std::string s) { e.set_referrer(s); });
  maybe([&](std::string s) { e.set_utm_source(s); });
  maybe([&](std::string s) { e.set_utm_medium(s); });
  maybe([&](std::string s) { e.set_utm_campaign(s); });
  maybe([&](std::string s) { e.set_utm_term(s); });
  maybe([&](std::string s) { e.set_utm_content(s); });
  maybe([&](std::string s) { e.set_click_id(s); });
  maybe([&](std::string s) { e.set_device_category(s); });
  maybe([&](std::string s) { e.set_country(s); });
  maybe([&](std::string s) { e.set_user_agent(s); });
  if (!r.OneIn(10)) {
    auto* t = e.mutable_event_time();
    t->set_seconds(r.OneIn(20)
                       ? static_cast<int64_t>(r.rng()())
                       : kSeconds - static_cast<int64_t>(r.Below(3600)));
    t->set_nanos(r.OneIn(20) ? static_cast<int32_t>(r.rng()())
                             : static_cast<int32_t>(r.Below(1000000000)));
  }
  e.set_type(static_cast<v1::EventType>(
      r.OneIn(20) ? static_cast<int32_t>(r.rng()()) : r.Below(5)));
  if (r.OneIn(3)) e.set_session_number(static_cast<uint32_t>(r.Below(5)));
  if (e.type() == v1::CONVERSION || r.OneIn(10)) {
    auto* c = e.mutable_conversion();
    if (!r.OneIn(10)) c->set_goal(r.OneIn(2) ? "purchase" : "signup");
    if (r.OneIn(2)) {
      c->set_value_micros(static_cast<int64_t>(r.rng()()) >> r.Below(64));
    }
    if (r.OneIn(2)) c->set_currency(r.OneIn(2) ? "EUR" : "usd");
    if (r.OneIn(2)) c->set_order_id(r.Text());
  }
  return e;
}

std::string RandomUnknownField(Random& r) {
  const uint32_t field = 22 + static_cast<uint32_t>(r.Below(200));
  switch (r.Below(5)) {
    case 0:
      return Int(field, r.rng()());
    case 1:
      return absl::StrCat(Key(field, 1), std::string(8, 'f'));
    case 2:
      return Len(field, r.Text());
    case 3:
      return absl::StrCat(Key(field, 3), Int(1, 2), Key(field, 4));
    default:
      return absl::StrCat(Key(field, 5), std::string(4, 'g'));
  }
}

// Random events as libprotobuf writes them, sometimes two concatenated (a
// merge) or with unknown fields, then mutated byte by byte.
TEST_F(ProtobufDifferentialTest, RandomAndMutatedRecords) {
  const char* cases_env = std::getenv("KPISTREAM_DIFF_CASES");
  const char* seed_env = std::getenv("KPISTREAM_DIFF_SEED");
  const int cases = cases_env ? std::atoi(cases_env) : 20000;
  const uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : 7;
  Random r(seed);
  Counts whole, mutated;
  for (int i = 0; i < cases; ++i) {
    std::string bytes = RandomEvent(r).SerializeAsString();
    if (r.OneIn(4)) bytes += RandomEvent(r).SerializeAsString();
    while (r.OneIn(3)) {
      bytes = r.OneIn(2) ? bytes + RandomUnknownField(r)
                         : RandomUnknownField(r) + bytes;
    }
    ExpectSame(bytes, &whole);
    const int mutations = 1 + static_cast<int>(r.Below(3));
    for (int m = 0; m < mutations && !bytes.empty(); ++m) {
      const size_t at = r.Below(bytes.size());
      switch (r.Below(5)) {
        case 0:
          bytes[at] = static_cast<char>(r.Below(256));
          break;
        case 1:
          bytes[at] = static_cast<char>(bytes[at] ^ (1 << r.Below(8)));
          break;
        case 2:
          bytes.insert(at, 1, static_cast<char>(r.Below(256)));
          break;
        case 3:
          bytes.erase(at, 1);
          break;
        default:
          bytes.resize(at);
          break;
      }
    }
    ExpectSame(bytes, &mutated);
    if (HasFailure()) break;  // one input to look at, not thousands
  }
  std::cout << "whole records: " << whole.accepted << " accepted, "
            << whole.rejected_otherwise << " rejected by validation, "
            << whole.malformed << " malformed\nmutated: " << mutated.accepted
            << " accepted, " << mutated.rejected_otherwise
            << " rejected by validation, " << mutated.malformed
            << " malformed\n";
  // The comparison covered every outcome.
  EXPECT_GT(whole.accepted, cases / 4);
  EXPECT_GT(whole.rejected_otherwise, cases / 50);
  EXPECT_GT(mutated.accepted, cases / 20);
  EXPECT_GT(mutated.malformed, cases / 20);
}

}  // namespace
}  // namespace kpistream
