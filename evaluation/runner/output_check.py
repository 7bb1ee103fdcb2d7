"""Checks of a finished job's output folder, read from the host side without following links."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from challenge.contract import IMAGE_SUFFIX, OUTPUT_FOLDER, OUTPUT_ROOT, OUTPUT_SOCKET
from challenge.geometry import Geometry
from challenge.statuses import JobStatus
from challenge.text import shown
from evaluation.errors import InvalidPredictionError
from evaluation.prediction import read_prediction

# Most files and folders an output may hold; more is treated like an output that is too large
# (walking millions of entries would itself be the attack).
MAX_OUTPUT_ENTRIES = 1000
_SHOWN = 5


@dataclass(frozen=True)
class FolderSize:
    """Bytes and entries below a folder. `bytes` counts each regular file as the larger of its
    length and its allocated blocks, so neither sparse nor preallocated files hide."""

    bytes: int
    entries: int
    complete: bool


@dataclass(frozen=True)
class OutputCheck:
    """The verdict on a job's output: SUCCEEDED with `path`, or MISSING/INVALID_OUTPUT with a reason."""

    status: JobStatus
    reason: str
    path: Path | None = None


def measure_folder(
    folder: Path, *, stop_above_bytes: int | None = None, max_entries: int = MAX_OUTPUT_ENTRIES
) -> FolderSize:
    """Size of `folder` without following links; stops early (complete=False) past either bound."""
    total = entries = 0
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            iterator = os.scandir(current)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with iterator:
            for entry in iterator:
                entries += 1
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(status.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(status.st_mode):
                    total += max(status.st_size, status.st_blocks * 512)
                if entries > max_entries or (stop_above_bytes is not None and total > stop_above_bytes):
                    return FolderSize(bytes=total, entries=entries, complete=False)
    return FolderSize(bytes=total, entries=entries, complete=True)


def output_too_large(size: FolderSize, *, limit_bytes: int, max_entries: int = MAX_OUTPUT_ENTRIES) -> str | None:
    """The reason an output breaks the size limits, or None when it is within them."""
    if size.bytes > limit_bytes:
        return (
            f"/output grew past the limit of {_mib(limit_bytes)} (at least {_mib(size.bytes)} when the job was "
            f"stopped); write only the one segmentation to {OUTPUT_FOLDER}/"
        )
    if size.entries > max_entries:
        return f"/output holds more than {max_entries} files and folders; write only the one segmentation"
    return None


def check_output(output_root: Path, expected: Geometry) -> OutputCheck:
    """Find exactly one regular .mha in the output socket's folder and check it against `expected`.

    `output_root` is the host folder that was mounted at /output. Nothing is followed: a link
    anywhere on the way (folders included) makes the output invalid.
    """
    output_root = Path(output_root)
    folder = output_root
    shown_folder = OUTPUT_ROOT
    for part in OUTPUT_SOCKET.relative_path.split("/"):
        folder, shown_folder = folder / part, shown_folder / part
        kind = _kind(folder)
        if kind == "missing":
            return OutputCheck(JobStatus.MISSING_OUTPUT, f"{shown_folder}/ does not exist; " + _expected_output())
        if kind != "folder":
            return OutputCheck(
                JobStatus.INVALID_OUTPUT, f"{shown_folder} is a {kind}, not a folder; " + _expected_output()
            )
    names = sorted(entry.name for entry in os.scandir(folder))
    images = [name for name in names if name.lower().endswith(IMAGE_SUFFIX)]
    if not images:
        found = f" (found: {_list(names)})" if names else ""
        elsewhere = _images_elsewhere(output_root)
        hint = f"; .mha files elsewhere in /output: {_list(elsewhere)}" if elsewhere else ""
        return OutputCheck(
            JobStatus.MISSING_OUTPUT, f"no {IMAGE_SUFFIX} file in {OUTPUT_FOLDER}/{found}{hint}; " + _expected_output()
        )
    if len(images) > 1:
        return OutputCheck(
            JobStatus.INVALID_OUTPUT,
            f"found {len(images)} {IMAGE_SUFFIX} files in {OUTPUT_FOLDER}/ ({_list(images)}); write exactly one",
        )
    if shown(images[0]) != images[0]:
        return OutputCheck(
            JobStatus.INVALID_OUTPUT,
            f"the file name '{shown(images[0])}' is not printable UTF-8 text; name the segmentation e.g. output.mha",
        )
    path = folder / images[0]
    try:
        read_prediction(path, expected)
    except InvalidPredictionError as error:
        return OutputCheck(JobStatus.INVALID_OUTPUT, shown(error.reason), path)
    return OutputCheck(JobStatus.SUCCEEDED, f"wrote a valid segmentation {images[0]}", path)


def _kind(path: Path) -> str:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return "special file"


def _images_elsewhere(output_root: Path) -> list[str]:
    found: list[str] = []
    stack = [output_root]
    while stack and len(found) <= _SHOWN:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.name.lower().endswith(IMAGE_SUFFIX):
                found.append(str(OUTPUT_ROOT / Path(entry.path).relative_to(output_root)))
    return found


def _expected_output() -> str:
    return f"write exactly one {IMAGE_SUFFIX} segmentation to {OUTPUT_FOLDER}/"


def _list(names: list[str]) -> str:
    """Up to a few container-chosen names, each made printable (challenge.text.shown)."""
    listed = ", ".join(shown(name, limit=100) for name in names[:_SHOWN])
    return listed + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**2:.0f} MiB"
