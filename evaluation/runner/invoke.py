"""Grand-challenge "invoke" images: a long-lived HTTP server that is triggered per case.

An image labelled `org.grand-challenge.api-method=invoke` starts, as its ENTRYPOINT, a server on
port 4743 that waits for `POST /invoke`. The runner starts it with exactly the production flags
of an exec job (no network among them), then a small helper container from the offline base
image that joins the algorithm's own network namespace (`network_mode=container:<id>`), so it
reaches 127.0.0.1:4743 while the algorithm still reaches nothing else. The helper polls
`GET /health`, sends `POST /invoke` and prints its outcome as one JSON line. Then the server gets
SIGTERM, 5 s of grace and SIGKILL. Serving several cases with one server is
evaluation.runner.invoke_server's part; this module holds the label, the helper and the verdicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from challenge.statuses import JobStatus
from challenge.text import shown, with_log_line
from evaluation.runner import docker_runner as runner
from evaluation.runner.base_image import BASE_TAG, SLIM_TAG
from evaluation.runner.errors import RunnerError
from evaluation.runner.output_check import remove_output

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
OUTCOMES = ("healthy", "created", "never_healthy", "redirect", "bad_status", "timeout", "refused",
            "connection_lost")

# The helper, run as `python3 -I -c HELPER_SCRIPT PORT MODE BUDGET_SECONDS HEALTH_CALL`; stdlib only.
# MODE "health": poll GET /health until 200 (at most BUDGET_SECONDS); "invoke": one POST /invoke
# with BUDGET_SECONDS as its timeout. http.client follows no redirect, so a 3xx is seen as such.
HELPER_SCRIPT = r"""
import http.client, json, sys, time
port, mode, budget, per_call = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
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
if mode == "health":
    while True:
        left = budget - (time.monotonic() - start)
        if left <= 0:
            say(outcome="never_healthy")
        try:
            status = call("GET", "/health", min(per_call, left))
        except (OSError, http.client.HTTPException):
            status = None  # refused, reset or a call that timed out: not up yet
        if status == 200:
            say(outcome="healthy")
        if status is not None and 300 <= status < 400:
            say(outcome="redirect", status=status)
        time.sleep(max(0.0, min(0.1, budget - (time.monotonic() - start))))
try:
    status = call("POST", "/invoke", budget)
except TimeoutError:
    say(outcome="timeout")
except ConnectionRefusedError:
    say(outcome="refused")  # nothing listens: the request never reached the server
except (OSError, http.client.HTTPException) as error:
    say(outcome="connection_lost", error=repr(error)[:200])
say(outcome="created" if status == 201 else "bad_status", status=status)
"""
HEALTH = "health"
INVOKE_CALL = "invoke"


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


def helper_options(*, image_id: str, algorithm_id: str, mode: str, budget_seconds: float, settings) -> dict:
    """Keyword arguments of `client.containers.create` for the helper: tight limits, no capabilities,
    the job's user, and the algorithm container's network namespace (which has no network)."""
    from docker.types import LogConfig

    return dict(
        image=image_id,
        command=["python3", "-I", "-c", HELPER_SCRIPT, str(PORT), mode, f"{budget_seconds:.3f}",
                 f"{HEALTH_CALL_SECONDS:g}"],
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


def health_failure(job, ending, outcome: Outcome | None, *, died: bool) -> runner.JobResult | None:
    """Why a server that was started never became ready (a result for its cases), or None: it is healthy."""
    def ended(status: JobStatus, reason: str) -> runner.JobResult:
        return runner.JobResult(job.case, status, reason, ending.exit_code, ending.seconds, job.log_path,
                                job.image_id, None, ending.peak_memory_bytes)

    wait = health_seconds(job.phase)
    if ending.size_reason is not None:
        remove_output(job.output_dir)
        return ended(JobStatus.OUTPUT_TOO_LARGE, ending.size_reason)
    if ending.killed_for == "time" or (outcome is not None and outcome.kind == "never_healthy"):
        return ended(JobStatus.FAILED, with_log_line(
            f"the invoke server never answered GET /health with 200 within {wait:g} s", _last_line(ending.log_text)))
    if died or ending.state.get("OOMKilled"):
        if ending.exit_code == 0:
            return ended(JobStatus.FAILED, with_log_line(
                "the invoke server exited with code 0 before it was ready", _last_line(ending.log_text)))
        return runner._verdict(job, ending)  # out of memory, SIGKILL, or the exit code and last log line
    if outcome is None:
        raise RunnerError("the invoke helper ended without reporting an outcome")
    if outcome.kind == "redirect":
        return ended(JobStatus.FAILED, f"GET /health answered a redirect ({outcome.status}), which the platform "
                                       "counts as a failure; answer 200 when ready, 503 while loading")
    return None


def invoke_verdict(job, ending, outcome: Outcome | None, *, died: bool) -> runner.JobResult:
    """The case's status and reason from how its POST /invoke went and how the server was then.

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
    if outcome.kind == "bad_status":
        return ended(JobStatus.FAILED, f"POST /invoke answered {outcome.status}, expected 201")
    if outcome.kind == "refused":
        return ended(JobStatus.FAILED, with_log_line(
            f"the invoke server refused the connection to port {PORT} for POST /invoke (nothing listens there "
            "any more)", _last_line(ending.log_text)))
    return ended(JobStatus.FAILED, with_log_line(
        "the invoke server closed the connection during POST /invoke without answering", _last_line(ending.log_text)))


def _last_line(log_text: str) -> str:
    last = next((line.strip() for line in reversed(log_text.splitlines()) if line.strip()), "")
    return shown(last, limit=300)
