"""index.html: the leaderboard table of the ranked submissions and a table of every other submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from challenge.phases import Disclosure
from leaderboard.ranked_phase import RankedPhase, not_selected_reason
from leaderboard.ranking import Ranking, aggregate_over_cases, score_table
from leaderboard.tables import Cell, Column, Table, metric_cell, number
from leaderboard.titles import column_data_key, column_title
from leaderboard.writer import PageWriter, date_text
from submissions.records import SubmissionResults

_LEADERBOARD_CAPTION = ("Click a column title to sort. The small #n beside a ranked column's value is the rank in "
                        "that column.")


def write_index(writer: PageWriter, phase: RankedPhase, disclosure: Disclosure) -> Path:
    published = disclosure.ranking and disclosure.aggregates
    leaderboard = _leaderboard_table(phase, phase.ranking) if phase.ranking and published else None
    others = _others_table(phase)
    return writer.page("index.html", "index.html", tables=[t for t in (leaderboard, others) if t],
                       leaderboard=leaderboard, others=others, warnings=list(phase.warnings),
                       stability_note=phase.stability_note if disclosure.stability else "",
                       withheld=bool(phase.ranking) and not published)


def _leaderboard_columns(phase: RankedPhase, ranking: Ranking) -> list[Column]:
    ranked_keys = {c.key for c in phase.config.columns}
    score_title = ranking.score_name[:1].upper() + ranking.score_name[1:]
    columns = [
        Column("rank", "Rank", numeric=True),
        Column("team", "Team"),
        Column("algorithm", "Algorithm"),
        Column("score", score_title, numeric=True,
               note="higher is better" if ranking.higher_score_is_better else "lower is better"),
    ]
    columns += [Column(column_data_key(column), column_title(column), numeric=True,
                       note=f"{column.direction} is better", highlight=column.key in ranked_keys)
                for column in phase.display]
    columns += [
        Column("cases_scored", "Cases scored", numeric=True),
        Column("failed_jobs", "Failed jobs", numeric=True),
        Column("submitted", "Submitted"),
        *EFFICIENCY_COLUMNS,
    ]
    return columns


def _leaderboard_table(phase: RankedPhase, ranking: Ranking) -> Table:
    config = phase.config
    values = aggregate_over_cases(score_table(phase.ranked, phase.display, cases=phase.cases).values, phase.display,
                                  config.case_aggregate)
    ranked_keys = [c.key for c in config.columns]
    decimals = 0 if config.method == "test-based" else 3
    rows = []
    for s, submission in enumerate(phase.ranked):
        p = ranking.submission_ids.index(submission.id)
        row = [
            Cell(str(ranking.ranks[p]), ranking.ranks[p]),
            Cell(submission.team, submission.team, href=phase.page_of(submission)),
            Cell(submission.algorithm_name, submission.algorithm_name),
            number(ranking.score[p], decimals=decimals),
        ]
        for c, column in enumerate(phase.display):
            cell = metric_cell(column.metric, float(values[c, s]))
            if column.key in ranked_keys:
                column_rank = int(ranking.column_ranks[ranked_keys.index(column.key), p])
                cell = Cell(cell.text, cell.value, extra=f"#{column_rank}")
            row.append(cell)
        rows.append(tuple(row + progress_cells(submission, phase.cases) + efficiency_cells(submission)))
    return Table("leaderboard", "", tuple(_leaderboard_columns(phase, ranking)), tuple(rows),
                 caption=_LEADERBOARD_CAPTION)


EFFICIENCY_COLUMNS = (
    Column("median_seconds", "Median s per case", numeric=True, note="as the runner measured each job"),
    Column("max_seconds", "Max s per case", numeric=True),
    Column("max_peak_memory_mb", "Max peak memory (MB)", numeric=True, note="the job's cgroup peak"),
)
"""What a submission's jobs cost, over its jobs: aggregates, shown wherever aggregates are."""


def efficiency_cells(submission: SubmissionResults) -> list[Cell]:
    """Median and maximum seconds per job and the largest peak memory, over the jobs that recorded them."""
    seconds = [job.seconds for job in submission.jobs if job.seconds is not None]
    memory = [job.peak_memory_bytes for job in submission.jobs if job.peak_memory_bytes is not None]
    return [
        number(float(np.median(seconds)) if seconds else None, decimals=1),
        number(max(seconds) if seconds else None, decimals=1),
        number(max(memory) / 1e6 if memory else None, decimals=0),
    ]


def progress_cells(submission: SubmissionResults, cases: tuple[str, ...]) -> list[Cell]:
    """Cases with a whole-group value, failed jobs and the submission time."""
    scored = len({r.case for r in submission.rows if r.is_group and r.has_value} & set(cases))
    failed = sum(1 for job in submission.jobs if job.failed)
    return [
        Cell(f"{scored}/{len(cases)}", scored),
        Cell(str(failed), failed),
        Cell(date_text(submission.created_at), submission.created_at.isoformat()),
    ]


def _others_table(phase: RankedPhase) -> Table | None:
    others = [s for s in phase.submissions if phase.rank_of(s.id) is None]
    if not others:
        return None
    rows = []
    for s in sorted(others, key=lambda s: (s.team, s.created_at)):
        status = s.status.value
        reason = not_selected_reason(phase.config) if s.status.ranked else f"not ranked: {status}"
        rows.append((
            Cell(s.team, s.team, href=phase.page_of(s)), Cell(s.algorithm_name, s.algorithm_name),
            Cell(status, status), Cell(reason, reason), Cell(date_text(s.created_at), s.created_at.isoformat()),
        ))
    columns = (Column("team", "Team"), Column("algorithm", "Algorithm"), Column("status", "Status"),
               Column("ranked", "Why not ranked"), Column("submitted", "Submitted"))
    return Table("others", "", columns, tuple(rows))
