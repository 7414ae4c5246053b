#!/usr/bin/env bash
# The whole test suite: lint, then pytest against DuckDB and (when a server can be started here) PostgreSQL.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PREFECT_SERVER_ANALYTICS_ENABLED=false HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=180

"$BIN/ruff" check . || exit 1

# PostgreSQL on 127.0.0.1 for the warehouse tests; they skip cleanly when it cannot be started.
source .ci/postgres.sh
pg_start || echo "PostgreSQL could not be started: the postgres tests will be skipped"
trap 'pg_stop' EXIT

"$BIN/python" -m pytest "$@"
rc=$?
# pytest exits 5 when no test was collected: that is a failure here, not a pass.
exit $rc
