#!/usr/bin/env python3
"""Sums up the PP_SIM_LEADER_STATS file of a praos sweep (see docs/testing.md).

Each line (pp_sim::LeaderStats::line): test, seed, slots, led, multi-leader, multi-block,
unresolved, resolution times in ms (comma-separated, '-' if none). Prints one line per test and
one for all, with the share of slots with a leader, with several leaders, with several blocks,
and min / median / 90th percentile / max of the resolution times in ms and in slots.

Usage: python3 sim/scripts/leader_stats.py <file> [slot_ms ...]
(slot_ms per test as test=ms to convert times to slots; 500 ms unless given.)
"""
import sys
from collections import defaultdict


def quantiles(v):
    if not v:
        return "-"
    v = sorted(v)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))]
    return f"{v[0]} / {pick(0.5)} / {pick(0.9)} / {v[-1]}"


def main():
    path = sys.argv[1]
    slot_ms = {"*": 500}
    for arg in sys.argv[2:]:
        test, ms = arg.split("=")
        slot_ms[test] = int(ms)
    rows = defaultdict(lambda: [0, 0, 0, 0, 0, 0, [], []])
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) != 8:
            continue
        times = [] if f[7] == "-" else [int(x) for x in f[7].split(",")]
        for key in (f[0], "ALL"):
            r = rows[key]
            r[0] += 1
            for i in range(5):
                r[i + 1] += int(f[i + 2])
            r[6].extend(times)
            ms = slot_ms.get(f[0], slot_ms["*"])
            r[7].extend(t / ms for t in times)
    for key in sorted(rows, key=lambda k: (k == "ALL", k)):
        runs, slots, led, multi, mblock, unres, times, in_slots = rows[key]
        pct = lambda x: 100.0 * x / max(slots, 1)
        slots_q = quantiles([round(s, 2) for s in in_slots])
        print(
            f"{key}: {runs} runs, {slots} slots, led {pct(led):.1f} %, several leaders "
            f"{multi} ({pct(multi):.2f} %), several blocks {mblock} ({pct(mblock):.2f} %), "
            f"unresolved at the end {unres}; resolution ms min/median/p90/max {quantiles(times)}"
            f" (slots {slots_q})"
        )


if __name__ == "__main__":
    main()
