#!/usr/bin/env bash
# GPU check of the SPIDER baseline: makes synthetic cases, trains UNETR on CUDA with mixed
# precision for 3.5 minutes, and prints iterations per second, peak GPU memory and the
# validation Dice per structure. Runs as is on a machine with one NVIDIA GPU and PyTorch,
# MONAI, einops, numpy, scipy and SimpleITK, without network, in under 8 minutes.
#
#   benchmarks/gpu_baseline.sh [LOG_DIR]
#
# LOG_DIR (default: work/gpu-baseline-<time> in the repository) receives benchmark.log,
# benchmark.json, the synthetic data and the run (metrics.csv, metrics.png, checkpoints).
# The test suite runs the same script on the CPU with a tiny setting:
#   SPIDER_BENCH_DEVICE=cpu SPIDER_BENCH_TINY=1 benchmarks/gpu_baseline.sh LOG_DIR
# PYTHON picks the interpreter (default: the repository's .venv if there is one, else python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="${1:-$repo/work/gpu-baseline-$(date +%Y%m%d-%H%M%S)}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
device="${SPIDER_BENCH_DEVICE:-cuda}"
extra=()
if [ "${SPIDER_BENCH_TINY:-0}" = 1 ]; then extra+=(--tiny); fi

mkdir -p "$log_dir"
log_dir="$(cd "$log_dir" && pwd)"
cd "$repo"
# The project's own packages from this checkout, installed or not.
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$log_dir/nvidia-smi.txt" || true
fi
"$PYTHON" -m baselines.benchmark --log-dir "$log_dir" --device "$device" "${extra[@]}" 2>&1 | tee "$log_dir/benchmark.log"
exit "${PIPESTATUS[0]}"
