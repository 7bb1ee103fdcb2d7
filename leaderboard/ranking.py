"""Ranking the submissions of a phase by the method its ranking config declares.

Every method works on a `ScoreTable` (per-case values of the ranked columns) and is written for
a leading batch axis of resamplings, so that the bootstrap in `leaderboard.stability` reuses
exactly the code that ranks the full table. Ties share the lowest rank of the tie (1, 1, 3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from challenge.ranking import JOB, JOB_MEASURES, RankedColumn, RankingConfig
from leaderboard.errors import LeaderboardError
from submissions.records import SubmissionResults

# Keys closer than this are the same value: aggregates of identical numbers summed in another
# order must tie rather than be split by rounding noise.
_KEY_DECIMALS = 10


@dataclass(frozen=True)
class ScoreTable:
    """Per-case values of the ranked columns: `values[column, submission, case]`, NaN = missing."""

    submission_ids: tuple[int, ...]
    cases: tuple[str, ...]
    columns: tuple[RankedColumn, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        expected = (len(self.columns), len(self.submission_ids), len(self.cases))
        if self.values.shape != expected:
            raise LeaderboardError(f"score table values must have shape {expected}, found {self.values.shape}")

    def subset(self, submission_ids: Sequence[int]) -> "ScoreTable":
        index = [self.submission_ids.index(s) for s in submission_ids]
        return ScoreTable(tuple(submission_ids), self.cases, self.columns, self.values[:, index, :])


@dataclass(frozen=True)
class Ranking:
    """The ranks of a table's submissions (in `submission_ids` order) and what they rest on.

    `score` is the quantity ranked on: the column's aggregate ("score"), the mean or median rank
    over columns, the mean rank over cases and columns, or the number of significant wins.
    `column_values[c, s]` is column c's aggregate over cases for submission s and
    `column_ranks[c, s]` its rank in that column (NaN aggregates take the worst rank).
    """

    submission_ids: tuple[int, ...]
    ranks: tuple[int, ...]
    score: tuple[float, ...]
    score_name: str
    higher_score_is_better: bool
    column_values: np.ndarray
    column_ranks: np.ndarray

    def rank_of(self, submission_id: int) -> int:
        return self.ranks[self.submission_ids.index(submission_id)]

    def ordered(self) -> tuple[int, ...]:
        """Submission ids from best to worst; ties keep their table order."""
        order = sorted(range(len(self.ranks)), key=lambda i: (self.ranks[i], i))
        return tuple(self.submission_ids[i] for i in order)


def job_measure_values(submission: SubmissionResults, metric: str) -> dict[str, float]:
    """The job measure `metric` (challenge.ranking.JOB_MEASURES) by case, for the cases whose job
    succeeded and recorded it: a failed job's case has no value, as it has no scores."""
    measure = JOB_MEASURES[metric]
    found = {}
    for job in submission.jobs:
        value = getattr(job, measure.job_field)
        if not job.failed and value is not None:
            found[job.case] = float(value) * measure.scale
    return found


def score_table(
    submissions: Sequence[SubmissionResults], columns: Sequence[RankedColumn], *, cases: Sequence[str] | None = None
) -> ScoreTable:
    """The per-case values of `columns` for each submission, from its whole-group result rows (a job
    measure's column from its jobs: `job_measure_values`).

    `cases` defaults to every case any submission has a job or a result for: a case one
    submission lacks is missing (NaN) for it, never dropped. A row whose value is NaN is missing.
    """
    if not submissions:
        raise LeaderboardError("no submissions to rank")
    ids = tuple(s.id for s in submissions)
    if len(set(ids)) != len(ids):
        raise LeaderboardError(f"submission ids must be unique, found {sorted(ids)}")
    all_cases = tuple(cases) if cases is not None else tuple(sorted(set().union(*(s.cases for s in submissions))))
    case_index = {case: i for i, case in enumerate(all_cases)}
    column_index = {(c.metric, c.structure): i for i, c in enumerate(columns)}
    values = np.full((len(columns), len(ids), len(all_cases)), np.nan)
    for s, submission in enumerate(submissions):
        for row in submission.rows:
            if not row.is_group or not row.has_value:
                continue
            c = column_index.get((row.metric, row.structure))
            k = case_index.get(row.case)
            if c is not None and k is not None:
                values[c, s, k] = float(row.value)
        for c, column in enumerate(columns):
            if column.structure == JOB:
                for case, value in job_measure_values(submission, column.metric).items():
                    if case in case_index:
                        values[c, s, case_index[case]] = value
    found = {(row.metric, row.structure) for s in submissions for row in s.rows if row.is_group}
    absent = [f"{c.metric} {c.structure}" for c in columns
              if c.structure != JOB and (c.metric, c.structure) not in found]
    if absent and any(s.rows for s in submissions):
        known = ", ".join(sorted(f"{m} {st}" for m, st in found))
        raise LeaderboardError(
            f"ranked column(s) {absent} appear in no result row; the results hold: {known or 'nothing'}. "
            "Fix the columns in the ranking config."
        )
    return ScoreTable(ids, all_cases, tuple(columns), values)


def rank_keys(keys: np.ndarray) -> np.ndarray:
    """Ranks along the last axis where the lower key is better; NaN keys share the worst rank.

    Ties share the lowest rank of the tie: keys (2, 2, 5) give ranks (1, 1, 3).
    """
    keys = np.round(np.asarray(keys, dtype=float), _KEY_DECIMALS)
    keys = np.where(np.isnan(keys), np.inf, keys)
    if keys.shape[-1] == 0:
        return keys.astype(int)
    return stats.rankdata(keys, method="min", axis=-1).astype(int)


def oriented_values(values: np.ndarray, columns: Sequence[RankedColumn]) -> np.ndarray:
    """Values turned so that lower is better in every column; `values` has columns on axis -3."""
    signs = np.array([-1.0 if c.higher_is_better else 1.0 for c in columns])
    return values * signs[:, None, None]


def _filled(values: np.ndarray, columns: Sequence[RankedColumn]) -> np.ndarray:
    """Missing values replaced by each column's declared `missing_value` (left NaN without one)."""
    filled = values.copy()
    for c, column in enumerate(columns):
        if column.missing_value is not None:
            part = filled[..., c, :, :]
            part[np.isnan(part)] = column.missing_value
    return filled


def aggregate_over_cases(values: np.ndarray, columns: Sequence[RankedColumn], how: str) -> np.ndarray:
    """Each column's mean or median over cases (axis -1); a missing case makes it NaN unless filled."""
    filled = _filled(values, columns)
    if filled.shape[-1] == 0:
        return np.full(filled.shape[:-1], np.nan)
    return np.mean(filled, axis=-1) if how == "mean" else np.median(filled, axis=-1)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (NaN counts as 1).

    For sorted p_(1) <= ... <= p_(m): adjusted p_(k) = max over i <= k of min(1, (m - i + 1) p_(i)).
    """
    p = np.where(np.isnan(p_values), 1.0, np.asarray(p_values, dtype=float))
    m = p.shape[-1]
    if m == 0:
        return p
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    factors = m - np.arange(m)
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(sorted_p * factors, axis=-1))
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return adjusted


def missing_as_worst(oriented: np.ndarray) -> np.ndarray:
    """Missing values replaced by a value worse (larger) than any present one of their column.

    `oriented[..., column, submission, case]` with lower = better. The replacement lies one
    column range beyond the worst value, so paired tests see every missing case as a loss.
    """
    missing = np.isnan(oriented)
    with np.errstate(invalid="ignore"):
        worst = np.where(missing, -np.inf, oriented).max(axis=(-2, -1), keepdims=True)
        best = np.where(missing, np.inf, oriented).min(axis=(-2, -1), keepdims=True)
        span = np.where(np.isfinite(worst) & np.isfinite(best), worst - best, 0.0)
        replacement = np.where(np.isfinite(worst), worst + span + 1.0, 0.0)
    return np.where(missing, replacement, oriented)


def pairwise_p_values(oriented: np.ndarray) -> np.ndarray:
    """One-sided paired Wilcoxon signed-rank p-values that row i is better (lower) than column j.

    `oriented[..., submission, case]` with lower = better and no NaN; returns
    `p[..., i, j]` (diagonal NaN). Zero differences are dropped (Wilcoxon's own rule); a pair
    whose differences are all zero gets p = 1.
    """
    n = oriented.shape[-2]
    p = np.full(oriented.shape[:-2] + (n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            differences = oriented[..., j, :] - oriented[..., i, :]  # positive where i is better
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                result = stats.wilcoxon(differences, alternative="greater", zero_method="wilcox", axis=-1)
            pvalue = np.asarray(result.pvalue, dtype=float)
            all_zero = np.all(differences == 0, axis=-1)
            p[..., i, j] = np.where(all_zero | np.isnan(pvalue), 1.0, pvalue)
    return p


def significance(oriented: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted pairwise p-values over all ordered pairs and whether each is below alpha."""
    p = pairwise_p_values(oriented)
    n = p.shape[-1]
    off_diagonal = ~np.eye(n, dtype=bool)
    flat = p[..., off_diagonal]
    adjusted = np.full_like(p, np.nan)
    adjusted[..., off_diagonal] = holm(flat)
    return adjusted, np.where(off_diagonal, adjusted < alpha, False)


@dataclass(frozen=True)
class _BatchRanking:
    ranks: np.ndarray
    score: np.ndarray
    column_values: np.ndarray
    column_ranks: np.ndarray


def rank_batch(values: np.ndarray, config: RankingConfig) -> _BatchRanking:
    """Rank `values[..., column, submission, case]` along the submission axis for every batch item."""
    columns = config.columns
    column_values = aggregate_over_cases(values, columns, config.case_aggregate)
    oriented_aggregates = column_values * np.array([-1.0 if c.higher_is_better else 1.0 for c in columns])[:, None]
    column_ranks = rank_keys(oriented_aggregates)
    method = config.method
    if method == "score":
        score = column_values[..., 0, :]
        ranks = column_ranks[..., 0, :]
    elif method in ("mean-rank", "median-rank"):
        score = np.mean(column_ranks, axis=-2) if method == "mean-rank" else np.median(column_ranks, axis=-2)
        ranks = rank_keys(score)
    elif method == "rank-then-aggregate":
        oriented = oriented_values(values, columns)
        per_case = rank_keys(np.moveaxis(oriented, -2, -1))  # rank submissions within each case
        per_case = np.moveaxis(per_case, -1, -2).astype(float)
        if per_case.shape[-1]:
            score = per_case.mean(axis=(-3, -1))
        else:
            score = np.zeros(per_case.shape[:-3] + per_case.shape[-2:-1])
        ranks = rank_keys(score)
    elif method == "test-based":
        oriented = missing_as_worst(oriented_values(values, columns))
        wins = np.zeros(values.shape[:-3] + values.shape[-2:-1])
        for c in range(len(columns)):
            _, significant = significance(oriented[..., c, :, :], config.significance_level)
            wins = wins + significant.sum(axis=-1)
        score = wins
        ranks = rank_keys(-wins)
    else:
        raise LeaderboardError(f"unknown ranking method {method!r}")
    return _BatchRanking(ranks=ranks, score=np.asarray(score, dtype=float), column_values=column_values,
                         column_ranks=column_ranks)


_SCORE_NAMES = {
    "score": "score",
    "mean-rank": "mean rank",
    "median-rank": "median rank",
    "rank-then-aggregate": "mean rank over cases",
    "test-based": "significant wins",
}


def rank(table: ScoreTable, config: RankingConfig) -> Ranking:
    """Rank every submission of `table` by `config`'s method."""
    if table.columns != config.columns:
        raise LeaderboardError("the score table was built for other columns than the ranking config declares")
    batch = rank_batch(table.values, config)
    higher = config.method == "test-based" or (config.method == "score" and config.columns[0].higher_is_better)
    score_name = _SCORE_NAMES[config.method]
    if config.method == "score":
        score_name = f"{config.case_aggregate} {config.columns[0].metric} {config.columns[0].structure}"
    return Ranking(
        submission_ids=table.submission_ids,
        ranks=tuple(int(r) for r in batch.ranks),
        score=tuple(float(v) for v in batch.score),
        score_name=score_name,
        higher_score_is_better=higher,
        column_values=batch.column_values,
        column_ranks=batch.column_ranks,
    )


def select_per_team(submissions: Sequence[SubmissionResults], config: RankingConfig, *,
                    cases: Sequence[str] | None = None) -> list[SubmissionResults]:
    """One submission per team: its newest ("latest") or its best-ranked among all ("best").

    For "best", every submission is ranked together once; a team's best is its lowest rank, and
    among equal ranks its newest. The result keeps the input order.
    """
    by_team: dict[str, list[SubmissionResults]] = {}
    for submission in submissions:
        by_team.setdefault(submission.team, []).append(submission)
    newest_first = lambda s: (s.created_at, s.id)  # noqa: E731
    if config.per_team == "latest":
        chosen = {max(group, key=newest_first).id for group in by_team.values()}
    else:
        ranking = rank(score_table(submissions, config.columns, cases=cases), config)
        rank_of = dict(zip(ranking.submission_ids, ranking.ranks, strict=True))
        chosen = set()
        for group in by_team.values():
            best = min(rank_of[s.id] for s in group)
            chosen.add(max((s for s in group if rank_of[s.id] == best), key=newest_first).id)
    return [s for s in submissions if s.id in chosen]
