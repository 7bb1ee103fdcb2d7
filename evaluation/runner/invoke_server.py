"""Several cases served by one invoke server, as the platform runs an invoke image.

The server container starts once with the production flags and its own /input and /output
folders (servers_dir/<n>/). After GET /health answers 200, each case in turn: /output is emptied,
/input refilled with that case alone, POST /invoke sent under the phase's time limit; then the
output is checked into the case's folder and moved there, so no case sees another's files. A
server that dies, hangs or cannot be emptied is stopped, and a fresh one takes the remaining
cases; each server settles at least one case, so a batch ends after at most one server per case.
A server that never becomes ready ends every case it was given with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from challenge.geometry import Geometry
from challenge.phases import Phase
from evaluation.runner import docker_runner as runner
from evaluation.runner import invoke
from evaluation.runner.docker_runner import CaseInput, JobResult, RunnerSettings
from evaluation.runner.errors import RunnerError
from evaluation.runner.output_check import measure_folder, output_too_large, remove_output


def serve_cases(client, *, image_id: str, config: dict, cases: list[tuple[CaseInput, Geometry]], phase: Phase,
                settings: RunnerSettings, servers_dir: Path, on_result: Callable[[JobResult], None],
                say: Callable[[str], None]) -> list[JobResult]:
    """Run every case through invoke servers of the image (see the module's docstring)."""
    helper_image = invoke.helper_image(client)  # before any container: a problem of the machine
    results: list[JobResult] = []
    pending = list(cases)

    def settle(result: JobResult) -> None:
        results.append(result)
        on_result(result)

    number = 0
    while pending:
        number += 1
        server = _Server(client, image_id=image_id, config=config, phase=phase, settings=settings,
                         folder=servers_dir / str(number), helper_image=helper_image)
        try:
            failure = server.start()
            if failure is not None:
                for item, _expected in pending:
                    settle(server.share(failure, item))
                return results
            while pending:
                item, expected = pending[0]
                result = server.serve(item, expected)
                if result is None:  # it had died after its last case: the case goes to a fresh server
                    break
                pending.pop(0)
                settle(result)
                if not server.alive:
                    break
        finally:
            server.close()
        if pending:
            say(f"invoke server {number} {server.ended_how()} after {server.served} case(s); a fresh server "
                f"takes the {len(pending)} remaining")
    return results


@dataclass
class _Server:
    """One invoke server container and its folders; `served` counts the cases it settled."""

    client: Any
    image_id: str
    config: dict
    phase: Phase
    settings: RunnerSettings
    folder: Path
    helper_image: str
    served: int = 0
    alive: bool = False
    container: Any = None
    memory: runner._MemorySampler | None = None
    log_offset: int = 0
    exit_code: int | None = None
    helper_attrs: dict = field(default_factory=dict)

    @property
    def input_dir(self) -> Path:
        return self.folder / "input"

    @property
    def output_dir(self) -> Path:
        return self.folder / "output"

    def _context(self, case: str, job_dir: Path, expected: Geometry | None) -> runner._JobContext:
        return runner._JobContext(case, self.image_id, self.phase, expected, job_dir, self.output_dir,
                                  job_dir / "log.txt", self.settings)

    def start(self) -> JobResult | None:
        """Create and start the server and wait until GET /health answers 200; the result its cases
        get when it cannot (never ready, died, redirect, not started, refused volume), else None."""
        self.folder.mkdir(parents=True)
        self.input_dir.mkdir()
        self.output_dir.mkdir()
        runner.make_output_socket(self.output_dir, self.settings)
        server_job = self._context("server", self.folder, None)
        self.container, refused = runner.create_container(
            self.client, image_id=self.image_id, config=self.config, phase=self.phase, settings=self.settings,
            input_dir=self.input_dir, output_dir=self.output_dir, environment=dict(invoke.SERVER_ENVIRONMENT))
        if self.container is None:
            return runner._not_started("server", self.folder, self.image_id, refused or "")
        self.memory = runner._MemorySampler(self.container.id)
        began = time.monotonic()
        not_started = runner._start(self.container, server_job, began)
        if not_started is not None:
            return not_started
        self.memory.sample()
        wait = invoke.health_seconds(self.phase)
        killed_for, size_reason, died, outcome = self._call(server_job, invoke.HEALTH, wait, began)
        ending = self._ending(server_job, began, killed_for, size_reason, died)
        self._write_helper_audit(self.folder / "health.json", outcome)
        failure = invoke.health_failure(server_job, ending, outcome, died=died)
        self.alive = failure is None
        return failure

    def share(self, failure: JobResult, item: CaseInput) -> JobResult:
        """The server's failure to start, as the result of one of its cases (with the server's log)."""
        item.job_dir.mkdir(parents=True, exist_ok=True)
        log_path = item.job_dir / "log.txt"
        server_log = self.folder / "log.txt"
        if server_log.is_file():
            shutil.copyfile(server_log, log_path)
        else:
            log_path.write_text(f"[spider] {failure.reason}\n", encoding="utf-8")
        for name in ("container.json", "health.json"):
            if (self.folder / name).is_file():
                shutil.copyfile(self.folder / name, item.job_dir / name)
        return JobResult(item.case, failure.status, failure.reason, failure.exit_code, failure.seconds, log_path,
                         self.image_id, None, failure.peak_memory_bytes)

    def serve(self, item: CaseInput, expected: Geometry) -> JobResult | None:
        """One case: empty /output, refill /input, POST /invoke, check and collect the output.
        None when the server had died since its last case (the case was not tried)."""
        if not self._running():
            if self.served:
                self.alive = False
                return None
        item.job_dir.mkdir(parents=True, exist_ok=True)
        job = self._context(item.case, item.job_dir, expected)
        if not self._clear_folders():
            self.alive = False
            if self.served:
                return None
        runner.fill_input(self.input_dir, item.input_image)
        began = time.monotonic()
        killed_for, size_reason, died = None, None, not self._running()
        outcome = None
        if not died:
            killed_for, size_reason, died, outcome = self._call(job, invoke.INVOKE_CALL,
                                                                float(self.phase.time_limit_seconds), began)
        if self.served and killed_for is None and (outcome is None or outcome.kind == "refused"):
            # The server had gone before the case reached it (its namespace or its port was gone):
            # it died after its last case, and this one goes to a fresh server.
            if died or self._reap():
                self.alive = False
                return None
        ending = self._ending(job, began, killed_for, size_reason, died)
        self._write_helper_audit(item.job_dir / "invoke.json", outcome)
        result = invoke.invoke_verdict(job, ending, outcome, died=died)
        self.served += 1
        stays = not died and killed_for is None and outcome is not None and outcome.kind in ("created", "bad_status")
        collected = self._collect_output(item.job_dir / "output")
        self.alive = stays and collected
        return result

    def close(self) -> None:
        """Stop the server (SIGTERM, grace, SIGKILL), keep its log and audit, remove it and its input."""
        try:
            if self.container is not None:
                if self._running():
                    self.exit_code = _stop(self.container)
                else:
                    self.exit_code = runner._kill(self.container)  # it has exited: this only reads its code
                try:
                    self.container.reload()
                    runner._write_audit(self.folder / "container.json", self.container.attrs)
                except Exception:  # an audit of a container that is going away: best effort
                    pass
                runner._save_log(self.container, self.folder / "log.txt", self.settings.log_limit_bytes)
        finally:
            if self.container is not None:
                runner._remove(self.container)
            shutil.rmtree(self.input_dir, ignore_errors=True)

    def _reap(self) -> bool:
        """Wait (briefly) for a server whose port is gone to exit; True when it has."""
        if _exited_within(self.container, invoke._DEATH_WAIT_SECONDS):
            self.exit_code = runner._kill(self.container)
            return True
        return False

    def ended_how(self) -> str:
        return "exited" if self.exit_code is None else f"ended (exit code {self.exit_code})"

    # ------------------------------------------------------------------ the steps

    def _running(self) -> bool:
        import docker.errors

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return self.container.status == "running"

    def _call(self, job: runner._JobContext, mode: str, budget_seconds: float, began: float):
        """Run the helper in `mode` while watching the server; (killed_for, size_reason, died, outcome)."""
        import docker.errors

        try:
            helper = self.client.containers.create(**invoke.helper_options(
                image_id=self.helper_image, algorithm_id=self.container.id, mode=mode,
                budget_seconds=budget_seconds, settings=self.settings))
        except docker.errors.APIError as error:
            raise RunnerError(f"the engine refused to create the invoke helper: {runner._explain(error)}") from error
        try:
            try:
                helper.start()
            except docker.errors.APIError as error:
                if not self._running():  # the server exited just before: its namespace is gone
                    self.exit_code = runner._kill(self.container)
                    return None, None, True, None
                raise RunnerError(f"the invoke helper could not start: {runner._explain(error)}") from error
            deadline = began + budget_seconds + invoke._HELPER_MARGIN_SECONDS
            killed_for, size_reason, died = _watch(self.container, helper, job, self.memory, deadline)
            outcome = None
            if killed_for is not None:
                runner._kill(helper)
                self.exit_code = runner._kill(self.container)
            else:
                if died:  # the helper may have been about to report (a server that exits right after answering)
                    _exited_within(helper, invoke._DEATH_WAIT_SECONDS)
                    runner._kill(helper)
                outcome = invoke.parse_outcome(_helper_log(helper))
                if not died and outcome is not None and outcome.kind == "connection_lost":
                    died = _exited_within(self.container, invoke._DEATH_WAIT_SECONDS)
                if died:
                    self.exit_code = runner._kill(self.container)
            self.helper_attrs = _attrs(helper)
            return killed_for, size_reason, died, outcome
        finally:
            runner._remove(helper)

    def _ending(self, job: runner._JobContext, began: float, killed_for, size_reason, died: bool) -> runner._Ending:
        """What the case (or the start) left: the server's state, this part of its log, the peak so far
        (the server's high-water mark: it only grows over the cases) and the output's final size."""
        seconds = time.monotonic() - began
        assert self.memory is not None
        self.memory.sample()
        ended = killed_for is not None or died
        if ended:
            self.memory.finish(self.container)
        self.container.reload()
        state = self.container.attrs.get("State") or {}
        exit_code = self.exit_code if ended else None
        if ended and exit_code is None:
            exit_code = state.get("ExitCode")
        if ended and killed_for is None and exit_code == 137 and not state.get("OOMKilled"):
            state = runner._wait_for_oom_flag(self.container)
        runner._write_audit(job.job_dir / "container.json", self.container.attrs)
        log_text = self._log_since_last(job.log_path, settled=ended)
        if size_reason is None:
            limit, max_entries = self.phase.output_limit_bytes, self.settings.max_output_entries
            final = measure_folder(self.output_dir, stop_above_bytes=limit, max_entries=max_entries)
            size_reason = output_too_large(final, limit_bytes=limit, max_entries=max_entries)
        return runner._Ending(killed_for, size_reason, exit_code, state, seconds, log_text, self.memory.peak())

    def _log_since_last(self, log_path: Path, *, settled: bool) -> str:
        """The server's log written since the last case, saved as this case's log."""
        import docker.errors

        try:
            data = runner._settled_logs(self.container, max_reads=20 if settled else 4)
        except docker.errors.APIError as error:
            data = f"[spider] the log could not be read: {error}\n".encode()
        if len(data) < self.log_offset:  # the engine rotated its copy of the log
            self.log_offset = 0
        part, self.log_offset = data[self.log_offset:], len(data)
        return runner.write_log(log_path, part, self.settings.log_limit_bytes)

    def _clear_folders(self) -> bool:
        """Empty /input and /output (keeping the mounted folders) and recreate the output socket's
        folder; False when something the server left in /output cannot be removed."""
        for entry in os.scandir(self.input_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        _empty(self.output_dir)
        if any(os.scandir(self.output_dir)):
            return False
        runner.make_output_socket(self.output_dir, self.settings)
        return True

    def _collect_output(self, destination: Path) -> bool:
        """Move what the case left in /output to its own folder (links moved, never followed); True
        when /output is empty afterwards."""
        destination.mkdir(exist_ok=True)
        try:
            os.chmod(self.output_dir, 0o755)  # the server owns the folder and may have locked it
        except OSError:
            pass
        try:
            names = os.listdir(self.output_dir)
        except OSError:
            return False
        for name in names:
            try:
                os.rename(self.output_dir / name, destination / name)
            except OSError:
                remove_output(self.output_dir / name)
        _empty(self.output_dir)
        try:
            return not any(os.scandir(self.output_dir))
        except OSError:
            return False

    def _write_helper_audit(self, path: Path, outcome: invoke.Outcome | None) -> None:
        """The helper's id, flags and what it reported, and which server served the call."""
        attrs = self.helper_attrs or {}
        audit = {
            "Id": attrs.get("Id"),
            "Image": attrs.get("Image"),
            "HostConfig": attrs.get("HostConfig"),
            "State": attrs.get("State"),
            "server": {"Id": getattr(self.container, "id", None), "folder": self.folder.name,
                       "cases_served_before": self.served},
            "outcome": None if outcome is None else {"outcome": outcome.kind, "status": outcome.status},
        }
        path.write_text(json.dumps(audit, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _empty(folder: Path) -> None:
    """Remove everything in `folder` (not the folder: it is mounted), at any depth, never following
    a link and never raising: what cannot be removed stays."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                remove_output(Path(entry.path))
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _attrs(container) -> dict:
    import docker.errors

    try:
        container.reload()
    except docker.errors.APIError:
        pass
    return container.attrs


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
        container.stop(timeout=invoke.STOP_GRACE_SECONDS)
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
