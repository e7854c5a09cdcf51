#!/usr/bin/env bash
# Fuzzes the running API against its own /openapi.json with schemathesis (all checks, every
# operation, signed in as a fresh user). Usage: scripts/schemathesis.sh <shutter-binary>
# Exits non-zero when schemathesis reports any failure or the server does not come up.
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (default 25), SCHEMATHESIS_MAX_TIME (seconds, default 150).
set -euo pipefail

bin="${1:?usage: scripts/schemathesis.sh <shutter-binary>}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
here="$(cd "$(dirname "$0")" && pwd)"
command -v schemathesis >/dev/null || { echo "FAIL: schemathesis is not installed (pip install 'schemathesis>=4,<5')" >&2; exit 1; }

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A fresh data directory; the rate limits are off so the fuzzer's request volume is not 429'd.
SHUTTER_DATA_DIR="$work/data" \
SHUTTER_SERVER__LISTEN="127.0.0.1:$port" \
SHUTTER_RATE_LIMITS__ENABLED=false \
SHUTTER_LOG__FORMAT=json \
  "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 120); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL: the server exited during start-up" >&2; cat "$work/server.log" >&2; exit 1
  fi
  sleep 0.5
done
curl -fsS "$base/readyz" >/dev/null || { echo "FAIL: $base/readyz never answered 200" >&2; tail -50 "$work/server.log" >&2; exit 1; }

password="fuzz-$(date +%s)-password"
curl -fsS -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"username\":\"fuzzer\",\"password\":\"$password\"}" >/dev/null
token="$(curl -fsS -X POST "$base/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"fuzzer\",\"password\":\"$password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
[ -n "$token" ] || { echo "FAIL: no access token" >&2; exit 1; }
# The fuzzer runs for minutes; the default 15-minute token lifetime covers it.

status=0
# Every check runs (schemathesis' default); scripts/schemathesis.toml narrows single operations.
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SHUTTER_TOKEN="$token" schemathesis --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
  --url "$base" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
  --workers "${SCHEMATHESIS_WORKERS:-2}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --report junit --report-dir "${SCHEMATHESIS_REPORT_DIR:-$work/report}" \
  || status=$?

if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "== server errors logged during the run:" >&2
  grep '"level":"ERROR"' "$work/server.log" | head -20 >&2
fi
if [ "$status" -ne 0 ]; then
  echo "FAIL: schemathesis found problems (exit $status)" >&2
fi
exit "$status"
