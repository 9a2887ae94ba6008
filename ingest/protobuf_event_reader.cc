#include "ingest/protobuf_event_reader.h"

#include <cstddef>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "aggregate/utf8.h"

namespace kpistream {
namespace {

constexpr int kRecursionLimit = 100;  // libprotobuf's default

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

constexpr uint32_t Tag(uint32_t field, WireType wire) {
  return (field << 3) | wire;
}

// The last occurrence of each string field of WebEvent and Conversion that
// Event keeps (views of the record).
struct Strings {
  absl::string_view event_id, site_id, visitor_id, user_id, page_url, referrer,
      utm_source, utm_medium, utm_campaign, click_id, device_category, country,
      user_agent, goal, currency, order_id, session_id;
};

class Reader {
 public:
  Reader(absl::string_view bytes, WebEventHeader* header, std::string* detail)
      : begin_(bytes.data()), header_(header), detail_(detail) {}

  bool Event(const char* p, const char* end);

  const Strings& strings() const { return s_; }
  uint32_t session_number() const { return session_number_; }
  int64_t value_micros() const { return value_micros_; }

 private:
  bool Timestamp(const char* p, const char* end, int depth);
  bool Conversion(const char* p, const char* end, int depth);

  bool Fail(const char* at, absl::string_view why) {
    *detail_ = absl::StrCat(why, " at byte ", at - begin_);
    return false;
  }

  // A varint of at most kMaxBytes bytes, its value modulo 2^bits of T:
  // libprotobuf reads tags so (5 bytes, 32 bits) and varint fields (10
  // bytes, 64 bits; 32-bit fields keep the low bits).
  template <typename T, int kMaxBytes>
  ABSL_ATTRIBUTE_NOINLINE bool ReadVarintOf(const char*& p, const char* end,
                                            T* value, absl::string_view what) {
    T result = 0;
    for (int i = 0; i < kMaxBytes; ++i) {
      if (p == end) return Fail(p, absl::StrCat(what, " runs past the end"));
      const T byte = static_cast<unsigned char>(*p++);
      result |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        *value = result;
        return true;
      }
    }
    return Fail(p, absl::StrCat(what, " longer than ", kMaxBytes, " bytes"));
  }

  // Tags of fields 1 to 15 take one byte, of 16 to 2047 two (WebEvent's
  // 16 to 21: click_id to conversion): both read here, inline; the rest,
  // and every error, by ReadVarintOf from the tag's first byte again.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadTag(const char*& p, const char* end,
                                            uint32_t* tag) {
    if (ABSL_PREDICT_TRUE(p != end)) {
      const uint32_t b0 = static_cast<unsigned char>(p[0]);
      if (b0 < 0x80) {
        *tag = b0;
        ++p;
        return true;
      }
      if (end - p >= 2 && static_cast<unsigned char>(p[1]) < 0x80) {
        *tag = (b0 & 0x7f) |
               (static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 7);
        p += 2;
        return true;
      }
    }
    return ReadVarintOf<uint32_t, 5>(p, end, tag, "a tag");
  }

  // Most varint fields (type, session_number) take one byte.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadVarint(const char*& p, const char* end,
                                               uint64_t* value) {
    if (ABSL_PREDICT_TRUE(p != end) && static_cast<unsigned char>(*p) < 0x80) {
      *value = static_cast<unsigned char>(*p++);
      return true;
    }
    return ReadVarintOf<uint64_t, 10>(p, end, value, "a varint");
  }

  // A length: at most 5 bytes, below 2^31 (as libprotobuf's ReadSize), and
  // within what is left before `end`.
  // Lengths below 2^14 (one or two bytes) within what is left are read
  // here, inline: a user agent is often longer than 127 bytes. The rest,
  // and every error, by ReadLengthSlow from the length's first byte again.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadLength(const char*& p, const char* end,
                                               size_t* length) {
    if (ABSL_PREDICT_TRUE(p != end)) {
      const size_t left = static_cast<size_t>(end - p);
      const size_t b0 = static_cast<unsigned char>(p[0]);
      if (b0 < 0x80 && b0 < left) {
        ++p;
        *length = b0;
        return true;
      }
      if (b0 >= 0x80 && left >= 2) {
        const size_t b1 = static_cast<unsigned char>(p[1]);
        const size_t v = (b0 & 0x7f) | (b1 << 7);
        if (b1 < 0x80 && v <= left - 2) {
          p += 2;
          *length = v;
          return true;
        }
      }
    }
    return ReadLengthSlow(p, end, length);
  }

  ABSL_ATTRIBUTE_NOINLINE bool ReadLengthSlow(const char*& p, const char* end,
                                              size_t* length) {
    const char* at = p;
    uint32_t result = 0;
    int i = 0;
    for (;; ++i) {
      if (p == end) return Fail(p, "a length runs past the end");
      const uint32_t byte = static_cast<unsigned char>(*p++);
      if (i == 4) {
        if (byte >= 8) return Fail(at, "a length of 2^31 or more");
        result |= byte << 28;
        break;
      }
      result |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) break;
    }
    if (result > static_cast<size_t>(end - p)) {
      return Fail(at,
                  absl::StrCat("a length of ", result, " runs past the end"));
    }
    *length = result;
    return true;
  }

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadString(const char*& p, const char* end,
                                               uint32_t field,
                                               absl::string_view* out) {
    size_t length;
    if (!ReadLength(p, end, &length)) return false;
    const absl::string_view s(p, length);
    if (!IsValidUtf8(s)) {
      return Fail(p,
                  absl::StrCat("string field ", field, " is not valid UTF-8"));
    }
    *out = s;
    p += length;
    return true;
  }

  // Reads the fields of one message, from `p` up to `end`: `field(tag, q)`
  // reads the value of each, from `q` on (moving it past), and returns
  // whether it could.
  template <typename F>
  bool Fields(const char* p, const char* end, int depth, F field) {
    while (p != end) {
      tag_at_ = p;
      uint32_t tag;
      if (!ReadTag(p, end, &tag) || !field(tag, p)) return false;
    }
    return true;
  }

  // A field the message's reader does not know (read from after its tag).
  bool Unknown(uint32_t tag, const char*& p, const char* end, int depth) {
    const char* at = tag_at_;
    if (tag == 0) return Fail(at, "a tag 0");
    if ((tag & 7) == kEndGroup) {
      return Fail(at, "an end-group tag where no group is open");
    }
    return Skip(at, tag, p, end, depth);
  }

  // Skips an unknown field's value (`tag`: neither 0 nor an end group).
  bool Skip(const char* at, uint32_t tag, const char*& p, const char* end,
            int depth) {
    if ((tag >> 3) == 0) return Fail(at, "field number 0");
    switch (tag & 7) {
      case kVarint: {
        uint64_t ignored;
        return ReadVarint(p, end, &ignored);
      }
      case kFixed64:
        if (end - p < 8) return Fail(p, "a fixed64 runs past the end");
        p += 8;
        return true;
      case kLengthDelimited: {
        size_t length;
        if (!ReadLength(p, end, &length)) return false;
        p += length;
        return true;
      }
      case kStartGroup: {
        if (--depth < 0) {
          return Fail(
              at, absl::StrCat("groups nest deeper than ", kRecursionLimit));
        }
        for (;;) {
          const char* inner_at = p;
          if (p == end) return Fail(p, "a group is not closed");
          uint32_t inner;
          if (!ReadTag(p, end, &inner)) return false;
          if (inner == 0) return Fail(inner_at, "a tag 0");
          if ((inner & 7) == kEndGroup) {
            if (inner != tag + 1) {
              return Fail(inner_at, "an end-group tag of another group");
            }
            return true;
          }
          if (!Skip(inner_at, inner, p, end, depth)) return false;
        }
      }
      case kFixed32:
        if (end - p < 4) return Fail(p, "a fixed32 runs past the end");
        p += 4;
        return true;
      default:
        return Fail(at, absl::StrCat("wire type ", tag & 7));
    }
  }

  const char* begin_;
  const char* tag_at_ = nullptr;  // where the field being read starts
  WebEventHeader* header_;
  std::string* detail_;
  Strings s_;
  uint32_t session_number_ = 0;
  int64_t value_micros_ = 0;
};

bool Reader::Event(const char* p, const char* end) {
  const int depth = kRecursionLimit;
  return Fields(p, end, depth, [&](uint32_t tag, const char*& q) {
    uint64_t v = 0;
    size_t length = 0;
    switch (tag) {
#define KPISTREAM_STRING_CASE(number, name) \
  case Tag(number, kLengthDelimited):       \
    return ReadString(q, end, number, &s_.name);
      KPISTREAM_STRING_CASE(1, event_id)
      KPISTREAM_STRING_CASE(3, site_id)
      KPISTREAM_STRING_CASE(4, visitor_id)
      KPISTREAM_STRING_CASE(5, user_id)
      KPISTREAM_STRING_CASE(6, session_id)
      KPISTREAM_STRING_CASE(8, page_url)
      KPISTREAM_STRING_CASE(10, referrer)
      KPISTREAM_STRING_CASE(11, utm_source)
      KPISTREAM_STRING_CASE(12, utm_medium)
      KPISTREAM_STRING_CASE(13, utm_campaign)
      KPISTREAM_STRING_CASE(16, click_id)
      KPISTREAM_STRING_CASE(17, device_category)
      KPISTREAM_STRING_CASE(18, country)
      KPISTREAM_STRING_CASE(19, user_agent)
#undef KPISTREAM_STRING_CASE
      case Tag(9, kLengthDelimited):     // page_title
      case Tag(14, kLengthDelimited):    // utm_term
      case Tag(15, kLengthDelimited): {  // utm_content
        absl::string_view ignored;
        return ReadString(q, end, tag >> 3, &ignored);
      }
      case Tag(2, kLengthDelimited):  // event_time
        if (!ReadLength(q, end, &length)) return false;
        header_->has_event_time = true;
        q += length;
        return Timestamp(q - length, q, depth - 1);
      case Tag(7, kVarint):  // type: an open enum, int32
        if (!ReadVarint(q, end, &v)) return false;
        header_->type = static_cast<int32_t>(static_cast<uint32_t>(v));
        return true;
      case Tag(20, kVarint):  // session_number: uint32
        if (!ReadVarint(q, end, &v)) return false;
        session_number_ = static_cast<uint32_t>(v);
        return true;
      case Tag(21, kLengthDelimited):  // conversion
        if (!ReadLength(q, end, &length)) return false;
        q += length;
        return Conversion(q - length, q, depth - 1);
      default:
        return Unknown(tag, q, end, depth);
    }
  });
}

bool Reader::Timestamp(const char* p, const char* end, int depth) {
  return Fields(p, end, depth, [&](uint32_t tag, const char*& q) {
    uint64_t v = 0;
    switch (tag) {
      case Tag(1, kVarint):  // seconds: int64
        if (!ReadVarint(q, end, &v)) return false;
        header_->event_time_seconds = static_cast<int64_t>(v);
        return true;
      case Tag(2, kVarint):  // nanos: int32
        if (!ReadVarint(q, end, &v)) return false;
        header_->event_time_nanos =
            static_cast<int32_t>(static_cast<uint32_t>(v));
        return true;
      default:
        return Unknown(tag, q, end, depth);
    }
  });
}

bool Reader::Conversion(const char* p, const char* end, int depth) {
  return Fields(p, end, depth, [&](uint32_t tag, const char*& q) {
    uint64_t v = 0;
    switch (tag) {
      case Tag(1, kLengthDelimited):
        return ReadString(q, end, 1, &s_.goal);
      case Tag(2, kVarint):  // value_micros: int64
        if (!ReadVarint(q, end, &v)) return false;
        value_micros_ = static_cast<int64_t>(v);
        return true;
      case Tag(3, kLengthDelimited):
        return ReadString(q, end, 3, &s_.currency);
      case Tag(4, kLengthDelimited):
        return ReadString(q, end, 4, &s_.order_id);
      default:
        return Unknown(tag, q, end, depth);
    }
  });
}

}  // namespace

bool ReadProtobufEvent(absl::string_view bytes, EventView* event,
                       WebEventHeader* header, std::string* detail) {
  header->has_event_time = false;
  header->event_time_seconds = 0;
  header->event_time_nanos = 0;
  header->type = 0;
  header->unknown_type_name = false;
  Reader reader(bytes, header, detail);
  if (!reader.Event(bytes.data(), bytes.data() + bytes.size())) return false;
  // Views of `bytes`: nothing is copied. Without a conversion its fields
  // stay empty and 0, as DecodeMessage leaves them.
  const Strings& s = reader.strings();
#define KPISTREAM_VIEW_STRING(f) event->f = s.f;
  KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_VIEW_STRING)
#undef KPISTREAM_VIEW_STRING
  event->user_agent = s.user_agent;
  event->session_number = reader.session_number();
  event->value_micros = reader.value_micros();
  return true;
}

}  // namespace kpistream
