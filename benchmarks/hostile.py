"""Hostile shapes: the time to parse and classify one message, per megabyte, against an ordinary one.

    .venv/bin/python -m benchmarks.hostile [--sizes 1000000,10485760] [--runs 3]

Each shape of tests/hostile_shapes.py (long lines without punctuation, tens of thousands of links, runs
of brackets, thousands of encoded words, huge headers, many parts...) goes through `prepare`, the
worker's parse-and-classify step; the baseline, measured in the same run, is an ordinary request of the
same size (a short note and a base64 attachment). Target: every shape under 2 s at max_message_bytes
(10 MB), i.e. time linear in the size; one that would cost more is refused and goes to a person.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from processor.mail.mailbox import RawMessage
from processor.pipeline.prepare import Kind, Rules, prepare
from tests.hostile_shapes import ordinary, shapes

RULES = Rules(("riversideledger.example",), ("republish@riversideledger.example",),
              "republish@riversideledger.example", "INBOX")


def seconds(raw: bytes, runs: int) -> tuple[float, Kind]:
    times, kind = [], None
    for _ in range(runs):
        started = time.perf_counter()
        kind = prepare(RawMessage("1", raw, len(raw)), RULES).kind
        times.append(time.perf_counter() - started)
    return statistics.median(times), kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=f"1000000,{10 * 1024 * 1024}")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {args.runs} runs")
    worst = (0.0, "", 0)        # ms per MB, shape, size
    slowest = (0.0, "", 0)      # seconds, shape, size
    for size in sizes:
        megabytes = size / 1e6
        baseline, _ = seconds(ordinary(size), args.runs)
        print(f"\n{megabytes:.1f} MB: an ordinary request (note + attachment) {baseline * 1000:.0f} ms "
              f"({baseline * 1000 / megabytes:.0f} ms/MB)")
        for name, raw in shapes(size).items():
            took, kind = seconds(raw, args.runs)
            per_mb = took * 1000 / (len(raw) / 1e6)
            worst = max(worst, (per_mb, name, size))
            slowest = max(slowest, (took, name, size))
            print(f"  {name:38s} {took * 1000:7.0f} ms  {per_mb:5.0f} ms/MB  {took / baseline:5.1f}x  "
                  f"{'refused: for a person' if kind == Kind.UNREADABLE else 'read'}")
    print(f"\nworst per MB: {worst[1]} at {worst[2] / 1e6:.1f} MB, {worst[0]:.0f} ms/MB; slowest message: "
          f"{slowest[1]} at {slowest[2] / 1e6:.1f} MB, {slowest[0]:.2f} s (target: under 2 s up to max_message_bytes)")


if __name__ == "__main__":
    main()
