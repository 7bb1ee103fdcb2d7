"""One scored value of one case: the row that goes from scoring through the registry to the page.

Scoring builds these rows, the registry stores and returns them (its ORM maps to this type),
metrics.json and cases.csv are written from them and the leaderboard ranks them. Nothing
mirrors it: every layer passes this one frozen type along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.statuses import RowStatus

GROUP_LEVEL = "all"
"""The `level` of a row that holds a whole group's value in a case (not one level's)."""


def column_name(structure: str, level: str, metric: str) -> str:
    """The results column of a row: 'vertebrae/L4/dice', 'discs/all/nsd'; official columns as named."""
    if metric in SPIDER2024_COLUMNS:
        return metric
    return f"{structure}/{level}/{metric}"


@dataclass(frozen=True)
class ScoreRow:
    """One value: `metric` of `structure` (a group) at `level` (a level name, or 'all') in `case`.

    `value` is a float; NaN where no number exists (its `status` says why). `label` is the scored
    mask value of a level's row (3 for L3, 201 for L5/S1, 100 for the canal; its level number is
    `challenge.labels.structure(label).level`), None for a group's row.
    """

    case: str
    structure: str
    level: str
    metric: str
    value: float
    status: RowStatus
    label: int | None = None

    @property
    def column(self) -> str:
        """The name of this value across cases (the key of metrics.json's "case" and "aggregates")."""
        return column_name(self.structure, self.level, self.metric)

    @property
    def is_group(self) -> bool:
        """True for the value of a whole group in the case, False for one level's value."""
        return self.level == GROUP_LEVEL

    @property
    def has_value(self) -> bool:
        """False where the value is NaN (no number could be given)."""
        return not math.isnan(self.value)
