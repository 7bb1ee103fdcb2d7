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
from challenge.text import without_container_text

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
AUDIENCES = ("public_site", "team_report", "organizer_report")
"""Who a phase's results are shown to; each has an optional `[phases.NAME.<audience>]` table of the flags below."""
DISCLOSURE_FLAGS = (
    "aggregates", "level_aggregates", "ranking", "stability", "breakdowns",
    "case_values", "case_names", "case_pictures", "failure_reasons", "job_logs",
)
"""What an audience may be shown; each is a boolean key of the audience's table."""
_NEED_CASE_NAMES = ("case_values", "case_pictures", "failure_reasons", "job_logs")
"""Shown under the case's name: showing them shows the case names too."""
DEFAULT_MIN_BREAKDOWN_CASES = 5
DEFAULT_SCORING_TIME_LIMIT_S = 300
"""Seconds scoring one case may take (`scoring_time_limit_seconds`) when a phase does not declare it."""
DEFAULT_IMAGE_LIMIT_BYTES = 10 * 1000**3
"""Largest submitted image (`image_limit`: the tarball and its unpacked layers): grand-challenge's 10 GB."""
DEFAULT_MAX_IMAGE_LAYERS = 125
"""Most layers a submitted image may have (`max_image_layers`; Docker's overlay storage stops near 128)."""


@dataclass(frozen=True)
class Disclosure:
    """What one audience of a phase may be shown, declared once per phase and audience in phases.toml.

    `test_data` is "hidden" (the default) or "public". On hidden test data the public site shows
    aggregates, per-level aggregates, the ranking, its stability and breakdowns over at least
    `min_breakdown_cases` cases, and nothing of any single case; a team's report adds its own
    cases' names, values and failure reasons; the organizer's report shows everything. On public
    test data every audience may be shown everything. The flags: `aggregates` (per-submission
    means over cases), `level_aggregates` (means per structure level over cases), `ranking`,
    `stability` (bootstrap and significance), `breakdowns` (by sequence, scanner, grade),
    `case_values` (values per case, and their distributions drawn point by point), `case_names`
    (case identifiers anywhere, file names included), `case_pictures` (pictures of images and
    masks), `failure_reasons` (why a job failed as the runner says it: timed out, out of memory,
    the output check's verdict), `job_logs` (text a container chose: its log, and the last log
    line a failure reason quotes). Absolute host paths are never shown, to any audience.
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
    failure_reasons: bool = False
    job_logs: bool = False
    min_breakdown_cases: int = DEFAULT_MIN_BREAKDOWN_CASES

    @classmethod
    def default_for(cls, test_data: str, audience: str = "public_site") -> "Disclosure":
        """The defaults of `audience` (one of AUDIENCES) in a phase whose test data is `test_data`."""
        if test_data not in TEST_DATA_KINDS:
            raise ConfigError(f"test_data must be one of {list(TEST_DATA_KINDS)}, found {test_data!r}")
        if audience not in AUDIENCES:
            raise ConfigError(f"the audience must be one of {list(AUDIENCES)}, found {audience!r}")
        if test_data == "public" or audience == "organizer_report":
            return cls(test_data=test_data, **{flag: True for flag in DISCLOSURE_FLAGS})
        if audience == "team_report":
            # A team's report adds to the public site's hidden defaults its own cases, values and why they failed.
            return cls(case_values=True, case_names=True, failure_reasons=True)
        return cls()

    @property
    def hidden(self) -> bool:
        return self.test_data == "hidden"

    @property
    def breakdown_minimum(self) -> int:
        """The fewest cases a breakdown group needs to be published (1: every group)."""
        return self.min_breakdown_cases if self.hidden else 1

    def reason_shown(self, reason: str | None) -> str | None:
        """What of a failed job's reason this audience sees: all of it with job logs, the runner's
        own words (without the container's log line) with failure reasons, else nothing."""
        if not reason:
            return None
        if self.job_logs:
            return reason
        return without_container_text(reason) if self.failure_reasons else None

    def describe(self, audience: str = "public site") -> str:
        shown = [flag for flag in DISCLOSURE_FLAGS if getattr(self, flag)]
        return f"{self.test_data} test data; {audience} shows: {', '.join(shown) or 'nothing'}"


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
    team_report: Disclosure = Disclosure.default_for("hidden", "team_report")
    """What a team's own report may show (`spider report team`)."""
    organizer_report: Disclosure = Disclosure.default_for("hidden", "organizer_report")
    """What the organizer's report may show (`spider report organizer`)."""
    scoring_time_limit_seconds: int = DEFAULT_SCORING_TIME_LIMIT_S
    """Wall clock for scoring one case's prediction; a case whose scoring takes longer is invalid
    (challenge.rules.SCORING_GUARD_RULE)."""
    image_limit_bytes: int = DEFAULT_IMAGE_LIMIT_BYTES
    """Largest submitted image tarball, and largest total of its unpacked files."""
    max_image_layers: int = DEFAULT_MAX_IMAGE_LAYERS

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
_OPTIONAL = ("description", "max_submissions", "submission_period", "test_data", *AUDIENCES,
             "scoring_time_limit_seconds", "image_limit", "max_image_layers")


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
    test_data = table.get("test_data", "hidden")
    disclosures = {audience: disclosure_from_mapping(test_data, table.get(audience, {}), audience=audience, where=where)
                   for audience in AUDIENCES}
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
        disclosure=disclosures["public_site"],
        team_report=disclosures["team_report"],
        organizer_report=disclosures["organizer_report"],
        scoring_time_limit_seconds=scoring_time_limit,
        image_limit_bytes=parse_size(table.get("image_limit", DEFAULT_IMAGE_LIMIT_BYTES), what=f"{where}: image_limit"),
        max_image_layers=_positive_int(table.get("max_image_layers", DEFAULT_MAX_IMAGE_LAYERS),
                                       f"{where}: max_image_layers"),
    )


def disclosure_from_mapping(test_data: Any, flags: Any, *, audience: str = "public_site", where: str) -> Disclosure:
    """The `test_data` key and the optional `[phases.NAME.<audience>]` table of one phase, validated."""
    if test_data not in TEST_DATA_KINDS:
        raise ConfigError(f"{where}: test_data must be one of {list(TEST_DATA_KINDS)}, found {test_data!r}")
    if not isinstance(flags, Mapping):
        raise ConfigError(f"{where}: {audience} must be a table ([phases.NAME.{audience}]), found {flags!r}")
    table_where = f"{where}: {audience}"
    check_keys(flags, required=(), optional=(*DISCLOSURE_FLAGS, "min_breakdown_cases"), where=table_where)
    changes: dict[str, Any] = {}
    for flag in DISCLOSURE_FLAGS:
        if flag in flags:
            if not isinstance(flags[flag], bool):
                raise ConfigError(f"{table_where}: {flag} must be true or false, found {flags[flag]!r}")
            changes[flag] = flags[flag]
    if "min_breakdown_cases" in flags:
        changes["min_breakdown_cases"] = _positive_int(flags["min_breakdown_cases"],
                                                       f"{table_where}: min_breakdown_cases")
    disclosure = dataclasses.replace(Disclosure.default_for(test_data, audience), **changes)
    if not disclosure.case_names:
        shown = [flag for flag in _NEED_CASE_NAMES if getattr(disclosure, flag)]
        if shown:
            raise ConfigError(
                f"{table_where}: {shown[0]} = true needs case_names = true (they are shown under each case's name), "
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
