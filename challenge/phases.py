"""Challenge phases and their per-job limits, read from a TOML file and validated."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from challenge.config_files import check_keys, read_named_tables
from challenge.errors import ConfigError

SUBMISSION_PERIODS = ("day", "week", "phase")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str | int, *, what: str = "size") -> int:
    """Bytes in a size such as "512m", "8g", "1.5GiB" or a plain integer of bytes."""
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a size such as \"8g\", found {text!r}")
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE_PATTERN.match(str(text))
        if not match:
            raise ConfigError(f"{what} must be a size such as \"512m\" or \"8g\", found {text!r}")
        value = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if value <= 0:
        raise ConfigError(f"{what} must be larger than 0, found {text!r}")
    return value


def format_size(n_bytes: int) -> str:
    for unit in ("t", "g", "m", "k"):
        if n_bytes % _SIZE_UNITS[unit] == 0:
            return f"{n_bytes // _SIZE_UNITS[unit]}{unit}"
    return str(n_bytes)


TEST_DATA_KINDS = ("hidden", "public")
PUBLIC_SITE_FLAGS = (
    "aggregates", "level_aggregates", "ranking", "stability", "breakdowns",
    "case_values", "case_names", "case_pictures", "job_logs",
)
"""What a phase's public site may contain; each is a boolean key of `[phases.NAME.public_site]`."""
_NEED_CASE_NAMES = ("case_values", "case_pictures", "job_logs")
"""Shown under the case's name: publishing them publishes the case names too."""
DEFAULT_MIN_BREAKDOWN_CASES = 5
DEFAULT_SCORING_TIME_LIMIT_S = 300
"""Seconds scoring one case may take (`scoring_time_limit_seconds`) when a phase does not declare it."""


@dataclass(frozen=True)
class Disclosure:
    """What the public leaderboard site of a phase may show, declared once per phase in phases.toml.

    `test_data` is "hidden" (the default: the public site shows aggregates, per-level
    aggregates, the ranking, its stability and breakdowns over at least `min_breakdown_cases`
    cases, and nothing of any single case) or "public" (everything may be shown). The flags:
    `aggregates` (per-submission means over cases), `level_aggregates` (means per structure
    level over cases), `ranking`, `stability` (bootstrap and significance), `breakdowns` (by
    sequence, scanner, grade), `case_values` (values per case, and their distributions drawn
    point by point), `case_names` (case identifiers anywhere, file names included),
    `case_pictures` (pictures of images and masks), `job_logs` (text a container chose: a
    failed job's reason or log). Absolute host paths are never published, whatever the phase.
    """

    test_data: str = "hidden"
    aggregates: bool = True
    level_aggregates: bool = True
    ranking: bool = True
    stability: bool = True
    breakdowns: bool = True
    case_values: bool = False
    case_names: bool = False
    case_pictures: bool = False
    job_logs: bool = False
    min_breakdown_cases: int = DEFAULT_MIN_BREAKDOWN_CASES

    @classmethod
    def default_for(cls, test_data: str) -> "Disclosure":
        """The defaults of a phase whose test data is `test_data` ("hidden" or "public")."""
        if test_data not in TEST_DATA_KINDS:
            raise ConfigError(f"test_data must be one of {list(TEST_DATA_KINDS)}, found {test_data!r}")
        if test_data == "public":
            return cls(test_data="public", **{flag: True for flag in PUBLIC_SITE_FLAGS})
        return cls()

    @property
    def hidden(self) -> bool:
        return self.test_data == "hidden"

    @property
    def breakdown_minimum(self) -> int:
        """The fewest cases a breakdown group needs to be published (1: every group)."""
        return self.min_breakdown_cases if self.hidden else 1

    def describe(self) -> str:
        shown = [flag for flag in PUBLIC_SITE_FLAGS if getattr(self, flag)]
        return f"{self.test_data} test data; public site shows: {', '.join(shown) or 'nothing'}"


@dataclass(frozen=True)
class Phase:
    """One phase of the challenge and the limits of each algorithm job in it."""

    name: str
    description: str
    time_limit_seconds: int
    memory_bytes: int
    cpus: float
    gpus: int
    pids_limit: int
    tmp_bytes: int
    output_limit_bytes: int
    max_submissions: int | None = None
    submission_period: str = "phase"
    network: bool = False
    disclosure: Disclosure = Disclosure()
    """What the public site may show; phases built without one (e.g. from registry rows) get the hidden defaults."""
    scoring_time_limit_seconds: int = DEFAULT_SCORING_TIME_LIMIT_S
    """Wall clock for scoring one case's prediction; a case whose scoring takes longer is invalid
    (challenge.rules.SCORING_GUARD_RULE)."""

    def with_overrides(self, *, time_limit_seconds: int | None = None, memory: str | int | None = None) -> "Phase":
        """A copy with a different time or memory limit (for local experiments)."""
        changes: dict[str, Any] = {}
        if time_limit_seconds is not None:
            changes["time_limit_seconds"] = _positive_int(time_limit_seconds, f"phase {self.name!r}: time limit")
        if memory is not None:
            changes["memory_bytes"] = parse_size(memory, what=f"phase {self.name!r}: memory")
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        return (
            f"{self.name}: {self.time_limit_seconds} s per case, {format_size(self.memory_bytes)} memory, "
            f"{self.cpus:g} CPUs, {self.gpus} GPU, no network"
        )


_REQUIRED = ("time_limit_seconds", "memory", "cpus", "gpus", "network", "pids_limit", "tmp_size", "output_limit")
_OPTIONAL = ("description", "max_submissions", "submission_period", "test_data", "public_site",
             "scoring_time_limit_seconds")


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{what} must be a positive integer, found {value!r}")
    return value


def phase_from_mapping(name: str, table: Mapping[str, Any], *, source: str = "phases") -> Phase:
    """Validate one `[phases.NAME]` table; every error names the source, the phase and the key."""
    where = f"{source}: phase {name!r}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise ConfigError(f"{where}: a phase name must be lowercase letters, digits, '-' or '_', found {name!r}")
    check_keys(table, required=_REQUIRED, optional=_OPTIONAL, where=where)
    if table["network"] is not False:
        raise ConfigError(
            f"{where}: network must be false (algorithm jobs never get a network), found {table['network']!r}"
        )
    cpus = table["cpus"]
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
        raise ConfigError(f"{where}: cpus must be a number larger than 0, found {cpus!r}")
    gpus = table["gpus"]
    if gpus not in (0, 1) or isinstance(gpus, bool):
        raise ConfigError(f"{where}: gpus must be 0 or 1, found {gpus!r}")
    period = table.get("submission_period", "phase")
    if period not in SUBMISSION_PERIODS:
        raise ConfigError(f"{where}: submission_period must be one of {list(SUBMISSION_PERIODS)}, found {period!r}")
    max_submissions = table.get("max_submissions")
    if max_submissions is not None:
        max_submissions = _positive_int(max_submissions, f"{where}: max_submissions")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be text, found {description!r}")
    disclosure = disclosure_from_mapping(table.get("test_data", "hidden"), table.get("public_site", {}), where=where)
    scoring_time_limit = _positive_int(table.get("scoring_time_limit_seconds", DEFAULT_SCORING_TIME_LIMIT_S),
                                       f"{where}: scoring_time_limit_seconds")
    return Phase(
        name=name,
        description=description,
        time_limit_seconds=_positive_int(table["time_limit_seconds"], f"{where}: time_limit_seconds"),
        memory_bytes=parse_size(table["memory"], what=f"{where}: memory"),
        cpus=float(cpus),
        gpus=int(gpus),
        pids_limit=_positive_int(table["pids_limit"], f"{where}: pids_limit"),
        tmp_bytes=parse_size(table["tmp_size"], what=f"{where}: tmp_size"),
        output_limit_bytes=parse_size(table["output_limit"], what=f"{where}: output_limit"),
        max_submissions=max_submissions,
        submission_period=period,
        disclosure=disclosure,
        scoring_time_limit_seconds=scoring_time_limit,
    )


def disclosure_from_mapping(test_data: Any, public_site: Any, *, where: str) -> Disclosure:
    """The `test_data` key and the optional `[phases.NAME.public_site]` table of one phase, validated."""
    if test_data not in TEST_DATA_KINDS:
        raise ConfigError(f"{where}: test_data must be one of {list(TEST_DATA_KINDS)}, found {test_data!r}")
    if not isinstance(public_site, Mapping):
        raise ConfigError(f"{where}: public_site must be a table ([phases.NAME.public_site]), found {public_site!r}")
    site_where = f"{where}: public_site"
    check_keys(public_site, required=(), optional=(*PUBLIC_SITE_FLAGS, "min_breakdown_cases"), where=site_where)
    changes: dict[str, Any] = {}
    for flag in PUBLIC_SITE_FLAGS:
        if flag in public_site:
            if not isinstance(public_site[flag], bool):
                raise ConfigError(f"{site_where}: {flag} must be true or false, found {public_site[flag]!r}")
            changes[flag] = public_site[flag]
    if "min_breakdown_cases" in public_site:
        changes["min_breakdown_cases"] = _positive_int(public_site["min_breakdown_cases"],
                                                       f"{site_where}: min_breakdown_cases")
    disclosure = dataclasses.replace(Disclosure.default_for(test_data), **changes)
    if not disclosure.case_names:
        shown = [flag for flag in _NEED_CASE_NAMES if getattr(disclosure, flag)]
        if shown:
            raise ConfigError(
                f"{site_where}: {shown[0]} = true needs case_names = true (they are shown under each case's name), "
                f"found case_names = false"
            )
    return disclosure


def default_phases_path() -> Path:
    return Path(str(resources.files("challenge") / "phases.toml"))


def load_phases(path: Path | str | None = None) -> dict[str, Phase]:
    """All phases of a phases file (the packaged `challenge/phases.toml` by default)."""
    path = Path(path) if path is not None else default_phases_path()
    tables = read_named_tables(path, "phases", what="NAME")
    return {name: phase_from_mapping(name, table, source=str(path)) for name, table in tables.items()}


def get_phase(name: str, path: Path | str | None = None) -> Phase:
    phases = load_phases(path)
    if name not in phases:
        raise ConfigError(f"unknown phase {name!r}; phases declared: {sorted(phases)}")
    return phases[name]


DEFAULT_PHASE = "final"
