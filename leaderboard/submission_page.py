"""submissions/<id>.html: one submission's jobs, results per case and per level, and its worst cases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from challenge import labels, rules
from challenge.phases import Disclosure
from challenge.results import ScoreRow
from leaderboard import plots
from leaderboard.breakdowns import case_info_from_name
from leaderboard.cases import CaseFiles, WorstCase, case_picture, worst_cases
from leaderboard.job_logs import write_job_log
from leaderboard.ranked_phase import (
    GROUPS,
    RankedPhase,
    box_metrics,
    headline_metric,
    not_selected_reason,
    per_case_values,
)
from leaderboard.tables import MISSING_TEXT, Cell, Column, Table, metric_cell, number
from leaderboard.titles import SEQUENCE_TITLES, column_data_key, column_title, group_title, metric_title
from leaderboard.writer import Image, PageWriter, date_text, link
from submissions.records import JobRecord, SubmissionResults

WORST_CASE_COUNT = 3
LEVEL_METRICS = ("dice", "assd", "hd95", "nsd", "detected", "identified")
"""Per-level metrics in the order of the levels table; other metrics found follow, sorted."""
NO_JOB = "no job"
_LABEL_ORDER = {s.name: v for v, s in labels.LABEL_MAP.items()}

LevelKey = tuple[str, str, str]
"""(case, structure, level) of a level's rows."""


@dataclass(frozen=True)
class WorstCaseView:
    """A worst case as the page shows it: what its value was, and a picture where the test set has one."""

    case: str
    text: str
    image: Image | None


@dataclass(frozen=True)
class _Place:
    """Where a submission's page and its images are written."""

    root: Path
    relative: str

    @property
    def page_dir(self) -> Path:
        return (self.root / self.relative).parent

    @property
    def image_dir(self) -> Path:
        return self.root / "img" / Path(self.relative).stem


def write_submission_page(writer: PageWriter, phase: RankedPhase, submission: SubmissionResults,
                          files: CaseFiles, disclosure: Disclosure, *, host_folders: Sequence[str] = ()) -> None:
    """What of a single case the page shows follows `disclosure`: without case names, jobs are counted per
    status and levels averaged over cases; no worst cases, no per-case values, no container text. Where
    it allows job logs, each job's log gets a page (leaderboard.job_logs), with `host_folders` hidden."""
    relative = phase.page_of(submission)
    if relative is None:
        raise ValueError(f"submission {submission.id} is {submission.status.value}: only completed ones have a page")
    place = _Place(writer.root, relative)
    per_case = {c.key: per_case_values(submission, c.metric, c.structure, phase.cases) for c in phase.display}
    if disclosure.case_names:
        logs = {job.case: link(writer.root / page, place.page_dir)
                for job in submission.jobs if disclosure.job_logs
                and (page := write_job_log(writer, submission, job, host_folders=host_folders)) is not None}
        jobs = _jobs_table(submission, disclosure, logs)
    else:
        jobs = _job_counts(submission)
    cases = _cases_table(submission, phase, per_case) if disclosure.case_values else None
    if disclosure.case_values:
        levels: Table | None = _levels_table(submission)
    elif disclosure.level_aggregates:
        levels = _level_means_table(submission, phase.cases, min_cases=disclosure.min_breakdown_cases)
    else:
        levels = None
    metric = headline_metric(phase.display)
    worst = _worst_cases(phase, submission, files, place, disclosure) if disclosure.case_names else []
    writer.page(relative, "submission.html", tables=[t for t in (jobs, cases, levels) if t], submission=submission,
                submitted=date_text(submission.created_at), rank_text=rank_text(phase, submission, disclosure),
                job_summary=_job_summary(submission), jobs=jobs, cases=cases, levels=levels,
                per_level_means=levels is not None and not disclosure.case_values,
                box_plots=_box_plots(phase, per_case, place) if disclosure.case_values else [],
                show_worst=disclosure.case_names, worst=worst,
                worst_metric=metric_title(metric), warnings=_warnings(phase, submission))


def rank_text(phase: RankedPhase, submission: SubmissionResults, disclosure: Disclosure) -> str:
    """The submission's rank as its page and a team's report show it: '3 of 12', or why it has none."""
    if not disclosure.ranking:
        return "not published"
    rank = phase.rank_of(submission.id)
    if rank is None and not submission.status.ranked:
        return f"not ranked: {submission.status.value}"
    if rank is None:
        return f"not ranked ({not_selected_reason(phase.config)})"
    return f"{rank} of {len(phase.ranked)}"


def _warnings(phase: RankedPhase, submission: SubmissionResults) -> list[str]:
    warnings = list(phase.warnings)
    if submission.rules_version != rules.RULES_VERSION:
        warnings.append(f"Scored under rules version {submission.rules_version or 'none'}; "
                        f"the current rules are {rules.RULES_VERSION}.")
    return warnings


def _job_summary(submission: SubmissionResults) -> str:
    if not submission.jobs:
        return "no jobs recorded"
    return f"{len(submission.jobs)} jobs, {sum(1 for job in submission.jobs if job.failed)} failed"


def _jobs_table(submission: SubmissionResults, disclosure: Disclosure, logs: dict[str, str]) -> Table:
    """A row per job. Never its log's path (a host path); of its failure reason what `disclosure` allows;
    a link to its log's page where `logs` (case -> link from this page) has one."""
    reasons = disclosure.failure_reasons or disclosure.job_logs
    rows = []
    for job in sorted(submission.jobs, key=lambda j: j.case):
        status = job.status.value
        row = [Cell(job.case, job.case), Cell(status, status)]
        if reasons:
            reason = disclosure.reason_shown(job.reason) if job.failed else None
            row.append(Cell(reason or "", reason))
        memory = None if job.peak_memory_bytes is None else job.peak_memory_bytes / 1e6
        row += [number(job.seconds, decimals=1), number(memory, decimals=0)]
        if logs:
            href = logs.get(job.case)
            row.append(Cell("log" if href else "", href, href=href))
        rows.append(tuple(row))
    columns = (Column("case", "Case"), Column("status", "Status"),
               *((Column("reason", "Reason"),) if reasons else ()), Column("seconds", "Seconds", numeric=True),
               Column("peak_memory_mb", "Peak memory (MB)", numeric=True), *((Column("log", "Log"),) if logs else ()))
    return Table("jobs", "", columns, tuple(rows),
                 caption="Every algorithm job of this submission; a failed job's cases take the rules' missing values.")


def _job_counts(submission: SubmissionResults) -> Table:
    """How many jobs ended in each status (no case, no reason)."""
    counts: dict[str, int] = {}
    for job in submission.jobs:
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    rows = tuple((Cell(status, status), Cell(str(n), n)) for status, n in sorted(counts.items()))
    return Table("jobs", "", (Column("status", "Status"), Column("jobs", "Jobs", numeric=True)), rows,
                 caption="Jobs of this submission by how they ended; a failed job's cases take the rules' missing "
                         "values.")


def _cases_table(submission: SubmissionResults, phase: RankedPhase, per_case: dict[str, np.ndarray]) -> Table:
    columns = [Column("case", "Case"), Column("sequence", "Sequence"), Column("job", "Job")]
    columns += [Column(column_data_key(c), column_title(c), numeric=True) for c in phase.display]
    jobs_by_case = {job.case: job for job in submission.jobs}
    rows = []
    for k, case in enumerate(phase.cases):
        sequence = case_info_from_name(case).sequence
        status = jobs_by_case[case].status.value if case in jobs_by_case else NO_JOB
        row = [Cell(case, case), Cell(SEQUENCE_TITLES.get(sequence or "", sequence or MISSING_TEXT), sequence),
               Cell(status, status)]
        row += [metric_cell(c.metric, float(per_case[c.key][k])) for c in phase.display]
        rows.append(tuple(row))
    return Table("cases", "", tuple(columns), tuple(rows))


def _level_order(key: LevelKey) -> tuple:
    case, structure, level = key
    group = GROUPS.index(structure) if structure in GROUPS else len(GROUPS)
    return (case, group, _LABEL_ORDER.get(level, 10**6), level)


def _rows_by_level(submission: SubmissionResults) -> dict[LevelKey, list[ScoreRow]]:
    """Each level's rows (not the whole groups'), levels in case, group and label order."""
    found: dict[LevelKey, list[ScoreRow]] = {}
    for row in submission.rows:
        if not row.is_group:
            found.setdefault((row.case, row.structure, row.level), []).append(row)
    return dict(sorted(found.items(), key=lambda item: _level_order(item[0])))


def _levels_table(submission: SubmissionResults) -> Table:
    by_level = _rows_by_level(submission)
    found = {row.metric for rows in by_level.values() for row in rows}
    metrics = [m for m in LEVEL_METRICS if m in found]
    metrics += sorted(found - set(metrics))
    table_rows = []
    for (case, structure, level), rows in by_level.items():
        values = {row.metric: row.value for row in rows}
        status = ", ".join(sorted({row.status.value for row in rows}))
        row = [Cell(case, case), Cell(group_title(structure), structure), Cell(level, level), Cell(status, status)]
        row += [metric_cell(m, values.get(m)) for m in metrics]
        table_rows.append(tuple(row))
    columns = [Column("case", "Case"), Column("structure", "Structure"), Column("level", "Level"),
               Column("status", "Status")]
    columns += [Column(m, metric_title(m), numeric=True) for m in metrics]
    return Table("levels", "", tuple(columns), tuple(table_rows))


def _level_means_table(submission: SubmissionResults, cases: Sequence[str], *, min_cases: int) -> Table:
    """Each level's mean over the cases that have a value of it, and how many cases those are; a level
    found in fewer than `min_cases` cases is left out (a mean over one case is that case's value)."""
    wanted = set(cases)
    found: dict[tuple[str, str], dict[str, list[float]]] = {}
    counted: dict[tuple[str, str], set[str]] = {}
    for (case, structure, level), rows in _rows_by_level(submission).items():
        if case not in wanted:
            continue
        for score in rows:
            if score.has_value:
                found.setdefault((structure, level), {}).setdefault(score.metric, []).append(float(score.value))
                counted.setdefault((structure, level), set()).add(case)
    present = {metric for values in found.values() for metric in values}
    metrics = [m for m in LEVEL_METRICS if m in present] + sorted(present - set(LEVEL_METRICS))
    table_rows = []
    for (structure, level), values in found.items():
        if len(counted[(structure, level)]) < min_cases:
            continue
        row = [Cell(group_title(structure), structure), Cell(level, level),
               Cell(str(len(counted[(structure, level)])), len(counted[(structure, level)]))]
        row += [metric_cell(m, float(np.mean(values[m])) if m in values else None) for m in metrics]
        table_rows.append(tuple(row))
    columns = [Column("structure", "Structure"), Column("level", "Level"), Column("cases", "Cases", numeric=True)]
    columns += [Column(m, metric_title(m), numeric=True) for m in metrics]
    return Table("levels", "", tuple(columns), tuple(table_rows),
                 caption=f"Mean of each level's values over the cases that have one; levels found in fewer than "
                         f"{min_cases} cases are not shown.")


def _box_plots(phase: RankedPhase, per_case: dict[str, np.ndarray], place: _Place) -> list[Image]:
    metrics = box_metrics(phase.display)
    if not metrics or not phase.cases:
        return []
    panels = {metric_title(m): {group_title(c.structure): per_case[c.key] for c in phase.display if c.metric == m}
              for m in metrics}
    path = plots.box_plots(panels, place.image_dir / "box.svg", ylabel="value", sharey=False)
    return [Image(link(path, place.page_dir), "Box plots per structure of this submission's per-case values",
                  "Per-case values, one panel per metric, one box per structure group.")]


def _worst_cases(phase: RankedPhase, submission: SubmissionResults, files: CaseFiles, place: _Place,
                 disclosure: Disclosure) -> list[WorstCaseView]:
    metric = headline_metric(phase.display)
    spec = rules.METRICS.get(metric)
    found = worst_cases(submission, phase.cases, metric=metric, count=WORST_CASE_COUNT,
                        higher_is_better=spec.higher_is_better if spec is not None else True)
    jobs_by_case = {job.case: job for job in submission.jobs}
    return [_worst_case_view(submission, item, jobs_by_case.get(item.case), files, place, disclosure) for item in found]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".") or "case"


def _worst_case_view(submission: SubmissionResults, item: WorstCase, job: JobRecord | None, files: CaseFiles,
                     place: _Place, disclosure: Disclosure) -> WorstCaseView:
    if disclosure.case_values:
        value = MISSING_TEXT if item.value is None else f"{item.value:.3f}"
        text = f"mean {metric_title(item.metric)} {value}"
    else:
        text = f"among the lowest mean {metric_title(item.metric)}"
    if job is not None and job.failed:
        text += f"; job {job.status.value}"
        if disclosure.failure_reasons or disclosure.job_logs:
            text += f": {disclosure.reason_shown(job.reason) or 'no reason recorded'}"
    if files.test_set is None or not disclosure.case_pictures:
        return WorstCaseView(item.case, text, None)
    reference = files.reference(item.case)
    if reference is None:
        return WorstCaseView(item.case, text + "; the test set holds no image or mask of this case", None)
    prediction = files.prediction(submission.id, item.case, job)
    path = case_picture(reference.image, reference.mask, prediction,
                        place.image_dir / f"case-{_safe(item.case)}.png", title=item.case)
    image = Image(link(path, place.page_dir), f"Sagittal slice of {item.case} with reference and prediction outlines",
                  f"{item.case}: {text}." + ("" if prediction else " No prediction was stored."))
    return WorstCaseView(item.case, text, image)
