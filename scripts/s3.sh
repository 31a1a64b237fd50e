#!/usr/bin/env bash
# A real S3-compatible server (SeaweedFS `weed mini`) on 127.0.0.1 for
# statestore's object-storage tests.
#
# No docker and no download site is reachable on the project's machines, only
# package registries, so SeaweedFS is built from source fetched through the Go
# module proxy. `go install .../weed@version` is refused because SeaweedFS's
# go.mod has replace directives, so `fetch` downloads the pinned module with
# `go mod download` and runs `go build` inside it, where go.mod's replace
# directives apply.
#
# Cost of the first `fetch`, from an empty Go build cache and an empty module
# cache on this project's 2-core machine (load average about 4 from other
# work): 4 min 17 s, of which 18 s download 247 modules and 3 min 59 s compile
# (6 min 24 s of CPU); under heavier load it once took 10 min. It leaves a
# 164 MB binary and a 2.1 GB module cache (475 MB of it zips); the 1.8 GB
# build cache is deleted. Later `fetch`es do nothing.
#
# One server, every listener on 127.0.0.1, every port pinned (SeaweedFS moves
# a busy default port elsewhere, and even a busy explicit gRPC port, so `start`
# checks them all first and refuses to start rather than let one move):
#   S3 API 8333 (its gRPC 18333)   master 8330 (18330)   volume 8331 (18331)
#   filer 8332 (18332)             admin 8334 (its worker gRPC 18334)
# WebDAV, the Iceberg and Lance catalogs, the admin UI's legacy port, metrics
# and pprof are off. None of these is a Kafka port (9092/9093, 9192/9193,
# 9292/9293, 9392/9393), and all are below the kernel's ephemeral range
# (32768+), where an outgoing connection could take one first.
#
# Usage: scripts/s3.sh fetch
#        scripts/s3.sh start     (then prints what `env` prints)
#        scripts/s3.sh stop
#        scripts/s3.sh status
#        scripts/s3.sh env       (the exports; eval "$(scripts/s3.sh env)")
# See scripts/README-s3.md.
set -euo pipefail

# SeaweedFS 4.53 (commit 7506e5f91cd6). SeaweedFS's tags are not semver, so
# the module proxy knows its commits only by pseudo-version.
SEAWEEDFS_MODULE="github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"

S3_CACHE="${S3_CACHE:-$HOME/.cache/statestore/seaweedfs}"
# Go's module cache (and checksum-database cache) lives beside the other
# project caches rather than in the default ~/go: one directory,
# ~/.cache/statestore, then holds all that the test servers need, so a CI
# cache saves it whole and deleting it really gives a fresh machine, and a
# developer's own Go module cache neither fills with SeaweedFS's 2 GB of
# dependencies nor, by a `go clean -modcache`, loses them.
S3_GOPATH="${S3_GOPATH:-$HOME/.cache/statestore/go}"
S3_STATE="${S3_STATE:-$HOME/.cache/statestore/s3-state}"
S3_KEEP_DATA="${S3_KEEP_DATA:-0}"
START_TIMEOUT_S="${S3_START_TIMEOUT:-60}"
# weed shuts down in about a second on SIGTERM; the deadline covers a slow disk.
STOP_TIMEOUT_S="${S3_STOP_TIMEOUT:-20}"

# Test credentials, not secrets: the server only listens on 127.0.0.1.
ACCESS_KEY="${S3_ACCESS_KEY_ID:-statestore-test}"
SECRET_KEY="${S3_SECRET_ACCESS_KEY:-statestore-test-secret}"
# SeaweedFS accepts any region in a signature; us-east-1 is object_store's default.
REGION="${S3_REGION:-us-east-1}"
# Comma- or space-separated; the first is exported as S3_BUCKET.
BUCKETS="${S3_BUCKETS:-statestore-tests}"

S3_PORT=8333
MASTER_PORT=8330
VOLUME_PORT=8331
FILER_PORT=8332
ADMIN_PORT=8334
GRPC_OFFSET=10000
ENDPOINT="http://127.0.0.1:$S3_PORT"

VERSION_DIR="$S3_CACHE/$SEAWEEDFS_VERSION"
WEED="$VERSION_DIR/weed"
FETCH_MARKER="$VERSION_DIR/.complete"
DATA_DIR="$S3_STATE/data"
PID_FILE="$S3_STATE/weed.pid"
LOG_FILE="$S3_STATE/weed.log"

log() { echo "s3.sh [${SECONDS}s]: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---------------------------------------------------------------- fetch ----

find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    return 1
  fi
}

cmd_fetch() {
  local go moddir gocache started
  if [[ -f "$FETCH_MARKER" && -x "$WEED" ]]; then
    log "SeaweedFS $SEAWEEDFS_VERSION already built: $WEED"
    return 0
  fi
  go="$(find_go)" || die "go not found (on PATH or /usr/local/go/bin); SeaweedFS is built from source"
  mkdir -p "$VERSION_DIR"
  # -modcacherw: the module cache is read-only by default, which makes a plain
  # `rm -rf ~/.cache/statestore` fail. GOFLAGS is set, not added to, so a
  # caller's -mod=vendor or similar cannot leak into this build. A toolchain
  # older than SeaweedFS's go.mod asks for fails clearly rather than being
  # fetched behind the caller's back (GOTOOLCHAIN=auto overrides that).
  export GOPATH="$S3_GOPATH" GOMODCACHE="$S3_GOPATH/pkg/mod" GOFLAGS=-modcacherw \
    GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  started=$SECONDS
  log "downloading $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION with $("$go" version)"
  moddir="$("$go" mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" ||
    die "go mod download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION failed (see above)"
  [[ -f "$moddir/go.mod" ]] || die "go mod download gave no module directory (got '$moddir')"
  # A private build cache, deleted once weed is built: it would keep about
  # 1.8 GB that only a rebuild of this same version could use. An interrupted
  # build keeps it, so a retry resumes.
  gocache="$VERSION_DIR/go-build.partial"
  log "downloading the modules weed imports"
  (cd "$moddir" && GOCACHE="$gocache" "$go" list -deps ./weed >/dev/null) ||
    die "resolving weed's dependencies failed (see above)"
  log "dependencies downloaded after $((SECONDS - started))s; building weed (several minutes)"
  # -s -w drop the symbol table and DWARF: 164 MB instead of 233 MB, and the
  # link takes half as long. -trimpath keeps local paths out of the binary.
  (cd "$moddir" && GOCACHE="$gocache" "$go" build -trimpath -ldflags="-s -w" \
    -o "$VERSION_DIR/weed.partial" ./weed) || die "go build of weed failed (see above)"
  mv "$VERSION_DIR/weed.partial" "$WEED"
  touch "$FETCH_MARKER"
  rm -rf "$gocache"
  log "built $WEED ($(du -m "$WEED" | cut -f1) MB) in $((SECONDS - started))s"
}

# ---------------------------------------------------------------- server ----

# Every port the server listens on, HTTP and gRPC.
all_ports() {
  local p
  for p in "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT"; do
    echo "$p" "$((p + GRPC_OFFSET))"
  done
}

weed_args() {
  WEED_ARGS=(
    # All logging to stderr, i.e. to weed.log: glog would otherwise write
    # files into /tmp.
    -logtostderr
    mini
    -dir="$DATA_DIR"
    -ip=127.0.0.1 -ip.bind=127.0.0.1
    -s3.port="$S3_PORT" -s3.port.grpc="$((S3_PORT + GRPC_OFFSET))"
    -master.port="$MASTER_PORT" -master.port.grpc="$((MASTER_PORT + GRPC_OFFSET))"
    -volume.port="$VOLUME_PORT" -volume.port.grpc="$((VOLUME_PORT + GRPC_OFFSET))"
    -filer.port="$FILER_PORT" -filer.port.grpc="$((FILER_PORT + GRPC_OFFSET))"
    # The admin server always runs in mini (its worker does maintenance);
    # only its UI can be turned off.
    -admin.port="$ADMIN_PORT" -admin.port.grpc="$((ADMIN_PORT + GRPC_OFFSET))"
    -admin.port.legacy=0 -admin.ui=false
    -webdav=false -s3.port.iceberg=0 -s3.port.lance=0
    # Unix sockets beside the data rather than in /tmp. (The gRPC services'
    # sockets are always /tmp/seaweedfs-<service>-grpc-<port>.sock.)
    -filer.localSocket="$S3_STATE/filer.sock" -s3.localSocket="$S3_STATE/s3.sock"
    # AWS answers NoSuchBucket for a put into a missing bucket; SeaweedFS
    # would create the bucket unless told not to.
    -s3.autoCreateBucket=false
    # The same volume size on every machine (mini derives it from the disk's
    # size otherwise, 64 MB to 1 GB).
    -master.volumeSizeLimitMB=256
    -master.telemetry=false
  )
}

# Prints the PID of the running server and succeeds, or fails. A PID counts
# only when its command line is weed itself serving this data dir, so a stale
# pid file whose PID was reused is never signalled, and neither are setsid or
# nohup, which exec into weed with the same arguments.
running_pid() {
  local pid cmdline
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmdline" == */weed\ * && "$cmdline" == *" mini "* && "$cmdline" == *" -dir=$DATA_DIR "* ]] ||
    return 1
  echo "$pid"
}

# Succeeds when the process the pid file names is gone or a zombie: the test
# for a server that died while starting, which must not mistake a command
# line caught mid-exec for an exit.
launched_process_gone() {
  local pid state
  [[ -f "$PID_FILE" ]] || return 0
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || state=""
  [[ -z "$state" || "$state" == Z ]]
}

port_open() {
  # Subshell so the probe's file descriptor is closed right away.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

print_log_tail() {
  log "---- last 40 lines of $LOG_FILE ----"
  tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
}

# Prints the HTTP status of a SigV4-signed request: s3_request METHOD PATH
# [SECRET]. The credentials go to curl through its config on stdin, not its
# command line, where every process could read them.
s3_request() {
  local secret="${3:-$SECRET_KEY}" method=(-X "$1")
  # curl -X HEAD would wait for the body that Content-Length announces.
  [[ "$1" != HEAD ]] || method=(--head)
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${method[@]}" \
    --aws-sigv4 "aws:amz:$REGION:s3" -K - "$ENDPOINT$2" <<<"user = \"$ACCESS_KEY:$secret\"" ||
    true
}

launch() {
  local p busy=() pid exec_deadline
  for p in $(all_ports); do port_open "$p" && busy+=("$p"); done
  ((${#busy[@]} == 0)) || die "port(s) ${busy[*]} on 127.0.0.1 in use by a process s3.sh did not start"
  weed_args
  mkdir -p "$DATA_DIR"
  echo "=== s3.sh: starting SeaweedFS $SEAWEEDFS_VERSION at $(date -Is)" >>"$LOG_FILE"
  # The subshell execs into setsid, nohup and weed, so $! is weed's PID.
  # setsid: its own session, so a Ctrl-C aimed at the caller's process group
  # does not take the server down. The working directory is the state dir,
  # since weed reads *.toml from it; S3_BUCKET would make mini create that
  # bucket itself and WEED_* variables would reconfigure it, so neither leaks
  # in from the caller.
  (
    cd "$S3_STATE"
    unset S3_BUCKET S3_TABLE_BUCKET S3_EXTERNAL_URL
    while read -r p; do unset "$p"; done < <(compgen -e | grep '^WEED_' || true)
    export AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
    exec setsid nohup "$WEED" "${WEED_ARGS[@]}" >>"$LOG_FILE" 2>&1 </dev/null
  ) &
  pid=$!
  echo "$pid" >"$PID_FILE"
  exec_deadline=$((SECONDS + 10))
  until running_pid >/dev/null; do
    if launched_process_gone || ((SECONDS >= exec_deadline)); then
      print_log_tail
      die "SeaweedFS (pid $pid) did not start weed"
    fi
    sleep 0.05 # poll interval, not synchronisation
  done
  log "SeaweedFS started (pid $pid, S3 on $ENDPOINT)"
}

# Polls until an authenticated S3 request succeeds, then checks that every
# pinned port is the server's and that a wrong secret is refused.
wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT_S)) p code missing=()
  until code="$(s3_request GET /)" && [[ "$code" == 200 ]]; do
    if launched_process_gone; then
      print_log_tail
      die "SeaweedFS exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      print_log_tail
      # A 403 from a server that runs already means other credentials.
      die "no authenticated S3 request succeeded within ${START_TIMEOUT_S}s (last: HTTP $code)"
    fi
    sleep 0.2 # poll interval, not synchronisation
  done
  for p in $(all_ports); do port_open "$p" || missing+=("$p"); done
  # The admin and its worker port come up last; give them the same deadline.
  while ((${#missing[@]} > 0)) && ((SECONDS < deadline)); do
    sleep 0.2 # poll interval, not synchronisation
    local still=()
    for p in "${missing[@]}"; do port_open "$p" || still+=("$p"); done
    missing=("${still[@]+"${still[@]}"}")
  done
  ((${#missing[@]} == 0)) || die "SeaweedFS does not listen on pinned port(s) ${missing[*]}"
  code="$(s3_request GET / "wrong-$SECRET_KEY")"
  [[ "$code" == 403 ]] || die "a request with a wrong secret got HTTP $code, not 403: authentication is off"
}

# Creates each bucket unless it exists (kept data, or a server already running).
ensure_buckets() {
  local bucket code names
  read -ra names <<<"${BUCKETS//,/ }"
  ((${#names[@]} > 0)) || die "S3_BUCKETS names no bucket"
  for bucket in "${names[@]}"; do
    code="$(s3_request PUT "/$bucket")"
    # 409 is BucketAlreadyOwnedByYou: the only 409 our own admin key can get.
    [[ "$code" == 200 || "$code" == 409 ]] || die "creating bucket $bucket got HTTP $code"
    code="$(s3_request HEAD "/$bucket")"
    [[ "$code" == 200 ]] || die "bucket $bucket does not answer HEAD (HTTP $code)"
  done
  log "bucket(s) ready: ${names[*]}"
}

# ------------------------------------------------------------- commands ----

cmd_env() {
  local first
  read -r first _ <<<"${BUCKETS//,/ }"
  printf 'export %s=%q\n' \
    S3_ENDPOINT "$ENDPOINT" \
    AWS_ACCESS_KEY_ID "$ACCESS_KEY" \
    AWS_SECRET_ACCESS_KEY "$SECRET_KEY" \
    AWS_REGION "$REGION" \
    S3_BUCKET "$first" \
    AWS_ALLOW_HTTP true
}

cmd_start() {
  local pid
  command -v curl >/dev/null || die "curl not found (readiness and buckets use curl --aws-sigv4)"
  mkdir -p "$S3_STATE"
  cmd_fetch
  if pid="$(running_pid)"; then
    log "SeaweedFS already running (pid $pid)"
  else
    rm -f "$PID_FILE"
    if [[ "$S3_KEEP_DATA" != 1 ]]; then
      rm -rf "$DATA_DIR"
      : >"$LOG_FILE"
    fi
    launch
  fi
  # Already-running servers are checked too: "start" promises a usable one.
  wait_ready
  ensure_buckets
  log "ready"
  cmd_env
}

cmd_stop() {
  local pid deadline service
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "SeaweedFS not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  log "SIGTERM sent to pid $pid"
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while running_pid >/dev/null && ((SECONDS < deadline)); do
    sleep 0.1 # poll interval, not synchronisation
  done
  if running_pid >/dev/null; then
    log "still running after ${STOP_TIMEOUT_S}s, SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while running_pid >/dev/null && ((SECONDS < deadline)); do
      sleep 0.1 # poll interval, not synchronisation
    done
    ! running_pid >/dev/null || die "pid $pid still running after SIGKILL"
    # A killed weed leaves its gRPC sockets behind (the next start would
    # replace them); the names carry our ports, so they are ours.
    for service in "master:$MASTER_PORT" "volume:$VOLUME_PORT" "filer:$FILER_PORT" \
      "s3:$S3_PORT" "admin:$ADMIN_PORT"; do
      rm -f "/tmp/seaweedfs-${service%%:*}-grpc-$((${service##*:} + GRPC_OFFSET)).sock"
    done
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

# Exit 0 only when the server runs and answers an authenticated request.
cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if [[ "$(s3_request GET /)" == 200 ]]; then
      printf 'seaweedfs  running  pid %-8s %s\n' "$pid" "$ENDPOINT"
    else
      printf 'seaweedfs  running  pid %-8s %s (S3 does not answer yet)\n' "$pid" "$ENDPOINT"
      return 1
    fi
  else
    printf 'seaweedfs  stopped  %-12s %s\n' "" "$ENDPOINT"
    return 1
  fi
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
      sed -n '2,34p' "$0" >&2
      exit 2
      ;;
  esac
}

main "$@"
