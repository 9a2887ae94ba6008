#include "ingest/json_event_reader.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kpistream/v1/web_event.pb.h"
#include "simdjson.h"

// Where a rule below says "protobuf", it is libprotobuf 3.21's JSON parser:
// util/internal/json_stream_parser.cc (syntax, numbers, escapes, depth),
// protostream_objectwriter.cc and proto_writer.cc (names, null, objects on
// scalar fields), datapiece.cc (number and enum conversions),
// stubs/strutil.cc (safe_strto*) and stubs/time.cc (ParseTime).

namespace kpistream {
namespace {

namespace ondemand = simdjson::ondemand;
using std::string_view;

// JsonStreamParser's kDefaultMaxRecursionDepth: objects (the top level one
// included) nest at most this deep; arrays do not count.
constexpr int kMaxObjectDepth = 100;

// How deep the reader goes into objects and arrays together: it bounds its
// recursion (Skip). It does not reject deeper documents (arrays in arrays
// are fine to protobuf) but hands them to libprotobuf, which keeps its own
// stack. (simdjson 3.0.1's On-Demand API does not enforce a depth limit.)
constexpr int kMaxNesting = 128;

enum class Outcome { kOk, kMalformed, kNotStrict };

#define KPI_RETURN_IF_NOT_OK(expr)                 \
  do {                                             \
    const Outcome outcome_ = (expr);               \
    if (outcome_ != Outcome::kOk) return outcome_; \
  } while (false)

// The fields of WebEvent, Conversion and google.protobuf.Timestamp.
enum class Field : uint8_t {
  kUnknown,
  kEventId,
  kEventTime,
  kSiteId,
  kVisitorId,
  kUserId,
  kSessionId,
  kType,
  kPageUrl,
  kPageTitle,
  kReferrer,
  kUtmSource,
  kUtmMedium,
  kUtmCampaign,
  kUtmTerm,
  kUtmContent,
  kClickId,
  kDeviceCategory,
  kCountry,
  kUserAgent,
  kSessionNumber,
  kConversion,
  kGoal,
  kValueMicros,
  kCurrency,
  kOrderId,
  kSeconds,
  kNanos,
};

// A field's names: protobuf's JSON name (lowerCamelCase) and its .proto
// name; both are read.
struct FieldName {
  string_view json;
  string_view proto;
  Field field;
};

constexpr FieldName kWebEventFields[] = {
    {"eventId", "event_id", Field::kEventId},
    {"eventTime", "event_time", Field::kEventTime},
    {"siteId", "site_id", Field::kSiteId},
    {"visitorId", "visitor_id", Field::kVisitorId},
    {"userId", "user_id", Field::kUserId},
    {"sessionId", "session_id", Field::kSessionId},
    {"type", "type", Field::kType},
    {"pageUrl", "page_url", Field::kPageUrl},
    {"pageTitle", "page_title", Field::kPageTitle},
    {"referrer", "referrer", Field::kReferrer},
    {"utmSource", "utm_source", Field::kUtmSource},
    {"utmMedium", "utm_medium", Field::kUtmMedium},
    {"utmCampaign", "utm_campaign", Field::kUtmCampaign},
    {"utmTerm", "utm_term", Field::kUtmTerm},
    {"utmContent", "utm_content", Field::kUtmContent},
    {"clickId", "click_id", Field::kClickId},
    {"deviceCategory", "device_category", Field::kDeviceCategory},
    {"country", "country", Field::kCountry},
    {"userAgent", "user_agent", Field::kUserAgent},
    {"sessionNumber", "session_number", Field::kSessionNumber},
    {"conversion", "conversion", Field::kConversion},
};

constexpr FieldName kConversionFields[] = {
    {"goal", "goal", Field::kGoal},
    {"valueMicros", "value_micros", Field::kValueMicros},
    {"currency", "currency", Field::kCurrency},
    {"orderId", "order_id", Field::kOrderId},
};

constexpr FieldName kTimestampFields[] = {
    {"seconds", "seconds", Field::kSeconds},
    {"nanos", "nanos", Field::kNanos},
};

// A message's fields by name, as protobuf's TypeInfo::FindField finds them
// (exact, case-sensitive). This runs for every key of every event: a key of
// 4 to 16 bytes is read as two words that cover it (overlapping where it is
// shorter than 16 or 8), and compared with the names of its length read the
// same way; nothing past the key is read, and no memcmp called.
constexpr size_t kMinFieldName = 4;   // "type", "goal"
constexpr size_t kMaxFieldName = 16;  // "device_category" is 15

// Whether every name of `fields` has a size FieldIndex compares.
template <size_t N>
constexpr bool NamesFit(const FieldName (&fields)[N]) {
  for (const FieldName& f : fields) {
    for (string_view name : {f.json, f.proto}) {
      if (name.size() < kMinFieldName || name.size() > kMaxFieldName) {
        return false;
      }
    }
  }
  return true;
}

class FieldIndex {
 public:
  template <size_t N>
  explicit FieldIndex(const FieldName (&fields)[N]) {
    for (const FieldName& f : fields) {
      for (string_view name : {f.json, f.proto}) {
        auto& names = by_size_[name.size()];
        const Words words = WordsOf(name);
        if (std::none_of(names.begin(), names.end(),
                         [&](const Entry& e) { return e.words == words; })) {
          names.push_back({words, f.field});
        }
      }
    }
  }

  Field Find(string_view key) const {
    if (key.size() < kMinSize || key.size() > kMaxSize) return Field::kUnknown;
    const Words words = WordsOf(key);
    for (const Entry& e : by_size_[key.size()]) {
      if (e.words == words) return e.field;
    }
    return Field::kUnknown;
  }

 private:
  static constexpr size_t kMinSize = kMinFieldName;
  static constexpr size_t kMaxSize = kMaxFieldName;
  using Words = std::pair<uint64_t, uint64_t>;
  struct Entry {
    Words words;
    Field field;
  };

  template <typename Word>
  static uint64_t Load(const char* p) {
    Word w;
    std::memcpy(&w, p, sizeof(w));
    return w;
  }

  // The first and the last bytes of `s` (4 <= size <= 16) as two words:
  // together they cover every byte, so equal words of equal sizes are equal
  // strings.
  static Words WordsOf(string_view s) {
    const char* p = s.data();
    const size_t n = s.size();
    if (n >= 8) return {Load<uint64_t>(p), Load<uint64_t>(p + n - 8)};
    return {Load<uint32_t>(p), Load<uint32_t>(p + n - 4)};
  }

  std::array<std::vector<Entry>, kMaxSize + 1> by_size_;
};

static_assert(NamesFit(kWebEventFields) && NamesFit(kConversionFields) &&
                  NamesFit(kTimestampFields),
              "a field name is shorter than 4 or longer than 16 bytes: widen "
              "FieldIndex::WordsOf");

// The json differential test checks every field of the descriptors
// against these.
Field LookupWebEventField(string_view key) {
  static const FieldIndex* const index = new FieldIndex(kWebEventFields);
  return index->Find(key);
}

Field LookupConversionField(string_view key) {
  static const FieldIndex* const index = new FieldIndex(kConversionFields);
  return index->Find(key);
}

Field LookupTimestampField(string_view key) {
  static const FieldIndex* const index = new FieldIndex(kTimestampFields);
  return index->Find(key);
}

// The EventType names, from the descriptor (so that a new value is known).
const std::vector<std::pair<std::string, int>>& EventTypeNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::pair<std::string, int>>();
    const google::protobuf::EnumDescriptor* d = v1::EventType_descriptor();
    for (int i = 0; i < d->value_count(); ++i) {
      v->emplace_back(d->value(i)->name(), d->value(i)->number());
    }
    return v;
  }();
  return *names;
}

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// simdjson's raw token of a scalar runs to the next structural character,
// trailing whitespace included.
string_view TrimToken(string_view token) {
  while (!token.empty() && IsJsonSpace(token.back())) token.remove_suffix(1);
  return token;
}

// RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsStrictNumber(string_view t) {
  size_t i = 0;
  const size_t n = t.size();
  if (i < n && t[i] == '-') ++i;
  if (i >= n) return false;
  if (t[i] == '0') {
    ++i;
  } else if (t[i] >= '1' && t[i] <= '9') {
    while (i < n && IsDigit(t[i])) ++i;
  } else {
    return false;
  }
  if (i < n && t[i] == '.') {
    const size_t start = ++i;
    while (i < n && IsDigit(t[i])) ++i;
    if (i == start) return false;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    const size_t start = i;
    while (i < n && IsDigit(t[i])) ++i;
    if (i == start) return false;
  }
  return i == n;
}

// A JSON number as protobuf's JsonStreamParser types it: integers that fit
// uint64 (non-negative) or int64 (negative) stay integers, everything else
// is a double.
struct JsonNumber {
  enum Kind { kUint, kInt, kDouble } kind = kUint;
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
};

// Decimal digits (at least one) into *value; false on overflow or any other
// character.
template <typename T>
bool ParseDigits(string_view digits, bool negative, T* value) {
  static_assert(std::is_integral<T>::value, "integers only");
  if (digits.empty()) return false;
  T v = 0;
  if (!negative) {
    constexpr T kMax = std::numeric_limits<T>::max();
    for (char c : digits) {
      if (!IsDigit(c)) return false;
      const int digit = c - '0';
      if (v > kMax / 10) return false;
      v *= 10;
      if (v > kMax - digit) return false;
      v += digit;
    }
  } else {
    constexpr T kMin = std::numeric_limits<T>::min();
    for (char c : digits) {
      if (!IsDigit(c)) return false;
      const int digit = c - '0';
      if (v < kMin / 10) return false;
      v *= 10;
      if (v < kMin + digit) return false;
      v -= digit;
    }
  }
  *value = v;
  return true;
}

// strtod, as protobuf's safe_strtod calls it (the engine runs in the "C"
// locale).
double ToDouble(string_view token) {
  char buffer[64];
  if (token.size() < sizeof(buffer)) {
    std::memcpy(buffer, token.data(), token.size());
    buffer[token.size()] = '\0';
    return std::strtod(buffer, nullptr);
  }
  return std::strtod(std::string(token).c_str(), nullptr);
}

// `token` is a strict JSON number. False when protobuf rejects it: a double
// beyond the range of double.
bool ParseNumber(string_view token, JsonNumber* n) {
  const bool floating = token.find_first_of(".eE") != string_view::npos;
  if (!floating) {
    if (token[0] != '-') {
      if (ParseDigits(token, false, &n->u)) {
        n->kind = JsonNumber::kUint;
        return true;
      }
    } else if (ParseDigits(token.substr(1), true, &n->i)) {
      n->kind = JsonNumber::kInt;
      return true;
    }
  }
  n->kind = JsonNumber::kDouble;
  n->d = ToDouble(token);
  return std::isfinite(n->d);
}

// Why NumberTo refused `n`: a fraction (an amount in currency units where
// micros are due, say) is not out of range.
const char* NotAnInteger(const JsonNumber& n) {
  return n.kind == JsonNumber::kDouble && n.d != std::trunc(n.d)
             ? "not an integer"
             : "integer out of range";
}

// DataPiece::ToInt32/ToUint32/ToInt64 of a number: integers in range, and
// doubles that are integral and in range (-0.0 is 0).
template <typename T>
bool NumberTo(const JsonNumber& n, T* out) {
  constexpr T kMin = std::numeric_limits<T>::min();
  constexpr T kMax = std::numeric_limits<T>::max();
  switch (n.kind) {
    case JsonNumber::kUint:
      if (n.u > static_cast<uint64_t>(kMax)) return false;
      *out = static_cast<T>(n.u);
      return true;
    case JsonNumber::kInt:
      if (n.i < 0 &&
          (std::is_unsigned<T>::value || n.i < static_cast<int64_t>(kMin))) {
        return false;
      }
      if (n.i > 0 && static_cast<uint64_t>(n.i) > static_cast<uint64_t>(kMax)) {
        return false;
      }
      *out = static_cast<T>(n.i);
      return true;
    case JsonNumber::kDouble: {
      // [kMin, kMax + 1): exact bounds, as powers of two.
      const double lo = static_cast<double>(kMin);
      const double hi = static_cast<double>(kMax / 2 + 1) * 2.0;
      if (!(n.d >= lo && n.d < hi) || n.d != std::trunc(n.d)) return false;
      *out = static_cast<T>(n.d);
      return true;
    }
  }
  return false;
}

// DataPiece::StringToNumber with safe_strto32/safe_strtou32/safe_strto64: an
// optional sign ('-' not for unsigned), then decimal digits only; no spaces.
template <typename T>
bool DecimalTo(string_view s, T* out) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    s.remove_prefix(1);
    if (s.empty()) return false;
  }
  if (negative && std::is_unsigned<T>::value) return false;
  return ParseDigits(s, negative, out);
}

// Days from 1970-01-01 to a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool IsLeapYear(int y) { return y % 400 == 0 || (y % 4 == 0 && y % 100 != 0); }

// protobuf's internal::ParseTime, which reads a C string: fields of up to
// N digits (fewer are fine), `T` and `Z` in upper case, seconds required,
// any number of fractional digits of which the first nine count, offsets
// "+hh:mm" / "-hh:mm" (the result may leave the Timestamp range: the caller
// checks that), and the text ends at its first NUL.
bool ParseProtobufTime(string_view s, int64_t* seconds, int32_t* nanos) {
  size_t i = 0;
  auto at = [&](size_t k) { return k < s.size() ? s[k] : '\0'; };
  auto parse_int = [&](int width, int min, int max, int* out) {
    if (!IsDigit(at(i))) return false;
    int v = 0;
    for (int k = 0; k < width && IsDigit(at(i)); ++k, ++i) {
      v = v * 10 + (at(i) - '0');
    }
    if (v < min || v > max) return false;
    *out = v;
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!parse_int(4, 1, 9999, &year) || at(i++) != '-' ||
      !parse_int(2, 1, 12, &month) || at(i++) != '-' ||
      !parse_int(2, 1, 31, &day) || at(i++) != 'T' ||
      !parse_int(2, 0, 23, &hour) || at(i++) != ':' ||
      !parse_int(2, 0, 59, &minute) || at(i++) != ':' ||
      !parse_int(2, 0, 59, &second)) {
    return false;
  }
  static constexpr int kDaysInMonth[13] = {0,  31, 28, 31, 30, 31, 30,
                                           31, 31, 30, 31, 30, 31};
  if (day > kDaysInMonth[month] + (month == 2 && IsLeapYear(year) ? 1 : 0)) {
    return false;
  }
  int64_t secs = DaysFromCivil(year, month, day) * 86400 + hour * 3600 +
                 minute * 60 + second;
  int32_t ns = 0;
  if (at(i) == '.') {
    ++i;
    if (!IsDigit(at(i))) return false;
    int len = 0;
    for (; IsDigit(at(i)); ++i, ++len) {
      if (len < 9) ns = ns * 10 + (at(i) - '0');
    }
    for (; len < 9; ++len) ns *= 10;
  }
  const char zone = at(i++);
  if (zone == '+' || zone == '-') {
    int offset_hours, offset_minutes;
    if (!parse_int(2, 0, 23, &offset_hours) || at(i++) != ':' ||
        !parse_int(2, 0, 59, &offset_minutes)) {
      return false;
    }
    const int64_t offset = (offset_hours * 60 + offset_minutes) * 60;
    secs += zone == '+' ? -offset : offset;
  } else if (zone != 'Z') {
    return false;
  }
  if (at(i) != '\0') return false;
  *seconds = secs;
  *nanos = ns;
  return true;
}

// One Read(): the reader's walk over one document.
class Walk {
 public:
  Walk(const char* end, EventView* event, WebEventHeader* header,
       std::string* detail)
      : end_(end), event_(event), header_(header), detail_(detail) {}

  Outcome Document(ondemand::document& doc) {
    ondemand::json_type type;
    if (doc.type().get(type)) return Outcome::kNotStrict;
    if (type != ondemand::json_type::object) {
      return Malformed("", "the top-level value is not an object");
    }
    ondemand::object object;
    if (doc.get_object().get(object)) return Outcome::kNotStrict;
    KPI_RETURN_IF_NOT_OK(
        ForEachField(object, [&](string_view key, ondemand::value value) {
          return WebEventValue(key, value);
        }));
    // Nothing but whitespace may follow. simdjson sees \v, \f or a second
    // value as more content; protobuf skips the former.
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
      return Outcome::kNotStrict;
    }
    return Outcome::kOk;
  }

 private:
  Outcome Malformed(string_view key, string_view what) {
    if (key.empty()) {
      detail_->assign(what.data(), what.size());
    } else {
      *detail_ = absl::StrCat(absl::string_view(key.data(), key.size()), ": ",
                              absl::string_view(what.data(), what.size()));
    }
    return Outcome::kMalformed;
  }

  // A key, unescaped.
  Outcome Key(ondemand::field& field, string_view* key) {
    const char* begin = field.key().raw();
    const char* p = begin;
    while (p < end_ && *p != '"' && *p != '\\') ++p;  // keys are short
    if (p == end_) return Outcome::kNotStrict;
    if (*p == '"') {
      *key = string_view(begin, static_cast<size_t>(p - begin));
      return Outcome::kOk;
    }
    if (field.unescaped_key().get(*key)) return Outcome::kNotStrict;
    return Outcome::kOk;
  }

  // Calls `each(name, value)` for the fields of `object` in order (names
  // unescaped) until one does not return kOk.
  template <typename Each>
  Outcome ForEachField(ondemand::object& object, Each&& each) {
    for (auto field_or : object) {
      ondemand::field field;
      if (std::move(field_or).get(field)) return Outcome::kNotStrict;
      string_view name;
      KPI_RETURN_IF_NOT_OK(Key(field, &name));
      KPI_RETURN_IF_NOT_OK(each(name, field.value()));
    }
    return Outcome::kOk;
  }

  // The same for an object `value`.
  template <typename Each>
  Outcome ForEachField(ondemand::value& value, Each&& each) {
    ondemand::object object;
    if (value.get_object().get(object)) return Outcome::kNotStrict;
    return ForEachField(object, each);
  }

  // Scalars are always consumed, not just peeked at: simdjson checks what
  // follows a value (a comma, a closing brace) only after a consumed one.

  // The content of a string value, unescaped. Without escapes it views the
  // input; with them, simdjson's string buffer.
  Outcome String(ondemand::value& value, string_view* out) {
    // The token runs from the opening quote to the next structural
    // character: the closing quote is its last before whitespace.
    const string_view token = TrimToken(value.raw_json_token());
    if (token.size() < 2 || token.back() != '"') return Outcome::kNotStrict;
    const string_view content = token.substr(1, token.size() - 2);
    if (std::memchr(content.data(), '\\', content.size()) == nullptr) {
      ondemand::raw_json_string raw;
      if (value.get_raw_json_string().get(raw)) return Outcome::kNotStrict;
      *out = content;
      return Outcome::kOk;
    }
    if (value.get_string().get(*out)) return Outcome::kNotStrict;
    return Outcome::kOk;
  }

  Outcome Number(ondemand::value& value, string_view key, JsonNumber* n) {
    const string_view token = TrimToken(value.raw_json_token());
    if (!IsStrictNumber(token)) return Outcome::kNotStrict;
    if (!ParseNumber(token, n)) {
      return Malformed(key, "number exceeds the range of double");
    }
    double ignored;
    if (value.get_double().get(ignored)) return Outcome::kNotStrict;
    return Outcome::kOk;
  }

  // true, false and null must be exactly that.
  Outcome Atom(ondemand::value& value, ondemand::json_type type) {
    const string_view token = TrimToken(value.raw_json_token());
    if (type == ondemand::json_type::null) {
      bool is_null = false;
      if (token != "null" || value.is_null().get(is_null) || !is_null) {
        return Outcome::kNotStrict;
      }
      return Outcome::kOk;
    }
    bool b;
    if ((token != "true" && token != "false") || value.get_bool().get(b)) {
      return Outcome::kNotStrict;
    }
    return Outcome::kOk;
  }

  // A value of the wrong JSON type for a known field: protobuf rejects it
  // (if the value is not even JSON, protobuf rejects that).
  Outcome WrongType(string_view key, ondemand::json_type type,
                    string_view expected) {
    const char* got = "";
    switch (type) {
      case ondemand::json_type::array:
        got = "an array";
        break;
      case ondemand::json_type::object:
        got = "an object";
        break;
      case ondemand::json_type::number:
        got = "a number";
        break;
      case ondemand::json_type::string:
        got = "a string";
        break;
      case ondemand::json_type::boolean:
        got = "a boolean";
        break;
      case ondemand::json_type::null:
        got = "null";
        break;
    }
    return Malformed(
        key, absl::StrCat("expected ",
                          absl::string_view(expected.data(), expected.size()),
                          ", got ", got));
  }

  // A string field; `out` null for fields Event does not keep. null leaves
  // the field as it was.
  // `*out` views the input (or the reader's copy of it) or simdjson's string
  // buffer: valid while the input is and until the reader's next Read().
  Outcome StringField(string_view key, ondemand::value value,
                      absl::string_view* out) {
    ondemand::json_type type;
    if (value.type().get(type)) return Outcome::kNotStrict;
    if (type == ondemand::json_type::string) {
      string_view s;
      KPI_RETURN_IF_NOT_OK(String(value, &s));
      if (out != nullptr) *out = absl::string_view(s.data(), s.size());
      return Outcome::kOk;
    }
    if (type == ondemand::json_type::null)
      return Atom(value, ondemand::json_type::null);
    return WrongType(key, type, "a string");
  }

  // int32, uint32 and int64 fields: a number or a string of digits.
  template <typename T>
  Outcome IntegerField(string_view key, ondemand::value value, T* out) {
    ondemand::json_type type;
    if (value.type().get(type)) return Outcome::kNotStrict;
    switch (type) {
      case ondemand::json_type::number: {
        JsonNumber n;
        KPI_RETURN_IF_NOT_OK(Number(value, key, &n));
        if (!NumberTo(n, out)) return Malformed(key, NotAnInteger(n));
        return Outcome::kOk;
      }
      case ondemand::json_type::string: {
        string_view s;
        KPI_RETURN_IF_NOT_OK(String(value, &s));
        if (!DecimalTo(s, out)) {
          // Digits that do not fit are out of range, as a number would be.
          const string_view digits =
              !s.empty() && (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
          const bool all_digits =
              !digits.empty() &&
              digits.find_first_not_of("0123456789") == string_view::npos;
          return Malformed(
              key, all_digits ? "integer out of range" : "not an integer");
        }
        return Outcome::kOk;
      }
      case ondemand::json_type::null:
        return Atom(value, ondemand::json_type::null);
      default:
        return WrongType(key, type, "an integer");
    }
  }

  Outcome KnownType(int32_t number) {
    header_->type = number;
    header_->unknown_type_name = false;
    return Outcome::kOk;
  }

  // EventType: a name, a number (any int32: proto3 enums are open), or a
  // known number in a string. Protobuf drops any other string.
  Outcome TypeField(string_view key, ondemand::value value) {
    ondemand::json_type type;
    if (value.type().get(type)) return Outcome::kNotStrict;
    switch (type) {
      case ondemand::json_type::number: {
        JsonNumber n;
        int32_t number;
        KPI_RETURN_IF_NOT_OK(Number(value, key, &n));
        if (!NumberTo(n, &number)) return Malformed(key, NotAnInteger(n));
        return KnownType(number);
      }
      case ondemand::json_type::string: {
        string_view s;
        KPI_RETURN_IF_NOT_OK(String(value, &s));
        for (const auto& [name, number] : EventTypeNames()) {
          if (s == name) return KnownType(number);
        }
        int32_t number;
        if (DecimalTo(s, &number) && v1::EventType_IsValid(number)) {
          return KnownType(number);
        }
        header_->unknown_type_name = true;
        header_->type_name.assign(s.data(), s.size());
        return Outcome::kOk;
      }
      case ondemand::json_type::null:
        return Atom(value, ondemand::json_type::null);
      default:
        return WrongType(key, type, "an EventType");
    }
  }

  // A google.protobuf.Timestamp: an RFC 3339 string, or an object of
  // `seconds` and `nanos` (protobuf reads it as a plain message).
  Outcome TimestampField(string_view key, ondemand::value value) {
    ondemand::json_type type;
    if (value.type().get(type)) return Outcome::kNotStrict;
    switch (type) {
      case ondemand::json_type::string: {
        string_view s;
        KPI_RETURN_IF_NOT_OK(String(value, &s));
        if (!ParseProtobufTime(s, &header_->event_time_seconds,
                               &header_->event_time_nanos)) {
          return Malformed(key, "invalid time format");
        }
        header_->has_event_time = true;
        return Outcome::kOk;
      }
      case ondemand::json_type::object: {
        header_->has_event_time = true;
        return ForEachField(value, [&](string_view name,
                                       ondemand::value field) {
          switch (LookupTimestampField(name)) {
            case Field::kSeconds:
              return IntegerField(name, field, &header_->event_time_seconds);
            case Field::kNanos:
              return IntegerField(name, field, &header_->event_time_nanos);
            default:
              return UnknownField(name, field, 2);
          }
        });
      }
      case ondemand::json_type::null:
        return Atom(value, ondemand::json_type::null);
      default:
        return WrongType(key, type, "an RFC 3339 string");
    }
  }

  Outcome ConversionField(string_view key, ondemand::value value) {
    ondemand::json_type type;
    if (value.type().get(type)) return Outcome::kNotStrict;
    if (type == ondemand::json_type::null)
      return Atom(value, ondemand::json_type::null);
    if (type != ondemand::json_type::object) {
      return WrongType(key, type, "an object");
    }
    return ForEachField(value, [&](string_view name, ondemand::value field) {
      switch (LookupConversionField(name)) {
        case Field::kGoal:
          return StringField(name, field, &event_->goal);
        case Field::kValueMicros:
          return IntegerField(name, field, &event_->value_micros);
        case Field::kCurrency:
          return StringField(name, field, &event_->currency);
        case Field::kOrderId:
          return StringField(name, field, &event_->order_id);
        default:
          return UnknownField(name, field, 2);
      }
    });
  }

  Outcome WebEventValue(string_view key, ondemand::value value) {
    EventView& e = *event_;
    switch (LookupWebEventField(key)) {
      case Field::kEventId:
        return StringField(key, value, &e.event_id);
      case Field::kEventTime:
        return TimestampField(key, value);
      case Field::kSiteId:
        return StringField(key, value, &e.site_id);
      case Field::kVisitorId:
        return StringField(key, value, &e.visitor_id);
      case Field::kUserId:
        return StringField(key, value, &e.user_id);
      case Field::kSessionId:
        return StringField(key, value, &e.session_id);
      case Field::kPageTitle:
      case Field::kUtmTerm:
      case Field::kUtmContent:
        return StringField(key, value, nullptr);  // not kept in Event
      case Field::kType:
        return TypeField(key, value);
      case Field::kPageUrl:
        return StringField(key, value, &e.page_url);
      case Field::kReferrer:
        return StringField(key, value, &e.referrer);
      case Field::kUtmSource:
        return StringField(key, value, &e.utm_source);
      case Field::kUtmMedium:
        return StringField(key, value, &e.utm_medium);
      case Field::kUtmCampaign:
        return StringField(key, value, &e.utm_campaign);
      case Field::kClickId:
        return StringField(key, value, &e.click_id);
      case Field::kDeviceCategory:
        return StringField(key, value, &e.device_category);
      case Field::kCountry:
        return StringField(key, value, &e.country);
      case Field::kUserAgent:
        return StringField(key, value, &e.user_agent);
      case Field::kSessionNumber:
        return IntegerField(key, value, &e.session_number);
      case Field::kConversion:
        return ConversionField(key, value);
      default:
        return UnknownField(key, value, 1);
    }
  }

  // A field the message does not have, in an object at `depth` (1: the top
  // level): ignored, but it must be JSON that protobuf parses. Protobuf
  // rejects an empty name in a message (not inside an ignored value).
  Outcome UnknownField(string_view key, ondemand::value value, int depth) {
    if (key.empty()) return Malformed("\"\"", "a field must have a name");
    return Skip(value, depth, depth);
  }

  // Checks a value protobuf would parse and ignore, in an object at `depth`
  // (objects only) and `nesting` (objects and arrays).
  Outcome Skip(ondemand::value value, int depth, int nesting) {
    ondemand::json_type type;
    if (value.type().get(type)) return Outcome::kNotStrict;
    switch (type) {
      case ondemand::json_type::object: {
        if (depth + 1 > kMaxObjectDepth) {
          return Malformed("", "objects nest deeper than 100");
        }
        if (nesting + 1 > kMaxNesting) return Outcome::kNotStrict;
        return ForEachField(value, [&](string_view, ondemand::value field) {
          return Skip(field, depth + 1, nesting + 1);
        });
      }
      case ondemand::json_type::array: {
        if (nesting + 1 > kMaxNesting) return Outcome::kNotStrict;
        ondemand::array array;
        if (value.get_array().get(array)) return Outcome::kNotStrict;
        for (auto element_or : array) {
          ondemand::value element;
          if (std::move(element_or).get(element)) return Outcome::kNotStrict;
          KPI_RETURN_IF_NOT_OK(Skip(element, depth, nesting + 1));
        }
        return Outcome::kOk;
      }
      case ondemand::json_type::string: {
        string_view s;
        return String(value, &s);
      }
      case ondemand::json_type::number: {
        JsonNumber n;
        return Number(value, "", &n);
      }
      case ondemand::json_type::boolean:
      case ondemand::json_type::null:
        return Atom(value, type);
    }
    return Outcome::kNotStrict;
  }

  const char* const end_;  // end of the input: scans stop here
  EventView* const event_;
  WebEventHeader* const header_;
  std::string* const detail_;
};

void Reset(EventView* e, WebEventHeader* h) {
  *e = EventView();
  h->has_event_time = false;
  h->event_time_seconds = 0;
  h->event_time_nanos = 0;
  h->type = 0;
  h->unknown_type_name = false;
  h->type_name.clear();
}

#undef KPI_RETURN_IF_NOT_OK

// simdjson reads up to SIMDJSON_PADDING bytes past the end of its input;
// what they hold does not change the result (simdjson's authors say so:
// they are read "by design"). A Kafka message promises no bytes past its
// end, but those in the page of its last byte can be read: a page is mapped
// whole. Then the reader reads the input where it is (about 98 % of inputs:
// all but those ending in the last SIMDJSON_PADDING bytes of a page), else
// it copies it. Not under a sanitizer, which would report the read, nor
// where memory is tagged per allocation (HWASan; Arm's memory tagging, which
// glibc enables only when asked: a build for it must define
// KPI_JSON_COPY_ALWAYS).
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || \
    __has_feature(hwaddress_sanitizer)
#define KPI_JSON_COPY_ALWAYS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define KPI_JSON_COPY_ALWAYS 1
#endif

bool PaddingReadable(absl::string_view json) {
  if (!JsonEventReader::ReadsInPlace()) return false;
  // The smallest page size of any Linux platform.
  constexpr uintptr_t kPage = 4096;
  if (json.empty()) return false;
  const uintptr_t last =
      reinterpret_cast<uintptr_t>(json.data()) + json.size() - 1;
  return last / kPage == (last + simdjson::SIMDJSON_PADDING) / kPage;
}

}  // namespace

struct JsonEventReader::Impl {
  ondemand::parser parser;
  // The input, copied when the bytes past its end may not be readable.
  std::unique_ptr<char[]> buffer;
  size_t capacity = 0;  // of buffer, padding included
};

JsonEventReader::JsonEventReader() : impl_(std::make_unique<Impl>()) {}

bool JsonEventReader::ReadsInPlace() {
#if defined(KPI_JSON_COPY_ALWAYS)
  return false;
#else
  return true;
#endif
}
JsonEventReader::~JsonEventReader() = default;

JsonEventReader::Status JsonEventReader::Read(absl::string_view json,
                                              EventView* event,
                                              WebEventHeader* header,
                                              std::string* detail) {
  Reset(event, header);
  Impl& impl = *impl_;
  const char* input = json.data();
  size_t capacity = json.size() + simdjson::SIMDJSON_PADDING;
  if (!PaddingReadable(json)) {
    if (impl.capacity < capacity) {
      impl.capacity = std::max(capacity, 2 * impl.capacity);
      impl.buffer = std::make_unique<char[]>(impl.capacity);
    }
    std::memcpy(impl.buffer.get(), json.data(), json.size());
    std::memset(impl.buffer.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    input = impl.buffer.get();
    capacity = impl.capacity;
  }

  ondemand::document doc;
  if (impl.parser
          .iterate(simdjson::padded_string_view(input, json.size(), capacity))
          .get(doc)) {
    return Status::kNotStrictJson;
  }
  Walk walk(input + json.size(), event, header, detail);
  switch (walk.Document(doc)) {
    case Outcome::kOk:
      return Status::kRead;
    case Outcome::kMalformed:
      return Status::kMalformed;
    case Outcome::kNotStrict:
      break;
  }
  return Status::kNotStrictJson;
}

}  // namespace kpistream
