import pytest

from challenge.errors import ConfigError
from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S, get_phase, load_phases, parse_size

VALID = """
[phases.dev]
description = "x"
time_limit_seconds = 60
memory = "512m"
cpus = 1.5
gpus = 0
network = false
pids_limit = 64
tmp_size = "100m"
output_limit = "1g"
max_submissions = 3
submission_period = "week"
"""


def write(tmp_path, text):
    path = tmp_path / "phases.toml"
    path.write_text(text)
    return path


def test_packaged_phases_are_valid():
    phases = load_phases()
    assert {"sanity-check", "final"} <= set(phases)
    assert all(not phase.network for phase in phases.values())


def test_valid_file_parses_units(tmp_path):
    phase = load_phases(write(tmp_path, VALID))["dev"]
    assert phase.memory_bytes == 512 * 1024**2
    assert phase.output_limit_bytes == 1024**3
    assert phase.cpus == 1.5 and phase.max_submissions == 3 and phase.submission_period == "week"


def test_scoring_time_limit_is_optional_with_the_declared_default(tmp_path):
    assert load_phases(write(tmp_path, VALID))["dev"].scoring_time_limit_seconds == DEFAULT_SCORING_TIME_LIMIT_S == 300
    declared = VALID.replace("pids_limit = 64", "pids_limit = 64\nscoring_time_limit_seconds = 45")
    assert load_phases(write(tmp_path, declared))["dev"].scoring_time_limit_seconds == 45
    assert all(phase.scoring_time_limit_seconds > 0 for phase in load_phases().values())


@pytest.mark.parametrize("value", ["0", "-3", "2.5", '"300"', "true"])
def test_scoring_time_limit_must_be_a_positive_integer(tmp_path, value):
    path = write(tmp_path, VALID.replace("pids_limit = 64", f"pids_limit = 64\nscoring_time_limit_seconds = {value}"))
    with pytest.raises(ConfigError, match="scoring_time_limit_seconds must be a positive integer, found") as caught:
        load_phases(path)
    assert f"{path}: phase 'dev': scoring_time_limit_seconds" in str(caught.value)


def test_the_phases_file_documents_every_key():
    from challenge.phases import _OPTIONAL, _REQUIRED, default_phases_path

    header = default_phases_path().read_text(encoding="utf-8").split("\n[phases.", 1)[0]
    for key in (*_REQUIRED, *_OPTIONAL):
        assert f"#   {key}" in header or f"[phases.NAME.{key}]" in header, key


def test_overrides_for_local_experiments(tmp_path):
    phase = load_phases(write(tmp_path, VALID))["dev"].with_overrides(time_limit_seconds=5, memory="256m")
    assert phase.time_limit_seconds == 5 and phase.memory_bytes == 256 * 1024**2
    with pytest.raises(ConfigError, match="time limit must be a positive integer, found 0"):
        phase.with_overrides(time_limit_seconds=0)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('network = false', 'network = true', "network must be false"),
        (
            'time_limit_seconds = 60',
            'time_limit_seconds = -5',
            "time_limit_seconds must be a positive integer, found -5",
        ),
        ('memory = "512m"', 'memory = "lots"', "memory must be a size such as"),
        ('gpus = 0', 'gpus = 2', "gpus must be 0 or 1, found 2"),
        ('cpus = 1.5', 'cpus = 0', "cpus must be a number larger than 0"),
        ('submission_period = "week"', 'submission_period = "month"', "submission_period must be one of"),
        ('pids_limit = 64', 'pids_limit = 64\nswap = "1g"', r"unknown key\(s\) \['swap'\]"),
        ('pids_limit = 64', '', r"missing key\(s\) \['pids_limit'\]"),
        ('[phases.dev]', '[phases."Bad Name"]', "phase name must be lowercase"),
    ],
)
def test_invalid_values_name_phase_key_and_value(tmp_path, old, new, message):
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ConfigError, match=message) as caught:
        load_phases(path)
    assert str(path) in str(caught.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_phases(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_phases(write(tmp_path, "[phases.dev\n"))
    with pytest.raises(ConfigError, match="at least one"):
        load_phases(write(tmp_path, "title = 'x'\n"))
    with pytest.raises(ConfigError, match=r"unknown phase 'nope'; phases declared: \['dev'\]"):
        get_phase("nope", write(tmp_path, VALID))


@pytest.mark.parametrize(
    "text, expected", [("1k", 1024), ("8g", 8 * 1024**3), ("1.5GiB", int(1.5 * 1024**3)), (100, 100)]
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected
