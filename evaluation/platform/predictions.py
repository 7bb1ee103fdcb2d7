"""grand-challenge's /input/predictions.json: read in the evaluation container, written for a local run.

The platform lists one entry per succeeded algorithm job (../shared/GRAND-CHALLENGE.md). A job's
socket values carry their socket under `socket` (since Dec 2025) and under the legacy key
`interface`; either is accepted, `socket` first. Durations are ISO 8601, in the platform's long
form ('P0DT00H02M13S') or the short one forge's stubs write ('PT22M17S'), or null. A job's output
image lies at /input/<job pk>/output/<output socket's relative_path>/<output image pk>.mha and its
case is named by its input image's name ('1_t2.mha' -> '1_t2').
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from challenge.contract import IMAGE_SUFFIX, INPUT_SOCKET, OUTPUT_SOCKET, Socket, value_pk
from challenge.text import shown
from evaluation.platform.errors import PredictionsFileError

PREDICTIONS_FILE = "predictions.json"
SUCCEEDED = "Succeeded"
JOB_OUTPUT_FOLDER = "output"
"""A job's outputs are under /input/<job pk>/output/."""
LOCAL_URL = "http://localhost"
"""Where the jobs of a local run pretend to live (the platform writes its own site's addresses)."""
# Suffixes an input image's name may carry; what is left is the case ('1_t2.mha' -> '1_t2').
_IMAGE_NAME_SUFFIXES = (".mha", ".mhd", ".nii.gz", ".nii", ".tiff", ".tif")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(
    rf"^P(?!$)(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
_DURATION_UNITS_S = (7 * 86400, 86400, 3600, 60, 1)
DURATION_EXAMPLES = "an ISO 8601 duration such as 'P0DT00H02M13S' or 'PT22M17S', or null"


@dataclass(frozen=True)
class Job:
    """One succeeded algorithm job as the evaluation needs it."""

    pk: str
    input_image_name: str
    output_relative_path: str
    output_image_pk: str
    exec_duration_s: float | None = None
    invoke_duration_s: float | None = None

    @property
    def case(self) -> str:
        """The case the job ran on: its input image's name without the image suffix."""
        for suffix in _IMAGE_NAME_SUFFIXES:
            if self.input_image_name.lower().endswith(suffix):
                return self.input_image_name[: -len(suffix)]
        return self.input_image_name

    @property
    def seconds(self) -> float | None:
        """How long the job ran (exec or invoke), None when the platform did not say."""
        return self.exec_duration_s if self.exec_duration_s is not None else self.invoke_duration_s

    def output_folder(self, input_root: Path) -> Path:
        return Path(input_root) / self.pk / JOB_OUTPUT_FOLDER / self.output_relative_path

    def output_path(self, input_root: Path) -> Path:
        """/input/<job pk>/output/<relative_path>/<output image pk>.mha"""
        return self.output_folder(input_root) / f"{self.output_image_pk}{IMAGE_SUFFIX}"


# ---- durations ------------------------------------------------------------------------------


def parse_duration(value: Any, *, what: str = "duration") -> float | None:
    """Seconds in an ISO 8601 duration (weeks, days, hours, minutes, seconds; fractions allowed), None for null."""
    if value is None:
        return None
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise PredictionsFileError(f"{what}: expected {DURATION_EXAMPLES}, found {_shown(value)}")
    return float(sum(float(part) * unit for part, unit in zip(match.groups(), _DURATION_UNITS_S, strict=True)
                     if part is not None))


def format_duration(seconds: float) -> str:
    """The platform's long form of a duration: 'P0DT00H02M13S' (Django's duration_iso_string)."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a duration must be a finite number of seconds >= 0, found {seconds!r}")
    total_us = round(seconds * 1e6)
    days, rest_us = divmod(total_us, 86400 * 10**6)
    whole_s, micro = divmod(rest_us, 10**6)
    hours, rest_s = divmod(whole_s, 3600)
    minutes, secs = divmod(rest_s, 60)
    fraction = f".{micro:06d}" if micro else ""
    return f"P{days}DT{hours:02d}H{minutes:02d}M{secs:02d}{fraction}S"


# ---- reading --------------------------------------------------------------------------------


def read_predictions(path: Path) -> tuple[Job, ...]:
    """The jobs of a predictions.json file; PredictionsFileError saying what was expected and found."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsFileError(f"expected the platform's list of jobs at {path}, found no such file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PredictionsFileError(f"{path.name}: expected JSON, found text that is not ({error})") from None
    return parse_predictions(document, source=path.name)


def parse_predictions(document: Any, *, source: str = PREDICTIONS_FILE) -> tuple[Job, ...]:
    """The jobs of a parsed predictions.json, checked: one job per pk and per case."""
    if not isinstance(document, list):
        raise PredictionsFileError(f"{source}: expected a list of jobs, found {_kind(document)}")
    if not document:
        raise PredictionsFileError(f"{source}: expected at least one job, found an empty list")
    jobs = [_job(entry, index, source) for index, entry in enumerate(document)]
    by_pk: dict[str, Job] = {}
    by_case: dict[str, Job] = {}
    for job in jobs:
        if job.pk in by_pk:
            raise PredictionsFileError(f"{source}: expected each job once, found job {job.pk} twice")
        by_pk[job.pk] = job
        if job.case in by_case:
            raise PredictionsFileError(
                f"{source}: expected one job per case, found jobs {by_case[job.case].pk} and {job.pk} both with "
                f"the input image {job.input_image_name!r} (case {job.case!r})")
        by_case[job.case] = job
    return tuple(jobs)


def _job(entry: Any, index: int, source: str) -> Job:
    where = f"{source}: job {index}"
    if not isinstance(entry, dict):
        raise PredictionsFileError(f"{where}: expected an object, found {_kind(entry)}")
    pk = _safe_name(entry.get("pk"), what=f"{where}: pk")
    where = f"{source}: job {pk}"
    status = entry.get("status", SUCCEEDED)
    if status != SUCCEEDED:
        raise PredictionsFileError(
            f"{where}: expected status {SUCCEEDED!r} (the platform evaluates only when every job succeeded), "
            f"found {_shown(status)}")
    input_value, _ = _image_value(entry.get("inputs"), INPUT_SOCKET, key="inputs", where=where)
    output_value, output_socket = _image_value(entry.get("outputs"), OUTPUT_SOCKET, key="outputs", where=where)
    name = input_value["image"].get("name")
    if not isinstance(name, str) or not name.strip():
        raise PredictionsFileError(f"{where}: expected the input image's file name under inputs[].image.name, "
                                   f"found {_shown(name)}")
    output_pk = _safe_name(output_value["image"].get("pk"), what=f"{where}: outputs[].image.pk")
    job = Job(
        pk=pk,
        input_image_name=name,
        output_relative_path=_relative_path(output_socket.get("relative_path", OUTPUT_SOCKET.relative_path),
                                            where=where),
        output_image_pk=output_pk,
        exec_duration_s=parse_duration(entry.get("exec_duration"), what=f"{where}: exec_duration"),
        invoke_duration_s=parse_duration(entry.get("invoke_duration"), what=f"{where}: invoke_duration"),
    )
    _safe_name(job.case, what=f"{where}: the case named by the input image {name!r}")
    return job


def socket_of(value: Any, *, where: str) -> dict:
    """The socket object of a socket value: under `socket` (current) or `interface` (legacy)."""
    if not isinstance(value, dict):
        raise PredictionsFileError(f"{where}: expected a socket value (an object), found {_kind(value)}")
    for key in ("socket", "interface"):
        socket = value.get(key)
        if isinstance(socket, dict):
            if not isinstance(socket.get("slug"), str):
                raise PredictionsFileError(f"{where}: expected the socket's slug (text) under {key}.slug, "
                                           f"found {_shown(socket.get('slug'))}")
            return socket
    raise PredictionsFileError(f"{where}: expected the socket under 'socket' or 'interface', found neither "
                               f"(keys: {sorted(value)})")


def _image_value(values: Any, expected: Socket, *, key: str, where: str) -> tuple[dict, dict]:
    """The image value of socket `expected` among a job's inputs or outputs (else its only image value)."""
    if not isinstance(values, list):
        raise PredictionsFileError(f"{where}: expected a list under {key!r}, found {_kind(values)}")
    with_image = []
    for position, value in enumerate(values):
        socket = socket_of(value, where=f"{where}: {key}[{position}]")
        if isinstance(value.get("image"), dict):
            with_image.append((value, socket))
    chosen = [pair for pair in with_image if pair[1]["slug"] == expected.slug]
    if len(chosen) == 1 or (not chosen and len(with_image) == 1):
        return (chosen or with_image)[0]
    slugs = [socket_of(value, where=where)["slug"] for value in values]
    raise PredictionsFileError(
        f"{where}: expected one image value of the socket {expected.slug!r} under {key!r}, found "
        + (f"{len(chosen)} of them" if chosen else f"sockets {slugs} ({len(with_image)} with an image)"))


def _relative_path(value: Any, *, where: str) -> str:
    path = PurePosixPath(value) if isinstance(value, str) and value.strip() else None
    if path is None or path.is_absolute() or ".." in path.parts:
        raise PredictionsFileError(f"{where}: expected the output socket's relative_path (a relative folder such "
                                   f"as {OUTPUT_SOCKET.relative_path!r}), found {_shown(value)}")
    return str(path)


def _safe_name(value: Any, *, what: str) -> str:
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise PredictionsFileError(f"{what}: expected a name of letters, digits, '.', '_' or '-' (a uuid), "
                                   f"found {_shown(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _shown(value: Any) -> str:
    return shown(repr(value), limit=80)


# ---- writing (a local run) ------------------------------------------------------------------


def socket_value(socket: Socket, *, image_pk: str, image_name: str) -> dict:
    """A socket value with an image, as the platform writes it (socket under both keys)."""
    return {
        "socket": socket.as_json(),
        "interface": socket.as_json(),
        "value": None,
        "file": None,
        "image": {"pk": image_pk, "name": image_name},
        "pk": value_pk(image_pk),
    }


def job_entry(*, pk: str, input_image_pk: str, input_image_name: str, output_image_pk: str,
              exec_seconds: float | None, algorithm_image: str, output_image_name: str = "output.mha",
              base_url: str = LOCAL_URL) -> dict:
    """One entry of predictions.json in the platform's shape (../shared/GRAND-CHALLENGE.md)."""
    return {
        "pk": pk,
        "url": f"{base_url}/algorithms/jobs/{pk}/",
        "api_url": f"{base_url}/api/v1/algorithms/jobs/{pk}/",
        "algorithm_image": algorithm_image,
        "inputs": [socket_value(INPUT_SOCKET, image_pk=input_image_pk, image_name=input_image_name)],
        "outputs": [socket_value(OUTPUT_SOCKET, image_pk=output_image_pk, image_name=output_image_name)],
        "status": SUCCEEDED,
        "hanging_protocol": None,
        "optional_hanging_protocols": [],
        "view_content": {},
        "exec_duration": None if exec_seconds is None else format_duration(exec_seconds),
        "invoke_duration": None,
    }
