"""Fixtures of the grand-challenge evaluation tests: `spider try` outputs written by hand, the platform's
input laid out from them, the entry point run in this process, and predictions to score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from challenge.rules import RULES_VERSION
from evaluation.platform.config import EvaluationConfig
from evaluation.platform.local_run import read_try_out, write_platform_input


def read_mask(path: Path) -> tuple[np.ndarray, sitk.Image]:
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), image


def perturbed(mask: np.ndarray) -> np.ndarray:
    """One vertebra moved a slice along the first array axis and the lowest disc left out."""
    prediction = mask.copy()
    vertebra = mask == labels.vertebra_value(1)
    prediction[vertebra] = 0
    prediction[np.roll(vertebra, 1, axis=0) & (prediction == 0)] = labels.vertebra_value(1)
    prediction[mask == labels.disc_value(1)] = 0
    return prediction


def write_try_out(release: Path, out: Path, *, changes: dict | None = None) -> Path:
    """A `spider try` OUT folder for `release`: every job succeeded and predicted its reference mask,
    except that `changes` maps a case to a function of the mask array giving its prediction."""
    (out / "predictions").mkdir(parents=True)
    records = []
    for mask_path in sorted((release / "masks").glob("*.mha")):
        case = mask_path.name[: -len(".mha")]
        array, image = read_mask(mask_path)
        change = (changes or {}).get(case)
        prediction = sitk.GetImageFromArray(change(array) if change else array)
        prediction.CopyInformation(image)
        sitk.WriteImage(prediction, str(out / "predictions" / mask_path.name), True)
        records.append({"case": case, "status": "succeeded", "reason": "", "exit_code": 0, "seconds": 12.5,
                        "log": str(out / "jobs" / case / "log.txt")})
    (out / "jobs.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    return out


@pytest.fixture(name="write_try_out")
def _write_try_out():
    """write_try_out(release, out, changes={case: array -> array}) -> OUT of a `spider try` that succeeded."""
    return write_try_out


@pytest.fixture(name="perturbed")
def _perturbed():
    return perturbed


@pytest.fixture
def platform_input(tiny_release, tmp_path):
    """platform_input(changes=None) -> (the platform's /input for the tiny release, job pk -> case)."""

    def make(changes: dict | None = None, *, name: str = "input") -> tuple[Path, dict[str, str]]:
        try_out = write_try_out(tiny_release, tmp_path / f"try-{name}", changes=changes)
        input_dir = tmp_path / name
        return input_dir, write_platform_input(read_try_out(try_out), input_dir, algorithm_image="Algorithm Image test")

    return make


@pytest.fixture
def run_entrypoint(tmp_path, capsys):
    """run_entrypoint(input_dir, ground_truth, profile=..., baked=None) -> (exit code, metrics or None, stdout,
    stderr): the container's program run in this process with a settings file of its own."""
    from evaluation.platform.entrypoint import main

    def run(input_dir: Path, ground_truth: Path | None, *, profile: str = "spider2024", case_values: bool = True,
            baked: Path | None = None, phase: str = "sanity-check") -> tuple[int, dict | None, str, str]:
        config = EvaluationConfig(phase=phase, profile=profile, scoring_time_limit_s=120, case_values=case_values,
                                  rules_version=RULES_VERSION, ground_truth_cases=0, workers=2)
        config_path = tmp_path / "config.json"
        config_path.write_text(config.as_json(), encoding="utf-8")
        output = tmp_path / "output"
        if (output / "metrics.json").exists():
            (output / "metrics.json").unlink()
        code = main(["--config", str(config_path), "--input", str(input_dir), "--output", str(output),
                     "--ground-truth", str(ground_truth or tmp_path / "no-ground-truth"),
                     "--baked-ground-truth", str(baked or tmp_path / "no-baked-ground-truth")])
        captured = capsys.readouterr()
        metrics = json.loads((output / "metrics.json").read_text()) if (output / "metrics.json").exists() else None
        return code, metrics, captured.out, captured.err

    return run
