"""A job's log as a page of its own, where the audience's disclosure allows job logs.

A log is the container's text (whatever it printed, about hostile input or not) and the runner's
own lines (the engine's errors, which may name host paths). So the page shows it escaped in a
<pre>, as printable lines (challenge.text.shown_block), only its last LOG_SHOWN_CHARS characters
(the runner already cut it to the phase's log limit), with every host folder the build knows of
replaced by HOST_PATH_SHOWN: the site's check for host paths (leaderboard.leaks) holds for logs too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from challenge.text import shown_block
from leaderboard.writer import PageWriter
from submissions.records import JobRecord, SubmissionResults

LOGS_FOLDER = "logs"
LOG_SHOWN_CHARS = 200_000
"""Characters of a log kept on its page (the end of it, where a failure shows)."""
HOST_PATH_SHOWN = "<host path>"


def log_page_of(submission: SubmissionResults, job: JobRecord) -> str:
    """The path of the job's log page from the site's root (the case name made a safe file name)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", job.case).lstrip(".") or "case"
    return f"{LOGS_FOLDER}/{submission.id}/{name}.html"


def read_log_tail(path: Path, *, limit_chars: int = LOG_SHOWN_CHARS) -> tuple[str, bool]:
    """The last `limit_chars` characters (at most 4 bytes each) of the log at `path`, and whether
    it was cut. Not following a link: the log is the runner's file, never the container's."""
    limit_bytes = 4 * limit_chars
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(descriptor, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        cut = size > limit_bytes
        if cut:
            file.seek(size - limit_bytes)
        data = file.read(limit_bytes)
    text = data.decode("utf-8", "surrogateescape")
    return shown_block(text, limit=limit_chars), cut or len(text) > limit_chars


def without_host_paths(text: str, host_folders: Sequence[str]) -> str:
    """`text` with each of `host_folders` (and anything below it) shown as HOST_PATH_SHOWN."""
    for folder in sorted({f.rstrip("/") for f in host_folders if f.rstrip("/")}, key=len, reverse=True):
        text = text.replace(folder, HOST_PATH_SHOWN)
    return text


def write_job_log(writer: PageWriter, submission: SubmissionResults, job: JobRecord, *,
                  host_folders: Sequence[str]) -> str | None:
    """Write the page of the job's log; its path from the site's root, or None when there is no log
    file to show (not run yet, or no longer stored)."""
    if not job.log_path:
        return None
    try:
        text, cut = read_log_tail(Path(job.log_path))
    except OSError:
        return None
    relative = log_page_of(submission, job)
    notes = [f"Job of submission {submission.id} ({submission.team}, {submission.algorithm_name}), case {job.case}: "
             f"{job.status.value}, {job.attempts} attempt(s). What the container printed, as the runner saved it; "
             f"host paths are shown as {HOST_PATH_SHOWN}."]
    if cut:
        notes.append(f"Only the last {LOG_SHOWN_CHARS} characters are shown.")
    writer.page(relative, "job_log.html", tables=[], heading=f"Log of case {job.case}, submission {submission.id}",
                notes=notes, log=without_host_paths(text, host_folders))
    return relative
