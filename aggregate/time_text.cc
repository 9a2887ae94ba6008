#include "aggregate/time_text.h"

#include <cstdint>

#include "absl/time/civil_time.h"

namespace kpistream {
namespace {

// Writes `value` as `digits` decimal digits (zero-padded) at `p`.
char* Digits(int64_t value, int digits, char* p) {
  for (int i = digits - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return p + digits;
}

}  // namespace

std::string TimeText(absl::Time t) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond cs = absl::ToCivilSecond(t, utc);
  const absl::Duration fraction = t - absl::FromCivil(cs, utc);
  const int64_t nanos = absl::ToInt64Nanoseconds(fraction);
  // What the fast path does not write the way absl does: the infinities,
  // years beyond 0000-9999, fractions finer than a nanosecond. Years below
  // 1000 it pads to four digits as RFC 3339 asks (absl writes year 1
  // "1-01-01").
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast() ||
      cs.year() < 0 || cs.year() > 9999 ||
      absl::Nanoseconds(nanos) != fraction) {
    return absl::FormatTime(absl::RFC3339_full, t, utc);
  }
  char buffer[40];
  char* p = buffer;
  p = Digits(cs.year(), 4, p);
  *p++ = '-';
  p = Digits(cs.month(), 2, p);
  *p++ = '-';
  p = Digits(cs.day(), 2, p);
  *p++ = 'T';
  p = Digits(cs.hour(), 2, p);
  *p++ = ':';
  p = Digits(cs.minute(), 2, p);
  *p++ = ':';
  p = Digits(cs.second(), 2, p);
  if (nanos != 0) {  // as many digits as it takes, no trailing zeros
    *p++ = '.';
    char* end = Digits(nanos, 9, p);
    while (end[-1] == '0') --end;
    p = end;
  }
  for (char c : {'+', '0', '0', ':', '0', '0'}) *p++ = c;
  return std::string(buffer, p);
}

}  // namespace kpistream
