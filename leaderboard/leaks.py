"""The site's check of its own output: nothing its phase's disclosure forbids is in any file it wrote.

`build_site` runs `find_leaks` on the finished site before putting it in place. Every file is
read as bytes and its path (relative to the site) as text, and searched for

* the phase's case identifiers, where the disclosure does not allow case names, each matched as
  a whole token (not preceded or followed by a letter, digit or '_'), in any letter case;
* the absolute paths the build was given (the test set folder, each job's log and output), in
  every phase;
* the text containers chose (the log line a failed job's reason quotes), where the disclosure does
  not allow job logs, and the whole reason where it allows neither logs nor failure reasons, as
  written, HTML-escaped or JSON-escaped;
* in a team's report, what belongs to other teams (`others_secrets`): their image digests, failure
  reasons and job paths (their team and algorithm names are on the public leaderboard, and a name
  such as "reference" would match ordinary words).

A leak is reported by file and kind; a container's text is named by its job, never quoted.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from challenge.phases import Disclosure
from challenge.text import LOG_LINE_MARK
from submissions.records import SubmissionResults

MIN_CONTAINER_TEXT = 8
"""Shorter reasons are not searched for: they would match ordinary words of the site."""


@dataclass(frozen=True)
class Secret:
    """Something the site must not contain: its variants as bytes, and how a leak of it is named.

    `gate` (optional) holds text that every variant contains, shared by many secrets (the folder
    all job paths lie in): a file without it cannot hold the secret, so thousands of job paths cost
    one search per file instead of one each.
    """

    variants: tuple[bytes, ...]
    description: str
    gate: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Leak:
    file: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what}"


def _variants(text: str) -> tuple[bytes, ...]:
    forms = {text, html.escape(text, quote=True), html.escape(text, quote=False), json.dumps(text)[1:-1],
             json.dumps(text, ensure_ascii=False)[1:-1]}
    return tuple(sorted(form.encode("utf-8") for form in forms if form))


def _path_forms(path: str | Path) -> set[str]:
    text = str(path)
    forms = {text, Path(text).as_posix()}
    try:
        forms.add(str(Path(text).resolve()))
    except (OSError, RuntimeError):
        pass
    return {form for form in forms if form and Path(form).is_absolute() and form != "/"}


def secrets_of(disclosure: Disclosure, submissions: Sequence[SubmissionResults], *,
               paths: Mapping[str, str | Path | None]) -> list[Secret]:
    """The absolute `paths` (what each is -> path), every job's log and output path, and the failure
    reasons containers wrote unless the disclosure allows job logs."""
    found: list[Secret] = []
    for name, path in paths.items():
        if path is not None:
            found += [Secret(_variants(form), f"the absolute path of {name}") for form in _path_forms(path)]
    job_paths = _job_paths(submissions)
    # Every job path lies in the registry's work folder: a file without that folder's path holds none.
    gates = _common_folders([form for _, forms in job_paths for form in forms])
    for description, forms in job_paths:
        for form in forms:
            gate = next((_variants(folder) for folder in gates if _inside(form, folder)), ())
            found.append(Secret(_variants(form), description, gate))
    for submission in submissions:
        for job in submission.jobs:
            where = f"job of submission {submission.id}, case {job.case}"
            shown = disclosure.reason_shown(job.reason) or ""
            reason = job.reason or ""
            hidden = "" if shown == reason else reason[len(shown):].removeprefix(LOG_LINE_MARK)
            if _searchable(hidden):
                what = "failure reason text" if not shown else "container's log line quoted in the failure reason"
                found.append(Secret(_variants(hidden.strip()), f"the {what} of the {where}"))
    return found


def host_folders(submissions: Sequence[SubmissionResults], *, paths: Mapping[str, str | Path | None]) -> list[str]:
    """The host folders a page may name no path in: each of `paths` (as given and resolved), and the
    folders shared by every job's log and output paths (the registry's work folder)."""
    forms = [form for path in paths.values() if path is not None for form in _path_forms(path)]
    return forms + _common_folders([form for _, job_forms in _job_paths(submissions) for form in job_forms])


def _job_paths(submissions: Sequence[SubmissionResults]) -> list[tuple[str, set[str]]]:
    """Each job's log and output path as (what it is, its absolute forms)."""
    return [(f"the absolute {kind} path of the job of submission {submission.id}, case {job.case}",
             _path_forms(path))
            for submission in submissions for job in submission.jobs
            for path, kind in ((job.log_path, "log"), (job.output_path, "output")) if path]


def others_secrets(others: Sequence[SubmissionResults], *, known: Iterable[str] = ()) -> list[Secret]:
    """What of other teams' submissions a team's report must not hold: their image digests and failure
    reasons (text in `known`, e.g. the team's own digests, is left out)."""
    allowed = {text.strip() for text in known}
    found: list[Secret] = []
    for submission in others:
        where = f"submission {submission.id} of another team"
        texts = [(submission.image_digest, "the image digest")]
        texts += [(job.reason or "", f"the failure reason of case {job.case}") for job in submission.jobs]
        for text, what in texts:
            if _searchable(text) and text.strip() not in allowed:
                found.append(Secret(_variants(text.strip()), f"{what} of {where}"))
    return found


def _searchable(text: str) -> bool:
    return len(text.strip()) >= MIN_CONTAINER_TEXT


def _common_folders(forms: Sequence[str]) -> list[str]:
    """Deepest shared folders of `forms`: one per top-level folder they start in (paths as given and
    as resolved may lie in different trees), each a prefix of the forms it was computed from."""
    by_top: dict[str, list[str]] = {}
    for form in forms:
        by_top.setdefault(Path(form).parts[1] if len(Path(form).parts) > 1 else "", []).append(form)
    return sorted({os.path.commonpath(group) for group in by_top.values()}, key=len, reverse=True)


def _inside(form: str, folder: str) -> bool:
    return form == folder or form.startswith(folder.rstrip("/") + "/")


def case_pattern(cases: Iterable[str]) -> re.Pattern[bytes] | None:
    """Any of `cases` as a whole token (not next to a letter, digit or '_'), any letter case."""
    names = sorted({case for case in cases if case}, key=len, reverse=True)
    if not names:
        return None
    alternatives = b"|".join(re.escape(name.encode("utf-8")) for name in names)
    return re.compile(rb"(?<![A-Za-z0-9_])(?:" + alternatives + rb")(?![A-Za-z0-9_])", re.IGNORECASE)


def find_leaks(root: Path, disclosure: Disclosure, *, cases: Iterable[str], secrets: Sequence[Secret]) -> list[Leak]:
    """Every forbidden thing found in the files under `root` (contents and paths relative to it)."""
    pattern = None if disclosure.case_names else case_pattern(cases)
    leaks: list[Leak] = []
    for path in sorted(p for p in root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if pattern is not None:
            match = pattern.search(relative.encode("utf-8"))
            if match:
                leaks.append(Leak(relative, f"its file name holds the case identifier {match.group().decode()!r}"))
        if not path.is_file():
            continue
        content = path.read_bytes()
        if pattern is not None:
            match = pattern.search(content)
            if match:
                leaks.append(Leak(relative, f"holds the case identifier {match.group().decode(errors='replace')!r}"))
        gate_found: dict[tuple[bytes, ...], bool] = {}
        for secret in secrets:
            if secret.gate:
                if secret.gate not in gate_found:
                    gate_found[secret.gate] = any(text in content for text in secret.gate)
                if not gate_found[secret.gate]:
                    continue
            if any(variant in content for variant in secret.variants):
                leaks.append(Leak(relative, f"holds {secret.description}"))
    return leaks
