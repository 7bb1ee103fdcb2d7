"""How each phase's submissions are ranked, read from a TOML file and validated."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from challenge.config_files import check_keys, read_named_tables
from challenge.errors import ConfigError
from challenge.labels import SCORED_GROUPS
from challenge.rules import METRICS

METHODS = ("score", "mean-rank", "median-rank", "rank-then-aggregate", "test-based")
PER_TEAM = ("best", "latest")
CASE_AGGREGATES = ("mean", "median")
DIRECTIONS = ("higher", "lower")
STRUCTURES = tuple(group.value for group in SCORED_GROUPS)

DEFAULT_SIGNIFICANCE_LEVEL = 0.05
DEFAULT_BOOTSTRAP_DRAWS = 1000
DEFAULT_BOOTSTRAP_SEED = 20240101

_PHASE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_REQUIRED = ("method", "per_team", "columns")
_OPTIONAL = ("case_aggregate", "significance_level", "bootstrap_draws", "bootstrap_seed")
_COLUMN_REQUIRED = ("metric", "structure", "direction")
_COLUMN_OPTIONAL = ("missing_value",)


JOB = "job"
"""The `structure` of a job measure's column: what the runner measured of a case's job, not a label group."""


@dataclass(frozen=True)
class JobMeasure:
    """What the runner measures of every job, rankable as a column (lower is better): `job_field` of the
    job's record times `scale`, for a case whose job succeeded (a failed job's case is missing)."""

    name: str
    title: str
    unit: str
    job_field: str
    scale: float
    decimals: int


JOB_MEASURES = {measure.name: measure for measure in (
    JobMeasure("seconds", "Seconds per case", "s", "seconds", 1.0, 1),
    JobMeasure("peak_memory_mb", "Peak memory per case", "MB", "peak_memory_bytes", 1e-6, 0),
)}


@dataclass(frozen=True)
class RankedColumn:
    """One ranked column: a metric of one structure group and which way is better."""

    metric: str
    structure: str
    direction: str
    missing_value: float | None = None

    @property
    def key(self) -> str:
        """A stable identifier such as 'dice:vertebrae'."""
        return f"{self.metric}:{self.structure}"

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"


@dataclass(frozen=True)
class RankingConfig:
    """The ranking of one phase."""

    phase: str
    method: str
    per_team: str
    columns: tuple[RankedColumn, ...]
    case_aggregate: str = "mean"
    significance_level: float = DEFAULT_SIGNIFICANCE_LEVEL
    bootstrap_draws: int = DEFAULT_BOOTSTRAP_DRAWS
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED

    def describe(self) -> str:
        """The method in one sentence, for the leaderboard page."""
        names = "; ".join(
            f"{JOB_MEASURES[c.metric].title} ({c.direction} is better)" if c.structure == JOB else
            f"{METRICS[c.metric].title} of {c.structure.replace('_', ' ')} ({c.direction} is better)"
            for c in self.columns
        )
        team = "each team's best submission" if self.per_team == "best" else "each team's latest submission"
        how = {
            "score": f"by the {self.case_aggregate} over cases of one column",
            "mean-rank": f"by the mean over columns of the rank of each column's {self.case_aggregate} over cases",
            "median-rank": f"by the median over columns of the rank of each column's {self.case_aggregate} over cases",
            "rank-then-aggregate": (
                "by the mean of the ranks per case and column (a missing result takes the worst rank)"
            ),
            "test-based": (
                "by the number of other submissions each one beats in paired one-sided Wilcoxon signed-rank "
                f"tests per column (Holm-corrected, alpha {self.significance_level:g}), summed over columns"
            ),
        }[self.method]
        return f"Ranked {how}. Columns: {names}. Only {team} is ranked; ties share a rank."


def _where(source: str, phase: str) -> str:
    return f"{source}: ranking {phase!r}"


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {list(allowed)}, found {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, found {value!r}")
    return float(value)


def _column(index: int, table: Any, where: str) -> RankedColumn:
    what = f"{where}: columns[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(
            f"{what} must be a table such as "
            f"{{metric = \"dice\", structure = \"discs\", direction = \"higher\"}}, found {table!r}"
        )
    check_keys(table, required=_COLUMN_REQUIRED, optional=_COLUMN_OPTIONAL, where=what)
    metric = table["metric"]
    if isinstance(metric, str) and metric in JOB_MEASURES:
        return _job_column(metric, table, what)
    if not isinstance(metric, str) or metric not in METRICS:
        raise ConfigError(
            f"{what}: metric must be one of the scoring rules' metrics {sorted(METRICS)} or a job measure "
            f"{sorted(JOB_MEASURES)}, found {metric!r}"
        )
    direction = _choice(table["direction"], DIRECTIONS, f"{what}: direction")
    declared = METRICS[metric].direction.value
    if direction != declared:
        raise ConfigError(
            f"{what}: direction of {metric} must be {declared!r} as the scoring rules declare it, found {direction!r}"
        )
    missing_value = table.get("missing_value")
    return RankedColumn(
        metric=metric,
        structure=_choice(table["structure"], STRUCTURES, f"{what}: structure"),
        direction=direction,
        missing_value=None if missing_value is None else _number(missing_value, f"{what}: missing_value"),
    )


def _job_column(metric: str, table: Mapping[str, Any], what: str) -> RankedColumn:
    if table["structure"] != JOB:
        raise ConfigError(f"{what}: the job measure {metric} has structure {JOB!r}, found {table['structure']!r}")
    if table["direction"] != "lower":
        raise ConfigError(
            f"{what}: direction of the job measure {metric} must be 'lower', found {table['direction']!r}"
        )
    missing_value = table.get("missing_value")
    missing = None if missing_value is None else _number(missing_value, f"{what}: missing_value")
    return RankedColumn(metric=metric, structure=JOB, direction="lower", missing_value=missing)


def ranking_from_mapping(phase: str, table: Mapping[str, Any], *, source: str = "ranking") -> RankingConfig:
    """Validate one `[ranking.PHASE]` table; every error names the source, the phase and the key."""
    where = _where(source, phase)
    if not _PHASE_NAME.fullmatch(phase):
        raise ConfigError(f"{where}: a phase name must be lowercase letters, digits, '-' or '_', found {phase!r}")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, found {table!r}")
    check_keys(table, required=_REQUIRED, optional=_OPTIONAL, where=where)
    method = _choice(table["method"], METHODS, f"{where}: method")
    columns_table = table["columns"]
    if not isinstance(columns_table, list) or not columns_table:
        raise ConfigError(f"{where}: columns must be a non-empty list of tables, found {columns_table!r}")
    columns = tuple(_column(i, c, where) for i, c in enumerate(columns_table))
    seen: set[str] = set()
    for column in columns:
        if column.key in seen:
            raise ConfigError(f"{where}: column {column.metric} {column.structure} is listed twice")
        seen.add(column.key)
    if method == "score" and len(columns) != 1:
        raise ConfigError(f"{where}: method \"score\" ranks by exactly one column, found {len(columns)}")
    alpha = _number(table.get("significance_level", DEFAULT_SIGNIFICANCE_LEVEL), f"{where}: significance_level")
    if not 0 < alpha < 1:
        raise ConfigError(f"{where}: significance_level must be between 0 and 1, found {alpha!r}")
    draws = table.get("bootstrap_draws", DEFAULT_BOOTSTRAP_DRAWS)
    if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= 100_000:
        raise ConfigError(f"{where}: bootstrap_draws must be an integer in 1..100000, found {draws!r}")
    seed = table.get("bootstrap_seed", DEFAULT_BOOTSTRAP_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}: bootstrap_seed must be a non-negative integer, found {seed!r}")
    return RankingConfig(
        phase=phase,
        method=method,
        per_team=_choice(table["per_team"], PER_TEAM, f"{where}: per_team"),
        columns=columns,
        case_aggregate=_choice(table.get("case_aggregate", "mean"), CASE_AGGREGATES, f"{where}: case_aggregate"),
        significance_level=alpha,
        bootstrap_draws=draws,
        bootstrap_seed=seed,
    )


def default_ranking_path() -> Path:
    return Path(str(resources.files("challenge") / "ranking.toml"))


def load_rankings(
    path: Path | str | None = None, *, phase_names: frozenset[str] | set[str] | None = None
) -> dict[str, RankingConfig]:
    """Every phase's ranking in a ranking file (the packaged `challenge/ranking.toml` by default).

    With `phase_names`, a ranking for a phase not in that set is an error (a typo would
    otherwise leave the phase unranked).
    """
    path = Path(path) if path is not None else default_ranking_path()
    tables = read_named_tables(path, "ranking", what="PHASE")
    rankings = {name: ranking_from_mapping(name, table, source=str(path)) for name, table in tables.items()}
    if phase_names is not None:
        unknown = sorted(set(rankings) - set(phase_names))
        if unknown:
            raise ConfigError(f"{path}: ranking for unknown phase(s) {unknown}; phases declared: {sorted(phase_names)}")
    return rankings


def get_ranking(
    phase: str, path: Path | str | None = None, *, phase_names: frozenset[str] | set[str] | None = None
) -> RankingConfig:
    """The ranking of one phase; ConfigError naming the declared phases if it has none."""
    rankings = load_rankings(path, phase_names=phase_names)
    if phase not in rankings:
        raise ConfigError(f"no ranking declared for phase {phase!r}; rankings declared: {sorted(rankings)}")
    return rankings[phase]
