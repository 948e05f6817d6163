#!/usr/bin/env bash
# A prepared GPU check (issue 15): one command, one JSON line on stdout, everything else on stderr.
#
#   benchmarks/gpu-check.sh --dry-run     on meta (any machine, CI): real-size FLUX.1-schnell forwards at 1024x1024 in bf16
#                                         timed on the host (dispatch + JNI), the H100 time model, and a 4-step generate on
#                                         meta with placement checks and strict sync (host<->device traffic per step)
#   benchmarks/gpu-check.sh [--gpu h100]  on a CUDA host with a JDK: builds with -Pcuda, checks that CUDA loads, then runs
#                                         the same 4-step generate on cuda:0 with --strict-sync (libtorch's sync-debug mode
#                                         set to error) and its wall time, plus the dry run's figures for comparison
#
# CUDA has NEVER run here: the non-dry mode is written to the bindings but untested. What it cannot yet report is null in
# the JSON (ms/step by CUDA events, achieved TFLOP/s, peak GPU memory): see benchmarks/README.md, "GPU check".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0
GPU=h100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --gpu) GPU="$2"; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
MMDIT="$ROOT/mmdit"

# 1. the time model and the host's time per real-size step, on meta (no weights, no memory)
model_json="$("$MMDIT" inspect --config flux1-schnell --size 1024x1024 --dtype bf16 --gpu "$GPU" --json --host-reps 10)"

# 2. a 4-step generate: on meta (dry run) or cuda:0, placement-checked, strict sync: any host<->device copy or host read
#    inside a step fails the run; the summary line gives the per-step counts
device=meta
if [[ $DRY -eq 0 ]]; then
  device=cuda:0
  echo "gpu-check: building with -Pcuda (GPU natives; the host must provide libcuda, cuBLAS 13, cuSPARSE 12, cuDNN 9, NCCL 2)" >&2
  (cd "$ROOT" && mvn -q -B -o -Pcuda -DskipTests -pl cli -am package >&2)
  "$MMDIT" info >&2
fi
t0=$(date +%s%N)
gen_log="$("$MMDIT" generate --model flux-tiny-demo --device "$device" --check-placement --strict-sync --prompt "a lighthouse" \
  --steps 4 --seed 1 --out "${TMPDIR:-/tmp}/gpu-check-$$" 2>&1)" || { echo "$gen_log" >&2; echo "gpu-check: the generate failed" >&2; exit 1; }
t1=$(date +%s%N)
echo "$gen_log" >&2
rm -rf "${TMPDIR:-/tmp}/gpu-check-$$"
syncs="null"; copies="null"
if [[ "$gen_log" =~ host\<-\>device\ copies\ in\ the\ steps\ ([0-9]+),\ host\ reads\ ([0-9]+) ]]; then
  copies="${BASH_REMATCH[1]}"; syncs="${BASH_REMATCH[2]}"
elif [[ $DRY -eq 0 ]]; then
  copies=0; syncs=0 # --strict-sync would have failed the run on any
fi
wall_ms=$(( (t1 - t0) / 1000000 ))
backend=$([[ $DRY -eq 1 ]] && echo '"meta (shape shortcut)"' || echo '"cuda: cudnn > flash > mem-efficient > math (requested)"')

# one JSON line: the model's fields, then this run's
printf '%s\n' "${model_json%\}},\"mode\":\"$([[ $DRY -eq 1 ]] && echo dry-run || echo cuda)\",\"device\":\"$device\",\"generate_steps\":4,\"generate_wall_ms\":$wall_ms,\"copies_in_steps\":$copies,\"syncs_in_steps\":$syncs,\"attention_backend\":$backend,\"ms_per_step_cuda_events\":null,\"achieved_tflops\":null,\"peak_gpu_memory_bytes\":null,\"cuda_ran\":$([[ $DRY -eq 1 ]] && echo false || echo true)}"
