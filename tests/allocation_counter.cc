#include "tests/allocation_counter.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace {
thread_local bool counting = false;
thread_local int64_t allocations = 0;
thread_local bool tracking = false;
thread_local int64_t live_bytes = 0;
thread_local int64_t peak_bytes = 0;

void Track(void* p) {
  if (!tracking || p == nullptr) return;
  live_bytes += static_cast<int64_t>(malloc_usable_size(p));
  peak_bytes = std::max(peak_bytes, live_bytes);
}

void Free(void* p) {
  if (tracking && p != nullptr) {
    live_bytes -= static_cast<int64_t>(malloc_usable_size(p));
  }
  std::free(p);
}
}  // namespace

void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    Track(p);
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (counting) ++allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  Track(p);
  return p;
}
void* operator new[](std::size_t size, const std::nothrow_t& t) noexcept {
  return operator new(size, t);
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Free(p); }

namespace kpistream::testing {

AllocationCounter::AllocationCounter() {
  allocations = 0;
  counting = true;
}

AllocationCounter::~AllocationCounter() { counting = false; }

int64_t AllocationCounter::Stop() {
  counting = false;
  return allocations;
}

HeapPeak::HeapPeak() {
  live_bytes = peak_bytes = 0;
  tracking = true;
}

HeapPeak::~HeapPeak() { tracking = false; }

void HeapPeak::Stop() { tracking = false; }
int64_t HeapPeak::peak() const { return peak_bytes; }
int64_t HeapPeak::live() const { return live_bytes; }

}  // namespace kpistream::testing
