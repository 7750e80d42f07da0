#!/usr/bin/env bash
# `make bench`: the SQL floor, polos' fan-out and its latency on one database, one after
# another, all into one JSON lines file (bench/results/bench-<UTC stamp>.jsonl), then the table
# of that run (bench/report.py). Nothing runs concurrently; every script stops what it started.
#
#   BENCH_FLOOR_SIZES   sql_floor.py's N       (default 1000,10000,100000)
#   BENCH_FANOUT_SIZES  fanout.py's N          (default 1000,10000)
#   BENCH_REPS          runs per N, median     (default 3)
#   BENCH_LAT_RUNS      latency.py's calls     (default 200)
#   BENCH_DATABASE_URL  empty: temporary SQLite files (the floor in synchronous FULL and
#                       NORMAL, the server in POLOS_SQLITE_SYNCHRONOUS, default full);
#                       postgresql://USER@HOST:PORT: a throwaway database per script
#   BENCH_OUTPUT        the JSON lines file    (default bench/results/bench-<stamp>.jsonl)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PY=${PYTHON:-$REPO/.venv/bin/python}
FLOOR_SIZES=${BENCH_FLOOR_SIZES:-1000,10000,100000}
FANOUT_SIZES=${BENCH_FANOUT_SIZES:-1000,10000}
REPS=${BENCH_REPS:-3}
LAT_RUNS=${BENCH_LAT_RUNS:-200}
OUT=${BENCH_OUTPUT:-$HERE/results/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
DB=()
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  DB=(--database-url "$BENCH_DATABASE_URL")
  case "$BENCH_DATABASE_URL" in postgres*) "$REPO/scripts/ensure-postgres" ;; esac
fi
mkdir -p "$(dirname "$OUT")"
cd "$REPO"

failed=()
step() {  # name, command...
  local name=$1; shift
  echo "=== $name $(date -u +%H:%M:%S)" >&2
  "$@" || failed+=("$name (exit $?)")
}
step sql_floor "$PY" bench/sql_floor.py --sizes "$FLOOR_SIZES" --reps "$REPS" "${DB[@]}" \
  --output "$OUT"
step fanout "$PY" bench/fanout.py --sizes "$FANOUT_SIZES" --reps "$REPS" "${DB[@]}" \
  --output "$OUT"
step latency "$PY" bench/latency.py --runs "$LAT_RUNS" "${DB[@]}" --output "$OUT"

echo
echo "=== the run ($OUT)"
"$PY" bench/report.py "$OUT"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
