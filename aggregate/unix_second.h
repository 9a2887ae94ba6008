// SecondOf: the unix second a time in microseconds falls in (rounded down,
// also before 1970), for state bucketed by second of event or processing
// time (the reorder buffer, the session expiry index, realtime visitors).
#ifndef KPISTREAM_AGGREGATE_UNIX_SECOND_H_
#define KPISTREAM_AGGREGATE_UNIX_SECOND_H_

#include <cstdint>

namespace kpistream {

inline int64_t SecondOf(int64_t us) {
  return us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_UNIX_SECOND_H_
