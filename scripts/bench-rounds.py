#!/usr/bin/env python3
"""Runs criterion bench binaries alternately, round after round, and prints each
benchmark's median point estimate over the rounds with its range.

A shared 2-core machine drifts over minutes (the broker's own work, page cache, other
jobs), so two builds compared one after the other measure the drift as well. Running
them alternately spreads it over both; the range shows what is left.

  scripts/bench-rounds.py --rounds 5 [--filter REGEX] BINARY [BINARY ...]

Each BINARY is a bench executable (`cargo bench --no-run` prints its path; copy it
away before building the other version). Runs from `benches/`, as `cargo bench` does.
"""

import argparse
import collections
import re
import statistics
import subprocess
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parent.parent / "benches"
UNITS_MS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}
NAME = re.compile(r"^(\S+/\S+)")
TIME = re.compile(r"time:\s+\[\S+ \S+ ([\d.]+) (\S+) \S+ \S+\]")


def estimates(output):
    """(benchmark, point estimate in ms) pairs of one criterion run's output."""
    name = None
    for line in output.splitlines():
        match = NAME.match(line)
        if match:
            name = match.group(1)
        match = TIME.search(line)
        if match and name:
            yield name, float(match.group(1)) * UNITS_MS[match.group(2)]
            name = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", default="")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    results = collections.defaultdict(list)
    for round_ in range(args.rounds):
        for binary in args.binaries:
            run = subprocess.run([binary, "--bench", "--noplot", args.filter], cwd=BENCHES,
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"bench-rounds: {binary} exited {run.returncode}:\n{run.stderr[-2000:]}")
            label = Path(binary).name
            for name, ms in estimates(run.stdout):
                results[(name, label)].append(ms)
                print(f"round {round_} {label} {name} {ms:.2f} ms", flush=True)
    for (name, label), values in sorted(results.items()):
        print(f"{label:20} {name:64} median {statistics.median(values):10.2f} ms  "
              f"range {min(values):.2f}-{max(values):.2f}  n={len(values)}")


if __name__ == "__main__":
    main()
