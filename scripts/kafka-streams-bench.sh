#!/usr/bin/env bash
# Kafka Streams restore benchmark (Java), for comparing statestore's restore speed
# with Kafka Streams' own on the same changelog topic and broker.
# See benches/kafka-streams/README.md.
#
# Usage: scripts/kafka-streams-bench.sh build
#        scripts/kafka-streams-bench.sh produce --bootstrap-servers S --topic T --partitions P
#                                       --records N --keys K [--value-size V] [--input-topic I]
#                                       [--key-order sequential|scattered]
#        scripts/kafka-streams-bench.sh restore --bootstrap-servers S --application-id A --store NAME
#                                       --input-topic I --store-type rocksdb|memory --state-dir D
#                                       [--threads 1] [--timeout-seconds 600]
# produce and restore build first when needed and print one line of JSON on stdout;
# --bootstrap-servers defaults to $KAFKA_BOOTSTRAP_SERVERS.
# Environment: KSBENCH_JVM_OPTS (replaces the JVM options, default -Xms512m -Xmx1g -XX:+UseG1GC ...),
#              JAVA_OPTS (appended, e.g. -Dksbench.debug=true for stack traces).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT="$ROOT/benches/kafka-streams"
POM="$PROJECT/pom.xml"
TARGET="$PROJECT/target"
CLASSES="$TARGET/classes"
DEPS="$TARGET/dependency"
MAIN_CLASS="statestore.bench.RestoreBench"
STAMP="$TARGET/.ksbench-built"

# 2 cores: a 1 GiB heap is plenty (the in-memory store of 100k keys is a few MB;
# RocksDB's memory is off-heap).
read -r -a JVM_OPTS <<<"${KSBENCH_JVM_OPTS:--Xms512m -Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
read -r -a EXTRA_JAVA_OPTS <<<"${JAVA_OPTS:-}"

log() { echo "kafka-streams-bench.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Up to date when the stamp (written after a successful build) is newer than
# the pom and every source file.
up_to_date() {
  [[ -f "$STAMP" && -d "$CLASSES" && -d "$DEPS" ]] || return 1
  [[ -z "$(find "$POM" "$PROJECT/src" -newer "$STAMP" -print -quit)" ]]
}

cmd_build() {
  if up_to_date; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found"
  command -v java >/dev/null || die "java not found (Java 17+ is needed)"
  log "building $PROJECT with mvn"
  # Debian's mvn 3.8 prints bare colour resets even with -q -B; drop them
  # (pipefail keeps mvn's exit status). Maven's output stays on stderr so the
  # JSON on stdout is all a caller has to parse.
  mvn -q -B -Dstyle.color=never -f "$POM" package dependency:copy-dependencies -DskipTests 2>&1 |
    sed $'s/\e\\[0m//g' >&2 ||
    die "mvn build failed (see output above)"
  [[ -d "$CLASSES/statestore/bench" ]] || die "mvn finished but $CLASSES has no classes"
  touch "$STAMP"
}

run_main() {
  cmd_build
  exec java "${JVM_OPTS[@]}" "${EXTRA_JAVA_OPTS[@]}" -cp "$CLASSES:$DEPS/*" "$MAIN_CLASS" "$@"
}

main() {
  [[ $# -ge 1 ]] || die "usage: $0 build | produce ARGS... | restore ARGS..."
  local cmd="$1"
  shift
  case "$cmd" in
    build) cmd_build ;;
    produce | restore) run_main "$cmd" "$@" ;;
    -h | --help | help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (build, produce, restore)" ;;
  esac
}

main "$@"
