#!/usr/bin/env bash
# `make bench-peers`: polos and the peer engines on the same workload, one after another (never
# two at once), into one JSON lines file (bench/results/peers-<UTC stamp>.jsonl), then the
# ratios (bench/report.py).
#
# The peers (../shared/bench/peers, README.md there) live in their own virtualenv and files
# under $PEERS_HOME (default bench/.peers, ignored by git), never in polos' dependencies. When
# that virtualenv (or Restate's binary, if Restate runs) is missing, their setup.sh installs it:
# apt packages (postgresql, redis-server, time, strace, curl), a venv with every engine's SDK
# (pinned versions) and Restate's server from npm. It needs root.
#
#   PEERS            which engines, in order (default: dbos celery restate temporal prefect);
#                    ENGINE:ARG passes ARG to its run.sh (dbos:sqlite, dbos:postgres,
#                    temporal:memory, prefect:postgres, ...). Defaults: dbos all, temporal
#                    sqlite then memory, prefect all.
#   BENCH_SIZES      N of every fan-out, ours and theirs (default 10,100,1000)
#   BENCH_REPS       measured runs per N (default 3)
#   BENCH_LAT_RUNS   sequential single-child calls (default 50, as the peers)
#   BENCH_DATABASES  where polos runs: "sqlite" and/or postgresql:// URLs (a URL without a
#                    database gets a throwaway one); default
#                    "sqlite postgresql://postgres@127.0.0.1:5432"
#   PEERS_DIR        the peers' scripts (default ../shared/bench/peers beside the repository)
#   PEERS_HOME       the peers' venv, data and logs (default bench/.peers)
#   BENCH_OUTPUT     the JSON lines file (default bench/results/peers-<stamp>.jsonl)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PY=${PYTHON:-$REPO/.venv/bin/python}
PEERS_DIR=${PEERS_DIR:-$(cd "$REPO/.." && pwd)/shared/bench/peers}
export PEERS_HOME=${PEERS_HOME:-$HERE/.peers}
export BENCH_SIZES=${BENCH_SIZES:-10,100,1000}
export BENCH_REPS=${BENCH_REPS:-3}
export BENCH_LAT_RUNS=${BENCH_LAT_RUNS:-50}
PEERS=${PEERS:-dbos celery restate temporal prefect}
DATABASES=${BENCH_DATABASES:-sqlite postgresql://postgres@127.0.0.1:5432}
OUT=${BENCH_OUTPUT:-$HERE/results/peers-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
RESTATE_BIN=$PEERS_HOME/restate/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server

log() { echo "=== $* $(date -u +%H:%M:%S)" >&2; }

if [ ! -d "$PEERS_DIR" ]; then
  echo "bench-peers: no peers' scripts at $PEERS_DIR (set PEERS_DIR)" >&2
  exit 2
fi

# -- the peers' installation -------------------------------------------------------------------
need_setup=
[ -x "$PEERS_HOME/.venv/bin/python" ] || need_setup="its virtualenv is missing"
case " $PEERS " in *" restate"*) [ -x "$RESTATE_BIN" ] || need_setup="Restate's server is missing" ;; esac
if [ -n "$need_setup" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench-peers: $need_setup and $PEERS_DIR/setup.sh needs root (apt-get)" >&2
    exit 2
  fi
  mkdir -p "$PEERS_HOME"
  log "setup.sh into $PEERS_HOME ($need_setup; output in $PEERS_HOME/setup.log)"
  if ! bash "$PEERS_DIR/setup.sh" >"$PEERS_HOME/setup.log" 2>&1; then
    tail -n 30 "$PEERS_HOME/setup.log" >&2
    echo "bench-peers: setup.sh failed (all of it in $PEERS_HOME/setup.log)" >&2
    exit 2
  fi
fi

mkdir -p "$(dirname "$OUT")"
cd "$REPO"
failed=()

# -- ours --------------------------------------------------------------------------------------
for db in $DATABASES; do
  args=()
  if [ "$db" != sqlite ]; then
    args=(--database-url "$db")
    "$REPO/scripts/ensure-postgres" || { failed+=("polos on $db: no PostgreSQL"); continue; }
  fi
  log "polos fan-out on $db, N=$BENCH_SIZES"
  "$PY" bench/fanout.py --sizes "$BENCH_SIZES" --reps "$BENCH_REPS" "${args[@]}" \
    --output "$OUT" || failed+=("polos fan-out on $db")
  log "polos latency on $db, $BENCH_LAT_RUNS calls"
  "$PY" bench/latency.py --runs "$BENCH_LAT_RUNS" --breakdown 0 "${args[@]}" \
    --output "$OUT" || failed+=("polos latency on $db")
done

# -- theirs, one at a time ---------------------------------------------------------------------
ports_of() {  # the loopback ports an engine's run.sh takes (../shared/bench/peers/README.md)
  case $1 in
    restate) echo 8080 9070 9080 5122 ;;
    temporal) echo 7233 7243 7244 ;;
    celery) echo 6390 ;;
    dbos) echo 55432 ;;
    prefect) echo 4200 55433 ;;
  esac
}
busy_port() {
  local p
  for p in $(ports_of "$1"); do
    if [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return; fi
  done
}
skip() {  # engine, why: a line in the run, so that the report shows the gap
  printf '{"engine": "%s", "status": "skipped: %s"}\n' "$1" "$2" | tee -a "$OUT"
  failed+=("$1: $2")
}

for entry in $PEERS; do
  engine=${entry%%:*}
  if [ "$entry" != "$engine" ]; then
    modes=${entry#*:}
  else
    case $engine in
      dbos | prefect) modes=all ;;
      temporal) modes="sqlite memory" ;;
      *) modes=- ;;
    esac
  fi
  if [ ! -f "$PEERS_DIR/$engine/run.sh" ]; then
    skip "$engine" "no $PEERS_DIR/$engine/run.sh"
    continue
  fi
  for mode in $modes; do
    port=$(busy_port "$engine")
    if [ -n "$port" ]; then
      skip "$engine" "port $port is in use"
      continue
    fi
    arg=(); [ "$mode" = - ] || arg=("$mode")
    log "$engine ${arg[*]} (logs in $PEERS_HOME/$engine/logs)"
    bash "$PEERS_DIR/$engine/run.sh" "${arg[@]}" | tee -a "$OUT"
    [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("$engine ${arg[*]}")
  done
done

echo
echo "=== the run ($OUT)"
"$PY" bench/report.py "$OUT"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench-peers: not everything ran: ${failed[*]}" >&2
  exit 1
fi
