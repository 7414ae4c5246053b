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

# Chromium + chromedriver for the dashboard's browser test (installed when missing; the test fails without).
source .ci/chromium.sh
chromium_ensure || echo "Chromium could not be installed: the dashboard browser test will fail"

"$BIN/python" -m pytest "$@"
rc=$?
# pytest exits 5 when no test was collected: that is a failure here, not a pass.
exit $rc
