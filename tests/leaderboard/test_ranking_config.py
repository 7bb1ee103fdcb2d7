"""The ranking config in challenge/ranking.toml: the shipped file loads, bad values name phase and key."""

from __future__ import annotations

import pytest

from challenge.errors import ConfigError
from challenge.phases import load_phases
from challenge.ranking import get_ranking, load_rankings, ranking_from_mapping

DICE_DISCS = {"metric": "dice", "structure": "discs", "direction": "higher"}
GOOD = {"method": "mean-rank", "per_team": "best", "columns": [DICE_DISCS]}


def test_shipped_rankings_cover_declared_phases():
    rankings = load_rankings(phase_names=set(load_phases()))
    assert set(rankings) == set(load_phases())
    final = get_ranking("final")
    assert final.method == "mean-rank" and final.bootstrap_draws == 1000
    assert ("dice", "discs", "higher") in {(c.metric, c.structure, c.direction) for c in final.columns}
    assert "ties share a rank" in final.describe()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "mean"}, r"ranking 'final': method must be one of .*found 'mean'"),
        ({"per_team": "first"}, r"per_team must be one of \['best', 'latest'\], found 'first'"),
        ({"columns": []}, r"columns must be a non-empty list"),
        ({"columns": [{**DICE_DISCS, "structure": "disks"}]},
         r"columns\[0\]: structure must be one of .*found 'disks'"),
        ({"columns": [{**DICE_DISCS, "direction": "lower"}]},
         r"direction of dice must be 'higher' as the scoring rules declare it, found 'lower'"),
        ({"columns": [{**DICE_DISCS, "metric": "dise"}]},
         r"metric must be one of the scoring rules' metrics .*found 'dise'"),
        ({"columns": [{"metric": "dice", "structure": "discs"}]}, r"columns\[0\]: missing key\(s\) \['direction'\]"),
        ({"columns": [GOOD["columns"][0], GOOD["columns"][0]]}, r"dice discs is listed twice"),
        ({"method": "score", "columns": [DICE_DISCS, {**DICE_DISCS, "structure": "vertebrae"}]},
         r"exactly one column, found 2"),
        ({"significance_level": 1.5}, r"significance_level must be between 0 and 1, found 1.5"),
        ({"columns": [{"metric": "seconds", "structure": "discs", "direction": "lower"}]},
         r"columns\[0\]: the job measure seconds has structure 'job', found 'discs'"),
        ({"columns": [{"metric": "peak_memory_mb", "structure": "job", "direction": "higher"}]},
         r"direction of the job measure peak_memory_mb must be 'lower', found 'higher'"),
        ({"bootstrap_draws": 0}, r"bootstrap_draws must be an integer in 1..100000, found 0"),
        ({"bootstrap_seed": -1}, r"bootstrap_seed must be a non-negative integer"),
        ({"colums": []}, r"unknown key\(s\) \['colums'\]"),
    ],
)
def test_invalid_values_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        ranking_from_mapping("final", {**GOOD, **change}, source="ranking.toml")


def test_missing_key_and_unknown_phase(tmp_path):
    with pytest.raises(ConfigError, match=r"missing key\(s\) \['per_team'\]"):
        ranking_from_mapping("final", {k: v for k, v in GOOD.items() if k != "per_team"})
    path = tmp_path / "ranking.toml"
    path.write_text('[ranking.finale]\nmethod = "score"\nper_team = "best"\n'
                    'columns = [{metric = "dice", structure = "discs", direction = "higher"}]\n')
    with pytest.raises(ConfigError, match=r"ranking for unknown phase\(s\) \['finale'\]"):
        load_rankings(path, phase_names={"final"})
    with pytest.raises(ConfigError, match=r"no ranking declared for phase 'final'; rankings declared: \['finale'\]"):
        get_ranking("final", path)
    path.write_text("[ranking.final\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rankings(path)


def test_a_job_measure_is_a_rankable_column():
    config = ranking_from_mapping("final", {**GOOD, "columns": [
        DICE_DISCS, {"metric": "seconds", "structure": "job", "direction": "lower", "missing_value": 600}]})
    seconds = config.columns[1]
    assert (seconds.metric, seconds.structure, seconds.missing_value) == ("seconds", "job", 600.0)
    assert "Seconds per case (lower is better)" in config.describe()
