"""Writing a site or report folder as a whole: built beside its place, checked, then swapped in.

The public site and the private reports (leaderboard.site, leaderboard.reports) are written the
same way: into a hidden folder next to `out`, searched by the caller's check for what its
audience may not see, and only then put in place of `out`. A failed check, or any error, leaves
`out` as it was and removes the half-written folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from leaderboard.errors import LeaderboardError
from leaderboard.leaks import Leak

MARKER = ".spider-leaderboard"
"""The file that marks a folder as written by this package (only such a folder is replaced)."""
_LEAKS_LISTED = 10
Written = TypeVar("Written")


def publish(out: Path, write: Callable[[Path], Written], check: Callable[[Path], Sequence[Leak]], *,
            audience: str) -> Written:
    """Run `write(folder)`, then `check(folder)`; if it finds nothing, the folder replaces `out`.

    `out` must be new, empty, or written by this function before. `audience` names who the
    output is for in the error a leak raises ("phase 'final' public site").
    """
    out = Path(out)
    _refuse_foreign(out)
    building = out.parent / f".{out.name}.building-{os.getpid()}"
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        written = write(building)
        (building / MARKER).write_text("written by spider leaderboard\n", encoding="utf-8")
        leaks = check(building)
        if leaks:
            listed = "; ".join(str(leak) for leak in leaks[:_LEAKS_LISTED])
            more = f" (and {len(leaks) - _LEAKS_LISTED} more)" if len(leaks) > _LEAKS_LISTED else ""
            raise LeaderboardError(
                f"the {audience} would show what its disclosure forbids, so nothing was written: {listed}{more}"
            )
        _replace(out, building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return written


def _refuse_foreign(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise LeaderboardError(
            f"{out} exists and is not a leaderboard site or report built before: choose an empty or new folder"
        )


def _replace(out: Path, building: Path) -> None:
    """Put the finished folder in place of `out` (one built before, or nothing)."""
    if not out.exists():
        building.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.rename(old)
    building.rename(out)
    shutil.rmtree(old)
