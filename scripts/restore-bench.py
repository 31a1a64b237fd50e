#!/usr/bin/env python3
"""Restore speed side by side: Kafka Streams, statestore and the raw consumers.

Produces one changelog topic the way a Kafka Streams application writes it (String keys
`customer-N`, 8-byte big-endian Double values, or random bytes of --value-size; record i
updates key i mod --keys, in turn or with --key-order scattered in a fixed pseudo-random order
each round), then, in
one run and back to back on the same topic and broker, restores it with:

  - a raw librdkafka consumer reading to the end (benches/examples/raw_consumer.rs, with
    the fetch settings statestore's restore cursor uses): the physical limit of reading;
  - Kafka's Java consumer without a store, as `kafka-consumer-perf-test` runs it
    (ConsumerPerformance, its fetch time);
  - Kafka Streams 4.1.1 into its RocksDB store and into its in-memory store
    (benches/kafka-streams, times from its StateRestoreListener);
  - `statestore restore` into every backend (its own timing of the restores, the span
    from the first partition's start to the last one's end, as Kafka Streams' listener
    gives its own; the whole command's time is printed beside it).

Each run starts from an empty state directory. Prints a Markdown table of medians with the
ratios to Kafka Streams' store of the same kind (RocksDB for rocksdb and redb, in-memory
for memory) and to the faster of the two raw consumers, and each process's peak RSS.

With --snapshots URL (s3://bucket/prefix or file:///dir; S3 credentials and endpoint from
AWS_*), the changelog is produced in two parts: after the first (all but --tail-percent of
the records), each durable backend restores it into a kept directory and `statestore
snapshot` uploads that store under URL/<backend>; then the tail is produced. The readers
above restore the whole changelog as before, and `statestore restore --snapshots` per
durable backend relocates cold from the snapshot plus the tail, with its download and
tail times apart.

Needs a broker (scripts/kafka.sh start single), Java 17 and Maven (for Kafka Streams), and
GNU time (/usr/bin/time) for the peak RSS.

  scripts/restore-bench.py [--records 1000000] [--keys 100000] [--value-size 8]
                           [--key-order sequential|scattered]
                           [--partitions 1] [--rounds 3] [--backends memory,rocksdb,redb]
                           [--bootstrap-servers 127.0.0.1:9092] [--keep-topic]
                           [--snapshots URL --tail-percent 1] [--batch-sizes N,M]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KS_BENCH = ROOT / "scripts" / "kafka-streams-bench.sh"
STORE = "rewards"


def log(message):
    print(f"restore-bench: {message}", file=sys.stderr, flush=True)


def die(message):
    log(f"error: {message}")
    sys.exit(1)


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def build():
    log("building statestore-cli (with RocksDB) and the raw consumer (dev profile)")
    subprocess.run(["cargo", "build", "-q", "-p", "statestore-cli", "--features", "full"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "-q", "-p", "benches", "--example", "raw_consumer"],
                   cwd=ROOT, check=True)
    log("building the Kafka Streams benchmark (mvn)")
    subprocess.run(["bash", str(KS_BENCH), "build"], cwd=ROOT, check=True)
    debug = target_dir() / "debug"
    return debug / "statestore", debug / "examples" / "raw_consumer"


def json_line(stdout):
    """The last JSON line a reader printed (statestore, the raw consumer, Kafka Streams)."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def consumer_performance(stdout):
    """`records` and `millis` from Kafka's ConsumerPerformance: its fetch time, the
    rebalance of its subscription left out, as `kafka-consumer-perf-test` reports it."""
    lines = [line.strip() for line in stdout.splitlines() if "," in line]
    header = next((i for i, line in enumerate(lines) if "fetch.time.ms" in line), None)
    if header is None or header + 1 >= len(lines):
        return None
    row = dict(zip((f.strip() for f in lines[header].split(",")),
                   (f.strip() for f in lines[header + 1].split(","))))
    return {"records": int(row["data.consumed.in.nMsg"]), "millis": float(row["fetch.time.ms"])}


def timed(command, parse=json_line):
    """Runs `command` under GNU time; returns what `parse` reads from its output and its
    peak RSS in MiB."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as rss_file:
        done = subprocess.run(
            ["/usr/bin/time", "-o", rss_file.name, "-f", "%M"] + command,
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            die(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        rss_kib = int(rss_file.read().strip().splitlines()[-1])
    result = parse(done.stdout)
    if result is None:
        die(f"{' '.join(command)} printed no result:\n{done.stdout[-2000:]}")
    return result, rss_kib / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--value-size", type=int, default=8)
    parser.add_argument("--key-order", choices=("sequential", "scattered"), default="sequential",
                        help="record i updates key i mod K: in turn, or each round in a fixed "
                             "pseudo-random order")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="memory,rocksdb,redb")
    parser.add_argument("--bootstrap-servers",
                        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--keep-topic", action="store_true",
                        help="leave the topics on the broker (they are deleted by default)")
    parser.add_argument("--snapshots", metavar="URL",
                        help="also relocate each durable backend from a snapshot under URL plus the tail")
    parser.add_argument("--batch-sizes", default="",
                        help="comma-separated: every backend also restores with each of these "
                             "--batch-size values (records per write), beside its default")
    parser.add_argument("--tail-percent", type=float, default=1.0,
                        help="with --snapshots: the share of records produced after the snapshot")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        die("GNU time (/usr/bin/time, Debian package 'time') is needed for the peak RSS")
    statestore, raw_consumer = build()

    app = f"restore-bench-{int(time.time())}"
    changelog = f"{app}-{STORE}-changelog"
    input_topic = f"{app}-input"
    servers = args.bootstrap_servers
    partitions = ",".join(str(p) for p in range(args.partitions))
    value_serde = "f64" if args.value_size == 8 else "bytes"
    durable = [b for b in args.backends.split(",") if b != "memory"]
    tail = round(args.records * args.tail_percent / 100) if args.snapshots else 0

    def produce(records):
        log(f"producing {records} records over {args.keys} keys ({args.key_order}) into {changelog} "
            f"({args.partitions} partition(s), values of {args.value_size} bytes)")
        produced, _ = timed(["bash", str(KS_BENCH), "produce", "--bootstrap-servers", servers,
                             "--topic", changelog, "--input-topic", input_topic,
                             "--partitions", str(args.partitions), "--records", str(records),
                             "--keys", str(args.keys), "--value-size", str(args.value_size),
                             "--key-order", args.key_order])
        log(f"produced in {produced['millis']} ms")

    def restore_command(state, backend, extra=()):
        return [str(statestore), "restore", "--bootstrap-servers", servers,
                "--application-id", app, "--store", STORE, "--state-dir", str(state),
                "--backend", backend, "--partitions", partitions,
                "--parallel", str(args.partitions), "--key-serde", "string",
                "--value-serde", value_serde, "--json", *extra]

    produce(args.records - tail)
    snapshots = {}
    if args.snapshots:
        for backend in durable:
            url = f"{args.snapshots.rstrip('/')}/{app}/{backend}"
            source = Path(tempfile.mkdtemp(prefix="restore-bench-source-"))
            try:
                timed(restore_command(source, backend))
                taken, _ = timed([str(statestore), "snapshot", "--application-id", app,
                                  "--store", STORE, "--state-dir", str(source),
                                  "--backend", backend, "--partitions", partitions,
                                  "--snapshots", url, "--json"])
            finally:
                shutil.rmtree(source, ignore_errors=True)
            sent = sum(p["bytes_uploaded"] for p in taken["per_partition"])
            log(f"{backend}: snapshot of {args.records - tail} records uploaded "
                f"({sent / 2**20:.1f} MiB) in "
                f"{sum(p['upload_millis'] for p in taken['per_partition']):.0f} ms")
            snapshots[backend] = (url, sent)
        produce(tail)
    readers = [("raw librdkafka consumer", "raw", lambda state: [
        str(raw_consumer), "--bootstrap-servers", servers, "--topic", changelog,
        "--partitions", partitions]),
        ("raw Java consumer (kafka-consumer-perf-test)", "raw-java", lambda state: [
            "bash", str(ROOT / "scripts" / "kafka.sh"), "run",
            "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", servers,
            "--topic", changelog, "--messages", str(args.records), "--timeout", "120000",
            "--group", f"restore-bench-raw-{state.name}"])]
    for kind in ("rocksdb", "memory"):
        readers.append((f"Kafka Streams 4.1.1, {kind} store", f"ks-{kind}",
                        lambda state, kind=kind: [
                            "bash", str(KS_BENCH), "restore", "--bootstrap-servers", servers,
                            "--application-id", app, "--store", STORE,
                            "--input-topic", input_topic, "--store-type", kind,
                            "--state-dir", str(state)]))
    for backend in args.backends.split(","):
        readers.append((f"statestore restore, {backend}", backend,
                        lambda state, backend=backend: restore_command(state, backend)))
    for size in filter(None, args.batch_sizes.split(",")):
        for backend in args.backends.split(","):
            readers.append((f"statestore restore, {backend}, batches of {int(size):,}",
                            f"{backend}@{int(size)}",
                            lambda state, backend=backend, size=size: restore_command(
                                state, backend, ("--batch-size", size))))
    for backend, (url, _) in snapshots.items():
        readers.append((f"statestore snapshot + {args.tail_percent:g}% tail, {backend}",
                        f"snapshot-{backend}",
                        lambda state, backend=backend, url=url: restore_command(
                            state, backend, ("--snapshots", url))))

    results = {key: [] for _, key, _ in readers}
    stages = {key: [] for _, key, _ in readers}
    whole = {key: [] for _, key, _ in readers}
    try:
        for round_ in range(1, args.rounds + 1):
            for name, key, command in readers:
                state = Path(tempfile.mkdtemp(prefix="restore-bench-"))
                try:
                    out, rss = timed(command(state), consumer_performance
                                 if key == "raw-java" else json_line)
                finally:
                    shutil.rmtree(state, ignore_errors=True)
                expected = tail if key.startswith("snapshot-") else args.records
                if out["records"] != expected:
                    die(f"{name} restored {out['records']} records, expected {expected}")
                if key.startswith("snapshot-"):
                    used = [p.get("snapshot") for p in out["per_partition"]]
                    if not all(used):
                        die(f"{name} did not start from a snapshot: {out}")
                    download = max(u["download_millis"] + u["open_millis"] for u in used)
                    stages[key].append(download)
                # statestore's time is its restores' span, as Kafka Streams' listener
                # reports its own; the whole command (cluster metadata, opening and
                # closing the stores) is kept beside it.
                ms = float(out.get("restoring_millis", out["millis"]))
                whole[key].append(float(out["millis"]))
                results[key].append((ms, rss))
                log(f"round {round_}: {name}: {ms} ms ({out['millis']} ms whole), "
                    f"peak RSS {rss:.0f} MiB")
    finally:
        if not args.keep_topic:
            subprocess.run(["bash", str(ROOT / "scripts" / "kafka.sh"), "run",
                            "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", servers,
                            "--delete", "--topic", f"{changelog}|{input_topic}"],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def median_ms(key):
        return statistics.median(ms for ms, _ in results[key])

    raw = min(median_ms("raw"), median_ms("raw-java"))
    print(f"\n{args.records:,} records over {args.keys:,} keys, {args.partitions} partition(s), "
          f"values of {args.value_size} bytes; median of {args.rounds} round(s), each reader "
          f"from an empty state directory\n")
    print("| reader | time | records/s | vs Kafka Streams (same kind of store) | vs the faster raw consumer | peak RSS | whole command |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, key, _ in readers:
        ms = median_ms(key)
        rate = args.records / (ms / 1000)
        rss = statistics.median(r for _, r in results[key])
        backend = key.removeprefix("snapshot-").split("@")[0]
        if backend in ("memory", "rocksdb", "redb"):
            same = "ks-memory" if backend == "memory" else "ks-rocksdb"
            vs_ks = f"{median_ms(same) / ms:.2f}x"
        else:
            vs_ks = ""
        vs_raw = f"{raw / ms:.2f}x"
        command = (f"{statistics.median(whole[key]) / 1000:.2f} s"
                   if backend in ("memory", "rocksdb", "redb") else "")
        print(f"| {name} | {ms / 1000:.2f} s | {rate / 1000:,.0f} k | {vs_ks} | {vs_raw} | "
              f"{rss:.0f} MiB | {command} |")
    print("\nratios are speed ratios (higher is faster): Kafka Streams' time / statestore's time, "
          "the faster raw consumer's time / reader's time")
    print("times: Kafka Streams' and statestore's are their restores' span, from the first "
          "partition's start to the last one's end (Kafka Streams' restore listener; "
          "statestore's restoring_millis); the whole command adds reaching the cluster and "
          "opening and closing the stores (closing a RocksDB store waits for the compaction "
          "its bulk load deferred)")
    if snapshots:
        print(f"\nsnapshot + tail ({tail:,} records after the snapshot) against a full replay "
              "of the same backend:\n")
        print("| backend | snapshot bytes | download + open | tail | total | vs full replay | vs Kafka Streams |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for backend, (_, sent) in snapshots.items():
            key = f"snapshot-{backend}"
            ms = median_ms(key)
            download = statistics.median(stages[key])
            print(f"| {backend} | {sent / 2**20:.1f} MiB | {download / 1000:.2f} s | "
                  f"{(ms - download) / 1000:.2f} s | {ms / 1000:.2f} s | "
                  f"{median_ms(backend) / ms:.1f}x | {median_ms('ks-rocksdb') / ms:.1f}x |")


if __name__ == "__main__":
    main()
