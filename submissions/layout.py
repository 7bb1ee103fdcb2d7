"""Where the engine keeps files in the work folder: every path is built from ids and digests only.

    <work>/images/sha256-<hex>.tar                      image archives (docker save), by digest
    <work>/submissions/<id>/metrics.json                the submission's results (grand-challenge layout)
    <work>/submissions/<id>/jobs/<job id>/attempt-<n>/  one folder per try of a job (output, log)

Team and algorithm names never appear in a path: they are user input.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_archive_path(work_dir: Path, digest: str) -> Path:
    if not _DIGEST.match(digest):
        raise ValueError(f"expected an image digest 'sha256:<64 hex digits>', found {digest!r}")
    return work_dir / "images" / f"sha256-{digest.split(':', 1)[1]}.tar"


def submission_dir(work_dir: Path, submission_id: int) -> Path:
    return work_dir / "submissions" / str(int(submission_id))


def metrics_path(work_dir: Path, submission_id: int) -> Path:
    return submission_dir(work_dir, submission_id) / "metrics.json"


def job_attempt_dir(work_dir: Path, submission_id: int, job_id: int, attempt: int) -> Path:
    return submission_dir(work_dir, submission_id) / "jobs" / str(int(job_id)) / f"attempt-{int(attempt)}"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` so that readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
