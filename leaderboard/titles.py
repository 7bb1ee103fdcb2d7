"""What the site calls things: every title derived from the challenge's own names, never re-spelled."""

from __future__ import annotations

from challenge.ranking import JOB, JOB_MEASURES, RankedColumn
from challenge.release import SEQUENCES
from challenge.rules import METRICS

SEQUENCE_TITLES = {sequence: sequence.replace("_", " ").upper() for sequence in SEQUENCES}
"""A sequence as shown: 't1' -> 'T1', 't2_SPACE' -> 'T2 SPACE'."""


def group_title(structure: str) -> str:
    """A structure group in words: 'spinal_canal' -> 'spinal canal'."""
    return structure.replace("_", " ")


def metric_title(metric: str) -> str:
    """The rules' title of a metric (or a job measure's) with its unit: 'HD95 (mm)'; an unknown metric as named."""
    spec = METRICS.get(metric) or JOB_MEASURES.get(metric)
    if spec is None:
        return metric
    return f"{spec.title} ({spec.unit})" if spec.unit else spec.title


def column_title(column: RankedColumn) -> str:
    """A results column in words: 'Dice spinal canal', 'Seconds per case (s)'."""
    if column.structure == JOB:
        return metric_title(column.metric)
    return f"{metric_title(column.metric)} {group_title(column.structure)}"


def column_data_key(column: RankedColumn) -> str:
    """A results column's key in a table's CSV and JSON: 'dice_discs'."""
    return column.key.replace(":", "_")
