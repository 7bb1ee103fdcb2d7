"""The scored rows of a case: one value of one metric for one structure, with how it was obtained."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from challenge.rules import EdgeCase

GROUP_LEVEL = "all"
"""The `level` of a row that holds a whole group's value in a case (not one level's)."""


class RowStatus(str, enum.Enum):
    """How a row's value was obtained: computed, or set by a declared edge-case rule."""

    SCORED = "scored"
    BOTH_EMPTY = EdgeCase.BOTH_EMPTY.value
    PREDICTION_EMPTY = EdgeCase.PREDICTION_EMPTY.value
    REFERENCE_EMPTY = EdgeCase.REFERENCE_EMPTY.value
    MISSING = "missing"
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value

    @property
    def edge_case(self) -> EdgeCase | None:
        """The edge case whose declared value this row holds (None for a computed value)."""
        if self is RowStatus.SCORED:
            return None
        if self in (RowStatus.MISSING, RowStatus.INVALID):
            return EdgeCase.MISSING
        return EdgeCase(self.value)


class CaseStatus(str, enum.Enum):
    """Whether a case's prediction was scored, absent, or rejected."""

    SCORED = "scored"
    MISSING = "missing"
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ScoreRow:
    """One value: `metric` of `structure` (a group) at `level` (a level name, or 'all') in `case`.

    `column` names the value across cases (the key of metrics.json's "case" and "aggregates");
    `label` is the scored mask value of a level's row (3 for L3, 201 for L5/S1, 100 for the
    canal; its level number is `challenge.labels.structure(label).level`), None for a group's row.
    """

    case: str
    structure: str
    level: str
    metric: str
    value: float
    status: RowStatus
    column: str
    label: int | None = None
