"""benchmarks/gpu_baseline.sh runs as is; here with its tiny CPU setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_baseline.sh"


@pytest.mark.timeout(600)
def test_gpu_baseline_script_runs_on_the_cpu_with_the_tiny_setting(tmp_path):
    log_dir = tmp_path / "logs"
    environment = dict(os.environ, SPIDER_BENCH_DEVICE="cpu", SPIDER_BENCH_TINY="1", PYTHON=sys.executable)
    completed = subprocess.run(["bash", str(SCRIPT), str(log_dir)], capture_output=True, text=True,
                               env=environment, timeout=580)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    log = (log_dir / "benchmark.log").read_text()
    assert "iterations/s" in log and "peak GPU memory: n/a (CPU)" in log and "validation Dice at iteration 4" in log
    report = json.loads((log_dir / "benchmark.json").read_text())
    assert report["device"] == "cpu" and report["iterations"] == 4 and report["iterations_per_second"] > 0
    assert set(report["validation_dice_by_group"]) >= {"vertebrae", "discs", "spinal_canal"}
    assert (log_dir / "run" / "metrics.csv").is_file() and (log_dir / "run" / "metrics.png").is_file()


def test_gpu_baseline_script_says_when_there_is_no_gpu(tmp_path):
    if subprocess.run([sys.executable, "-c", "import torch, sys; sys.exit(torch.cuda.is_available())"]).returncode:
        pytest.skip("this machine has a GPU")
    completed = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "logs")], capture_output=True, text=True,
                               env=dict(os.environ, PYTHON=sys.executable), timeout=120)
    assert completed.returncode == 3
    assert "no CUDA device" in completed.stdout + completed.stderr
