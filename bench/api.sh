#!/usr/bin/env bash
# The API's latency, throughput and memory against its budgets (docs: DESIGN.md, "Budgets").
#
#   bench/api.sh                      # granian, 2 workers, 3 runs of 10 s per figure, then the full-scale RSS
#   SERVER=uvicorn WORKERS=2 bench/api.sh
#   RUNS=5 DURATION=15 FULL=0 bench/api.sh
#   CLUSTER=1 bench/api.sh            # the same against a local 3-master Redis Cluster (bench/api_cluster.py)
#
# Publishes a small version (1,000 users, 1,000 posts) under a throw-away key prefix of the Redis at
# POSTREC_REDIS_URL, starts `postrec serve`, and prints medians over RUNS of: p50/p99 at 1 connection, requests/s
# and p99 at 32 connections (wrk), redis-benchmark's GET p50 at 1 connection as the floor and the API/floor ratio,
# and the server's RSS; then publishes a full-scale version (7,023 posts of ~300 words, 163,205 lists of K=200),
# waits for the server to switch to it, and prints the RSS again. Keys and server are cleaned up on any exit.
# With CLUSTER=1 the serving store is a 3-master Redis Cluster started on free loopback ports for the run (and
# stopped after); the floor is then redis-benchmark's GET on the master that holds its key.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-2}
SERVER=${SERVER:-granian}
FULL=${FULL:-1}
CLUSTER=${CLUSTER:-0}
USERS=1000
PY=.venv/bin/python
export PYTHONPATH=.
PREFIX="postrec_bench_api_$$"
PORT=$($PY -c 'from tests.api_fixtures import free_port; print(free_port())')
URL="http://127.0.0.1:$PORT"
REDIS_URL=${POSTREC_REDIS_URL:-redis://127.0.0.1:6379/0}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TICKS=$(getconf CLK_TCK)
SERVER_PID=""
CLUSTER_PID=""
WORK=$(mktemp -d)

command -v wrk >/dev/null || { echo "wrk is missing: apt-get update && apt-get install -y wrk" >&2; exit 1; }

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    pkill -KILL -P "$SERVER_PID" 2>/dev/null || true  # its own workers, should the server have died first
  fi
  $PY bench/api_publish.py delete --prefix "$PREFIX" || true
  if [[ -n "$CLUSTER_PID" ]]; then kill -TERM "$CLUSTER_PID" 2>/dev/null || true; wait "$CLUSTER_PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }

# wrk prints latencies as 412.00us / 1.23ms / 2.01s: in milliseconds.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f\n", v}'; }

wait_for_version() {  # version: poll /health until the server serves it
  for _ in $(seq 600); do
    if curl -fs "$URL/health" 2>/dev/null | grep -q "\"version\":\"$1\""; then return 0; fi
    sleep 0.2
  done
  echo "server never served version $1" >&2; exit 1
}

server_pids() { echo "$SERVER_PID" $(pgrep -P "$SERVER_PID") | tr ' ' ','; }

server_cpu_ticks() {  # user + system CPU of the server and its workers so far
  ps -o pid= -p "$(server_pids)" | while read -r pid; do awk '{print $14 + $15}' "/proc/$pid/stat"; done | awk '{t+=$1} END {print t}'
}

server_rss_mb() {  # the server and its workers
  ps -o rss= -p "$(server_pids)" | awk '{t+=$1; if ($1>m) m=$1} END {printf "total %.0f MB, largest process %.0f MB", t/1024, m/1024}'
}

run_wrk() {  # connections threads -> file
  wrk -t"$2" -c"$1" -d"${DURATION}s" --latency -s bench/api_wrk.lua "$URL" -- 200 "$USERS" >"$3" 2>"$3.err"
  if [[ -s "$3.err" ]]; then echo "non-200 answers during the run:" >&2; sort "$3.err" | uniq -c | head -5 >&2; fi
}

if [[ "$CLUSTER" == 1 ]]; then
  $PY bench/api_cluster.py >"$WORK/cluster" &
  CLUSTER_PID=$!
  for _ in $(seq 100); do [[ -s "$WORK/cluster" ]] && break; sleep 0.2; done
  read -r REDIS_URL FLOOR_PORT <"$WORK/cluster" || { echo "the local Redis Cluster did not start" >&2; exit 1; }
  export POSTREC_REDIS_URL="$REDIS_URL"  # for api_publish.py too
  floor_get() { redis-benchmark -h 127.0.0.1 -p "$FLOOR_PORT" -t get -n 50000 -c 1 --csv; }
else
  floor_get() { redis-benchmark -u "$REDIS_URL" -t get -n 50000 -c 1 --csv; }
fi

$PY bench/api_publish.py publish --prefix "$PREFIX" --version small --users "$USERS" --posts 1000 --words 12 >/dev/null
POSTREC_PREFIX="$PREFIX" POSTREC_REDIS_URL="$REDIS_URL" .venv/bin/postrec serve --port "$PORT" --workers "$WORKERS" \
  --server "$SERVER" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_for_version small
wrk -t1 -c4 -d2s -s bench/api_wrk.lua "$URL" -- 200 "$USERS" >/dev/null 2>&1  # warm-up

for run in $(seq "$RUNS"); do
  run_wrk 1 1 "$WORK/c1.$run"
  grep -E '^ +50%' "$WORK/c1.$run" | awk '{print $2}' | to_ms >>"$WORK/p50_c1"
  grep -E '^ +99%' "$WORK/c1.$run" | awk '{print $2}' | to_ms >>"$WORK/p99_c1"
  ticks=$(server_cpu_ticks)
  run_wrk 32 2 "$WORK/c32.$run"
  requests=$(grep -E 'requests in' "$WORK/c32.$run" | awk '{print $1}')
  awk -v c="$(( $(server_cpu_ticks) - ticks ))" -v n="$requests" -v t="$TICKS" 'BEGIN {printf "%.1f\n", c/t/n*1e6}' >>"$WORK/cpu_us"
  grep -E '^Requests/sec' "$WORK/c32.$run" | awk '{print $2}' >>"$WORK/rps_c32"
  grep -E '^ +99%' "$WORK/c32.$run" | awk '{print $2}' | to_ms >>"$WORK/p99_c32"
  floor_get 2>/dev/null | awk -F'"' '/^"GET"/ {print $10}' >>"$WORK/redis_p50"
  echo "run $run: c1 p50 $(tail -1 "$WORK/p50_c1") ms p99 $(tail -1 "$WORK/p99_c1") ms;" \
    "c32 $(tail -1 "$WORK/rps_c32") req/s p99 $(tail -1 "$WORK/p99_c32") ms, server CPU $(tail -1 "$WORK/cpu_us") us/req;" \
    "redis GET p50 $(tail -1 "$WORK/redis_p50") ms" >&2
done
small_rss=$(server_rss_mb)

# Calibration: granian with the same workers and an app that does nothing, measured the same way, right after.
CAL_PORT=$($PY -c 'from tests.api_fixtures import free_port; print(free_port())')
.venv/bin/granian --interface asgi --loop uvloop --http 1 --no-ws --workers "$WORKERS" --port "$CAL_PORT" \
  --log-level warning bench.api_calibrate:app >"$WORK/calibrate.log" 2>&1 &
CAL_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$CAL_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
calibration=$(wrk -t2 -c32 -d"${DURATION}s" "http://127.0.0.1:$CAL_PORT/" | awk '/^Requests\/sec/ {print $2}')
kill -TERM "$CAL_PID"; wait "$CAL_PID" 2>/dev/null || true

p50=$(median <"$WORK/p50_c1"); floor=$(median <"$WORK/redis_p50")
echo "redis: $([[ "$CLUSTER" == 1 ]] && echo "a 3-master Redis Cluster on loopback" || echo "one Redis (POSTREC_REDIS_URL)")"
echo "server: $SERVER, workers: $WORKERS, runs: $RUNS x ${DURATION}s, cores: $(nproc), load average before: $LOAD_BEFORE"
echo "1 connection:   p50 $p50 ms (budget 0.5), p99 $(median <"$WORK/p99_c1") ms (budget 2)"
echo "32 connections: $(median <"$WORK/rps_c32") req/s (budget 5000), p99 $(median <"$WORK/p99_c32") ms"
echo "server CPU per request at 32 connections: $(median <"$WORK/cpu_us") us (steadier than req/s on a shared box)"
echo "calibration: a do-nothing ASGI app on granian, same workers: $calibration req/s at 32 connections"
echo "redis-benchmark GET p50 (floor): $floor ms; API p50 / floor: $(awk -v a="$p50" -v b="$floor" 'BEGIN {printf "%.1f", a/b}')"
echo "RSS, small version: $small_rss"

if [[ "$FULL" == 1 ]]; then
  flipped=$($PY bench/api_publish.py publish --prefix "$PREFIX" --version full --users 163205 --posts 7023 --words 300)
  wait_for_version full
  echo "flip to the full-scale version served after $(awk -v a="$flipped" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b-a}') s" \
    "(poll interval + loading 7,023 posts; /health polled every 0.2 s)"
  wrk -t1 -c4 -d3s -s bench/api_wrk.lua "$URL" -- 200 163205 >/dev/null 2>&1
  echo "RSS, full-scale version (7,023 posts x ~300 words, 163,205 lists): $(server_rss_mb) (budget 300)"
fi
