// SaturatingAdd: int64 sums that stop at the int64 limits instead of
// overflowing (undefined behaviour). For sums of values that come from
// outside: money in micros (a conversion's value_micros or an ad cost is
// any int64 a producer sends) and counts restored from a checkpoint. A
// saturated sum of micros is about 9.2 trillion units of a currency: beyond
// a session's, a window's or a target period's real totals, and bounded
// however hostile the input; not beyond a process's life of a small-unit
// currency (IDR, VND), so /metrics' money counters sum in 128 bits
// (kpi_counters.cc).
#ifndef KPISTREAM_AGGREGATE_SATURATING_H_
#define KPISTREAM_AGGREGATE_SATURATING_H_

#include <cstdint>
#include <limits>

namespace kpistream {

inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max()
               : std::numeric_limits<int64_t>::min();
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_SATURATING_H_
