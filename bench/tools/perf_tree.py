#!/usr/bin/python3
"""Top-down profile of a kpistream run from `perf script` output.

Where the engine's time goes, as the tree under one frame (default
StreamThread::Run), with the share of all samples of the process:

  perf record -F 499 --call-graph dwarf,16384 -p <pid>   (e2e_bench --perf)
  perf script -i perf.data -F comm,tid,ip,sym > perf.txt
  bench/tools/perf_tree.py perf.txt [--root StreamThread::Run] [--depth 5]
      [--min 1.0]

Also prints the threads' shares and, for allocator frames at the leaf
(malloc/free and friends), the nearest kpistream/protobuf/librdkafka caller.
Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import collections
import re

ALLOCATOR = re.compile(r"malloc|_int_free|unlink_chunk|cfree|__libc_free|"
                       r"operator new|operator delete|malloc_consolidate")
WRAPPER = re.compile(r"FunctionRef|std::__invoke|std::_Function|_M_invoke|"
                     r"operator\(\)|\(inlined\)$")


def samples(path):
    """Yields (header, frames leaf first) per sample of `perf script`."""
    header, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if header is not None:
                    yield header, frames
                header, frames = None, []
            elif header is None:
                header = line
            else:
                parts = line.strip().split(" ", 1)
                frames.append(re.sub(r"\+0x[0-9a-f]+$", "",
                                     parts[1] if len(parts) > 1 else "?"))
    if header is not None:
        yield header, frames


def short(frame):
    return (re.sub(r"\((?!anonymous namespace\)).*", "", frame)
            if frame.startswith("kpistream") else frame)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script")
    parser.add_argument("--root", default="StreamThread::Run")
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--min", type=float, default=1.0,
                        help="hide nodes below this percentage")
    args = parser.parse_args()

    tree = collections.Counter()
    threads = collections.Counter()
    allocs = collections.Counter()
    total = alloc_total = 0
    for header, frames in samples(args.script):
        total += 1
        threads[header.split()[0]] += 1
        if frames and ALLOCATOR.search(frames[0]):
            alloc_total += 1
            allocs[next((short(f) for f in frames
                         if f.startswith(("kpistream::", "google::protobuf",
                                          "rd_kafka"))), "?")] += 1
        root_first = list(reversed(frames))
        at = next((i for i, f in enumerate(root_first) if args.root in f), None)
        if at is None:
            continue
        path = []
        for f in root_first[at + 1:]:
            if WRAPPER.search(f) and not f.startswith("kpistream::"):
                continue
            f = short(f)
            if path and path[-1] == f:
                continue
            path.append(f)
            if len(path) >= args.depth:
                break
        for d in range(len(path) + 1):
            tree[tuple(path[:d])] += 1

    pct = lambda n: 100.0 * n / max(total, 1)
    print("threads: " + ", ".join(f"{c} {pct(n):.1f}%"
                                  for c, n in threads.most_common(6)))
    print(f"{pct(tree[()]):5.1f}%  {args.root}")

    def show(prefix):
        children = [(k, n) for k, n in tree.items()
                    if len(k) == len(prefix) + 1 and k[:len(prefix)] == prefix]
        for k, n in sorted(children, key=lambda kn: -kn[1]):
            if pct(n) >= args.min:
                print(f"{'  ' * len(k)}{pct(n):5.1f}%  {k[-1][:100]}")
                show(k)
    show(())
    print(f"\nallocator (malloc/free family at the leaf): {pct(alloc_total):.1f}%"
          " of all samples, by nearest named caller:")
    for caller, n in allocs.most_common(10):
        print(f"  {pct(n):5.1f}%  {caller[:100]}")


if __name__ == "__main__":
    main()
