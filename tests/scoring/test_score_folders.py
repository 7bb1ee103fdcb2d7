"""Scoring folders: matching by name, recorded reasons, the two results files, reproducibility."""

from __future__ import annotations

import csv
import json
import math

import pytest

from challenge import rules
from challenge.cli import main
from challenge.errors import MissingFileError, UnknownLabelError
from challenge.statuses import CaseStatus, RowStatus
from evaluation.commands.score import PROFILE_CHOICES
from evaluation.errors import EvaluationError
from evaluation.profiles import PROFILES
from evaluation.report import CASES_COLUMNS, SCHEMA_VERSION
from evaluation.score import score_folders

from .conftest import spine_reference, write_mask


@pytest.fixture
def scored(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    out = tmp_path / "out"
    return score_folders(masks, predictions, out, progress=False), out


def test_each_case_gets_a_status_and_a_reason(scored):
    report, _ = scored
    outcomes = {o.case: o for o in report.cases}
    assert list(outcomes) == sorted(outcomes)
    assert outcomes["a_perfect"].status is CaseStatus.SCORED and outcomes["a_perfect"].reason == ""
    assert outcomes["b_perturbed"].status is CaseStatus.SCORED
    assert outcomes["c_offgrid"].status is CaseStatus.INVALID
    assert "spacing" in outcomes["c_offgrid"].reason
    assert outcomes["d_badlabel"].status is CaseStatus.INVALID and "42" in outcomes["d_badlabel"].reason
    assert outcomes["e_missing"].status is CaseStatus.MISSING and "e_missing.mha" in outcomes["e_missing"].reason
    assert outcomes["f_link"].status is CaseStatus.INVALID and "link" in outcomes["f_link"].reason
    assert report.unmatched_predictions == ("zz_extra.mha",)


def test_missing_and_invalid_cases_count_worst_in_the_aggregates(scored):
    report, _ = scored
    assert report.value("a_perfect", "vertebrae/all/dice") == 1.0
    for case in ("c_offgrid", "e_missing"):
        assert report.value(case, "vertebrae/all/dice") == 0.0
    statuses = {r.status for r in report.rows if r.case == "c_offgrid"}
    assert statuses == {RowStatus.INVALID}
    aggregate = report.aggregates["vertebrae/all/dice"]
    assert aggregate.n == 6
    values = [report.value(o.case, "vertebrae/all/dice") for o in report.cases]
    assert aggregate.mean == pytest.approx(sum(values) / 6)


def test_metrics_json_layout(scored):
    report, out = scored
    document = json.loads((out / "metrics.json").read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["rules_version"] == rules.RULES_VERSION
    assert document["profile"] == "full"
    assert document["edge_cases"] == json.loads(json.dumps(rules.edge_case_table()))
    assert set(document["case"]) == {o.case for o in report.cases}
    assert document["case"]["e_missing"]["status"] == "missing"
    assert document["case"]["a_perfect"]["metrics"]["discs/L4/L5/dice"] == 1.0
    aggregate = document["aggregates"]["vertebrae/all/dice"]
    assert set(aggregate) == {"n", "mean", "std", "median", "q1", "q3"}
    assert document["columns"]["vertebrae/all/hd95"] == {
        "structure": "vertebrae", "level": "all", "metric": "hd95", "unit": "mm", "direction": "lower"}
    text = (out / "metrics.json").read_text()
    assert text == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n", "sorted keys"


def test_non_finite_numbers_are_encoded_explicitly(tmp_path):
    masks, predictions = tmp_path / "m", tmp_path / "p"
    write_mask(masks / "only.mha", spine_reference())
    predictions.mkdir()
    out = tmp_path / "out"
    score_folders(masks, predictions, out, progress=False)
    text = (out / "metrics.json").read_text()
    document = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert document["aggregates"]["vertebrae/all/dice"]["std"] == "NaN"  # one case: no sample std
    assert "NaN" in document["non_finite_numbers"]


def test_cases_csv_is_the_long_table(scored):
    report, out = scored
    with (out / "cases.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == CASES_COLUMNS
    assert len(table) == len(report.rows)
    first = table[0]
    assert first["case"] == "a_perfect" and first["structure"] == "vertebrae" and first["level"] == "L5"
    assert {row["status"] for row in table if row["case"] == "e_missing"} == {"missing"}
    for row in table:
        assert math.isfinite(float(row["value"]))


@pytest.mark.timeout(120)
def test_same_inputs_give_byte_identical_files_with_any_number_of_workers(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    outputs = []
    for index, workers in enumerate((1, 1, 2)):
        out = tmp_path / f"out{index}"
        score_folders(masks, predictions, out, progress=False, workers=workers)
        outputs.append(((out / "metrics.json").read_bytes(), (out / "cases.csv").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]


def test_failure_reasons_replace_the_generic_reason(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    report = score_folders(masks, predictions, tmp_path / "out", progress=False,
                           failure_reasons={"e_missing": "timed out after 600 s", "a_perfect.mha": "exit code 137"})
    outcomes = {o.case: o for o in report.cases}
    assert outcomes["e_missing"].status is CaseStatus.MISSING
    assert outcomes["e_missing"].reason == "timed out after 600 s"
    assert outcomes["a_perfect"].status is CaseStatus.INVALID, "a failed job's output is not scored"
    assert report.value("a_perfect", "vertebrae/all/dice") == 0.0


def test_failure_reason_for_an_unknown_case_is_an_error(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    with pytest.raises(EvaluationError, match="nope"):
        score_folders(masks, predictions, tmp_path / "out", progress=False, failure_reasons={"nope": "x"})


def test_folder_errors_name_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="no reference masks"):
        score_folders(tmp_path / "empty", tmp_path / "empty", tmp_path / "out", progress=False)
    write_mask(tmp_path / "masks" / "a.mha", spine_reference())
    with pytest.raises(MissingFileError, match="predictions folder"):
        score_folders(tmp_path / "masks", tmp_path / "absent", tmp_path / "out", progress=False)
    with pytest.raises(EvaluationError, match="profile"):
        score_folders(tmp_path / "masks", tmp_path / "empty", tmp_path / "out", progress=False, profile="x")
    with pytest.raises(EvaluationError, match="workers"):
        score_folders(tmp_path / "masks", tmp_path / "empty", tmp_path / "out", progress=False, workers=0)


def test_broken_reference_is_an_error_not_a_score(tmp_path):
    bad = spine_reference()
    bad[0, 0, 0] = 77
    write_mask(tmp_path / "masks" / "a.mha", bad)
    (tmp_path / "p").mkdir()
    with pytest.raises(UnknownLabelError, match="a.mha"):
        score_folders(tmp_path / "masks", tmp_path / "p", tmp_path / "out", progress=False)


def test_prediction_in_a_wider_integer_type_is_accepted(tmp_path):
    import SimpleITK as sitk

    reference = spine_reference()
    write_mask(tmp_path / "masks" / "a.mha", reference)
    write_mask(tmp_path / "p" / "a.mha", reference, pixel_type=sitk.sitkInt32)
    report = score_folders(tmp_path / "masks", tmp_path / "p", tmp_path / "out", progress=False)
    assert report.cases[0].status is CaseStatus.SCORED
    assert report.value("a", "vertebrae/all/dice") == 1.0


def test_cli_choices_are_the_declared_profiles():
    assert set(PROFILE_CHOICES) == set(PROFILES)


@pytest.mark.parametrize("profile", ["full", "spider2024"])
def test_spider_score_command(scoring_folders, tmp_path, capsys, profile):
    masks, predictions = scoring_folders
    out = tmp_path / "out"
    code = main(["score", "--reference", str(masks), "--predictions", str(predictions), "--out", str(out),
                 "--profile", profile, "--quiet"])
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["profile"] == profile
    if profile == "spider2024":
        assert document["aggregates"]["DiceScoreVertebrae"]["n"] == 6
    code = main(["score", "--reference", str(masks), "--predictions", str(predictions), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert "c_offgrid: invalid" in captured.out and "e_missing: missing" in captured.out


def test_spider_score_reports_errors_without_a_trace(tmp_path, capsys):
    code = main(["score", "--reference", str(tmp_path / "nothing"), "--predictions", str(tmp_path),
                 "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_scores_do_not_depend_on_the_image_direction(tmp_path):
    from .conftest import perturbed

    reference = spine_reference()
    prediction = perturbed(reference)
    reports = []
    for index, direction in enumerate([(1, 0, 0, 0, 1, 0, 0, 0, 1), (0, 0, -1, 1, 0, 0, 0, -1, 0)]):
        write_mask(tmp_path / f"m{index}" / "a.mha", reference, direction=direction)
        write_mask(tmp_path / f"p{index}" / "a.mha", prediction, direction=direction)
        reports.append(score_folders(tmp_path / f"m{index}", tmp_path / f"p{index}", tmp_path / f"o{index}",
                                     progress=False))
    assert [r.value for r in reports[0].rows] == [r.value for r in reports[1].rows]


def test_reference_with_a_sheared_direction_is_rejected(tmp_path):
    from challenge.errors import UnreadableFileError

    write_mask(tmp_path / "m" / "a.mha", spine_reference(), direction=(1, 0, 0, 0.2, 1, 0, 0, 0, 1))
    (tmp_path / "p").mkdir()
    with pytest.raises(UnreadableFileError, match="orthonormal"):
        score_folders(tmp_path / "m", tmp_path / "p", tmp_path / "out", progress=False)
