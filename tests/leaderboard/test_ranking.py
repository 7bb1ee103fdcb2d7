"""Each ranking method on hand-computed cases, with ties (1, 1, 3) and missing values."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest

from challenge.ranking import RankedColumn
from challenge.statuses import JobStatus
from leaderboard.errors import LeaderboardError
from leaderboard.ranking import holm, rank, rank_keys, score_table, select_per_team

from .conftest import T0, config, submission_from_values, submission_id

DICE_V = ("dice", "vertebrae", "higher")
DICE_D = ("dice", "discs", "higher")
DICE_C = ("dice", "spinal_canal", "higher")
ASSD_V = ("assd", "vertebrae", "lower")


def ranked(cfg, per_submission: dict[str, dict], **kwargs):
    submissions = [submission_from_values(sid, values, **kwargs) for sid, values in per_submission.items()]
    table = score_table(submissions, cfg.columns)
    return table, rank(table, cfg)


def test_rank_keys_ties_share_the_lowest_rank_and_nan_is_worst():
    assert rank_keys(np.array([2.0, 2.0, 5.0])).tolist() == [1, 1, 3]
    assert rank_keys(np.array([np.nan, 1.0, np.nan, 0.5])).tolist() == [3, 2, 3, 1]
    # Rounding noise does not split a tie.
    assert rank_keys(np.array([0.1 + 0.2, 0.3, 0.4])).tolist() == [1, 1, 3]


@pytest.mark.parametrize(
    "column, values, expected",
    [
        (DICE_V, {"a": [0.9, 0.9], "b": [0.8, 1.0], "c": [0.8, 0.8]}, [1, 1, 3]),
        (ASSD_V, {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [0.5, 1.5]}, [1, 3, 1]),
    ],
)
def test_score_method_ranks_the_mean_with_ties(column, values, expected):
    cfg = config(column)
    _, ranking = ranked(cfg, {sid: {column[:2]: v} for sid, v in values.items()})
    assert list(ranking.ranks) == expected
    assert ranking.score == pytest.approx([np.mean(v) for v in values.values()])


def test_score_method_median_over_cases():
    cfg = config(DICE_V, case_aggregate="median")
    _, ranking = ranked(cfg, {"a": {DICE_V[:2]: [0.1, 0.8, 0.9]}, "b": {DICE_V[:2]: [0.7, 0.7, 0.7]}})
    # Means 0.6 vs 0.7 would put b first; medians 0.8 vs 0.7 put a first.
    assert list(ranking.ranks) == [1, 2]


def test_missing_case_takes_the_worst_rank_unless_a_missing_value_is_declared():
    values = {"a": {DICE_V[:2]: [0.9, None]}, "b": {DICE_V[:2]: [0.5, 0.5]}, "c": {DICE_V[:2]: [0.6, 0.6]}}
    _, plain = ranked(config(DICE_V), values)
    assert list(plain.ranks) == [3, 2, 1]
    assert math.isnan(plain.score[0])
    filled_cfg = dataclasses.replace(
        config(DICE_V), columns=(RankedColumn("dice", "vertebrae", "higher", missing_value=0.0),))
    _, filled = ranked(filled_cfg, values)
    # a: (0.9 + 0) / 2 = 0.45 -> last of 0.45, 0.5, 0.6
    assert filled.score == pytest.approx([0.45, 0.5, 0.6])
    assert list(filled.ranks) == [3, 2, 1]


def test_a_case_that_a_submission_never_ran_is_missing_not_dropped():
    a = submission_from_values("a", {DICE_V[:2]: [0.9, 0.9]}, cases=["1_t1", "2_t1"])
    b = submission_from_values("b", {DICE_V[:2]: [0.95]}, cases=["1_t1"])
    table = score_table([a, b], config(DICE_V).columns)
    assert table.cases == ("1_t1", "2_t1")
    assert np.isnan(table.values[0, 1, 1])
    assert list(rank(table, config(DICE_V)).ranks) == [1, 2]


def test_mean_rank_over_columns_with_ties():
    cfg = config(DICE_V, ASSD_V, method="mean-rank")
    values = {
        "a": {DICE_V[:2]: [0.9], ASSD_V[:2]: [2.0]},  # ranks 1, 2 -> 1.5
        "b": {DICE_V[:2]: [0.8], ASSD_V[:2]: [1.0]},  # ranks 2, 1 -> 1.5
        "c": {DICE_V[:2]: [0.7], ASSD_V[:2]: [3.0]},  # ranks 3, 3 -> 3
    }
    _, ranking = ranked(cfg, values)
    assert ranking.score == pytest.approx([1.5, 1.5, 3.0])
    assert list(ranking.ranks) == [1, 1, 3]
    assert ranking.column_ranks.tolist() == [[1, 2, 3], [2, 1, 3]]


def test_median_rank_differs_from_mean_rank():
    values = {
        "a": {DICE_V[:2]: [0.9], DICE_D[:2]: [0.9], DICE_C[:2]: [0.1]},  # ranks 1, 1, 3
        "b": {DICE_V[:2]: [0.8], DICE_D[:2]: [0.8], DICE_C[:2]: [0.9]},  # ranks 2, 2, 1
        "c": {DICE_V[:2]: [0.7], DICE_D[:2]: [0.7], DICE_C[:2]: [0.5]},  # ranks 3, 3, 2
    }
    _, mean = ranked(config(DICE_V, DICE_D, DICE_C, method="mean-rank"), values)
    _, median = ranked(config(DICE_V, DICE_D, DICE_C, method="median-rank"), values)
    assert mean.score == pytest.approx([5 / 3, 5 / 3, 8 / 3])
    assert list(mean.ranks) == [1, 1, 3]
    assert median.score == pytest.approx([1, 2, 3])
    assert list(median.ranks) == [1, 2, 3]


def test_mean_rank_missing_column_value_is_worst_in_that_column():
    values = {
        "a": {DICE_V[:2]: [None], ASSD_V[:2]: [1.0]},  # ranks 3, 1 -> 2
        "b": {DICE_V[:2]: [0.8], ASSD_V[:2]: [2.0]},   # ranks 1, 2 -> 1.5
        "c": {DICE_V[:2]: [0.7], ASSD_V[:2]: [None]},  # ranks 2, 3 -> 2.5
    }
    _, ranking = ranked(config(DICE_V, ASSD_V, method="mean-rank"), values)
    assert ranking.score == pytest.approx([2.0, 1.5, 2.5])
    assert list(ranking.ranks) == [2, 1, 3]


def test_rank_then_aggregate_missing_takes_the_worst_rank_per_case():
    values = {
        "a": {DICE_V[:2]: [0.9, 0.5]},   # case ranks 1, 3 -> 2
        "b": {DICE_V[:2]: [0.8, 0.7]},   # case ranks 2, 1 -> 1.5
        "c": {DICE_V[:2]: [None, 0.7]},  # case ranks 3, 1 -> 2
    }
    _, ranking = ranked(config(DICE_V, method="rank-then-aggregate"), values)
    assert ranking.score == pytest.approx([2.0, 1.5, 2.0])
    assert list(ranking.ranks) == [2, 1, 2]


def test_rank_then_aggregate_two_missing_share_the_worst_rank_and_columns_are_averaged():
    values = {
        "a": {DICE_V[:2]: [0.9], ASSD_V[:2]: [3.0]},   # 1, 3
        "b": {DICE_V[:2]: [None], ASSD_V[:2]: [1.0]},  # 2, 1
        "c": {DICE_V[:2]: [None], ASSD_V[:2]: [2.0]},  # 2, 2
    }
    _, ranking = ranked(config(DICE_V, ASSD_V, method="rank-then-aggregate"), values)
    assert ranking.score == pytest.approx([2.0, 1.5, 2.0])
    assert list(ranking.ranks) == [2, 1, 2]


def test_holm_adjustment_by_hand():
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005]))
    # sorted .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> running max .02 .03 .06 .06
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.5, np.nan])) == pytest.approx([1.0, 1.0])


def test_test_based_counts_significant_wins():
    # On 8 cases a > b > c everywhere: each one-sided exact p = 1/256; Holm over 6 tests
    # gives at most 6/256 < 0.05, so a beats 2, b beats 1, c none.
    cases = 8
    values = {
        "a": {DICE_V[:2]: [0.9 + 0.001 * k for k in range(cases)]},
        "b": {DICE_V[:2]: [0.8 + 0.002 * k for k in range(cases)]},
        "c": {DICE_V[:2]: [0.7 + 0.003 * k for k in range(cases)]},
    }
    _, ranking = ranked(config(DICE_V, method="test-based"), values)
    assert ranking.score == pytest.approx([2, 1, 0])
    assert list(ranking.ranks) == [1, 2, 3]


def test_test_based_ties_and_too_few_cases():
    # a and b identical (all differences zero: p = 1), both beat c: ranks 1, 1, 3.
    same = [0.9 + 0.001 * k for k in range(8)]
    values = {"a": {DICE_V[:2]: same}, "b": {DICE_V[:2]: same}, "c": {DICE_V[:2]: [0.5 + 0.01 * k for k in range(8)]}}
    _, ranking = ranked(config(DICE_V, method="test-based"), values)
    assert list(ranking.ranks) == [1, 1, 3]
    # On 6 cases the best p is 1/64; Holm makes it 6/64 = 0.094 > 0.05: nobody wins, all tie.
    six = {sid: {DICE_V[:2]: v[DICE_V[:2]][:6]} for sid, v in values.items()}
    six["b"] = {DICE_V[:2]: [0.8 + 0.002 * k for k in range(6)]}
    _, small = ranked(config(DICE_V, method="test-based"), six)
    assert list(small.ranks) == [1, 1, 1]


def test_test_based_missing_cases_lose_their_pairs():
    values = {
        "a": {DICE_V[:2]: [0.5] * 8},
        "b": {DICE_V[:2]: [None] * 8},
    }
    _, ranking = ranked(config(DICE_V, method="test-based"), values)
    assert list(ranking.ranks) == [1, 2]


def test_unknown_column_is_a_clear_error():
    submission = submission_from_values("a", {DICE_V[:2]: [0.9]})
    with pytest.raises(LeaderboardError, match=r"\['hd95 discs'\].*dice vertebrae"):
        score_table([submission], config(("hd95", "discs", "lower")).columns)


def test_per_team_best_and_latest():
    old_good = submission_from_values("old", {DICE_V[:2]: [0.9]}, team="t", created_at=T0)
    new_bad = submission_from_values("new", {DICE_V[:2]: [0.6]}, team="t", created_at=T0 + timedelta(days=1))
    other = submission_from_values("other", {DICE_V[:2]: [0.8]}, team="u", created_at=T0)
    best = select_per_team([old_good, new_bad, other], config(DICE_V, per_team="best"))
    latest = select_per_team([old_good, new_bad, other], config(DICE_V, per_team="latest"))
    assert [s.id for s in best] == [submission_id("old"), submission_id("other")]
    assert [s.id for s in latest] == [submission_id("new"), submission_id("other")]
    # Equal best ranks: the newer one is kept.
    tie = submission_from_values("tie", {DICE_V[:2]: [0.9]}, team="t", created_at=T0 + timedelta(days=2))
    assert [s.id for s in select_per_team([old_good, tie], config(DICE_V))] == [submission_id("tie")]


def test_median_rank_with_a_missing_value_and_ties():
    values = {
        "a": {DICE_V[:2]: [None], DICE_D[:2]: [0.9], DICE_C[:2]: [0.9]},  # ranks 3, 1, 1 -> median 1
        "b": {DICE_V[:2]: [0.8], DICE_D[:2]: [0.8], DICE_C[:2]: [0.8]},   # ranks 1, 2, 2 -> median 2
        "c": {DICE_V[:2]: [0.7], DICE_D[:2]: [0.8], DICE_C[:2]: [0.7]},   # ranks 2, 2, 3 -> median 2
    }
    _, ranking = ranked(config(DICE_V, DICE_D, DICE_C, method="median-rank"), values)
    assert ranking.column_ranks.tolist() == [[3, 1, 2], [1, 2, 2], [1, 2, 3]]
    assert ranking.score == pytest.approx([1, 2, 2])
    assert list(ranking.ranks) == [1, 2, 2]


def test_a_row_without_a_value_is_missing_like_an_absent_row():
    nan = float("nan")
    with_nan = {"a": {DICE_V[:2]: [0.9, nan]}, "b": {DICE_V[:2]: [0.5, 0.5]}, "c": {DICE_V[:2]: [0.6, 0.6]}}
    absent = {sid: {column: [None if math.isnan(v) else v for v in values] for column, values in per.items()}
              for sid, per in with_nan.items()}
    table, ranking = ranked(config(DICE_V), with_nan)
    assert np.isnan(table.values[0, 0, 1])
    assert list(ranking.ranks) == list(ranked(config(DICE_V), absent)[1].ranks) == [3, 2, 1]


def test_a_job_measure_ranks_by_the_jobs_and_a_failed_job_is_missing():
    """Equal Dice, ranked by seconds per case as a second column: the faster submission wins; a failed job's case
    has no seconds (not the few it took to crash), so a crash never makes a submission fast."""
    dice = {("dice", "discs"): [0.9, 0.9]}
    fast, slow, crashed = (submission_from_values(sid, dice) for sid in ("fast", "slow", "crash"))
    fast = dataclasses.replace(fast, jobs=tuple(dataclasses.replace(j, seconds=10.0) for j in fast.jobs))
    slow = dataclasses.replace(slow, jobs=tuple(dataclasses.replace(j, seconds=20.0) for j in slow.jobs))
    crashed = dataclasses.replace(crashed, jobs=(
        dataclasses.replace(crashed.jobs[0], seconds=15.0),
        dataclasses.replace(crashed.jobs[1], status=JobStatus.FAILED, seconds=0.1)))
    cfg = config(("dice", "discs", "higher"), ("seconds", "job", "lower"), method="mean-rank")
    table = score_table([fast, slow, crashed], cfg.columns)
    assert table.values[1].tolist()[0] == [10.0, 10.0] and table.values[1][2][0] == 15.0
    assert math.isnan(table.values[1][2][1])
    result = rank(table, cfg)
    assert [result.rank_of(s.id) for s in (fast, slow, crashed)] == [1, 2, 3]
    memory = score_table([dataclasses.replace(fast, jobs=tuple(
        dataclasses.replace(j, peak_memory_bytes=250_000_000) for j in fast.jobs))],
        [RankedColumn("peak_memory_mb", "job", "lower")])
    assert memory.values[0, 0].tolist() == [250.0, 250.0]
