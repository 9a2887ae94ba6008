// The binary's memory allocator: jemalloc (Debian's libjemalloc), linked
// into the kpistream executable only (cmd/CMakeLists.txt), in place of
// glibc's malloc. See allocator.cc for why and how it is set.
#ifndef KPISTREAM_CMD_ALLOCATOR_H_
#define KPISTREAM_CMD_ALLOCATOR_H_

#include <string>

namespace kpistream {

// "jemalloc <version>" and the options it runs with, e.g. for --version.
std::string AllocatorDescription();

}  // namespace kpistream

#endif  // KPISTREAM_CMD_ALLOCATOR_H_
