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
_OPTIONAL = ("description", "max_submissions", "submission_period")


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
    )


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
