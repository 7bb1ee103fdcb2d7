"""The evaluation container's program, run in this process on the platform's input layout: the same values
as `spider score`, and a non-zero exit with one readable last stderr line for each input it cannot score."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from challenge.official_columns import SPIDER2024_COLUMNS
from evaluation.platform.entrypoint import FAILURE_PREFIX, NO_JOB_REASON
from evaluation.platform.metrics import non_finite_paths
from evaluation.platform.predictions import read_predictions
from evaluation.report import metrics_document
from evaluation.score import score_folders

pytestmark = pytest.mark.timeout(120)


def last_line(stderr: str) -> str:
    return [line for line in stderr.splitlines() if line.strip()][-1]


def outputs(input_dir):
    """case -> the job's output file."""
    return {job.case: job.output_path(input_dir) for job in read_predictions(input_dir / "predictions.json")}


@pytest.mark.parametrize("profile", ["spider2024", "full"])
def test_values_equal_spider_score_on_the_same_predictions(profile, platform_input, run_entrypoint, tiny_release,
                                                           perturbed, tmp_path):
    input_dir, jobs = platform_input({"1_t2": perturbed})
    code, metrics, stdout, stderr = run_entrypoint(input_dir, tiny_release, profile=profile)
    assert code == 0, stderr
    expected = metrics_document(score_folders(tiny_release / "masks", tmp_path / "try-input" / "predictions",
                                              tmp_path / "score", profile=profile, progress=False))
    assert sorted(metrics["case"]) == sorted(jobs.values()) == ["1_t1", "1_t2", "3_t2_SPACE"]
    assert metrics["case"] == expected["case"]
    assert metrics["aggregates"] == expected["aggregates"]  # three cases: every std is finite in both
    dice = "DiceScoreVertebrae" if profile == "spider2024" else "vertebrae/all/dice"
    assert metrics["case"]["1_t2"]["metrics"][dice] < 1 == metrics["case"]["1_t1"]["metrics"][dice]
    assert non_finite_paths(metrics) == []
    official = {name for name, column in SPIDER2024_COLUMNS.items() if column.official}
    if profile == "spider2024":
        assert official <= set(metrics)
        assert metrics["DiceScoreVertebrae"]["mean"] == expected["aggregates"]["DiceScoreVertebrae"]["mean"]
        assert metrics["DetectionRateDiscs"]["mean"] == pytest.approx(5 / 6)  # one disc of 1_t2 left out
    else:
        assert not official & set(metrics)
    assert '[spider] measured: {"cases": 3' in stdout


def test_a_missing_job_output_fails_with_a_readable_last_line(platform_input, run_entrypoint, tiny_release):
    input_dir, jobs = platform_input()
    missing = outputs(input_dir)["1_t2"]
    missing.unlink()
    code, metrics, _, stderr = run_entrypoint(input_dir, tiny_release)
    assert code == 1 and metrics is None
    pk = missing.parts[-5]
    assert jobs[pk] == "1_t2"
    assert last_line(stderr) == (f"{FAILURE_PREFIX}job {pk}: expected its output image at {missing}, "
                                 "found an empty folder")


def test_a_job_without_an_output_folder_fails(platform_input, run_entrypoint, tiny_release):
    input_dir, _ = platform_input()
    folder = outputs(input_dir)["1_t1"].parent
    shutil.rmtree(folder.parents[2])  # /input/<pk>
    code, _, _, stderr = run_entrypoint(input_dir, tiny_release)
    assert code == 1
    assert last_line(stderr).endswith(f", found no folder {folder.relative_to(input_dir)}")


def test_a_case_without_ground_truth_fails(platform_input, run_entrypoint, tiny_release):
    input_dir, _ = platform_input()
    document = json.loads((input_dir / "predictions.json").read_text())
    document[0]["inputs"][0]["image"]["name"] = "9_t2.mha"
    (input_dir / "predictions.json").write_text(json.dumps(document))
    code, _, _, stderr = run_entrypoint(input_dir, tiny_release)
    assert code == 1
    assert last_line(stderr) == (f"{FAILURE_PREFIX}job {document[0]['pk']}: its input image '9_t2.mha' names the case "
                                 "'9_t2', expected a ground-truth mask masks/9_t2.mha, found none")


def test_a_prediction_on_another_grid_fails(platform_input, run_entrypoint, tiny_release):
    input_dir, _ = platform_input()
    target = outputs(input_dir)["3_t2_SPACE"]
    image = sitk.ReadImage(str(target))
    image.SetSpacing((3.3, 0.7, 0.65))
    sitk.WriteImage(image, str(target))
    code, _, _, stderr = run_entrypoint(input_dir, tiny_release)
    assert code == 1
    line = last_line(stderr)
    assert line.startswith(FAILURE_PREFIX) and "(input image '3_t2_SPACE.mha'): expected its output on the ground " \
        "truth's voxel grid, found another: spacing (mm): expected (3.3, 0.7, 0.6), found (3.3, 0.7, 0.65)" in line


def test_a_ground_truth_case_without_a_job_is_scored_missing(platform_input, run_entrypoint, tiny_release):
    input_dir, _ = platform_input()
    document = json.loads((input_dir / "predictions.json").read_text())
    kept = [job for job in document if job["inputs"][0]["image"]["name"] != "1_t1.mha"]
    (input_dir / "predictions.json").write_text(json.dumps(kept))
    code, metrics, _, stderr = run_entrypoint(input_dir, tiny_release, profile="spider2024")
    assert code == 0, stderr
    assert metrics["case"]["1_t1"]["status"] == "missing" and metrics["case"]["1_t1"]["reason"] == NO_JOB_REASON
    assert metrics["case"]["1_t1"]["metrics"]["DiceScoreVertebrae"] == 0.0
    assert metrics["case"]["1_t1"]["metrics"]["OveralASD"] > 0  # the field-of-view diagonal, not NaN
    assert metrics["counts"] == {"invalid": 0, "missing": 1, "scored": 2}
    assert non_finite_paths(metrics) == []


def test_an_output_under_another_name_is_found_and_withheld_case_values(platform_input, run_entrypoint, tiny_release):
    input_dir, _ = platform_input()
    target = outputs(input_dir)["1_t1"]
    target.rename(target.with_name("prediction.mha"))
    code, metrics, _, stderr = run_entrypoint(input_dir, tiny_release, case_values=False, phase="final")
    assert code == 0, stderr
    assert metrics["case"] == {} and metrics["evaluation"]["phase"] == "final"
    assert metrics["DiceScoreVertebrae"]["mean"] == 1.0


def test_ground_truth_baked_in_or_from_the_phase_but_not_both(platform_input, run_entrypoint, tiny_release, tmp_path):
    input_dir, _ = platform_input()
    code, metrics, _, stderr = run_entrypoint(input_dir, None, baked=tiny_release)
    assert code == 0 and metrics["counts"]["scored"] == 3, stderr
    code, _, _, stderr = run_entrypoint(input_dir, tiny_release, baked=tiny_release)
    assert code == 1 and "expected one ground truth, found two" in last_line(stderr)
    code, _, _, stderr = run_entrypoint(input_dir, None)
    assert code == 1 and last_line(stderr).startswith(f"{FAILURE_PREFIX}no ground truth: expected masks/<case>.mha in")
    flat = tmp_path / "flat"
    shutil.copytree(tiny_release / "masks", flat)
    code, _, _, stderr = run_entrypoint(input_dir, flat)
    assert code == 1 and last_line(stderr).endswith("found no masks/ folder (3 .mha files at its top level: put them "
                                                    "in masks/)")


def test_a_missing_or_broken_predictions_file_fails(run_entrypoint, tiny_release, tmp_path):
    empty = tmp_path / "empty-input"
    empty.mkdir()
    code, _, _, stderr = run_entrypoint(empty, tiny_release)
    assert code == 1 and last_line(stderr) == (f"{FAILURE_PREFIX}expected the platform's list of jobs at "
                                               f"{empty / 'predictions.json'}, found no such file")
    (empty / "predictions.json").write_text(json.dumps({"jobs": []}))
    code, _, _, stderr = run_entrypoint(empty, tiny_release)
    assert code == 1
    assert last_line(stderr) == f"{FAILURE_PREFIX}predictions.json: expected a list of jobs, found an object"


def test_an_unreadable_prediction_is_scored_invalid_as_spider_score_does(platform_input, run_entrypoint, tiny_release):
    input_dir, _ = platform_input()
    target = outputs(input_dir)["1_t2"]
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(target)))
    array[0, 0, 0] = 77  # not a SPIDER label
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(sitk.ReadImage(str(target)))
    sitk.WriteImage(image, str(target))
    code, metrics, _, stderr = run_entrypoint(input_dir, tiny_release)
    assert code == 0, stderr
    assert metrics["case"]["1_t2"]["status"] == "invalid" and "77" in metrics["case"]["1_t2"]["reason"]
    assert non_finite_paths(metrics) == []
