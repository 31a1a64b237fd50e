#!/usr/bin/env bash
# The whole test suite in one command, from a fresh Debian machine with Rust and Java:
#  1. installs the system packages the build and the brokers need (apt; root or sudo),
#  2. fetches Apache Kafka through Maven and starts the single broker and the
#     three-broker cluster on 127.0.0.1 (scripts/kafka.sh),
#  3. checks formatting, that state-core depends on no engine or Kafka client, and clippy,
#  4. runs every test binary and the doc tests (scripts/run-tests.py), then the example,
#  5. stops the brokers it started, whatever happened.
# Builds into $CARGO_TARGET_DIR, by default the repository's target/ that
# `cargo run -p statestore-cli -- demo` uses too, so neither compiles what the other did.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test.sh [${SECONDS}s]: $*" >&2; }

# --- system packages ----------------------------------------------------------------
# RocksDB's bindgen needs libclang; librdkafka's bundled build needs a C toolchain, make,
# perl and zlib headers; the restore measurements need GNU time; the brokers need Java 17
# and Maven to fetch themselves.
packages=(build-essential pkg-config cmake perl python3 libclang-dev zlib1g-dev time
  openjdk-17-jre-headless maven curl)
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

# --- Kafka --------------------------------------------------------------------------
log "fetching Kafka (cached in \$HOME/.cache/statestore/kafka)"
bash scripts/kafka.sh fetch
cleanup() { bash scripts/kafka.sh stop all || true; }
trap cleanup EXIT
log "starting the single broker and the three-broker cluster"
bash scripts/kafka.sh start all
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
export KAFKA_CLUSTER_BOOTSTRAP_SERVERS=127.0.0.1:9192,127.0.0.1:9292,127.0.0.1:9392

# --- static checks ------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all --check

log "state-core must not depend on any engine or Kafka client"
if cargo tree -p state-core -e normal,build --prefix none | grep -E '^(dashmap|rocksdb|librocksdb-sys|redb|rdkafka|rdkafka-sys) '; then
  echo "test.sh: state-core depends on an engine or Kafka client (see above)" >&2
  exit 1
fi

log "cargo clippy (the first run compiles RocksDB's C++: ~25 minutes on 2 cores)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

# --- tests --------------------------------------------------------------------------
log "tests (PROPTEST_CASES=$PROPTEST_CASES)"
python3 scripts/run-tests.py

log "the rewards example"
cargo run -q -p statestore --example rewards
log "done"
