"""Bootstrap determinism, Kendall's tau and the significance map on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from leaderboard.ranking import rank, score_table
from leaderboard.stability import bootstrap, bootstrap_indices, kendall_tau, significance_maps

from .conftest import config, submission_from_values, submission_id

DICE_V = ("dice", "vertebrae", "higher")
ASSD_V = ("assd", "vertebrae", "lower")


def noisy_table(cfg, seed=0, n_cases=20):
    rng = np.random.default_rng(seed)
    submissions = [
        submission_from_values(sid, {(c.metric, c.structure): rng.normal(mean, 0.1, n_cases) for c in cfg.columns})
        for sid, mean in (("a", 0.80), ("b", 0.78), ("c", 0.70), ("d", 0.5))
    ]
    return score_table(submissions, cfg.columns)


def test_kendall_tau_by_hand():
    # (1, 2, 3) vs (1, 3, 2): 2 concordant, 1 discordant pair -> (2 - 1) / 3.
    taus = kendall_tau(np.array([1, 2, 3]), np.array([[1, 2, 3], [1, 3, 2], [3, 2, 1]]))
    assert taus == pytest.approx([1.0, 1 / 3, -1.0])


def test_bootstrap_indices_follow_the_seed():
    first = bootstrap_indices(5, draws=3, seed=7)
    assert first.shape == (3, 5)
    assert np.array_equal(first, np.random.default_rng(7).integers(0, 5, size=(3, 5)))
    assert not np.array_equal(first, bootstrap_indices(5, draws=3, seed=8))


@pytest.mark.parametrize("method", ["score", "mean-rank", "median-rank", "rank-then-aggregate", "test-based"])
def test_bootstrap_is_deterministic_for_a_seed(method):
    columns = (DICE_V,) if method == "score" else (DICE_V, ASSD_V)
    cfg = config(*columns, method=method)
    table = noisy_table(cfg)
    one = bootstrap(table, cfg, draws=60, seed=3)
    two = bootstrap(table, cfg, draws=60, seed=3)
    assert np.array_equal(one.bootstrap_ranks, two.bootstrap_ranks)
    assert np.array_equal(one.kendall_tau, two.kendall_tau, equal_nan=True)
    assert one.rank_counts().sum(axis=1).tolist() == [60] * 4


def test_bootstrap_reproduces_a_ranking_done_by_hand_on_each_draw():
    cfg = config(DICE_V, ASSD_V, method="mean-rank")
    table = noisy_table(cfg, seed=1, n_cases=6)
    result = bootstrap(table, cfg, draws=25, seed=11)
    indices = bootstrap_indices(6, draws=25, seed=11)
    for draw in (0, 7, 24):
        resampled = type(table)(table.submission_ids, tuple(table.cases[i] for i in indices[draw]), table.columns,
                                table.values[:, :, indices[draw]])
        assert list(rank(resampled, cfg).ranks) == result.bootstrap_ranks[draw].tolist()


def test_a_dominant_order_is_perfectly_stable():
    cfg = config(DICE_V)
    submissions = [submission_from_values(sid, {DICE_V[:2]: [m + 0.01 * k for k in range(5)]})
                   for sid, m in (("a", 0.9), ("b", 0.8), ("c", 0.5))]
    table = score_table(submissions, cfg.columns)
    result = bootstrap(table, cfg, draws=50, seed=0)
    assert result.rank_counts().tolist() == [[50, 0, 0], [0, 50, 0], [0, 0, 50]]
    assert np.all(result.kendall_tau == 1.0)
    assert result.rank_summary(submission_id("b")) == (2.0, 2.0, 2.0)
    assert result.tau_summary() == (1.0, 1.0, 1.0)


def test_close_submissions_swap_ranks_under_resampling():
    cfg = config(DICE_V, method="mean-rank")
    table = noisy_table(cfg, seed=2)
    result = bootstrap(table, cfg, draws=200, seed=1)
    counts = dict(zip(table.submission_ids, result.rank_counts(), strict=True))
    a, b, d = submission_id("a"), submission_id("b"), submission_id("d")
    assert counts[a][0] > 0 and counts[b][0] > 0  # 0.80 vs 0.78 with noise 0.1 on 20 cases
    assert counts[d][3] == 200                    # far behind everyone
    median, low, high = result.tau_summary()
    assert -1 <= low <= median <= high <= 1 and low < 1


def test_significance_map_is_in_ranking_order_and_holm_corrected():
    cfg = config(DICE_V, method="mean-rank")
    submissions = [
        submission_from_values("c", {DICE_V[:2]: [0.5 + 0.01 * k for k in range(8)]}),
        submission_from_values("a", {DICE_V[:2]: [0.9 + 0.001 * k for k in range(8)]}),
        submission_from_values("b", {DICE_V[:2]: [0.9 + 0.001 * k for k in range(8)]}),
    ]
    table = score_table(submissions, cfg.columns)
    (smap,) = significance_maps(table, cfg, rank(table, cfg))
    assert smap.submission_ids == tuple(submission_id(sid) for sid in ("a", "b", "c"))
    # a, b beat c at p = 1/256 each; Holm over 6 tests: sorted 6/256, 5/256 -> both 6/256.
    assert smap.p_values[0, 2] == pytest.approx(6 / 256)
    assert smap.p_values[1, 2] == pytest.approx(6 / 256)
    assert smap.p_values[0, 1] == pytest.approx(1.0)
    assert smap.significant.tolist() == [[False, False, True], [False, False, True], [False, False, False]]
