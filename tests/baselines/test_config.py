"""The training configuration: defaults, overrides, validation, saving into a run."""

from __future__ import annotations

import tomllib

import pytest

from baselines.config import config_from_mapping, load_config, save_config, smoke_config_path
from baselines.errors import BaselineConfigError


def test_defaults_are_the_issue_hyper_parameters():
    config = load_config()
    assert config.model.name == "unetr"
    assert config.model.hidden_size == 768 and config.model.patch_size == (32, 128, 128)
    assert config.train.learning_rate == 1e-4
    assert config.train.weight_decay == 1e-5
    assert config.train.max_iterations == 21000
    assert config.train.validation_interval == 1000
    assert config.classes.class_map().n_classes == 77


def test_smoke_config_is_a_unetr_with_a_smoke_learning_rate():
    config = load_config(base=smoke_config_path())
    assert config.model.name == "unetr"
    assert config.train.learning_rate > load_config().train.learning_rate


def test_user_file_changes_only_its_keys(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("seed = 3\n[train]\nlearning_rate = 5e-4\n")
    config = load_config(path)
    assert config.seed == 3 and config.train.learning_rate == 5e-4
    assert config.train.weight_decay == 1e-5


def test_saved_config_loads_back_identically(tmp_path):
    config = load_config(base=smoke_config_path()).with_max_iterations(7)
    save_config(config, tmp_path / "config.toml")
    tomllib.loads((tmp_path / "config.toml").read_text())  # valid TOML
    assert load_config(tmp_path / "config.toml") == config


@pytest.mark.parametrize("text, message", [
    ("[train]\nlearning_rat = 1e-3\n", r"unknown config key 'train.learning_rat'"),
    ("[model]\npatch_size = [32, 100, 128]\n", r"multiples of 16.*\[32, 100, 128\]"),
    ("[model]\nhidden_size = 100\n", r"hidden_size \(100\) must be a multiple of model.num_heads \(12\)"),
    ("[data]\nspacing_mm = [3.0, 0.0, 1.0]\n", r"spacing_mm must be > 0"),
    ("[data]\norientation = \"LPL\"\n", "each anatomical axis once"),
    ("[data]\nintensity_percentiles = [99.0, 1.0]\n", "low < high"),
    ("[train]\nforeground_fraction = 1.5\n", r"foreground_fraction must be a number in \[0, 1\]"),
    ("[train]\nmax_iterations = 0\n", r"max_iterations must be an integer >= 1, found 0"),
    ("[train]\naugment = 1\n", "augment must be true or false"),
    ("[classes]\nmax_level = 30\n", "max_level must be an integer in 1..25"),
    ("[model]\nname = \"unet\"\n", r"model.name must be one of \['unetr'\]"),
    ("[inference]\nlevel_naming = \"guess\"\n", r"level_naming must be one of \['network', 'count-from-sacrum'\]"),
    ("[classes]\nby_level = false\n[inference]\nlevel_naming = \"network\"\n",
     r"by_level = false predicts no levels, so inference.level_naming must be 'count-from-sacrum'"),
    ("[train]\n = 1\n", "not valid TOML"),
])
def test_invalid_values_are_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BaselineConfigError, match=message):
        load_config(path)


def test_missing_file_and_missing_table():
    with pytest.raises(BaselineConfigError, match="not found"):
        load_config("/nonexistent/config.toml")
    document = load_config().to_dict()
    del document["model"]
    with pytest.raises(BaselineConfigError, match=r"missing table \[model\]"):
        config_from_mapping(document)


def test_configs_saved_before_level_naming_keep_the_network_names():
    document = load_config().to_dict()
    del document["inference"]["level_naming"], document["classes"]["by_level"]
    config = config_from_mapping(document)
    assert config.inference.level_naming == "network" and config.classes.by_level


def test_both_shipped_configs_count_levels_from_the_sacrum():
    assert load_config().inference.level_naming == "count-from-sacrum"
    smoke = load_config(base=smoke_config_path())
    assert smoke.inference.level_naming == "count-from-sacrum"
