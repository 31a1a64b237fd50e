#!/usr/bin/env python3
"""Runs every test binary of the workspace (what `cargo test --workspace --all-features`
runs, doc tests included), the broker-bound ones beside the rest.

The Kafka model cells (`conformance-tests/tests/kafka.rs`) spend most of their ~9 minutes
waiting on the broker and on librdkafka's fixed 500 ms producer-id retry, not on the CPU:
run one after the other, everything else waited behind them. Here they run in a lane of
their own while the other binaries run one after the other in the main lane, so the suite
keeps every case and every kill round and finishes sooner. Binaries that stop brokers of
the three-broker cluster (`kafka_outage`, `cluster`) stay in the main lane, never beside
each other.

Each binary runs as `cargo test` would run it: from its package's directory, with the
package's CARGO_* variables. Its output is printed whole when it ends, then a table of
every binary's tests and seconds. Exits 1 if any binary failed.

  scripts/run-tests.py [--solo NAME ...]   (default: --solo kafka)
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARGO_ARGS = ["--workspace", "--all-features"]


def log(message):
    print(f"run-tests: {message}", file=sys.stderr, flush=True)


def test_binaries():
    """Builds every test target and returns (package, target, kind, executable, dir)."""
    build = subprocess.run(
        ["cargo", "test", *CARGO_ARGS, "--no-run", "--message-format=json-render-diagnostics"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if build.returncode != 0:
        sys.exit(build.returncode)
    binaries = []
    for line in build.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") != "compiler-artifact" or not message.get("executable"):
            continue
        if not message.get("profile", {}).get("test"):
            continue
        target = message["target"]
        manifest = Path(message["manifest_path"])
        package = message["package_id"]
        binaries.append({
            "package": manifest.parent.name,
            "package_id": package,
            "name": target["name"],
            "kind": target["kind"][0],
            "executable": message["executable"],
            "dir": manifest.parent,
        })
    return binaries


def package_env(binary):
    """The CARGO_* variables cargo sets when it runs a test binary."""
    metadata = PACKAGES.get(binary["package_id"], {})
    env = dict(os.environ)
    env["CARGO_MANIFEST_DIR"] = str(binary["dir"])
    env["CARGO_PKG_NAME"] = metadata.get("name", binary["package"])
    env["CARGO_PKG_VERSION"] = metadata.get("version", "")
    env["CARGO_CRATE_NAME"] = binary["name"].replace("-", "_")
    return env


# (label, exit code, output) of every binary that failed, repeated after the table: a CI
# log is often read from its end, and a binary killed by a signal (a native abort) has no
# failing-test summary of its own to point at what it printed.
failures = []

# How much of a failed binary's output is repeated at the end.
FAILURE_TAIL_LINES = 80


def run(binary, results, lock):
    label = f"{binary['package']}::{binary['name']} ({binary['kind']})"
    started = time.monotonic()
    done = subprocess.run([binary["executable"]], cwd=binary["dir"], env=package_env(binary),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - started
    summary = next((line for line in reversed(done.stdout.splitlines())
                    if line.startswith("test result:")), "no test result line")
    with lock:
        print(f"\n----- {label}: {seconds:.1f} s, exit {done.returncode}", flush=True)
        print(done.stdout, end="", flush=True)
        results.append((label, done.returncode, seconds, summary))
        if done.returncode != 0:
            failures.append((label, done.returncode, done.stdout))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solo", nargs="*", default=["kafka"],
                        help="test targets (by name) that run in a lane of their own")
    args = parser.parse_args()
    started = time.monotonic()
    binaries = test_binaries()
    log(f"built {len(binaries)} test binaries in {time.monotonic() - started:.0f} s")
    results, lock = [], threading.Lock()
    solo = [b for b in binaries if b["name"] in args.solo and b["kind"] == "test"]
    rest = [b for b in binaries if b not in solo]
    lanes = [threading.Thread(target=lambda b=b: run(b, results, lock)) for b in solo]
    for lane in lanes:
        lane.start()
    for binary in rest:
        run(binary, results, lock)
    for lane in lanes:
        lane.join()
    doc_started = time.monotonic()
    doc = subprocess.run(["cargo", "test", *CARGO_ARGS, "--doc"], cwd=ROOT)
    results.append(("doc tests", doc.returncode, time.monotonic() - doc_started, ""))

    print("\n| test binary | seconds | result |\n| --- | --- | --- |")
    for label, code, seconds, summary in sorted(results, key=lambda r: -r[2]):
        outcome = summary.replace("test result: ", "") if code == 0 else f"FAILED (exit {code}) {summary}"
        print(f"| {label} | {seconds:.1f} | {outcome} |")
    for label, code, output in failures:
        tail = output.splitlines()[-FAILURE_TAIL_LINES:]
        print(f"\n----- {label} failed (exit {code}); the last {len(tail)} lines of its output:")
        print("\n".join(tail), flush=True)
    total = time.monotonic() - started
    failed = [label for label, code, _, _ in results if code != 0]
    print(f"\n{len(results)} test binaries in {total:.0f} s; "
          f"{'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    sys.exit(1 if failed else 0)


def packages():
    metadata = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return {p["id"]: p for p in json.loads(metadata.stdout)["packages"]}


PACKAGES = packages()

if __name__ == "__main__":
    main()
