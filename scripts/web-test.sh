#!/usr/bin/env bash
# End-to-end test of the web app in a real browser: starts BIN (a built `shutter`) on a free
# port with a fresh data directory, then runs tests/web/e2e.mjs (playwright-core driving
# Debian's chromium, headless; no browser download). The app under test is the one embedded
# in BIN (no server.web_dir), so this proves what ships.
#
#   scripts/web-test.sh target/debug/shutter
#   scripts/web-test.sh --update-docs target/debug/shutter   # also refresh docs/web-app.png
#
# Screenshots of the main pages go to target/web-screenshots/ (SHUTTER_WEB_SCREENSHOTS).
# Needs node (20+), npm and chromium (CHROMIUM, default /usr/bin/chromium). Exits non-zero on
# any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

update_docs="${SHUTTER_WEB_UPDATE_DOCS:-0}"
if [ "${1:-}" = "--update-docs" ]; then
  update_docs=1
  shift
fi
bin="${1:-}"
if [ -z "$bin" ]; then
  echo "usage: scripts/web-test.sh [--update-docs] BIN   (BIN: a built shutter binary)" >&2
  exit 2
fi
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable shutter binary" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
command -v node >/dev/null 2>&1 || { echo "FAIL: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "FAIL: npm is not installed (apt-get install npm)" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "FAIL: chromium is not installed at $CHROMIUM (apt-get install chromium)" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "FAIL: node $node_major is too old (playwright-core needs 20 or newer)" >&2; exit 1; }

testdata="${SHUTTER_TESTDATA:-$root/../shared/testdata}"
[ -d "$testdata/photos" ] || { echo "FAIL: the test photos are missing ($testdata/photos)" >&2; exit 1; }
export SHUTTER_TESTDATA="$testdata"

# playwright-core, as the lock file pins it (again when the lock file changed).
web="$root/tests/web"
stamp="$web/node_modules/.package-lock.json"
if [ ! -d "$web/node_modules/playwright-core" ] || [ "$web/package-lock.json" -nt "$stamp" ]; then
  echo "== npm ci (tests/web)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi

shots="${SHUTTER_WEB_SCREENSHOTS:-$root/target/web-screenshots}"
mkdir -p "$shots"
export SHUTTER_WEB_SCREENSHOTS="$shots"

data="$(mktemp -d)"
log="$data/server.log"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
  || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

# A 3 MiB basic quota (the quota scenario uploads 4 MiB), 30 s access tokens (the app must
# refresh during the run), rate limits off.
access_ttl=30
echo "== starting $bin on $base (data in $data)"
env -u SHUTTER_SERVER__WEB_DIR \
  SHUTTER_DATA_DIR="$data" \
  SHUTTER_SERVER__LISTEN="127.0.0.1:$port" \
  SHUTTER_RATE_LIMITS__ENABLED=false \
  SHUTTER_TIERS__BASIC__STORAGE_QUOTA=3MiB \
  SHUTTER_AUTH__ACCESS_TOKEN_TTL="${access_ttl}s" \
  SHUTTER_LOG__FORMAT=json \
  "$bin" serve >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: the server exited during start; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  if node -e "fetch('$base/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
node -e "fetch('$base/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" \
  || { echo "FAIL: $base/healthz did not answer within 60 s; server log:" >&2; cat "$log" >&2; exit 1; }

echo "== tests/web/e2e.mjs against $base (chromium: $("$CHROMIUM" --version 2>/dev/null | head -1))"
start=$(date +%s)
status=0
SHUTTER_WEB_BASE_URL="$base" SHUTTER_WEB_ACCESS_TTL_SECS="$access_ttl" \
  node --test-reporter=spec "$web/e2e.mjs" || status=$?
echo "== web test took $(( $(date +%s) - start )) s; screenshots in $shots"

if [ "$status" -ne 0 ]; then
  echo "FAIL: the web app test failed (exit $status); last lines of the server log:" >&2
  tail -n 40 "$log" >&2
  exit "$status"
fi

if [ "$update_docs" = 1 ]; then
  mkdir -p "$root/docs"
  cp "$shots/feed-liked.png" "$root/docs/web-app.png"
  echo "== copied $shots/feed-liked.png (the home feed) to docs/web-app.png"
fi
