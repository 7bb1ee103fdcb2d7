"""One algorithm job: one case in a fresh, locked-down container, watched, checked, removed.

The flags are the organizer's production flags and the same for `spider try`:
no network, read-only root file system, a small tmpfs /tmp, a non-root user, no
capabilities, no-new-privileges, memory = memory + swap limit, CPU quota, PID limit, an init
process, the image pinned by its id, /input read-only and an empty /output bind-mounted from
fresh host folders, and nothing else mounted. A wall-clock timeout and an output-size watch
kill the container; its log is kept (cut to its tail) and the container is removed.
An image labelled `org.grand-challenge.api-method=invoke` runs under the same flags as a server
that a helper container triggers once (see evaluation.runner.invoke).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from challenge import images
from challenge.contract import INPUTS_JSON_IN_INPUT, OUTPUT_SOCKET, input_image_path, inputs_json
from challenge.errors import DataError
from challenge.geometry import Geometry
from challenge.phases import Phase, format_size
from challenge.statuses import JobStatus
from challenge.text import shown, with_log_line
from evaluation.runner.errors import EngineUnavailableError, ImageNotFoundError, RunnerError
from evaluation.runner.output_check import (
    MAX_OUTPUT_ENTRIES,
    PREDICTION_FILE,
    check_output,
    measure_folder,
    output_too_large,
    remove_output,
)

LOG_LIMIT_BYTES = 256 * 1024
JOB_LABEL = "org.spider-harness.job"
_ENGINE_LOG_OPTIONS = {"max-size": "5m", "max-file": "2"}  # bounds the engine's copy of a chatty log
_CASE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_WAIT_ERRORS = (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)
# The engine learns of an OOM kill from an event that may come after the exit: how long to wait
# for its flag when a job the runner did not kill ended with SIGKILL (exit code 137).
_OOM_FLAG_WAIT_SECONDS = 1.0
_SHELL_CODES = {126: "the command is not executable", 127: "the command was not found"}
# How long the runner waits for the engine's stats of an exited container (they only add a peak
# memory value): a slow or hung engine must not hold up the job's verdict.
_STATS_TIMEOUT_SECONDS = 2.0


NO_ERRORS_REPORTED = "No errors were reported in the logs."
"""What grand-challenge shows for a failed job whose stderr holds no line."""
PLATFORM_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
"""What grand-challenge sets in every algorithm container's environment."""

def default_user() -> str:
    """uid:gid of the job: `nobody` when the runner is root, else the runner's own (non-root) ids.

    A runner without root cannot hand the output folder to another uid, and a developer must be
    able to delete what their container wrote.
    """
    uid, gid = os.geteuid(), os.getegid()
    return "65534:65534" if uid == 0 else f"{uid}:{gid}"


def assigned_gpu_ids() -> tuple[str, ...] | None:
    """The GPUs assigned to this process by its scheduler: CUDA_VISIBLE_DEVICES as Ray (or a user)
    sets it; None when it is not set."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class RunnerSettings:
    """How jobs run on this machine (the limits come from the phase)."""

    user: str = field(default_factory=default_user)
    log_limit_bytes: int = LOG_LIMIT_BYTES
    poll_seconds: float = 0.2
    max_output_entries: int = MAX_OUTPUT_ENTRIES
    # The GPUs this process may hand to its jobs (e.g. the ones Ray assigned to the task); None:
    # whatever the engine picks for a count.
    gpu_device_ids: tuple[str, ...] | None = field(default_factory=assigned_gpu_ids)

    def __post_init__(self) -> None:
        ids = self.user.split(":")
        if len(ids) != 2 or not all(part.isascii() and part.isdigit() for part in ids):
            raise RunnerError(f"user must be numeric 'uid:gid', found {self.user!r}")
        if int(ids[0]) == 0:  # "00:0" is root too
            raise RunnerError("jobs never run as root (uid 0); choose another uid")
        if self.poll_seconds <= 0 or self.log_limit_bytes <= 0:
            raise RunnerError("poll_seconds and log_limit_bytes must be larger than 0")

    @property
    def uid_gid(self) -> tuple[int, int]:
        uid, gid = self.user.split(":")
        return int(uid), int(gid)


@dataclass(frozen=True)
class JobResult:
    """How one job ended. `prediction_path` is the harness-owned copy of the checked output
    (<job_dir>/prediction.mha, read-only; succeeded only): nothing reads the container's folder after the check."""

    case: str
    status: JobStatus
    reason: str
    exit_code: int | None
    seconds: float
    log_path: Path
    image_id: str
    prediction_path: Path | None = None
    peak_memory_bytes: int | None = None

    def as_record(self) -> dict:
        """The jobs.json object: one of the six reported statuses, the detail kept in `reason`."""
        return {
            "case": self.case,
            "status": self.status.reported.value,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "log": str(self.log_path),
        }


def connect():
    """A Docker client for the engine in the environment (DOCKER_HOST or the local socket)."""
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as error:  # docker.errors.DockerException, requests errors
        raise EngineUnavailableError(
            f"no Docker engine answers ({error}); start one (as root: `make engine`) and retry"
        ) from error
    return client


def pin_image(client, reference: str) -> str:
    """The id ("sha256:...") of a local image given by tag or id; jobs run the id, never a tag."""
    import docker.errors

    try:
        return client.images.get(reference).id
    except docker.errors.ImageNotFound:
        raise ImageNotFoundError(
            f"no local image {reference!r}: build it (`docker build -t {reference} .`) or pass a "
            "`docker save` tarball"
        ) from None
    except docker.errors.APIError as error:
        raise ImageNotFoundError(f"cannot look up image {reference!r}: {error}") from error


def container_options(
    *,
    image_id: str,
    phase: Phase,
    input_dir: Path,
    output_dir: Path,
    settings: RunnerSettings,
    image_config: dict,
) -> dict:
    """Keyword arguments of `client.containers.create` for one job: the production flags."""
    from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

    # `exec`: Docker mounts a tmpfs noexec by default, which breaks JIT compilers (Triton,
    # torch.compile, numba) that write shared objects to /tmp and load them.
    tmpfs_options = f"size={phase.tmp_bytes},mode=1777,exec,nosuid,nodev"
    tmpfs = {"/tmp": tmpfs_options}
    # A VOLUME in the image would otherwise become a writable, unbounded volume on the host. The
    # path is normalised first: Docker creates a real volume for `VOLUME /data/.` unless the tmpfs
    # covers the clean path `/data` (tried on engine 20.10); run_job also refuses any volume left.
    for volume in sorted({posixpath.normpath(v) for v in image_config.get("Volumes") or {}}):
        if volume not in ("/input", "/output", "/tmp", "/"):
            tmpfs[volume] = tmpfs_options
    environment = dict(PLATFORM_ENVIRONMENT)
    if not any(entry.startswith("HOME=") for entry in image_config.get("Env") or []):
        environment["HOME"] = "/tmp"  # `nobody` has no writable home on a read-only root
    file_size_limit = max(phase.output_limit_bytes, phase.tmp_bytes) + 1
    options = dict(
        image=image_id,
        user=settings.user,
        network_mode="none",
        read_only=True,
        tmpfs=tmpfs,
        mounts=[
            Mount(target="/input", source=str(input_dir), type="bind", read_only=True),
            Mount(target="/output", source=str(output_dir), type="bind", read_only=False),
        ],
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit=phase.memory_bytes,
        memswap_limit=phase.memory_bytes,
        nano_cpus=int(round(phase.cpus * 1e9)),
        pids_limit=phase.pids_limit,
        init=True,
        ipc_mode="private",
        # As on grand-challenge: /dev/shm is half the job's memory (a tmpfs, charged to the same
        # memory limit), not Docker's 64 MB that breaks PyTorch data loaders.
        shm_size=phase.memory_bytes // 2,
        oom_score_adj=500,  # if the host itself runs short, the job goes first
        ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="fsize", soft=file_size_limit, hard=file_size_limit)],
        environment=environment,
        log_config=LogConfig(type=LogConfig.types.JSON, config=dict(_ENGINE_LOG_OPTIONS)),
        labels={JOB_LABEL: "1"},
        detach=True,
    )
    if phase.gpus:
        options["device_requests"] = [_gpu_request(phase.gpus, settings.gpu_device_ids, DeviceRequest)]
    else:
        # The NVIDIA runtime, where it is the engine's default, would otherwise honour an image's
        # NVIDIA_VISIBLE_DEVICES=all: a job granted no GPU sees none.
        environment["NVIDIA_VISIBLE_DEVICES"] = "void"
    return options


def _gpu_request(count: int, assigned: tuple[str, ...] | None, request_type):
    """The device request for `count` GPUs: the assigned ones by id (a count alone always gives the
    engine's first GPUs, so concurrent jobs would share GPU 0), else a count."""
    if assigned is None:
        return request_type(count=count, capabilities=[["gpu"]])
    if len(assigned) < count:
        raise RunnerError(f"the phase grants {count} GPU(s) but this process was assigned {list(assigned) or 'none'} "
                          "(CUDA_VISIBLE_DEVICES)")
    return request_type(device_ids=list(assigned[:count]), capabilities=[["gpu"]])


@dataclass(frozen=True)
class CaseInput:
    """One case to run: its name, its input image and its own job folder (new or empty)."""

    case: str
    input_image: Path
    job_dir: Path


def run_job(
    client,
    *,
    image_id: str,
    case: str,
    input_image: Path,
    phase: Phase,
    job_dir: Path,
    settings: RunnerSettings | None = None,
) -> JobResult:
    """Run the image on one case under `phase`'s limits; never raises for what the container does.

    `job_dir` (created, must not exist or be empty) receives log.txt, container.json (the flags
    the engine applied, for audit), output/ (what the container wrote) and, for a job that
    succeeded, prediction.mha (the harness's read-only copy of the accepted segmentation, which is
    what the result names). The input copy is deleted afterwards; the output stays for the caller
    (removed when it was too large). An invoke image's server folders go to job_dir/server/.
    Raises RunnerError only when the job cannot be set up (bad input, no engine, no image, or
    limits this engine cannot grant); a container that cannot start ends NOT_STARTED.
    """
    cases = [CaseInput(case, Path(input_image), Path(job_dir))]
    return run_cases(client, image_id=image_id, cases=cases, phase=phase, settings=settings,
                     servers_dir=Path(job_dir) / "server")[0]


def run_cases(
    client,
    *,
    image_id: str,
    cases: list[CaseInput],
    phase: Phase,
    servers_dir: Path,
    settings: RunnerSettings | None = None,
    on_result: Callable[[JobResult], None] = lambda _result: None,
    say: Callable[[str], None] = lambda _message: None,
) -> list[JobResult]:
    """Run the image on each case, as the platform does: an exec image in a fresh container per
    case; an invoke image as one long-lived server for all the cases, triggered once per case (a
    fresh server takes the remaining cases when one dies), with its own folders in
    servers_dir/<n>/. Each case's folder is filled as `run_job` describes; `on_result` sees each
    result as it is known, `say` what happens to the servers.
    """
    import docker.errors

    settings = settings or RunnerSettings()
    prepared = [_checked_case(item) for item in cases]
    try:
        image = client.images.get(image_id)
    except docker.errors.ImageNotFound:
        raise ImageNotFoundError(f"no local image {image_id}") from None
    if image.id != image_id:
        raise RunnerError(f"jobs run an image by its id (sha256:...), found {image_id!r}; use pin_image()")
    config = image.attrs.get("Config") or {}
    from evaluation.runner import invoke

    reason = None
    if not (config.get("Entrypoint") or config.get("Cmd")):
        reason = "the image has no ENTRYPOINT or CMD, so there is nothing to run; set one in the Dockerfile"
    else:
        try:
            method = invoke.api_method(config)
        except RunnerError as error:
            reason = str(error)
    if reason is not None:
        results = [_not_started(item.case, item.job_dir, image_id, reason) for item, _expected in prepared]
        for result in results:
            on_result(result)
        return results
    try:
        if method == invoke.INVOKE:
            from evaluation.runner.invoke_server import serve_cases

            return serve_cases(client, image_id=image_id, config=config, cases=prepared, phase=phase,
                               settings=settings, servers_dir=Path(servers_dir).resolve(), on_result=on_result,
                               say=say)
        results = []
        for item, expected in prepared:
            result = _run_exec_job(client, image_id=image_id, config=config, item=item, expected=expected,
                                   phase=phase, settings=settings)
            on_result(result)
            results.append(result)
        return results
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as error:
        raise EngineUnavailableError(f"the Docker engine stopped answering: {error}") from error


def _checked_case(item: CaseInput) -> tuple[CaseInput, Geometry]:
    """The case with absolute paths (the engine mounts absolute paths only) and its input's grid."""
    if not _CASE_PATTERN.match(item.case):
        raise RunnerError(f"case name must be letters, digits, '.', '_' or '-', found {item.case!r}")
    job_dir, input_image = Path(item.job_dir).resolve(), Path(item.input_image).resolve()
    if job_dir.exists() and any(job_dir.iterdir()):
        raise RunnerError(f"job folder {job_dir} is not empty; each job needs a fresh one")
    return CaseInput(item.case, input_image, job_dir), _input_geometry(input_image)


def _not_started(case: str, job_dir: Path, image_id: str, reason: str) -> JobResult:
    job_dir.mkdir(parents=True, exist_ok=True)
    log_path = job_dir / "log.txt"
    log_path.write_text(f"[spider] {reason}\n", encoding="utf-8")
    return JobResult(case, JobStatus.NOT_STARTED, reason, None, 0.0, log_path, image_id)


def create_container(client, *, image_id: str, config: dict, phase: Phase, settings: RunnerSettings,
                     input_dir: Path, output_dir: Path, environment: dict[str, str] | None = None):
    """The job's container, created with the production flags (not started); or the reason it
    must not run (an image VOLUME the runner could not cover). RunnerError when the engine refuses
    the options (a problem of the machine, not of the algorithm)."""
    import docker.errors

    options = container_options(image_id=image_id, phase=phase, input_dir=input_dir, output_dir=output_dir,
                                settings=settings, image_config=config)
    options["environment"].update(environment or {})
    try:
        container = client.containers.create(**options)
    except docker.errors.APIError as error:
        # Creating checks the runner's own options against this engine (CPUs, GPU driver).
        raise RunnerError(f"the engine refused to create the job's container: {_explain(error)}") from error
    unasked = _unasked_volumes(container)
    if unasked:
        _remove(container)
        return None, (f"the image declares VOLUME {', '.join(unasked)}, which the runner could not cover with "
                      "a bounded tmpfs; remove the VOLUME instruction (write to /tmp or /output)")
    return container, None


def _run_exec_job(client, *, image_id: str, config: dict, item: CaseInput, expected: Geometry, phase: Phase,
                  settings: RunnerSettings) -> JobResult:
    input_dir, output_dir = _prepare_folders(item.job_dir, item.input_image, settings)
    try:
        container, refused = create_container(client, image_id=image_id, config=config, phase=phase,
                                              settings=settings, input_dir=input_dir, output_dir=output_dir)
        if container is None:
            return _not_started(item.case, item.job_dir, image_id, refused or "")
        try:
            job = _JobContext(item.case, image_id, phase, expected, item.job_dir, output_dir,
                              item.job_dir / "log.txt", settings)
            return _run_created(container, job)
        finally:
            _remove(container)
    finally:
        shutil.rmtree(input_dir, ignore_errors=True)


@dataclass(frozen=True)
class _JobContext:
    """One job being run: what it runs, under which limits, and where its files go."""

    case: str
    image_id: str
    phase: Phase
    expected: Geometry | None  # None for an invoke server's own start (no case yet)
    job_dir: Path
    output_dir: Path
    log_path: Path
    settings: RunnerSettings


@dataclass(frozen=True)
class _Ending:
    """What the watch saw when the container stopped (or was stopped)."""

    killed_for: str | None  # "time", "output" or None (it exited by itself)
    size_reason: str | None
    exit_code: int | None
    state: dict
    seconds: float
    log_text: str
    peak_memory_bytes: int | None
    # What the container wrote to stderr (its end), whose last line the platform quotes on failure;
    # None: not read apart (an invoke case's part of the server's log), the log stands for it.
    error_text: str | None = None


def _run_created(container, job: _JobContext) -> JobResult:
    memory = _MemorySampler(container.id)
    began = time.monotonic()
    not_started = _start(container, job, began)
    if not_started is not None:
        return not_started
    memory.sample()  # the cgroup exists from the start on; a job that exits at once is gone before the first poll
    return _verdict(job, _ending(container, job, began, memory))


def _start(container, job: _JobContext, began: float) -> JobResult | None:
    """Start the job's container; the NOT_STARTED result when the engine cannot start it."""
    import docker.errors

    try:
        container.start()
    except docker.errors.APIError as error:
        seconds = time.monotonic() - began
        container.reload()
        _write_audit(job.job_dir / "container.json", container.attrs)
        job.log_path.write_text(f"[spider] the container could not start: {error}\n", encoding="utf-8")
        return JobResult(job.case, JobStatus.NOT_STARTED, f"the container could not start: {_explain(error)}",
                         None, seconds, job.log_path, job.image_id)
    return None


def _ending(container, job: _JobContext, began: float, memory: _MemorySampler) -> _Ending:
    """Watch the container to its end, then collect its state, log and the output's final size."""
    killed_for, size_reason, exit_code = _watch(
        container, phase=job.phase, output_dir=job.output_dir, settings=job.settings, began=began, memory=memory
    )
    return _collect(container, job, began, memory, killed_for, size_reason, exit_code)


def _collect(container, job: _JobContext, began: float, memory: _MemorySampler, killed_for: str | None,
             size_reason: str | None, exit_code: int | None) -> _Ending:
    """The stopped container's state, audit, log and peak memory, and the output's final size."""
    seconds = time.monotonic() - began
    memory.finish(container)
    container.reload()
    state = container.attrs.get("State") or {}
    if exit_code is None:
        exit_code = state.get("ExitCode")
    if killed_for is None and exit_code == 137 and not state.get("OOMKilled"):
        state = _wait_for_oom_flag(container)
    _write_audit(job.job_dir / "container.json", container.attrs)
    log_text = _save_log(container, job.log_path, job.settings.log_limit_bytes)
    error_text = _stderr_tail(container)
    if size_reason is None:
        limit, max_entries = job.phase.output_limit_bytes, job.settings.max_output_entries
        final = measure_folder(job.output_dir, stop_above_bytes=limit, max_entries=max_entries)
        size_reason = output_too_large(final, limit_bytes=limit, max_entries=max_entries)
    return _Ending(killed_for, size_reason, exit_code, state, seconds, log_text, memory.peak(), error_text)


def _stderr_tail(container, lines: int = 50) -> str | None:
    """The last lines the container wrote to stderr (None when the engine cannot say)."""
    import docker.errors

    try:
        return container.logs(stdout=False, stderr=True, tail=lines).decode("utf-8", errors="replace")
    except docker.errors.APIError:
        return None


def _verdict(job: _JobContext, ending: _Ending) -> JobResult:
    """The job's status and reason from how it ended; a clean exit gets its output checked."""
    def ended(status: JobStatus, reason: str, prediction_path: Path | None = None,
              peak_memory_bytes: int | None = ending.peak_memory_bytes) -> JobResult:
        return JobResult(job.case, status, reason, ending.exit_code, ending.seconds, job.log_path, job.image_id,
                         prediction_path, peak_memory_bytes)

    exit_code, phase = ending.exit_code, job.phase
    if ending.size_reason is not None:
        remove_output(job.output_dir)  # at any depth, never following a link, never raising
        return ended(JobStatus.OUTPUT_TOO_LARGE, ending.size_reason)
    if ending.killed_for == "time":
        return ended(JobStatus.TIMED_OUT,
                     f"did not finish within the time limit of {phase.time_limit_seconds} s and was killed")
    limit = format_size(phase.memory_bytes)
    if ending.state.get("OOMKilled"):
        # The cgroup's OOM killer acts only once the job's charge reached its limit, often within
        # one poll (a hog fills 256 MB in milliseconds), so the reads may have missed the peak.
        return ended(JobStatus.OUT_OF_MEMORY,
                     f"a process was killed for using more than the memory limit of {limit} (swap is not "
                     f"granted; exit code {exit_code}); reduce memory use, e.g. infer in smaller patches",
                     peak_memory_bytes=phase.memory_bytes)
    if exit_code == 137:
        # SIGKILL that the runner did not send and the engine did not flag: in practice the
        # kernel's OOM killer (the flag can be lost); the reason says how sure this is.
        return ended(JobStatus.OUT_OF_MEMORY,
                     f"was killed by SIGKILL (exit code 137) that the runner did not send, most likely for "
                     f"using more than the memory limit of {limit} (swap is not granted); reduce memory use")
    if exit_code != 0:
        errors = ending.log_text if ending.error_text is None else ending.error_text
        return ended(JobStatus.FAILED, _failure_reason(exit_code, errors))
    return _checked_output(job, ending)


def _checked_output(job: _JobContext, ending: _Ending) -> JobResult:
    """The verdict on what a job that ended well left in /output."""
    phase = job.phase
    if job.expected is None:
        raise RunnerError("an output check needs the case's input grid")
    # The one segmentation is copied into the job folder and the copy checked: the prediction path
    # names that copy, so nothing later (scoring, rescoring) reads what the container left.
    checked = check_output(job.output_dir, job.expected, copy_to=job.job_dir / PREDICTION_FILE,
                           limit_bytes=phase.output_limit_bytes, max_entries=job.settings.max_output_entries)
    if checked.status is JobStatus.OUTPUT_TOO_LARGE:
        remove_output(job.output_dir)
    return JobResult(job.case, checked.status, checked.reason, ending.exit_code, ending.seconds, job.log_path,
                     job.image_id, checked.path if checked.status is JobStatus.SUCCEEDED else None,
                     ending.peak_memory_bytes)


def _watch(container, *, phase, output_dir, settings, began, memory):
    """Wait for the exit while watching time and output size; returns (killed_for, size_reason, exit_code)."""
    deadline = began + phase.time_limit_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "time", None, _kill(container)
        try:
            outcome = container.wait(timeout=max(0.05, min(settings.poll_seconds, remaining)))
            return None, None, outcome.get("StatusCode")
        except _WAIT_ERRORS:
            pass
        memory.sample()
        size = measure_folder(
            output_dir, stop_above_bytes=phase.output_limit_bytes, max_entries=settings.max_output_entries
        )
        reason = output_too_large(size, limit_bytes=phase.output_limit_bytes, max_entries=settings.max_output_entries)
        if reason is not None:
            _kill(container)
            return "output", reason, None


def _wait_for_oom_flag(container) -> dict:
    deadline = time.monotonic() + _OOM_FLAG_WAIT_SECONDS
    while True:
        state = container.attrs.get("State") or {}
        if state.get("OOMKilled") or time.monotonic() >= deadline:
            return state
        time.sleep(0.1)
        container.reload()


def _kill(container) -> int | None:
    import docker.errors

    try:
        container.kill()
    except docker.errors.APIError:
        pass  # it ended on its own meanwhile
    try:
        return container.wait(timeout=60).get("StatusCode")
    except _WAIT_ERRORS as error:
        raise RunnerError(f"container {container.short_id} did not stop within 60 s of being killed") from error


def _unasked_volumes(container) -> list[str]:
    """Destinations of mounts the runner did not ask for (only /input and /output are bind mounts;
    tmpfs mounts are not listed in Mounts): a volume there would be writable, unbounded host disk.
    `containers.create` returns the container as inspected after creation, so no reload is needed."""
    return sorted(shown(str(m.get("Destination"))) for m in container.attrs.get("Mounts") or []
                  if m.get("Type") != "bind")


def _remove(container) -> None:
    """Remove the container (killing what is left); wait for a removal already in progress."""
    import docker.errors

    try:
        container.remove(force=True, v=True)  # with any anonymous volume it has
        return
    except docker.errors.NotFound:
        return
    except docker.errors.APIError:
        pass  # e.g. 409 "removal already in progress": wait for it below
    for _ in range(150):
        try:
            container.reload()
        except docker.errors.NotFound:
            return
        time.sleep(0.2)
    raise RunnerError(f"container {container.short_id} could not be removed within 30 s; remove it with `docker rm -f`")


def _prepare_folders(job_dir: Path, input_image: Path, settings: RunnerSettings) -> tuple[Path, Path]:
    """Fresh input (image + inputs.json, world-readable) and output (owned by the job's user) folders."""
    input_dir, output_dir = job_dir / "input", job_dir / "output"
    job_dir.mkdir(parents=True, exist_ok=True)
    input_dir.mkdir()
    fill_input(input_dir, input_image)
    output_dir.mkdir()
    make_output_socket(output_dir, settings)
    return input_dir, output_dir


def fill_input(input_dir: Path, input_image: Path) -> None:
    """Put one case into the (empty) folder mounted at /input: its image under a fresh uuid and
    inputs.json naming it, all world-readable (the folder is mounted read-only)."""
    job_id = str(uuid.uuid4())
    image_in_container = input_image_path(job_id)
    image_on_host = input_dir / image_in_container.relative_to("/input")
    image_on_host.parent.mkdir(parents=True)
    shutil.copyfile(input_image, image_on_host)
    (input_dir / INPUTS_JSON_IN_INPUT).write_text(
        json.dumps(inputs_json(job_id, image_name=image_on_host.name), indent=2, sort_keys=True), encoding="utf-8"
    )
    for folder, _subfolders, files in os.walk(input_dir):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def make_output_socket(output_dir: Path, settings: RunnerSettings) -> None:
    """The output socket's folder in the (empty) folder mounted at /output, owned by the job's user."""
    uid, gid = settings.uid_gid
    socket_folder = output_dir / OUTPUT_SOCKET.relative_path
    socket_folder.mkdir(parents=True)
    for folder, _subfolders, _files in os.walk(output_dir):
        if os.geteuid() == 0:
            os.chown(folder, uid, gid)
        os.chmod(folder, 0o755)


def _input_geometry(input_image: Path) -> Geometry:
    try:
        return images.read_header(input_image, shown_as=f"input image {input_image}")
    except DataError as error:
        raise RunnerError(str(error)) from error


class _MemorySampler:
    """Best-effort peak memory of the job, read on the host: the high-water mark of the container's
    memory cgroup (cgroup v1 memory.max_usage_in_bytes, v2 memory.peak), which counts everything
    charged to the job's memory limit: its processes' memory, the page cache of the files it read
    or wrote, and its tmpfs /tmp and /dev/shm.

    Read right after the start, at each poll of the watch, and once more after the exit (before the
    container is removed), then from the engine's stats where they hold a peak. Docker removes the
    cgroup as it handles the exit, before wait() returns, and reports no stats for an exited
    container (engine 20.10, cgroup v1), so there the last read while the job ran is what counts:
    a lower bound if the job used more after it. The read right after the start is what a job that
    exits within one poll gets. A job the engine flags as killed for its memory limit reached that
    limit, and gets it as its peak (see `_verdict`). None when no read worked: no cgroup at the paths below (another
    cgroup driver or layout, a remote or rootless engine, a runner in a container without the
    host's /sys/fs/cgroup) and no peak in the engine's stats.
    """

    def __init__(self, container_id: str):
        self._paths = [
            Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.max_usage_in_bytes"),
            Path(f"/sys/fs/cgroup/memory/system.slice/docker-{container_id}.scope/memory.max_usage_in_bytes"),
            Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.peak"),
            Path(f"/sys/fs/cgroup/docker/{container_id}/memory.peak"),
        ]
        self._peak: int | None = None

    def sample(self) -> None:
        for path in self._paths:
            try:
                value = int(path.read_text())
            except (OSError, ValueError):
                continue
            self._keep(value)
            return

    def finish(self, container) -> None:
        """The last reads, once the container has exited: its cgroup if it is still there, then the
        engine's stats."""
        self.sample()
        self._keep(_engine_peak(container))

    def peak(self) -> int | None:
        return self._peak

    def _keep(self, value: int | None) -> None:
        if value is not None:
            self._peak = max(self._peak or 0, value)


def _engine_peak(container, *, timeout_seconds: float = _STATS_TIMEOUT_SECONDS) -> int | None:
    """The peak memory in the engine's stats of the container ("max_usage" on cgroup v1, "peak"
    where an engine reports cgroup v2's memory.peak), or None.

    Best effort: it never raises, and waits at most `timeout_seconds` (the read runs in a daemon
    thread, since the client's calls take no per-call timeout and a hung engine must not hold up
    the verdict).
    """
    found: list = []

    def read() -> None:
        try:
            found.append(container.stats(stream=False))
        except Exception:  # engine, transport or decoding errors alike: no value
            pass

    reader = threading.Thread(target=read, name="spider-container-stats", daemon=True)
    reader.start()
    reader.join(timeout_seconds)
    stats = found[0] if found else None
    memory = stats.get("memory_stats") if isinstance(stats, dict) else None
    if not isinstance(memory, dict):
        return None
    for key in ("max_usage", "peak"):
        value = memory.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _settled_logs(container, *, interval_seconds: float = 0.05, max_reads: int = 20) -> bytes:
    """The container's log once it stops growing.

    The engine's log driver may still be copying the last lines of an exited container when
    wait() returns (seen under load: a crash's traceback missing from its reason).
    """
    data = container.logs(stdout=True, stderr=True)
    for _ in range(max_reads):
        time.sleep(interval_seconds)
        again = container.logs(stdout=True, stderr=True)
        if again == data:
            break
        data = again
    return data


def _save_log(container, log_path: Path, limit_bytes: int) -> str:
    """Write stdout+stderr (interleaved, cut to the last `limit_bytes`) to log_path; return it."""
    import docker.errors

    try:
        data = _settled_logs(container)
    except docker.errors.APIError as error:
        data = f"[spider] the log could not be read: {error}\n".encode()
    return write_log(log_path, data, limit_bytes)


def write_log(log_path: Path, data: bytes, limit_bytes: int) -> str:
    """Write a log (cut to its last `limit_bytes`, saying so) to log_path; return its text."""
    header = b""
    if len(data) > limit_bytes:
        header = f"[spider] log cut to its last {limit_bytes} bytes of {len(data)}\n".encode()
        data = data[-limit_bytes:]
    log_path.write_bytes(header + data)
    return data.decode("utf-8", errors="replace")


def _write_audit(path: Path, attrs: dict) -> None:
    config = attrs.get("Config") or {}
    audit = {
        "Id": attrs.get("Id"),
        "Image": attrs.get("Image"),
        "User": config.get("User"),
        "Entrypoint": config.get("Entrypoint"),
        "Cmd": config.get("Cmd"),
        "HostConfig": attrs.get("HostConfig"),
        "Mounts": attrs.get("Mounts"),
        "State": attrs.get("State"),
    }
    path.write_text(json.dumps(audit, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _failure_reason(exit_code: int | None, log_text: str) -> str:
    """The exit code in words and, as the platform shows a failure, the last non-empty line the
    container wrote to stderr, or the platform's words when there is none."""
    if exit_code is None:
        return "the container ended without an exit code"
    reason = f"exited with code {exit_code}"
    if exit_code in _SHELL_CODES:
        reason += f" ({_SHELL_CODES[exit_code]}: check the image's ENTRYPOINT and CMD)"
    elif exit_code > 128:
        try:
            reason += f" (killed by {signal.Signals(exit_code - 128).name})"
        except ValueError:
            pass
    last = next((line.strip() for line in reversed(log_text.splitlines()) if line.strip()), "")
    if not last:
        return f"{reason}; {NO_ERRORS_REPORTED}"
    return with_log_line(reason, shown(last, limit=300))


def _explain(error) -> str:
    explanation = getattr(error, "explanation", None) or str(error)
    return str(explanation).strip()[:500]
