#!/usr/bin/env bash
# The whole test suite in one command, from a fresh Debian machine with Rust and Java:
#  1. installs the system packages the build and the brokers need (apt; root or sudo),
#  2. fetches Apache Kafka and RocksDB's release build through Maven (scripts/kafka.sh,
#     scripts/rocksdb.sh; STATESTORE_ROCKSDB=source compiles RocksDB instead), starts the
#     single broker and the three-broker cluster on 127.0.0.1 (scripts/kafka.sh), builds
#     (once, cached) and starts the SeaweedFS S3 server on 127.0.0.1 (scripts/s3.sh),
#  3. checks formatting, that state-core depends on no engine or Kafka client, clippy, and
#     the facade's docs with every feature (broken links are errors),
#  4. runs every test binary and the doc tests (scripts/run-tests.py), then the example,
#  5. stops the brokers and the S3 server it started, whatever happened.
# Builds into $CARGO_TARGET_DIR, by default the repository's target/ that
# `cargo run -p statestore-cli -- demo` uses too, so neither compiles what the other did.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test.sh [${SECONDS}s]: $*" >&2; }

# --- system packages ----------------------------------------------------------------
# RocksDB's bindgen needs libclang; librdkafka's bundled build needs a C toolchain, make,
# perl and zlib headers; the restore measurements need GNU time; the brokers need Java 17
# and Maven to fetch themselves.
# The S3 server is built from source with Go; Debian's golang-go only when there is no Go
# at all (it is too old to build SeaweedFS itself: see "Go" below).
packages=(build-essential pkg-config cmake perl python3 libclang-dev zlib1g-dev time
  openjdk-17-jre-headless maven curl)
if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]]; then
  packages+=(golang-go)
fi
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# A JDK and Maven from elsewhere serve as well as Debian's.
if command -v java >/dev/null && command -v mvn >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do
    [[ $pkg == openjdk-17-jre-headless || $pkg == maven ]] || filtered+=("$pkg")
  done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  if ((EUID == 0)); then
    apt=(apt-get)
  elif command -v sudo >/dev/null; then
    apt=(sudo apt-get)
  else
    echo "test.sh: missing packages: ${missing[*]}; install them (apt-get install ...) and run again" >&2
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null
fi

# --- Rust ---------------------------------------------------------------------------
if ! command -v cargo >/dev/null; then
  if [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
  fi
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
export PROPTEST_CASES="${PROPTEST_CASES:-256}"

# --- Go -----------------------------------------------------------------------------
# scripts/s3.sh builds SeaweedFS with Go 1.26.6 or newer. An older Go (Debian 12 has
# 1.19) fetches the Go 1.26.8 toolchain as the module golang.org/toolchain through the Go
# module proxy into the project's Go cache (~5 s, once), where s3.sh finds it first.
GO_TOOLCHAIN=v0.0.1-go1.26.8.linux-amd64
go_bin="$(command -v go || echo /usr/local/go/bin/go)"
go_version="$("$go_bin" env GOVERSION 2>/dev/null || "$go_bin" version | awk '{print $3}')"
if [[ "$(printf '%s\n' go1.26.6 "$go_version" | sort -V | head -n1)" != go1.26.6 ]]; then
  go_cache="$HOME/.cache/statestore/go"
  toolchain="$go_cache/pkg/mod/golang.org/toolchain@$GO_TOOLCHAIN"
  if [[ ! -x $toolchain/bin/go ]]; then
    log "$go_version is too old for SeaweedFS; fetching golang.org/toolchain@$GO_TOOLCHAIN"
    (cd /tmp && GOPATH="$go_cache" GOMODCACHE="$go_cache/pkg/mod" GOFLAGS=-modcacherw \
      GOTOOLCHAIN=local "$go_bin" mod download "golang.org/toolchain@$GO_TOOLCHAIN")
    # Module zips keep no permissions; the go command sets them when it switches itself.
    chmod +x "$toolchain"/bin/* "$toolchain"/pkg/tool/*/*
  fi
  export PATH="$toolchain/bin:$PATH"
fi

# --- Kafka --------------------------------------------------------------------------
log "fetching Kafka (cached in \$HOME/.cache/statestore/kafka)"
bash scripts/kafka.sh fetch

# --- RocksDB ------------------------------------------------------------------------
# Linked by default: RocksDB's own release build of the version the bindings are
# generated for, from Maven (scripts/rocksdb.sh, ~28 minutes less than compiling its C++ on
# 2 cores). STATESTORE_ROCKSDB=source compiles it, as a library user's `cargo build` does;
# a platform the release has no build for falls back to that.
STATESTORE_ROCKSDB="${STATESTORE_ROCKSDB:-prebuilt}"
if [[ $STATESTORE_ROCKSDB == prebuilt ]]; then
  log "fetching RocksDB's release build (cached in \$HOME/.cache/statestore/rocksdb)"
  rocksdb_status=0
  bash scripts/rocksdb.sh fetch || rocksdb_status=$?
  case $rocksdb_status in
    0) eval "$(bash scripts/rocksdb.sh env)" ;;
    3) log "no RocksDB build for this platform: cargo compiles its C++ (~28 minutes on 2 cores)" ;;
    *) exit "$rocksdb_status" ;;
  esac
elif [[ $STATESTORE_ROCKSDB != source ]]; then
  echo "test.sh: STATESTORE_ROCKSDB is '$STATESTORE_ROCKSDB'; use prebuilt (the default) or source" >&2
  exit 2
fi
# SeaweedFS: built once into ~/.cache/statestore/seaweedfs (about 4 min from empty caches
# on 2 cores), then a no-op.
log "building the S3 server (SeaweedFS; cached in \$HOME/.cache/statestore/seaweedfs)"
bash scripts/s3.sh fetch
cleanup() {
  bash scripts/kafka.sh stop all || true
  bash scripts/s3.sh stop || true
}
trap cleanup EXIT
log "starting the single broker and the three-broker cluster"
bash scripts/kafka.sh start all
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
export KAFKA_CLUSTER_BOOTSTRAP_SERVERS=127.0.0.1:9192,127.0.0.1:9292,127.0.0.1:9392
log "starting the S3 server"
# Its exports: S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, S3_BUCKET,
# AWS_ALLOW_HTTP (test credentials for a server on 127.0.0.1 only).
# (An assignment, so a failed start stops the script: `eval "$(...)"` would not.)
s3_env="$(bash scripts/s3.sh start)"
eval "$s3_env"

# --- static checks ------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all --check

log "state-core must not depend on any engine or Kafka client"
if cargo tree -p state-core -e normal,build --prefix none | grep -E '^(dashmap|rocksdb|librocksdb-sys|redb|rdkafka|rdkafka-sys) '; then
  echo "test.sh: state-core depends on an engine or Kafka client (see above)" >&2
  exit 1
fi

log "cargo clippy (the first run compiles librdkafka, aws-lc, and RocksDB's C++ when built from source)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

# The docs a user reads: every feature's modules, no broken intra-doc link (the facade
# denies them) and no other rustdoc warning. ~10 s after clippy.
log "cargo doc -p statestore --all-features (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p statestore --all-features --no-deps

# --- tests --------------------------------------------------------------------------
log "tests (PROPTEST_CASES=$PROPTEST_CASES)"
python3 scripts/run-tests.py

log "the rewards example"
cargo run -q -p statestore --example rewards
log "done"
