"""Grand-challenge "invoke" images: the label picks the path, the helper's outcome maps to a status
and reason (unit tests, no engine), and real invoke servers end with theirs through run_job, leaving
no container behind (tests/runner/containers/invoke_*/, built FROM python:3.11-slim)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from challenge.geometry import Geometry
from challenge.statuses import JobStatus
from evaluation.runner import invoke
from evaluation.runner.docker_runner import JOB_LABEL, RunnerSettings, _Ending, _JobContext, run_job
from evaluation.runner.errors import RunnerError

# ---------------------------------------------------------------- label, helper flags, outcomes (no engine)


@pytest.mark.parametrize("config, method", [
    ({}, "exec"),
    ({"Labels": None}, "exec"),
    ({"Labels": {"maintainer": "x"}}, "exec"),
    ({"Labels": {invoke.API_METHOD_LABEL: "exec"}}, "exec"),
    ({"Labels": {invoke.API_METHOD_LABEL: "invoke"}}, "invoke"),
])
def test_api_method_from_the_label(config, method):
    assert invoke.api_method(config) == method


@pytest.mark.parametrize("value", ["batch", "Invoke", "", "invoke "])
def test_an_unknown_api_method_is_refused_by_name(value):
    with pytest.raises(RunnerError, match="org.grand-challenge.api-method=") as raised:
        invoke.api_method({"Labels": {invoke.API_METHOD_LABEL: value}})
    assert repr(value) in str(raised.value)


def test_helper_options_share_the_algorithms_namespace_under_tight_limits():
    options = invoke.helper_options(image_id="sha256:abc", algorithm_id="c0ffee", mode=invoke.INVOKE_CALL,
                                    budget_seconds=6.0, settings=RunnerSettings(user="65534:65534",
                                                                                gpu_device_ids=None))
    assert options["network_mode"] == "container:c0ffee"
    assert options["read_only"] is True and options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges"] and options["user"] == "65534:65534"
    assert options["mem_limit"] == options["memswap_limit"] == invoke.HELPER_MEMORY_BYTES
    assert options["pids_limit"] == invoke.HELPER_PIDS_LIMIT
    assert options["labels"] == {JOB_LABEL: "1"}
    assert options["command"][:3] == ["python3", "-I", "-c"] and options["command"][4:7] == ["4743", "invoke", "6.000"]


def test_parse_outcome_takes_the_last_json_line():
    log = 'noise\n{"outcome": "never_healthy", "seconds": 6}\n'
    assert invoke.parse_outcome(log) == invoke.Outcome("never_healthy")
    assert invoke.parse_outcome('{"outcome": "bad_status", "status": 200}') == invoke.Outcome("bad_status", 200)
    assert invoke.parse_outcome("Traceback ...\n") is None
    assert invoke.parse_outcome('{"outcome": "made-up"}') is None


def test_health_wait_is_300_s_or_the_time_limit(test_phase):
    assert invoke.health_seconds(test_phase) == 6
    assert invoke.health_seconds(dataclasses.replace(test_phase, time_limit_seconds=1200)) == 300


@pytest.fixture
def job(tmp_path, test_phase):
    (tmp_path / "output").mkdir()
    grid = Geometry((4, 4, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return _JobContext("1_t1", "sha256:abc", test_phase, grid, tmp_path, tmp_path / "output", tmp_path / "log.txt",
                       RunnerSettings(gpu_device_ids=None))


def _ending(exit_code=143, *, killed_for="stopped", size_reason=None, state=None, log="starting\nboom\n"):
    return _Ending(killed_for, size_reason, exit_code, state or {}, 3.0, log, None)


@pytest.mark.parametrize("outcome, died, ending, status, reason", [
    (invoke.Outcome("never_healthy"), False, _ending(), JobStatus.FAILED,
     "the invoke server never answered GET /health with 200 within 6 s; last log line: boom"),
    (None, False, _ending(137, killed_for="time"), JobStatus.FAILED,
     "the invoke server never answered GET /health with 200 within 6 s"),
    (invoke.Outcome("redirect", 302), False, _ending(), JobStatus.FAILED, "GET /health answered a redirect (302)"),
    (None, True, _ending(0, killed_for=None), JobStatus.FAILED,
     "the invoke server exited with code 0 before it was ready; last log line: boom"),
    (None, True, _ending(3, killed_for=None), JobStatus.FAILED, "exited with code 3; last log line: boom"),
    (None, True, _ending(137, killed_for=None, state={"OOMKilled": True}), JobStatus.OUT_OF_MEMORY,
     "more than the memory limit of 256m"),
    (invoke.Outcome("healthy"), False, _ending(size_reason="/output grew past the limit"),
     JobStatus.OUTPUT_TOO_LARGE, "/output grew past the limit"),
], ids=lambda value: value.kind if isinstance(value, invoke.Outcome) else None)
def test_a_server_that_never_got_ready_gives_its_cases_the_reason(job, outcome, died, ending, status, reason):
    result = invoke.health_failure(job, ending, outcome, died=died)
    assert result is not None and result.status is status
    assert reason in result.reason, result.reason


def test_a_healthy_server_is_no_failure(job):
    assert invoke.health_failure(job, _ending(), invoke.Outcome("healthy"), died=False) is None


@pytest.mark.parametrize("outcome, died, ending, status, reason", [
    (invoke.Outcome("bad_status", 200), False, _ending(), JobStatus.FAILED, "POST /invoke answered 200, expected 201"),
    (invoke.Outcome("bad_status", 500), False, _ending(), JobStatus.FAILED, "POST /invoke answered 500, expected 201"),
    (invoke.Outcome("timeout"), False, _ending(), JobStatus.TIMED_OUT,
     "POST /invoke did not answer within the time limit of 6 s"),
    (invoke.Outcome("connection_lost"), True, _ending(4, killed_for=None), JobStatus.FAILED,
     "exited with code 4; last log line: boom"),
    (None, True, _ending(1, killed_for=None), JobStatus.FAILED, "exited with code 1; last log line: boom"),
    (None, True, _ending(0, killed_for=None), JobStatus.FAILED,
     "the invoke server exited with code 0 before answering POST /invoke; last log line: boom"),
    (invoke.Outcome("connection_lost"), True, _ending(137, killed_for=None, state={"OOMKilled": True}),
     JobStatus.OUT_OF_MEMORY, "more than the memory limit of 256m"),
    (invoke.Outcome("connection_lost"), False, _ending(), JobStatus.FAILED,
     "the invoke server closed the connection during POST /invoke without answering"),
    (None, False, _ending(137, killed_for="time"), JobStatus.TIMED_OUT, "time limit of 6 s and was killed"),
    (invoke.Outcome("created", 201), False, _ending(size_reason="/output grew past the limit"),
     JobStatus.OUTPUT_TOO_LARGE, "/output grew past the limit"),
], ids=lambda value: value.kind if isinstance(value, invoke.Outcome) else None)
def test_outcome_maps_to_status_and_reason(job, outcome, died, ending, status, reason):
    result = invoke.invoke_verdict(job, ending, outcome, died=died)
    assert result.status is status
    assert reason in result.reason, result.reason
    assert result.exit_code == ending.exit_code


def test_created_leads_to_the_output_check(job):
    result = invoke.invoke_verdict(job, _ending(), invoke.Outcome("created", 201), died=False)
    assert result.status is JobStatus.MISSING_OUTPUT


def test_a_helper_that_reports_nothing_is_a_runner_error(job):
    with pytest.raises(RunnerError, match="without reporting an outcome"):
        invoke.invoke_verdict(job, _ending(), None, died=False)


# ---------------------------------------------------------------- real invoke servers

CASES = [
    # name, status, words of the reason, words the log must hold
    ("invoke_good", JobStatus.SUCCEEDED, "valid segmentation", "foreground voxels"),
    ("invoke_network", JobStatus.SUCCEEDED, "valid segmentation", "interfaces: lo\nno network"),
    ("invoke_never_healthy", JobStatus.FAILED,
     "the invoke server never answered GET /health with 200 within 6 s", "never finishes loading"),
    ("invoke_200", JobStatus.FAILED, "POST /invoke answered 200, expected 201", '"POST /invoke HTTP/1.1" 200'),
    ("invoke_hangs", JobStatus.TIMED_OUT, "POST /invoke did not answer within the time limit of 6 s",
     "thinking for 60 s"),
    ("invoke_dies", JobStatus.FAILED, "exited with code 4; last log line: dying on /invoke", "dying on /invoke"),
    ("invoke_redirect", JobStatus.FAILED, "GET /health answered a redirect (302)", '"GET /health HTTP/1.1" 302'),
    ("invoke_badlabel", JobStatus.NOT_STARTED, "org.grand-challenge.api-method='batch'", ""),
]


@pytest.mark.docker
@pytest.mark.timeout(180)
@pytest.mark.parametrize("name, status, reason, log_words", CASES, ids=[c[0] for c in CASES])
def test_invoke_container(name, status, reason, log_words, docker_client, algorithm_image, input_image, test_phase,
                          tmp_path):
    job_dir = tmp_path / "job"
    job = run_job(docker_client, image_id=algorithm_image(name), case="1_t1", input_image=input_image,
                  phase=test_phase, job_dir=job_dir)
    log = job.log_path.read_text()
    assert job.status is status, f"{job.status}: {job.reason}\n{log[-2000:]}"
    assert reason in job.reason
    assert log_words in log
    assert job.seconds < test_phase.time_limit_seconds + 5
    assert (job.prediction_path is not None) is (status is JobStatus.SUCCEEDED)
    # The low-level listing: the CI's own jobs may come and go meanwhile (no inspect of each).
    left = {c["Id"] for c in docker_client.api.containers(all=True, filters={"label": JOB_LABEL})}
    if status is JobStatus.NOT_STARTED:
        assert not (job_dir / "invoke.json").exists()
        return
    algorithm = json.loads((job_dir / "container.json").read_text())
    helper_audit = "invoke.json" if (job_dir / "invoke.json").exists() else "health.json"  # it never got ready
    helper = json.loads((job_dir / helper_audit).read_text())
    assert algorithm["Id"] not in left and helper["Id"] not in left
    # The production flags for the server; the helper in its namespace, locked down as well.
    assert algorithm["HostConfig"]["NetworkMode"] == "none" and algorithm["HostConfig"]["ReadonlyRootfs"]
    assert helper["HostConfig"]["NetworkMode"] == f"container:{algorithm['Id']}"
    assert helper["HostConfig"]["ReadonlyRootfs"] and helper["HostConfig"]["CapDrop"] == ["ALL"]
    assert helper["HostConfig"]["Memory"] == invoke.HELPER_MEMORY_BYTES


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_an_exec_image_still_runs_the_exec_way(docker_client, algorithm_image, input_image, test_phase, tmp_path):
    job = run_job(docker_client, image_id=algorithm_image("good"), case="1_t1", input_image=input_image,
                  phase=test_phase, job_dir=tmp_path / "job")
    assert job.status is JobStatus.SUCCEEDED and job.exit_code == 0
    assert not (tmp_path / "job" / "invoke.json").exists()
