// Counts operator new calls on the calling thread, so that a test or a
// benchmark can show that a warm hot path does not allocate (issue 9,
// item 3), or the bytes they hold at most (HeapPeak). Linking
// allocation_counter.cc replaces the global operator new and delete of the
// whole binary (every non-aligned form, so that each allocation is freed by its
// own kind; the aligned forms stay the library's, in pairs).
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

// The most bytes this thread's allocations since construction held at
// once beyond what they held at construction (malloc_usable_size of each
// block; frees of older blocks lower it), until Stop(). Not nestable, and
// not together with an AllocationCounter.
class HeapPeak {
 public:
  HeapPeak();
  ~HeapPeak();
  HeapPeak(const HeapPeak&) = delete;
  HeapPeak& operator=(const HeapPeak&) = delete;

  // Stops tracking.
  void Stop();
  int64_t peak() const;
  int64_t live() const;  // bytes held now, beyond those at construction
};

}  // namespace kpistream::testing

#endif  // KPISTREAM_TESTS_ALLOCATION_COUNTER_H_
