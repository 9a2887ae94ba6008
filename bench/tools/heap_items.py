#!/usr/bin/python3
"""Heap at its peak, item by item, from a heaptrack profile of kpistream.

  heaptrack -o ht kpistream run --config c.yaml        (e2e_bench --heaptrack)
  heaptrack_print -f ht.zst --print-peaks 0 --print-allocators 0 \
      --print-temporary 0 --flamegraph-cost-type peak -F peak.txt
  bench/tools/heap_items.py peak.txt

Each allocation stack is put under the item named by the frame nearest to
the allocation that matches a rule below (consumer queues, reorder buffer,
sessions, dedup, outputs, the local store ...). Stacks made only of unsymbolized frames on
threads of their own are librdkafka's (its broker threads: fetched and
decompressed messages waiting in the consumer queues, socket buffers).
Standard library only (Debian's /usr/bin/python3).
"""
import collections
import re
import sys

RULES = [
    ("outputs: librdkafka producer message copies", ["rd_kafka_producev"]),
    ("checkpoints being built (changelog protos)", ["Checkpoint"]),
    ("reorder buffer", ["ReorderBuffer"]),
    ("dedup (FingerprintStore of the Deduplicator)",
     ["Deduplicator", "FingerprintStore"]),
    ("KPI windows and targets", ["KpiWindows", "TargetTracker", "KpiTarget"]),
    ("sessions (Sessionizer: open sessions, visitor recency, orders)",
     ["Sessionizer", "VisitorRecency", "OrderOnce"]),
    ("active visitors (distinct visitors of the last 5/30 min)",
     ["ActiveVisitors"]),
    ("counters and metrics snapshots",
     ["KpiCounters", "MetricsSnapshot", "Publish", "MergeSnapshot",
      "MetricSample", "LabelLimiter"]),
    ("decoding", ["EventDecoder", "JsonEventReader"]),
    ("HTTP (civetweb)", ["mg_start", "CivetServer"]),
    ("stream thread and pipelines, other",
     ["StreamThread", "PartitionPipeline", "PartitionState"]),
    ("engine start-up", ["Engine::Impl::Init", "main ("]),
    # RocksDB's own allocations (its frames are nearer the allocation than
    # the engine's LocalStore or RocksDayStore calls).
    ("local store (RocksDB: memtables, block cache, table readers)",
     ["rocksdb::"]),
]
UNSYMBOLIZED = re.compile(r"0x[0-9a-f]+$|clone3|start_thread")


def main():
    items = collections.Counter()
    sites = collections.defaultdict(collections.Counter)
    with open(sys.argv[1]) as f:
        for line in f:
            stack, _, size = line.rstrip("\n").rpartition(" ")
            frames = [x for x in stack.split(";") if x]
            item = site = None
            for frame in reversed(frames):
                item = next((name for name, keys in RULES
                             if any(k in frame for k in keys)), None)
                if item:
                    site = frame
                    break
            if item is None:
                item = ("librdkafka's own threads (consumer queues: fetched "
                        "messages; socket and produce buffers)"
                        if all(UNSYMBOLIZED.search(x) for x in frames)
                        else "other")
                site = frames[-1] if frames else "?"
            items[item] += int(size)
            sites[item][re.sub(r" \(.*", "", site)[:80]] += int(size)
    total = sum(items.values())
    for item, n in items.most_common():
        print(f"{n / 2**20:8.1f} MB  {100.0 * n / total:5.1f}%  {item}")
        for site, m in sites[item].most_common(3):
            if m >= 2**20:
                print(f"{'':18}{m / 2**20:7.1f} MB  {site}")
    print(f"{total / 2**20:8.1f} MB  heap at its peak")


if __name__ == "__main__":
    main()
