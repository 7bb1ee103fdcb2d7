"""How stable a ranking is: bootstrap over cases, Kendall's tau and pairwise significance.

Following challengeR (Wiesenfarth et al. 2021): the cases are resampled with replacement
(`draws` times, from a fixed seed), the same ranking method ranks each resample, and we keep
each submission's rank distribution (for a blob plot) and Kendall's tau between the full
ranking and each bootstrap ranking. The significance map holds, per ranked column, the
Holm-corrected one-sided Wilcoxon signed-rank p-values between every two submissions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from challenge.ranking import RankedColumn, RankingConfig
from leaderboard.errors import LeaderboardError
from leaderboard.ranking import Ranking, ScoreTable, missing_as_worst, oriented_values, rank, rank_batch, significance

# Resamples ranked at once: bounds memory to about chunk x columns x submissions x cases floats.
_CHUNK = 100


@dataclass(frozen=True)
class Stability:
    """Bootstrap ranks: `bootstrap_ranks[draw, submission]` in the table's submission order."""

    submission_ids: tuple[int, ...]
    full_ranks: tuple[int, ...]
    draws: int
    seed: int
    bootstrap_ranks: np.ndarray
    kendall_tau: np.ndarray

    def rank_counts(self) -> np.ndarray:
        """`counts[submission, r - 1]`: how many draws put the submission at rank r."""
        n = len(self.submission_ids)
        counts = np.zeros((n, n), dtype=int)
        for s in range(n):
            counts[s] = np.bincount(self.bootstrap_ranks[:, s] - 1, minlength=n)[:n]
        return counts

    def rank_summary(self, submission_id: int) -> tuple[float, float, float]:
        """Median and the 2.5 % and 97.5 % quantiles of the submission's bootstrap rank."""
        ranks = self.bootstrap_ranks[:, self.submission_ids.index(submission_id)]
        low, median, high = np.quantile(ranks, [0.025, 0.5, 0.975], method="inverted_cdf")
        return float(median), float(low), float(high)

    def tau_summary(self) -> tuple[float, float, float]:
        """Median, minimum and maximum of Kendall's tau over draws (NaN draws left out)."""
        finite = self.kendall_tau[np.isfinite(self.kendall_tau)]
        if finite.size == 0:
            return (float("nan"),) * 3
        return float(np.median(finite)), float(finite.min()), float(finite.max())


@dataclass(frozen=True)
class SignificanceMap:
    """For one column: `p_values[i, j]` (Holm-adjusted) that submission i is better than j."""

    column: RankedColumn
    submission_ids: tuple[int, ...]
    p_values: np.ndarray
    significant: np.ndarray
    alpha: float


def bootstrap_indices(n_cases: int, *, draws: int, seed: int) -> np.ndarray:
    """`draws` resamples of case indices with replacement, the same for the same seed."""
    if n_cases < 1:
        raise LeaderboardError("the bootstrap needs at least one case")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_cases, size=(draws, n_cases))


def kendall_tau(full_ranks: np.ndarray, bootstrap_ranks: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between the full ranking and each bootstrap ranking (NaN if one is constant)."""
    taus = np.empty(len(bootstrap_ranks))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for d, ranks in enumerate(bootstrap_ranks):
            taus[d] = stats.kendalltau(full_ranks, ranks).statistic
    return taus


def bootstrap(table: ScoreTable, config: RankingConfig, *, draws: int | None = None,
              seed: int | None = None) -> Stability:
    """Rank `draws` resamples of the table's cases with the config's method."""
    draws = config.bootstrap_draws if draws is None else draws
    seed = config.bootstrap_seed if seed is None else seed
    if draws < 1:
        raise LeaderboardError(f"bootstrap draws must be at least 1, found {draws}")
    full = rank(table, config)
    indices = bootstrap_indices(len(table.cases), draws=draws, seed=seed)
    ranks = np.empty((draws, len(table.submission_ids)), dtype=int)
    for start in range(0, draws, _CHUNK):
        chunk = indices[start:start + _CHUNK]
        resampled = np.moveaxis(table.values[:, :, chunk], 2, 0)  # (draw, column, submission, case)
        ranks[start:start + len(chunk)] = rank_batch(resampled, config).ranks
    full_ranks = np.asarray(full.ranks)
    return Stability(
        submission_ids=table.submission_ids,
        full_ranks=full.ranks,
        draws=draws,
        seed=seed,
        bootstrap_ranks=ranks,
        kendall_tau=kendall_tau(full_ranks, ranks),
    )


def significance_maps(table: ScoreTable, config: RankingConfig, ranking: Ranking) -> list[SignificanceMap]:
    """One significance map per ranked column, with submissions in ranking order.

    A missing value counts as worse than any value found in its column.
    """
    order = ranking.ordered()
    ordered = table.subset(order)
    oriented = missing_as_worst(oriented_values(ordered.values, ordered.columns))
    maps = []
    for c, column in enumerate(ordered.columns):
        adjusted, significant = significance(oriented[c], config.significance_level)
        maps.append(SignificanceMap(column, order, adjusted, significant, config.significance_level))
    return maps
