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
# SHUTTER_WEB_TEST_BACKENDS picks the server's backends: `sqlite+local` (the default: the
# embedded default in the fresh data directory) or `postgres+s3` (a fresh database on
# SHUTTER_TEST_POSTGRES_URL's server, dropped afterwards, and a fresh bucket on the S3 server
# that SHUTTER_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY name; needs psql and boto3).
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

backends="${SHUTTER_WEB_TEST_BACKENDS:-sqlite+local}"
case "$backends" in
  sqlite+local) default_shots="$root/target/web-screenshots" ;;
  postgres+s3) default_shots="$root/target/web-screenshots/postgres+s3" ;;
  *) echo "FAIL: SHUTTER_WEB_TEST_BACKENDS=$backends: expected sqlite+local or postgres+s3" >&2; exit 2 ;;
esac
shots="${SHUTTER_WEB_SCREENSHOTS:-$default_shots}"
mkdir -p "$shots"
export SHUTTER_WEB_SCREENSHOTS="$shots"

data="$(mktemp -d)"
log="$data/server.log"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
  || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"
pid=""
database=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -n "$database" ]; then
    psql -q "$SHUTTER_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

# The backends: nothing to add for the embedded default; a fresh database and bucket else.
backend_env=()
if [ "$backends" = "postgres+s3" ]; then
  for var in SHUTTER_TEST_POSTGRES_URL SHUTTER_TEST_S3_ENDPOINT SHUTTER_TEST_S3_ACCESS_KEY SHUTTER_TEST_S3_SECRET_KEY; do
    [ -n "${!var:-}" ] || { echo "FAIL: postgres+s3 needs $var (.ci/run sets it; scripts/s3-server.sh start prints the S3 ones)" >&2; exit 1; }
  done
  command -v psql >/dev/null 2>&1 || { echo "FAIL: psql is needed to create the test database" >&2; exit 1; }
  suffix="$(date +%s)-$$"
  database="web_e2e_${suffix//-/_}"
  psql -q -v ON_ERROR_STOP=1 "$SHUTTER_TEST_POSTGRES_URL" -c "CREATE DATABASE $database" >/dev/null \
    || { echo "FAIL: cannot create database $database on $SHUTTER_TEST_POSTGRES_URL" >&2; database=""; exit 1; }
  database_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$SHUTTER_TEST_POSTGRES_URL" "$database")"
  bucket="web-e2e-$suffix"
  python3 - "$bucket" <<'PY' || { echo "FAIL: cannot create bucket $bucket on $SHUTTER_TEST_S3_ENDPOINT" >&2; exit 1; }
import os, sys
import boto3
from botocore.config import Config
boto3.client(
    "s3",
    endpoint_url=os.environ["SHUTTER_TEST_S3_ENDPOINT"],
    aws_access_key_id=os.environ["SHUTTER_TEST_S3_ACCESS_KEY"],
    aws_secret_access_key=os.environ["SHUTTER_TEST_S3_SECRET_KEY"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}),
).create_bucket(Bucket=sys.argv[1])
PY
  backend_env=(
    SHUTTER_DATABASE__URL="$database_url"
    SHUTTER_STORAGE__BACKEND=s3
    SHUTTER_STORAGE__S3__ENDPOINT="$SHUTTER_TEST_S3_ENDPOINT"
    SHUTTER_STORAGE__S3__BUCKET="$bucket"
    SHUTTER_STORAGE__S3__REGION=us-east-1
    SHUTTER_STORAGE__S3__ACCESS_KEY="$SHUTTER_TEST_S3_ACCESS_KEY"
    SHUTTER_STORAGE__S3__SECRET_KEY="$SHUTTER_TEST_S3_SECRET_KEY"
    SHUTTER_STORAGE__S3__PATH_STYLE=true
  )
  # Private photos and downloads redirect to presigned URLs on the bucket: the one other
  # origin the page may reach.
  export SHUTTER_WEB_STORAGE_ORIGIN="$SHUTTER_TEST_S3_ENDPOINT"
fi

# A 3 MiB basic quota (the quota scenario uploads 4 MiB), 30 s access tokens (the app must
# refresh during the run), rate limits off.
access_ttl=30
echo "== starting $bin on $base ($backends; data in $data)"
env -u SHUTTER_SERVER__WEB_DIR "${backend_env[@]}" \
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
