#!/usr/bin/env bash
# Starts a local S3 server (s3s-fs: a real S3 API over a directory, checking SigV4
# signatures and expiry) for the tests and the benchmark, installing it first if missing.
# It runs as tools/s3s-fs-nodelay: s3s-fs's API and storage with TCP_NODELAY on its
# connections, as real S3 servers answer, patched where the stock server was the bottleneck of
# Shutter's S3 benchmarks (see its PATCHES.md).
#
#   eval "$(scripts/s3-server.sh start)"   # exports SHUTTER_TEST_S3_* and S3_SERVER_PID
#   scripts/s3-server.sh stop              # stops the one started from this checkout
#
# The data lives in a temporary directory; buckets are made by the tests (CreateBucket).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL="$ROOT/tools/s3s-fs-nodelay"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$TOOL/Cargo.toml" | head -1)"
ACCESS_KEY=shutter-test
SECRET_KEY=shutter-test-secret-key
STATE="${TMPDIR:-/tmp}/shutter-s3-server.$(id -u).$(printf %s "$PWD" | cksum | cut -d' ' -f1)"

log() { echo "$*" >&2; }

binary() {
  command -v s3s-fs-nodelay 2>/dev/null || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs-nodelay"
}

# Installed when missing or of another version (bump the tool's version when changing it).
install() {
  local bin
  bin="$(binary)"
  if [ "$("$bin" --version 2>/dev/null)" != "s3s-fs-nodelay $VERSION" ]; then
    log "installing s3s-fs-nodelay $VERSION (about 90 s)"
    cargo install --path "$TOOL" --locked --quiet >&2
    bin="$(binary)"
  fi
  echo "$bin"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local bin port root pid
  bin="$(install)"
  port="$(free_port)"
  root="$(mktemp -d "${TMPDIR:-/tmp}/shutter-s3.XXXXXX")"
  "$bin" --host 127.0.0.1 --port "$port" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
    "$root" >"$root.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s %s\n' "$pid" "$root" >"$STATE"
      log "s3s-fs answering at http://127.0.0.1:$port (pid $pid, data $root)"
      echo "export SHUTTER_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
      echo "export SHUTTER_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
      echo "export SHUTTER_TEST_S3_SECRET_KEY=$SECRET_KEY"
      echo "export S3_SERVER_PID=$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  log "FAIL: s3s-fs did not start; its log:"
  cat "$root.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  return 1
}

stop() {
  [ -f "$STATE" ] || return 0
  local pid root
  read -r pid root <"$STATE"
  kill "$pid" 2>/dev/null || true
  rm -rf "$root" "$root.log" "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  install) install >/dev/null ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
