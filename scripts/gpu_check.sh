#!/usr/bin/env bash
# ONE script for every GPU check (run on a machine with an NVIDIA GPU; < 8 minutes):
#   1. the CUDA-marked tests and the backend parity tests,
#   2. model-only timings: torch fp32 eager, fp16, channels_last, CUDA graphs, torch.compile,
#      ONNX Runtime CUDA and TensorRT where they import, at 1280x720, 1920x1080 and 3840x2160,
#      plus fp16-vs-fp32 PSNR (minimum over the 26 stock styles),
#   3. `stylecam bench` end to end at 1080p,
#   4. the stabilizer's added time beside the GPU (its flow and warp run during inference): footage at
#      640x480 with --stabilize, against the same without.
# Writes gpu_check.log and gpu_bench.json / bench_e2e.json / bench_stabilize*.json under $OUT (or ./out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
mkdir -p "$OUT"
export STYLECAM_HOME="${STYLECAM_HOME:-$(mktemp -d)}" PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
PY="${PYTHON:-python3}"
log="$OUT/gpu_check.log"
{
  echo "== $(date -u) on $(hostname)"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$PY" -m stylecam doctor
  echo "== tests (CUDA-marked + backend parity)"
  timeout 120 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_backends.py tests/test_export.py
  echo "== model-only bench"
  timeout 240 "$PY" scripts/gpu_bench.py --json "$OUT/gpu_bench.json" --budget-s 150
  echo "== stylecam bench, end to end, 1080p"
  timeout 60 "$PY" -m stylecam bench --source demo --size 1920x1080 --backend torch-cuda --frames 100 --warmup 10 \
    --json "$OUT/bench_e2e.json" -q
  echo "== stabilizer beside the GPU, 640x480 footage (stage p50 and total, with and without)"
  for stab in "--stabilize" ""; do
    timeout 60 "$PY" -m stylecam bench --source footage --size 640x480 --backend torch-cuda --frames 100 --warmup 10 \
      $stab --json "$OUT/bench_stabilize${stab:+-on}.json" -q
  done
  echo "== done $(date -u)"
} 2>&1 | tee "$log"
