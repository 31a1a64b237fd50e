#!/usr/bin/env bash
# RocksDB's official release build of the version the `rocksdb` crate binds, so the test
# suite links it instead of compiling RocksDB's C++ (about 28 minutes on 2 cores, the
# largest single step of a fresh machine's CI run).
#
# The build comes from Maven Central: `org.rocksdb:rocksdbjni`, the library Kafka Streams
# runs, ships each platform's `librocksdbjni-*.so`. That one shared object is all of
# RocksDB (compiled by its maintainers with lz4, zstd, zlib, bzip2 and snappy built in),
# and it exports RocksDB's C API, `rocksdb_*`, which is what `librocksdb-sys` binds. The
# version is read from Cargo.lock (`librocksdb-sys 0.19.0+11.8.1` binds RocksDB 11.8.1), so
# the headers the bindings are generated from and the library they link are one release.
#
# `librocksdb-sys` links a prebuilt RocksDB when `ROCKSDB_LIB_DIR` names a directory with a
# `librocksdb.so`; `env` prints that and an `LD_LIBRARY_PATH` that lets the binaries find
# it. A build from source (the default of `cargo build` without this environment, and what
# a library user of the crate gets) is the same source at other compiler flags.
#
# Usage: scripts/rocksdb.sh fetch   fetch and unpack it once into
#                                   ~/.cache/statestore/rocksdb/<version>; exit 3 where
#                                   no build is published for this platform
#        scripts/rocksdb.sh env     the exports, for `eval "$(scripts/rocksdb.sh env)"`
#        scripts/rocksdb.sh version the RocksDB version Cargo.lock binds
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ROCKSDB_CACHE:-$HOME/.cache/statestore/rocksdb}"
DEPENDENCY_PLUGIN_VERSION=3.8.1

log() { echo "rocksdb.sh [${SECONDS}s]: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# The RocksDB release `librocksdb-sys` in Cargo.lock binds: its version's build metadata.
rocksdb_version() {
  local version
  version="$(awk '/^name = "librocksdb-sys"$/ { getline; print; exit }' Cargo.lock |
    sed -n 's/^version = "[^+]*+\([0-9.]*\)"$/\1/p')"
  [[ -n $version ]] || die "Cargo.lock names no librocksdb-sys version with a +<rocksdb version>"
  echo "$version"
}

# The name of this platform's library inside the jar; empty where none is published.
platform_library() {
  [[ $(uname -s) == Linux ]] || return 0
  # The glibc builds; musl systems need the -musl ones, which this does not choose.
  ldd --version 2>&1 | grep -qi musl && return 0
  case "$(uname -m)" in
    x86_64) echo librocksdbjni-linux64.so ;;
    aarch64) echo librocksdbjni-linux-aarch64.so ;;
  esac
}

cmd_fetch() {
  local version library dir
  version="$(rocksdb_version)"
  library="$(platform_library)"
  if [[ -z $library ]]; then
    log "no prebuilt RocksDB for $(uname -s) $(uname -m); cargo builds it from source"
    exit 3
  fi
  dir="$CACHE/$version"
  if [[ -f $dir/.complete ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch org.rocksdb:rocksdbjni"
  rm -rf "$dir"
  mkdir -p "$dir/lib"
  log "fetching org.rocksdb:rocksdbjni:$version through Maven (about 90 MB, once)"
  mvn -q -B "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN_VERSION:copy" \
    -Dartifact="org.rocksdb:rocksdbjni:$version" -DoutputDirectory="$dir" ||
    die "Maven could not fetch org.rocksdb:rocksdbjni:$version"
  local jar="$dir/rocksdbjni-$version.jar"
  python3 - "$jar" "$library" "$dir/lib/librocksdb.so" <<'EOF' || die "unpacking $library from $jar failed"
import shutil, sys, zipfile
jar, member, target = sys.argv[1:]
with zipfile.ZipFile(jar) as archive, archive.open(member) as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  rm -f "$jar"
  # The bindings call the C API; a library without it would fail only at link time.
  if command -v nm >/dev/null; then
    # (grep reads everything: an early exit would fail nm's write under pipefail.)
    nm -D --defined-only "$dir/lib/librocksdb.so" | grep -c ' T rocksdb_checkpoint_create$' >/dev/null ||
      die "$library of rocksdbjni $version does not export RocksDB's C API"
  fi
  touch "$dir/.complete"
  log "RocksDB $version in $dir/lib"
}

cmd_env() {
  local dir
  dir="$CACHE/$(rocksdb_version)"
  [[ -f $dir/.complete ]] || die "no prebuilt RocksDB in $dir: run scripts/rocksdb.sh fetch"
  echo "export ROCKSDB_LIB_DIR=$dir/lib"
  echo "export LD_LIBRARY_PATH=$dir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  env) cmd_env ;;
  version) rocksdb_version ;;
  *)
    echo "usage: scripts/rocksdb.sh fetch|env|version" >&2
    exit 2
    ;;
esac
