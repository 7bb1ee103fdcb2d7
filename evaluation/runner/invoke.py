"""Grand-challenge "invoke" images: a long-lived HTTP server that is triggered per case.

An image labelled `org.grand-challenge.api-method=invoke` starts, as its ENTRYPOINT, a server on
port 4743 that waits for `POST /invoke`. The runner starts it with exactly the production flags
of an exec job (no network among them), then a small helper container from the offline base
image that joins the algorithm's own network namespace (`network_mode=container:<id>`), so it
reaches 127.0.0.1:4743 while the algorithm still reaches nothing else. The helper polls
`GET /health`, sends `POST /invoke` and prints its outcome as one JSON line. Then the server gets
SIGTERM, 5 s of grace and SIGKILL, and the job's output is checked as for an exec job. One
container serves one case (the batch size is one), so the per-job model is unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from challenge.statuses import JobStatus
from challenge.text import shown, with_log_line
from evaluation.runner import docker_runner as runner
from evaluation.runner.base_image import BASE_TAG, SLIM_TAG
from evaluation.runner.errors import RunnerError
from evaluation.runner.output_check import measure_folder, output_too_large, remove_output

API_METHOD_LABEL = "org.grand-challenge.api-method"
EXEC = "exec"
INVOKE = "invoke"
PORT = 4743
SERVER_ENVIRONMENT = {"GRAND_CHALLENGE_COMPONENT_USER_WEBSERVER_PORT": str(PORT)}
"""Set, besides the platform's environment, in an invoke image's container."""
HEALTH_LIMIT_SECONDS = 300.0
HEALTH_CALL_SECONDS = 10.0
STOP_GRACE_SECONDS = 5
# How long after the phase's time limit the runner waits for the helper's own report (the helper
# keeps to the limit itself; this only covers its start and its last print).
_HELPER_MARGIN_SECONDS = 5.0
# Given to a server whose connection dropped during POST /invoke to exit by itself (it died).
_DEATH_WAIT_SECONDS = 1.0
HELPER_MEMORY_BYTES = 64 * 1024**2
HELPER_PIDS_LIMIT = 16
OUTCOMES = ("created", "never_healthy", "redirect", "bad_status", "timeout", "connection_lost")

# The helper, run as `python3 -I -c HELPER_SCRIPT PORT BUDGET_SECONDS HEALTH_LIMIT HEALTH_CALL`; stdlib only.
# http.client follows no redirect, so a 3xx is seen as such.
HELPER_SCRIPT = r"""
import http.client, json, sys, time
port, budget, health_limit, per_call = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
health_limit = min(health_limit, budget)
start = time.monotonic()
def say(**outcome):
    outcome["seconds"] = round(time.monotonic() - start, 3)
    print(json.dumps(outcome), flush=True)
    sys.exit(0)
def call(method, path, timeout):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None)
        response = connection.getresponse()
        response.read(65536)
        return response.status
    finally:
        connection.close()
while True:
    left = health_limit - (time.monotonic() - start)
    if left <= 0:
        say(outcome="never_healthy")
    try:
        status = call("GET", "/health", min(per_call, left))
    except (OSError, http.client.HTTPException):
        status = None  # refused, reset or a call that timed out: not up yet
    if status == 200:
        break
    if status is not None and 300 <= status < 400:
        say(outcome="redirect", status=status)
    time.sleep(max(0.0, min(0.1, health_limit - (time.monotonic() - start))))
left = budget - (time.monotonic() - start)
if left <= 0:
    say(outcome="timeout")
try:
    status = call("POST", "/invoke", left)
except TimeoutError:
    say(outcome="timeout")
except (OSError, http.client.HTTPException) as error:
    say(outcome="connection_lost", error=repr(error)[:200])
say(outcome="created" if status == 201 else "bad_status", status=status)
"""


def api_method(image_config: dict) -> str:
    """`exec` or `invoke` from the image's label (absent: exec); RunnerError for any other value."""
    labels = image_config.get("Labels") or {}
    value = labels.get(API_METHOD_LABEL)
    if value is None or value == EXEC:
        return EXEC
    if value == INVOKE:
        return INVOKE
    raise RunnerError(
        f"the image's label {API_METHOD_LABEL}={shown(str(value), limit=100)!r} is not one the platform knows; "
        f"use '{EXEC}' (or no label) or '{INVOKE}'"
    )


def helper_image(client) -> str:
    """The id of the image the helper runs: the offline base image, else python:3.11-slim."""
    import docker.errors

    for tag in (BASE_TAG, SLIM_TAG):
        try:
            return client.images.get(tag).id
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError as error:
            raise RunnerError(f"cannot look up the invoke helper's image {tag!r}: {error}") from error
    raise RunnerError(
        f"invoke images need the helper image {BASE_TAG} (or {SLIM_TAG}) on this engine; build it with "
        "`spider images base`"
    )


def helper_options(*, image_id: str, algorithm_id: str, budget_seconds: float, settings) -> dict:
    """Keyword arguments of `client.containers.create` for the helper: tight limits, no capabilities,
    the job's user, and the algorithm container's network namespace (which has no network)."""
    from docker.types import LogConfig

    return dict(
        image=image_id,
        command=["python3", "-I", "-c", HELPER_SCRIPT, str(PORT), f"{budget_seconds:.3f}",
                 f"{HEALTH_LIMIT_SECONDS:g}", f"{HEALTH_CALL_SECONDS:g}"],
        entrypoint=[],
        user=settings.user,
        network_mode=f"container:{algorithm_id}",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit=HELPER_MEMORY_BYTES,
        memswap_limit=HELPER_MEMORY_BYTES,
        nano_cpus=int(0.5e9),
        pids_limit=HELPER_PIDS_LIMIT,
        ulimits=[],
        environment={"PYTHONDONTWRITEBYTECODE": "1", "NVIDIA_VISIBLE_DEVICES": "void"},
        log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "1m", "max-file": "1"}),
        labels={runner.JOB_LABEL: "1"},
        detach=True,
    )


@dataclass(frozen=True)
class Outcome:
    """What the helper saw: one of OUTCOMES, the HTTP status where there was one."""

    kind: str
    status: int | None = None


def parse_outcome(helper_log: str) -> Outcome | None:
    """The helper's last JSON line as an Outcome; None when it printed none."""
    for line in reversed(helper_log.splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("outcome") in OUTCOMES:
            status = data.get("status")
            return Outcome(data["outcome"], status if isinstance(status, int) and not isinstance(status, bool)
                           else None)
    return None


def health_seconds(phase) -> float:
    return min(HEALTH_LIMIT_SECONDS, float(phase.time_limit_seconds))


def invoke_verdict(job, ending, outcome: Outcome | None, *, died: bool) -> runner.JobResult:
    """The job's status and reason from how the invoke went and how the server ended.

    `died`: the server exited by itself (before the runner stopped it)."""
    def ended(status: JobStatus, reason: str) -> runner.JobResult:
        return runner.JobResult(job.case, status, reason, ending.exit_code, ending.seconds, job.log_path,
                                job.image_id, None, ending.peak_memory_bytes)

    phase = job.phase
    if ending.size_reason is not None:
        remove_output(job.output_dir)
        return ended(JobStatus.OUTPUT_TOO_LARGE, ending.size_reason)
    if ending.killed_for == "time":
        return ended(JobStatus.TIMED_OUT,
                     f"did not finish within the time limit of {phase.time_limit_seconds} s and was killed")
    if outcome is not None and outcome.kind == "created":
        return runner._checked_output(job, ending)
    if outcome is not None and outcome.kind == "timeout":
        return ended(JobStatus.TIMED_OUT, f"POST /invoke did not answer within the time limit of "
                                          f"{phase.time_limit_seconds} s; the server was stopped")
    if died or ending.state.get("OOMKilled"):
        if ending.exit_code == 0:
            return ended(JobStatus.FAILED, with_log_line(
                "the invoke server exited with code 0 before answering POST /invoke", _last_line(ending.log_text)))
        return runner._verdict(job, ending)  # out of memory, SIGKILL, or the exit code and last log line
    if outcome is None:
        raise RunnerError("the invoke helper ended without reporting an outcome")
    if outcome.kind == "never_healthy":
        return ended(JobStatus.FAILED, with_log_line(
            f"the invoke server never answered GET /health with 200 within {health_seconds(phase):g} s",
            _last_line(ending.log_text)))
    if outcome.kind == "redirect":
        return ended(JobStatus.FAILED, f"GET /health answered a redirect ({outcome.status}), which the platform "
                                       "counts as a failure; answer 200 when ready, 503 while loading")
    if outcome.kind == "bad_status":
        return ended(JobStatus.FAILED, f"POST /invoke answered {outcome.status}, expected 201")
    return ended(JobStatus.FAILED, with_log_line(
        "the invoke server closed the connection during POST /invoke without answering", _last_line(ending.log_text)))


def _last_line(log_text: str) -> str:
    last = next((line.strip() for line in reversed(log_text.splitlines()) if line.strip()), "")
    return shown(last, limit=300)


def run_invoked(client, container, job, helper_image_id: str) -> runner.JobResult:
    """Start the server, invoke it once through the helper, stop it, and judge the job."""
    import docker.errors

    memory = runner._MemorySampler(container.id)
    began = time.monotonic()
    not_started = runner._start(container, job, began)
    if not_started is not None:
        return not_started
    memory.sample()
    budget = job.phase.time_limit_seconds - (time.monotonic() - began)
    try:
        helper = client.containers.create(**helper_options(
            image_id=helper_image_id, algorithm_id=container.id, budget_seconds=budget, settings=job.settings))
    except docker.errors.APIError as error:
        raise RunnerError(f"the engine refused to create the invoke helper: {runner._explain(error)}") from error
    try:
        try:
            helper.start()
        except docker.errors.APIError as error:
            raise RunnerError(f"the invoke helper could not start: {runner._explain(error)}") from error
        deadline = began + job.phase.time_limit_seconds + _HELPER_MARGIN_SECONDS
        killed_for, size_reason, died = _watch(container, helper, job, memory, deadline)
        outcome = None
        exit_code = None
        if killed_for is not None:
            runner._kill(helper)
            exit_code = runner._kill(container)
        else:
            if died:  # the helper may have been about to report (a server that exits right after answering)
                _exited_within(helper, _DEATH_WAIT_SECONDS)
                runner._kill(helper)
            outcome = parse_outcome(_helper_log(helper))
            if not died and outcome is not None and outcome.kind == "connection_lost":
                died = _exited_within(container, _DEATH_WAIT_SECONDS)
            if died:
                exit_code = runner._kill(container)  # it has exited: this only reads its exit code
            else:
                killed_for = "stopped"
                exit_code = _stop(container)
        _write_helper_audit(job, helper, outcome)
        ending = runner._collect(container, job, began, memory, killed_for, size_reason, exit_code)
        return invoke_verdict(job, ending, outcome, died=died)
    finally:
        runner._remove(helper)


def _watch(container, helper, job, memory, deadline) -> tuple[str | None, str | None, bool]:
    """Wait for the helper's end while watching the time, the output's size and the server;
    returns (killed_for: "time", "output" or None, size_reason, whether the server exited)."""
    import docker.errors

    phase, settings = job.phase, job.settings
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "time", None, False
        try:
            helper.wait(timeout=max(0.05, min(settings.poll_seconds, remaining)))
            return None, None, False
        except runner._WAIT_ERRORS:
            pass
        memory.sample()
        size = measure_folder(job.output_dir, stop_above_bytes=phase.output_limit_bytes,
                              max_entries=settings.max_output_entries)
        reason = output_too_large(size, limit_bytes=phase.output_limit_bytes, max_entries=settings.max_output_entries)
        if reason is not None:
            return "output", reason, False
        try:
            container.reload()
        except docker.errors.NotFound:
            return None, None, True
        if container.status in ("exited", "dead"):
            return None, None, True


def _exited_within(container, seconds: float) -> bool:
    try:
        container.wait(timeout=seconds)
        return True
    except runner._WAIT_ERRORS:
        return False


def _stop(container) -> int | None:
    """SIGTERM (to the init process, which passes it on), STOP_GRACE_SECONDS of grace, SIGKILL."""
    import docker.errors

    try:
        container.stop(timeout=STOP_GRACE_SECONDS)
    except docker.errors.APIError:
        pass  # it ended on its own meanwhile
    return runner._kill(container)


def _helper_log(helper) -> str:
    import docker.errors

    try:
        data = helper.logs(stdout=True, stderr=True, tail=50)
    except docker.errors.APIError:
        return ""
    return data.decode("utf-8", errors="replace")


def _write_helper_audit(job, helper, outcome: Outcome | None) -> None:
    """invoke.json in the job folder: the helper's id, flags and what it reported."""
    import docker.errors

    try:
        helper.reload()
    except docker.errors.APIError:
        pass
    audit = {
        "Id": helper.id,
        "Image": helper.attrs.get("Image"),
        "HostConfig": helper.attrs.get("HostConfig"),
        "State": helper.attrs.get("State"),
        "outcome": None if outcome is None else {"outcome": outcome.kind, "status": outcome.status},
    }
    (job.job_dir / "invoke.json").write_text(json.dumps(audit, indent=2, sort_keys=True, default=str),
                                             encoding="utf-8")
