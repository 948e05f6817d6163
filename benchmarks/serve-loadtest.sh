#!/usr/bin/env bash
# The serving benchmark of benchmarks/README.md: `mmdit serve` on the demo model with --max-batch 1 and --max-batch 4
# (alternated ROUNDS times, same machine, same run), each measured with the same `mmdit loadtest` (loopback only, bounded).
# Usage: benchmarks/serve-loadtest.sh [ROUNDS] [loadtest options...]
#   e.g. benchmarks/serve-loadtest.sh 2 --clients 16 --requests 200 --warmup 64 --mix mixed --size 128x128 --steps 8
# Environment: SERVE_OPTS (extra options of serve, default "--threads 1"), PORT (default 18480), OUT (JSON folder),
# REPEAT (default 1): run the same loadtest this many times against one server, to see whether its RSS settles.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-1}"
shift || true
PORT="${PORT:-18480}"
OUT="${OUT:-$ROOT/benchmarks/target/serve}"
SERVE_OPTS="${SERVE_OPTS:---threads 1}"
REPEAT="${REPEAT:-1}"
mkdir -p "$OUT"
rm -f "$OUT"/loadtest-b*-r*.json "$OUT"/repeat-b*-r*-k*.json # the summary below reads this run's files only
"$ROOT/mmdit" loadtest --help >/dev/null # builds the server module once, before anything is timed

run() { # $1 = max batch, $2 = round, then the loadtest's options
  local batch="$1" round="$2"
  shift 2
  local log="$OUT/serve-b$batch-r$round.log"
  # shellcheck disable=SC2086
  "$ROOT/mmdit" serve --port "$PORT" --max-batch "$batch" $SERVE_OPTS >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
  echo "== --max-batch $batch, round $round (serve $SERVE_OPTS; loadtest $*), $(uptime | sed "s/.*load/load/")"
  "$ROOT/mmdit" loadtest --url "http://127.0.0.1:$PORT" --json "$OUT/loadtest-b$batch-r$round.json" "$@" || true
  for k in $(seq 2 "$REPEAT"); do
    echo "== --max-batch $batch, round $round, the same loadtest again on the same server ($k of $REPEAT)"
    "$ROOT/mmdit" loadtest --url "http://127.0.0.1:$PORT" --json "$OUT/repeat-b$batch-r$round-k$k.json" "$@" || true
  done
  kill -TERM "$pid"
  wait "$pid" || true
}

for r in $(seq 1 "$ROUNDS"); do
  run 1 "$r" "$@"
  run 4 "$r" "$@"
done
python3 - "$OUT" <<'PY'
import json, sys, glob, os
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "loadtest-b*-r*.json"))):
    j = json.load(open(f))
    rows.append((os.path.basename(f), j))
    print(f"{os.path.basename(f)}: {j['images_per_second']:.2f} images/s, p50 {j['latency_p50_s']} s, p95 {j['latency_p95_s']} s, "
          f"p99 {j['latency_p99_s']} s, server CPU {j['server_cpu_ms_per_image']} ms/image, ok {j['ok']}, aborted {j['aborted']}, errors {j['errors']}, lost {j['lost']}, wrong {j['wrong']}, "
          f"duplicated {j['duplicated']}, batches {j['batch_size_histogram']}, RSS {j['rss_mb_before']} -> {j['rss_mb_after']} MB "
          f"({j['rss_growth_percent']:+.2f}%), pass {j['pass']}")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "repeat-b*-r*-k*.json"))):
    j = json.load(open(f))
    print(f"{os.path.basename(f)}: {j['images_per_second']:.2f} images/s, server CPU {j['server_cpu_ms_per_image']} ms/image, "
          f"RSS {j['rss_mb_before']} -> {j['rss_mb_after']} MB ({j['rss_growth_percent']:+.2f}%), pass {j['pass']}")
for r in sorted({n.split('-r')[1] for n, _ in rows}):
    b1 = [j for n, j in rows if n.startswith("loadtest-b1-") and n.endswith("-r" + r)]
    b4 = [j for n, j in rows if n.startswith("loadtest-b4-") and n.endswith("-r" + r)]
    if b1 and b4:
        print(f"round {r.split('.')[0]}: max-batch 4 / max-batch 1 = {b4[0]['images_per_second'] / b1[0]['images_per_second']:.2f}x images/s, "
              f"{b1[0]['server_cpu_ms_per_image'] / b4[0]['server_cpu_ms_per_image']:.2f}x less server CPU per image")
PY
