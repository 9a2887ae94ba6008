// Counts operator new calls on the calling thread, so that a test or a
// benchmark can show that a warm hot path does not allocate (issue 9,
// item 3). Linking allocation_counter.cc replaces the global operator new
// and delete of the whole binary (every non-aligned form, so that each
// allocation is freed by its own kind; the aligned forms stay the
// library's, in pairs).
#ifndef KPISTREAM_TESTS_ALLOCATION_COUNTER_H_
#define KPISTREAM_TESTS_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace kpistream::testing {

// Counts this thread's allocations from construction until Stop() (or
// destruction). Not nestable.
class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;

  // Stops counting; returns the count.
  int64_t Stop();
};

}  // namespace kpistream::testing

#endif  // KPISTREAM_TESTS_ALLOCATION_COUNTER_H_
