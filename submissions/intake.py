"""Phases and submissions on the way in: the hidden test set is checked, the rules are enforced.

Rules a submission must pass (each refusal raises an IntakeError subclass that says which):
- the phase is registered (`spider phase set`);
- team and algorithm names are 1-200 characters without control characters; they are stored
  exactly as given and never used in a path, a shell command or unescaped HTML; a team is
  identified by its name's `submissions.names.team_key` ("TeamA" and "teama " are one team);
- the team has not submitted the same image digest to this phase before;
- the team has fewer than the phase's `max_submissions` submissions in the current period:
  the last 24 hours ("day"), the last 7 days ("week") or the whole phase ("phase").
The limit check and the insert run in one transaction that holds the phase's lock, so two
submissions made at the same moment cannot both take the last place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from challenge.phases import DEFAULT_PHASE, SUBMISSION_PERIODS, Phase, get_phase
from challenge.release import read_release
from submissions.db import Registry
from submissions.errors import (
    DuplicateSubmissionError,
    IntakeError,
    SubmissionLimitError,
    UnknownRecordError,
)
from submissions.images import ImageLimits, ImagePinner, docker_pinner
from submissions.models import Case, Job, PhaseRecord, Submission, Team, utcnow
from submissions.names import check_name, team_key

PERIOD_WINDOWS = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7), "phase": None}


@dataclass(frozen=True)
class PhaseSummary:
    name: str
    data_dir: Path
    cases: tuple[str, ...]
    phase: Phase
    created: bool


@dataclass(frozen=True)
class SubmissionReceipt:
    id: int
    phase: str
    team: str
    algorithm_name: str
    image_digest: str
    jobs: int


def phase_of(record: PhaseRecord) -> Phase:
    """The challenge.phases.Phase that jobs of this registered phase run under."""
    return Phase(
        name=record.name,
        description=record.description,
        time_limit_seconds=record.time_limit_seconds,
        memory_bytes=record.memory_bytes,
        cpus=record.cpus,
        gpus=record.gpus,
        pids_limit=record.pids_limit,
        tmp_bytes=record.tmp_bytes,
        output_limit_bytes=record.output_limit_bytes,
        max_submissions=record.max_submissions,
        submission_period=record.submission_period,
        scoring_time_limit_seconds=record.scoring_time_limit_seconds,
        image_limit_bytes=record.image_limit_bytes,
        max_image_layers=record.max_image_layers,
    )


def image_limits(phase: Phase) -> ImageLimits:
    """What a submitted image may be under `phase`: its tarball and unpacked files within `image_limit`,
    at most `max_image_layers` layers."""
    return ImageLimits(tarball_bytes=phase.image_limit_bytes, unpacked_bytes=phase.image_limit_bytes,
                       layers=phase.max_image_layers)


def hidden_test_cases(data_dir: Path) -> tuple[str, ...]:
    """The case names of a hidden test set, after checking its SPIDER layout and every mask."""
    release = read_release(data_dir, check_masks=True, require_masks=True).raise_for_problems()
    return tuple(series.name for series in release.series)


def set_phase(
    registry: Registry,
    name: str,
    *,
    data_dir: Path | str,
    time_limit_seconds: int | None = None,
    memory: str | int | None = None,
    cpus: float | None = None,
    max_submissions: int | None = None,
    per: str | None = None,
    scoring_time_limit_seconds: int | None = None,
    phases_file: Path | str | None = None,
) -> PhaseSummary:
    """Register phase `name` (declared in challenge/phases.toml) or update its data and limits.

    A new phase starts from its declaration in the phases file; an update keeps the registered
    limits that are not given. The case list may change only while the phase has no submission.
    """
    declared = get_phase(name, phases_file)
    if per is not None and per not in SUBMISSION_PERIODS:
        raise IntakeError(f"--per must be one of {list(SUBMISSION_PERIODS)}, found {per!r}")
    if max_submissions is not None and (isinstance(max_submissions, bool) or max_submissions <= 0):
        raise IntakeError(f"--max-submissions must be a positive integer, found {max_submissions!r}")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not 0 < cpus <= 1024):
        raise IntakeError(f"--cpus must be a number larger than 0, found {cpus!r}")
    if scoring_time_limit_seconds is not None and (
            isinstance(scoring_time_limit_seconds, bool) or not isinstance(scoring_time_limit_seconds, int)
            or scoring_time_limit_seconds <= 0):
        raise IntakeError(f"--scoring-time-limit must be a positive integer, found {scoring_time_limit_seconds!r}")
    data_path = Path(data_dir).expanduser().resolve()
    cases = hidden_test_cases(data_path)
    with registry.session() as session, session.begin():
        record = session.scalar(select(PhaseRecord).where(PhaseRecord.name == name).with_for_update())
        base = declared if record is None else phase_of(record)
        phase = base.with_overrides(time_limit_seconds=time_limit_seconds, memory=memory)
        changes: dict[str, Any] = {}
        if cpus is not None:
            changes["cpus"] = float(cpus)
        if max_submissions is not None:
            changes["max_submissions"] = max_submissions
        if per is not None:
            changes["submission_period"] = per
        if scoring_time_limit_seconds is not None:
            changes["scoring_time_limit_seconds"] = scoring_time_limit_seconds
        phase = dataclasses.replace(phase, **changes)
        created = record is None
        if record is None:
            record = PhaseRecord(name=name)
            session.add(record)
        else:
            registered = [case.name for case in record.cases]
            if sorted(registered) != sorted(cases) and _submission_count(session, record.id):
                raise IntakeError(
                    f"phase {name!r} has submissions scored on {len(registered)} cases; {data_path} holds "
                    f"{len(cases)} other cases. Register the new test set as another phase."
                )
        _copy_limits(record, phase)
        record.data_dir = str(data_path)
        record.updated_at = utcnow()
        existing = {case.name: case for case in record.cases}
        record.cases = [existing.get(case) or Case(name=case) for case in cases]
    return PhaseSummary(name=name, data_dir=data_path, cases=cases, phase=phase, created=created)


def _copy_limits(record: PhaseRecord, phase: Phase) -> None:
    record.description = phase.description
    record.time_limit_seconds = phase.time_limit_seconds
    record.memory_bytes = phase.memory_bytes
    record.cpus = phase.cpus
    record.gpus = phase.gpus
    record.pids_limit = phase.pids_limit
    record.tmp_bytes = phase.tmp_bytes
    record.output_limit_bytes = phase.output_limit_bytes
    record.max_submissions = phase.max_submissions
    record.submission_period = phase.submission_period
    record.scoring_time_limit_seconds = phase.scoring_time_limit_seconds
    record.image_limit_bytes = phase.image_limit_bytes
    record.max_image_layers = phase.max_image_layers


def _submission_count(session: Session, phase_id: int, *, team_id: int | None = None, since=None) -> int:
    query = select(func.count(Submission.id)).where(Submission.phase_id == phase_id)
    if team_id is not None:
        query = query.where(Submission.team_id == team_id)
    if since is not None:
        query = query.where(Submission.created_at > since)
    return int(session.scalar(query) or 0)


def submit(
    registry: Registry,
    *,
    team: str,
    name: str,
    image: str,
    phase: str | None = None,
    pinner: ImagePinner = docker_pinner,
    now: dt.datetime | None = None,
) -> SubmissionReceipt:
    """Register a submission of `image` (a tarball or local tag) by `team` and create its jobs."""
    team = check_name(team, what="team name")
    name = check_name(name, what="algorithm name")
    phase_name = phase or DEFAULT_PHASE
    with registry.session() as session:
        record = session.scalar(select(PhaseRecord).where(PhaseRecord.name == phase_name))
        if record is None:
            raise UnknownRecordError(
                f"phase {phase_name!r} is not registered; register it with "
                f"`spider phase set {phase_name} --data DIR`"
            )
        limits = image_limits(phase_of(record))
    pinned = pinner(image, registry.work_dir, limits)
    now = now or utcnow()
    for attempt in range(3):  # a team row created at the same moment by another phase's intake
        try:
            return _insert_submission(registry, team, name, phase_name, pinned, image, now)
        except IntegrityError as error:
            if attempt == 2 or "uq_teams_key" not in str(error.orig) and "teams.key" not in str(error.orig):
                raise IntakeError(f"the submission could not be stored: {error.orig}") from error
    raise AssertionError("unreachable")


def _insert_submission(registry, team, name, phase_name, pinned, source, now) -> SubmissionReceipt:
    with registry.session() as session, session.begin():
        record = session.scalar(select(PhaseRecord).where(PhaseRecord.name == phase_name).with_for_update())
        if record is None:
            raise UnknownRecordError(f"phase {phase_name!r} is not registered")
        team_row = session.scalar(select(Team).where(Team.key == team_key(team)))
        if team_row is None:
            team_row = Team(name=team, created_at=now)
            session.add(team_row)
            session.flush()
        duplicate = session.scalar(
            select(Submission.id).where(
                Submission.phase_id == record.id,
                Submission.team_id == team_row.id,
                Submission.image_digest == pinned.digest,
            )
        )
        if duplicate is not None:
            raise DuplicateSubmissionError(
                f"this team already submitted image {pinned.digest} to phase {phase_name!r} "
                f"(submission {duplicate}); change the algorithm before submitting again"
            )
        if record.max_submissions is not None:
            window = PERIOD_WINDOWS[record.submission_period]
            since = None if window is None else now - window
            used = _submission_count(session, record.id, team_id=team_row.id, since=since)
            if used >= record.max_submissions:
                period = {"day": "in the last 24 hours", "week": "in the last 7 days", "phase": "in this phase"}
                raise SubmissionLimitError(
                    f"phase {phase_name!r} allows {record.max_submissions} submission(s) per team "
                    f"{period[record.submission_period]}; this team has made {used}"
                )
        cases = [case.name for case in record.cases]
        if not cases:
            raise IntakeError(f"phase {phase_name!r} has no cases; register its data again with `spider phase set`")
        submission = Submission(
            phase_id=record.id,
            team_id=team_row.id,
            algorithm_name=name,
            image_digest=pinned.digest,
            image_archive=str(pinned.archive_path),
            source=str(source),
            created_at=now,
        )
        session.add(submission)
        session.flush()
        session.add_all(Job(submission_id=submission.id, case=case, attempts=0) for case in cases)
        receipt = SubmissionReceipt(submission.id, phase_name, team, name, pinned.digest, len(cases))
    return receipt
