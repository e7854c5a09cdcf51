#!/usr/bin/env bash
# The test suite, with the S3 server it needs: starts s3s-fs (installing it when missing)
# unless SHUTTER_TEST_S3_ENDPOINT already names one, then runs `cargo test --workspace` with
# any extra arguments. PostgreSQL joins when SHUTTER_TEST_POSTGRES_URL is set (README).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SHUTTER_TEST_S3_ENDPOINT:-}" ]; then
  eval "$(scripts/s3-server.sh start)"
  trap 'scripts/s3-server.sh stop' EXIT
fi
cargo test --workspace "$@"
