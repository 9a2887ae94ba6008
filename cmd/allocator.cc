#include "cmd/allocator.h"

#include <jemalloc/jemalloc.h>
#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/strings/str_cat.h"

// jemalloc reads its options from this symbol at its start, then from the
// MALLOC_CONF environment variable, which wins where both set an option.
//
// Why jemalloc: librdkafka decompresses each fetched batch (1-4 MB) on its
// own threads and the stream threads free it. glibc either kept such blocks
// in its arenas, resident once freed (its mmap threshold rises after every
// freed mmap'ed block: ~450 MB of RSS above the heap on real Kafka), or,
// with the threshold fixed at 256 KiB as before, mapped and unmapped every
// one, faulting its pages in afresh (~7 % of the engine's samples, with
// malloc/free another ~7 %). jemalloc keeps freed pages for reuse and a
// background thread returns those unused for about a second
// (dirty_decay_ms; muzzy_decay_ms 0: returned at once, not kept lazily).
// On the end-to-end benchmark: peak RSS 6-33 % lower, CPU per event within
// the noise (BENCHMARKS.md, "Run JM"); jemalloc's default 10 s decay saved
// more CPU but held up to 16 % more RSS.
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc looks for.
const char* malloc_conf =
    "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

namespace kpistream {

std::string AllocatorDescription() {
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) != 0 ||
      version == nullptr) {
    return "jemalloc (version unknown)";
  }
  // The options in effect (malloc_conf above, then MALLOC_CONF).
  bool background = false;
  size = sizeof(background);
  const bool has_background =
      mallctl("background_thread", &background, &size, nullptr, 0) == 0;
  std::string out =
      absl::StrCat("jemalloc ", version, " (background_thread ",
                   has_background ? (background ? "on" : "off") : "unknown");
  for (const char* name : {"dirty_decay_ms", "muzzy_decay_ms"}) {
    ssize_t ms = 0;
    size = sizeof(ms);
    const std::string key = absl::StrCat("arenas.", name);
    if (mallctl(key.c_str(), &ms, &size, nullptr, 0) == 0) {
      absl::StrAppend(&out, ", ", name, " ", ms);
    }
  }
  out += ")";
  return out;
}

}  // namespace kpistream
