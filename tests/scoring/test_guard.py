"""The scoring guard: a case whose scoring hangs or dies is invalid by the declared rule, the others are scored."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from scoring_fakes import misbehaving

from challenge import rules
from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S
from challenge.statuses import CaseStatus, RowStatus
from evaluation import guard
from evaluation.errors import EvaluationError
from evaluation.guard import CaseTask, decode_result, score_cases, score_guarded
from evaluation.prediction import Prediction
from evaluation.report import CaseOutcome
from evaluation.score import read_reference, score_case, score_folders

from .conftest import spine_reference, write_mask

LIMIT_S = 1
MARGIN_S = 5.0  # starting the forkserver, killing and reaping, a busy machine


def scorer(behaviour: str, *cases: str, pid_file: Path | None = None):
    return functools.partial(misbehaving, behaviour=behaviour, on_cases=cases,
                             pid_file=None if pid_file is None else str(pid_file))


def file_task(masks: Path, predictions: Path, case: str) -> CaseTask:
    return CaseTask(case, masks / f"{case}.mha", Prediction.file(predictions / f"{case}.mha"))


def invalid_rows(masks: Path, case: str):
    """The rows of `case` by the missing-case rule with status invalid, computed here."""
    reference = read_reference(masks / f"{case}.mha")
    return score_case(reference.array, None, reference.geometry.spacing_zyx_mm, case=case,
                      missing_status=RowStatus.INVALID)


def rows_by_case(report):
    found: dict[str, list] = {}
    for row in report.rows:
        found.setdefault(row.case, []).append(row)
    return found


@pytest.fixture
def normal_report(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    return score_folders(masks, predictions, tmp_path / "normal", progress=False, workers=2)


# ---- a hanging scorer -----------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", ["sleep", "hold_the_gil"])
def test_a_hanging_case_is_invalid_within_the_limit_and_the_others_are_scored(
        scoring_folders, tmp_path, normal_report, behaviour):
    masks, predictions = scoring_folders
    began = time.monotonic()
    report = score_folders(masks, predictions, tmp_path / "out", progress=False, workers=2,
                           scoring_time_limit_s=LIMIT_S, scorer=scorer(behaviour, "b_perturbed"))
    assert time.monotonic() - began < LIMIT_S + MARGIN_S
    outcome = report.case_outcome("b_perturbed")
    assert outcome.status is CaseStatus.INVALID
    assert outcome.reason == f"scoring took longer than {LIMIT_S} s (the scoring time limit)"
    rows, normal = rows_by_case(report), rows_by_case(normal_report)
    assert rows["b_perturbed"] == list(invalid_rows(masks, "b_perturbed"))
    assert {row.status for row in rows["b_perturbed"]} == {RowStatus.INVALID}
    assert {case: rows[case] for case in rows if case != "b_perturbed"} == {
        case: normal[case] for case in normal if case != "b_perturbed"}
    assert [o for o in report.cases if o.case != "b_perturbed"] == [
        o for o in normal_report.cases if o.case != "b_perturbed"]
    document = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert document["case"]["b_perturbed"] == {
        "status": "invalid", "reason": outcome.reason, "metrics": document["case"]["b_perturbed"]["metrics"]}
    assert document["rules"]["scoring_guard"] == rules.SCORING_GUARD_RULE


@pytest.mark.timeout(60)
def test_each_case_has_its_own_limit_and_one_worker_is_guarded_too(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    began = time.monotonic()
    report = score_folders(masks, predictions, tmp_path / "out", progress=False, workers=1,
                           scoring_time_limit_s=LIMIT_S, scorer=scorer("sleep", "a_perfect", "c_offgrid"))
    assert time.monotonic() - began < 2 * LIMIT_S + MARGIN_S
    statuses = {o.case: o.status for o in report.cases}
    assert statuses == {"a_perfect": CaseStatus.INVALID, "b_perturbed": CaseStatus.SCORED,
                        "c_offgrid": CaseStatus.INVALID, "d_badlabel": CaseStatus.INVALID,
                        "e_missing": CaseStatus.MISSING, "f_link": CaseStatus.INVALID}
    assert report.case_outcome("c_offgrid").reason.startswith("scoring took longer than")
    assert "spacing" not in report.case_outcome("c_offgrid").reason


# ---- a scorer that dies ---------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour, reason", [
    ("kill_itself", "scoring stopped: the scoring process died (signal 9, SIGKILL)"),
    ("segfault", "scoring stopped: the scoring process died (signal 11, SIGSEGV)"),
    ("exit", "scoring stopped: the scoring process ended without a result (exit code 3)"),
    ("raise", "scoring stopped: the scoring process raised RuntimeError: the scorer fell over"),
    ("run_out_of_memory", "scoring stopped: the scoring process raised MemoryError: "),
])
def test_a_case_whose_scoring_dies_is_invalid_with_a_reason_naming_the_death(
        scoring_folders, tmp_path, normal_report, behaviour, reason):
    masks, predictions = scoring_folders
    report = score_folders(masks, predictions, tmp_path / "out", progress=False, workers=2,
                           scorer=scorer(behaviour, "a_perfect"))
    assert report.case_outcome("a_perfect") == CaseOutcome("a_perfect", CaseStatus.INVALID, reason)
    assert rows_by_case(report)["a_perfect"] == list(invalid_rows(masks, "a_perfect"))
    assert report.case_outcome("b_perturbed") == normal_report.case_outcome("b_perturbed")
    assert rows_by_case(report)["b_perturbed"] == rows_by_case(normal_report)["b_perturbed"]


@pytest.mark.timeout(60)
def test_an_invalid_prediction_keeps_its_own_reason_under_the_guard(scoring_folders):
    masks, predictions = scoring_folders
    result = score_guarded(file_task(masks, predictions, "d_badlabel"))
    assert result.outcome.status is CaseStatus.INVALID and "42" in result.outcome.reason
    assert not result.outcome.reason.startswith("scoring")


@pytest.mark.timeout(60)
def test_a_result_larger_than_the_limit_is_not_read(scoring_folders, monkeypatch):
    masks, predictions = scoring_folders
    monkeypatch.setattr(guard, "MAX_RESULT_BYTES", 4096)  # checked by the parent; a case's rows take more
    result = score_guarded(file_task(masks, predictions, "a_perfect"))
    assert result.outcome.status is CaseStatus.INVALID
    assert result.outcome.reason == "scoring stopped: the scoring process sent more than 4096 bytes"
    assert result.rows == invalid_rows(masks, "a_perfect")


# ---- what stays an error ----------------------------------------------------------------------


def test_an_unreadable_reference_raises_in_the_parent(tmp_path):
    bad = spine_reference()
    bad[0, 0, 0] = 77
    write_mask(tmp_path / "masks" / "a.mha", bad)
    from challenge.errors import UnknownLabelError

    with pytest.raises(UnknownLabelError, match="a.mha"):
        score_guarded(CaseTask("a", tmp_path / "masks" / "a.mha", Prediction.missing("none")))


@pytest.mark.parametrize("limit", [0, -1, 1.5e400, True, "300"])
def test_the_time_limit_must_be_a_positive_number(scoring_folders, tmp_path, limit):
    masks, predictions = scoring_folders
    with pytest.raises(EvaluationError, match="scoring time limit must be a positive number of seconds, found"):
        score_folders(masks, predictions, tmp_path / "out", progress=False, scoring_time_limit_s=limit)


@pytest.mark.timeout(60)
def test_spider_score_takes_the_scoring_time_limit(scoring_folders, tmp_path, capsys):
    from challenge.cli import main

    masks, predictions = scoring_folders
    arguments = ["score", "--reference", str(masks), "--predictions", str(predictions), "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main([*arguments, "--scoring-time-limit", "0"])
    assert "expected a positive integer, found '0'" in capsys.readouterr().err
    assert main([*arguments, "--scoring-time-limit", "30", "--quiet"]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["counts"]["scored"] == 2


@pytest.mark.timeout(120)
def test_a_script_whose_children_cannot_start_gets_an_error_not_invalid_cases(scoring_folders, tmp_path):
    """A script without the `if __name__ == "__main__":` block: its children fail before they
    score anything, which is no submission's fault."""
    masks, predictions = scoring_folders
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from evaluation.score import score_folders
        score_folders({str(masks)!r}, {str(predictions)!r}, {str(tmp_path / "out")!r}, progress=False)
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=100)
    assert done.returncode != 0
    assert "ended before it started scoring (exit code 1)" in done.stderr
    assert not (tmp_path / "out").exists()


# ---- the child does not outlive the parent ------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_child_stuck_in_c_code_dies_with_its_parent(scoring_folders, tmp_path):
    masks, predictions = scoring_folders
    pid_file = tmp_path / "child.pid"
    code = textwrap.dedent(f"""
        import functools, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from scoring_fakes import misbehaving
        from evaluation.guard import CaseTask, score_guarded
        from evaluation.prediction import Prediction
        task = CaseTask("a_perfect", {str(masks / "a_perfect.mha")!r}, Prediction.missing("none"))
        score_guarded(task, time_limit_s=3600, scorer=functools.partial(
            misbehaving, behaviour="hold_the_gil", on_cases=("a_perfect",), pid_file={str(pid_file)!r}))
    """)
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.is_file() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "the scoring child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert not _gone(child)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = not _gone(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the scoring child outlived its parent"


# ---- the declared rule, and what a child may send ------------------------------------------------


def test_the_declared_rule_shows_the_reasons_the_guard_records():
    assert rules.rules_as_data()["scoring_guard"] == rules.SCORING_GUARD_RULE
    assert guard.timed_out_reason(DEFAULT_SCORING_TIME_LIMIT_S) in rules.SCORING_GUARD_RULE
    assert guard.died_reason(-signal.SIGKILL) in rules.SCORING_GUARD_RULE
    assert f"{DEFAULT_SCORING_TIME_LIMIT_S} s" in rules.SCORING_GUARD_RULE


@pytest.mark.parametrize("payload, problem", [
    (b"\xff\xfe", "expected JSON"),
    (b"[]", "expected an object with 'outcome' and 'rows'"),
    (b'{"outcome": ["x", "scored", ""], "rows": []}', "expected rows of case 'a', found case 'x'"),
    (b'{"outcome": ["a", "great", ""], "rows": []}', "expected a case status (scored, missing, invalid)"),
    (b'{"outcome": ["a", "scored", ""], "rows": {}}', "expected a list of rows"),
    (b'{"outcome": ["a", "scored", ""], "rows": [["a", "discs", "all", "dice", "1", "scored", null]]}',
     "expected a number as the value of discs/all/dice"),
    (b'{"outcome": ["a", "scored", ""], "rows": [["b", "discs", "all", "dice", 1, "scored", null]]}',
     "expected rows of case 'a', found case 'b'"),
    (b'{"outcome": ["a", "scored", ""], "rows": [["a", "discs", "all", "dice", 1, "best", null]]}',
     "expected a row status"),
    (b'{"outcome": ["a", "scored", ""], "rows": [["a", "discs", "L1", "dice", 1, "scored", "201"]]}',
     "expected an integer label or null"),
])
def test_a_result_that_is_not_what_a_child_writes_is_refused(payload, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        decode_result(payload, "a")


def test_a_child_result_round_trips_nan_and_labels():
    payload = (b'{"outcome": ["a", "scored", ""], "rows": [["a", "discs", "L5/S1", "hd95", NaN, '
               b'"prediction_empty", 201], ["a", "discs", "all", "dice", 1, "scored", null]]}')
    result = decode_result(payload, "a")
    assert result.outcome == CaseOutcome("a", CaseStatus.SCORED, "")
    first, second = result.rows
    assert first.value != first.value and first.label == 201 and first.status is RowStatus.PREDICTION_EMPTY
    assert second.value == 1.0 and isinstance(second.value, float) and second.label is None
    assert decode_result(b'{"raised": "ValueError: x"}', "a") == "ValueError: x"


@pytest.mark.timeout(60)
def test_score_cases_reports_each_case_as_it_ends(scoring_folders):
    masks, predictions = scoring_folders
    tasks = [file_task(masks, predictions, case) for case in ("a_perfect", "b_perturbed")]
    seen = []
    results = score_cases(tasks, workers=2, on_result=seen.append)
    assert seen == results and {r.outcome.case for r in results} == {"a_perfect", "b_perturbed"}
    with pytest.raises(EvaluationError, match="workers must be a positive integer, found 0"):
        score_cases(tasks, workers=0)
