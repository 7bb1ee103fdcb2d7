"""A phase as every page shows it: its submissions ranked once, with the columns the pages display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from challenge import labels, rules
from challenge.ranking import JOB, RankedColumn, RankingConfig
from leaderboard.errors import LeaderboardError
from leaderboard.ranking import Ranking, job_measure_values, rank, score_table, select_per_team
from leaderboard.stability import Stability, bootstrap
from submissions.records import SubmissionResults

GROUPS = tuple(group.value for group in labels.SCORED_GROUPS)
DISPLAY_METRICS = ("dice", "assd", "hd95", "nsd", "detection_rate", "identification_rate")
"""Whole-group metrics shown beside the ranked columns, in this order, where the results hold them."""
BOX_METRICS = ("dice", "assd", "hd95", "nsd")
"""Metrics whose spread over cases is drawn as box plots."""
SUBMISSIONS_FOLDER = "submissions"


def page_name(submission_id: int) -> str:
    """The file name of a submission's page: its registry id as text ('12.html')."""
    return f"{submission_id}.html"


def not_selected_reason(config: RankingConfig) -> str:
    """Why a completed submission of a ranked team is not in the ranking: 'not the team's best'."""
    return f"not the team's {config.per_team}"


def per_case_values(submission: SubmissionResults, metric: str, structure: str, cases: Sequence[str]) -> np.ndarray:
    """The submission's whole-group values of `metric` of `structure` in `cases` order (NaN where none);
    a job measure's values from its jobs."""
    if structure == JOB:
        found: dict[str, float] = job_measure_values(submission, metric)
    else:
        found = {row.case: row.value for row in submission.rows
                 if row.is_group and row.metric == metric and row.structure == structure and row.has_value}
    return np.array([float(found[case]) if case in found else np.nan for case in cases])


def display_columns(submissions: Sequence[SubmissionResults], config: RankingConfig) -> tuple[RankedColumn, ...]:
    """The ranked columns, then each displayed metric of each group that the results hold."""
    present = {(row.metric, row.structure) for s in submissions for row in s.rows if row.is_group}
    columns = list(config.columns)
    for metric in DISPLAY_METRICS:
        for group in GROUPS:
            if (metric, group) in present and all((c.metric, c.structure) != (metric, group) for c in columns):
                columns.append(RankedColumn(metric, group, rules.METRICS[metric].direction.value))
    return tuple(columns)


def headline_metric(display: Sequence[RankedColumn]) -> str:
    """The metric that picks worst cases and breaks results down: Dice where shown, else the first column's."""
    return "dice" if any(c.metric == "dice" for c in display) else display[0].metric


def box_metrics(display: Sequence[RankedColumn]) -> list[str]:
    return [metric for metric in BOX_METRICS if any(c.metric == metric for c in display)]


@dataclass(frozen=True)
class RankedPhase:
    """The phase's submissions and their ranking: one submission per team, best first.

    `ranked` holds the selected submissions in ranking order (empty when none is completed);
    `stability` is None without cases to resample; `warnings` are shown on every page.
    """

    config: RankingConfig
    cases: tuple[str, ...]
    submissions: tuple[SubmissionResults, ...]
    ranking: Ranking | None
    ranked: tuple[SubmissionResults, ...]
    stability: Stability | None
    display: tuple[RankedColumn, ...]
    warnings: tuple[str, ...]

    @property
    def completed(self) -> tuple[SubmissionResults, ...]:
        """The submissions with a full set of results: each has a page, the ranking picks among them."""
        return tuple(s for s in self.submissions if s.status.ranked)

    def rank_of(self, submission_id: int) -> int | None:
        """The submission's rank, None when it is not ranked."""
        if self.ranking is None or submission_id not in self.ranking.submission_ids:
            return None
        return self.ranking.rank_of(submission_id)

    def page_of(self, submission: SubmissionResults) -> str | None:
        """The path of the submission's page from the site's root; only completed submissions have one."""
        return f"{SUBMISSIONS_FOLDER}/{page_name(submission.id)}" if submission.status.ranked else None

    @property
    def stability_note(self) -> str:
        stability = self.stability
        if stability is None:
            return "No bootstrap: no cases."
        median, low, high = stability.tau_summary()
        if not np.isfinite(median):
            return (f"Bootstrap over cases ({stability.draws} draws, seed {stability.seed}): Kendall's tau is "
                    "undefined because the ranking or every resampled ranking is one tie.")
        return (f"Bootstrap over cases ({stability.draws} draws, seed {stability.seed}): Kendall's tau between the "
                f"ranking on all cases and each resampled ranking has median {median:.3f} (range {low:.3f} to "
                f"{high:.3f}); 1 means the order never changes.")


def _rules_warnings(completed: Sequence[SubmissionResults]) -> tuple[str, ...]:
    versions = sorted({s.rules_version or "none" for s in completed})
    if all(version == rules.RULES_VERSION for version in versions):
        return ()
    return (f"Submissions were scored under rules version(s) {', '.join(versions)} but the current rules are "
            f"version {rules.RULES_VERSION}: rescore them before trusting this ranking.",)


def rank_phase(submissions: Sequence[SubmissionResults], config: RankingConfig, *, cases: Sequence[str] | None,
               draws: int | None) -> RankedPhase:
    """Rank the completed submissions (one per team) and resample the cases `draws` times.

    `cases` is the phase's test set (None: every case any submission ran).
    """
    ids = [s.id for s in submissions]
    if len(set(ids)) != len(ids):
        raise LeaderboardError(f"submission ids must be unique, found {sorted(ids)}")
    if cases is None:
        cases = sorted(set().union(*(s.cases for s in submissions))) if submissions else []
    cases = tuple(cases)
    completed = [s for s in submissions if s.status.ranked]
    selected = select_per_team(completed, config, cases=cases) if completed else []
    ranking: Ranking | None = None
    stability: Stability | None = None
    ranked: tuple[SubmissionResults, ...] = ()
    if selected:
        table = score_table(selected, config.columns, cases=cases)
        ranking = rank(table, config)
        stability = bootstrap(table, config, draws=draws) if cases else None
        by_id = {s.id: s for s in selected}
        ranked = tuple(by_id[i] for i in ranking.ordered())
    return RankedPhase(config, cases, tuple(submissions), ranking, ranked, stability,
                       display_columns(completed, config), _rules_warnings(completed))
