"""Scorers that misbehave on chosen cases, for the scoring guard's tests. Never used by production code.

Imported by name (`scoring_fakes`) from this folder, which tests/scoring/conftest.py puts on
sys.path, so that the guard's child processes can unpickle them. Each is used as
`functools.partial(misbehaving, behaviour=..., on_cases=(...))`: on the named cases it does
`behaviour` instead of scoring, on every other case it is score_prediction itself.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

from challenge import images
from evaluation.prediction import Prediction
from evaluation.score import CaseResult, score_prediction

HANG_S = 3600


def _sleep() -> None:
    time.sleep(HANG_S)


def _hold_the_gil() -> None:
    """Hang in C code that keeps the GIL (a ctypes.PyDLL call does not release it): no Python
    thread of the process runs meanwhile."""
    ctypes.PyDLL(None).sleep(HANG_S)


def _exit() -> None:
    os._exit(3)


def _kill_itself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _segfault() -> None:
    ctypes.string_at(0)


def _raise() -> None:
    raise RuntimeError("the scorer fell over")


def _run_out_of_memory() -> None:
    raise MemoryError()


BEHAVIOURS = {
    "sleep": _sleep, "hold_the_gil": _hold_the_gil, "exit": _exit, "kill_itself": _kill_itself,
    "segfault": _segfault, "raise": _raise, "run_out_of_memory": _run_out_of_memory,
}


def misbehaving(case: str, reference: images.LabelImage, prediction: Prediction, *, profile: str,
                behaviour: str, on_cases: tuple[str, ...], pid_file: str | None = None) -> CaseResult:
    """score_prediction, except on `on_cases`: there it writes its pid to `pid_file` (if given) and
    does `behaviour` (one of BEHAVIOURS)."""
    if case in on_cases:
        if pid_file is not None:
            Path(pid_file).write_text(str(os.getpid()), encoding="utf-8")
        BEHAVIOURS[behaviour]()
    return score_prediction(case, reference, prediction, profile=profile)
