"""Synthetic results of a phase, a tiny test set and stored predictions for the leaderboard tests.

Submissions are the registry's read records (submissions.records) with rows of challenge.results:
each is named by a short `sid` ("s1", "a") that its team and algorithm names carry, and has the
distinct int id `submission_id(sid)` that pages and lookups use.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from challenge.ranking import RankedColumn, RankingConfig
from challenge.release import SERIES_SUFFIX, image_path, mask_path
from challenge.results import GROUP_LEVEL, ScoreRow
from challenge.rules import RULES_VERSION
from challenge.statuses import JobStatus, RowStatus, SubmissionStatus
from challenge.text import LOG_LINE_MARK
from leaderboard.cases import predictions_in_folder
from leaderboard.site import SiteInput, SiteReport
from submissions.records import JobRecord, SubmissionResults

GROUPS = ("vertebrae", "discs", "spinal_canal")
CASES = ("1_t1", "1_t2", "2_t1", "2_t2", "2_t2_SPACE", "5_t1", "5_t2", "7_t2")
EVIL_TEAM = "<script>alert(1)</script>"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def config(*columns: tuple[str, str, str], method: str = "score", per_team: str = "best", **options) -> RankingConfig:
    """A ranking config over (metric, structure, direction) columns."""
    return RankingConfig(
        phase="final",
        method=method,
        per_team=per_team,
        columns=tuple(RankedColumn(m, s, d) for m, s, d in columns),
        **options,
    )


def submission_id(sid: str) -> int:
    """The registry id of the test submission named `sid`: distinct for distinct names, the same in every test."""
    return int.from_bytes(sid.encode("utf-8"), "big")


def page_file(sid: str, suffix: str = ".html") -> str:
    """A file of the submission's page, named by its id: 'submissions/<id>.html', '<id>.jobs.csv'."""
    return f"{submission_id(sid)}{suffix}"


def submission_from_values(
    sid: str, values: dict[tuple[str, str], Iterable[float | None]], *, cases: Iterable[str] | None = None,
    team: str | None = None, created_at: datetime = T0,
) -> SubmissionResults:
    """A submission whose whole-group rows are `values[(metric, structure)]`, one value per case.

    A value None leaves the case without a row; NaN gives a row without a value.
    """
    rows = []
    case_names: tuple[str, ...] = ()
    for (metric, structure), per_case in values.items():
        per_case = list(per_case)
        case_names = tuple(cases) if cases is not None else tuple(f"{k + 1}_t1" for k in range(len(per_case)))
        for case, value in zip(case_names, per_case, strict=True):
            if value is not None:
                rows.append(ScoreRow(case, structure, GROUP_LEVEL, metric, float(value), RowStatus.SCORED))
    jobs = tuple(JobRecord(case, JobStatus.SUCCEEDED, None, 1.0, None, 1) for case in case_names)
    return SubmissionResults(
        id=submission_id(sid), team=team or f"team {sid}", algorithm_name=f"algo {sid}",
        image_digest=f"sha256:{sid * 8}", created_at=created_at, status=SubmissionStatus.COMPLETED,
        rules_version="1", rows=tuple(rows), jobs=jobs,
    )


_METRICS = {  # metric: (mean at quality 1, spread, lower is better)
    "dice": (0.92, 0.03, False),
    "assd": (0.5, 0.2, True),
    "hd95": (2.0, 0.8, True),
    "nsd": (0.95, 0.03, False),
    "detection_rate": (1.0, 0.0, False),
    "identification_rate": (1.0, 0.0, False),
}
_WORST = {"dice": 0.0, "assd": 50.0, "hd95": 100.0, "nsd": 0.0, "detection_rate": 0.0, "identification_rate": 0.0}


def synthetic_submission(
    sid: str, team: str, *, quality: float, seed: int, created_at: datetime = T0,
    crash: Iterable[str] = (), missing_discs: bool = False, cases: Iterable[str] = CASES,
) -> SubmissionResults:
    """A submission scored on `cases`: `quality` 1 is the best; crashed cases get worst values."""
    rng = np.random.default_rng(seed)
    crash = set(crash)
    rows, jobs = [], []
    for case in cases:
        failed = case in crash
        jobs.append(JobRecord(case, JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
                              "container exited with code 1: RuntimeError: out of memory" if failed else None,
                              None if failed else round(float(rng.uniform(5, 30)), 1),
                              f"/logs/{sid}/{case}.log", 1,
                              peak_memory_bytes=None if failed else (100 + 10 * len(jobs)) * 10**6))
        for group in GROUPS:
            for metric, (mean, spread, lower) in _METRICS.items():
                if failed or (missing_discs and group == "discs"):
                    value, status = _WORST[metric], RowStatus.MISSING if failed else RowStatus.PREDICTION_EMPTY
                else:
                    drift = (1 - quality) * (3 if lower else -0.4)
                    value = max(0.0, mean + drift + float(rng.normal(0, spread)))
                    value = min(value, 1.0) if not lower else value
                    status = RowStatus.SCORED
                rows.append(ScoreRow(case, group, GROUP_LEVEL, metric, value, status))
                if metric in ("dice", "assd") and group != "spinal_canal":
                    rows += _level_rows(case, group, metric, value, status, rng=rng, spread=spread, lower=lower)
    return SubmissionResults(
        id=submission_id(sid), team=team, algorithm_name=f"unet-{sid}", image_digest="sha256:" + f"{seed:02d}" * 32,
        created_at=created_at, status=SubmissionStatus.COMPLETED, rules_version=RULES_VERSION,
        rows=tuple(rows), jobs=tuple(jobs),
    )


def _level_rows(case: str, group: str, metric: str, value: float, status: RowStatus, *, rng: np.random.Generator,
                spread: float, lower: bool) -> list[ScoreRow]:
    """The rows of levels 1-3 of a group (L5-L3, L5/S1-L3/L4) near the group's value; a failed case's are equal."""
    rows = []
    for level in (1, 2, 3):
        if group == "vertebrae":
            name, label = labels.vertebra_name(level), labels.vertebra_value(level)
        else:
            name, label = labels.disc_name(level), labels.disc_value(level)
        level_value = value if status is RowStatus.MISSING else max(0.0, value + float(rng.normal(0, spread)))
        rows.append(ScoreRow(case, group, name, metric, min(level_value, 1.0) if not lower else level_value, status,
                             label))
    return rows


def make_phase_submissions() -> list[SubmissionResults]:
    """Four teams (one named like a script tag), one with two submissions, one crashing on two cases."""
    return [
        synthetic_submission("s1", "reference", quality=1.0, seed=1, created_at=T0),
        synthetic_submission("s2", "no-discs", quality=0.95, seed=2, created_at=T0 + timedelta(hours=1),
                             missing_discs=True),
        synthetic_submission("s3", EVIL_TEAM, quality=0.8, seed=3, created_at=T0 + timedelta(hours=2)),
        synthetic_submission("s4", "crashy", quality=0.97, seed=4, created_at=T0 + timedelta(hours=3),
                             crash=("2_t1", "5_t2")),
        synthetic_submission("s5", "reference", quality=0.7, seed=5, created_at=T0 + timedelta(hours=4)),
    ]


@pytest.fixture
def phase_submissions() -> list[SubmissionResults]:
    return make_phase_submissions()


# A test set on a tiny grid: 6 x 20 x 24 voxels (x, y, z), LPS-aligned, uneven spacing.
_SPACING_XYZ = (3.3, 0.7, 0.6)


def _mask(shift: int = 0) -> np.ndarray:
    mask = np.zeros((24, 20, 6), dtype=np.uint8)
    mask[2:5, 4:12, 1:5] = labels.disc_value(1)
    mask[5:11, 4:12, 1:5] = labels.vertebra_value(1)
    mask[11:13, 4:12, 1:5] = labels.disc_value(2)
    mask[13:19, 4:12, 1:5] = labels.vertebra_value(2)
    mask[:, 13:16, 2:4] = labels.SPINAL_CANAL
    return np.roll(mask, shift, axis=0)


# SPACE series are stored in another axis order than TSE series: keep one case that way.
_STORED_ORIENTATION = {"2_t2_SPACE": "PIR"}


def _write(array: np.ndarray, path: Path, case: str) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(_SPACING_XYZ)
    if case in _STORED_ORIENTATION:
        image = sitk.DICOMOrient(image, _STORED_ORIENTATION[case])
    sitk.WriteImage(image, str(path))


def write_test_set(root: Path) -> Path:
    """images/, masks/, overview.csv and radiological_gradings.csv for every case of CASES."""
    rng = np.random.default_rng(0)
    for case in CASES:
        mask = _mask()
        image_file, mask_file = image_path(root, case), mask_path(root, case)
        image_file.parent.mkdir(parents=True, exist_ok=True)
        mask_file.parent.mkdir(parents=True, exist_ok=True)
        _write((rng.normal(100, 10, mask.shape) + 3 * mask).astype(np.int16), image_file, case)
        _write(mask, mask_file, case)
    with (root / "overview.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["new_file_name", "subset", "Manufacturer", "MagneticFieldStrength"])
        for index, case in enumerate(CASES):
            writer.writerow([f"{case}{SERIES_SUFFIX}", "test", "SIEMENS" if index % 2 else "Philips",
                             "1.5" if index < 4 else "3.0"])
    with (root / "radiological_gradings.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Patient", "IVD label", "Modic", "Pfirrman grade"])
        for patient in (1, 2, 5, 7):
            for level in (1, 2, 3):
                writer.writerow([patient, level, 0, 2 + (patient + level) % 3])
    return root


def write_predictions(root: Path, submissions: Iterable[SubmissionResults], *,
                      folder_of: Callable[[SubmissionResults], str] = lambda s: str(s.id)) -> Path:
    """Stored predictions as <root>/<folder_of(submission)>/<case>.mha (none for failed jobs), shifted per
    submission; the folder is the submission's id unless `folder_of` names another."""
    for s, submission in enumerate(submissions):
        (root / folder_of(submission)).mkdir(parents=True)
        for job in submission.jobs:
            if not job.failed:
                _write(_mask(shift=s), root / folder_of(submission) / f"{job.case}{SERIES_SUFFIX}", job.case)
    return root


@pytest.fixture
def test_set(tmp_path: Path) -> Path:
    return write_test_set(tmp_path / "test-set")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The site of the synthetic phase as a phase on public data (everything shown), built once with the test set
    and stored predictions (200 draws)."""
    from challenge.ranking import get_ranking
    from leaderboard.cases import predictions_in_folder
    from leaderboard.site import PUBLIC, SiteInput, build_site

    root = tmp_path_factory.mktemp("leaderboard")
    submissions = make_phase_submissions()
    test_set_root = write_test_set(root / "test-set")
    predictions_root = write_predictions(root / "predictions", submissions)
    site = SiteInput(submissions, test_set=test_set_root, predictions=predictions_in_folder(predictions_root))
    return build_site(site, out=root / "site", config=get_ranking("final"), disclosure=PUBLIC, draws=200)


PIXELS = "pixel values [[101 99 103] [97 100 102]]"
"""What a hostile container prints into its log: the pixels of the hidden image it read."""


def container_reason(case: str) -> str:
    """A failed job's reason as the runner words it: its own words, then the container's last log line."""
    return f"exited with code 1{LOG_LINE_MARK}RuntimeError: cannot segment /input/images/{case}.mha: {PIXELS}"


def hostile_site(root: Path) -> SiteInput:
    """The synthetic phase with its test set and stored predictions; failed jobs' reasons quote log lines naming
    their case and printing pixel values, jobs name their logs (written, with the same text, a host path the
    runner's line names and markup) and outputs."""
    submissions = make_phase_submissions()
    test_set = write_test_set(root / "test-set")
    predictions = write_predictions(root / "predictions", submissions)
    changed = []
    for submission in submissions:
        jobs = []
        for job in submission.jobs:
            output = predictions / str(submission.id) / f"{job.case}.mha"
            log = root / "logs" / str(submission.id) / f"{job.case}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"[spider] engine error: bind source {root / 'work'} failed\nreading "
                           f"/input/images/{job.case}.mha\n{PIXELS}\n<script>alert(1)</script>\n", encoding="utf-8")
            jobs.append(dataclasses.replace(
                job, reason=container_reason(job.case) if job.failed else None, log_path=str(log),
                output_path=str(output) if output.is_file() else None))
        changed.append(dataclasses.replace(submission, jobs=tuple(jobs)))
    return SiteInput(changed, cases=CASES, test_set=test_set, predictions=predictions_in_folder(predictions))


@dataclass(frozen=True)
class Audiences:
    """One phase built for its three audiences under the packaged 'final' phase's disclosures."""

    site: SiteInput
    public: SiteReport
    team: SiteReport
    organizer: SiteReport


def build_audiences(root: Path, *, team: str, draws: int) -> Audiences:
    """The hostile phase (hostile_site) as the hidden phase 'final' shows it: public site, `team`'s report and the
    organizer's report, each in its folder under `root`."""
    from challenge.phases import load_phases
    from challenge.ranking import get_ranking
    from leaderboard.reports import build_organizer_report, build_team_report
    from leaderboard.site import build_site

    final, config, site = load_phases()["final"], get_ranking("final"), hostile_site(root)
    return Audiences(
        site,
        build_site(site, out=root / "public", config=config, disclosure=final.disclosure, draws=draws),
        build_team_report(site, team=team, out=root / "team", config=config, disclosure=final.team_report,
                          draws=draws),
        build_organizer_report(site, out=root / "organizer", config=config, disclosure=final.organizer_report,
                               draws=draws),
    )
