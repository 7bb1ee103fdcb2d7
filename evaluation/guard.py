"""Scoring each case in a process of its own, under a time limit (challenge.rules.SCORING_GUARD_RULE).

Predictions come from untrusted containers: reading and scoring one may hang, crash the
interpreter or exhaust its memory. `score_cases` scores every case in a child process of its
own, at most `workers` at a time, kills a child with SIGKILL once it runs past the time limit,
and returns a `CaseResult` for every case whatever happens: a case whose scoring ran too long,
or whose process died (a signal, an exit without a result, an error other than
InvalidPredictionError, which score_prediction turns into an invalid case itself), is scored as
invalid by the missing-case rule with a reason saying so. Killing one case loses no other.

The parent reads each reference mask itself before its child starts: an unreadable reference
raises there, as it always did (the organizers' data is broken, not the submission), and the
invalid rows are built from it without the child. Children fork from a forkserver that has the
scoring modules loaded, so a process per case costs milliseconds, not an interpreter start;
each child is killed by the kernel when the forkserver ends, which it does with the parent.

A child sends back only the outcome and rows it computed, as JSON, through a pipe that the
parent drains without blocking while it waits (at most MAX_RESULT_BYTES); the parent checks
every field before it becomes a result, so no child can stall the parent or make it run code.
"""

from __future__ import annotations

import gc
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, TypeVar

from challenge import images
from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S
from challenge.results import ScoreRow
from challenge.statuses import CaseStatus, RowStatus
from challenge.text import shown
from evaluation.errors import EvaluationError
from evaluation.prediction import Prediction
from evaluation.report import CaseOutcome
from evaluation.score import CaseResult, read_reference, score_case, score_prediction
from evaluation.workers import kill_with_parent

__all__ = ["CaseTask", "Scorer", "preload_in_children", "score_cases", "score_guarded"]

MAX_RESULT_BYTES = 16 * 1024**2
"""The most a child may send back (a case's rows take tens of kilobytes); more is a dead case."""
KILL_WAIT_S = 10.0
"""How long the parent waits for a killed child to be gone before it moves on."""
RAISED_TEXT_LIMIT = 300
"""Characters of an error's text kept in a case's reason."""
STARTED = b"S"
"""The first byte a child sends, once it runs its case: a child that ends without it never started
scoring (an environment problem, raised as such), not a case that broke scoring."""
_READ_CHUNK = 1024**2
_EnumT = TypeVar("_EnumT", CaseStatus, RowStatus)
_PRELOADED_MODULES = ["evaluation.guard"]  # and with it evaluation.score and every module scoring uses


class Scorer(Protocol):
    """What a child runs for its case: score_prediction's signature (tests inject a scorer that
    hangs or dies; it must be importable by name, as the child unpickles it)."""

    def __call__(self, case: str, reference: images.LabelImage, prediction: Prediction, *,
                 profile: str) -> CaseResult: ...


@dataclass(frozen=True)
class CaseTask:
    """One case to score: its reference mask file and what is known about its prediction."""

    case: str
    reference: Path
    prediction: Prediction
    profile: str = "full"


# ---- reasons ------------------------------------------------------------------------------


def timed_out_reason(time_limit_s: float) -> str:
    return f"scoring took longer than {time_limit_s:g} s (the scoring time limit)"


def died_reason(exit_code: int) -> str:
    """Why a child that sent no result ended: a signal (negative exit code) or an exit code."""
    if exit_code < 0:
        return f"scoring stopped: the scoring process died ({exit_text(exit_code)})"
    return f"scoring stopped: the scoring process ended without a result ({exit_text(exit_code)})"


def exit_text(exit_code: int) -> str:
    """'signal 9, SIGKILL' for a negative exit code (multiprocessing's way to give a signal), else 'exit code N'."""
    if exit_code >= 0:
        return f"exit code {exit_code}"
    try:
        return f"signal {-exit_code}, {signal.Signals(-exit_code).name}"
    except ValueError:
        return f"signal {-exit_code}"


def raised_reason(error_text: str) -> str:
    return f"scoring stopped: the scoring process raised {error_text}"


def too_large_reason(limit_bytes: int) -> str:
    size = f"{limit_bytes // 1024**2} MiB" if limit_bytes % 1024**2 == 0 else f"{limit_bytes} bytes"
    return f"scoring stopped: the scoring process sent more than {size}"


def unreadable_result_reason(problem: str) -> str:
    return f"scoring stopped: the scoring process sent an unreadable result ({problem})"


# ---- the child ----------------------------------------------------------------------------


def _child_main(writer: Connection, task: CaseTask, reference: images.LabelImage, scorer: Scorer) -> None:
    """Score the case and send what came of it; the child ends here, without interpreter teardown."""
    gc.freeze()  # what the forkserver loaded stays out of this process's collections: fewer copied pages
    kill_with_parent()
    _release_forkserver()
    _write_all(writer.fileno(), STARTED)
    try:
        message = _result_message(scorer(task.case, reference, task.prediction, profile=task.profile))
    except Exception as error:  # every error of scoring becomes the case's reason, not a crash of the run
        traceback.print_exc()
        message = json.dumps({"raised": f"{type(error).__name__}: {shown(str(error), limit=RAISED_TEXT_LIMIT)}"})
    _write_all(writer.fileno(), message.encode("utf-8"))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _release_forkserver() -> None:
    """Close the child's copy of the forkserver's 'alive' pipe. multiprocessing gives every forkserver
    child one so that it may start processes itself, which keeps the forkserver alive while the
    child lives; a scoring child starts none, and without it the forkserver ends with the parent,
    taking the child with it (kill_with_parent)."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and isinstance(alive_fd, int):
        os.close(alive_fd)
        server._forkserver_alive_fd = None


def _result_message(result: CaseResult) -> str:
    """The outcome and rows as JSON (NaN written as NaN): plain data the parent checks field by field."""
    outcome = result.outcome
    return json.dumps({
        "outcome": [outcome.case, outcome.status.value, outcome.reason],
        "rows": [[row.case, row.structure, row.level, row.metric, float(row.value), row.status.value,
                  None if row.label is None else int(row.label)]
                 for row in result.rows],
    })


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---- reading what a child sent --------------------------------------------------------------


def decode_result(data: bytes, case: str) -> CaseResult | str:
    """The CaseResult a child sent for `case`, or the text of the error it raised. Raises ValueError
    ('expected ..., found ...') for anything else."""
    try:
        message = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"expected JSON, found {len(data)} bytes that are not ({error})") from None
    if isinstance(message, dict) and set(message) == {"raised"} and isinstance(message["raised"], str):
        return message["raised"]
    if not (isinstance(message, dict) and set(message) == {"outcome", "rows"}):
        raise ValueError(f"expected an object with 'outcome' and 'rows', found {_described(message)}")
    return CaseResult(_decoded_outcome(message["outcome"], case), _decoded_rows(message["rows"], case))


def _decoded_outcome(fields: Any, case: str) -> CaseOutcome:
    if not (isinstance(fields, list) and len(fields) == 3 and all(isinstance(field, str) for field in fields)):
        raise ValueError(f"expected an outcome [case, status, reason], found {_described(fields)}")
    name, status, reason = fields
    _check_case(name, case)
    return CaseOutcome(name, _enum_value(CaseStatus, status, "case status"), reason)


def _decoded_rows(rows: Any, case: str) -> tuple[ScoreRow, ...]:
    if not isinstance(rows, list):
        raise ValueError(f"expected a list of rows, found {_described(rows)}")
    return tuple(_decoded_row(row, case) for row in rows)


def _decoded_row(fields: Any, case: str) -> ScoreRow:
    if not (isinstance(fields, list) and len(fields) == 7):
        raise ValueError(f"expected a row [case, structure, level, metric, value, status, label], "
                         f"found {_described(fields)}")
    name, structure, level, metric, value, status, label = fields
    if not all(isinstance(text, str) for text in (name, structure, level, metric)):
        raise ValueError(f"expected text for case, structure, level and metric, found {_described(fields)}")
    _check_case(name, case)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number as the value of {structure}/{level}/{metric}, found {_described(value)}")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
        raise ValueError(f"expected an integer label or null, found {_described(label)}")
    return ScoreRow(name, structure, level, metric, float(value), _enum_value(RowStatus, status, "row status"), label)


def _check_case(name: str, case: str) -> None:
    if name != case:
        raise ValueError(f"expected rows of case {case!r}, found case {shown(name, limit=80)!r}")


def _enum_value(kind: type[_EnumT], value: Any, what: str) -> _EnumT:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"expected a {what} ({', '.join(item.value for item in kind)}), "
                         f"found {_described(value)}") from None


def _described(value: Any) -> str:
    return shown(repr(value), limit=80)


# ---- one running case -----------------------------------------------------------------------


def invalid_result(case: str, reference: images.LabelImage, reason: str, *, profile: str) -> CaseResult:
    """The case scored as invalid output by the missing-case rule, with `reason`."""
    rows = score_case(reference.array, None, reference.geometry.spacing_zyx_mm, profile=profile, case=case,
                      missing_status=RowStatus.INVALID)
    return CaseResult(CaseOutcome(case, CaseStatus.INVALID, reason), rows)


class _RunningCase:
    """A case whose child runs: it collects what the child sends and stops it when it must."""

    def __init__(self, task: CaseTask, context, *, time_limit_s: float, scorer: Scorer):
        self.task = task
        self.time_limit_s = time_limit_s
        self.reference = read_reference(task.reference)  # raises in the parent: the organizers' data
        reader, writer = context.Pipe(duplex=False)
        self.reader: Connection = reader
        self.process: BaseProcess = context.Process(
            target=_child_main, args=(writer, task, self.reference, scorer), name=f"score {task.case}", daemon=True)
        try:
            self.process.start()
        except BaseException:
            reader.close()
            raise
        finally:
            writer.close()
        os.set_blocking(reader.fileno(), False)
        self.deadline = time.monotonic() + time_limit_s
        self.received = bytearray()
        self.reader_open = True
        self.stop_reason: str | None = None

    def waitables(self) -> list:
        return [self.process.sentinel, self.reader] if self.reader_open else [self.process.sentinel]

    def drain(self) -> None:
        """Read what the child has sent so far, without blocking; kill it when it sends too much."""
        while self.reader_open and self.stop_reason is None:
            try:
                chunk = os.read(self.reader.fileno(), _READ_CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                self.reader_open = False
                return
            self.received += chunk
            if len(self.received) > MAX_RESULT_BYTES:
                self.stop(too_large_reason(MAX_RESULT_BYTES))

    def stop_if_late(self, now: float) -> None:
        if self.stop_reason is None and now >= self.deadline and self.process.exitcode is None:
            self.stop(timed_out_reason(self.time_limit_s))

    def stop(self, reason: str) -> None:
        """Kill the child (SIGKILL) and wait a little for it to be gone."""
        self.stop_reason = reason
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(KILL_WAIT_S)

    @property
    def ended(self) -> bool:
        return self.stop_reason is not None or self.process.exitcode is not None

    def result(self) -> CaseResult:
        """The case's result once the child has ended (after the last `drain`)."""
        if self.stop_reason is not None:
            return self._invalid(self.stop_reason)
        exit_code = self.process.exitcode
        if exit_code is None:  # not reached: a child is taken as ended once it has a stop reason or an exit code
            raise RuntimeError(f"the scoring process of case {self.task.case!r} has not ended")
        if not self.received.startswith(STARTED):
            raise EvaluationError(
                f"the scoring process of case {self.task.case!r} ended before it started scoring "
                f"({exit_text(exit_code)}); its error output says why. A script that scores must run from "
                "an `if __name__ == \"__main__\":` block, as multiprocessing requires")
        payload = bytes(self.received[len(STARTED):])
        if exit_code != 0 or not payload:
            return self._invalid(died_reason(exit_code))
        try:
            decoded = decode_result(payload, self.task.case)
        except ValueError as error:
            return self._invalid(unreadable_result_reason(str(error)))
        return self._invalid(raised_reason(decoded)) if isinstance(decoded, str) else decoded

    def _invalid(self, reason: str) -> CaseResult:
        return invalid_result(self.task.case, self.reference, reason, profile=self.task.profile)

    def close(self) -> None:
        """Release the pipe and the process (killed first if it still runs)."""
        if self.process.exitcode is None:
            self.stop(self.stop_reason or "scoring was interrupted")
        self.reader.close()
        if self.process.exitcode is not None:
            self.process.close()


# ---- scheduling -----------------------------------------------------------------------------


def check_time_limit(time_limit_s: Any) -> float:
    if isinstance(time_limit_s, bool) or not isinstance(time_limit_s, (int, float)) or not (
            math.isfinite(time_limit_s) and time_limit_s > 0):
        raise EvaluationError(f"the scoring time limit must be a positive number of seconds, found {time_limit_s!r}")
    return float(time_limit_s)


def preload_in_children(*modules: str) -> None:
    """Have the forkserver load `modules` too, so that no child pays for importing them; takes effect
    if this process has not scored a case yet (its first score_cases starts the forkserver).

    For what the process's main module imports: multiprocessing runs the parent's `__main__` again
    in every forkserver child. `spider` costs nothing there; a Ray worker's main module imports
    ray, about 0.35 s a case unless ray is preloaded (submissions.executors does).
    """
    _PRELOADED_MODULES.extend(name for name in modules if name not in _PRELOADED_MODULES)


def _forkserver_context():
    if multiprocessing.current_process().daemon:
        raise EvaluationError(
            "scoring starts a process per case: expected to run in a process that may start processes "
            "(the main process or a concurrent.futures worker), found a daemonic multiprocessing worker")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOADED_MODULES)
    return context


def score_cases(
    tasks: Iterable[CaseTask],
    *,
    time_limit_s: float = DEFAULT_SCORING_TIME_LIMIT_S,
    workers: int = 1,
    scorer: Scorer = score_prediction,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Score each task in a child process of its own, at most `workers` at a time, each within
    `time_limit_s` seconds; returns the results in the order the cases ended (`on_result` is called
    with each as it comes). Raises what read_reference raises for an unreadable reference, after
    stopping the children still running."""
    limit = check_time_limit(time_limit_s)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EvaluationError(f"workers must be a positive integer, found {workers!r}")
    waiting = list(tasks)
    waiting.reverse()  # popped from the end: the first task first
    context = _forkserver_context() if waiting else None
    running: list[_RunningCase] = []
    results: list[CaseResult] = []
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                running.append(_RunningCase(waiting.pop(), context, time_limit_s=limit, scorer=scorer))
            _wait_for_any(running)
            for case in _ended(running):
                running.remove(case)
                try:
                    result = case.result()
                finally:
                    case.close()
                results.append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        for case in running:
            case.close()
    return results


def _wait_for_any(running: list[_RunningCase]) -> None:
    """Sleep until a child sends, ends, or the earliest deadline comes."""
    timeout = max(0.0, min(case.deadline for case in running) - time.monotonic())
    wait([item for case in running for item in case.waitables()], timeout=timeout)


def _ended(running: list[_RunningCase]) -> list[_RunningCase]:
    now = time.monotonic()
    ended = []
    for case in running:
        case.drain()
        case.stop_if_late(now)
        if case.ended:
            case.drain()  # what it wrote before it ended
            ended.append(case)
    return ended


def score_guarded(task: CaseTask, *, time_limit_s: float = DEFAULT_SCORING_TIME_LIMIT_S,
                  scorer: Scorer = score_prediction) -> CaseResult:
    """One case scored by `score_cases`: its result, whatever its child did."""
    [result] = score_cases([task], time_limit_s=time_limit_s, scorer=scorer)
    return result
