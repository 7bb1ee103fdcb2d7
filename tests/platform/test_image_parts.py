"""Without Docker: what goes into the evaluation image, its settings, and the local run's reading of a
`spider try` output and of how a container ended."""

from __future__ import annotations

import json

import pytest

from challenge.cli import main
from challenge.phases import get_phase
from evaluation.errors import EvaluationError
from evaluation.platform.config import EvaluationConfig
from evaluation.platform.errors import EvaluationImageError, LocalEvaluationError, PlatformError
from evaluation.platform.image import app_modules, evaluation_config, ground_truth_masks, write_context
from evaluation.platform.local_run import (
    NO_ERRORS,
    OOM_MESSAGE,
    TIME_MESSAGE,
    ContainerRun,
    _failure,
    measured,
    read_try_out,
    write_platform_input,
)
from evaluation.platform.predictions import read_predictions
from evaluation.platform.wheels import DISTRIBUTIONS, check_covered


def test_the_image_holds_what_scoring_imports_and_nothing_of_docker():
    modules, third_party = app_modules()
    for needed in ("evaluation/score.py", "evaluation/guard.py", "evaluation/report.py", "evaluation/profiles.py",
                   "evaluation/platform/entrypoint.py", "evaluation/platform/__init__.py", "challenge/rules.py",
                   "challenge/contract.py"):
        assert needed in modules
    for host_only in ("evaluation/platform/image.py", "evaluation/platform/local_run.py",
                      "evaluation/runner/docker_runner.py", "evaluation/commands/gc.py"):
        assert host_only not in modules
    assert not any(module.startswith(("baselines/", "submissions/", "leaderboard/")) for module in modules)
    assert "docker" not in third_party and "numpy" in third_party
    check_covered(third_party)  # every third-party import has its wheel
    with pytest.raises(EvaluationImageError, match="scoring imports torch, which the evaluation image does not"):
        check_covered(["numpy", "torch"], DISTRIBUTIONS)


def test_settings_follow_the_phase_and_read_back_from_labels():
    public = evaluation_config(get_phase("sanity-check"), profile="spider2024")
    hidden = evaluation_config(get_phase("final"), profile="full")
    assert public.case_values and not hidden.case_values  # the public site of hidden test data shows no cases
    assert hidden.scoring_time_limit_s == get_phase("final").scoring_time_limit_seconds
    assert evaluation_config(get_phase("final"), profile="full", case_values=True).case_values
    for config in (public, hidden):
        assert EvaluationConfig.from_labels(config.labels(), image="x") == config
        assert EvaluationConfig.from_mapping(json.loads(config.as_json()), source="x") == config
    with pytest.raises(PlatformError, match="carries no org.spider-harness.evaluation"):
        EvaluationConfig.from_labels({}, image="python:3.11-slim")
    with pytest.raises(EvaluationError, match="unknown scoring profile 'dice'"):
        evaluation_config(get_phase("final"), profile="dice")


def test_the_build_context_holds_modules_settings_and_ground_truth(tiny_release, tmp_path):
    masks = ground_truth_masks(tiny_release)
    modules, _ = app_modules()
    config = evaluation_config(get_phase("final"), profile="full", ground_truth_cases=len(masks))
    context = tmp_path / "context"
    context.mkdir()
    write_context(context, config=config, wheels=[], modules=modules, masks=masks)
    assert "pip install --no-index" in (context / "Dockerfile").read_text()
    assert (context / "app" / "evaluation" / "platform" / "entrypoint.py").is_file()
    assert (context / "app" / "challenge" / "phases.toml").is_file()
    assert sorted(p.name for p in (context / "ground-truth" / "masks").iterdir()) == [
        "1_t1.mha", "1_t2.mha", "3_t2_SPACE.mha"]
    assert EvaluationConfig.read(context / "config.json") == config
    with pytest.raises(EvaluationImageError, match="expected a SPIDER-layout folder with masks/<case>.mha, found no "
                                                   "masks/ folder in it"):
        ground_truth_masks(tiny_release / "images")


def test_a_try_out_becomes_the_platforms_input(tiny_release, write_try_out, tmp_path):
    try_out = write_try_out(tiny_release, tmp_path / "try")
    jobs = write_platform_input(read_try_out(try_out), tmp_path / "input", algorithm_image="Algorithm Image x")
    parsed = read_predictions(tmp_path / "input" / "predictions.json")
    assert {job.pk: job.case for job in parsed} == jobs
    assert sorted(jobs.values()) == ["1_t1", "1_t2", "3_t2_SPACE"]
    for job in parsed:
        written = job.output_path(tmp_path / "input").read_bytes()
        assert written == (try_out / "predictions" / f"{job.case}.mha").read_bytes()
        assert job.exec_duration_s == 12.5 and len(job.pk) == 36 and job.pk != job.output_image_pk


def test_a_try_out_with_a_failed_job_is_not_evaluated(tiny_release, write_try_out, tmp_path):
    try_out = write_try_out(tiny_release, tmp_path / "try")
    records = json.loads((try_out / "jobs.json").read_text())
    records[1]["status"] = "timed_out"
    (try_out / "jobs.json").write_text(json.dumps(records))
    with pytest.raises(LocalEvaluationError, match=r"The algorithm failed on one or more cases: 1_t2 \(timed_out\)"):
        read_try_out(try_out)
    records[1]["status"] = "succeeded"
    (try_out / "jobs.json").write_text(json.dumps(records))
    (try_out / "predictions" / "1_t2.mha").unlink()
    with pytest.raises(LocalEvaluationError, match="job 1_t2 succeeded, expected its prediction at .*, found no such"):
        read_try_out(try_out)
    with pytest.raises(LocalEvaluationError, match="expected a `spider try` output with jobs.json, found no such"):
        read_try_out(tmp_path / "nowhere")


@pytest.mark.parametrize(("run", "shown"), [
    (ContainerRun(1, "", "Traceback\n  ...\nevaluation failed: job x: no output\n\n", 1.0, False, False),
     "evaluation failed: job x: no output"),
    (ContainerRun(1, "", "", 1.0, False, False), NO_ERRORS),
    (ContainerRun(137, "", "", 1.0, False, True), OOM_MESSAGE),
    (ContainerRun(None, "", "", 9.0, True, False), TIME_MESSAGE),
])
def test_a_failed_run_says_what_the_platform_would_show(run, shown):
    failure = _failure(run, time_limit_s=3600, memory_bytes=8 * 1024**3)
    assert failure is not None and failure.last_stderr_line == shown and shown in str(failure)
    assert _failure(ContainerRun(0, "", "", 1.0, False, False), time_limit_s=1, memory_bytes=1) is None


def test_the_measured_line_is_read_from_stdout():
    stdout = '[spider] 3 jobs\n[spider] measured: {"cases": 3, "peak_memory_bytes": 1024, "seconds": 1.5}\n'
    assert measured(stdout) == {"cases": 3, "peak_memory_bytes": 1024, "seconds": 1.5}
    assert measured("nothing") == {}


def test_the_commands_refuse_bad_arguments_with_what_was_expected(tmp_path, capsys):
    assert main(["gc", "evaluation-image", "--phase", "nope", "--tag", "t"]) == 2
    assert "unknown phase 'nope'; phases declared: ['final', 'sanity-check']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["gc", "evaluate-locally", "--image", "t", "--predictions-from", str(tmp_path), "--time-limit", "0"])
    assert "expected a positive integer, found '0'" in capsys.readouterr().err
